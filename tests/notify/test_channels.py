"""The channels' network side on its own (no database): kept-alive connections carry each message
once, a connection the other side closed is replaced without losing or doubling a message, TLS
checks the URL's name on the checked address, and a busy relay never makes a message outlive
its budget (half the lease)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.notify.conftest import smtp_settings
from tests.notify.receivers import HttpReceiver
from vcisc.notify.channels import EmailJob, Outcome, SmtpSender, WebhookJob, WebhookSender
from vcisc.notify.policy import parse_networks

LOCAL = parse_networks(["127.0.0.1/32"])


def _hook(url: str, n: int) -> WebhookJob:
    return WebhookJob(
        delivery_id=n,
        attempt=1,
        url=url,
        body=b'{"n": %d}' % n,
        headers={"Idempotency-Key": f"key-{n}"},
        secrets=("whsec_test",),
    )


def _mail(n: int) -> EmailJob:
    data = (
        "From: vcisc@vcisc.test\r\nTo: desk@cert-bund.example\r\n"
        f"Subject: {n}\r\nX-VCISC-Idempotency-Key: key-{n}\r\n\r\nbody {n}\r\n"
    ).encode()
    return EmailJob(n, 1, "vcisc@vcisc.test", "desk@cert-bund.example", data)


# --- webhooks -----------------------------------------------------------------------------------


def test_webhooks_reuse_kept_alive_connections_and_each_arrives_once(http: HttpReceiver) -> None:
    async def go() -> tuple[list[Outcome], list[Outcome]]:
        sender = WebhookSender(timeout=5, allowed=LOCAL)
        try:
            one_by_one = [await sender.send(_hook(f"{http.url}/ok", n)) for n in range(5)]
            burst = await asyncio.gather(
                *(sender.send(_hook(f"{http.url}/ok", n)) for n in range(5, 25))
            )
            return one_by_one, list(burst)
        finally:
            await sender.close()

    one_by_one, burst = asyncio.run(go())
    assert all(o.ok for o in one_by_one + burst)
    keys = sorted(h.headers["Idempotency-Key"] for h in http.delivered())
    assert keys == sorted(f"key-{n}" for n in range(25))  # each once, none lost
    assert len({h.peer for h in http.hits[:5]}) == 1  # one connection carried the first five
    assert len({h.peer for h in http.hits}) <= 20


def test_a_connection_the_receiver_closed_is_not_reused(http: HttpReceiver) -> None:
    async def go() -> tuple[Outcome, Outcome]:
        sender = WebhookSender(timeout=5, allowed=LOCAL)
        try:
            first = await sender.send(_hook(f"{http.url}/close", 1))
            await asyncio.sleep(0.2)  # the receiver's FIN reaches the idle connection
            return first, await sender.send(_hook(f"{http.url}/ok", 2))
        finally:
            await sender.close()

    first, second = asyncio.run(go())
    assert first.ok and second.ok  # no failed attempt, no retry
    assert [h.headers["Idempotency-Key"] for h in http.hits] == ["key-1", "key-2"]
    assert len({h.peer for h in http.hits}) == 2  # the second went over a new connection


def test_a_receiver_that_drops_the_connection_is_a_temporary_failure(http: HttpReceiver) -> None:
    async def go() -> Outcome:
        sender = WebhookSender(timeout=5, allowed=LOCAL)
        try:
            return await sender.send(_hook(f"{http.url}/drop/1", 1))
        finally:
            await sender.close()

    outcome = asyncio.run(go())
    assert not outcome.ok and not outcome.permanent
    assert "closed the connection without an answer" in outcome.error
    assert len(http.hits) == 1  # not sent again within the attempt


@pytest.fixture
def certificate(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")

    def make(san: str) -> tuple[Path, Path]:
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(key), "-out", str(cert), "-subj", "/CN=vcisc-test",
                "-addext", f"subjectAltName={san}",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cert, key

    return make


def test_https_webhooks_verify_the_url_name_on_the_checked_address(
    certificate: Callable[[str], tuple[Path, Path]],
) -> None:
    cert, key = certificate("DNS:localhost")  # valid for the name, not for 127.0.0.1
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    receiver = HttpReceiver(tls=server_side).start()
    assert receiver.server is not None
    port = receiver.server.server_address[1]

    async def go() -> tuple[Outcome, Outcome]:
        trust = ssl.create_default_context(cafile=str(cert))
        sender = WebhookSender(timeout=5, allowed=LOCAL, tls=trust)
        try:
            by_name = await sender.send(_hook(f"https://localhost:{port}/ok", 1))
            by_address = await sender.send(_hook(f"https://127.0.0.1:{port}/ok", 2))
            return by_name, by_address
        finally:
            await sender.close()

    try:
        by_name, by_address = asyncio.run(go())
    finally:
        receiver.stop()
    assert by_name.ok
    assert receiver.hits[0].headers["Host"] == f"localhost:{port}"
    # The certificate does not cover 127.0.0.1: refused before any request, retried later.
    assert not by_address.ok and not by_address.permanent
    assert "certificate" in by_address.error.lower()
    assert [h.headers["Idempotency-Key"] for h in receiver.hits] == ["key-1"]


# --- e-mail -------------------------------------------------------------------------------------


class _Relay:
    """A minimal SMTP relay that breaks its first connection during the second mail
    transaction: at ``MAIL`` (before the relay has anything) or right after the message data
    (the relay has it, but never says so)."""

    def __init__(self, break_at: str) -> None:
        self.break_at = break_at
        self.connections = 0
        self.mail_commands = 0
        self.messages: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first, transactions = self.connections == 1, 0
        writer.write(b"220 relay.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            breaking = first and transactions == 2
            if verb == b"MAIL":
                self.mail_commands += 1
                transactions += 1
                if first and transactions == 2 and self.break_at == "mail":
                    writer.close()
                    return
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                if breaking and self.break_at == "data":
                    writer.close()
                    return
                writer.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                writer.close()
                return
            else:  # EHLO, HELO, RCPT, RSET, NOOP
                writer.write(b"250 relay.test\r\n")
            await writer.drain()


def _through(relay: _Relay, *, connections: int = 4) -> list[Outcome]:
    async def go() -> list[Outcome]:
        server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = SmtpSender(smtp_settings(port, connections=connections))
        try:
            return [await sender.send(_mail(n)) for n in (1, 2)]
        finally:
            await sender.close()
            server.close()

    return asyncio.run(go())


def test_a_reused_smtp_connection_that_broke_before_data_is_retried_on_a_new_one() -> None:
    relay = _Relay(break_at="mail")
    first, second = _through(relay)
    assert first.ok and second.ok  # no failed attempt: the relay had nothing of it yet
    assert relay.connections == 2 and relay.mail_commands == 3
    assert [b"key-1" in m for m in relay.messages] == [True, False]
    assert [b"key-2" in m for m in relay.messages] == [False, True]  # each exactly once


def test_a_connection_lost_after_data_is_not_resent_within_the_attempt() -> None:
    relay = _Relay(break_at="data")
    first, second = _through(relay)
    assert first.ok
    # The relay may have the message: a failed attempt, retried with back-off, not at once.
    assert not second.ok and not second.permanent
    assert relay.connections == 1 and len(relay.messages) == 2


def test_a_message_waiting_for_a_busy_relay_stays_within_its_budget() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        await writer.drain()
        await reader.read()  # never answers EHLO

    async def go() -> list[Outcome]:
        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # One connection; each exchange may take 0.6 s, the whole of a message 0.8 s.
        sender = SmtpSender(smtp_settings(port, connections=1, timeout=0.6), budget=0.8)
        try:
            return list(await asyncio.gather(sender.send(_mail(1)), sender.send(_mail(2))))
        finally:
            await sender.close()
            server.close()

    first, second = asyncio.run(go())
    assert not first.ok and "did not answer within 0.6 s" in first.error
    # The second would have had to start after its budget: it is not sent, and retried later.
    assert not second.ok and not second.permanent
    assert "stayed busy" in second.error
