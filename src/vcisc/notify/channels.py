"""The channels' network side: send one prepared e-mail or webhook, say how it went.

Everything here runs in the worker's asyncio loop (one thread, no database). Each send has one
overall deadline (``asyncio.timeout``): a receiver that accepts the connection and then hangs, or
trickles its answer, costs at most the channel's timeout, which is shorter than half the lease
(see ``VCISC_DELIVERY_LEASE_SECONDS``), so a delivery in flight is never taken over by another
worker while its first one is alive. An e-mail waiting for one of the relay's connections
counts that wait against half the lease too (:class:`SmtpSender`).

Connections are reused: SMTP connections to the relay, and HTTP/1.1 keep-alive connections to
each webhook destination. A reused connection that the other side closed is never a reason to
send twice: an e-mail is moved to a new connection only when the old one broke before DATA (the
relay has nothing yet), and a webhook connection that was closed while idle is not used.

Outcomes are *temporary* (retry with back-off) or *permanent* (dead letter at once):

============================================  =========
e-mail: connection refused, timeout, 4xx       temporary
e-mail: the relay's connections stayed busy    temporary (not sent)
e-mail: authentication or sender refused       temporary (the operator fixes the relay settings)
e-mail: recipient or message refused (5xx)     permanent
webhook: 2xx                                    sent
webhook: 408, 425, 429, 5xx, timeout, dropped   temporary (``Retry-After`` honoured, capped)
webhook: other 3xx/4xx                          permanent (redirects are not followed)
webhook: address not allowed (SSRF)             permanent
============================================  =========
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiosmtplib
import certifi
import h11

from vcisc.notify.addresses import Target, UrlRejected, resolve_webhook
from vcisc.notify.policy import Network
from vcisc.notify.signing import SIGNATURE_HEADER, sign

__all__ = [
    "EmailJob",
    "Outcome",
    "SmtpSender",
    "SmtpSettings",
    "WebhookJob",
    "WebhookSender",
]

_USER_AGENT = "VCISC-Webhook/1"
_MAX_ERROR = 900


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    attempt: int
    ok: bool
    permanent: bool = False
    error: str = ""
    #: Seconds the receiver asked us to wait (``Retry-After``), if it did.
    retry_after: float | None = None


@dataclass(frozen=True)
class EmailJob:
    delivery_id: int
    attempt: int
    sender: str
    recipient: str
    data: bytes


@dataclass(frozen=True)
class WebhookJob:
    delivery_id: int
    attempt: int
    url: str
    body: bytes
    headers: dict[str, str]
    #: Current secret first; the previous one too while a rotation is under way.
    secrets: tuple[str, ...] = field(repr=False)


def _short(text: str) -> str:
    return " ".join(text.split())[:_MAX_ERROR]


# --- e-mail -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str | None
    password: str | None = field(repr=False)
    ca_file: str | None
    timeout: float
    local_hostname: str
    connections: int = 8


class _Relay(aiosmtplib.SMTP):
    """An SMTP client that knows whether the relay may have been handed the message."""

    data_started = False

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(*args, **kwargs)


class _Stale(Exception):
    """A reused connection broke before DATA: the relay has nothing, a new one may try."""


class SmtpSender:
    """Sends over a small pool of SMTP connections to the relay (reused between messages).

    Waiting for a free connection and the exchange with the relay together stay within
    ``budget`` seconds (the worker passes half the lease, so that a message queued behind a slow
    relay is never taken over by another worker while this one may still send it). A message
    starts only with a whole SMTP timeout ahead: one cut short in the middle of DATA might have
    reached the relay, and its retry would be a duplicate. One that waited too long is not sent
    and is retried later.
    """

    def __init__(self, settings: SmtpSettings, *, budget: float | None = None) -> None:
        self.settings = settings
        self.budget = max(budget or 0.0, settings.timeout)
        self._idle: list[_Relay] = []
        self._slots = asyncio.Semaphore(settings.connections)
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            self._tls = ssl.create_default_context(cafile=settings.ca_file)

    async def _connect(self) -> _Relay:
        s = self.settings
        client = _Relay(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            local_hostname=s.local_hostname,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=self._tls,
        )
        await client.connect()
        return client

    async def send(self, job: EmailJob) -> Outcome:
        queued = True
        try:
            async with asyncio.timeout(self.budget - self.settings.timeout):
                await self._slots.acquire()
            queued = False
            try:
                async with asyncio.timeout(self.settings.timeout):
                    await self._send(job)
            finally:
                self._slots.release()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            permanent = all(c >= 500 for c in codes)
            return Outcome(
                job.delivery_id, job.attempt, False, permanent, _short(f"refused: {text}")
            )
        except aiosmtplib.SMTPDataError as exc:
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                exc.code >= 500,
                _short(f"message refused: {exc.code} {exc.message}"),
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=_short(f"SMTP authentication failed: {exc.code} {exc.message}"),
            )
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome(
                job.delivery_id, job.attempt, False, error=_short(f"SMTP {exc.code} {exc.message}")
            )
        except TimeoutError:
            error = (
                f"not sent: all {self.settings.connections} connections to the SMTP relay "
                f"stayed busy for {self.budget - self.settings.timeout:g} s"
                if queued
                else f"SMTP relay did not answer within {self.settings.timeout:g} s"
            )
            return Outcome(job.delivery_id, job.attempt, False, error=error)
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=_short(f"SMTP relay {self.settings.host}:{self.settings.port}: {exc}"),
            )
        return Outcome(job.delivery_id, job.attempt, True)

    async def _send(self, job: EmailJob) -> None:
        client = self._idle.pop() if self._idle else None
        if client is not None and client.is_connected:
            try:
                await self._transact(client, job, reused=True)
                return
            except _Stale:
                pass  # the relay closed it while it was idle: nothing was sent, try a new one
        elif client is not None:
            client.close()
        await self._transact(await self._connect(), job, reused=False)

    async def _transact(self, client: _Relay, job: EmailJob, *, reused: bool) -> None:
        """One mail transaction; the connection goes back to the pool if it is still good."""
        client.data_started = False
        try:
            await client.sendmail(job.sender, [job.recipient], job.data)
        except aiosmtplib.SMTPRecipientsRefused:
            # The session is still good: reset it and keep the connection for the next message.
            try:
                await client.rset()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
                raise
            self._idle.append(client)
            raise
        except (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPResponseException,
            OSError,
        ) as exc:
            client.close()
            # Before DATA the relay holds no message, so a new connection may try at once
            # without risking a duplicate. 421: the relay is closing the channel (RFC 5321
            # §3.8), as relays do with a connection that idled too long.
            lost = not isinstance(exc, aiosmtplib.SMTPResponseException) or exc.code == 421
            if reused and lost and not client.data_started:
                raise _Stale from exc
            raise
        except BaseException:
            client.close()
            raise
        self._idle.append(client)

    async def close(self) -> None:
        """Say goodbye to the relay on every idle connection."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                async with asyncio.timeout(2):
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


