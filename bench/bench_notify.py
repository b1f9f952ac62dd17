"""How long from the commit of a routing to the moment each point of contact has the message?

Routes one request for assistance to 30 nations × 3 points of contact — 90 webhooks and 90
e-mails to receivers on 127.0.0.1 — and measures, for every message, the time from the commit
of the routing transaction to its receipt (the HTTP request or the SMTP DATA arriving), with
1 and with 4 `vcisc worker` processes on PostgreSQL. The two configurations are measured in the
same run, rounds interleaved (the idle ones are paused with SIGSTOP), so the 4-worker figures
are printed as ratios against the 1-worker peer. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VCISC = str(Path(sys.executable).parent / "vcisc")
DB_NAME = "vcisc_bench_notify"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


def _admin_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _fresh_database(admin_url: str) -> str:
    with _admin_connect(admin_url) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [DB_NAME]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{DB_NAME}"


@dataclass
class _Receiver:
    process: subprocess.Popen[str]
    port: int


class _Receipts:
    """What the receiver processes report: the first receipt time of each key, per channel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, dict[str, float]] = {"webhook": {}, "email": {}}

    def start(self, kind: str) -> _Receiver:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "notify_receivers.py"), kind],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        port = int(process.stdout.readline())
        threading.Thread(target=self._read, args=(process,), daemon=True).start()
        return _Receiver(process, port)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            channel, key, at = line.split()
            with self.lock:
                self.seen[channel].setdefault(key, float(at))

    def first(self, channel: str, keys: set[str]) -> dict[str, float]:
        with self.lock:
            return {k: t for k, t in self.seen[channel].items() if k in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per configuration")
    parser.add_argument("--orgs", type=int, default=30)
    parser.add_argument("--contacts", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 rounds each (a smoke run)")
    parser.add_argument("--keep-db", action="store_true", help=f"keep the database {DB_NAME}")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    admin_url = os.environ.get(
        "VCISC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    try:
        db_url = _fresh_database(admin_url)
    except Exception as exc:
        print(f"bench_notify: PostgreSQL is needed ({admin_url}): {exc}", file=sys.stderr)
        return 2

    receipts = _Receipts()
    receivers = [receipts.start(kind) for kind in ("webhook", "smtp")]
    webhook_port, smtp_port = (r.port for r in receivers)
    data_dir = tempfile.mkdtemp(prefix="vcisc-bench-notify-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env.update(
        {
            "VCISC_DATA_DIR": data_dir,
            "VCISC_DATABASE_URL": db_url,
            "VCISC_DEBUG": "false",
            "VCISC_LOG_LEVEL": os.environ.get("VCISC_BENCH_LOG_LEVEL", "WARNING"),
            "VCISC_SMTP_HOST": "127.0.0.1",
            "VCISC_SMTP_PORT": str(smtp_port),
            "VCISC_SMTP_SECURITY": "none",
            "VCISC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "VCISC_ESCALATION_POLICY": "",
            "VCISC_DEADLINE_REMINDERS": "",
        }
    )
    os.environ.clear()
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vcisc.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from tests.notify.seed import grid_request, seed

    from vcisc.assistance import services
    from vcisc.federation.models import User
    from vcisc.notify.models import Delivery, OutboxMessage

    call_command("migrate", verbosity=0)
    seeded = seed(
        orgs=args.orgs, contacts=args.contacts, webhook=f"http://127.0.0.1:{webhook_port}/hook"
    )
    per_round = seeded.contacts * 2
    print(
        f"routing to {args.orgs} organisations × {args.contacts} contacts: "
        f"{seeded.contacts} webhooks + {seeded.contacts} e-mails per round, "
        f"{rounds} measured rounds per configuration (+1 warm-up), PostgreSQL"
    )
    log = Path(data_dir) / "workers.log"
    with log.open("ab") as handle:
        workers = [
            subprocess.Popen([VCISC, "worker"], env=env, stdout=handle, stderr=handle)
            for _ in range(4)
        ]
    liaison = User.objects.get(pk=seeded.liaison_id)
    coordinator = User.objects.get(pk=seeded.coordinator_id)

    def measure(label: str, active: int) -> dict[str, list[float]]:
        for i, worker in enumerate(workers):
            worker.send_signal(signal.SIGCONT if i < active else signal.SIGSTOP)
        time.sleep(0.3)
        rfa = services.create_rfa(liaison, grid_request(label, "green"), submit=True)
        services.transition(coordinator, rfa.pk, "start-triage")
        services.route(coordinator, rfa.pk, seeded.organisation_ids)
        committed = time.time()  # route() returns once its transaction has committed
        keys = {
            str(k)
            for k in OutboxMessage.objects.filter(rfa_id=rfa.pk).values_list("key", flat=True)
        }
        deadline = time.monotonic() + 60
        hooks: dict[str, float] = {}
        mails: dict[str, float] = {}
        while time.monotonic() < deadline:
            time.sleep(0.1)
            hooks = receipts.first("webhook", keys)
            mails = receipts.first("email", keys)
            if len(hooks) + len(mails) == per_round:
                break
        if len(hooks) + len(mails) != per_round:
            raise SystemExit(
                f"bench_notify: only {len(hooks) + len(mails)} of {per_round} messages arrived "
                f"({Delivery.objects.exclude(status='sent').count()} deliveries not sent); "
                f"see {log}"
            )
        # Before a worker may be paused, it must have recorded its outcomes: a worker stopped
        # inside its recording transaction would hold the audit chain's lock.
        while Delivery.objects.filter(message__rfa_id=rfa.pk).exclude(status="sent").exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"bench_notify: outcomes were not recorded; see {log}")
            time.sleep(0.05)
        return {
            "webhook": [(t - committed) * 1000 for t in hooks.values()],
            "email": [(t - committed) * 1000 for t in mails.values()],
        }

    results: dict[int, dict[str, list[float]]] = {
        1: {"webhook": [], "email": []},
        4: {"webhook": [], "email": []},
    }
    try:
        time.sleep(2.0)  # the workers start up and LISTEN
        for n in (1, 4):
            measure(f"warm-up {n}", n)
        for r in range(rounds):
            for n in (1, 4):
                sample = measure(f"round {r} with {n}", n)
                for channel, values in sample.items():
                    results[n][channel] += values
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        for receiver in receivers:
            receiver.process.terminate()
            receiver.process.wait(timeout=10)
        from django.db import connections

        connections.close_all()
        if os.environ.get("VCISC_BENCH_LOG_LEVEL"):
            print(f"worker log: {log}")
        if not args.keep_db:
            with _admin_connect(admin_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')

    print()
    print(
        f"{'workers':>7} {'messages':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'webhook p99':>12} {'e-mail p99':>11}"
    )
    summary: dict[int, dict[str, float]] = {}
    for n in (1, 4):
        every = results[n]["webhook"] + results[n]["email"]
        row = {
            "p50": statistics.median(every),
            "p99": _percentile(every, 0.99),
            "max": max(every),
            "webhook_p99": _percentile(results[n]["webhook"], 0.99),
            "email_p99": _percentile(results[n]["email"], 0.99),
        }
        summary[n] = row
        print(
            f"{n:>7} {len(every):>9} {row['p50']:>8.0f} {row['p99']:>8.0f} {row['max']:>8.0f}"
            f" {row['webhook_p99']:>12.0f} {row['email_p99']:>11.0f}"
        )
    print()
    print(
        f"4 workers vs 1 (the peer, same run): p50 ×{summary[4]['p50'] / summary[1]['p50']:.2f}, "
        f"p99 ×{summary[4]['p99'] / summary[1]['p99']:.2f}"
    )
    for n in (1, 4):
        verdict = "met" if summary[n]["p99"] < 1000 else "MISSED"
        print(f"goal p99 < 1 s with {n} worker(s): {verdict} ({summary[n]['p99']:.0f} ms)")
    print(json.dumps({str(n): {k: round(v, 1) for k, v in s.items()} for n, s in summary.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
