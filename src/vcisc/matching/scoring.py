"""Rank organisations' declared capabilities against a request for assistance.

Pure code: the caller (``matching.services``) loads the catalogue and the facts about each
organisation (current load, on-call status, past response times) and hands them over as plain
values. The work is one pass over the catalogue, so it grows linearly with its size
(``bench/bench_matching.py`` measures this).

Filters run before ranking: requester exclusions (organisations, nations), the requester's own
organisation, observer nations, inactive capabilities, and legal conditions on both sides
(``vocabulary.LEGAL_CONDITIONS`` / ``LEGAL_REQUIREMENTS``). Every score comes with its reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "WEIGHTS",
    "Candidate",
    "CapabilityFacts",
    "Exclusion",
    "MatchResult",
    "Need",
    "OrganisationFacts",
    "Reason",
    "rank",
]

#: Points per factor; they add up to 100.
WEIGHTS: dict[str, float] = {
    "services": 40.0,
    "sector": 15.0,
    "ics": 10.0,
    "languages": 10.0,
    "capacity": 10.0,
    "on-call": 10.0,
    "response-time": 5.0,
}
_DEPTH_FACTOR = {"basic": 0.6, "advanced": 0.85, "expert": 1.0}


@dataclass(frozen=True)
class Need:
    """What a request asks for, and who asks (for the legal filters)."""

    services: frozenset[str]
    sector: str
    requester_org_id: int
    requester_nation: str | None
    requester_in_eu: bool
    requester_is_member: bool
    ics_protocols: frozenset[str] = frozenset()
    ics_vendors: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    excluded_org_ids: frozenset[int] = frozenset()
    excluded_nations: frozenset[str] = frozenset()
    legal_requirements: frozenset[str] = frozenset()
    involves_personal_data: bool = False


@dataclass(frozen=True)
class CapabilityFacts:
    id: int
    service_type: str
    depth: str
    sectors: frozenset[str]  # empty = any sector
    ics_protocols: frozenset[str]
    ics_vendors: frozenset[str]
    languages: frozenset[str]
    max_concurrent: int
    legal_conditions: frozenset[str]
    active: bool = True


@dataclass(frozen=True)
class OrganisationFacts:
    id: int
    name: str
    kind: str
    nation: str | None
    nation_kind: str | None
    nation_in_eu: bool
    capabilities: tuple[CapabilityFacts, ...]
    active_engagements: int = 0
    on_call_now: bool = False
    median_response_hours: float | None = None
    active: bool = True


@dataclass(frozen=True)
class Reason:
    factor: str
    points: float
    max_points: float
    detail: str


@dataclass(frozen=True)
class Candidate:
    organisation_id: int
    organisation_name: str
    nation: str | None
    score: float
    reasons: tuple[Reason, ...]
    capability_ids: tuple[int, ...]
    services_covered: tuple[str, ...]


@dataclass(frozen=True)
class Exclusion:
    """An organisation filtered out before ranking.

    ``binding`` exclusions (the requester's wishes, legal conditions, observer status) hold even
    when the secretariat picks organisations itself; an organisation that merely declared none of
    the requested services may still be picked on the secretariat's judgement.
    """

    organisation_id: int
    organisation_name: str
    reason: str
    binding: bool = True


@dataclass
class MatchResult:
    candidates: list[Candidate] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)


def _org_exclusion(need: Need, org: OrganisationFacts) -> str | None:
    if not org.active:
        return "organisation is deactivated"
    if org.id == need.requester_org_id:
        return "the requesting organisation itself"
    if org.kind == "secretariat":
        return "the secretariat coordinates and does not offer"
    if org.id in need.excluded_org_ids:
        return "excluded by the requester"
    if org.nation is not None and org.nation in need.excluded_nations:
        return f"nation {org.nation} excluded by the requester"
    if org.nation_kind == "observer":
        return "observer nations do not offer assistance"
    if "eu-only-transfer" in need.legal_requirements and not org.nation_in_eu:
        return "request requires EU-only transfer; organisation is outside the EU"
    if "no-law-enforcement" in need.legal_requirements and org.kind == "law-enforcement":
        return "request excludes law-enforcement organisations"
    if "members-only" in need.legal_requirements and org.nation_kind != "member":
        return "request is for member nations only"
    return None


def _capability_exclusion(need: Need, cap: CapabilityFacts) -> str | None:
    if not cap.active:
        return "deactivated"
    if "no-personal-data" in cap.legal_conditions and need.involves_personal_data:
        return "will not process personal data; the request involves personal data"
    if "eu-only-transfer" in cap.legal_conditions and not need.requester_in_eu:
        return "assists EU requesters only"
    if "members-only" in cap.legal_conditions and not need.requester_is_member:
        return "assists member nations only"
    return None


def _fraction(wanted: frozenset[str], offered: Iterable[frozenset[str]]) -> tuple[float, set[str]]:
    have: set[str] = set()
    for values in offered:
        have |= values & wanted
    return (len(have) / len(wanted) if wanted else 1.0), have


def _score(need: Need, org: OrganisationFacts, usable: list[CapabilityFacts]) -> Candidate:
    by_service: dict[str, CapabilityFacts] = {}
    for cap in usable:
        best = by_service.get(cap.service_type)
        if best is None or _DEPTH_FACTOR.get(cap.depth, 0.6) > _DEPTH_FACTOR.get(best.depth, 0.6):
            by_service[cap.service_type] = cap
    covered = sorted(by_service)
    missing = sorted(need.services - set(covered))
    chosen = [by_service[s] for s in covered]
    reasons: list[Reason] = []

    w = WEIGHTS["services"]
    depth_sum = sum(_DEPTH_FACTOR.get(c.depth, 0.6) for c in chosen)
    points = w * depth_sum / len(need.services)
    detail = "covers " + ", ".join(f"{c.service_type} ({c.depth})" for c in chosen)
    if missing:
        detail += "; missing " + ", ".join(missing)
    reasons.append(Reason("services", points, w, detail))

    w = WEIGHTS["sector"]
    top = need.sector.split("/", 1)[0]
    if any(need.sector in c.sectors or top in c.sectors for c in chosen):
        reasons.append(Reason("sector", w, w, f"declares the {need.sector} sector"))
    elif any(not c.sectors for c in chosen):
        reasons.append(Reason("sector", w * 2 / 3, w, "declares no sector limits"))
    else:
        reasons.append(Reason("sector", 0.0, w, f"does not declare the {need.sector} sector"))

    w = WEIGHTS["ics"]
    wanted_ics = need.ics_protocols | need.ics_vendors
    if not wanted_ics:
        reasons.append(Reason("ics", w, w, "no ICS protocols or vendors requested"))
    else:
        fraction, have = _fraction(wanted_ics, (c.ics_protocols | c.ics_vendors for c in chosen))
        detail = f"knows {', '.join(sorted(have))}" if have else "knows none of them"
        reasons.append(
            Reason("ics", w * fraction, w, f"{detail} of {', '.join(sorted(wanted_ics))}")
        )

    w = WEIGHTS["languages"]
    if not need.languages:
        reasons.append(Reason("languages", w, w, "no language requested"))
    else:
        common = sorted(need.languages & set().union(*(c.languages for c in chosen)))
        if common:
            reasons.append(Reason("languages", w, w, f"works in {', '.join(common)}"))
        else:
            reasons.append(Reason("languages", 0.0, w, "shares no requested language"))

    w = WEIGHTS["capacity"]
    limit = max(c.max_concurrent for c in chosen)
    spare = max(limit - org.active_engagements, 0)
    reasons.append(
        Reason(
            "capacity",
            w * spare / limit if limit > 0 else 0.0,
            w,
            f"{spare} of {limit} concurrent engagements free",
        )
    )

    w = WEIGHTS["on-call"]
    if org.on_call_now:
        reasons.append(Reason("on-call", w, w, "a point of contact is on call now"))
    else:
        reasons.append(Reason("on-call", 0.0, w, "no point of contact on call now"))

    w = WEIGHTS["response-time"]
    hours = org.median_response_hours
    if hours is None:
        reasons.append(Reason("response-time", w / 2, w, "no past responses to judge by"))
    else:
        factor = (
            1.0
            if hours <= 1
            else 0.8
            if hours <= 4
            else 0.6
            if hours <= 12
            else 0.4
            if hours <= 24
            else 0.2
        )
        reasons.append(
            Reason("response-time", w * factor, w, f"median {hours:.1f} h from routing to offer")
        )

    rounded = tuple(Reason(r.factor, round(r.points, 2), r.max_points, r.detail) for r in reasons)
    # The total is the sum of the parts as shown, so the reasons always add up to the score.
    score = round(sum(r.points for r in rounded), 2)
    return Candidate(
        organisation_id=org.id,
        organisation_name=org.name,
        nation=org.nation,
        score=score,
        reasons=rounded,
        capability_ids=tuple(c.id for c in chosen),
        services_covered=tuple(covered),
    )


def rank(need: Need, organisations: Iterable[OrganisationFacts]) -> MatchResult:
    """Filter, then score and rank organisations; best first, ties by name."""
    if not need.services:
        raise ValueError("a request must name at least one service type to be matched")
    result = MatchResult()
    for org in organisations:
        why = _org_exclusion(need, org)
        if why is not None:
            result.excluded.append(Exclusion(org.id, org.name, why))
            continue
        usable: list[CapabilityFacts] = []
        dropped: list[str] = []
        for cap in org.capabilities:
            if cap.service_type not in need.services:
                continue
            cap_why = _capability_exclusion(need, cap)
            if cap_why is None:
                usable.append(cap)
            else:
                dropped.append(f"{cap.service_type}: {cap_why}")
        if dropped and not usable:
            result.excluded.append(Exclusion(org.id, org.name, "; ".join(dropped)))
            continue
        if not usable:
            result.excluded.append(
                Exclusion(org.id, org.name, "offers none of the requested services", binding=False)
            )
            continue
        result.candidates.append(_score(need, org, usable))
    result.candidates.sort(key=lambda c: (-c.score, c.organisation_name))
    return result
