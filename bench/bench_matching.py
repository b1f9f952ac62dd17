"""Benchmark: does ranking capabilities grow no faster than linearly with the catalogue?

Run from the repository root::

    .venv/bin/python bench/bench_matching.py            # full run, pure rank() and the DB path
    .venv/bin/python bench/bench_matching.py --quick    # fast smoke run
    .venv/bin/python bench/bench_matching.py --no-db    # pure rank() only, no Django/SQLite

Two synthetic, seeded catalogues are built: 40 nations x 50 capabilities (the peer) and
400 nations x 50 capabilities (ten times the size). The small catalogue is exactly the first 40
nations of the big one. ``vcisc.matching.scoring.rank`` is timed on both with one realistic
request, and the big/small ratio of the median times is set beside the size ratio (10x).
With ``--db`` (the default) the same catalogues are loaded into fresh SQLite databases and
``vcisc.matching.services.organisation_facts(now)`` + ``rank()`` are timed together.

Exit status: 0 when rank() grows no faster than linearly (or within noise); 1 when it grows
clearly superlinearly (median- and min-based ratios both above FAIL_RATIO); 3 when the database
fixture does not reproduce the synthetic catalogue (a bug in this benchmark, not in matching).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import os
import platform
import random
import shutil
import sqlite3
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:  # so that it also runs without an installed package
    sys.path.insert(0, str(ROOT / "src"))

from vcisc.matching.scoring import (  # noqa: E402
    CapabilityFacts,
    MatchResult,
    Need,
    OrganisationFacts,
    rank,
)
from vcisc.vocabulary import (  # noqa: E402
    ICS_PROTOCOLS,
    LEGAL_CONDITIONS,
    Depth,
    ServiceType,
    sector_choices,
)

#: Size of the catalogues (nations); capabilities per nation are the same for both.
SMALL_NATIONS = 40
BIG_NATIONS = 400
CAPABILITIES_PER_NATION = 50
#: Organisations per nation, cycling (1, 2, 2, 3): 80 organisations for 40 nations, 800 for 400.
ORGS_PER_NATION = (1, 2, 2, 3)
#: Big/small time ratio for 10x the catalogue: up to PASS is linear, above FAIL is superlinear.
PASS_RATIO = 13.0
FAIL_RATIO = 15.0
#: A fixed instant (a Wednesday, 10:00 UTC) so that on-call rotas give the same answer each run.
NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)

NEED_SERVICES = ("incident-response", "ics-ot-expertise", "malware-analysis")
REQUESTER_NATION = "EE"
EXCLUDED_NATION = "MT"


# --------------------------------------------------------------------------- synthetic catalogue

#: (code, name, kind, EU member, working languages) of the first 40 nations.
REAL_NATIONS: tuple[tuple[str, str, str, bool, tuple[str, ...]], ...] = (
    ("EE", "Estonia", "member", True, ("et",)),
    ("LV", "Latvia", "member", True, ("lv",)),
    ("LT", "Lithuania", "member", True, ("lt",)),
    ("FI", "Finland", "member", True, ("fi", "sv")),
    ("SE", "Sweden", "member", True, ("sv",)),
    ("PL", "Poland", "member", True, ("pl",)),
    ("DE", "Germany", "member", True, ("de",)),
    ("FR", "France", "member", True, ("fr",)),
    ("NL", "Netherlands", "member", True, ("nl",)),
    ("BE", "Belgium", "member", True, ("nl", "fr", "de")),
    ("DK", "Denmark", "member", True, ("da",)),
    ("NO", "Norway", "member", False, ("no",)),
    ("IS", "Iceland", "member", False, ("is",)),
    ("IE", "Ireland", "member", True, ("ga",)),
    ("PT", "Portugal", "member", True, ("pt",)),
    ("ES", "Spain", "member", True, ("es",)),
    ("IT", "Italy", "member", True, ("it",)),
    ("AT", "Austria", "partner", True, ("de",)),
    ("CZ", "Czechia", "member", True, ("cs",)),
    ("SK", "Slovakia", "member", True, ("sk",)),
    ("HU", "Hungary", "member", True, ("hu",)),
    ("SI", "Slovenia", "member", True, ("sl",)),
    ("HR", "Croatia", "member", True, ("hr",)),
    ("RO", "Romania", "member", True, ("ro",)),
    ("BG", "Bulgaria", "member", True, ("bg",)),
    ("GR", "Greece", "member", True, ("el",)),
    ("CY", "Cyprus", "partner", True, ("el",)),
    ("MT", "Malta", "partner", True, ("mt",)),
    ("LU", "Luxembourg", "member", True, ("lb", "fr", "de")),
    ("GB", "United Kingdom", "member", False, ()),
    ("US", "United States", "member", False, ("es",)),
    ("CA", "Canada", "member", False, ("fr",)),
    ("UA", "Ukraine", "partner", False, ("uk",)),
    ("MD", "Moldova", "partner", False, ("ro",)),
    ("GE", "Georgia", "partner", False, ("ka",)),
    ("JP", "Japan", "partner", False, ("ja",)),
    ("KR", "South Korea", "partner", False, ("ko",)),
    ("AU", "Australia", "partner", False, ()),
    ("NZ", "New Zealand", "observer", False, ()),
    ("CH", "Switzerland", "observer", False, ("de", "fr", "it")),
)
SYNTHETIC_LANGUAGES = ("et", "fi", "de", "fr", "es", "pt", "it", "pl", "ru", "sv", "nl", "tr", "ar")
ICS_VENDORS = (
    "Siemens", "Schneider Electric", "ABB", "Rockwell", "Hitachi Energy", "GE Vernova",
    "Honeywell", "Emerson", "Yokogawa",
)  # fmt: skip
TIME_ZONES = (
    "Europe/Tallinn", "Europe/Berlin", "Europe/Lisbon", "Europe/Kyiv", "America/New_York",
    "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland", "UTC",
)  # fmt: skip
#: Rotas that cover NOW (a Wednesday in every time zone above) and rotas that do not.
ON_CALL_ROTAS = ("24/7", "mon-fri 00:00-24:00", "24/7")
OFF_CALL_ROTAS = ("sat,sun 09:00-17:00", "sat 10:00-14:00", "sun 08:00-20:00")
ICS_HEAVY = {"ics-ot-expertise", "incident-response", "network-monitoring"}
SECTORS = sector_choices()


@dataclass(frozen=True)
class NationRow:
    id: int
    code: str
    name: str
    kind: str
    eu_member: bool


@dataclass(frozen=True)
class CapabilityRow:
    """A capability as stored (vendors in display case, inactive ones included)."""

    id: int
    organisation_id: int
    service_type: str
    depth: str
    sectors: tuple[str, ...]
    ics_protocols: tuple[str, ...]
    ics_vendors: tuple[str, ...]
    languages: tuple[str, ...]
    max_concurrent: int
    legal_conditions: tuple[str, ...]
    active: bool

    def facts(self) -> CapabilityFacts:
        return CapabilityFacts(
            id=self.id,
            service_type=self.service_type,
            depth=self.depth,
            sectors=frozenset(self.sectors),
            ics_protocols=frozenset(self.ics_protocols),
            ics_vendors=frozenset(v.lower() for v in self.ics_vendors),
            languages=frozenset(self.languages),
            max_concurrent=self.max_concurrent,
            legal_conditions=frozenset(self.legal_conditions),
            active=self.active,
        )


@dataclass(frozen=True)
class ContactRow:
    id: int
    organisation_id: int
    on_call: str
    time_zone: str
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    label: str
    nations: list[NationRow]
    organisations: list[OrganisationFacts]  # what the pure scorer gets
    capabilities: list[CapabilityRow]
    contacts: list[ContactRow]
    requester_org_id: int

    @property
    def capability_count(self) -> int:
        return len(self.capabilities)


def _nation_codes() -> list[str]:
    real = [n[0] for n in REAL_NATIONS]
    used = set(real)
    synthetic = (a + b for a, b in itertools.product(string.ascii_uppercase, repeat=2))
    return real + [c for c in synthetic if c not in used]


def _sample(
    rng: random.Random, population: tuple[str, ...] | list[str], low: int, high: int
) -> list[str]:
    return rng.sample(population, rng.randint(low, high))


def build_catalogue(label: str, nations: int, seed: int) -> Catalogue:
    """Deterministic for a seed; the first N nations are the same whatever the size."""
    codes = _nation_codes()
    if nations > len(codes):
        raise ValueError(f"at most {len(codes)} nations have distinct ISO-like codes")
    services = list(ServiceType.values)
    depths = list(Depth.values)
    legal = list(LEGAL_CONDITIONS)
    nation_rows: list[NationRow] = []
    orgs: list[OrganisationFacts] = [
        OrganisationFacts(  # the secretariat: no nation, no capabilities, never a candidate
            id=1,
            name="VCISC Secretariat",
            kind="secretariat",
            nation=None,
            nation_kind=None,
            nation_in_eu=False,
            capabilities=(),
        )
    ]
    cap_rows: list[CapabilityRow] = []
    contacts: list[ContactRow] = []
    next_org_id, next_contact_id = 2, 1
    requester_org_id = 0

    for index in range(nations):
        rng = random.Random(f"vcisc-bench:{seed}:{index}")  # str seeds are stable across runs
        code = codes[index]
        if index < len(REAL_NATIONS):
            _, name, kind, eu, own_languages = REAL_NATIONS[index]
        else:
            name = f"Synthetic nation {code}"
            kind = rng.choices(["member", "partner", "observer"], weights=[6, 3, 1])[0]
            eu = rng.random() < 0.5
            own_languages = tuple(_sample(rng, SYNTHETIC_LANGUAGES, 1, 2))
        nation_rows.append(NationRow(index + 1, code, name, kind, eu))
        zone = rng.choice(TIME_ZONES)

        kinds = ["cert", "cyber-command", "law-enforcement"][: ORGS_PER_NATION[index % 4]]
        if len(kinds) == 2 and rng.random() < 0.5:
            kinds[1] = "industry-partner"
        labels = {
            "cert": f"CERT-{code}",
            "cyber-command": f"{code} Cyber Command",
            "law-enforcement": f"{code} Police Cyber Unit",
            "industry-partner": f"{code} Trusted Industry Partner",
        }
        org_ids = list(range(next_org_id, next_org_id + len(kinds)))
        next_org_id += len(kinds)
        if code == REQUESTER_NATION:
            requester_org_id = org_ids[0]

        per_org: dict[int, list[CapabilityRow]] = {oid: [] for oid in org_ids}
        for j in range(CAPABILITIES_PER_NATION):
            service = rng.choice(services)
            protocols: list[str] = []
            vendors: list[str] = []
            if (service in ICS_HEAVY and rng.random() < 0.6) or rng.random() < 0.05:
                protocols = _sample(rng, ICS_PROTOCOLS, 1, 4)
                vendors = _sample(rng, ICS_VENDORS, 0, 3)
            languages = [*(["en"] if rng.random() < 0.9 else []), *own_languages]
            if rng.random() < 0.1:
                languages.append(rng.choice(SYNTHETIC_LANGUAGES))
            owner = org_ids[rng.choices(range(len(org_ids)), weights=[3, 2, 1][: len(org_ids)])[0]]
            row = CapabilityRow(
                id=index * CAPABILITIES_PER_NATION + j + 1,
                organisation_id=owner,
                service_type=service,
                depth=rng.choices(depths, weights=[30, 45, 25])[0],
                sectors=() if rng.random() < 0.25 else tuple(_sample(rng, SECTORS, 1, 3)),
                ics_protocols=tuple(protocols),
                ics_vendors=tuple(vendors),
                languages=tuple(dict.fromkeys(languages)),
                max_concurrent=rng.choices([1, 2, 3, 5], weights=[4, 3, 2, 1])[0],
                legal_conditions=() if rng.random() < 0.7 else tuple(_sample(rng, legal, 1, 2)),
                active=rng.random() < 0.97,
            )
            per_org[owner].append(row)
            cap_rows.append(row)

        for oid, kind_of_org in zip(org_ids, kinds, strict=True):
            on_call = rng.random() < 0.55
            rotas = [rng.choice(ON_CALL_ROTAS if on_call else OFF_CALL_ROTAS)]
            if rng.random() < 0.4:
                rotas.append(rng.choice(OFF_CALL_ROTAS))
            for rota in rotas:
                contacts.append(
                    ContactRow(next_contact_id, oid, rota, zone, ("en", *own_languages))
                )
                next_contact_id += 1
            orgs.append(
                OrganisationFacts(
                    id=oid,
                    name=labels[kind_of_org],
                    kind=kind_of_org,
                    nation=code,
                    nation_kind=kind,
                    nation_in_eu=eu,
                    capabilities=tuple(c.facts() for c in per_org[oid]),
                    active_engagements=rng.choices([0, 1, 2, 3], weights=[5, 3, 1, 1])[0],
                    on_call_now=on_call,
                    median_response_hours=(
                        None if rng.random() < 0.2 else round(rng.uniform(0.25, 36.0), 1)
                    ),
                )
            )
    return Catalogue(label, nation_rows, orgs, cap_rows, contacts, requester_org_id)


def the_need(requester_org_id: int) -> Need:
    """Ransomware at an electricity operator: IR + ICS/OT + malware analysis, in et or en."""
    return Need(
        services=frozenset(NEED_SERVICES),
        sector="energy/electricity",
        requester_org_id=requester_org_id,
        requester_nation=REQUESTER_NATION,
        requester_in_eu=True,
        requester_is_member=True,
        ics_protocols=frozenset({"iec-60870-5-104", "modbus"}),
        languages=frozenset({"et", "en"}),
        excluded_nations=frozenset({EXCLUDED_NATION}),
        legal_requirements=frozenset(),  # eu-only-transfer not required
        involves_personal_data=True,
    )


# ---------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Timing:
    samples_ns: list[int]
    full_collections: list[int]  # generation-2 collections CPython ran during each sample

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ns)

    @property
    def best(self) -> int:
        return min(self.samples_ns)

    @property
    def full_gcs(self) -> float:
        return statistics.mean(self.full_collections)


#: Written between samples so that every sample starts from cold CPU caches (twice a large L3).
FLUSH_BYTES = 64 * 1024 * 1024


class CacheFlusher:
    """Evict the CPU caches: a 2,000-capability catalogue fits in L3, a 20,000 one does not.

    Without this the small catalogue would be timed warm and the big one cold, and the ratio
    would measure the cache hierarchy instead of the code.
    """

    def __init__(self, size: int = FLUSH_BYTES) -> None:
        self._source = bytes(range(256)) * (size // 256)
        self._target = bytearray(len(self._source))

    def __call__(self) -> None:
        self._target[:] = self._source


def measure(
    fns: Mapping[str, Callable[[], object]],
    repeats: Mapping[str, int],
    warmup: int,
    *,
    gc_enabled: bool = True,
    prepare: Mapping[str, Callable[[], object]] | None = None,
    flush: Callable[[], None] = lambda: None,
) -> dict[str, Timing]:
    """Time each function ``repeats[key]`` times, samples interleaved (small, small, big, ...).

    Interleaving spreads a slow spell of the machine over all catalogues instead of one.
    Before each sample: ``prepare[key]()`` (untimed), a full collection, ``flush()``.
    With ``gc_enabled=False`` the cyclic collector is off while a sample runs: that isolates the
    growth of the code itself from CPython's collection heuristics.
    """
    prepare = prepare or {}
    for key, fn in fns.items():
        for _ in range(warmup):
            prepare.get(key, lambda: None)()
            fn()
    schedule = sorted(
        (i / repeats[key], n, key) for n, key in enumerate(fns) for i in range(repeats[key])
    )
    samples: dict[str, list[int]] = {key: [] for key in fns}
    full: dict[str, list[int]] = {key: [] for key in fns}
    count = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            count[0] += 1

    for _, _, key in schedule:
        prepare.get(key, lambda: None)()
        gc.collect()
        flush()
        count[0] = 0
        gc.callbacks.append(on_gc)
        if not gc_enabled:
            gc.disable()
        try:
            start = time.perf_counter_ns()
            fns[key]()
            samples[key].append(time.perf_counter_ns() - start)
        finally:
            gc.enable()
            gc.callbacks.remove(on_gc)
        full[key].append(count[0])
    return {key: Timing(samples[key], full[key]) for key in fns}


def fmt_ns(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} us"
    return f"{ns:.0f} ns"


def ratios(timings: dict[str, Timing]) -> tuple[float, float]:
    """Big/small by medians (the headline) and by minimums (a second opinion)."""
    big, small = timings["big"], timings["small"]
    return big.median / small.median, big.best / small.best


def verdict(
    median_ratio: float, min_ratio: float, size_ratio: float, *, cause: str = ""
) -> tuple[str, bool]:
    """(text, superlinear?) for big/small time ratios measured at a 10x size ratio.

    The median ratio decides. Above PASS_RATIO it is only called superlinear when the min-based
    ratio agrees (both above FAIL_RATIO): a busy machine slows the long samples of the big
    catalogue more than the short ones of the small one, so it inflates the median ratio, while
    a real regression (a second pass per capability, a sort per organisation...) raises both.
    ``cause`` names a known reason for a ratio above PASS_RATIO, in place of "likely noise".
    """
    seen = f"median-based {median_ratio:.2f}x, min-based {min_ratio:.2f}x, for {size_ratio:.0f}x"
    if median_ratio <= PASS_RATIO:
        return f"no faster than linear ({seen}; limit {PASS_RATIO:.0f}x)", False
    if min(median_ratio, min_ratio) > FAIL_RATIO:
        return f"SUPERLINEAR ({seen}; both above {FAIL_RATIO:.0f}x){cause}", True
    return (
        f"inconclusive ({seen}; above {PASS_RATIO:.0f}x but not both above {FAIL_RATIO:.0f}x)"
        + (cause or ": likely noise, rerun on a quiet machine"),
        False,
    )


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:  # first column left-aligned, numbers right-aligned
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line(row))


# ------------------------------------------------------------------------------- database path


def setup_django(data_dir: Path) -> None:
    """Configure vcisc.settings against a throwaway SQLite directory, whatever the shell says."""
    os.environ["VCISC_DATA_DIR"] = str(data_dir)
    for name in ("VCISC_DATABASE_URL", "VCISC_CONFIG_FILE"):
        os.environ.pop(name, None)  # never benchmark against (or write to) a configured database
    os.environ["VCISC_DEBUG"] = "false"  # DEBUG would record every query and skew the timings
    os.environ["VCISC_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vcisc.settings"
    import django

    django.setup()


def fresh_database(path: Path) -> None:
    """Point the default connection at a new SQLite file and migrate it (as Django's test DBs)."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    connection.close()
    settings.DATABASES["default"]["NAME"] = str(path)
    connection.settings_dict["NAME"] = str(path)
    call_command("migrate", verbosity=0, interactive=False)


def use_database(path: Path) -> None:
    """Switch the default connection to another (already migrated) SQLite file and connect."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = str(path)
    connection.ensure_connection()


def load_catalogue(cat: Catalogue) -> None:
    """Fixture only: bulk_create the directory rows with the synthetic ids."""
    from django.db import connection, transaction

    from vcisc.federation.models import Capability, Nation, Organisation, PointOfContact

    nation_ids = {n.code: n.id for n in cat.nations}
    with transaction.atomic():
        Nation.objects.bulk_create(
            Nation(id=n.id, code=n.code, name=n.name, kind=n.kind, eu_member=n.eu_member)
            for n in cat.nations
        )
        Organisation.objects.bulk_create(
            Organisation(
                id=o.id,
                nation_id=nation_ids[o.nation] if o.nation else None,
                name=o.name,
                short_name=o.name[:40],
                kind=o.kind,
            )
            for o in cat.organisations
        )
        Capability.objects.bulk_create(
            (
                Capability(
                    id=c.id,
                    organisation_id=c.organisation_id,
                    service_type=c.service_type,
                    depth=c.depth,
                    description=f"Synthetic {c.service_type} capability #{c.id}",
                    sectors=list(c.sectors),
                    ics_protocols=list(c.ics_protocols),
                    ics_vendors=list(c.ics_vendors),
                    languages=list(c.languages),
                    max_concurrent=c.max_concurrent,
                    legal_conditions=list(c.legal_conditions),
                    active=c.active,
                )
                for c in cat.capabilities
            ),
            batch_size=1000,
        )
        PointOfContact.objects.bulk_create(
            PointOfContact(
                id=p.id,
                organisation_id=p.organisation_id,
                name=f"Duty desk {p.id}",
                email=f"duty{p.id}@org{p.organisation_id}.example",
                languages=list(p.languages),
                time_zone=p.time_zone,
                on_call=p.on_call,
            )
            for p in cat.contacts
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def same_candidates(pure: MatchResult, db: MatchResult) -> bool:
    """The DB path must find the same organisations, services and on-call status.

    Scores may differ: the fixture has no offer/routing history, so load and response time
    are absent on the DB side, and ties between equally deep capabilities may pick another row.
    """

    def key(result: MatchResult) -> set[tuple[int, tuple[str, ...], float]]:
        return {
            (
                c.organisation_id,
                c.services_covered,
                next(r.points for r in c.reasons if r.factor == "on-call"),
            )
            for c in result.candidates
        }

    return key(pure) == key(db)


# ---------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    parser.add_argument(
        "--db",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time organisation_facts()+rank() on SQLite (default: on; --no-db skips it)",
    )
    parser.add_argument("--seed", type=int, default=2025, help="catalogue seed (default 2025)")
    parser.add_argument("--keep-db", action="store_true", help="keep the temporary SQLite files")
    args = parser.parse_args(argv)

    repeats = {"small": 5, "big": 3} if args.quick else {"small": 30, "big": 15}
    db_repeats = {"small": 2, "big": 2} if args.quick else {"small": 15, "big": 7}
    warmup = 1 if args.quick else 3

    build_start = time.perf_counter()
    catalogues = {
        "small": build_catalogue("small", SMALL_NATIONS, args.seed),
        "big": build_catalogue("big", BIG_NATIONS, args.seed),
    }
    build_s = time.perf_counter() - build_start
    small, big = catalogues["small"], catalogues["big"]
    size_ratio = big.capability_count / small.capability_count
    need = the_need(small.requester_org_id)
    assert big.requester_org_id == small.requester_org_id
    flush = CacheFlusher()
    # The catalogues are the harness's input, not part of a server's heap: move them out of the
    # cyclic GC's sight so that they do not make full collections during the samples costlier.
    gc.collect()
    gc.freeze()

    print(f"vcisc matching benchmark ({'quick' if args.quick else 'full'} run, seed {args.seed})")
    print(
        f"Python {platform.python_version()} on {platform.machine()}; time.perf_counter_ns; "
        f"warm-up {warmup}; samples interleaved; before each: gc.collect() and a "
        f"{FLUSH_BYTES >> 20} MiB cache flush; GC on unless stated; harness data gc.freeze()d"
    )
    print(
        f"request: {' + '.join(NEED_SERVICES)} | sector {need.sector} | "
        f"ICS {', '.join(sorted(need.ics_protocols))} | "
        f"languages {', '.join(sorted(need.languages))} | "
        f"excluding nation {EXCLUDED_NATION} | personal data | no legal requirements"
    )
    print(
        f"catalogues built in {build_s:.2f} s; "
        f"the small one is the first {SMALL_NATIONS} nations of the big one"
    )
    print()

    results = {k: rank(need, c.organisations) for k, c in catalogues.items()}
    timings = measure(
        {k: functools.partial(rank, need, c.organisations) for k, c in catalogues.items()},
        repeats,
        warmup,
        flush=flush,
    )
    print("rank() on in-memory facts (pure scoring)")
    rows = []
    for k, cat in catalogues.items():
        t = timings[k]
        rows.append(
            [
                k,
                str(len(cat.nations)),
                str(len(cat.organisations)),
                str(cat.capability_count),
                str(len(results[k].candidates)),
                str(len(results[k].excluded)),
                str(len(t.samples_ns)),
                fmt_ns(t.median),
                fmt_ns(t.best),
                f"{t.full_gcs:.1f}",
                fmt_ns(t.median / cat.capability_count),
            ]
        )
    print_table(
        ["catalogue", "nations", "orgs", "capabilities", "candidates", "excluded", "runs",
         "median", "min", "full GCs/run", "median/capability"],
        rows,
    )  # fmt: skip
    ratio, min_ratio = ratios(timings)
    text, superlinear = verdict(ratio, min_ratio, size_ratio)
    print(
        f"big/small: time {ratio:.2f}x for {size_ratio:.2f}x the capabilities "
        f"(min-based {min_ratio:.2f}x)"
    )
    top = results["small"].candidates[0]
    print(f"top candidate (small): {top.organisation_name}, score {top.score}")
    print()

    db_texts = {"": "skipped (--no-db)"}
    fixture_ok = True
    if args.db:
        data_dir = Path(tempfile.mkdtemp(prefix="vcisc-bench-"))
        try:
            setup_django(data_dir)
            import django
            from django.db import connection

            from vcisc.matching.services import organisation_facts

            def db_path() -> MatchResult:
                return rank(need, organisation_facts(NOW))

            paths: dict[str, Path] = {}
            load_s: dict[str, float] = {}
            db_results: dict[str, MatchResult] = {}
            for k, cat in catalogues.items():
                paths[k] = data_dir / f"catalogue-{len(cat.nations)}.sqlite3"
                fresh_database(paths[k])
                start = time.perf_counter()
                load_catalogue(cat)
                load_s[k] = time.perf_counter() - start
                db_results[k] = db_path()
                fixture_ok &= same_candidates(results[k], db_results[k])
            switch = {k: functools.partial(use_database, p) for k, p in paths.items()}
            db_fns = dict.fromkeys(catalogues, db_path)
            db_on = measure(db_fns, db_repeats, 1, prepare=switch, flush=flush)
            db_off = measure(db_fns, db_repeats, 0, prepare=switch, flush=flush, gc_enabled=False)
            connection.close()
            print(
                f"organisation_facts(now) + rank() on SQLite {sqlite3.sqlite_version} "
                f"(Django {django.get_version()}, fresh database per catalogue, new connection "
                "per sample)"
            )
            db_rows = []
            for k, cat in catalogues.items():
                t = db_on[k]
                db_rows.append(
                    [
                        k,
                        str(cat.capability_count),
                        str(len(cat.contacts)),
                        f"{load_s[k]:.2f} s",
                        str(len(db_results[k].candidates)),
                        str(len(t.samples_ns)),
                        fmt_ns(t.median),
                        fmt_ns(t.best),
                        f"{t.full_gcs:.1f}",
                        fmt_ns(t.median / cat.capability_count),
                        fmt_ns(db_off[k].median),
                        fmt_ns(db_off[k].median / cat.capability_count),
                    ]
                )
            print_table(
                ["catalogue", "capabilities", "contacts", "load", "candidates", "runs", "median",
                 "min", "full GCs/run", "median/capability", "GC off: median", "/capability"],
                db_rows,
            )  # fmt: skip
            db_ratio, db_min_ratio = ratios(db_on)
            off_ratio, off_min_ratio = ratios(db_off)
            gc_step = ""
            if db_on["big"].full_gcs > db_on["small"].full_gcs:
                gc_step = (
                    f": big calls ran {db_on['big'].full_gcs:.1f} full GCs each, small ones "
                    f"{db_on['small'].full_gcs:.1f} (CPython's GC threshold; compare GC off)"
                )
            db_texts = {
                "GC on": verdict(db_ratio, db_min_ratio, size_ratio, cause=gc_step)[0],
                "GC off": verdict(off_ratio, off_min_ratio, size_ratio)[0],
            }
            print(
                f"big/small: time {db_ratio:.2f}x with GC on (min-based {db_min_ratio:.2f}x), "
                f"{off_ratio:.2f}x with GC off (min-based {off_min_ratio:.2f}x), "
                f"for {size_ratio:.2f}x the capabilities"
            )
            print(
                "fixture check: DB path finds the same candidates as the pure path"
                if fixture_ok
                else "fixture check FAILED: DB path and pure path disagree on the candidates"
            )
            print()
        finally:
            if args.keep_db:
                print(f"(kept {data_dir})")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)

    print(f"verdict rank():            {text}")
    for label, db_text in db_texts.items():
        head = f"verdict DB path {label}:" if label else "verdict DB path:"
        print(f"{head:26} {db_text}{' [informational]' if label else ''}")
    if not fixture_ok:
        return 3
    return 1 if superlinear else 0


if __name__ == "__main__":
    sys.exit(main())
