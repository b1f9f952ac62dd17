"""How fast does VCISC's TAXII 2.1 server read a collection, against medallion and a floor server?

The same STIX indicators are loaded into VCISC (an engagement collection, read by a participant
whose TLP filter applies), into medallion (the OASIS reference TAXII 2.1 server, memory
backend) and into a floor server (this script's own: the rows paged from SQLite, no framework);
each runs as its own HTTP server process on 127.0.0.1. One client, used the same way for all
(http.client, keep-alive), times a full paginated read of the collection and ``match[id]``
look-ups. Goal (issue 5): at least 50,000 objects/s on the full read and at least half the
floor server's rates, at 10,000 and at 1,000,000 objects. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import gc
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sharing_fixture as fx  # noqa: E402

DB_PREFIX = "vcisc_bench_taxii"
#: One page: VCISC's largest ``limit`` (vcisc.sharing.taxii.media.MAX_LIMIT), on every server.
PAGE = 10_000
MEDIA = "application/taxii+json;version=2.1"
#: Every this-many fixture objects, one more TLP:RED indicator that the reader must not get.
RED_EVERY = 100
FULL = {"sizes": (10_000, 1_000_000), "lookups": 1000, "medallion_lookups": 100}
QUICK = {"sizes": (1_000, 20_000), "lookups": 200, "medallion_lookups": 20}
#: medallion reads at most this many objects (its cost grows with the square of them).
MEDALLION_MAX = 10_000
MARKS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
STAMP = "2026-11-30T08:00:00.000Z"


# --- the fixture: the same objects for every server -------------------------------------------


def fixture(size: int, seed: int) -> Iterator[tuple[str, str, str]]:
    """``(stix_id, tlp, json text)`` of ``size`` visible indicators (CLEAR, GREEN, AMBER in
    rotation) and, after every ``RED_EVERY``-th, one TLP:RED indicator; deterministic."""
    rng = random.Random(seed)
    visible = ("clear", "green", "amber")
    for n in range(size):
        for tlp in (visible[n % 3], "red") if n % RED_EVERY == RED_EVERY - 1 else (visible[n % 3],):
            sid = f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            m = n if tlp != "red" else n + (1 << 22)
            obj = {
                "type": "indicator",
                "spec_version": "2.1",
                "id": sid,
                "created": STAMP,
                "modified": STAMP,
                "name": f"ipv4 indicator {n}",
                "description": "Seen in the intrusion at a grid operator.",
                "indicator_types": ["malicious-activity"],
                "pattern": f"[ipv4-addr:value = '10.{m >> 16 & 255}.{m >> 8 & 255}.{m & 255}']",
                "pattern_type": "stix",
                "pattern_version": "2.1",
                "valid_from": STAMP,
                "confidence": 60 + n % 40,
                "object_marking_refs": [MARKS[tlp]],
            }
            yield sid, tlp, orjson.dumps(obj).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vcisc_env(data_dir: str, database_url: str | None) -> dict[str, str]:
    """The environment of VCISC's processes: nothing of the caller's ``VCISC_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env.update(
        {
            "VCISC_DATA_DIR": data_dir,
            "VCISC_DEBUG": "false",
            "VCISC_LOG_LEVEL": "WARNING",
            # 1,000 look-ups in a few seconds are far above the default 600/m of one token;
            # the rate-limit check itself still runs on every request.
            "VCISC_API_RATE_PER_TOKEN": "10000000/m",
        }
    )
    if database_url:
        env["VCISC_DATABASE_URL"] = database_url
    return env


# --- worker: load VCISC through its real storage ------------------------------------------------


