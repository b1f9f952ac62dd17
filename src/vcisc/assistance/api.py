"""Requests for assistance, matching, routing, offers, timeline and metrics: thin routes.

Every read goes through :mod:`vcisc.authz`; every write through :mod:`vcisc.assistance.services`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from vcisc import authz
from vcisc.assistance import metrics, services
from vcisc.assistance.lifecycle import RfaState, RfaStateName, allowed_actions
from vcisc.assistance.models import Offer, RequestForAssistance, Routing
from vcisc.errors import Conflict, Forbidden
from vcisc.federation.models import User
from vcisc.http import DbInt, InputSchema, StrictSchema, user_of
from vcisc.matching.services import MATCHABLE_STATES, match
from vcisc.tlp import TlpName
from vcisc.vocabulary import EuImpactName, ServiceName, UrgencyName

router = Router(tags=["requests"])

ServiceT = ServiceName
TlpT = TlpName
UrgencyT = UrgencyName
EuImpactT = EuImpactName
Short = Annotated[str, Field(min_length=1, max_length=60)]
Lang = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
NationCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


# --- schemas ------------------------------------------------------------------------------------


class RfaFields(StrictSchema):
    title: Annotated[str, Field(min_length=3, max_length=200)]
    affected_entity: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(min_length=1, max_length=20000)]
    rsit_class: Short
    rsit_type: Short
    sector: Short
    severity: Annotated[int, Field(ge=0, le=5)]
    services_needed: Annotated[list[ServiceT], Field(min_length=1, max_length=7)]
    urgency: UrgencyT
    tlp: TlpT
    eu_impact: EuImpactT | Literal[""] = ""
    impact: Annotated[str, Field(max_length=10000)] = ""
    measures_taken: Annotated[str, Field(max_length=10000)] = ""
    other_support: Annotated[str, Field(max_length=5000)] = ""
    handling_caveats: Annotated[str, Field(max_length=5000)] = ""
    legal_requirements: Annotated[list[Short], Field(max_length=10)] = []
    involves_personal_data: bool = False
    excluded_nations: Annotated[list[NationCode], Field(max_length=60)] = []
    excluded_organisations: Annotated[list[DbInt], Field(max_length=200)] = []
    languages: Annotated[list[Lang], Field(max_length=20)] = []
    ics_protocols: Annotated[list[Short], Field(max_length=20)] = []
    ics_vendors: Annotated[list[Short], Field(max_length=20)] = []
    needed_by: datetime | None = None


class RfaIn(RfaFields):
    submit: bool = Field(False, description="submit at once instead of keeping a draft")


class RfaPatch(StrictSchema):
    title: Annotated[str, Field(min_length=3, max_length=200)] | None = None
    affected_entity: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(min_length=1, max_length=20000)] | None = None
    rsit_class: Short | None = None
    rsit_type: Short | None = None
    sector: Short | None = None
    severity: Annotated[int, Field(ge=0, le=5)] | None = None
    services_needed: Annotated[list[ServiceT], Field(min_length=1, max_length=7)] | None = None
    urgency: UrgencyT | None = None
    tlp: TlpT | None = None
    eu_impact: EuImpactT | Literal[""] | None = None
    impact: Annotated[str, Field(max_length=10000)] | None = None
    measures_taken: Annotated[str, Field(max_length=10000)] | None = None
    other_support: Annotated[str, Field(max_length=5000)] | None = None
    handling_caveats: Annotated[str, Field(max_length=5000)] | None = None
    legal_requirements: Annotated[list[Short], Field(max_length=10)] | None = None
    involves_personal_data: bool | None = None
    excluded_nations: Annotated[list[NationCode], Field(max_length=60)] | None = None
    excluded_organisations: Annotated[list[DbInt], Field(max_length=200)] | None = None
    languages: Annotated[list[Lang], Field(max_length=20)] | None = None
    ics_protocols: Annotated[list[Short], Field(max_length=20)] | None = None
    ics_vendors: Annotated[list[Short], Field(max_length=20)] | None = None
    needed_by: datetime | None = None


class Clock(Schema):
    due: datetime
    at: datetime | None
    state: Literal["running", "met", "breached", "void"]


class RfaOut(Schema):
    id: UUID
    reference: str
    state: str
    tlp: str
    is_exercise: bool
    access: Literal["metadata", "content"]
    involvement: list[str]
    allowed_actions: list[str]
    requester: str | None
    requester_nation: str | None
    sector: str
    severity: int
    services_needed: list[str]
    urgency: str
    languages: list[str]
    ics_protocols: list[str]
    ics_vendors: list[str]
    needed_by: datetime | None
    created_at: datetime
    submitted_at: datetime | None
    triaged_at: datetime | None
    circulated_at: datetime | None
    first_offer_at: datetime | None
    accepted_at: datetime | None
    closed_at: datetime | None
    deadlines: dict[str, Clock]
    engagement_id: UUID | None
    # Content: null when the caller's access is "metadata" (see authz).
    title: str | None = None
    affected_entity: str | None = None
    description: str | None = None
    rsit_class: str | None = None
    rsit_type: str | None = None
    impact: str | None = None
    measures_taken: str | None = None
    other_support: str | None = None
    handling_caveats: str | None = None
    legal_requirements: list[str] | None = None
    involves_personal_data: bool | None = None
    excluded_nations: list[str] | None = None
    excluded_organisations: list[int] | None = None
    eu_impact: str | None = None


def rfa_out(
    user: User,
    rfa: RequestForAssistance,
    now: datetime | None = None,
    viewer: authz.Viewer | None = None,
) -> dict[str, Any]:
    """The request as this user may see it (content fields only with content access)."""
    now = now or timezone.now()
    viewer = viewer or authz.Viewer.of(user, [rfa.pk])
    access = viewer.access(rfa)
    involvement = sorted(viewer.involvement(rfa))
    nation = rfa.requester.nation
    engagement = getattr(rfa, "engagement", None)
    data: dict[str, Any] = {
        "id": rfa.pk,
        "reference": rfa.reference,
        "state": rfa.state,
        "tlp": rfa.tlp,
        "is_exercise": rfa.is_exercise,
        "access": "content" if access is authz.Access.CONTENT else "metadata",
        "involvement": involvement,
        "allowed_actions": [a.value for a in allowed_actions(rfa.rfa_state)],
        "requester": rfa.requester.name,
        "requester_nation": nation.code if nation else None,
        "sector": rfa.sector,
        "severity": rfa.severity,
        "services_needed": rfa.services_needed,
        "urgency": rfa.urgency,
        "languages": rfa.languages,
        "ics_protocols": rfa.ics_protocols,
        "ics_vendors": rfa.ics_vendors,
        "needed_by": rfa.needed_by,
        "created_at": rfa.created_at,
        "submitted_at": rfa.submitted_at,
        "triaged_at": rfa.triaged_at,
        "circulated_at": rfa.circulated_at,
        "first_offer_at": rfa.first_offer_at,
        "accepted_at": rfa.accepted_at,
        "closed_at": rfa.closed_at,
        "deadlines": rfa.clocks(now),
        "engagement_id": engagement.pk
        if engagement is not None
        and (
            "participant" in involvement
            or "requester" in involvement
            or "secretariat" in involvement
        )
        else None,
    }
    if access is authz.Access.CONTENT:
        for field in services.RFA_CONTENT_FIELDS:
            data[field] = getattr(rfa, field)
    return data


class RfaFilter(InputSchema):
    state: RfaStateName | None = None
    severity: Annotated[int | None, Field(ge=0, le=5)] = None
    sector: str | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0


class RfaList(Schema):
    count: int
    items: list[RfaOut]


class TransitionIn(StrictSchema):
    action: Annotated[str, Field(max_length=40)]
    reason: Annotated[str, Field(max_length=2000)] = ""


class ReasonOut(Schema):
    factor: str
    points: float
    max_points: float
    detail: str


class CandidateOut(Schema):
    organisation_id: int
    organisation: str
    nation: str | None
    score: float
    services_covered: list[str]
    capability_ids: list[int]
    reasons: list[ReasonOut]
    routed: bool


class ExclusionOut(Schema):
    organisation_id: int
    organisation: str
    reason: str


class MatchOut(Schema):
    rfa_id: UUID
    candidates: list[CandidateOut]
    excluded: list[ExclusionOut]


class RouteIn(StrictSchema):
    organisations: Annotated[list[DbInt], Field(max_length=100)] | None = Field(
        None, description="organisation ids; omit to route to the top suggested matches"
    )
    top: Annotated[int, Field(ge=1, le=50)] = 5


class RoutingOut(Schema):
    organisation_id: int
    organisation: str = Field(alias="organisation.name")
    routed_at: datetime
    suggested: bool
    score: float | None


class RouteOut(Schema):
    rfa: RfaOut
    routed: list[RoutingOut]
    already_routed: list[int]
    notifications_queued: int


class OfferIn(StrictSchema):
    scope: Annotated[str, Field(min_length=1, max_length=5000)]
    team_size: Annotated[int, Field(ge=1, le=500)]
    available_from: datetime
    available_until: datetime
    services: Annotated[list[ServiceT], Field(max_length=7)] = []
    remote: bool = True
    on_site: bool = False
    conditions: Annotated[str, Field(max_length=5000)] = ""
    capability_id: int | None = None


class OfferOut(Schema):
    id: UUID
    rfa_id: UUID
    organisation_id: int
    organisation: str = Field(alias="organisation.name")
    nation: str | None = Field(None, alias="organisation.nation.code")
    state: str
    services: list[str]
    scope: str
    team_size: int
    available_from: datetime
    available_until: datetime
    remote: bool
    on_site: bool
    conditions: str
    capability_id: int | None
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None = Field(
        None, description="null without content access to the request"
    )

    @staticmethod
    def resolve_decision_reason(obj: Offer, context: dict[str, Any]) -> str | None:
        # The requester's words about its request: free text may repeat what TLP:RED protects,
        # so it follows content access, as the same reason in the timeline does.
        user = user_of(context["request"])
        if authz.rfa_access(user, obj.rfa) is not authz.Access.CONTENT:
            return None
        return obj.decision_reason


class OfferActionIn(StrictSchema):
    reason: Annotated[str, Field(max_length=2000)] = ""


class TimelineOut(Schema):
    at: datetime
    kind: str
    summary: str
    detail: str | None = Field(None, description="null without content access to the request")
    organisation: str | None = None


def timeline_out(user: User, rfa: RequestForAssistance) -> list[dict[str, Any]]:
    """The entries the user may read; free-text details only with content access."""
    content = authz.rfa_access(user, rfa) is authz.Access.CONTENT
    return [
        {
            "at": e.at,
            "kind": e.kind,
            "summary": e.summary,
            "detail": e.detail if content else None,
            "organisation": e.actor_organisation.name if e.actor_organisation else None,
        }
        for e in authz.timeline_visible(user, rfa)
    ]


# --- requests -----------------------------------------------------------------------------------


@router.get("/requests", response=RfaList)
def list_requests(request: HttpRequest, filters: Query[RfaFilter]) -> dict[str, Any]:
    user = user_of(request)
    qs = authz.visible_requests(user).select_related("engagement")
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.severity is not None:
        qs = qs.filter(severity=filters.severity)
    if filters.sector:
        qs = qs.filter(sector=filters.sector)
    total = qs.count()
    page = list(qs[filters.offset : filters.offset + filters.limit])
    now = timezone.now()
    viewer = authz.Viewer.of(user, [r.pk for r in page])
    return {"count": total, "items": [rfa_out(user, r, now, viewer) for r in page]}


@router.post("/requests", response={201: RfaOut})
def create_request(request: HttpRequest, body: RfaIn) -> Status[dict[str, Any]]:
    user = user_of(request)
    data = body.model_dump()
    submit = data.pop("submit")
    rfa = services.create_rfa(user, data, submit=submit)
    return Status(201, rfa_out(user, rfa))


@router.get("/requests/{rfa_id}", response=RfaOut)
def get_request(request: HttpRequest, rfa_id: UUID) -> dict[str, Any]:
    user = user_of(request)
    return rfa_out(user, authz.get_rfa(user, rfa_id))


@router.patch("/requests/{rfa_id}", response=RfaOut)
def update_request(request: HttpRequest, rfa_id: UUID, body: RfaPatch) -> dict[str, Any]:
    user = user_of(request)
    rfa = services.update_rfa(user, rfa_id, body.model_dump(exclude_unset=True))
    return rfa_out(user, rfa)


@router.post("/requests/{rfa_id}/transitions", response=RfaOut)
def transition_request(request: HttpRequest, rfa_id: UUID, body: TransitionIn) -> dict[str, Any]:
    user = user_of(request)
    rfa = services.transition(user, rfa_id, body.action, reason=body.reason)
    return rfa_out(user, rfa)


@router.get("/requests/{rfa_id}/matches", response=MatchOut)
def get_matches(request: HttpRequest, rfa_id: UUID) -> dict[str, Any]:
    user = user_of(request)
    rfa = authz.get_rfa(user, rfa_id)
    if not authz.is_coordinator(user):
        raise Forbidden("matching is a secretariat coordinator's tool")
    if rfa.state not in MATCHABLE_STATES:
        raise Conflict(
            f"requests are matched during triage or circulation; it is {rfa.state}",
            state=rfa.state,
            allowed=[a.value for a in allowed_actions(RfaState(rfa.state))],
        )
    result = match(rfa, now=timezone.now())
    routed = set(Routing.objects.filter(rfa=rfa).values_list("organisation_id", flat=True))
    return {
        "rfa_id": rfa.pk,
        "candidates": [
            {
                "organisation_id": c.organisation_id,
                "organisation": c.organisation_name,
                "nation": c.nation,
                "score": c.score,
                "services_covered": list(c.services_covered),
                "capability_ids": list(c.capability_ids),
                "reasons": [r.__dict__ for r in c.reasons],
                "routed": c.organisation_id in routed,
            }
            for c in result.candidates
        ],
        "excluded": [
            {
                "organisation_id": e.organisation_id,
                "organisation": e.organisation_name,
                "reason": e.reason,
            }
            for e in result.excluded
        ],
    }


@router.post("/requests/{rfa_id}/routes", response=RouteOut)
def route_request(request: HttpRequest, rfa_id: UUID, body: RouteIn) -> dict[str, Any]:
    user = user_of(request)
    res = services.route(user, rfa_id, body.organisations, top=body.top)
    return {
        "rfa": rfa_out(user, res.rfa),
        "routed": res.routed,
        "already_routed": res.already,
        "notifications_queued": res.notifications,
    }


@router.get("/requests/{rfa_id}/routes", response=list[RoutingOut])
def list_routes(request: HttpRequest, rfa_id: UUID) -> list[Routing]:
    user = user_of(request)
    rfa = authz.get_rfa(user, rfa_id)
    qs = Routing.objects.filter(rfa=rfa).select_related("organisation")
    # Who else was asked is routing metadata: requester and secretariat only.
    if not (authz.is_secretariat(user) or rfa.requester_id == user.organisation_id):
        qs = qs.filter(organisation=user.organisation)
    return list(qs)


@router.get("/requests/{rfa_id}/timeline", response=list[TimelineOut])
def get_timeline(request: HttpRequest, rfa_id: UUID) -> list[Any]:
    user = user_of(request)
    return timeline_out(user, authz.get_rfa(user, rfa_id))


# --- offers -------------------------------------------------------------------------------------


@router.get("/requests/{rfa_id}/offers", response=list[OfferOut])
def list_offers(request: HttpRequest, rfa_id: UUID) -> list[Offer]:
    user = user_of(request)
    return list(authz.offers_visible(user, authz.get_rfa(user, rfa_id)))


@router.post("/requests/{rfa_id}/offers", response={201: OfferOut})
def create_offer(request: HttpRequest, rfa_id: UUID, body: OfferIn) -> Status[Offer]:
    return Status(201, services.create_offer(user_of(request), rfa_id, body.model_dump()))


@router.get("/offers/{offer_id}", response=OfferOut)
def get_offer(request: HttpRequest, offer_id: UUID) -> Offer:
    return authz.get_offer(user_of(request), offer_id)


@router.post("/offers/{offer_id}/{action}", response=OfferOut)
def act_on_offer(
    request: HttpRequest,
    offer_id: UUID,
    action: Literal["accept", "decline", "withdraw", "start", "complete"],
    body: OfferActionIn | None = None,
) -> Offer:
    reason = body.reason if body else ""
    return services.offer_action(user_of(request), offer_id, action, reason=reason)


# --- metrics ------------------------------------------------------------------------------------


class RfaFiguresOut(Schema):
    rfa_id: UUID
    reference: str
    nation: str | None
    severity: int
    state: str
    hours: dict[str, float | None]


class NationFiguresOut(Schema):
    nation: str | None
    requests: int
    median_hours: dict[str, float | None]


@router.get("/metrics/requests", response=list[RfaFiguresOut], tags=["metrics"])
def request_metrics(request: HttpRequest, nation: str | None = None) -> list[Any]:
    """Hours from submission to triage, first offer, acceptance and closure, per request."""
    qs = authz.visible_requests(user_of(request))
    if nation:
        qs = qs.filter(requester__nation__code=nation.upper())
    return [r.__dict__ for r in metrics.per_request(qs)]


@router.get("/metrics/nations", response=list[NationFiguresOut], tags=["metrics"])
def nation_metrics(request: HttpRequest) -> list[Any]:
    """Median hours per step by requesting nation, over the requests the caller may see."""
    return [r.__dict__ for r in metrics.per_nation(authz.visible_requests(user_of(request)))]
