"""How fast does VCISC ingest STIX 2.1 and correlate indicators, against peers run alongside?

1. Ingestion: a generated bundle through VCISC's streaming importer (every check, patterns
   validated) and through ``stix2.parse`` in the same process, objects/s and the ratio (goal
   ≥ 10×); the same bundle imported into an engagement (``import_indicators``, the real write
   path with correlation) of a store that already holds 1,000,000 indicators vs. an empty one,
   on SQLite and PostgreSQL, per-object cost ratio (goal ≤ 1.30); peak RSS while streaming a
   1,000,000-object bundle (goal < 1 GiB).
2. Correlation: with 10,000,000 stored indicator values, one batch of 100,000 observables looked
   up through ``indicators_elsewhere`` (what ``add_indicators`` calls) on SQLite and PostgreSQL,
   look-ups/s and the ratio to a Python ``set`` over the same keys (goal ≥ 1,000,000/s).

Each database-backed measurement runs in its own worker process (this script with
``--worker``) with its own database. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sharing_fixture as fx  # noqa: E402

DB_PREFIX = "vcisc_bench_sharing"
FULL = {"bundle": 100_000, "store": 1_000_000, "stream": 1_000_000, "stored": 10_000_000}
QUICK = {"bundle": 5_000, "store": 20_000, "stream": 50_000, "stored": 200_000}
#: Every this-many objects of the store benchmark's bundle names a value already stored.
CORRELATE_EVERY = 100
#: Fraction of the correlation batch that is stored in another engagement.
HIT_SHARE = 0.10
STORE_ENGAGEMENTS = 10


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


# --- workers (each in its own process, with its own database) -----------------------------------


def _django(backend: str, db_name: str, keep: bool) -> tuple[str, Any]:
    """Point VCISC at a fresh database of its own and set Django up; return a cleanup."""
    data_dir = tempfile.mkdtemp(prefix="vcisc-bench-sharing-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env.update({"VCISC_DATA_DIR": data_dir, "VCISC_DEBUG": "false", "VCISC_LOG_LEVEL": "WARNING"})
    if backend == "postgresql":
        env["VCISC_DATABASE_URL"] = fx.pg_database(db_name)
    os.environ.clear()
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vcisc.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    def cleanup() -> None:
        from django.db import connections

        connections.close_all()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
            if backend == "postgresql":
                fx.pg_database(db_name, drop_only=True)

    return data_dir, cleanup


def _say(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def worker_store(args: argparse.Namespace) -> None:
    """Hold one engagement store (empty, or ``--store`` indicators in other engagements); on
    every ``round`` line, import the bundle into the target engagement through
    ``import_indicators`` and report the time, then remove what the round added (untimed)."""
    _, cleanup = _django(args.backend, f"{DB_PREFIX}_{args.label}", args.keep_db)
    from django.db import connection, transaction

    from vcisc.engagements.indicators import import_indicators
    from vcisc.engagements.models import Correlation, Indicator

    actors = fx.seed_actors()
    target = fx.open_engagement(actors, "Target engagement")
    load = 0.0
    if args.store:
        others = [fx.open_engagement(actors, f"Stored {i}") for i in range(STORE_ENGAGEMENTS)]
        load = fx.bulk_load_indicators(
            args.store, others, actors.helper, label=f"{args.backend} store: {args.store:,}"
        )
    # The same bundle in both stores: every CORRELATE_EVERY-th object names a value the full
    # store holds (``--stored`` is the full store's size, also for the empty one).
    content = fx.bundle_bytes(
        args.bundle, seed=args.seed, correlate_every=CORRELATE_EVERY, stored=args.stored
    ).decode()
    stored = Indicator.objects.count()
    _say({"ready": True, "stored": stored, "load_seconds": load})
    for line in sys.stdin:
        if line.strip() != "round":
            break
        gc.collect()
        started = time.perf_counter()
        result, report = import_indicators(actors.requester, target.pk, fmt="stix", content=content)
        seconds = time.perf_counter() - started
        with transaction.atomic():
            mine = Indicator.objects.filter(engagement=target)
            Correlation.objects.filter(second__in=mine)._raw_delete(connection.alias)
            mine._raw_delete(connection.alias)
        _say(
            {
                "seconds": seconds,
                "created": len(result.created),
                "correlations": result.correlations,
                "accepted": report.accepted,
            }
        )
    cleanup()


def worker_stream(args: argparse.Namespace) -> None:
    """Generate a bundle of ``--stream`` objects into a file, then stream it through
    ``read_bundle`` from that file; report the peak RSS of this process (ru_maxrss)."""
    from vcisc.sharing.stix.importer import ImportOptions, read_bundle
    from vcisc.tlp import Tlp

    folder = Path(tempfile.mkdtemp(prefix="vcisc-bench-stream-"))
    path = folder / "bundle.json"
    with fx.progress() as bar, path.open("wb") as out:
        task = bar.add_task(f"writing a {args.stream:,}-object bundle", total=args.stream)
        for i, chunk in enumerate(fx.bundle_chunks(args.stream, seed=args.seed)):
            out.write(chunk)
            bar.update(task, completed=min(i * 1000, args.stream))
    size = path.stat().st_size
    before = _rss_now()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    count = 0
    started = time.perf_counter()
    with path.open("rb") as handle, fx.progress() as bar:
        task = bar.add_task("streaming it through read_bundle", total=args.stream)
        reader = read_bundle(handle, ImportOptions(default_tlp=Tlp.AMBER))
        for _ in reader:
            count += 1
            if count % 10_000 == 0:
                bar.update(task, completed=count)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    shutil.rmtree(folder, ignore_errors=True)
    _say(
        {
            "objects": count,
            "accepted": reader.report.accepted,
            "errors": len(reader.report.errors),
            "bytes": size,
            "seconds": seconds,
            "rss_before": before,
            "peak_before": peak_before,
            "peak": peak,
        }
    )


def _rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def worker_correlate(args: argparse.Namespace) -> None:
    """``--stored`` values in other engagements, a batch of ``--batch`` digests (a tenth of them
    stored), timed through ``indicators_elsewhere``; the same keys through a Python set."""
    _, cleanup = _django(args.backend, f"{DB_PREFIX}_corr", args.keep_db)
    import hashlib

    from vcisc.engagements.indicators import digest64_of, indicators_elsewhere

    fx.check_values()
    actors = fx.seed_actors()
    target = fx.open_engagement(actors, "Probing engagement")
    others = [fx.open_engagement(actors, f"Stored {i}") for i in range(STORE_ENGAGEMENTS)]
    keys: set[str] = set()
    load = fx.bulk_load_indicators(
        args.stored,
        others,
        actors.helper,
        on_key=keys.add,
        label=f"{args.backend}: {args.stored:,} indicators",
    )
    rng = random.Random(args.seed)
    hits = int(args.batch * HIT_SHARE)
    batch = [fx.stored_value(n)[2] for n in rng.sample(range(args.stored), hits)]
    batch += [fx.missing_value(n)[2] for n in range(args.batch - hits)]
    rng.shuffle(batch)
    # What add_indicators has for each new indicator before it correlates: the digest and its
    # 64-bit prefix (computed when the row is built), so they are not part of the timing.
    digests = {d: digest64_of(d) for d in (hashlib.sha256(k.encode()).hexdigest() for k in batch)}
    expected = sum(1 for k in batch if k in keys)  # counted once, slowly, as a check
    gc.collect()
    gc.freeze()  # the 10-million-key set is the harness's, not a server's heap
    db_times: list[float] = []
    set_times: list[float] = []
    found_counts = set()
    # Warm-up, untimed but reported: the process's first large look-up builds the in-process
    # filter over every stored key (vcisc.engagements.lookup), once per process.
    started = time.perf_counter()
    indicators_elsewhere(target.pk, digests)
    first_call = time.perf_counter() - started
    for _ in range(args.rounds):
        started = time.perf_counter()
        found = indicators_elsewhere(target.pk, digests)
        db_times.append(time.perf_counter() - started)
        found_counts.add(len(found))
        started = time.perf_counter()
        in_set = len(keys.intersection(batch))
        set_times.append(time.perf_counter() - started)
        found_counts.add(in_set)
    _say(
        {
            "stored": args.stored,
            "batch": args.batch,
            "expected": expected,
            "found": sorted(found_counts),
            "load_seconds": load,
            "first_call": first_call,
            "db": db_times,
            "set": set_times,
        }
    )
    gc.unfreeze()
    cleanup()


# --- the parent: runs the measurements and prints them ------------------------------------------


def _spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _read(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"worker {process.args} ended (status {process.wait()})")
    result: dict[str, Any] = json.loads(line)
    return result


def bench_parse(size: int, seed: int) -> bool:
    """VCISC's read_bundle vs. stix2.parse on one bundle, rounds sandwiched V, S, V."""
    import stix2

    from vcisc.sharing.stix.importer import ImportOptions, read_bundle
    from vcisc.tlp import Tlp

    data = fx.bundle_bytes(size, seed=seed)
    text = data.decode()
    print(f"\n== Ingestion: one generated bundle of {size:,} indicators ({len(data) / 1e6:.1f} MB)")

    def vcisc() -> float:
        gc.collect()
        started = time.perf_counter()
        reader = read_bundle(data, ImportOptions(default_tlp=Tlp.AMBER))
        count = sum(1 for _ in reader)
        seconds = time.perf_counter() - started
        assert count == size and not reader.report.errors, reader.report.errors[:3]
        assert reader.pattern_stats.reference == 0
        return seconds

    def peer() -> float:
        gc.collect()
        started = time.perf_counter()
        parsed = stix2.parse(text, allow_custom=False)
        seconds = time.perf_counter() - started
        assert len(parsed.objects) == size
        del parsed
        return seconds

    # Warm-up, untimed: imports, the pattern validator's first use, the allocator.
    sample = fx.bundle_bytes(2000, seed=seed + 1)
    sum(1 for _ in read_bundle(sample, ImportOptions(default_tlp=Tlp.AMBER)))
    stix2.parse(sample.decode(), allow_custom=False)
    ours = [vcisc()]
    theirs = [peer()]
    ours += [vcisc(), vcisc()]
    mine = statistics.median(ours)
    print(f"  {'':34} {'rate':>14} {'runs (s)':>24}")
    print(
        f"  {'VCISC read_bundle (all checks)':34} {_rate(size, mine)}   "
        + ", ".join(f"{t:.2f}" for t in ours)
    )
    print(
        f"  {'stix2.parse (allow_custom=False)':34} {_rate(size, theirs[0])}   "
        + f"{theirs[0]:.2f}"
    )
    ratio = theirs[0] / mine
    print(
        f"  ratio VCISC / stix2.parse: {ratio:.1f}× (median) "
        f"[{theirs[0] / max(ours):.1f}× – {theirs[0] / min(ours):.1f}×]  goal ≥ 10×  "
        + ("ok" if ratio >= 10 else "BELOW GOAL")
    )
    return True