def worker_load(args: argparse.Namespace) -> None:
    """Migrate a fresh database, open an engagement through the services, materialise it
    (the real read path), bulk-load the fixture as StixObject rows after it, issue the
    reader's token; print what the other servers need."""
    os.environ.clear()
    os.environ.update(_vcisc_env(args.data_dir, args.database_url))
    os.environ["DJANGO_SETTINGS_MODULE"] = "vcisc.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Q

    from vcisc import authz
    from vcisc.federation import services as fs
    from vcisc.sharing.taxii import store
    from vcisc.sharing.taxii.media import Filters
    from vcisc.sharing.taxii.models import CollectionState, StixObject
    from vcisc.sharing.taxii.scopes import get_collection

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    actors = fx.seed_actors()
    eng = fx.open_engagement(actors, "TAXII read benchmark")
    # A participant's analyst who is not a named member: TLP:RED rows are filtered out.
    reader = fs.create_user(
        None, email="analyst@de.example", organisation_id=actors.helper_org_id, roles=["analyst"]
    )
    assert authz.item_filter(reader, eng) != Q(), "the reader's TLP filter applies"
    store.materialise(eng)
    col = get_collection(reader, str(eng.pk))
    base = list(store.rows(col, Filters()).values_list("stix_id", "text"))
    state = CollectionState.objects.get(collection=eng.pk)
    clock = (state.last_added or datetime.now(UTC)) + timedelta(microseconds=1)
    version = datetime.fromisoformat(STAMP)
    batch: list[StixObject] = []
    with transaction.atomic():
        for sid, tlp, text in fixture(args.size, args.seed):
            batch.append(
                StixObject(
                    collection=eng.pk,
                    engagement=eng,
                    stix_id=sid,
                    type="indicator",
                    spec_version="2.1",
                    version=version,
                    date_added=clock,
                    tlp=tlp,
                    text=text,
                )
            )
            clock += timedelta(microseconds=1)
            if len(batch) == 5000:
                StixObject.objects.bulk_create(batch)
                batch = []
        StixObject.objects.bulk_create(batch)
        state.last_added = clock - timedelta(microseconds=1)
        state.save(update_fields=["last_added"])
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # autovacuum's job after a real load
            cur.execute("ANALYZE taxii_stixobject")
    _, token = fs.create_token(None, reader, days=1, name="bench")
    print(
        json.dumps(
            {
                "collection": str(eng.pk),
                "token": token,
                "base": base,
                "seconds": time.perf_counter() - started,
            }
        ),
        flush=True,
    )


# --- worker: the floor server ------------------------------------------------------------------


def build_floor(path: Path, base: list[tuple[str, str]], size: int, seed: int) -> None:
    """The floor's SQLite file: the same rows, in the same order (an integer key for order)."""
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE object (added INTEGER PRIMARY KEY, stix_id TEXT NOT NULL, "
        "tlp TEXT NOT NULL, text TEXT NOT NULL)"
    )
    rows = [(sid, "amber", text) for sid, text in base]
    con.executemany("INSERT INTO object (stix_id, tlp, text) VALUES (?, ?, ?)", rows)
    con.executemany("INSERT INTO object (stix_id, tlp, text) VALUES (?, ?, ?)", fixture(size, seed))
    con.execute("CREATE INDEX object_stix_id ON object (stix_id)")
    con.commit()
    con.close()


def floor_app(db: str) -> Any:
    """The bare minimum of TAXII ``GET objects``: keyset pages of ``PAGE`` rows, ``next``,
    ``match[id]``, the TLP filter in SQL, the stored texts joined, nothing else."""
    from urllib.parse import parse_qs

    con = sqlite3.connect(db, check_same_thread=False)
    page_sql = (
        "SELECT added, text FROM object WHERE added > ? AND tlp != 'red' ORDER BY added LIMIT ?"
    )
    id_sql = "SELECT added, text FROM object WHERE stix_id = ? AND tlp != 'red' ORDER BY added"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = parse_qs(scope["query_string"].decode())
        if "match[id]" in query:
            found = con.execute(id_sql, (query["match[id]"][0],)).fetchall()
        else:
            after = int(query["next"][0]) if "next" in query else -1
            found = con.execute(page_sql, (after, PAGE + 1)).fetchall()
        more = len(found) > PAGE
        found = found[:PAGE]
        head = b'{"more":false,'
        if more:
            head = b'{"more":true,"next":' + orjson.dumps(str(found[-1][0])) + b","
        body = head + b'"objects":[' + ",".join(t for _, t in found).encode() + b"]}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", MEDIA.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def worker_floor(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        floor_app(args.db), host="127.0.0.1", port=args.port, log_level="warning", lifespan="off"
    )


# --- worker: medallion -------------------------------------------------------------------------


def medallion_data(path: Path, base: list[tuple[str, str]], size: int, seed: int) -> str:
    """medallion's memory-backend file: one collection with the visible objects (medallion
    has no TLP filter, so it gets what the reader may read) and their manifest."""
    collection = str(uuid.UUID(int=seed, version=4))
    added = datetime(2026, 12, 1, tzinfo=UTC)
    objects, manifest = [], []
    visible = [t for _, t in base] + [t for _, tlp, t in fixture(size, seed) if tlp != "red"]
    for i, text in enumerate(visible):
        obj = orjson.loads(text)
        objects.append(obj)
        manifest.append(
            {
                "id": obj["id"],
                "date_added": (added + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "version": obj.get("modified", obj.get("created", STAMP)),
                "media_type": "application/stix+json;version=2.1",
            }
        )
    data = {
        "/discovery": {
            "title": "medallion (benchmark)",
            "default": "http://127.0.0.1/bench/",
            "api_roots": ["http://127.0.0.1/bench/"],
        },
        "bench": {
            "information": {
                "title": "bench",
                "versions": [MEDIA],
                "max_content_length": 100_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": collection,
                    "title": "bench",
                    "can_read": True,
                    "can_write": False,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest,
                }
            ],
        },
    }
    path.write_bytes(orjson.dumps(data))
    return collection


