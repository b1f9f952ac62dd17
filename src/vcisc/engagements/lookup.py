"""The correlation look-up (issue 5): which indicators of other engagements hold these values?

:func:`indicators_elsewhere` is what :func:`vcisc.engagements.indicators.add_indicators` calls,
inside its transaction, for every batch of new indicators. Candidates are found by the BIGINT
``correlation_digest64`` (the SHA-256's first 64 bits); a candidate counts only if its full
``correlation_digest`` is one of those looked up, so a 64-bit collision never correlates.

Large batches (``FILTER_MIN_PROBES`` keys or more) first pass an **in-process filter**: a
Bloom filter of two bits per 64-bit key of every stored indicator (about 2 bytes a stored
value, under 2 % of false "maybe"s when built), held and tested as a NumPy array, so the
database is asked only about keys the filter cannot rule out. Most looked-up values are new to
the federation, and ruling them out in memory, the whole batch in a few vectorised operations,
is what makes a 100,000-value batch against 10 million stored values cost milliseconds rather
than a B-tree search each.

The filter is kept exactly correct across processes by the **correlation stamp** of each
indicator row (``Indicator.correlation_stamp``), set by a database trigger on every insert and
on every change of the digest columns, whatever writes the row:

* PostgreSQL: the writing transaction's id (``pg_current_xact_id()``, 64-bit, never reused).
  A row that a snapshot does not see was written by a transaction that was running or not yet
  started when the snapshot was taken, so its stamp is at least the snapshot's ``xmin``.
* SQLite: a counter (``engagements_correlation_clock``) that every stamped row increments.
  SQLite has one writer at a time, so a row committed after a reader's snapshot has a larger
  tick than any that snapshot saw. A rolled-back writer's ticks are reused later, which is why
  the filter only ever learns from committed state (see below).

The filter holds the keys of every row visible in some earlier snapshot, with a **watermark**:
the ``xmin`` of that snapshot (PostgreSQL) or its tick + 1 (SQLite). Invariant: every row a
later snapshot can see either has its key in the filter or a stamp of at least the watermark,
or no stamp at all. Each filtered look-up is **one statement** (one snapshot) that returns
(1) the rows whose 64-bit key is one the filter let through, (2) every row stamped at or above
the watermark or not stamped (rows written since, whatever their key), and (3) the snapshot's
new watermark. Hits are confirmed on the full digest from (1) and (2); the keys of (2) and the
new watermark then move into the filter — after the surrounding transaction commits
(``on_commit``), never from a transaction that may still roll back. Deleted rows leave their
bit set (a false "maybe", resolved by the database). Smaller batches skip the filter and probe
the index directly, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
import numpy.typing as npt
from django.db import connection, transaction

from vcisc.engagements.models import Indicator

__all__ = ["FILTER_MIN_PROBES", "Held", "indicators_elsewhere", "reset_filters"]

#: Batches with at least this many distinct 64-bit keys go through the in-process filter
#: (building it reads every stored key once per process: seconds for millions of rows).
FILTER_MIN_PROBES = 5_000
#: 64-bit digests probed per look-up statement: one array parameter on PostgreSQL, one JSON
#: array on SQLite, so the statement's size, not a parameter limit, bounds it.
LOOKUP_BATCH = 50_000
#: The filter has at least this many bits per stored key (two bits set per key: at most 12 %
#: of its bits set, so under 1.5 % of absent keys are false "maybe"s) and at least
#: ``_MIN_BITS``. It is rebuilt, twice as large, when more keys than 1/8 of its bits have been
#: added (then about 5 % of false "maybe"s).
_BITS_PER_KEY = 16
_MIN_BITS = 1 << 20
#: Keys are added to the filter this many at a time (bounded temporary arrays).
_ADD_CHUNK = 1 << 20
#: Bytes of PostgreSQL's COPY text (one key a line) parsed at a time while building.
_COPY_CHUNK = 1 << 22


class Held(NamedTuple):
    """An indicator of another engagement holding a value that was looked up."""

    indicator_id: UUID
    digest: str
    correlation_key: str


@dataclass(slots=True)
class _Filter:
    """A Bloom filter of the stored 64-bit keys (two bits each: the key's low bits and its
    high half's), and the watermark it is exact up to."""

    bits: npt.NDArray[np.uint8]
    mask: int
    keys: int  # keys added (with repeats): when it passes len(bits), the filter is rebuilt
    watermark: int
    identity: tuple[Any, ...]  # the database's (see _identity); another one voids the filter

    def _positions(self, keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.uint64], ...]:
        u = keys.view(np.uint64)
        mask = np.uint64(self.mask)
        return u & mask, ((u >> np.uint64(32)) | (u << np.uint64(32))) & mask

    def passing(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The keys that may be stored (every stored one, and a few false "maybe"s)."""
        keep = np.ones(len(keys), dtype=np.uint8)
        for bit in self._positions(keys):
            keep &= self.bits[bit >> np.uint64(3)] >> (bit & np.uint64(7)).astype(np.uint8)
        return keys[(keep & 1).astype(bool)]

    def add(self, keys: Iterable[int] | npt.NDArray[np.int64]) -> None:
        if not isinstance(keys, np.ndarray):
            keys = np.fromiter(keys, dtype=np.int64)
        for start in range(0, len(keys), _ADD_CHUNK):
            chunk = keys[start : start + _ADD_CHUNK]
            for bit in self._positions(chunk):
                byte = (bit >> np.uint64(3)).astype(np.intp)
                one = np.left_shift(np.uint8(1), (bit & np.uint64(7)).astype(np.uint8))
                np.bitwise_or.at(self.bits, byte, one)
        self.keys += len(keys)

    @classmethod
    def empty(cls, count: int, watermark: int, identity: tuple[Any, ...]) -> _Filter:
        size = _MIN_BITS
        while size < count * _BITS_PER_KEY:
            size <<= 1
        return cls(np.zeros(size >> 3, dtype=np.uint8), size - 1, 0, watermark, identity)


#: One filter per database (settings alias and connection parameters), shared by the threads
#: of the process; replaced or updated under the lock.
_filters: dict[tuple[Any, ...], _Filter] = {}
_lock = threading.Lock()


def reset_filters() -> None:
    """Forget every in-process filter (tests; the next large look-up builds one again)."""
    with _lock:
        _filters.clear()


def _database_key() -> tuple[Any, ...]:
    s = connection.settings_dict
    return (connection.alias, connection.vendor, s["NAME"], s.get("HOST"), s.get("PORT"))


def _columns() -> dict[str, str]:
    meta = Indicator._meta
    quote = connection.ops.quote_name
    names = ("id", "engagement", "correlation_digest", "correlation_digest64", "correlation_key")
    column = {f.name: quote(str(f.column)) for f in meta.concrete_fields if f.name in names}
    column["stamp"] = quote(str(meta.get_field("correlation_stamp").column))
    column["table"] = quote(meta.db_table)
    return column


def _meta_sql() -> str:
    """One row: the watermark a filter learning from this snapshot may take, and the
    database's identity (a filter is only ever used against the database it was built from)."""
    if connection.vendor == "postgresql":
        # xmin counts this transaction's own id if it has one; the LEAST is only a safeguard.
        # The snapshot's xmax must not be below a filter's watermark: else the ids are from
        # another cluster (a restore), and the filter is void.
        return (
            "SELECT LEAST(pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
            "COALESCE(pg_current_xact_id_if_assigned()::text::bigint, 9223372036854775807)), "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
            "(SELECT oid FROM pg_database WHERE datname = current_database())::bigint"
        )
    return "SELECT tick + 1, tick + 1, epoch FROM engagements_correlation_clock WHERE id = 1"


def _identity(meta: Sequence[Any]) -> tuple[Any, ...]:
    return (meta[2],)


def _usable(found: _Filter | None, meta: Sequence[Any]) -> _Filter | None:
    """The filter, if it belongs to this database and its watermark is not ahead of it."""
    if found is None or found.identity != _identity(meta) or meta[1] < found.watermark:
        return None
    if found.keys > len(found.bits):  # more keys than 1/8 of its bits: rebuild, larger
        return None
    return found


def _publish(update: Any) -> None:
    """Apply a filter update now, or when the surrounding transaction commits (a transaction
    that rolls back must not teach the filter: on SQLite its clock ticks are reused)."""
    if connection.in_atomic_block:
        transaction.on_commit(update)
    else:
        update()


def _build(column: dict[str, str]) -> _Filter:
    """A new filter over every stored key, with the watermark of the snapshot it read.

    PostgreSQL: the watermark is taken in a statement *before* the one reading the keys (a
    later snapshot's xmin is never smaller, so rows the read does not see are stamped at least
    that). SQLite: both statements in one read transaction.
    """
    own = not connection.in_atomic_block and connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        if own:
            cursor.execute("BEGIN DEFERRED")
        try:
            cursor.execute(_meta_sql())
            meta = cursor.fetchone()
            built = _Filter.empty(Indicator.objects.count(), meta[0], _identity(meta))
            if connection.vendor == "postgresql":
                raw = cursor.cursor
                keys = f"{column['correlation_digest64']} FROM {column['table']}"
                # libpq hands COPY's text over a row at a time: gathered into chunks of
                # whole lines before they become arrays.
                with raw.copy(f"COPY (SELECT {keys}) TO STDOUT") as copy:
                    blocks: list[bytes] = []
                    size = 0
                    for block in copy:
                        blocks.append(bytes(block))
                        size += len(block)
                        if size >= _COPY_CHUNK:
                            data = b"".join(blocks)
                            cut = data.rfind(b"\n") + 1
                            built.add(np.array(data[:cut].split(), dtype=np.int64))
                            blocks, size = [data[cut:]], len(data) - cut
                    built.add(np.array(b"".join(blocks).split(), dtype=np.int64))
            else:
                cursor.execute(
                    f"SELECT {column['correlation_digest64']} " + f"FROM {column['table']}"
                )
                while rows := cursor.fetchmany(100_000):
                    built.add(np.fromiter((row[0] for row in rows), np.int64, len(rows)))
        finally:
            if own:
                cursor.execute("COMMIT")
    return built


def indicators_elsewhere(engagement_id: UUID, digests: Mapping[str, int]) -> list[Held]:
    """Every indicator outside ``engagement_id`` whose ``correlation_digest`` is a key of
    ``digests`` (each mapped to its :func:`~vcisc.engagements.indicators.digest64_of`, which
    the caller already has); rows the caller's transaction wrote are seen as usual.

    Rows committed by any other process before the call are found (see the module docstring
    for how the in-process filter keeps that true); a row whose first 64 bits match but whose
    full SHA-256 does not is never returned.
    """
    if not digests:
        return []
    column = _columns()
    if len(digests) < FILTER_MIN_PROBES or connection.vendor not in ("postgresql", "sqlite"):
        return _probe(engagement_id, digests, sorted(set(digests.values())), column)
    keys = np.fromiter(digests.values(), dtype=np.int64, count=len(digests))
    return _filtered(engagement_id, digests, keys, column)


def _probe(
    engagement_id: UUID, wanted: Mapping[str, int], probes: Sequence[int], column: dict[str, str]
) -> list[Held]:
    """The index alone: every row whose 64-bit key is probed, confirmed on the full digest."""
    meta = Indicator._meta
    excluded = meta.get_field("engagement").get_db_prep_value(engagement_id, connection)
    found: list[Held] = []
    with connection.cursor() as cursor:
        for start in range(0, len(probes), LOOKUP_BATCH):
            chunk = probes[start : start + LOOKUP_BATCH]
            rows: Iterable[tuple[Any, str, str]]
            if connection.vendor in ("postgresql", "sqlite"):
                sql, params = _candidates_sql(column, chunk, excluded)
                cursor.execute(sql, params)
                rows = cursor.fetchall()
            else:  # another backend: the ORM's IN (...), with the same confirmation below
                query = Indicator.objects.filter(correlation_digest64__in=chunk)
                query = query.exclude(engagement_id=engagement_id)
                rows = query.values_list("pk", "correlation_digest", "correlation_key")
            found += _confirmed(rows, wanted)
    return found


def _candidates_sql(
    column: dict[str, str], chunk: Sequence[int], excluded: Any
) -> tuple[str, list[Any]]:
    select = f"SELECT i.{column['id']}, i.{column['correlation_digest']}, "
    select += f"i.{column['correlation_key']} FROM "
    other = f"i.{column['engagement']} <> %s"
    if connection.vendor == "postgresql":
        # An array literal: psycopg adapts a list element by element, several times slower
        # than joining the numbers here.
        sql = f"{select}{column['table']} AS i WHERE i.{column['correlation_digest64']} "
        sql += f"= ANY(%s::bigint[]) AND {other}"
        return sql, ["{" + ",".join(map(str, chunk)) + "}", excluded]
    sql = f"{select}json_each(%s) AS probe JOIN {column['table']} AS i "
    sql += f"ON i.{column['correlation_digest64']} = probe.value WHERE {other}"
    return sql, ["[" + ",".join(map(str, chunk)) + "]", excluded]


def _confirmed(rows: Iterable[tuple[Any, str, str]], wanted: Mapping[str, int]) -> list[Held]:
    """The rows whose full digest was looked up."""
    return _held([row for row in rows if row[1] in wanted])


def _held(rows: Iterable[Sequence[Any]]) -> list[Held]:
    """(id, digest, key) rows as :class:`Held`, their ids as UUIDs (SQLite's are hex text:
    ``UUID(int=…)`` costs a third of ``UUIDField.to_python``'s ``UUID(hex)``)."""
    if connection.vendor == "sqlite":
        return [Held(UUID(int=int(i, 16)) if len(i) == 32 else UUID(i), d, k) for i, d, k in rows]
    pk = Indicator._meta.pk
    assert pk is not None
    return [Held(pk.to_python(i), d, k) for i, d, k in rows]


def _filtered(
    engagement_id: UUID,
    wanted: Mapping[str, int],
    probes: npt.NDArray[np.int64],
    column: dict[str, str],
) -> list[Held]:
    key = _database_key()
    with connection.cursor() as cursor:
        cursor.execute(_meta_sql())
        meta = cursor.fetchone()
    with _lock:
        current = _usable(_filters.get(key), meta)
        # The watermark before the bits: another thread's update adds its keys, then raises the
        # watermark; bits read later may hold more keys (harmless), never fewer than the
        # watermark read here stands for.
        since = current.watermark if current is not None else 0
    if current is None:
        current = _build(column)
        since = current.watermark
        fresh = current

        def install() -> None:
            with _lock:
                _filters[key] = fresh

        _publish(install)
    # Only the keys the filter lets through are sorted, once each (the index is searched in
    # key order).
    passing = np.unique(current.passing(probes)).tolist()
    engagement = Indicator._meta.get_field("engagement")
    excluded = engagement.get_db_prep_value(engagement_id, connection)
    e, d64, stamp = column["engagement"], column["correlation_digest64"], column["stamp"]
    # One statement, so one snapshot: (1) candidates the filter let through, (2) every row
    # stamped since the watermark or not stamped, (3) the snapshot's watermark and identity.
    # Branch (2) returns rows of any engagement, their keys to go into the filter; those of
    # the looked-up engagement itself are marked 4 (learn only). Candidates carry no 64-bit
    # key and no engagement: as few columns a row as the caller needs.
    cols = f"i.{column['id']}, i.{column['correlation_digest']}, i.{column['correlation_key']}"
    null = "NULL::bigint" if connection.vendor == "postgresql" else "NULL"
    table = f"{column['table']} AS i"
    # Two branches, not an OR: SQLite would scan the table for the OR. Unstamped rows (NULL:
    # only if a trigger went missing) are always asked about.
    by_stamp = " INDEXED BY indicator_stamp" if connection.vendor == "sqlite" else ""
    since_sql = f"SELECT CASE WHEN i.{e} = %s THEN 4 ELSE 2 END, {cols}, i.{d64}, {null}, "
    since_sql += f"{null}, {null} FROM {table}{by_stamp} WHERE i.{stamp} "
    recent = f"{since_sql}>= %s UNION ALL {since_sql}IS NULL"
    meta_select = _meta_sql().replace("SELECT ", "SELECT 3, NULL, NULL, NULL, NULL, ", 1)
    candidates = f"SELECT 1, {cols}, {null}, {null}, {null}, {null}"
    if connection.vendor == "postgresql":
        candidates += f" FROM {table} WHERE i.{d64} = ANY(%s::bigint[]) AND i.{e} <> %s"
        probe_param = "{" + ",".join(map(str, passing)) + "}"
    else:
        candidates += f" FROM json_each(%s) AS probe, {table} "
        candidates += f"WHERE i.{d64} = probe.value AND i.{e} <> %s"
        probe_param = "[" + ",".join(map(str, passing)) + "]"
    sql = f"{candidates} UNION ALL {recent} UNION ALL {meta_select}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [probe_param, excluded, excluded, since, excluded])
        rows = cursor.fetchall()
    # Rows: (branch, id, digest, key, 64-bit key, watermark, xmax, identity). Confirmed on
    # the full digest here; a row may come from branches 1 and 2: once by its id.
    seen: dict[Any, Sequence[Any]] = {}
    learned: list[int] = []
    watermark: int | None = None
    identity: tuple[Any, ...] = ()
    for row in rows:
        branch = row[0]
        if branch == 1:
            if row[2] in wanted:
                seen[row[1]] = row[1:4]
        elif branch == 3:
            watermark, identity = row[5], _identity(row[5:])
        else:
            learned.append(row[4])
            if branch == 2 and row[2] in wanted:
                seen[row[1]] = row[1:4]
    found = _held(seen.values())
    target = current
    assert watermark is not None

    def learn() -> None:
        with _lock:
            if _filters.get(key) is not target or identity != target.identity:
                return  # replaced meanwhile: dropping an update is always safe
            target.add(learned)
            target.watermark = max(target.watermark, watermark)

    _publish(learn)
    return found