def bench_store(
    backend: str, bundle: int, store: int, rounds: int, args: argparse.Namespace
) -> bool:
    print(
        f"\n== Import into an engagement ({backend}): {bundle:,}-object bundle through "
        f"import_indicators, store empty vs. {store:,} indicators"
    )
    common = ["--backend", backend, "--bundle", str(bundle), "--seed", str(args.seed)]
    common += ["--stored", str(store)]
    if args.keep_db:
        common.append("--keep-db")
    empty = _spawn("--worker", "store", "--label", "empty", "--store", "0", *common)
    full = _spawn("--worker", "store", "--label", "full", "--store", str(store), *common)
    ok = True
    try:
        ready = {"empty": _read(empty), "full": _read(full)}
        print(
            f"  fixture: {ready['full']['stored']:,} rows in the full store "
            f"(bulk-loaded in {ready['full']['load_seconds']:.1f} s), "
            f"{ready['empty']['stored']:,} in the empty one"
        )
        times: dict[str, list[float]] = {"empty": [], "full": []}
        last: dict[str, dict[str, Any]] = {}
        for i in range(rounds + 1):  # the first round of each is a warm-up
            for label, proc in (("empty", empty), ("full", full)):
                assert proc.stdin is not None
                proc.stdin.write("round\n")
                proc.stdin.flush()
                out = _read(proc)
                if i:
                    times[label].append(out["seconds"])
                last[label] = out
        for label in ("empty", "full"):
            if last[label]["created"] != bundle:
                print(f"  FIXTURE CHECK FAILED: {label} created {last[label]['created']}")
                ok = False
        want = len(range(0, bundle, CORRELATE_EVERY))
        if last["full"]["correlations"] < want * 0.99 or last["empty"]["correlations"]:
            print(f"  FIXTURE CHECK FAILED: correlations {last}")
            ok = False
        print(f"  {'store':10} {'µs/object':>10} {'objects/s':>12} {'correlations':>13}  runs (s)")
        med = {}
        for label in ("empty", "full"):
            med[label] = statistics.median(times[label])
            print(
                f"  {label:10} {med[label] / bundle * 1e6:>10.1f} {bundle / med[label]:>12,.0f} "
                f"{last[label]['correlations']:>13,}  "
                + ", ".join(f"{t:.2f}" for t in times[label])
            )
        ratio = med["full"] / med["empty"]
        low = min(times["full"]) / min(times["empty"])
        print(
            f"  per-object cost full/empty: {ratio:.2f} (median), {low:.2f} (min)  goal ≤ 1.30  "
            + ("ok" if ratio <= 1.30 else "ABOVE GOAL")
        )
    finally:
        for proc in (empty, full):
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            proc.wait()
    return ok


