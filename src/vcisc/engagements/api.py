"""Engagement workspace API: participants, members, tasks, notes, SITREPs, indicators, review."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from vcisc import authz
from vcisc.assistance.api import TimelineOut, timeline_out
from vcisc.engagements import exports, indicators, services
from vcisc.engagements.models import (
    AfterActionReview,
    Engagement,
    EngagementMember,
    Indicator,
    Note,
    Participant,
    SituationReport,
    Task,
)
from vcisc.errors import NotFound
from vcisc.http import DbInt, StrictSchema, user_of
from vcisc.sharing.observables import MAX_URL_LENGTH, ObservableType
from vcisc.sharing.reports import ImportMode
from vcisc.tlp import TlpName

router = Router(tags=["engagements"])

TlpT = TlpName
OutcomeT = Literal["pending", "ongoing", "successful", "failed", "cancelled", "unknown"]


class ParticipantOut(Schema):
    organisation_id: int
    organisation: str = Field(alias="organisation.name")
    nation: str | None = Field(None, alias="organisation.nation.code")
    role: str
    offer_id: UUID | None
    joined_at: datetime


class MemberOut(Schema):
    user_id: int
    email: str = Field(alias="user.email")
    added_at: datetime


class EngagementOut(Schema):
    id: UUID
    rfa_id: UUID
    reference: str
    state: str
    tlp: str
    access: Literal["metadata", "content"]
    opened_at: datetime
    closed_at: datetime | None
    participants: list[ParticipantOut]
    members: list[MemberOut] | None
    has_review: bool


def engagement_out(user: Any, eng: Engagement) -> dict[str, Any]:
    access = authz.engagement_access(user, eng)
    content = access is authz.Access.CONTENT
    return {
        "id": eng.pk,
        "rfa_id": eng.rfa_id,
        "reference": eng.rfa.reference,
        "state": eng.rfa.state,
        "tlp": eng.rfa.tlp,
        "access": "content" if content else "metadata",
        "opened_at": eng.opened_at,
        "closed_at": eng.closed_at,
        "participants": list(
            Participant.objects.filter(engagement=eng).select_related("organisation__nation")
        ),
        "members": list(
            EngagementMember.objects.filter(engagement=eng).select_related("user__organisation")
        )
        if content
        else None,
        "has_review": AfterActionReview.objects.filter(engagement=eng).exists(),
    }


@router.get("/engagements", response=list[EngagementOut])
def list_engagements(request: HttpRequest) -> list[dict[str, Any]]:
    user = user_of(request)
    return [engagement_out(user, e) for e in authz.visible_engagements(user)]


@router.get("/engagements/{eng_id}/timeline", response=list[TimelineOut])
def get_timeline(request: HttpRequest, eng_id: UUID) -> list[Any]:
    """Everything that happened to the engagement's request, as far as the caller may read."""
    user = user_of(request)
    eng = authz.get_engagement(user, eng_id)
    return timeline_out(user, eng.rfa)


@router.get("/engagements/{eng_id}", response=EngagementOut)
def get_engagement(request: HttpRequest, eng_id: UUID) -> dict[str, Any]:
    user = user_of(request)
    return engagement_out(user, authz.get_engagement(user, eng_id))


class MemberIn(StrictSchema):
    user_id: int


@router.post("/engagements/{eng_id}/members", response={201: MemberOut})
def add_member(request: HttpRequest, eng_id: UUID, body: MemberIn) -> Status[EngagementMember]:
    return Status(201, services.add_member(user_of(request), eng_id, body.user_id))


# --- workspace items ----------------------------------------------------------------------------


def _items(request: HttpRequest, eng_id: UUID, model: type[Any]) -> list[Any]:
    user = user_of(request)
    eng = authz.get_engagement(user, eng_id)
    return list(
        model.objects.filter(authz.item_filter(user, eng), engagement=eng).select_related(
            "organisation", "author"
        )
    )


class ItemOut(Schema):
    id: UUID
    tlp: str
    organisation: str = Field(alias="organisation.name")
    author: str = Field(alias="author.email")
    created_at: datetime
    updated_at: datetime


class TaskOut(ItemOut):
    title: str
    description: str
    assignee_id: int
    outcome: str
    due_at: datetime | None
    completed_at: datetime | None


class TaskIn(StrictSchema):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=10000)] = ""
    assignee_id: DbInt
    tlp: TlpT | None = None
    due_at: datetime | None = None


class TaskPatch(StrictSchema):
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=10000)] | None = None
    outcome: OutcomeT | None = None
    due_at: datetime | None = None


@router.get("/engagements/{eng_id}/tasks", response=list[TaskOut])
def list_tasks(request: HttpRequest, eng_id: UUID) -> list[Task]:
    return _items(request, eng_id, Task)