# --- webhooks -----------------------------------------------------------------------------------

_TEMPORARY_STATUS = frozenset({408, 425, 429})


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


#: Connections open at once to one destination (scheme, host name, checked address, port).
_CONNECTIONS_PER_DESTINATION = 100
#: An idle connection is closed after this long, before the receiver's own keep-alive timeout
#: (5 s in uvicorn and Apache, more in nginx) could close it under a request.
_KEEPALIVE_SECONDS = 4.0
#: Response headers larger than this are a protocol error; a body larger than _MAX_DRAIN is not
#: read to its end (the status is what counts): the connection is closed instead of reused.
_MAX_HEADERS = 16 * 1024
_MAX_DRAIN = 64 * 1024
#: Characters left as they are in the request target (RFC 3986 reserved, unreserved and "%").
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"


class _NoAnswer(ConnectionError):
    """The receiver closed the connection, or broke HTTP, before its answer was complete."""


@dataclass
class _Connection:
    """One HTTP/1.1 connection to a checked address (h11 keeps the protocol state)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection
    idle_since: float = 0.0

    def alive(self, now: float) -> bool:
        return (
            now - self.idle_since < _KEEPALIVE_SECONDS
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


class _Destination:
    """The idle connections to one destination and the slots that bound the open ones."""

    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(_CONNECTIONS_PER_DESTINATION)

    def take(self, now: float) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if conn.alive(now):
                return conn
            conn.close()  # the receiver closed it, or it idled too long
        return None


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    retry_after: str | None


def _ascii_host(host: str) -> str:
    return host if host.isascii() else host.encode("idna").decode("ascii")


class WebhookSender:
    """Signed HTTP POSTs to receivers, each to an address checked against the SSRF rules.

    A small HTTP/1.1 client (h11 over asyncio streams) rather than a general one: it connects
    only to the address :func:`resolve_webhook` checked, never through a proxy, never follows a
    redirect, and costs a tenth of the CPU per request of a general client's connection pool,
    which counts when a routing fans out to a hundred receivers on a small machine. Connections
    are kept alive per destination — scheme, host name (TLS verifies the certificate for that
    name), checked address and port — so a connection set up for one name never carries
    another's requests, and one that was not checked never carries any.
    """

    def __init__(
        self,
        *,
        timeout: float,
        allowed: Sequence[Network],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.allowed = tuple(allowed)
        # The CA bundle the previous client (httpx) trusted by default: the same receivers work.
        self._tls = tls or ssl.create_default_context(cafile=certifi.where())
        self._destinations: dict[tuple[str, str, str, int], _Destination] = {}

    async def send(self, job: WebhookJob) -> Outcome:
        queued = False
        try:
            # One deadline for everything: resolving, waiting for a connection, the exchange.
            async with asyncio.timeout(self.timeout):
                target = await resolve_webhook(job.url, self.allowed)
                headers = [
                    ("Host", _ascii_host(target.host_header)),
                    ("User-Agent", _USER_AGENT),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(job.body))),
                    *job.headers.items(),
                    (SIGNATURE_HEADER, sign(job.secrets, job.body, int(time.time()))),
                ]
                key = (target.scheme, target.host, str(target.address), target.port)
                destination = self._destinations.get(key)
                if destination is None:
                    destination = self._destinations[key] = _Destination()
                queued = True
                async with destination.slots:
                    queued = False
                    answer = await self._post(destination, target, job.body, headers)
        except UrlRejected as exc:
            return Outcome(job.delivery_id, job.attempt, False, True, _short(f"blocked: {exc}"))
        except TimeoutError:
            error = (
                f"all {_CONNECTIONS_PER_DESTINATION} connections to the receiver stayed busy "
                f"for {self.timeout:g} s"
                if queued
                else f"the receiver did not answer within {self.timeout:g} s"
            )
            return Outcome(job.delivery_id, job.attempt, False, error=error)
        except _NoAnswer as exc:
            return Outcome(job.delivery_id, job.attempt, False, error=_short(str(exc)))
        except socket.gaierror as exc:
            host = urlsplit(job.url).hostname
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=_short(f"{host} does not resolve ({exc.strerror or exc})"),
            )
        except (OSError, h11.ProtocolError) as exc:  # refused, reset, TLS, not HTTP
            kind = type(exc).__name__
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=_short(f"{kind}: {exc}" if str(exc) else kind),
            )
        status = answer.status
        if 200 <= status < 300:
            return Outcome(job.delivery_id, job.attempt, True)
        error = f"the receiver answered {status} {answer.reason}".strip()
        if status >= 500 or status in _TEMPORARY_STATUS:
            wait = _retry_after(answer.retry_after, time.time())
            return Outcome(job.delivery_id, job.attempt, False, False, error, wait)
        if 300 <= status < 400:
            error += " (redirects are not followed: configure the final URL)"
        return Outcome(job.delivery_id, job.attempt, False, True, _short(error))

    async def _post(
        self,
        destination: _Destination,
        target: Target,
        body: bytes,
        headers: list[tuple[str, str]],
    ) -> _Answer:
        """One request on a kept-alive connection to ``target`` (or a new one)."""
        conn = destination.take(time.monotonic())
        if conn is None:
            tls = self._tls if target.scheme == "https" else None
            reader, writer = await asyncio.open_connection(
                str(target.address),  # the checked address, never the name again
                target.port,
                ssl=tls,
                server_hostname=_ascii_host(target.host) if tls else None,
            )
            http = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEADERS)
            conn = _Connection(reader, writer, http)
        try:
            answer, reusable = await self._exchange(conn, target, body, headers)
        except BaseException:  # a timeout or cancellation in the middle: the state is unknown
            conn.close()
            raise
        if reusable and len(destination.idle) < _CONNECTIONS_PER_DESTINATION:
            conn.http.start_next_cycle()
            conn.idle_since = time.monotonic()
            destination.idle.append(conn)
        else:
            conn.close()
        return answer

    async def _exchange(
        self, conn: _Connection, target: Target, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[_Answer, bool]:
        http = conn.http
        request = h11.Request(
            method="POST", target=quote(target.path, safe=_TARGET_SAFE), headers=headers
        )
        conn.writer.write(
            http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage())
        )
        await conn.writer.drain()
        answer: _Answer | None = None
        drained = 0
        while True:
            try:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await conn.reader.read(65536))  # b"" is the end
                    continue
            except (OSError, h11.RemoteProtocolError) as exc:
                if answer is None:
                    raise _NoAnswer(
                        f"the receiver closed the connection without an answer ({exc})"
                        if str(exc)
                        else "the receiver closed the connection without an answer"
                    ) from exc
                return answer, False  # the answer counts; only the connection is lost
            if isinstance(event, h11.Response):
                values = dict(event.headers)
                retry = values.get(b"retry-after")
                answer = _Answer(
                    event.status_code,
                    event.reason.decode("latin-1"),
                    retry.decode("latin-1") if retry is not None else None,
                )
            elif isinstance(event, h11.Data):
                drained += len(event.data)
                if drained > _MAX_DRAIN:
                    assert answer is not None
                    return answer, False
            elif isinstance(event, h11.EndOfMessage):
                assert answer is not None
                reusable = http.our_state is h11.DONE and http.their_state is h11.DONE
                return answer, reusable
            elif isinstance(event, h11.ConnectionClosed):
                raise _NoAnswer("the receiver closed the connection without an answer")
            # h11.InformationalResponse (1xx): the final answer follows.

    async def close(self) -> None:
        destinations, self._destinations = self._destinations, {}
        for destination in destinations.values():
            for conn in destination.idle:
                conn.close()
            destination.idle.clear()