def bench_stream(size: int, seed: int) -> bool:
    print(f"\n== Peak memory: a {size:,}-object bundle streamed from a file (own process)")
    proc = _spawn("--worker", "stream", "--stream", str(size), "--seed", str(seed))
    out = _read(proc)
    proc.wait()
    mib = 1 << 20
    print(
        f"  {out['objects']:,} objects, {out['bytes'] / 1e6:.0f} MB in {out['seconds']:.1f} s "
        f"({out['objects'] / out['seconds']:,.0f}/s); RSS before reading "
        f"{out['rss_before'] / mib:.0f} MiB, peak {out['peak'] / mib:.0f} MiB  goal < 1024 MiB  "
        + ("ok" if out["peak"] < 1 << 30 else "ABOVE GOAL")
    )
    return bool(out["objects"] == size and out["errors"] == 0)


def bench_correlate(
    backend: str, stored: int, batch: int, rounds: int, args: argparse.Namespace
) -> bool:
    print(
        f"\n== Correlation ({backend}): {batch:,} observables against {stored:,} stored "
        f"indicators ({HIT_SHARE:.0%} stored elsewhere)"
    )
    argv = ["--worker", "correlate", "--backend", backend, "--stored", str(stored)]
    argv += ["--batch", str(batch), "--rounds", str(rounds), "--seed", str(args.seed)]
    if args.keep_db:
        argv.append("--keep-db")
    proc = _spawn(*argv)
    out = _read(proc)
    proc.wait()
    print(
        f"  fixture: bulk-loaded in {out['load_seconds']:.1f} s; first look-up of the process "
        f"(builds the in-process filter, untimed) {out['first_call']:.2f} s"
    )
    ok = out["found"] == [out["expected"]]
    if not ok:
        print(f"  FIXTURE CHECK FAILED: expected {out['expected']} hits, got {out['found']}")
    db, in_set = statistics.median(out["db"]), statistics.median(out["set"])
    print(f"  {'':30} {'look-ups/s':>14}  runs (s)")
    print(
        f"  {'indicators_elsewhere':30} {_rate(batch, db)}  "
        + ", ".join(f"{t:.3f}" for t in out["db"])
    )
    print(
        f"  {'Python set (same keys)':30} {_rate(batch, in_set)}  "
        + ", ".join(f"{t:.4f}" for t in out["set"])
    )
    rate = batch / db
    print(
        f"  ratio to the set: {in_set / db:.3f} ({db / in_set:.0f}× slower); "
        f"goal ≥ 1,000,000 look-ups/s  " + ("ok" if rate >= 1e6 else "BELOW GOAL")
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--only", choices=["parse", "store", "stream", "correlate"], action="append"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--keep-db", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--rounds", type=int, default=0, help="measured rounds (default 3 or 5)")
    # worker-only options
    parser.add_argument(
        "--worker", choices=["store", "stream", "correlate"], help=argparse.SUPPRESS
    )
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stored", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"store": worker_store, "stream": worker_stream, "correlate": worker_correlate}[
            args.worker
        ](args)
        return 0
    sizes = QUICK if args.quick else FULL
    batch = 10_000 if args.quick else 100_000
    backends = [b for b in args.backends.split(",") if b]
    parts = args.only or ["parse", "store", "stream", "correlate"]
    if "postgresql" in backends:
        try:
            fx.pg_database(f"{DB_PREFIX}_probe", drop_only=True)
        except Exception as exc:
            print(f"bench_sharing: PostgreSQL is needed ({fx.admin_url()}): {exc}", file=sys.stderr)
            return 2
    load = os.getloadavg()
    print(
        f"bench_sharing ({'quick' if args.quick else 'full'}): {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    ok = True
    if "parse" in parts:
        ok &= bench_parse(sizes["bundle"], args.seed)
    if "store" in parts:
        for backend in backends:
            ok &= bench_store(backend, sizes["bundle"], sizes["store"], args.rounds or 3, args)
    if "stream" in parts:
        ok &= bench_stream(sizes["stream"], args.seed)
    if "correlate" in parts:
        for backend in backends:
            ok &= bench_correlate(backend, sizes["stored"], batch, args.rounds or 5, args)
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