@router.post("/engagements/{eng_id}/tasks", response={201: TaskOut})
def create_task(request: HttpRequest, eng_id: UUID, body: TaskIn) -> Status[Task]:
    return Status(
        201, services.add_task(user_of(request), eng_id, body.model_dump(exclude_none=True))
    )


@router.patch("/engagements/{eng_id}/tasks/{task_id}", response=TaskOut)
def update_task(request: HttpRequest, eng_id: UUID, task_id: UUID, body: TaskPatch) -> Task:
    return services.update_task(
        user_of(request), eng_id, task_id, body.model_dump(exclude_unset=True)
    )


class NoteOut(ItemOut):
    body: str


class NoteIn(StrictSchema):
    body: Annotated[str, Field(min_length=1, max_length=20000)]
    tlp: TlpT | None = None


@router.get("/engagements/{eng_id}/notes", response=list[NoteOut])
def list_notes(request: HttpRequest, eng_id: UUID) -> list[Note]:
    return _items(request, eng_id, Note)


@router.post("/engagements/{eng_id}/notes", response={201: NoteOut})
def create_note(request: HttpRequest, eng_id: UUID, body: NoteIn) -> Status[Note]:
    return Status(
        201, services.add_note(user_of(request), eng_id, body.model_dump(exclude_none=True))
    )


class SitrepOut(ItemOut):
    summary: str
    actions_taken: str
    next_steps: str
    outlook: str


class SitrepIn(StrictSchema):
    summary: Annotated[str, Field(min_length=1, max_length=20000)]
    actions_taken: Annotated[str, Field(max_length=20000)] = ""
    next_steps: Annotated[str, Field(max_length=20000)] = ""
    outlook: Literal["improving", "stable", "worsening"] = "stable"
    tlp: TlpT | None = None


@router.get("/engagements/{eng_id}/sitreps", response=list[SitrepOut])
def list_sitreps(request: HttpRequest, eng_id: UUID) -> list[SituationReport]:
    return _items(request, eng_id, SituationReport)


@router.post("/engagements/{eng_id}/sitreps", response={201: SitrepOut})
def create_sitrep(request: HttpRequest, eng_id: UUID, body: SitrepIn) -> Status[SituationReport]:
    return Status(
        201, services.add_sitrep(user_of(request), eng_id, body.model_dump(exclude_none=True))
    )


class ReviewIn(StrictSchema):
    what_helped: Annotated[str, Field(min_length=1, max_length=20000)]
    what_did_not: Annotated[str, Field(max_length=20000)] = ""
    lessons: Annotated[str, Field(min_length=1, max_length=20000)]
    first_deliverable_at: datetime | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    tlp: TlpT | None = None


class ReviewOut(Schema):
    engagement_id: UUID
    tlp: str
    author: str
    what_helped: str
    what_did_not: str
    lessons: str
    first_deliverable_at: datetime | None
    rating: int | None
    created_at: datetime
    hours: dict[str, float | None]


def _review_out(review: AfterActionReview) -> dict[str, Any]:
    rfa = review.engagement.rfa
    start = rfa.submitted_at

    def hours(end: datetime | None) -> float | None:
        return round((end - start).total_seconds() / 3600, 3) if end and start else None

    return {
        "engagement_id": review.engagement_id,
        "tlp": review.tlp,
        "author": review.author.email,
        "what_helped": review.what_helped,
        "what_did_not": review.what_did_not,
        "lessons": review.lessons,
        "first_deliverable_at": review.first_deliverable_at,
        "rating": review.rating,
        "created_at": review.created_at,
        "hours": {
            "triage": hours(rfa.triaged_at),
            "first_offer": hours(rfa.first_offer_at),
            "acceptance": hours(rfa.accepted_at),
            "first_deliverable": hours(review.first_deliverable_at),
        },
    }


@router.post("/engagements/{eng_id}/review", response={201: ReviewOut})
def create_review(request: HttpRequest, eng_id: UUID, body: ReviewIn) -> Status[dict[str, Any]]:
    review = services.submit_review(user_of(request), eng_id, body.model_dump(exclude_none=True))
    return Status(201, _review_out(review))


@router.get("/engagements/{eng_id}/review", response=ReviewOut)
def get_review(request: HttpRequest, eng_id: UUID) -> dict[str, Any]:
    user = user_of(request)
    eng = authz.get_engagement(user, eng_id)
    review = (
        AfterActionReview.objects.filter(engagement=eng)
        .select_related("author", "engagement__rfa")
        .first()
    )
    if review is None or not authz.item_visible(user, eng, review.tlp):
        raise NotFound(f"no after-action review for engagement {eng_id}")
    return _review_out(review)


