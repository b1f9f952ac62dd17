"""A MISP-format feed of what the caller may read, for a nation's own MISP to pull.

``/feeds/misp/manifest.json``, ``/feeds/misp/<uuid>.json`` and ``/feeds/misp/hashes.csv``: the
layout MISP's feed fetcher reads (a feed of type "MISP Feed", with the caller's API token in
the feed's *headers*: ``Authorization: Bearer vcisc_…``). There is one event per engagement
whose content the caller may read, holding exactly what the API's MISP export gives that caller
(``GET /api/v1/engagements/{id}/export/misp``): TLP:RED indicators stay out, a TLP:RED
engagement is not in the feed at all, and the distribution is never wider than the TLP allows.
An event the caller may not read is a 404 worded as for a missing one.

A console session may read the feed too (GET only, so no CSRF concern).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from ninja.errors import AuthenticationError

from vcisc import authz
from vcisc.engagements.exports import misp_event, misp_event_uuid
from vcisc.engagements.models import Engagement
from vcisc.errors import Conflict
from vcisc.federation.models import Role, User
from vcisc.http import BearerToken, RateLimited

__all__ = ["event", "hashes", "manifest"]

_BEARER = BearerToken()
_EVENT_NAME = re.compile(r"^[0-9a-fA-F-]{36}$")


def _user(request: HttpRequest) -> User | HttpResponse:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorised("use Authorization: Bearer <token>")
        try:
            return _BEARER.authenticate(request, token.strip())
        except AuthenticationError as exc:
            return _unauthorised(str(exc.message))
        except RateLimited as exc:
            response = JsonResponse({"detail": f"rate limit exceeded ({exc})"}, status=429)
            response["Retry-After"] = "60"
            return response
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return user
    return _unauthorised("an API token is needed (Bearer)")


def _unauthorised(detail: str) -> HttpResponse:
    response = JsonResponse({"detail": detail}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="vcisc-feed"'
    return response


def _readable(user: User) -> list[Engagement]:
    """The engagements whose MISP event the user may export: those the API's MISP export
    serves (content access, and the liaison or analyst role)."""
    if authz.is_observer_only(user):
        return []
    if not (user.has_role(Role.LIAISON) or user.has_role(Role.ANALYST)):
        return []
    return [
        e
        for e in authz.visible_engagements(user).order_by("opened_at", "pk")
        if authz.engagement_access(user, e) is authz.Access.CONTENT
    ]


def _events(user: User) -> Iterator[dict[str, Any]]:
    """The caller's events, those with at least one attribute (a RED engagement has none)."""
    for eng in _readable(user):
        try:
            found = misp_event(user, eng.pk)
        except Conflict:  # TLP:RED: no MISP distribution is narrow enough
            continue
        if found["Event"]["Attribute"]:
            yield found


def _json(data: Any) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), content_type="application/json")


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if isinstance(user, HttpResponse):
        return user
    listed = {}
    for found in _events(user):
        ev = found["Event"]
        listed[ev["uuid"]] = {
            "Orgc": ev["Orgc"],
            "Tag": ev["Tag"],
            "info": ev["info"],
            "date": ev["date"],
            "analysis": int(ev["analysis"]),
            "threat_level_id": int(ev["threat_level_id"]),
            "timestamp": int(ev["timestamp"]),
        }
    return _json(listed)


@require_GET
def event(request: HttpRequest, event_uuid: str) -> HttpResponse:
    user = _user(request)
    if isinstance(user, HttpResponse):
        return user
    missing = JsonResponse({"detail": f"no event {event_uuid}.json in this feed"}, status=404)
    if not _EVENT_NAME.match(event_uuid):
        return missing
    wanted = UUID(event_uuid) if _valid(event_uuid) else None
    for eng in _readable(user):
        if misp_event_uuid(eng.pk) == wanted:
            try:
                found = misp_event(user, eng.pk)
            except Conflict:
                return missing
            return _json(found) if found["Event"]["Attribute"] else missing
    return missing


def _valid(name: str) -> bool:
    try:
        UUID(name)
    except ValueError:
        return False
    return True


@require_GET
def hashes(request: HttpRequest) -> HttpResponse:
    """``md5(value),event uuid`` per attribute, as MISP feeds publish for quick look-ups."""
    user = _user(request)
    if isinstance(user, HttpResponse):
        return user
    lines = []
    for found in _events(user):
        ev = found["Event"]
        for attribute in ev["Attribute"]:
            digest = hashlib.md5(str(attribute["value"]).encode(), usedforsecurity=False)
            lines.append(f"{digest.hexdigest()},{ev['uuid']}\n")
    return HttpResponse("".join(lines), content_type="text/csv")
