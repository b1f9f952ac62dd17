"""What every API router shares: authentication, the acting user, strict schemas."""

from __future__ import annotations

import threading
from typing import Annotated, Any, NamedTuple, cast

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core
from ninja import Schema
from ninja.errors import AuthenticationError
from ninja.pagination import LimitOffsetPagination
from ninja.security import HttpBearer, django_auth
from pydantic import ConfigDict, Field, field_validator

from vcisc.federation import tokens
from vcisc.federation.models import User
from vcisc.federation.services import TokenRejected, authenticate_token

__all__ = [
    "AUTH",
    "MAX_DB_INT",
    "BearerToken",
    "DbInt",
    "InputSchema",
    "Page",
    "RateLimited",
    "StrictSchema",
    "count_token_call",
    "user_of",
]


#: The rate limiter's group of API token calls.
_GROUP = "vcisc-api-token"


class RateLimited(Exception):
    """A token made more calls than ``VCISC_API_RATE_PER_TOKEN`` allows (answered 429)."""


class BearerToken(HttpBearer):
    """``Authorization: Bearer vcisc_…``; a bad token is refused with the reason (401), a token
    over its rate limit with 429."""

    def authenticate(self, request: HttpRequest, token: str) -> User:
        try:
            user = authenticate_token(token)
        except TokenRejected as exc:
            raise AuthenticationError(401, str(exc)) from None
        parts = tokens.split(token)
        assert parts is not None, "authenticate_token accepts well-formed tokens only"
        if count_token_call(parts[0]):
            raise RateLimited(settings.VCISC_API_RATE_PER_TOKEN)
        return user


#: django-ratelimit's cache keys of the fast counter, by (token, rate, window).
_COUNTER_KEYS: dict[tuple[str, str, int], str] = {}


class _Limits(NamedTuple):
    enabled: bool
    rate: str
    limit: int
    period: int
    cache: str


_LIMITS: _Limits | None = None
#: The counter's cache, per thread: Django's ``caches[alias]`` is per asyncio context, so in the
#: server's event loop (TAXII's fast reads, every request its own task) it would build a new
#: cache object for every call. Calls are synchronous, so the tasks of one thread may share one.
_THREAD_CACHE = threading.local()
_generation = 0


def _limits() -> _Limits:
    """The rate-limit settings, read once (Django's settings object is slow to ask every call);
    read again after a test changes settings."""
    global _LIMITS
    if _LIMITS is None:
        rate = settings.VCISC_API_RATE_PER_TOKEN
        limit, period = ratelimit_core._split_rate(rate)
        enabled = getattr(settings, "RATELIMIT_ENABLE", True)
        alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
        _LIMITS = _Limits(bool(enabled), rate, limit, period, alias)
    return _LIMITS


@receiver(setting_changed)
def _settings_changed(**_: Any) -> None:
    global _LIMITS, _generation
    _LIMITS = None
    _generation += 1


def _counter_cache(alias: str) -> Any:
    held = getattr(_THREAD_CACHE, "held", None)
    if held is None or held[0] != (_generation, alias):
        held = _THREAD_CACHE.held = ((_generation, alias), caches[alias])
    return held[1]


def count_token_call(key_id: str) -> bool:
    """Count one call of the token ``key_id``; True when it is over ``VCISC_API_RATE_PER_TOKEN``.
    One counter per token, whichever route the call took (API, TAXII, TAXII's fast reads, which
    have no request object): django-ratelimit's counter — its cache key for the group, rate,
    token and window — counted in one cache operation instead of ``is_ratelimited``'s six
    settings look-ups and two operations."""
    enabled, rate, limit, period, alias = _limits()
    if not enabled:
        return False
    window = ratelimit_core._get_window(key_id, period)
    cache_key = _COUNTER_KEYS.get((key_id, rate, window))
    if cache_key is None:
        if len(_COUNTER_KEYS) > 10_000:
            _COUNTER_KEYS.clear()
        cache_key = ratelimit_core._make_cache_key(_GROUP, window, rate, key_id, ALL)
        _COUNTER_KEYS[(key_id, rate, window)] = cache_key
    cache = _counter_cache(alias)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # the window's first call
        if cache.add(cache_key, 1, period + ratelimit_core.EXPIRATION_FUDGE):
            count = 1
        else:
            count = cache.incr(cache_key)
    return bool(count > limit)


#: Token first (API clients), then the browser session (with Django's CSRF check).
AUTH: list[Any] = [BearerToken(), django_auth]


def user_of(request: HttpRequest) -> User:
    return cast(User, request.auth)  # type: ignore[attr-defined]


#: The largest id a 64-bit column holds; a larger one is absent, not a database error (SQLite
#: raises OverflowError on it, even where the lookup is harmless).
MAX_DB_INT = 2**63 - 1
#: An id compared with a database column: a number no 64-bit column can hold is a 422.
DbInt = Annotated[int, Field(ge=-(2**63), le=MAX_DB_INT)]


def _no_nul(value: Any) -> Any:
    """Text with a NUL character is refused (422), in strings and in lists of strings.

    PostgreSQL cannot store U+0000 in text and would fail the write with a 500; SQLite would
    store it and truncate it in some clients. No field of VCISC has a use for it.
    """
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(item, str) and "\x00" in item for item in items):
        raise ValueError("text must not contain NUL characters (U+0000)")
    return value


class InputSchema(Schema):
    """Every input the API reads (bodies and query strings): no NUL characters in text."""

    @field_validator("*", mode="before")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class StrictSchema(InputSchema):
    """Input schemas reject unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(LimitOffsetPagination):
    """``?limit=&offset=`` on directory lists; the answer is ``{"items": [...], "count": N}``."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=500)
        offset: int = Field(0, ge=0, le=MAX_DB_INT)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_limit=500, **kwargs)
