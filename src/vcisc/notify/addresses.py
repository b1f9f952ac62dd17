"""Where a webhook may go: checked when a contact is configured and again before each request.

Configuring a URL (``check_webhook_url``) needs no network: the scheme, no credentials in the
URL, and — when the host is written as an address or is ``localhost`` — that the address is
public or on the allow-list (``VCISC_WEBHOOK_ALLOWED_NETWORKS``). Plain ``http://`` is accepted
only for such allow-listed hosts (a test receiver, a relay inside the operator's own network):
anything that crosses the internet goes over TLS.

Before each request (``resolve_webhook``) the host name is resolved and *every* address it
resolves to is checked the same way; the request then goes to the checked address (the name is
kept for the Host header and TLS), so a name that resolves to something else a moment later
(DNS rebinding) cannot move the request into the server's own networks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from vcisc.notify.policy import IpAddress, Network, address_allowed

__all__ = ["Target", "UrlRejected", "check_webhook_url", "resolve_webhook"]


class UrlRejected(ValueError):
    """The URL may not be used as a webhook; the message says why (for the operator)."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to ``address``; present ``host`` (Host header, TLS SNI)."""

    scheme: str
    host: str
    port: int
    address: IpAddress
    path: str

    @property
    def connect_url(self) -> str:
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _literal(host: str) -> IpAddress | None:
    """The address if ``host`` is written as one, in any form the resolver accepts
    (``127.0.0.1``, ``::1``, but also ``2130706433`` or ``127.1``), without asking DNS."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(infos[0][4][0]) if infos else None


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlRejected(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRejected("must start with https://")
    if parts.username is not None or parts.password is not None:
        raise UrlRejected("must not carry a user name or password (requests are signed instead)")
    host = parts.hostname or ""
    if not host:
        raise UrlRejected("has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _refuse(address: IpAddress, host: str) -> UrlRejected:
    shown = host if str(address) == host else f"{host} ({address})"
    return UrlRejected(
        f"{shown} is not a public address; webhooks may reach the server's own or private "
        "networks only when VCISC_WEBHOOK_ALLOWED_NETWORKS lists them"
    )


def check_webhook_url(url: str, allowed: Iterable[Network]) -> None:
    """Raise :class:`UrlRejected` if ``url`` may not be configured as a webhook."""
    allowed = tuple(allowed)
    scheme, host, _, _ = _split(url)
    literal = _literal(host)
    if literal is not None and not address_allowed(literal, allowed):
        raise _refuse(literal, host)
    if scheme == "http" and not (
        literal is not None and any(literal in n for n in allowed if n.version == literal.version)
    ):
        raise UrlRejected(
            "must use https:// (plain http:// only to hosts on VCISC_WEBHOOK_ALLOWED_NETWORKS)"
        )


async def resolve_webhook(url: str, allowed: Iterable[Network]) -> Target:
    """Check ``url`` and resolve it to an address it may reach.

    :class:`UrlRejected` means the request must not be made (a permanent failure); ``OSError``
    from the resolver is a temporary one (DNS may answer later).
    """
    allowed = tuple(allowed)
    check_webhook_url(url, allowed)
    scheme, host, port, path = _split(url)
    literal = _literal(host)
    if literal is not None:
        return Target(scheme, host, port, literal, path)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise OSError(f"{host} does not resolve")
    for address in addresses:
        # All of them: a name that mixes a public and a private address is refused as a whole.
        if not address_allowed(address, allowed):
            raise _refuse(address, host)
    return Target(scheme, host, port, addresses[0], path)
