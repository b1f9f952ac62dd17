"""Fetching a MISP feed's files over HTTP(S), under the webhooks' address rules.

A feed URL is checked and resolved like a webhook URL (:func:`vcisc.notify.addresses.
resolve_webhook`): every address the name resolves to must be public or on
``VCISC_WEBHOOK_ALLOWED_NETWORKS``, and the connection goes to the address that was checked (the
TLS certificate is verified for the URL's host name against certifi's roots), so DNS cannot
swap in an internal address between the check and the request. Redirects are not followed: a
feed that moved is reported with its status, for the coordinator to update the URL. Each file
is capped (``VCISC_FEED_MAX_BYTES``); one keep-alive connection serves a whole pull.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from urllib.parse import quote

import certifi
from django.conf import settings

from vcisc.notify.addresses import Target, UrlRejected, resolve_webhook
from vcisc.notify.policy import parse_networks

__all__ = ["FeedFetchError", "FeedFetcher"]

_TIMEOUT = 30.0


class FeedFetchError(Exception):
    """The feed could not be read; the message says why (shown to the coordinator)."""


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address already checked, verifying the certificate for the URL's host."""

    def __init__(self, target: Target, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = str(target.address)
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class FeedFetcher:
    """Reads ``<base>/manifest.json`` and ``<base>/<uuid>.json`` of one feed."""

    def __init__(self, base_url: str, *, max_bytes: int | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.max_bytes = max_bytes or settings.CONFIG.feed_max_bytes
        allowed = parse_networks(settings.CONFIG.webhook_allowed_networks)
        try:
            self.target = asyncio.run(resolve_webhook(self.base + "/manifest.json", allowed))
        except UrlRejected as exc:
            raise FeedFetchError(f"the feed URL {exc}") from None
        except OSError as exc:
            raise FeedFetchError(f"the feed's host cannot be resolved ({exc})") from None
        self._prefix = self.target.path.rsplit("/", 1)[0]
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.target.scheme == "https":
                context = ssl.create_default_context(cafile=certifi.where())
                self._conn = _PinnedHTTPS(self.target, context, _TIMEOUT)
            else:
                self._conn = http.client.HTTPConnection(
                    str(self.target.address), self.target.port, timeout=_TIMEOUT
                )
        return self._conn

    def get(self, name: str) -> bytes | None:
        """The file's bytes; ``None`` if the feed has no such file (404)."""
        path = f"{self._prefix}/{quote(name)}"
        headers = {
            "Host": self.target.host_header,
            "Accept": "application/json",
            "User-Agent": "VCISC feed reader",
        }
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more, anew
            conn = self._connection()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read(self.max_bytes + 1)
                if response.will_close or len(body) > self.max_bytes:
                    self.close()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise FeedFetchError(
                        f"{self.base}/{name}: the server closed the connection"
                    ) from None
            except ssl.SSLError as exc:
                self.close()
                raise FeedFetchError(f"{self.base}: TLS failed ({exc.reason or exc})") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise FeedFetchError(f"{self.base}/{name}: {exc}") from None
        if response.status == 404:
            return None
        if response.status != 200:
            where = response.getheader("Location")
            moved = f" (it points to {where}; update the feed's URL)" if where else ""
            raise FeedFetchError(f"{self.base}/{name}: HTTP {response.status}{moved}")
        if len(body) > self.max_bytes:
            raise FeedFetchError(
                f"{self.base}/{name} is larger than the limit of {self.max_bytes:,} bytes "
                "(VCISC_FEED_MAX_BYTES)"
            )
        return body

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
