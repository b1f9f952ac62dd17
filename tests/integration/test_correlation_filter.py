"""The correlation look-up's in-process filter (vcisc.engagements.lookup) stays exact: a row
committed by another connection after the filter was built is found by the next look-up, a
writer still in progress is found once it commits, a transaction that rolls back teaches the
filter nothing (SQLite reuses its clock ticks), and a 64-bit collision never correlates.

They lower ``FILTER_MIN_PROBES`` so that every look-up goes through the filter. On PostgreSQL
they commit (``transaction=True``) and the other writer is another connection, in a thread. On
SQLite the suite cannot flush a committed database (the audit table is append-only), so the
tests run in the test's transaction, the filter's after-commit updates are run as a commit
would (``django_capture_on_commit_callbacks``), and the other writer is the same connection:
SQLite has one writer at a time, and what the filter must survive is a row written after its
watermark, whoever wrote it. The SQLite cross-process check proper runs in a child process on a
database of its own: another process commits while the filter is built, after it is built, and
after a rolled-back transaction whose clock ticks it reuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone

from tests.integration.test_correlation_lookup import _add, _engagement, _probe
from vcisc.engagements import lookup
from vcisc.engagements.indicators import digest64_of, digest_of, indicators_elsewhere
from vcisc.engagements.models import Indicator
from vcisc.sharing.observables import normalise

POSTGRES = os.environ.get("VCISC_DATABASE_URL", "").startswith("postgres")
pytestmark = pytest.mark.django_db(transaction=POSTGRES)
_commit: list[Any] = []


@pytest.fixture(autouse=True)
def _always_filtered(monkeypatch: Any, django_capture_on_commit_callbacks: Any) -> Any:
    monkeypatch.setattr(lookup, "FILTER_MIN_PROBES", 1)
    lookup.reset_filters()
    _commit.append(django_capture_on_commit_callbacks)
    yield
    _commit.clear()
    lookup.reset_filters()


def _elsewhere(engagement: Any, *domains: str, commit: bool = True) -> list[str]:
    """The keys found elsewhere; with ``commit``, as if the look-up's transaction committed."""
    if commit and not POSTGRES:
        with _commit[0](execute=True):
            return _elsewhere(engagement, *domains, commit=False)
    return sorted(h.correlation_key for h in indicators_elsewhere(engagement, _probe(*domains)))


def _written_elsewhere(fed: Any, engagement: Any, domain: str) -> None:
    """An indicator stored by another process: straight into the table, without this
    process's look-up (whose filter would learn the row from its own transaction)."""
    user, now = fed.users["de"], timezone.now()
    observable = normalise("domain", domain)
    digest = digest_of(observable)
    Indicator.objects.create(
        engagement_id=engagement,
        author=user,
        organisation=user.organisation,
        tlp="green",
        created_at=now,
        updated_at=now,
        type=observable.type.value,
        value=observable.value,
        correlation_key=str(observable.correlation_key),
        correlation_digest=digest,
        correlation_digest64=digest64_of(digest),
        first_seen=now,
    )


