"""On-call hours of a point of contact: parse a human-written rota and ask "is someone on now?".

The rota is written as ``24/7`` or as windows separated by ``;``, each ``DAYS HH:MM-HH:MM`` where
DAYS is a day (``mon``), a range (``mon-fri``) or a list (``sat,sun``), in the contact's own time
zone.  A window whose end is before its start runs over midnight (``fri 22:00-06:00``).
Pure code, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["OnCall", "OnCallError", "Window", "on_call_at", "parse_on_call", "parse_timezone"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(?P<days>[a-z,\-]+)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")


class OnCallError(ValueError):
    """The rota text does not parse; the message says where."""


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def covers(self, weekday: int, at: time) -> bool:
        if self.start <= self.end:
            return weekday in self.days and self.start <= at < self.end
        # Over midnight: the evening part belongs to the named day, the morning to the next.
        return (weekday in self.days and at >= self.start) or (
            (weekday - 1) % 7 in self.days and at < self.end
        )


@dataclass(frozen=True)
class OnCall:
    always: bool
    windows: tuple[Window, ...]

    def covers(self, now: datetime, zone: ZoneInfo) -> bool:
        """Whether the rota covers the aware instant ``now``, read in ``zone``."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if self.always:
            return True
        local = now.astimezone(zone)
        return any(w.covers(local.weekday(), local.time()) for w in self.windows)


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in _DAYS or last not in _DAYS:
                raise OnCallError(f"unknown day in {part!r}; days are {', '.join(_DAYS)}")
            a, b = _DAYS.index(first), _DAYS.index(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            if part not in _DAYS:
                raise OnCallError(f"unknown day {part!r}; days are {', '.join(_DAYS)}")
            days.add(_DAYS.index(part))
    return frozenset(days)


def _parse_time(text: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(23, 59, 59, 999999)
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise OnCallError(f"{text!r} is not a time of day (HH:MM)")
    return time(hours, minutes)


def parse_on_call(spec: str) -> OnCall:
    """Parse ``24/7`` or ``mon-fri 08:00-18:00; sat 09:00-12:00``."""
    text = spec.strip().lower()
    if text in ("24/7", "always"):
        return OnCall(True, ())
    if not text:
        return OnCall(False, ())
    windows = []
    for chunk in text.split(";"):
        chunk = " ".join(chunk.split()).replace(", ", ",")
        if not chunk:
            continue
        match = _WINDOW.match(chunk)
        if not match:
            raise OnCallError(
                f"cannot read {chunk!r}: write '24/7' or windows like 'mon-fri 08:00-18:00'"
            )
        start, end = _parse_time(match["start"]), _parse_time(match["end"])
        if start == end:
            raise OnCallError(f"{chunk!r}: a window cannot start and end at the same time")
        windows.append(Window(_parse_days(match["days"]), start, end))
    return OnCall(False, tuple(windows))


def on_call_at(spec: str, zone: str, at: datetime) -> bool:
    """Whether the rota ``spec`` in time zone ``zone`` covers ``at``. Rotas are validated when
    written; an old one that no longer parses counts as off call rather than failing a caller."""
    try:
        return parse_on_call(spec).covers(at, parse_timezone(zone))
    except OnCallError:
        return False


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a folder such as "Europe" is OSError
        raise OnCallError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Tallinn)"
        ) from None
