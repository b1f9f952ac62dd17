"""The federation feeds page: what each feed holds and when it was last read; coordinators and
operators pull a feed from here. Observers have no such page (403, as in the API)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from vcisc.errors import DomainError, Forbidden, NotFound
from vcisc.feeds import services
from vcisc.sharing.reports import ImportMode
from vcisc.web.views import console_page, request_user

__all__ = ["feed_pull", "feeds"]


@console_page
@login_required
@require_safe
def feeds(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    try:
        listed = list(services.visible_feeds(user))
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None
    return render(
        request,
        "web/feeds.html",
        {
            "nav": "feeds",
            "page_tlp": None,
            "feeds": listed,
            "manages": services.may_manage_feeds(user),
        },
    )


@console_page
@login_required
@require_POST
def feed_pull(request: HttpRequest, feed_id: UUID) -> HttpResponse:
    """Pull one feed now (skipping and reporting what is invalid); the outcome as a message."""
    user = request_user(request)
    try:
        result = services.pull_feed(user, feed_id, mode=ImportMode.SKIP_INVALID)
    except NotFound:
        raise Http404("feed not found") from None
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"{result.feed.name}: {result.events} event(s), {result.indicators} indicator(s), "
            f"{result.matches} new match(es) with engagements, "
            f"{len(result.report.skipped)} problem(s) skipped.",
        )
    return redirect("web:feeds")
