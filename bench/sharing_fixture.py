"""Fixtures of ``bench/bench_sharing.py``: generated STIX bundles, engagements opened through the
real services, and indicator rows bulk-loaded straight into the table.

Nothing here is a write path of the application. The bundles are deterministic (seeded); the
bulk load writes ``engagements_indicator`` rows exactly as ``add_indicators`` would (same
normalised values, keys and digests, checked against ``normalise`` on a sample) but with
``executemany`` on SQLite and ``COPY`` on PostgreSQL, with the secondary indexes built after the
load, because millions of rows through the ORM would take hours.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: TLP 2.0 marking-definition ids (DOMAIN.md §5) the generated indicators carry, in rotation.
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
}
TYPES = ("ipv4", "domain", "sha256", "url")
STAMP = "2026-11-30T08:00:00.000Z"
stderr = Console(stderr=True)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not sys.stderr.isatty(),
    )


# --- values ------------------------------------------------------------------------------------


def stored_value(n: int) -> tuple[str, str, str]:
    """(type, normalised value, correlation key) of stored value number ``n``: four types in
    rotation, each value unique. Bundle objects that should correlate name these values."""
    kind = TYPES[n % 4]
    if kind == "ipv4":
        m = n // 4
        assert m < 1 << 24, "stored IPv4 values are 10.0.0.0/8"
        value = f"10.{m >> 16}.{(m >> 8) & 255}.{m & 255}"
        return kind, value, f"ip:{value}"
    if kind == "domain":
        value = f"s{n}.store.example"
        return kind, value, f"dns:{value}"
    if kind == "sha256":
        value = hashlib.sha256(b"stored %d" % n).hexdigest()
        return kind, value, f"sha256:{value}"
    value = f"https://s{n}.store.example/p/{n}"
    return kind, value, f"url:{value}"


def missing_value(n: int) -> tuple[str, str, str]:
    """A value that is never stored (a correlation look-up that must miss)."""
    kind = TYPES[n % 4]
    if kind == "ipv4":
        m = n // 4
        assert m < 1 << 20, "missing IPv4 values are 172.16.0.0/12"
        value = f"172.{16 + (m >> 16)}.{(m >> 8) & 255}.{m & 255}"
        return kind, value, f"ip:{value}"
    if kind == "domain":
        value = f"m{n}.miss.example"
        return kind, value, f"dns:{value}"
    if kind == "sha256":
        value = hashlib.sha256(b"missing %d" % n).hexdigest()
        return kind, value, f"sha256:{value}"
    value = f"https://m{n}.miss.example/p/{n}"
    return kind, value, f"url:{value}"


_PATH = {
    "ipv4": "ipv4-addr:value",
    "domain": "domain-name:value",
    "sha256": "file:hashes.'SHA-256'",
    "url": "url:value",
}


def check_values(sample: int = 2000) -> None:
    """The generators agree with ``vcisc.sharing.observables.normalise`` (else exit 3)."""
    from vcisc.sharing.observables import normalise

    rng = random.Random(1)
    for gen in (stored_value, missing_value):
        for n in [rng.randrange(4_000_000) for _ in range(sample)] + [0, 1, 2, 3]:
            kind, value, key = gen(n)
            obs = normalise(kind, value)
            if obs.value != value or str(obs.correlation_key) != key:
                print(f"fixture check failed: {gen.__name__}({n}) = {kind} {value!r} {key!r}, ")
                print(f"normalise gives {obs.value!r} {str(obs.correlation_key)!r}")
                raise SystemExit(3)


# --- bundles -----------------------------------------------------------------------------------


def bundle_chunks(
    count: int, *, seed: int, correlate_every: int = 0, stored: int = 0
) -> Iterator[bytes]:
    """A STIX 2.1 bundle of ``count`` indicators, streamed in pieces of about 1,000 objects.

    Every object is valid (the importer and ``stix2.parse`` accept all of them), with a simple
    pattern of one of four types, a TLP 2.0 marking, a name, confidence and description. With
    ``correlate_every=k``, every k-th object names one of the first ``stored`` stored values
    (each a different one).
    """
    rng = random.Random(seed)
    marks = list(TLP2.values())
    named = (
        iter(rng.sample(range(stored), len(range(0, count, correlate_every))))
        if correlate_every
        else iter(())
    )
    bundle_id = f"bundle--{uuid.UUID(int=seed, version=4)}"
    yield f'{{"type": "bundle", "id": "{bundle_id}", "objects": ['.encode()
    parts: list[str] = []
    for n in range(count):
        if correlate_every and n % correlate_every == 0:
            kind, value, _ = stored_value(next(named))
        else:
            kind, value, _ = missing_value(n)
        literal = value.replace("\\", "\\\\").replace("'", "\\'")
        obj = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "created": STAMP,
            "modified": STAMP,
            "name": f"{kind} indicator {n}",
            "description": "Seen in the intrusion at a grid operator.",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[{_PATH[kind]} = '{literal}']",
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": STAMP,
            "confidence": 60 + n % 40,
            "object_marking_refs": [marks[n % 3]],
        }
        parts.append(json.dumps(obj))
        if len(parts) == 1000:
            yield (b"," if n >= 1000 else b"") + ",".join(parts).encode()
            parts = []
    if parts:
        yield (b"," if count > len(parts) else b"") + ",".join(parts).encode()
    yield b"]}"


def bundle_bytes(count: int, **kw: Any) -> bytes:
    return b"".join(bundle_chunks(count, **kw))


# --- engagements through the real services --------------------------------------------------------


@dataclass
class Actors:
    requester: Any  # CERT-EE liaison (files requests, accepts offers, imports)
    helper: Any  # CERT-DE liaison
    coordinator: Any
    helper_org_id: Any


def seed_actors() -> Actors:
    from vcisc.federation import services as fs

    fs.create_nation(None, code="EE", name="Estonia", kind="member", eu_member=True)
    fs.create_nation(None, code="DE", name="Germany", kind="member", eu_member=True)
    ee = fs.create_organisation(None, name="CERT-EE", kind="cert", nation_code="EE")
    de = fs.create_organisation(None, name="CERT-Bund", kind="cert", nation_code="DE")
    sec = fs.create_organisation(None, name="Secretariat", kind="secretariat", nation_code=None)
    fs.create_capability(
        None,
        organisation_id=de.pk,
        service_type="incident-response",
        depth="expert",
        sectors=[],
        languages=["en"],
        max_concurrent=1000,
    )
    for org in (ee, de):
        fs.create_contact(
            None,
            organisation_id=org.pk,
            name="Desk",
            email=f"desk@{org.name.lower()}.example",
            languages=["en"],
            time_zone="UTC",
            on_call="24/7",
        )
    return Actors(
        requester=fs.create_user(
            None, email="liaison@ee.example", organisation_id=ee.pk, roles=["liaison"]
        ),
        helper=fs.create_user(
            None, email="liaison@de.example", organisation_id=de.pk, roles=["liaison"]
        ),
        coordinator=fs.create_user(
            None, email="coordinator@sec.example", organisation_id=sec.pk, roles=["coordinator"]
        ),
        helper_org_id=de.pk,
    )


def open_engagement(actors: Actors, title: str, tlp: str = "amber") -> Any:
    """File, triage, route, offer and accept: the engagement as the application makes it."""
    from tests.notify.seed import grid_request

    from vcisc.assistance import services
    from vcisc.engagements.models import Engagement

    rfa = services.create_rfa(actors.requester, grid_request(title, tlp), submit=True)
    services.transition(actors.coordinator, rfa.pk, "start-triage")
    services.route(actors.coordinator, rfa.pk, [actors.helper_org_id])
    start = datetime.now(UTC)
    offer = services.create_offer(
        actors.helper,
        rfa.pk,
        {
            "scope": "Remote incident response",
            "team_size": 3,
            "available_from": start,
            "available_until": start + timedelta(days=7),
            "services": ["incident-response"],
            "remote": True,
        },
    )
    services.offer_action(actors.requester, offer.pk, "accept")
    return Engagement.objects.get(rfa_id=rfa.pk)


# --- bulk load ------------------------------------------------------------------------------------


def bulk_load_indicators(
    count: int,
    engagements: Sequence[Any],
    author: Any,
    *,
    first: int = 0,
    on_key: Callable[[str], None] | None = None,
    label: str = "loading indicators",
) -> float:
    """Write stored values ``first … first+count-1`` as Indicator rows, spread round-robin over
    ``engagements``; return the seconds it took. ``on_key`` sees every correlation key."""
    import time

    from django.db import connection

    from vcisc.engagements.indicators import digest64_of
    from vcisc.engagements.models import Indicator

    started = time.perf_counter()
    meta = Indicator._meta
    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    constant = {
        "author": author.pk,
        "organisation": author.organisation_id,
        "tlp": "amber",
        "created_at": now,
        "updated_at": now,
        "first_seen": now,
        "last_seen": None,
        "confidence": 70,
        "for_detection": True,
        "description": "",
        "source": "stix",
    }
    fields = list(meta.concrete_fields)
    columns = [f.column for f in fields]
    prepared = {
        name: meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in constant.items()
    }
    # Fields this loader does not know (added since): their defaults.
    defaults = {f.name: f.get_db_prep_save(f.get_default(), connection) for f in fields}
    engagement_ids = [e.pk.hex for e in engagements]
    # Sequential primary keys: appending to the primary-key index, as new UUIDv4s would not, is
    # a loading shortcut only; nothing reads the order.
    base = 0xB0 << 120

    def rows() -> Iterator[tuple[Any, ...]]:
        for n in range(first, first + count):
            kind, value, key = stored_value(n)
            if on_key is not None:
                on_key(key)
            digest = hashlib.sha256(key.encode()).hexdigest()
            row = {
                "id": f"{base + n:032x}",
                "engagement": engagement_ids[n % len(engagement_ids)],
                "type": kind,
                "value": value,
                "correlation_key": key,
                "correlation_digest": digest,
                "correlation_digest64": digest64_of(digest),
                # Below every watermark: loaded before any look-up builds its filter (the
                # database's stamping trigger is off for the load, see _indexes_off).
                "correlation_stamp": 0,
                **prepared,
            }
            yield tuple(row[f.name] if f.name in row else defaults[f.name] for f in fields)

    table = meta.db_table
    with progress() as bar:
        task = bar.add_task(label, total=count)
        with _indexes_off(connection, table):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    raw = cursor.cursor
                    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                    with raw.copy(sql) as copy:
                        for i, row in enumerate(rows(), 1):
                            copy.write_row(row)
                            if i % 20_000 == 0:
                                bar.update(task, completed=i)
            else:
                marks = ", ".join("?" * len(columns))
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                raw = connection.connection
                chunk: list[tuple[Any, ...]] = []
                done = 0
                for row in rows():
                    chunk.append(row)
                    if len(chunk) == 50_000:
                        raw.executemany(sql, chunk)
                        done += len(chunk)
                        chunk = []
                        bar.update(task, completed=done)
                raw.executemany(sql, chunk)
            bar.update(task, description=f"{label}: building indexes", completed=count)
    return time.perf_counter() - started


class _indexes_off:
    """Drop the indicator table's secondary indexes and triggers (on PostgreSQL its unique
    constraint; its triggers are off for the session) for a bulk load, and build them again
    afterwards: what a restore from a dump does. The rows are written in one transaction."""

    def __init__(self, connection: Any, table: str) -> None:
        self.connection = connection
        self.table = table
        self.restore: list[str] = []

    def __enter__(self) -> None:
        conn = self.connection
        conn.ensure_connection()
        if conn.vendor == "postgresql":
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype = 'u'",
                    [self.table],
                )
                constraints = cur.fetchall()
                cur.execute(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                    "WHERE conrelid = %s::regclass)",
                    [self.table, self.table],
                )
                indexes = cur.fetchall()
                for name, ddl in indexes:
                    cur.execute(f'DROP INDEX "{name}"')
                    self.restore.append(ddl)
                for name, ddl in constraints:
                    cur.execute(f'ALTER TABLE {self.table} DROP CONSTRAINT "{name}"')
                    self.restore.append(f'ALTER TABLE {self.table} ADD CONSTRAINT "{name}" {ddl}')
                cur.execute("SET session_replication_role = replica")  # no FK or stamp triggers
                cur.execute("SET maintenance_work_mem = '512MB'")
        else:
            raw = conn.connection
            # Triggers too (the correlation stamp's: a row is stamped 0 by the loader).
            found = raw.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                "AND tbl_name = ? AND sql IS NOT NULL",
                [self.table],
            ).fetchall()
            raw.execute("PRAGMA journal_mode = DELETE")
            raw.execute("PRAGMA synchronous = OFF")
            raw.execute("PRAGMA cache_size = -1000000")
            for kind, name, ddl in found:
                raw.execute(f'DROP {kind.upper()} "{name}"')
                self.restore.append(ddl)
            raw.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        conn = self.connection
        if conn.vendor == "postgresql":
            with conn.cursor() as cur:
                cur.execute("SET session_replication_role = origin")
                for ddl in self.restore:
                    cur.execute(ddl)
                cur.execute(f"ANALYZE {self.table}")
            if not conn.get_autocommit():
                conn.commit()
        else:
            raw = conn.connection
            for ddl in self.restore:
                raw.execute(ddl)
            raw.execute("COMMIT")
            raw.execute("PRAGMA journal_mode = WAL")
        conn.close()  # the next query reconnects with the application's own settings


# --- PostgreSQL databases of the benchmarks -----------------------------------------------------


def admin_url() -> str:
    """The PostgreSQL server the benchmarks create their databases on."""
    return os.environ.get(
        "VCISC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def pg_database(name: str, *, drop_only: bool = False) -> str:
    """A fresh database ``name`` (dropped first; only dropped with ``drop_only``): its URL."""
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url().rsplit('/', 1)[0]}/{name}"
