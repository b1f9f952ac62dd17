"""One scenario of the leak hunt, and the profiles that say how many to play.

``LEAK_PROFILE`` selects a profile: ``ci`` (the default, run by ``make test``), ``deep``
(thousands of scenarios, ``make leak-deep``) or ``exhaustive`` (every user requests every route
with every id, in fewer scenarios). ``LEAK_EXAMPLES`` overrides the number of scenarios.
(Not ``VCISC_…``: the configuration loader refuses unknown variables of its own prefix.)
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction

from tests.leak.build import Plan, Size, build
from tests.leak.checker import Checker
from tests.leak.conftest import LogCapture
from tests.leak.routes import Route

__all__ = ["PROFILES", "Profile", "hunt", "profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    examples: int
    #: Probes per user and scenario on average, or "all": every route with every id.
    probes: float | str
    size: Size = field(default_factory=Size)


PROFILES = {
    # make test: 200 small scenarios, 1.5 probes per user on average.
    "ci": Profile("ci", 200, 1.5),
    # make leak-deep: larger federations, more requests, more probes, thousands of scenarios.
    "deep": Profile("deep", 2000, 4, Size(orgs=4, users=3, secretariat_users=2, rfas=4)),
    # every user requests every route with every id of the scenario.
    "exhaustive": Profile("exhaustive", 40, "all", Size(rfas=3)),
}


def profile() -> Profile:
    name = os.environ.get("LEAK_PROFILE", "ci")
    if name not in PROFILES:
        raise ValueError(f"LEAK_PROFILE={name!r}: one of {', '.join(PROFILES)}")
    chosen = PROFILES[name]
    examples = os.environ.get("LEAK_EXAMPLES")
    if examples:
        chosen = Profile(chosen.name, int(examples), chosen.probes, chosen.size)
    return chosen


def hunt(
    plan: Plan,
    routes: list[Route],
    logs: LogCapture,
    stats: Counter[str],
    probes: float | str,
    post_only: frozenset[str] = frozenset(),
) -> Checker:
    """Build the scenario, probe it as every user, check outbox and logs; roll it all back.

    pytest-django's transaction spans the whole test, not each Hypothesis example: each
    scenario runs in its own atomic block that is rolled back, so scenarios never see each other.
    """
    cache.clear()  # rate-limit counters: each scenario is a fresh world
    with transaction.atomic():
        logs.clear()
        t0 = time.perf_counter()
        built = build(plan)
        t1 = time.perf_counter()
        checker = Checker(built, routes, probes=probes, stats=stats, post_only=post_only)
        extra = checker.sign_in()
        t2 = time.perf_counter()
        checker.run()
        t3 = time.perf_counter()
        checker.check_outbox()
        checker.check_logs(logs.lines, extra)
        t4 = time.perf_counter()
        for name, spent in (("build", t1 - t0), ("sign-in", t2 - t1), ("probes", t3 - t2)):
            stats[f"seconds in {name}"] += round(spent, 3)
        stats["seconds in checks"] += round(t4 - t3, 3)
        stats["scenarios"] += 1
        stats["users"] += len(built.world.people)
        stats["requests"] += len(built.world.rfas)
        stats["correlations"] += len(built.world.correlations)
        stats["federation collections posted to"] += len(built.world.collections)
        stats["feed matches"] += built.world.feed_matches
        stats["engagement TAXII objects"] += sum(
            i.kind == "TAXII object" for i in built.world.items.values()
        )
        transaction.set_rollback(True)
    return checker
