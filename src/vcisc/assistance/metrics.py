"""Response-time metrics of requests for assistance (DOMAIN.md §3: time to triage / first offer /
acceptance / first deliverable / closure), always computed over what the caller may see.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet

from vcisc.assistance.models import RequestForAssistance

__all__ = ["STEPS", "NationFigures", "RfaFigures", "per_nation", "per_request"]

#: metric name -> the timestamp it measures to (all from submission)
STEPS = {
    "triage": "triaged_at",
    "first_offer": "first_offer_at",
    "acceptance": "accepted_at",
    "closure": "closed_at",
}


@dataclass(frozen=True)
class RfaFigures:
    rfa_id: UUID
    reference: str
    nation: str | None
    severity: int
    state: str
    hours: dict[str, float | None]


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 3600, 3)


def per_request(requests: QuerySet[RequestForAssistance]) -> list[RfaFigures]:
    rows = []
    for rfa in requests.filter(submitted_at__isnull=False).select_related("requester__nation"):
        nation = rfa.requester.nation
        rows.append(
            RfaFigures(
                rfa_id=rfa.pk,
                reference=rfa.reference,
                nation=nation.code if nation else None,
                severity=rfa.severity,
                state=rfa.state,
                hours={
                    name: _hours(rfa.submitted_at, getattr(rfa, field))
                    for name, field in STEPS.items()
                },
            )
        )
    return rows


@dataclass(frozen=True)
class NationFigures:
    nation: str | None
    requests: int
    median_hours: dict[str, float | None]


def per_nation(requests: QuerySet[RequestForAssistance]) -> list[NationFigures]:
    """Median hours per step, grouped by requesting nation."""
    grouped: dict[str | None, list[RfaFigures]] = defaultdict(list)
    for row in per_request(requests):
        grouped[row.nation].append(row)
    result = []
    for nation, rows in sorted(grouped.items(), key=lambda kv: kv[0] or ""):
        medians: dict[str, float | None] = {}
        for step in STEPS:
            values = [h for r in rows if (h := r.hours[step]) is not None]
            medians[step] = round(statistics.median(values), 3) if values else None
        result.append(NationFigures(nation, len(rows), medians))
    return result
