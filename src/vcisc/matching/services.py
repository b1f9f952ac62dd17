"""Load the catalogue and the facts about each organisation, then rank with the pure scorer."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Q

from vcisc.assistance.lifecycle import TERMINAL, OfferState, RfaState
from vcisc.assistance.models import Offer, RequestForAssistance, Routing
from vcisc.federation.models import Capability, NationKind, Organisation, PointOfContact
from vcisc.matching.scoring import CapabilityFacts, MatchResult, Need, OrganisationFacts, rank
from vcisc.oncall import on_call_at

__all__ = ["MATCHABLE_STATES", "engagement_load", "match", "need_of", "organisation_facts"]

MATCHABLE_STATES = (RfaState.TRIAGE, RfaState.CIRCULATED, RfaState.NEEDS_INFO)


def need_of(rfa: RequestForAssistance) -> Need:
    nation = rfa.requester.nation
    return Need(
        services=frozenset(rfa.services_needed),
        sector=rfa.sector,
        requester_org_id=rfa.requester_id,
        requester_nation=nation.code if nation else None,
        requester_in_eu=bool(nation and nation.eu_member),
        requester_is_member=bool(nation and nation.kind == NationKind.MEMBER),
        ics_protocols=frozenset(rfa.ics_protocols),
        ics_vendors=frozenset(v.lower() for v in rfa.ics_vendors),
        languages=frozenset(rfa.languages),
        excluded_org_ids=frozenset(rfa.excluded_organisations),
        excluded_nations=frozenset(rfa.excluded_nations),
        legal_requirements=frozenset(rfa.legal_requirements),
        involves_personal_data=rfa.involves_personal_data,
    )


def _on_call_orgs(now: datetime) -> set[int]:
    result: set[int] = set()
    for org_id, spec, zone in PointOfContact.objects.filter(active=True).values_list(
        "organisation_id", "on_call", "time_zone"
    ):
        if org_id not in result and on_call_at(spec, zone, now):
            result.add(org_id)
    return result


def engagement_load(organisation_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Per organisation: its accepted or active offers on requests still open, which is what
    its capabilities' ``max_concurrent`` counts against (all organisations unless named)."""
    offers = Offer.objects.filter(state__in=[OfferState.ACCEPTED, OfferState.ACTIVE]).exclude(
        rfa__state__in=[s.value for s in TERMINAL]
    )
    if organisation_ids is not None:
        offers = offers.filter(organisation_id__in=list(organisation_ids))
    return dict(
        offers.values_list("organisation_id")
        .annotate(n=Count("id"))
        .values_list("organisation_id", "n")
    )


def _median_response_hours() -> dict[int, float]:
    """Per organisation: median hours from being routed a request to offering on it."""
    routed = {
        (r, o): at
        for r, o, at in Routing.objects.values_list("rfa_id", "organisation_id", "routed_at")
    }
    delays: dict[int, list[float]] = defaultdict(list)
    for rfa_id, org_id, created in Offer.objects.values_list(
        "rfa_id", "organisation_id", "created_at"
    ):
        at = routed.get((rfa_id, org_id))
        if at is not None and created >= at:
            delays[org_id].append((created - at).total_seconds() / 3600)
    return {org: statistics.median(values) for org, values in delays.items()}


def organisation_facts(now: datetime) -> list[OrganisationFacts]:
    """Everything the scorer needs, in a handful of queries regardless of catalogue size."""
    caps: dict[int, list[CapabilityFacts]] = defaultdict(list)
    for c in Capability.objects.filter(active=True).values(
        "id",
        "organisation_id",
        "service_type",
        "depth",
        "sectors",
        "ics_protocols",
        "ics_vendors",
        "languages",
        "max_concurrent",
        "legal_conditions",
    ):
        caps[c["organisation_id"]].append(
            CapabilityFacts(
                id=c["id"],
                service_type=c["service_type"],
                depth=c["depth"],
                sectors=frozenset(c["sectors"]),
                ics_protocols=frozenset(c["ics_protocols"]),
                ics_vendors=frozenset(v.lower() for v in c["ics_vendors"]),
                languages=frozenset(c["languages"]),
                max_concurrent=c["max_concurrent"],
                legal_conditions=frozenset(c["legal_conditions"]),
            )
        )
    load = engagement_load()  # spare capacity
    on_call = _on_call_orgs(now)
    response = _median_response_hours()
    facts = []
    for org in Organisation.objects.select_related("nation").filter(
        Q(active=True), Q(nation__isnull=True) | Q(nation__active=True)
    ):
        nation = org.nation
        facts.append(
            OrganisationFacts(
                id=org.pk,
                name=org.name,
                kind=org.kind,
                nation=nation.code if nation else None,
                nation_kind=nation.kind if nation else None,
                nation_in_eu=bool(nation and nation.eu_member),
                capabilities=tuple(caps.get(org.pk, ())),
                active_engagements=load.get(org.pk, 0),
                on_call_now=org.pk in on_call,
                median_response_hours=response.get(org.pk),
            )
        )
    return facts


def match(rfa: RequestForAssistance, *, now: datetime) -> MatchResult:
    return rank(need_of(rfa), organisation_facts(now))
