"""Media types (TAXII 2.1 §1.6.8), filters (§3.4), pagination (§3.5) and timestamps.

Pure code over request headers and query strings: no database.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime

from vcisc.sharing.taxii.errors import MEDIA_TYPE, TaxiiError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MEDIA_TYPE",
    "Filters",
    "check_accept",
    "check_content_type",
    "json_response",
    "parse_filters",
    "parse_timestamp",
    "timestamp",
]

#: Objects per page when the client sets no ``limit``, and the most a page holds (§3.5.1).
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
_TAXII = "application/taxii+json"


def _media(value: str) -> tuple[str, dict[str, str]]:
    kind, *params = (p.strip() for p in value.split(";"))
    parsed = {}
    for p in params:
        name, _, v = p.partition("=")
        parsed[name.strip().lower()] = v.strip().strip('"')
    return kind.lower(), parsed


def check_accept(accept: str | None) -> None:
    """406 unless the Accept header admits ``application/taxii+json;version=2.1`` (§1.6.8.1).

    No Accept header accepts anything (RFC 9110 §12.5.1); ``*/*`` and ``application/*`` too.
    A ``version`` other than 2.1, or another media type, is refused.
    """
    if accept is None or not accept.strip():
        return
    for item in accept.split(","):
        kind, params = _media(item)
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if kind in ("*/*", "application/*"):
            return
        if kind == _TAXII and params.get("version", "2.1") == "2.1":
            return
    raise TaxiiError(
        406,
        "Not acceptable",
        f"this server answers with {MEDIA_TYPE}; the Accept header does not admit it",
    )


def check_content_type(content_type: str | None) -> None:
    """415 unless the body is ``application/taxii+json;version=2.1`` (§1.6.8.1, §5.4)."""
    kind, params = _media(content_type or "")
    if kind != _TAXII or params.get("version", "2.1") != "2.1":
        raise TaxiiError(
            415, "Unsupported media type", f"send the objects as {MEDIA_TYPE} (an envelope)"
        )


def json_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def timestamp(moment: datetime) -> str:
    """A TAXII/STIX timestamp in UTC with microseconds (§3.2: the precision of date_added)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str, name: str) -> datetime:
    """An RFC 3339 timestamp with a time zone, else a 400 naming the parameter."""
    moment = parse_datetime(value.strip())
    if moment is None or moment.tzinfo is None:
        raise TaxiiError(
            400,
            f"Bad {name}",
            f"{name} must be a timestamp such as 2026-01-01T00:00:00.000Z (RFC 3339, UTC)",
        )
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """The filters of §3.4.1 on one request; empty tuples mean "no filter"."""

    added_after: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after: datetime | None = None  # from ``next``
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    #: ``last`` (the default), ``first``, ``all``, or timestamps, any combination (§3.4.2).
    versions: tuple[str, ...] = ("last",)
    version_times: tuple[datetime, ...] = ()
    spec_versions: tuple[str, ...] = ()


def encode_next(after: datetime) -> str:
    """``next`` (§3.5.2) is opaque to clients: here the date added of the page's last row."""
    return base64.urlsafe_b64encode(timestamp(after).encode()).decode().rstrip("=")


def _decode_next(token: str) -> datetime:
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        moment = parse_datetime(text)
    except (ValueError, UnicodeError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise TaxiiError(400, "Bad next", "next is not a value this server handed out")
    return moment


def _list(query: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = query.get(name)
    if raw is None:
        return ()
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if not values:
        raise TaxiiError(400, f"Bad {name}", f"{name} needs at least one value")
    return values


_KNOWN = {
    "added_after",
    "limit",
    "next",
    "match[id]",
    "match[type]",
    "match[version]",
    "match[spec_version]",
}


def parse_filters(query: Mapping[str, str], *, allowed: frozenset[str] | None = None) -> Filters:
    """The filters of one request (§3.4.1); a malformed value is a 400 naming the parameter.

    Unknown ``match[…]`` fields are refused (400): a client filtering on a field this server
    does not support would otherwise silently get everything.
    """
    for name in query:
        if name.startswith("match[") and name not in _KNOWN:
            raise TaxiiError(400, "Unsupported filter", f"{name} is not supported here")
        if allowed is not None and name in _KNOWN and name not in allowed:
            raise TaxiiError(400, "Unsupported filter", f"{name} is not supported here")
    added_after = query.get("added_after")
    limit_raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if limit_raw is not None:
        if not limit_raw.strip().isdigit() or int(limit_raw) < 1:
            raise TaxiiError(400, "Bad limit", "limit must be a positive whole number")
        limit = min(int(limit_raw), MAX_LIMIT)
    token = query.get("next")
    versions = _list(query, "match[version]") or ("last",)
    times = []
    for v in versions:
        if v not in ("last", "first", "all"):
            times.append(parse_timestamp(v, "match[version]"))
    return Filters(
        added_after=parse_timestamp(added_after, "added_after") if added_after else None,
        limit=limit,
        after=_decode_next(token) if token else None,
        ids=_list(query, "match[id]"),
        types=_list(query, "match[type]"),
        versions=versions,
        version_times=tuple(times),
        spec_versions=_list(query, "match[spec_version]"),
    )
