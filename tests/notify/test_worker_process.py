"""`vcisc worker` as real processes: killed with SIGKILL mid-batch, several at once against one
PostgreSQL, and a database that drops every connection. Every notification arrives at least
once; duplicates stay within the documented bound (one extra per crash, here)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notify.receivers import HttpReceiver, SmtpHandler, start_smtp

VCISC = str(Path(sys.executable).parent / "vcisc")
ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("VCISC_DATABASE_URL", "").startswith("postgres")


def _env(base: dict[str, str], smtp_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env.update(base)
    env.update(
        {
            "VCISC_SMTP_HOST": "127.0.0.1",
            "VCISC_SMTP_PORT": str(smtp_port),
            "VCISC_SMTP_SECURITY": "none",
            "VCISC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "VCISC_SMTP_TIMEOUT_SECONDS": "1",
            "VCISC_WEBHOOK_TIMEOUT_SECONDS": "1",
            "VCISC_DELIVERY_LEASE_SECONDS": "2",
            "VCISC_DELIVERY_BACKOFF_SECONDS": "0.1",
            "VCISC_DELIVERY_BACKOFF_MAX_SECONDS": "0.5",
            "VCISC_WORKER_POLL_SECONDS": "0.1",
            "VCISC_ESCALATION_POLICY": "",
            "VCISC_DEADLINE_REMINDERS": "",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen([VCISC, "worker"], env=env, stdout=handle, stderr=handle)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _keys(http: HttpReceiver, smtp: SmtpHandler) -> tuple[Counter[str], Counter[str]]:
    """How often each notification arrived (answered 200 / accepted), by idempotency key."""
    hooks = Counter(h.headers["Idempotency-Key"] for h in http.delivered())
    with smtp.lock:
        mails = Counter(m.message["X-VCISC-Idempotency-Key"] for m in smtp.mails)
    return hooks, mails


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpHandler, int]]:
    http = HttpReceiver().start()
    handler = SmtpHandler(delay=0.4)  # each e-mail takes a while: the batch is in flight
    controller = start_smtp(handler)
    yield http, handler, controller.port
    controller.stop()
    http.stop()


def test_a_worker_killed_mid_batch_loses_nothing(
    tmp_path: Path, receivers: tuple[HttpReceiver, SmtpHandler, int]
) -> None:
    http, smtp, port = receivers
    env = _env({"VCISC_DATA_DIR": str(tmp_path)}, port)  # the embedded SQLite, one worker
    subprocess.run([VCISC, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.notify.seed", "--orgs", "10", "--contacts", "2",
         "--webhook", f"{http.url}/slow/400"],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert json.loads(seeded.stdout)["contacts"] == 20
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    try:
        _wait(lambda: len(http.hits) >= 5, 30, "the first worker to start sending")
    finally:
        first.send_signal(signal.SIGKILL)  # mid-batch: requests in flight, nothing recorded
        first.wait(timeout=10)
    with sqlite3.connect(tmp_path / "vcisc.sqlite3") as db:
        in_flight = db.execute("SELECT count(*) FROM notify_delivery WHERE status='sending'")
        assert in_flight.fetchone()[0] > 0  # the kill really interrupted deliveries
    second = _worker(env, log)
    try:
        _wait(lambda: [len(c) for c in _keys(http, smtp)] == [20, 20], 60, "every notification")
        with sqlite3.connect(tmp_path / "vcisc.sqlite3") as db:
            _wait(
                lambda: (
                    db.execute(
                        "SELECT count(*) FROM notify_delivery WHERE status != 'sent'"
                    ).fetchone()[0]
                    == 0
                ),
                30,
                "every delivery to be recorded as sent",
            )
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0, log.read_text()[-2000:]
    hooks, mails = _keys(http, smtp)
    # At least once each; a notification the killed worker had in flight may come twice.
    assert max(hooks.values()) <= 2 and max(mails.values()) <= 2
    assert "sent" in log.read_text()


pg_only = pytest.mark.skipif(not POSTGRES, reason="several workers need PostgreSQL")


def _pg_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pg_only
@pytest.mark.django_db(transaction=True)
def test_several_workers_never_double_send_and_survive_lost_connections(
    tmp_path: Path, receivers: tuple[HttpReceiver, SmtpHandler, int], settings: Any
) -> None:
    from django.db import connection

    from tests.notify.seed import route_one, seed

    http, smtp, port = receivers
    smtp.delay = 0.05
    settings.CONFIG = settings.CONFIG.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.1/32"]}
    )
    seeded = seed(orgs=12, contacts=2, webhook=f"{http.url}/ok")
    env = _env({"VCISC_DATA_DIR": str(tmp_path), "VCISC_DATABASE_URL": _pg_url()}, port)
    log = tmp_path / "workers.log"
    workers = [_worker(env, log) for _ in range(3)]
    try:
        time.sleep(2)  # let them start (and LISTEN)
        route_one(seeded, title="First")
        _wait(lambda: [len(c) for c in _keys(http, smtp)] == [24, 24], 30, "the first batch")
        hooks, mails = _keys(http, smtp)
        # Three workers, SKIP LOCKED: each notification exactly once when nothing fails.
        assert set(hooks.values()) == {1} and set(mails.values()) == {1}
        # A database restart, as the workers see it: every connection of theirs is cut.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 3
        route_one(seeded, title="Second")
        _wait(lambda: [len(c) for c in _keys(http, smtp)] == [48, 48], 60, "the second batch")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=20) for w in workers]
    assert codes == [0, 0, 0], log.read_text()[-3000:]
    hooks, mails = _keys(http, smtp)
    assert max(hooks.values()) <= 2 and max(mails.values()) <= 2
    assert "LISTEN connection lost" in log.read_text() or "database unavailable" in log.read_text()