# --- indicators (issue 5) -------------------------------------------------------------------------


class IndicatorOut(ItemOut):
    type: str
    value: str
    first_seen: datetime
    last_seen: datetime | None
    confidence: int | None
    for_detection: bool
    description: str
    source: str


class IndicatorIn(StrictSchema):
    value: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
    type: ObservableType | None = Field(None, description="guessed from the value when omitted")
    tlp: TlpT | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    confidence: Annotated[int, Field(ge=0, le=100)] | None = None
    for_detection: bool = True
    description: Annotated[str, Field(max_length=5000)] = ""


class ImportIn(StrictSchema):
    format: Literal["csv", "text", "stix", "misp"]
    content: Annotated[str, Field(min_length=1, max_length=50_000_000)] = Field(
        description="the CSV, text, STIX 2.1 bundle or MISP event JSON, as text"
    )
    on_error: Literal["reject", "skip"] = Field(
        "reject", description="reject the whole import, or skip invalid objects and report them"
    )


class ImportOut(Schema):
    created: int
    duplicates: int
    correlations: int
    feed_matches: int = 0
    report: dict[str, Any]


class CorrelationOut(Schema):
    indicator_id: UUID
    type: str
    value: str
    other_engagement_id: UUID
    other_reference: str
    other_indicator_id: UUID
    #: The other engagement's indicator: the same value, or (``within``) an address or network
    #: inside this network, or the network this address or network is inside.
    other_value: str
    relation: Literal["same", "within"]
    created_at: datetime


@router.get("/engagements/{eng_id}/indicators", response=list[IndicatorOut])
def list_indicators(request: HttpRequest, eng_id: UUID) -> list[Indicator]:
    return _items(request, eng_id, Indicator)


@router.post("/engagements/{eng_id}/indicators", response={201: IndicatorOut})
def create_indicator(request: HttpRequest, eng_id: UUID, body: IndicatorIn) -> Status[Indicator]:
    data = body.model_dump(exclude_none=True)
    return Status(201, indicators.add_indicator(user_of(request), eng_id, data))


@router.post("/engagements/{eng_id}/indicators/import", response={201: ImportOut})
def import_indicators(request: HttpRequest, eng_id: UUID, body: ImportIn) -> Status[Any]:
    """Bulk import. A rejected import answers 422 with the per-object report and stores nothing."""
    mode = ImportMode.ATOMIC if body.on_error == "reject" else ImportMode.SKIP_INVALID
    result, report = indicators.import_indicators(
        user_of(request), eng_id, fmt=body.format, content=body.content, mode=mode
    )
    return Status(
        201,
        {
            "created": len(result.created),
            "duplicates": result.duplicates,
            "correlations": result.correlations,
            "feed_matches": result.feed_matches,
            "report": indicators.report_out(report),
        },
    )


@router.get("/engagements/{eng_id}/correlations", response=list[CorrelationOut])
def list_correlations(request: HttpRequest, eng_id: UUID) -> list[dict[str, Any]]:
    """This engagement's indicators also seen in another engagement the caller may read."""
    user = user_of(request)
    return indicators.correlations_visible(user, authz.get_engagement(user, eng_id))


class FeedMatchOut(Schema):
    indicator_id: UUID
    type: str
    value: str
    feed_id: UUID
    feed: str
    #: ``same``: the feed holds this value; ``within``: one of the two is an address or network
    #: inside the other, a network (CIDR containment).
    relation: str
    #: The feed's value (the indicator's own when ``same``).
    feed_value: str
    event_uuid: UUID
    event_info: str
    created_at: datetime


@router.get("/engagements/{eng_id}/feed-matches", response=list[FeedMatchOut])
def list_feed_matches(request: HttpRequest, eng_id: UUID) -> list[dict[str, Any]]:
    """This engagement's indicators (those the caller may read) also in a federation feed."""
    from vcisc.feeds.services import feed_matches_visible

    user = user_of(request)
    return feed_matches_visible(user, authz.get_engagement(user, eng_id))


@router.get("/engagements/{eng_id}/export/stix", response=dict[str, Any])
def export_stix(request: HttpRequest, eng_id: UUID) -> dict[str, Any]:
    """The engagement as a STIX 2.1 bundle: what the caller may read, with TLP 2.0 markings."""
    return exports.stix_bundle(user_of(request), eng_id)


@router.get("/engagements/{eng_id}/export/misp", response=dict[str, Any])
def export_misp(request: HttpRequest, eng_id: UUID) -> dict[str, Any]:
    """The engagement's indicators as a MISP event (TLP:RED ones are left out)."""
    return exports.misp_event(user_of(request), eng_id)
