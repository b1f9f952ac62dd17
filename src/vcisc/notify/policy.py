"""Delivery and escalation rules as pure code: no database, no network.

* how long to wait before the next attempt (exponential back-off with jitter);
* how much of a message a channel may carry (the channel's TLP ceiling, DOMAIN.md §5);
* which networks a webhook may reach although they are not public (the SSRF allow-list);
* the escalation policy and the reminders before a deadline.

:mod:`vcisc.config` validates settings with these parsers, so a bad value stops start-up.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from enum import StrEnum

from vcisc.tlp import Tlp, parse_tlp

__all__ = [
    "EscalationLevel",
    "EscalationRule",
    "Network",
    "address_allowed",
    "backoff",
    "carries_content",
    "parse_ceiling",
    "parse_duration",
    "parse_networks",
    "parse_policy",
    "parse_reminders",
    "parse_sender",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# --- retries --------------------------------------------------------------------------------------


def backoff(attempt: int, base: float, cap: float, random: Callable[[], float]) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based).

    ``base · 2^(attempt-1)``, capped at ``cap``, of which a random half is taken off ("equal
    jitter"): the wait lies in [d/2, d], so many receivers failing together do not retry in step,
    yet no retry comes sooner than half the nominal back-off. ``random`` returns [0, 1).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # 2**60 is far past any cap; min() first keeps the float finite for huge attempt numbers.
    nominal = min(cap, base * 2 ** min(attempt - 1, 60))
    return timedelta(seconds=nominal / 2 + random() * nominal / 2)


# --- TLP ceilings -------------------------------------------------------------------------------

#: Channels never carry TLP:RED content: it is for named individuals, not for a desk's mailbox.
_HIGHEST_CEILING = Tlp.AMBER_STRICT


def parse_ceiling(value: str) -> Tlp:
    """A channel's TLP ceiling: the most restricted label whose content it may carry."""
    tlp = parse_tlp(value)
    if tlp.rank > _HIGHEST_CEILING.rank:
        raise ValueError(
            f"{tlp.label} content is never sent over a channel; the highest ceiling is "
            f"{_HIGHEST_CEILING.label}"
        )
    return tlp


def carries_content(message_tlp: Tlp, ceiling: Tlp) -> bool:
    """Whether a message marked ``message_tlp`` may go in full over a channel with ``ceiling``;
    otherwise it carries only its TLP label, a reference and a link."""
    return message_tlp.rank <= ceiling.rank


# --- sender addresses ---------------------------------------------------------------------------

_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")


def parse_sender(value: str) -> Address:
    """``Name <addr@host>`` or ``addr@host`` as an e-mail address (ValueError if malformed)."""
    name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if not at or not _LOCAL.match(local or "") or not _DOMAIN.match(domain):
        raise ValueError(f"{value!r} is not an e-mail address like 'VCISC <vcisc@example.org>'")
    return Address(display_name=name, username=local, domain=domain)


# --- webhook networks (SSRF) --------------------------------------------------------------------


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR blocks (``127.0.0.1/32``, ``10.20.0.0/16``, ``::1/128``; a bare address is /32)."""
    found: list[Network] = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network (write e.g. 127.0.0.1/32)") from None
    return tuple(found)


def address_allowed(address: IpAddress, allowed: Iterable[Network]) -> bool:
    """Whether a webhook may connect to ``address``.

    Public unicast addresses are allowed. Loopback, private (RFC 1918, ULA), link-local (cloud
    metadata services live there), carrier-grade NAT, multicast, reserved and unspecified
    addresses are not, unless a network on the allow-list contains them: this is what keeps a
    webhook URL from reaching the server's own networks (server-side request forgery).
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if any(address.version == n.version and address in n for n in allowed):
        return True
    return address.is_global and not address.is_multicast


# --- escalation ---------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (write e.g. 30m, 2h, 1d)")
    return timedelta(seconds=int(match[1]) * _UNIT[match[2]])


class EscalationLevel(StrEnum):
    #: The next point of contact of the responsible organisation who is on call now.
    ROTA = "rota"
    #: The responsible organisation's duty desk.
    DUTY_DESK = "duty-desk"
    #: The secretariat's duty officer.
    SECRETARIAT = "secretariat"


@dataclass(frozen=True)
class EscalationRule:
    """Escalate to ``level`` once a deadline has been breached for ``delay``."""

    level: EscalationLevel
    delay: timedelta

    @property
    def key(self) -> str:
        """Stable name of the rule: an escalation is recorded once per rule and target."""
        return f"{self.level.value}+{int(self.delay.total_seconds())}s"


def parse_policy(text: str) -> tuple[EscalationRule, ...]:
    """``rota+0m,duty-desk+30m,secretariat+1h``: levels and their delay after the breach.

    A level may appear more than once (``rota+0m,rota+15m`` asks the next contact on the rota
    after a quarter of an hour); an empty policy escalates nothing.
    """
    rules: list[EscalationRule] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, plus, delay = part.partition("+")
        try:
            level = EscalationLevel(name.strip())
        except ValueError:
            raise ValueError(
                f"unknown escalation level {name.strip()!r}; levels are "
                f"{', '.join(lv.value for lv in EscalationLevel)}"
            ) from None
        rule = EscalationRule(level, parse_duration(delay) if plus else timedelta(0))
        if rule in rules:
            raise ValueError(f"{part!r} appears twice")
        rules.append(rule)
    return tuple(sorted(rules, key=lambda r: r.delay))


def parse_reminders(text: str) -> tuple[timedelta, ...]:
    """``1h,15m``: reminders this long before a deadline (none if empty)."""
    found = sorted({parse_duration(p) for p in text.split(",") if p.strip()}, reverse=True)
    if any(d <= timedelta(0) for d in found):
        raise ValueError("a reminder comes some time before the deadline, e.g. 30m")
    return tuple(found)
