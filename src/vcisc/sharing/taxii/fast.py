"""TAXII reads that repeat, answered without Django's request cycle while nothing has changed.

A TAXII client polls: the same token reads the same collection again and again (a full
paginated read, ``match[id]`` look-ups). Django's path decides everything anew on every request
— the token, the user's organisation and roles, the engagement's participation and the rows'
TLP filter, whether the collection needs materialising — in nine queries, and spends as long
again in its middleware: about 10 ms for a one-object answer. :class:`FastReads`, in front of
Django in :mod:`vcisc.asgi`, answers ``GET …/collections/{id}/objects/`` with a bearer token
from those same decisions, made by the same functions (:func:`vcisc.federation.services.
check_token`, :func:`vcisc.sharing.taxii.scopes.get_collection`,
:func:`vcisc.sharing.taxii.store.materialise`), **kept only while the database is unchanged**:

* Every request first reads the database's *change marker* — SQLite's ``PRAGMA data_version``
  (which moves when any other connection commits) and the connection's own
  ``total_changes``; PostgreSQL's ``pg_current_snapshot()`` (which moves when any transaction
  of the cluster ends) and, inside a transaction, its own row changes. A marker other than the
  one the cached decisions were made under empties the cache. A revoked token, a deactivated
  account, a participant removed, a member demoted, a new item to materialise: each is a commit,
  so the next request decides again. The decisions are read under the marker read before
  them, so a commit that lands while they are being made leaves them stale-marked, never
  stale-trusted.
* What depends on time rather than on the database is checked on every request: the token's
  expiry, and its ``last_used_at`` stamp (older than a minute: decided anew, which stamps it).
  The token's rate limit counts every request, as on the API.
* Only successful reads are answered here. Anything else — no bearer token, another API root,
  an Accept header or a filter that Django's path refuses, a token refused, a collection the
  user may not read, a rate limit reached, any error — goes to Django, whose answer (401, 404,
  406, 429, …) is therefore the only one there is.

The rows' query is Django's own (:func:`vcisc.sharing.taxii.store.rows`), compiled once per
collection, filter and shape of the request with placeholder values and run with the
request's values in their places. The response carries the headers Django's middleware would
add (a test holds the two answers equal, byte for byte). Look-ups answered from the cache run
in the server's event loop on a connection of this layer's own; deciding, and large pages, run
in one worker thread on its Django connection (:class:`FastReads`). Any write anywhere in the
database empties the cache, so under a steady stream of writes most reads decide again: no
slower than Django's path, no faster.

``VCISC_TAXII_FAST_READS=false`` turns the fast path off (every request goes to Django).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from vcisc.federation import tokens
from vcisc.federation.services import TokenRejected, check_token
from vcisc.http import count_token_call
from vcisc.sharing.taxii import store
from vcisc.sharing.taxii.endpoint import API_ROOT
from vcisc.sharing.taxii.errors import TaxiiError
from vcisc.sharing.taxii.media import MEDIA_TYPE, Filters, check_accept, parse_filters
from vcisc.sharing.taxii.objects import objects_body
from vcisc.sharing.taxii.scopes import Collection, get_collection

__all__ = ["Answer", "FastReads", "answer", "reset", "stats"]

log = logging.getLogger(__name__)

_PATH = re.compile(r"/taxii2/(?P<root>[^/]+)/collections/(?P<cid>[^/]+)/objects/")
#: authenticate_token stamps last_used_at when it is older than this; so does the fast path.
_STAMP_EVERY = timedelta(minutes=1)
#: Compiled queries kept (per collection, row filter and request shape); more: all forgotten.
_MAX_QUERIES = 512
_KEYWORDS = ("last", "first", "all")
#: At most this many ids, or rows a page: answered in the event loop on a cache hit.
_SMALL = 100
#: Django's SQLite cursor's placeholder rewrite (django.db.backends.sqlite3.base).
_QMARK = re.compile(r"(?<!%)%s")

# The ASGI types of vcisc.web.middleware (Django's ASGIHandler's own).
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    """A successful read: what Django's path would have answered."""

    body: bytes
    headers: dict[str, str]
    status: int = 200


@dataclass
class _Token:
    user: Any
    key_id: str
    expires_at: datetime
    last_used_at: datetime | None


class _Readable(NamedTuple):
    """A collection the user may read, and its row filter as text (part of the keys of its
    compiled queries: written once, where the collection is decided)."""

    collection: Collection
    filter_text: str


