"""The channels' network side: send one prepared e-mail or webhook, say how it went.

Everything here runs in the worker's asyncio loop (one thread, no database). Each send has one
overall deadline (``asyncio.timeout``): a receiver that accepts the connection and then hangs, or
trickles its answer, costs at most the channel's timeout, which is shorter than half the lease
(see ``VCISC_DELIVERY_LEASE_SECONDS``), so a delivery in flight is never taken over by another
worker while its first one is alive.

Outcomes are *temporary* (retry with back-off) or *permanent* (dead letter at once):

============================================  =========
e-mail: connection refused, timeout, 4xx       temporary
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
from urllib.parse import urlsplit

import aiosmtplib
import httpx

from vcisc.notify.addresses import UrlRejected, resolve_webhook
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


class SmtpSender:
    """Sends over a small pool of SMTP connections to the relay (reused between messages)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.connections)
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            self._tls = ssl.create_default_context(cafile=settings.ca_file)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
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
        try:
            async with self._slots:
                async with asyncio.timeout(self.settings.timeout):
                    await self._send(job)
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
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=f"SMTP relay did not answer within {self.settings.timeout:g} s",
            )
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
        if client is not None and not client.is_connected:
            client = None
        if client is None:
            client = await self._connect()
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


class WebhookSender:
    """Signed HTTP POSTs to receivers, each to an address checked against the SSRF rules."""

    def __init__(self, *, timeout: float, allowed: Sequence[Network]) -> None:
        self.timeout = timeout
        self.allowed = tuple(allowed)
        # One connection pool per TLS host name: requests go to a checked address, and a pooled
        # connection set up (and its certificate verified) for one name must not carry another's.
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}

    def _client(self, scheme: str, host: str) -> httpx.AsyncClient:
        key = (scheme, host if scheme == "https" else "")
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would bypass the address checks
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            )
        return client

    async def send(self, job: WebhookJob) -> Outcome:
        try:
            async with asyncio.timeout(self.timeout):
                target = await resolve_webhook(job.url, self.allowed)
                headers = {
                    **job.headers,
                    "Host": target.host_header,
                    "Content-Type": "application/json",
                    "User-Agent": _USER_AGENT,
                    SIGNATURE_HEADER: sign(job.secrets, job.body, int(time.time())),
                }
                extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
                response = await self._client(target.scheme, target.host).post(
                    target.connect_url, content=job.body, headers=headers, extensions=extensions
                )
                await response.aclose()
        except UrlRejected as exc:
            return Outcome(job.delivery_id, job.attempt, False, True, _short(f"blocked: {exc}"))
        except TimeoutError:
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=f"the receiver did not answer within {self.timeout:g} s",
            )
        except httpx.TimeoutException:
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=f"the receiver did not answer within {self.timeout:g} s",
            )
        except socket.gaierror as exc:
            host = urlsplit(job.url).hostname
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=_short(f"{host} does not resolve ({exc.strerror or exc})"),
            )
        except (httpx.HTTPError, OSError) as exc:
            kind = type(exc).__name__
            return Outcome(
                job.delivery_id,
                job.attempt,
                False,
                error=_short(f"{kind}: {exc}" if str(exc) else kind),
            )
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(job.delivery_id, job.attempt, True)
        error = f"the receiver answered {status} {response.reason_phrase}".strip()
        if status >= 500 or status in _TEMPORARY_STATUS:
            wait = _retry_after(response.headers.get("Retry-After"), time.time())
            return Outcome(job.delivery_id, job.attempt, False, False, error, wait)
        if 300 <= status < 400:
            error += " (redirects are not followed: configure the final URL)"
        return Outcome(job.delivery_id, job.attempt, False, True, _short(error))

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
