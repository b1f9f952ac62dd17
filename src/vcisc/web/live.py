"""Live updates for the console: ``GET /events/``, a stream of server-sent events.

The stream polls the database every :data:`POLL_SECONDS` (no new infrastructure) for what the
signed-in user may see:

* new timeline entries (routing, offers, state changes, engagement items) on the requests
  :func:`vcisc.authz.visible_requests` returns, filtered by :func:`vcisc.authz.timeline_visible`;
* deadline breaches: a clock of a visible request (``RequestForAssistance.clocks``) whose due time
  passed since the last poll without its step having happened;
* in-app notifications (:class:`vcisc.notify.models.InAppNotification`) addressed to the user's
  organisation since the stream started, on requests the user may see (event ``notification``;
  live streams only, without ``id:``, so the timeline cursor stays as it is).

Each message carries ``id:`` (the timeline entry's id, so that a reconnecting ``EventSource``
resumes through ``Last-Event-ID``; breaches have none), ``event:`` (one of :data:`EVENT_TYPES`,
the group of the entry's kind, since ``EventSource`` has no wildcard listener) and ``data:``
(JSON: reference, kind, summary, url; ``detail`` only with content access, as in
:func:`vcisc.assistance.api.timeline_out`). A comment keeps idle connections open; the stream ends
after :data:`LIFETIME_SECONDS` and the browser reconnects. ``?once=1`` answers what is pending and
ends (``?since=`` defaults to the start there; a live stream without a cursor starts at the newest
entry).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe

from vcisc import authz
from vcisc.assistance.deadlines import ClockState, Step
from vcisc.assistance.models import RequestForAssistance, TimelineEntry
from vcisc.federation.models import User
from vcisc.notify.models import InAppNotification
from vcisc.web.views import CONTENT_SECURITY_POLICY

__all__ = [
    "EVENT_TYPES",
    "Event",
    "events",
    "pending_breaches",
    "pending_entries",
    "pending_notifications",
]

POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0
#: Milliseconds the browser waits before it reconnects (sent as ``retry:``).
RETRY_MS = 3000
#: Timeline entries examined per poll; the rest follow on the next poll.
BATCH = 100
#: How far back ``?once=1`` reports breaches (a live stream reports those after it started).
BREACH_LOOKBACK = timedelta(minutes=5)

#: The ``event:`` names a page listens for.
EVENT_TYPES = ("routing", "offer", "state", "deadline", "timeline", "notification")

_DUE_FIELDS = {
    Step.TRIAGE: "triage_due",
    Step.FIRST_OFFER: "first_offer_due",
    Step.ACCEPTANCE: "acceptance_due",
}


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    id: UUID | None = None

    def encode(self) -> bytes:
        lines = [] if self.id is None else [f"id: {self.id}"]
        lines += [f"event: {self.type}", f"data: {json.dumps(self.data, separators=(',', ':'))}"]
        return ("\n".join(lines) + "\n\n").encode()


def _event_type(kind: str) -> str:
    if kind == "routed":
        return "routing"
    if kind == "offer" or kind.startswith("offer."):
        return "offer"
    if kind.startswith("state."):
        return "state"
    return "timeline"


def _url(rfa: RequestForAssistance) -> str:
    return reverse("web:request-detail", args=[rfa.pk])


def _fresh_user(user_id: int) -> User | None:
    """The user as stored now: a stream stops when its account is deactivated."""
    return (
        User.objects.select_related("organisation", "organisation__nation")
        .filter(pk=user_id, is_active=True)
        .first()
    )


#: The cursor before every timeline entry (``?since=0`` and ``?once=1`` without a cursor).
START = UUID(int=0)


def latest_entry_id() -> UUID:
    # Not MAX(): PostgreSQL has no max() over uuid; the primary-key index answers this as fast.
    newest = TimelineEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    return newest or START


def pending_entries(user: User, since: UUID) -> tuple[list[Event], UUID]:
    """Timeline entries after ``since`` the user may read, and the new cursor."""
    candidates = list(
        TimelineEntry.objects.filter(
            pk__gt=since, rfa__in=authz.visible_requests(user).values("pk")
        )
        .order_by("pk")
        .values_list("pk", "rfa_id")[:BATCH]
    )
    if not candidates:
        return [], since
    cursor = candidates[-1][0]
    by_rfa: dict[UUID, list[UUID]] = {}
    for entry_id, rfa_id in candidates:
        by_rfa.setdefault(rfa_id, []).append(entry_id)
    found: list[Event] = []
    rfas = authz.visible_requests(user).in_bulk(list(by_rfa))
    for rfa_id, ids in by_rfa.items():
        rfa = rfas.get(rfa_id)
        if rfa is None:
            continue
        # The same rule as the API's timeline: free text only with content access.
        content = authz.rfa_access(user, rfa) is authz.Access.CONTENT
        for entry in authz.timeline_visible(user, rfa).filter(pk__in=ids):
            data: dict[str, Any] = {
                "reference": rfa.reference,
                "kind": entry.kind,
                "summary": entry.summary,
                "url": _url(rfa),
            }
            if content and entry.detail:
                data["detail"] = entry.detail
            found.append(Event(_event_type(entry.kind), data, entry.pk))
    found.sort(key=lambda e: e.id or START)
    return found, cursor


def latest_notification_id() -> int:
    return InAppNotification.objects.aggregate(m=Max("pk"))["m"] or 0


def pending_notifications(user: User, since: int) -> tuple[list[Event], int]:
    """In-app notifications to the user's organisation after ``since``, on requests the user
    may see, and the new cursor. They carry the summary (metadata) and a link only."""
    if user.organisation_id is None:
        return [], since
    rows = list(
        InAppNotification.objects.filter(pk__gt=since, organisation_id=user.organisation_id)
        .order_by("pk")
        .values_list("pk", "rfa_id", "kind", "summary")[:BATCH]
    )
    if not rows:
        return [], since
    refs = dict(
        authz.visible_requests(user)
        .filter(pk__in={r[1] for r in rows if r[1] is not None})
        .values_list("pk", "reference")
    )
    found = [
        Event(
            "notification",
            {
                "reference": refs[rfa_id],
                "kind": kind,
                "summary": summary,
                "url": reverse("web:request-detail", args=[rfa_id]),
            },
        )
        for _, rfa_id, kind, summary in rows
        if rfa_id in refs
    ]
    return found, rows[-1][0]


def _poll_notifications(user_id: int, since: int) -> tuple[list[Event], int]:
    user = _fresh_user(user_id)
    return pending_notifications(user, since) if user else ([], since)


def pending_breaches(user: User, after: datetime, now: datetime) -> list[Event]:
    """Clocks of visible requests that turned breached in (``after``, ``now``]."""
    window = Q()
    for field in _DUE_FIELDS.values():
        window |= Q(**{f"{field}__gt": after, f"{field}__lte": now})
    rfas = authz.visible_requests(user).filter(window, submitted_at__isnull=False)
    found: list[Event] = []
    for rfa in rfas:
        clocks = rfa.clocks(now)
        for step, field in _DUE_FIELDS.items():
            due = getattr(rfa, field)
            clock = clocks.get(step.value)
            if clock is None or not (after < due <= now):
                continue
            if clock["state"] != ClockState.BREACHED.value:
                continue
            label = step.value.replace("-", " ").capitalize()
            data = {
                "reference": rfa.reference,
                "kind": "deadline.breached",
                "step": step.value,
                "summary": f"{label} deadline breached",
                "url": _url(rfa),
            }
            found.append(Event("deadline", data))
    return found


def _cursor(request: HttpRequest) -> UUID | None:
    """The entry id to resume after; ``0`` means from the start, nonsense means no cursor."""
    raw = (request.META.get("HTTP_LAST_EVENT_ID") or request.GET.get("since") or "").strip()
    if not raw:
        return None
    if raw == "0":
        return START
    try:
        return UUID(raw)
    except ValueError:
        return None


def _poll(user_id: int, since: UUID, after: datetime) -> tuple[list[Event], UUID, datetime] | None:
    """One look at the database: events, the new cursor and the breach horizon (None: stop)."""
    user = _fresh_user(user_id)
    if user is None:
        return None
    now = timezone.now()
    entries, cursor = pending_entries(user, since)
    return [*entries, *pending_breaches(user, after, now)], cursor, now


async def _stream(user_id: int, since: UUID | None) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    if since is None:
        since = await sync_to_async(latest_entry_id)()
    notified = await sync_to_async(latest_notification_id)()
    after = timezone.now() - timedelta(milliseconds=RETRY_MS)
    start = last_sent = time.monotonic()
    while time.monotonic() - start < LIFETIME_SECONDS:
        result = await sync_to_async(_poll)(user_id, since, after)
        if result is None:
            return
        found, since, after = result
        notes, notified = await sync_to_async(_poll_notifications)(user_id, notified)
        for event in [*found, *notes]:
            yield event.encode()
            last_sent = time.monotonic()
        if time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
            yield b": heartbeat\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)


def _once(user_id: int, since: UUID) -> list[bytes]:
    now = timezone.now()
    result = _poll(user_id, since, now - BREACH_LOOKBACK)
    found = result[0] if result else []
    return [f"retry: {RETRY_MS}\n\n".encode(), *(e.encode() for e in found)]


def _response(content: Iterator[bytes] | AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    add_never_cache_headers(response)
    return response


@login_required
@require_safe
async def events(request: HttpRequest) -> HttpResponseBase:
    """The signed-in user's live updates (see the module docstring)."""
    user = await request.auser()
    assert isinstance(user, User), "login_required lets only signed-in users through"
    since = _cursor(request)
    if request.GET.get("once") == "1":
        messages = await sync_to_async(_once)(user.pk, since or START)
        return _response(iter(messages))
    return _response(_stream(user.pk, since))