@dataclass
class _Cache:
    """The decisions made under one change marker. A new marker gets a new cache object, so
    that decisions still being made for an older one land in the old object, never the new."""

    marker: tuple[Any, ...] | None = None
    tokens: dict[bytes, _Token] = field(default_factory=dict)
    collections: dict[tuple[Any, str], _Readable] = field(default_factory=dict)


_CACHE = _Cache()
#: Compiled row queries: (collection, row filter, request shape) → query (None: not compiled
#: with placeholders; the ORM compiles each such request). They depend on no decision.
_QUERIES: dict[tuple[Any, ...], _Query | None] = {}
_STATS = {"hits": 0, "decided": 0}


def _current(marker: tuple[Any, ...]) -> _Cache:
    global _CACHE
    if _CACHE.marker != marker:
        _CACHE = _Cache(marker)
    return _CACHE


def reset() -> None:
    """Forget every decision and compiled query (tests; the cache is per process)."""
    global _CACHE
    _CACHE = _Cache()
    _QUERIES.clear()


def stats() -> dict[str, int]:
    """Reads answered from cached decisions (hits) and after deciding anew, in this process."""
    return dict(_STATS)


# --- the change marker -------------------------------------------------------------------------

_PG_MARKER = (
    "SELECT pg_current_snapshot()::text, pg_current_xact_id_if_assigned()::text, "
    "CASE WHEN pg_current_xact_id_if_assigned() IS NULL THEN 0 ELSE (SELECT "
    "coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_all_tables) END"
)


def _marker(raw: Any, vendor: str) -> tuple[Any, ...]:
    """Equal to an earlier marker read on the same connection ``raw`` only if nothing was
    committed (by any connection), nor written by this one, in between. The connection itself
    is part of the marker (SQLite's ``data_version`` is counted per connection), and held by
    it, so that no later connection can take its identity."""
    if vendor == "sqlite":
        return _marker_of(raw, vendor, raw.execute("PRAGMA data_version").fetchone())
    if vendor == "postgresql":
        with _pg_cursor(raw) as cur:
            cur.execute(_PG_MARKER, prepare=True)
            return _marker_of(raw, vendor, cur.fetchone())
    raise NotImplementedError(vendor)  # no other database is supported


def _marker_of(raw: Any, vendor: str, row: Sequence[Any]) -> tuple[Any, ...]:
    """The marker from a row starting with the marker statement's columns (SQLite's
    ``data_version``; PostgreSQL's three), read on ``raw``."""
    if vendor == "sqlite":
        return (raw, row[0], raw.total_changes)
    return (raw, *row[:3])


# --- compiled row queries ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    sql: str
    params: tuple[Any, ...]
    #: (position in params, which request value: ("ids", 0), ("added_after",), …)
    slots: tuple[tuple[int, tuple[Any, ...]], ...]


def _shape(f: Filters) -> tuple[Any, ...]:
    keywords = tuple(v for v in _KEYWORDS if v in f.versions)
    return (
        len(f.ids),
        len(f.types),
        len(f.spec_versions),
        keywords,
        len(f.version_times),
        f.added_after is None,
        f.after is None,
        f.limit,
    )


