"""Middleware of the console and API: body size limit and session expiry.

* :class:`BodyLimitMiddleware` answers 413 to a request whose declared body is larger than
  ``VCISC_MAX_BODY_BYTES``, before anything reads it.
* :class:`SessionExpiryMiddleware` ends a signed-in session after ``VCISC_SESSION_IDLE_MINUTES``
  without a request and ``VCISC_SESSION_MAX_HOURS`` after sign-in, whatever happens in between;
  a page then sends the browser to sign in and back (``?next=``), the API answers 401.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase

__all__ = ["AUTH_AT", "SEEN_AT", "BodyLimitMiddleware", "SessionExpiryMiddleware"]

#: Session keys: when the person signed in, and when the session last saw a request.
AUTH_AT = "vcisc_auth_at"
SEEN_AT = "vcisc_seen_at"
#: Record activity at most this often, so that reads do not write the session every time.
_SEEN_RESOLUTION = 60.0

Handler = Callable[[HttpRequest], HttpResponseBase]


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class BodyLimitMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.limit = int(settings.VCISC_MAX_BODY_BYTES)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return _plain(request, 400, "Content-Length is not a number")
        if length > self.limit:
            return _plain(
                request,
                413,
                f"request body of {length} bytes is over the limit of {self.limit} bytes",
            )
        return self.get_response(request)


def _plain(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if _is_api(request):
        return HttpResponse(
            json.dumps({"detail": message}), status=status, content_type="application/json"
        )
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class SessionExpiryMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.idle = settings.VCISC_SESSION_IDLE.total_seconds()
        self.absolute = settings.VCISC_SESSION_MAX.total_seconds()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = request.session
        if request.user.is_authenticated and "_auth_user_id" in session:
            now = time.time()
            auth_at = float(session.setdefault(AUTH_AT, now))
            seen_at = float(session.get(SEEN_AT, now))
            if now - auth_at > self.absolute or now - seen_at > self.idle:
                logout(request)  # flushes the session and makes request.user anonymous
                if not _is_api(request) and request.method in ("GET", "HEAD"):
                    return redirect_to_login(request.get_full_path())
            elif now - seen_at >= _SEEN_RESOLUTION or SEEN_AT not in session:
                session[SEEN_AT] = now
        return self.get_response(request)