def _in_thread(work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` on its own database connection (another writer), reporting its error; on
    SQLite on this one (see the module docstring)."""
    errors: list[BaseException] = []
    if not POSTGRES:
        work()
        done = threading.Thread(target=lambda: None)
        done.start()
        return done

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised by join()
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    original_join = thread.join

    def join(timeout: float | None = 30) -> None:
        original_join(timeout)
        assert not thread.is_alive(), "the other writer hangs"
        if errors:
            raise errors[0]

    thread.join = join  # type: ignore[method-assign]  # join() re-raises the writer's error
    thread.start()
    return thread


def test_the_database_stamps_every_write(federation: Any) -> None:
    eng = _engagement(federation)
    (a,) = _add(federation, eng, "a.example")
    (b,) = _add(federation, eng, "b.example")
    first = Indicator.objects.get(pk=a.pk).correlation_stamp
    second = Indicator.objects.get(pk=b.pk).correlation_stamp
    assert first is not None and second is not None and second > first > 0
    # A change of the digest is a new write: stamped again, later (the writer cannot choose).
    Indicator.objects.filter(pk=a.pk).update(correlation_digest64=1, correlation_stamp=0)
    again = Indicator.objects.get(pk=a.pk).correlation_stamp
    assert again is not None and again > second


def test_a_row_committed_by_another_connection_is_found(federation: Any) -> None:
    fed = federation
    first, second, third = _engagement(fed), _engagement(fed), _engagement(fed)
    _add(fed, first, "old.example")
    assert _elsewhere(third, "old.example", "new.example") == ["dns:old.example"]
    assert lookup._filters, "the look-up built a filter"
    _in_thread(lambda: _written_elsewhere(fed, second, "new.example")).join()
    both = ["dns:new.example", "dns:old.example"]
    assert _elsewhere(third, "old.example", "new.example") == both
    # Again once the filter has learned the new row (its watermark is past it now).
    assert _elsewhere(third, "old.example", "new.example") == both
    lookup.reset_filters()  # and from a filter built afresh
    assert _elsewhere(third, "old.example", "new.example") == both


def test_a_new_row_of_the_engagement_itself_is_learned_not_found(federation: Any) -> None:
    """Rows written since the watermark come back whatever their engagement, to be learned;
    those of the looked-up engagement are not held elsewhere."""
    fed = federation
    mine, other = _engagement(fed), _engagement(fed)
    _add(fed, other, "theirs.example")
    assert _elsewhere(mine, "theirs.example", "mine.example") == ["dns:theirs.example"]
    _in_thread(lambda: _written_elsewhere(fed, mine, "mine.example")).join()
    assert _elsewhere(mine, "theirs.example", "mine.example") == ["dns:theirs.example"]
    # The other engagement looking the same values up finds the new row (learned or not).
    assert _elsewhere(other, "theirs.example", "mine.example") == ["dns:mine.example"]


def test_a_rolled_back_transaction_teaches_the_filter_nothing(federation: Any) -> None:
    fed = federation
    first, second, third = _engagement(fed), _engagement(fed), _engagement(fed)
    _add(fed, first, "kept.example")
    assert _elsewhere(third, "kept.example") == ["dns:kept.example"]
    filter_before = dict(lookup._filters)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        _add(fed, second, "gone.example")
        assert _elsewhere(third, "gone.example", "kept.example", commit=False) == [
            "dns:gone.example",
            "dns:kept.example",
        ]
        raise Undo
    watermarks = {k: f.watermark for k, f in lookup._filters.items()}
    assert watermarks == {k: f.watermark for k, f in filter_before.items()}
    # On SQLite the next writer reuses the rolled-back clock ticks: still found.
    _add(fed, second, "later.example")
    assert _elsewhere(third, "gone.example", "later.example") == ["dns:later.example"]


@pytest.mark.skipif(not POSTGRES, reason="a reader beside an open writer: PostgreSQL's MVCC")
def test_a_writer_in_progress_is_found_once_it_commits(federation: Any) -> None:
    fed = federation
    first, second, third = _engagement(fed), _engagement(fed), _engagement(fed)
    _add(fed, first, "old.example")
    written, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with transaction.atomic():
            _written_elsewhere(fed, second, "slow.example")
            written.set()
            assert release.wait(20)

    writer = _in_thread(slow_writer)
    assert written.wait(20)
    # A later transaction commits first: the writer's id is now inside the snapshots'
    # (xmin, xmax) range, among the running ones, rather than at or past their xmax.
    _written_elsewhere(fed, first, "after.example")
    assert _elsewhere(third, "old.example", "slow.example") == ["dns:old.example"]
    # The filter learned from a snapshot in which the writer was running: its watermark is
    # not past the writer's transaction id.
    assert _elsewhere(third, "old.example", "slow.example") == ["dns:old.example"]
    release.set()
    writer.join()
    assert _elsewhere(third, "old.example", "slow.example") == [
        "dns:old.example",
        "dns:slow.example",
    ]


def test_a_64_bit_collision_never_correlates_through_the_filter(federation: Any) -> None:
    fed = federation
    first, second = _engagement(fed), _engagement(fed)
    (decoy,) = _add(fed, first, "decoy.example")
    assert _elsewhere(second, "other.example") == []  # builds the filter
    other = digest_of(normalise("domain", "other.example"))
    Indicator.objects.filter(pk=decoy.pk).update(correlation_digest64=digest64_of(other))
    assert _elsewhere(second, "other.example") == []  # the row is "recent" here
    assert _elsewhere(second, "other.example") == []  # and in the filter here


def test_add_indicators_correlates_through_the_filter(federation: Any) -> None:
    fed = federation
    first, second = _engagement(fed), _engagement(fed)
    names = [f"h{n}.example" for n in range(5)]
    stored = _add(fed, first, *names)
    lookup.reset_filters()
    if POSTGRES:
        created = _add(fed, second, *names, "fresh.example")
    else:
        with _commit[0](execute=True):
            created = _add(fed, second, *names, "fresh.example")
    assert len(created) == 6
    held = indicators_elsewhere(second, _probe(*names, "fresh.example"))
    assert sorted(h.indicator_id for h in held) == sorted(i.pk for i in stored)


#: The SQLite cross-process check, run in a child process on a database of its own (the suite's
#: SQLite database cannot take a commit from another connection: the test holds its write lock).
_SQLITE_CHILD = r"""
import json, os, sqlite3, subprocess, sys, uuid
import django
django.setup()
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from vcisc.engagements import lookup
from vcisc.engagements.indicators import digest64_of, digest_of, indicators_elsewhere
from vcisc.engagements.models import Indicator
from vcisc.sharing.observables import normalise

call_command("migrate", verbosity=0)
path = connection.settings_dict["NAME"]
with connection.cursor() as cursor:
    cursor.execute("PRAGMA foreign_keys = OFF")  # rows of engagements this database lacks
lookup.FILTER_MIN_PROBES = 1
E1, E2, E3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
WRITER = '''
import sqlite3, sys, uuid
path, engagement, value, key, digest, d64 = sys.argv[1:]
db = sqlite3.connect(path, isolation_level=None)
columns = [r[1] for r in db.execute("PRAGMA table_info(engagements_indicator)")]
mine = {"id": uuid.uuid4().hex, "engagement_id": engagement, "value": value,
        "correlation_key": key, "correlation_digest": digest, "correlation_digest64": int(d64),
        "correlation_stamp": 0}
select = ", ".join("?" if c in mine else c for c in columns)
db.execute("BEGIN IMMEDIATE")
db.execute(f"INSERT INTO engagements_indicator ({', '.join(columns)}) SELECT {select} "
           "FROM engagements_indicator LIMIT 1", [mine[c] for c in columns if c in mine])
db.execute("COMMIT")
'''


def observable(domain):
    o = normalise("domain", domain)
    d = digest_of(o)
    return o, d


def written_elsewhere(engagement, domain):
    # Another process, its own connection: commits before this returns.
    o, d = observable(domain)
    subprocess.run(
        [sys.executable, "-c", WRITER, path, engagement.hex, o.value, str(o.correlation_key),
         d, str(digest64_of(d))],
        check=True,
    )


def written_here(engagement, domain):
    o, d = observable(domain)
    now = timezone.now()
    Indicator.objects.create(
        engagement_id=engagement, author_id=1, organisation_id=1,
        tlp="green", created_at=now, updated_at=now, type=o.type.value, value=o.value,
        correlation_key=str(o.correlation_key), correlation_digest=d,
        correlation_digest64=digest64_of(d), first_seen=now,
    )


def elsewhere(engagement, *domains):
    wanted = {d: digest64_of(d) for d in (observable(x)[1] for x in domains)}
    return sorted(h.correlation_key for h in indicators_elsewhere(engagement, wanted))


out = {}
written_here(E1, "old.example")
count = Indicator.objects.count
def count_while_another_commits():
    written_elsewhere(E2, "during.example")  # after the build's watermark, before its keys
    return count()
Indicator.objects.count = count_while_another_commits
out["during_build"] = elsewhere(E3, "old.example", "during.example", "after.example")
del Indicator.objects.count
out["built"] = len(lookup._filters)
out["during_again"] = elsewhere(E3, "old.example", "during.example", "after.example")
written_elsewhere(E2, "after.example")
out["after"] = elsewhere(E3, "old.example", "during.example", "after.example")
out["after_again"] = elsewhere(E3, "old.example", "during.example", "after.example")
watermark = next(iter(lookup._filters.values())).watermark


class Undo(Exception):
    pass


try:
    with transaction.atomic():
        written_here(E2, "gone.example")
        out["in_rollback"] = elsewhere(E3, "gone.example")
        raise Undo
except Undo:
    pass
out["watermark_kept"] = next(iter(lookup._filters.values())).watermark == watermark
written_elsewhere(E2, "later.example")  # reuses the rolled-back clock tick
out["later"] = elsewhere(E3, "gone.example", "later.example")
out["later_again"] = elsewhere(E3, "gone.example", "later.example")
print(json.dumps(out))
"""


@pytest.mark.skipif(POSTGRES, reason="SQLite's own cross-process check (PostgreSQL: above)")
def test_sqlite_rows_committed_by_another_process_are_found(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VCISC_DATABASE_URL"}
    env["VCISC_DATA_DIR"] = str(tmp_path)
    env["DJANGO_SETTINGS_MODULE"] = "vcisc.settings"
    done = subprocess.run(
        [sys.executable, "-c", _SQLITE_CHILD], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    both = ["dns:during.example", "dns:old.example"]
    three = ["dns:after.example", *both]
    assert out["built"] == 1
    assert out["during_build"] == both, "a row committed while the filter was built"
    assert out["during_again"] == both
    assert out["after"] == three, "a row committed by another process after the build"
    assert out["after_again"] == three
    assert out["in_rollback"] == ["dns:gone.example"]
    assert out["watermark_kept"], "a rolled-back transaction moved the watermark"
    assert out["later"] == ["dns:later.example"], "a reused clock tick"
    assert out["later_again"] == ["dns:later.example"]


@pytest.mark.skipif(not POSTGRES, reason="another connection commits: PostgreSQL (SQLite: above)")
def test_a_row_committed_while_the_filter_is_built_is_found(
    federation: Any, monkeypatch: Any
) -> None:
    fed = federation
    first, second, third = _engagement(fed), _engagement(fed), _engagement(fed)
    _add(fed, first, "old.example")
    lookup.reset_filters()  # the add's own look-up built one
    count, called = Indicator.objects.count, []

    def count_while_another_commits() -> int:
        # Between the build's watermark and its read of the keys.
        called.append(True)
        _in_thread(lambda: _written_elsewhere(fed, second, "during.example")).join()
        return count()

    monkeypatch.setattr(Indicator.objects, "count", count_while_another_commits)
    both = ["dns:during.example", "dns:old.example"]
    assert _elsewhere(third, "old.example", "during.example") == both
    monkeypatch.setattr(Indicator.objects, "count", count)
    assert called == [True], "the look-up built a filter"
    assert _elsewhere(third, "old.example", "during.example") == both
    _in_thread(lambda: _written_elsewhere(fed, second, "after.example")).join()
    assert _elsewhere(third, "old.example", "during.example", "after.example") == [
        "dns:after.example",
        *both,
    ]