def _sentinel_filters(f: Filters) -> tuple[Filters, dict[Any, tuple[Any, ...]]]:
    """``f`` with every value replaced by a distinct placeholder, and what each stands for."""
    stand_in: dict[Any, tuple[Any, ...]] = {}
    adapt = connection.ops.adapt_datetimefield_value
    moment = datetime(1000, 1, 1, tzinfo=UTC)

    def texts(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(f"\x00vcisc-fast:{name}:{i}" for i in range(len(values)))
        stand_in.update({v: (name, i) for i, v in enumerate(out)})
        return out

    def times(name: str, count: int) -> tuple[datetime, ...]:
        nonlocal moment
        out = []
        for i in range(count):
            moment += timedelta(seconds=1)
            out.append(moment)
            stand_in[adapt(moment)] = (name, i)
        return tuple(out)

    after = times("after", 1)[0] if f.after is not None else None
    added_after = times("added_after", 1)[0] if f.added_after is not None else None
    keywords = tuple(v for v in _KEYWORDS if v in f.versions)
    version_times = times("version_times", len(f.version_times))
    sentinel = replace(
        f,
        ids=texts("ids", f.ids),
        types=texts("types", f.types),
        spec_versions=texts("spec_versions", f.spec_versions),
        versions=keywords + tuple(f"t{i}" for i in range(len(version_times))),
        version_times=version_times,
        after=after,
        added_after=added_after,
    )
    return sentinel, stand_in


def _compile(col: Collection, f: Filters) -> _Query | None:
    """Django's query for this request's shape, or None if its placeholders cannot be found
    one for one (then every request of the shape is compiled by the ORM: slower, the same)."""
    sentinel, stand_in = _sentinel_filters(f)
    sql, params = store.text_page_sql(store.rows(col, sentinel), f.limit)
    slots = []
    for position, value in enumerate(params):
        try:
            which = stand_in.get(value)
        except TypeError:  # an unhashable parameter: not one of ours
            which = None
        if which is not None:
            slots.append((position, which))
    if sorted(w for _, w in slots) != sorted(stand_in.values()):
        return None
    return _Query(*_raw(sql, params), tuple(slots))


def _raw(sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """Django's query for the driver itself: SQLite's ``?`` placeholders (what Django's SQLite
    cursor does to every query it runs; psycopg takes ``%s``), enum values as their values."""
    if connection.vendor == "sqlite":
        sql = _QMARK.sub("?", sql).replace("%%", "%")
    return sql, tuple(p.value if isinstance(p, Enum) else p for p in params)


def _values(f: Filters, adapt: Callable[[Any], Any]) -> dict[tuple[Any, ...], Any]:
    out: dict[tuple[Any, ...], Any] = {}
    for name in ("ids", "types", "spec_versions"):
        out.update({(name, i): v for i, v in enumerate(getattr(f, name))})
    out.update({("version_times", i): adapt(v) for i, v in enumerate(f.version_times)})
    if f.after is not None:
        out[("after", 0)] = adapt(f.after)
    if f.added_after is not None:
        out[("added_after", 0)] = adapt(f.added_after)
    return out


def _key(readable: _Readable, f: Filters) -> tuple[Any, ...]:
    return (readable.collection.id, readable.filter_text, _shape(f))


def _bind(compiled: _Query, f: Filters, adapt: Callable[[Any], Any]) -> tuple[Any, ...]:
    params = list(compiled.params)
    values = _values(f, adapt)
    for position, which in compiled.slots:
        params[position] = values[which]
    return tuple(params)


def _query(readable: _Readable, f: Filters) -> tuple[str, tuple[Any, ...]]:
    """The request's query and parameters, compiling it for its shape if need be (Django's
    connection: in the thread that decides)."""
    col = readable.collection
    key = _key(readable, f)
    if key not in _QUERIES:
        if len(_QUERIES) >= _MAX_QUERIES:
            _QUERIES.clear()
        _QUERIES[key] = _compile(col, f)
    compiled = _QUERIES[key]
    if compiled is None:
        return _raw(*store.text_page_sql(store.rows(col, f), f.limit))
    return compiled.sql, _bind(compiled, f, connection.ops.adapt_datetimefield_value)


# --- one read ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    collection: str
    token: str
    filters: Filters
    secure: bool

    @property
    def small(self) -> bool:
        """An answer of a few rows (look-ups by id, short pages): answered without leaving
        the server's event loop when its decisions are cached."""
        return 0 < len(self.filters.ids) <= _SMALL or self.filters.limit <= _SMALL


def _parse(path: str, query: str, headers: dict[str, str], secure: bool) -> _Request | None:
    """The request if it is a TAXII object read the fast path may answer (no database)."""
    match = _PATH.fullmatch(path)
    if match is None or match["root"] != API_ROOT:
        return None
    conf = _conf()
    if conf.ssl_redirect and not secure:
        return None
    if not _host_allowed(headers.get("host", ""), conf.allowed_hosts):
        return None
    scheme, _, text = headers.get("authorization", "").partition(" ")
    text = text.strip()
    if scheme.lower() != "bearer" or not text:
        return None
    try:
        _accepted(headers.get("accept"))
        # QueryDict's reading (the last of repeated values), without building one.
        f = parse_filters(
            dict(parse_qsl(query, keep_blank_values=True, max_num_fields=conf.max_fields))
        )
    except (TaxiiError, ValueError):  # ValueError: more fields than Django accepts
        return None
    return _Request(match["cid"], text, f, secure)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _fresh(entry: _Token | None, now: datetime) -> bool:
    """The cached token is still good at ``now``: not expired, its use stamped recently
    (else it is checked anew, which stamps it, as every API call does)."""
    return (
        entry is not None
        and entry.expires_at > now
        and entry.last_used_at is not None
        and now - entry.last_used_at <= _STAMP_EVERY
    )


def _respond(found: list[tuple[str, str]], req: _Request) -> Answer:
    body, page_headers = objects_body(store.text_rows_page(found, req.filters.limit))
    headers = {"Content-Type": MEDIA_TYPE, **page_headers, **_conf().headers[req.secure]}
    headers["Content-Length"] = str(len(body))
    return Answer(body, headers)


def _pg_cursor(raw: Any) -> Any:
    """A psycopg cursor binding parameters on the server, so that the fast path's few
    statements are prepared once per connection (Django's cursors bind on the client)."""
    import psycopg

    return psycopg.Cursor(raw)


def _fetch(raw: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[str, str]]:
    if isinstance(raw, sqlite3.Connection):
        return list(raw.execute(sql, params).fetchall())
    with _pg_cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        return list(cursor.fetchall())


def _plan(cache: _Cache, req: _Request, now: datetime) -> tuple[_Token, _Query] | None:
    """The cached decisions that answer the request (no database), if all are there."""
    token = cache.tokens.get(_digest(req.token))
    if token is None or not _fresh(token, now):
        return None
    readable = cache.collections.get((token.user.pk, req.collection))
    compiled = None if readable is None else _QUERIES.get(_key(readable, req.filters))
    return None if compiled is None else (token, compiled)


def _finish(
    token: _Token, found: list[tuple[str, str]], req: _Request, *, how: str = "hits"
) -> Answer | None:
    """The answer, counted against the token's rate limit (and in :func:`stats` as ``how``)."""
    if count_token_call(token.key_id):
        return None  # Django's path counts it too, and answers 429
    _STATS[how] += 1
    return _respond(found, req)


#: The marker's statement joined to the rows' (``{}``): one statement, so one snapshot for
#: both, and on PostgreSQL one round trip. The rows keep their order: a nested loop over the
#: marker's single row is the only plan for ``LEFT JOIN … ON true``.
_JOINED = {
    "postgresql": "SELECT m.*, r.* FROM ("  # noqa: S608  (our own SQL, no value in it)
    + _PG_MARKER
    + ") AS m LEFT JOIN LATERAL ({}) AS r ON true",
    "sqlite": "SELECT m.data_version, r.* FROM pragma_data_version AS m LEFT JOIN ({}) AS r ON 1",
}


def _marked_rows(
    raw: Any, vendor: str, sql: str, params: tuple[Any, ...]
) -> tuple[tuple[Any, ...], list[tuple[str, str]]]:
    """The marker and the rows, read in one statement (see ``_JOINED``)."""
    # Both parts are our own SQL (Django's compiled query, its values passed as parameters).
    joined_sql = _JOINED[vendor].format(sql)
    if vendor == "sqlite":
        joined = raw.execute(joined_sql, params).fetchall()
    else:
        with _pg_cursor(raw) as cursor:
            cursor.execute(joined_sql, params, prepare=True)
            joined = cursor.fetchall()
    marker = _marker_of(raw, vendor, joined[0])
    width = len(joined[0])
    if joined[0][width - 1] is None:  # no row: the marker's, with NULLs for the row's columns
        return marker, []
    return marker, [(row[width - 2], row[width - 1]) for row in joined]


def _from_cache(
    raw: Any, vendor: str, adapt: Callable[[Any], Any], req: _Request, now: datetime
) -> tuple[Answer | None, _Cache, bool]:
    """On the driver connection ``raw`` (no ORM, no Django connection: this runs in the
    server's event loop): the marker and, if the cached decisions answer the request, the
    rows; they are used only if the marker is the one the decisions were made under.
    Returns the answer, the cache for the marker read, and whether the request is settled
    (answered, or to be answered by Django: over its rate limit)."""
    cache = _CACHE
    plan = _plan(cache, req, now)
    if plan is None:
        return None, _current(_marker(raw, vendor)), False
    token, compiled = plan
    marker, found = _marked_rows(raw, vendor, compiled.sql, _bind(compiled, req.filters, adapt))
    if marker != cache.marker:
        return None, _current(marker), False
    answered = _finish(token, found, req)
    return answered, cache, True


def _decide(cache: _Cache, req: _Request, now: datetime) -> Answer | None:
    """Decide with Django's own functions on this thread's Django connection, keep the
    decisions in ``cache`` (made under the marker read before), and answer."""
    digest = _digest(req.token)
    token = cache.tokens.get(digest)
    if not _fresh(token, now):
        try:
            row = check_token(req.token, now=now)
        except TokenRejected:
            return None
        parts = tokens.split(req.token)
        assert parts is not None, "check_token accepts well-formed tokens only"
        token = cache.tokens[digest] = _Token(row.user, parts[0], row.expires_at, row.last_used_at)
    assert token is not None
    key = (token.user.pk, req.collection)
    readable = cache.collections.get(key)
    if readable is None:
        try:
            col = get_collection(token.user, req.collection)
        except TaxiiError:
            return None
        if not col.can_read:
            return None
        if col.engagement is not None:
            store.materialise(col.engagement)
        readable = cache.collections[key] = _Readable(col, str(col.row_filter))
    sql, params = _query(readable, req.filters)
    connection.ensure_connection()
    return _finish(token, _fetch(connection.connection, sql, params), req, how="decided")


@dataclass(frozen=True)
class _Settings:
    """The settings a read consults, read once (Django's settings object is slow to ask);
    renewed when a test changes settings."""

    enabled: bool
    ssl_redirect: bool
    proxy_header: tuple[str, str] | None
    allowed_hosts: tuple[str, ...]
    max_fields: int | None
    #: The headers Django's middleware adds to a TAXII read, over HTTP and over HTTPS.
    headers: dict[bool, dict[str, str]]

    @classmethod
    def load(cls) -> _Settings:
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        proxy = settings.SECURE_PROXY_SSL_HEADER
        return cls(
            enabled=settings.VCISC_TAXII_FAST_READS,
            ssl_redirect=settings.SECURE_SSL_REDIRECT,
            proxy_header=None if not proxy else (proxy[0], proxy[1]),
            allowed_hosts=tuple(allowed),
            max_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            headers={False: _security_headers(False), True: _security_headers(True)},
        )


def _security_headers(secure: bool) -> dict[str, str]:
    """SecurityMiddleware's, XFrameOptionsMiddleware's, and the session's ``Vary``."""
    headers = {"X-Frame-Options": settings.X_FRAME_OPTIONS, "Vary": "Cookie"}
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers["Referrer-Policy"] = policy if isinstance(policy, str) else ",".join(policy)
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers["Strict-Transport-Security"] = hsts
    return headers


_SETTINGS: _Settings | None = None


def _conf() -> _Settings:
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = _Settings.load()
    return _SETTINGS


@receiver(setting_changed)
def _settings_changed(**_: Any) -> None:
    global _SETTINGS
    _SETTINGS = None
    _HOSTS.clear()


#: Answers of the checks that depend on one header and the settings alone, per value (a
#: server sees few distinct Host and Accept headers; cleared when full or settings change;
#: values longer than ``_MEMO_LENGTH`` are checked every time, never kept).
_HOSTS: dict[tuple[str, tuple[str, ...]], bool] = {}
_ACCEPTED: set[str | None] = set()
_MAX_MEMO = 256
_MEMO_LENGTH = 256


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Django's ``request.get_host()`` check (CommonMiddleware refuses other hosts: 400)."""
    known = _HOSTS.get((host, allowed))
    if known is None:
        domain, _ = split_domain_port(host)
        known = bool(domain) and validate_host(domain, allowed)
        if len(host) <= _MEMO_LENGTH:
            if len(_HOSTS) >= _MAX_MEMO:
                _HOSTS.clear()
            _HOSTS[(host, allowed)] = known
    return known


def _accepted(accept: str | None) -> None:
    """:func:`check_accept`, remembering the values it accepted."""
    if accept in _ACCEPTED:
        return
    check_accept(accept)
    if accept is None or len(accept) <= _MEMO_LENGTH:
        if len(_ACCEPTED) >= _MAX_MEMO:
            _ACCEPTED.clear()
        _ACCEPTED.add(accept)


def answer(
    path: str,
    query_string: str,
    headers: dict[str, str],
    *,
    secure: bool = False,
    now: datetime | None = None,
) -> Answer | None:
    """The answer to a ``GET`` of ``path`` with these (lower-case) headers, or None when
    Django's path is to answer: all on the calling thread's Django connection (the ASGI
    layer below reads the marker and the cached decisions on a connection of its own)."""
    req = _parse(path, query_string, headers, secure)
    if req is None:
        return None
    now = now or timezone.now()
    connection.ensure_connection()
    adapt = connection.ops.adapt_datetimefield_value
    found, cache, settled = _from_cache(connection.connection, connection.vendor, adapt, req, now)
    return found if settled else _decide(cache, req, now)


# --- the ASGI layer ------------------------------------------------------------------------------


def _is_secure(scope: Scope, headers: dict[str, str]) -> bool:
    if scope.get("scheme") == "https":
        return True
    proxy = _conf().proxy_header
    if not proxy:
        return False
    name, value = proxy
    header = name.removeprefix("HTTP_").replace("_", "-").lower()
    return headers.get(header, "").split(",")[0].strip() == value


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; a repeated header joined as Django's ASGI request does."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin1").lower()
        text = value.decode("latin1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


class FastReads:
    """ASGI middleware: the fast path above for TAXII object reads, Django for the rest.

    The change marker and, for small answers, the cached decisions and the rows are read in
    the event loop on a connection of this layer's own (opened once, in the worker thread,
    by Django's backend: the same settings, PRAGMAs and time zone as Django's connections);
    whatever needs deciding, and large pages, run in one worker thread on its Django
    connection, as Django runs its synchronous views.
    """

    def __init__(self, app: App, *, executor: Executor | None = None) -> None:
        self.app = app
        self._executor = executor
        self._wrapper: Any = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taxii-fast")
        return self._executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        # The path itself is matched by _parse: here only what keeps other requests out cheaply.
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"][:8] == "/taxii2/":
            found = await self._answer(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": found.status,
                "headers": [
                    (k.encode("latin1"), v.encode("latin1")) for k, v in found.headers.items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": found.body})

    async def _answer(self, scope: Scope) -> Answer | None:
        if not _conf().enabled:
            return None
        headers = _headers(scope["headers"])
        try:
            query = scope.get("query_string", b"").decode()
        except UnicodeDecodeError:
            return None
        req = _parse(scope["path"], query, headers, _is_secure(scope, headers))
        if req is None:
            return None
        loop = asyncio.get_running_loop()
        now = timezone.now()
        try:
            if self._wrapper is None:
                self._wrapper = await loop.run_in_executor(self.executor, _open_wrapper)
            raw, vendor = self._wrapper.connection, self._wrapper.vendor
            if req.small:
                adapt = self._wrapper.ops.adapt_datetimefield_value
                found, cache, settled = _from_cache(raw, vendor, adapt, req, now)
                if settled:
                    return found
            else:  # a large page: read in the worker thread, under the marker read here
                cache = _current(_marker(raw, vendor))
        except Exception:
            log.exception("TAXII fast read failed; Django's path answers")
            self._drop()
            return None
        return await loop.run_in_executor(self.executor, _in_thread, cache, req, now)

    def _drop(self) -> None:
        wrapper, self._wrapper = self._wrapper, None
        if wrapper is not None:
            self.executor.submit(_close_wrapper, wrapper)


def _open_wrapper() -> Any:
    """A Django database wrapper of this layer's own, connected (in the worker thread: Django
    refuses to connect from an event loop), its connection free to be used from the loop."""
    wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
    wrapper.ensure_connection()
    wrapper.inc_thread_sharing()
    if wrapper.vendor == "postgresql":
        # Django turns psycopg's prepared statements off; this connection runs the fast
        # path's few statements only, prepared once (a look-up's planning is half its cost).
        wrapper.connection.prepare_threshold = 5
    return wrapper


def _close_wrapper(wrapper: Any) -> None:
    if wrapper.vendor == "postgresql" and wrapper.connection is not None:
        wrapper.connection.prepare_threshold = None  # back to the pool as Django opened it
    wrapper.close()


def _in_thread(cache: _Cache, req: _Request, now: datetime) -> Answer | None:
    """In the worker thread, under the marker the event loop read: the cached decisions if
    they serve, else decide anew."""
    try:
        connection.ensure_connection()
        plan = _plan(cache, req, now)
        if plan is None:
            return _decide(cache, req, now)
        token, compiled = plan
        params = _bind(compiled, req.filters, connection.ops.adapt_datetimefield_value)
        return _finish(token, _fetch(connection.connection, compiled.sql, params), req)
    except Exception:
        # Django's path answers instead (and reports the error if it has it too); a broken
        # connection is not kept for the next request.
        log.exception("TAXII fast read failed; Django's path answers")
        connection.close()
        return None