def worker_medallion(args: argparse.Namespace) -> None:
    import logging

    import medallion
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": args.db,
        },
        "users": {"bench": "bench-password"},
        "taxii": {"max_page_size": PAGE},
    }
    app = medallion.application_instance
    for part in ("users", "taxii", "backend"):
        medallion.set_config(app, part, config)
    medallion.register_blueprints(app)
    # threaded: werkzeug then speaks HTTP/1.1 with keep-alive (one client: one thread).
    make_server("127.0.0.1", args.port, app, threaded=True).serve_forever()


# --- the client ----------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection; the same requests to every server."""

    def __init__(self, port: int, path: str, auth: str | None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
        self.path = path
        self.headers = {"Accept": MEDIA}
        if auth:
            self.headers["Authorization"] = auth

    def reconnect(self) -> None:
        """A fresh connection, before a timed part: uvicorn closes one idle for 5 s."""
        self.conn.close()
        self.conn.connect()

    def get(self, query: str) -> dict[str, Any]:
        self.conn.request("GET", f"{self.path}?{query}", headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} for {self.path}?{query}: {body[:300]!r}")
        result: dict[str, Any] = orjson.loads(body)
        return result

    def full_read(self) -> list[str]:
        ids: list[str] = []
        query = f"limit={PAGE}"
        while True:
            envelope = self.get(query)
            ids += [o["id"] for o in envelope.get("objects", ())]
            if not envelope.get("more"):
                return ids
            query = f"limit={PAGE}&next={quote(str(envelope['next']))}"

    def look_up(self, sid: str) -> list[str]:
        return [o["id"] for o in self.get(f"match[id]={quote(sid)}").get("objects", ())]

    def close(self) -> None:
        self.conn.close()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} ended (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout:.0f} s")


class Server:
    def __init__(
        self, name: str, argv: list[str], env: dict[str, str] | None, path: str, auth: str | None
    ) -> None:
        self.name = name
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port)], env=env, start_new_session=True
        )
        self.path = path
        self.auth = auth
        self.client: Client | None = None

    def ready(self, timeout: float = 300) -> Client:
        _wait_ready(self.port, self.proc, self.name, timeout)
        self.client = Client(self.port, self.path, self.auth)
        return self.client

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- the parent -----------------------------------------------------------------------------------


