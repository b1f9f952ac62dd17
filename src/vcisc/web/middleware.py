"""Middleware of the console and API: body size limit, session expiry, and what the server's
access log may hold.

* :class:`BodyLimit` (ASGI, in front of Django; :mod:`vcisc.asgi`) answers 413 to a request
  whose body is larger than ``VCISC_MAX_BODY_BYTES``: at once when its ``Content-Length`` says
  so, and as soon as the bytes received pass the limit when it has no length
  (``Transfer-Encoding: chunked``). Django never sees more than the limit.
* :class:`BodyLimitMiddleware` keeps the same limit on the declared length inside Django, for
  the test client and any server that is not ASGI.
* :class:`SessionExpiryMiddleware` ends a signed-in session after ``VCISC_SESSION_IDLE_MINUTES``
  without a request and ``VCISC_SESSION_MAX_HOURS`` after sign-in, whatever happens in between;
  a page then sends the browser to sign in and back (``?next=``), the API answers 401.
* :class:`SecretRedaction` is a logging filter that takes credentials out of a log record's
  text before any handler sees it: query-string values such as an OpenID Connect ``code`` or
  ``state`` in the access log, the secret part of a VCISC API token, Authlib's PKCE verifier;
  :class:`TemplateLookupWithoutContext` keeps Django's template context out of its DEBUG records.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseBase

__all__ = [
    "AUTH_AT",
    "REDACTED",
    "SEEN_AT",
    "SERVER_LOGGERS",
    "BodyLimit",
    "BodyLimitMiddleware",
    "SecretRedaction",
    "SessionExpiryMiddleware",
    "TemplateLookupWithoutContext",
    "install_redaction",
    "redact",
]

#: Session keys: when the person signed in, and when the session last saw a request.
AUTH_AT = "vcisc_auth_at"
SEEN_AT = "vcisc_seen_at"
#: Record activity at most this often, so that reads do not write the session every time.
_SEEN_RESOLUTION = 60.0

Handler = Callable[[HttpRequest], HttpResponseBase]


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _too_large(limit: int, length: int | None = None) -> str:
    if length is None:
        return f"request body is over the limit of {limit} bytes"
    return f"request body of {length} bytes is over the limit of {limit} bytes"


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
            return _plain(request, 413, _too_large(self.limit, length))
        return self.get_response(request)


def _plain(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if _is_api(request):
        return HttpResponse(
            json.dumps({"detail": message}), status=status, content_type="application/json"
        )
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


# --- the ASGI layer in front of Django ----------------------------------------------------------

# As Django's ASGIHandler declares them.
Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # BodyLimitMiddleware answers 400
    return None


class BodyLimit:
    """ASGI middleware: no request body larger than ``VCISC_MAX_BODY_BYTES`` reaches the app.

    Django's ASGI handler reads the whole body (into memory, then a temporary file) before any
    of its middleware runs, so the limit is kept here, in front of it. A declared
    ``Content-Length`` over the limit is answered 413 before a byte of the body is read; a body
    without one (``Transfer-Encoding: chunked``) is counted as it arrives, and the message that
    passes the limit is never handed on: the app is told the client went away
    (``http.disconnect``, on which Django drops what it read, sends nothing and changes
    nothing), and this answers 413. The server discards the rest of the body as it arrives and
    keeps the connection, so the client reads the answer once it has sent what it had.
    """

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = int(settings.VCISC_MAX_BODY_BYTES)  # read per request: tests override it
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _answer_too_large(scope, send, _too_large(limit, declared))
            return
        received = 0
        over = started = False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)
        if over and not started:
            await _answer_too_large(scope, send, _too_large(limit))


async def _answer_too_large(scope: Scope, send: Send, message: str) -> None:
    if str(scope.get("path", "")).startswith("/api/"):
        body, kind = json.dumps({"detail": message}).encode(), b"application/json"
    else:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- credentials out of log records -------------------------------------------------------------

REDACTED = "[redacted]"
#: Query-string parameters whose values are credentials or one-time secrets (RFC 6749 §4.1.2
#: ``code`` and ``state``, RFC 7636 ``code_verifier``, OIDC ``id_token_hint``, and the names
#: clients use by mistake for a bearer token or a password).
SENSITIVE_PARAMETERS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "client_secret",
        "code",
        "code_verifier",
        "csrfmiddlewaretoken",
        "csrftoken",
        "id_token",
        "id_token_hint",
        "key",
        "password",
        "refresh_token",
        "secret",
        "session_state",
        "sessionid",
        "state",
        "token",
    }
)
_QUERY_PAIR = re.compile(r"(?<=[?&;])([^=&;?#\s\"]+)=([^&;#\s\"]*)")
#: A VCISC API token (vcisc.federation.tokens): the key id is public, the secret is not.
_API_TOKEN = re.compile(r"\b(vcisc_[0-9a-f]+_)[A-Za-z0-9_-]+")
#: Authlib logs the PKCE verifier it makes at DEBUG (base_client.sync_app).
_VERIFIER = re.compile(r"(code_verifier\W{1,4})[A-Za-z0-9._~-]+")


def redact(text: str) -> str:
    """``text`` without the credentials a log line may carry (see :class:`SecretRedaction`)."""

    def pair(match: re.Match[str]) -> str:
        name = unquote_plus(match[1]).lower()
        return f"{match[1]}={REDACTED}" if name in SENSITIVE_PARAMETERS else match[0]

    if "=" in text:
        text = _QUERY_PAIR.sub(pair, text)
    if "vcisc_" in text:
        text = _API_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    if "code_verifier" in text:
        text = _VERIFIER.sub(rf"\g<1>{REDACTED}", text)
    return text


class SecretRedaction(logging.Filter):
    """A logging filter that rewrites a record's text with :func:`redact` (never drops one).

    Attached to the loggers that write request URLs or secrets of their own (uvicorn's, see
    :data:`SERVER_LOGGERS`; Authlib's and urllib3's, in ``LOGGING``), it acts before any handler,
    whatever the handlers are: uvicorn's access log writes each request's path with its query
    string, where an identity provider's answer carries its one-time ``code``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            return True
        cleaned = redact(text)
        if cleaned != text:
            record.msg, record.args = cleaned, ()
        return True


class TemplateLookupWithoutContext(logging.Filter):
    """``django.template`` logs every failed variable lookup at DEBUG with its traceback, whose
    exception message is the whole template context: CSRF tokens, the signed-in person, the
    content of the page. The record keeps its message (variable and template) and loses the
    traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Exception while resolving variable"):
            record.exc_info, record.exc_text = None, None
        return True


#: The server's loggers, configured by uvicorn before it imports the application: they get a
#: :class:`SecretRedaction` filter from :func:`install_redaction`. (Loggers nobody configures
#: before Django get theirs from ``LOGGING`` in :mod:`vcisc.settings`.)
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def install_redaction() -> None:
    """Attach :class:`SecretRedaction` once to each of :data:`SERVER_LOGGERS` (a logger's own
    filters act on the records made on it, before propagation and whatever the handlers)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretRedaction) for f in logger.filters):
            logger.addFilter(SecretRedaction())


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
                    # Imported here: the logging configuration imports this module's filters
                    # before Django's apps (and so its auth forms) are ready.
                    from django.contrib.auth.views import redirect_to_login

                    return redirect_to_login(request.get_full_path())
            elif now - seen_at >= _SEEN_RESOLUTION or SEEN_AT not in session:
                session[SEEN_AT] = now
        return self.get_response(request)
