"""Real receivers on 127.0.0.1 for delivery tests and the benchmark: an SMTP server (aiosmtpd)
and an HTTP server whose paths behave well or badly.

HTTP paths (the behaviour applies per idempotency key, so a retry of the same notification can
succeed):

* ``/ok``            — 200
* ``/fail/N``        — 500 for the first N attempts, then 200
* ``/hang/N``        — holds the first N attempts without answering (until released), then 200
* ``/drop/N``        — closes the connection without an answer on the first N attempts, then 200
* ``/status/CODE``   — always CODE
* ``/slow/MS``       — answers 200 after MS milliseconds
* ``/close``         — answers 200 (keep-alive, as HTTP/1.1 allows), then closes the connection

``HttpReceiver(tls=context)`` serves HTTPS with that server-side context.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every session at INFO from its own thread, also after a test has ended.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int  # status sent, or 0 when dropped / held
    peer: tuple[str, int] = ("", 0)  # the client's address and port: one per connection


@dataclass
class HttpReceiver:
    """A threaded HTTP server; ``hits`` lists every request, ``delivered`` the answered-200 ones."""

    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    server: ThreadingHTTPServer | None = None
    tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                now = time.time()
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    receiver.attempts[(self.path, key)] += 1
                    n = receiver.attempts[(self.path, key)]
                hit = Hit(self.path, dict(self.headers.items()), body, now, 0, self.client_address)
                with receiver.lock:
                    receiver.hits.append(hit)
                parts = self.path.split("?")[0].strip("/").split("/")
                kind, arg = parts[0], int(parts[1]) if len(parts) > 1 else 0
                if kind == "fail" and n <= arg:
                    return self._answer(hit, 500)
                if kind == "hang" and n <= arg:
                    receiver.release.wait(30)
                    self.close_connection = True
                    return None
                if kind == "drop" and n <= arg:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if kind == "status":
                    return self._answer(hit, arg)
                if kind == "slow":
                    time.sleep(arg / 1000)
                if kind == "close":
                    self._answer(hit, 200)
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                return self._answer(hit, 200)

            def _answer(self, hit: Hit, status: int) -> None:
                hit.answered = status
                payload = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # the default listen backlog (5) drops bursts of SYNs
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        # A short poll: stop() waits up to one poll interval for the loop to see the request
        # (the default, 0.5 s, was most of the teardown of every delivery test).
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def delivered(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.answered == 200]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    at: float
    key: str = ""  # X-VCISC-Idempotency-Key

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data, policy=policy.default)


class SmtpHandler:
    """Accepts everything except recipients at ``refuse``; ``delay`` seconds per message."""

    def __init__(self, refuse: tuple[str, ...] = (), delay: float = 0.0) -> None:
        self.mails: list[Mail] = []
        self.refuse = refuse
        self.delay = delay
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        at = time.time()
        key = ""
        for line in bytes(envelope.content).split(b"\r\n\r\n", 1)[0].splitlines():
            if line.lower().startswith(b"x-vcisc-idempotency-key:"):
                key = line.split(b":", 1)[1].strip().decode()
        with self.lock:
            self.mails.append(
                Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, at, key)
            )
        return "250 OK queued"


def start_smtp(handler: SmtpHandler, port: int | None = None, **kwargs: Any) -> Controller:
    controller = Controller(
        handler, hostname="127.0.0.1", port=port or free_port(), ready_timeout=10, **kwargs
    )
    controller.start()
    return controller