def _load_vcisc(label: str, size: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    data_dir = folder / f"vcisc-{label}"
    data_dir.mkdir()
    url = None
    if label == "postgresql":
        url = fx.pg_database(f"{DB_PREFIX}_{size}")
    argv = [sys.executable, __file__, "--worker", "load", "--size", str(size)]
    argv += ["--seed", str(args.seed), "--data-dir", str(data_dir)]
    if url:
        argv += ["--database-url", url]
    out = subprocess.run(argv, stdout=subprocess.PIPE, check=True, text=True).stdout
    info: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    info.update(data_dir=str(data_dir), database_url=url)
    return info


def _vcisc_server(label: str, info: dict[str, Any]) -> Server:
    env = _vcisc_env(info["data_dir"], info["database_url"])
    argv = [str(Path(sys.executable).with_name("vcisc")), "serve", "--host", "127.0.0.1"]
    path = f"/taxii2/vcisc/collections/{info['collection']}/objects/"
    return Server(f"VCISC ({label})", argv, env, path, f"Bearer {info['token']}")


def _measure(
    servers: list[Server],
    expected: dict[str, list[str]],
    lookups: dict[str, list[str]],
    rounds: dict[str, int],
) -> tuple[dict[str, dict[str, list[float]]], bool]:
    """Interleaved rounds (each server once a round); the first read and look-ups of each
    server are a warm-up. Returns the times and whether every answer was the expected one."""
    times: dict[str, dict[str, list[float]]] = {s.name: {"read": [], "look": []} for s in servers}
    ok = True
    for s in servers:
        assert s.client is not None
        s.client.reconnect()
        if rounds[s.name] > 1:  # medallion (one round) has no cache to warm: minutes saved
            s.client.full_read()
        for sid in lookups[s.name][:10]:
            s.client.look_up(sid)
    for r in range(max(rounds.values())):
        for s in servers:
            if r >= rounds[s.name]:
                continue
            assert s.client is not None
            gc.collect()
            s.client.reconnect()
            started = time.perf_counter()
            ids = s.client.full_read()
            times[s.name]["read"].append(time.perf_counter() - started)
            if ids != expected[s.name]:
                expected_visible = set(expected[s.name])
                print(
                    f"  FIXTURE CHECK FAILED: {s.name} returned {len(ids):,} objects, "
                    f"{len(set(ids) - expected_visible):,} unexpected, "
                    f"{len(expected_visible - set(ids)):,} missing"
                    + ("" if set(ids) != expected_visible else " (order differs)")
                )
                ok = False
            wrong = 0
            started = time.perf_counter()
            for sid in lookups[s.name]:
                if s.client.look_up(sid) != [sid]:
                    wrong += 1
            times[s.name]["look"].append(time.perf_counter() - started)
            if wrong:
                print(f"  FIXTURE CHECK FAILED: {s.name}: {wrong} look-ups did not find their id")
                ok = False
    return times, ok


def bench_size(size: int, args: argparse.Namespace, conf: dict[str, Any]) -> bool:
    with_medallion = "medallion" in args.servers and size <= MEDALLION_MAX
    red = len(range(RED_EVERY - 1, size, RED_EVERY))
    print(
        f"\n== {size:,} visible indicators (+ {red:,} TLP:RED the reader must not get), "
        f"page size {PAGE:,}"
    )
    folder = Path(tempfile.mkdtemp(prefix="vcisc-bench-taxii-"))
    servers: list[Server] = []
    ok = True
    try:
        infos: dict[str, dict[str, Any]] = {}
        for backend in args.backends:
            started = time.perf_counter()
            infos[backend] = _load_vcisc(backend, size, args, folder)
            print(
                f"  fixture: VCISC ({backend}) loaded in {time.perf_counter() - started:.1f} s "
                f"(migrate, engagement, {len(infos[backend]['base'])} materialised objects, "
                f"bulk_create)"
            )
        base = next(iter(infos.values()))["base"] if infos else []
        visible = [sid for sid, tlp, _ in fixture(size, args.seed) if tlp != "red"]
        hidden = [sid for sid, tlp, _ in fixture(size, args.seed) if tlp == "red"]
        # Each database has its own engagement (ids differ); the peers get the first one's
        # materialised objects, so every server holds as many objects as VCISC.
        expected: dict[str, list[str]] = {}
        for backend, info in infos.items():
            servers.append(_vcisc_server(backend, info))
            expected[servers[-1].name] = [s for s, _ in info["base"]] + visible
        peers = [s for s, _ in base] + visible
        if "floor" in args.servers:
            started = time.perf_counter()
            db = folder / "floor.sqlite3"
            build_floor(db, base, size, args.seed)
            print(f"  fixture: floor SQLite file built in {time.perf_counter() - started:.1f} s")
            argv = [sys.executable, __file__, "--worker", "floor", "--db", str(db)]
            servers.append(Server("floor (SQLite, orjson)", argv, None, "/objects/", None))
            expected[servers[-1].name] = peers
        if with_medallion:
            data = folder / "medallion.json"
            cid = medallion_data(data, base, size, args.seed)
            argv = [sys.executable, __file__, "--worker", "medallion", "--db", str(data)]
            auth = "Basic " + base64.b64encode(b"bench:bench-password").decode()
            path = f"/bench/collections/{cid}/objects/"
            servers.append(Server("medallion 3.0.0 (memory)", argv, None, path, auth))
            expected[servers[-1].name] = peers
        for s in servers:
            s.ready()
        # Fixture check (untimed): a TLP:RED id is not found on the TLP-filtering servers.
        for s in servers:
            assert s.client is not None
            s.client.reconnect()
            if not s.name.startswith("medallion") and s.client.look_up(hidden[0]):
                print(f"  FIXTURE CHECK FAILED: {s.name} returned a TLP:RED object")
                ok = False
        rng = random.Random(args.seed + size)
        # The same positions in every server's collection (the first n of one sample).
        picks = rng.sample(range(len(peers)), min(conf["lookups"], len(peers)))
        lookups: dict[str, list[str]] = {}
        for s in servers:
            n = conf["medallion_lookups"] if s.name.startswith("medallion") else conf["lookups"]
            lookups[s.name] = [expected[s.name][i] for i in picks[:n]]
        rounds = {
            s.name: 1 if s.name.startswith("medallion") else args.rounds or 3 for s in servers
        }
        times, good = _measure(servers, expected, lookups, rounds)
        ok &= good
        _report(servers, times, len(peers), lookups)
    finally:
        for s in servers:
            s.stop()
        if not args.keep_db:
            shutil.rmtree(folder, ignore_errors=True)
            if "postgresql" in args.backends:
                fx.pg_database(f"{DB_PREFIX}_{size}", drop_only=True)
        else:
            print(f"  kept: {folder}")
    return ok


def _report(
    servers: list[Server],
    times: dict[str, dict[str, list[float]]],
    count: int,
    lookups: dict[str, list[str]],
) -> None:
    rates: dict[str, tuple[float, float]] = {}
    print(f"  {'server':28} {'full read obj/s':>16} {'µs/obj':>7} {'match[id] req/s':>16}  runs")
    for s in servers:
        read = statistics.median(times[s.name]["read"])
        look = statistics.median(times[s.name]["look"])
        rates[s.name] = (count / read, len(lookups[s.name]) / look)
        runs = ", ".join(f"{t:.2f}" for t in times[s.name]["read"])
        runs += " s | " + ", ".join(f"{t:.2f}" for t in times[s.name]["look"]) + " s"
        print(
            f"  {s.name:28} {rates[s.name][0]:>16,.0f} {read / count * 1e6:>7.2f} "
            f"{rates[s.name][1]:>16,.1f}  {runs}"
        )
    floor = next((s.name for s in servers if s.name.startswith("floor")), None)
    for s in servers:
        if not s.name.startswith("VCISC"):
            continue
        read_rate, look_rate = rates[s.name]
        line = f"  {s.name}: full read {read_rate:,.0f}/s (goal ≥ 50,000: "
        line += ("ok" if read_rate >= 50_000 else "BELOW GOAL") + ")"
        if floor:
            r_ratio = read_rate / rates[floor][0]
            l_ratio = look_rate / rates[floor][1]
            line += f"; vs floor: read {r_ratio:.2f}, match[id] {l_ratio:.2f} (goal ≥ 0.50: "
            line += ("ok" if min(r_ratio, l_ratio) >= 0.5 else "BELOW GOAL") + ")"
        for other in servers:
            if other.name.startswith("medallion"):
                line += (
                    f"; vs medallion: read {read_rate / rates[other.name][0]:,.0f}×, "
                    f"match[id] {look_rate / rates[other.name][1]:,.0f}×"
                )
        print(line)
    _PER_OBJECT.update({f"{s.name}@{count}": 1 / rates[s.name][0] for s in servers})


#: µs per object on the full read, by server and size, for the growth line at the end.
_PER_OBJECT: dict[str, float] = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--sizes", help="comma-separated sizes instead of 10,000,1,000,000")
    parser.add_argument("--backends", default="sqlite,postgresql", help="VCISC's databases")
    parser.add_argument("--servers", default="floor,medallion", help="the peers to run")
    parser.add_argument("--keep-db", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--rounds", type=int, default=0, help="measured rounds (default 3)")
    # worker-only options
    parser.add_argument("--worker", choices=["load", "floor", "medallion"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"load": worker_load, "floor": worker_floor, "medallion": worker_medallion}[args.worker](
            args
        )
        return 0
    conf = QUICK if args.quick else FULL
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(conf["sizes"])
    args.backends = [b for b in args.backends.split(",") if b]
    args.servers = [s for s in args.servers.split(",") if s]
    if "postgresql" in args.backends:
        try:
            fx.pg_database(f"{DB_PREFIX}_probe", drop_only=True)
        except Exception as exc:
            print(f"bench_taxii: PostgreSQL is needed ({fx.admin_url()}): {exc}", file=sys.stderr)
            return 2
    load = os.getloadavg()
    print(
        f"bench_taxii ({'quick' if args.quick else 'full'}): {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; VCISC on "
        f"{', '.join(args.backends) or '(none)'}, peers {', '.join(args.servers) or '(none)'}"
    )
    ok = True
    for size in sizes:
        ok &= bench_size(size, args, conf)
    if len(sizes) > 1:
        small, big = min(sizes), max(sizes)
        print(f"\n== Per-object cost of the full read, {big:,} vs. {small:,} objects")
        for key in sorted({k.rsplit("@", 1)[0] for k in _PER_OBJECT}):
            b = [v for k, v in _PER_OBJECT.items() if k.startswith(key + "@")]
            if len(b) < 2:
                continue
            ratio = b[-1] / b[0]
            verdict = "ok" if ratio <= 1.30 else "ABOVE GOAL"
            goal = f"  goal ≤ 1.30  {verdict}" if key.startswith("VCISC") else ""
            print(f"  {key:28} {b[0] * 1e6:.2f} → {b[-1] * 1e6:.2f} µs/object: {ratio:.2f}{goal}")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
