"""The write path of engagements: participants, members, tasks, notes, SITREPs, review."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from vcisc import authz
from vcisc.assistance.lifecycle import RfaState
from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.assistance.services import record_timeline
from vcisc.audit.log import audit, snapshot
from vcisc.dbutil import clean_or_invalid, reject_nulls
from vcisc.engagements.models import (
    AfterActionReview,
    Engagement,
    EngagementMember,
    Note,
    Participant,
    ParticipantRole,
    SituationReport,
    Task,
    TaskOutcome,
)
from vcisc.errors import Conflict, Forbidden, Invalid, NotFound
from vcisc.federation.models import Role, User
from vcisc.tlp import Tlp

__all__ = [
    "OPEN_STATES",
    "add_member",
    "add_note",
    "add_participant",
    "add_sitrep",
    "add_task",
    "close_engagement",
    "submit_review",
    "update_task",
]

Item = TypeVar("Item", Task, Note, SituationReport)

#: The request states in which the engagement takes work (API, console, TAXII alike).
OPEN_STATES = (RfaState.OFFER_ACCEPTED, RfaState.ACTIVE, RfaState.REPORTING)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _timeline(eng: Engagement, actor: User, kind: str, summary: str, now: datetime) -> None:
    # Workspace events are for the participants only.
    record_timeline(eng.rfa, actor, kind, summary, now, participants_only=True)


def _member(actor: User, eng: Engagement, user: User, now: datetime) -> None:
    member, created = EngagementMember.objects.get_or_create(
        engagement=eng, user=user, defaults={"added_at": now}
    )
    if created:
        audit(actor, "engagement.member", member, now=now, after=snapshot(member))


def add_participant(
    actor: User, rfa: RequestForAssistance, offer: Offer, now: datetime
) -> Engagement:
    """Called when an offer is accepted: open the engagement if needed, add the offerer."""
    eng, created = Engagement.objects.get_or_create(rfa=rfa, defaults={"opened_at": now})
    if created:
        audit(actor, "engagement.open", eng, now=now, after=snapshot(eng))
        req = Participant.objects.create(
            engagement=eng,
            organisation=rfa.requester,
            role=ParticipantRole.REQUESTER,
            joined_at=now,
        )
        audit(actor, "engagement.join", req, now=now, after=snapshot(req))
        _member(actor, eng, rfa.created_by, now)
        _member(actor, eng, actor, now)
    part, joined = Participant.objects.get_or_create(
        engagement=eng,
        organisation=offer.organisation,
        defaults={"role": ParticipantRole.ASSISTING, "offer": offer, "joined_at": now},
    )
    if joined:
        audit(actor, "engagement.join", part, now=now, after=snapshot(part))
        _member(actor, eng, offer.created_by, now)
        _timeline(
            eng, actor, "participant", f"{offer.organisation.name} joined the engagement", now
        )
    return eng


def close_engagement(actor: User, rfa: RequestForAssistance, now: datetime) -> None:
    eng = Engagement.objects.filter(rfa=rfa).first()
    if eng is not None and eng.closed_at is None:
        before = snapshot(eng)
        eng.closed_at = now
        eng.save(update_fields=["closed_at"])
        audit(actor, "engagement.close", eng, now=now, before=before, after=snapshot(eng))


def _workspace(actor: User, engagement_id: UUID, *, writable: bool = True) -> Engagement:
    """The engagement, if the actor's organisation participates and may write now."""
    eng = authz.get_engagement(actor, engagement_id)
    if authz.engagement_access(actor, eng) is not authz.Access.CONTENT:
        raise Forbidden("only participants work in the engagement")
    if not (actor.has_role(Role.LIAISON) or actor.has_role(Role.ANALYST)):
        raise Forbidden("this needs the liaison or analyst role")
    if writable and eng.rfa.state not in OPEN_STATES:
        raise Conflict(
            f"the engagement is not open for work (request is {eng.rfa.state})",
            state=eng.rfa.state,
            allowed=[],
        )
    return eng


def _check_tlp(actor: User, eng: Engagement, tlp: str) -> None:
    try:
        label = Tlp(tlp)
    except ValueError:
        raise Invalid("tlp", f"unknown TLP {tlp!r}") from None
    if (
        label is Tlp.RED
        and not EngagementMember.objects.filter(engagement=eng, user=actor).exists()
    ):
        raise Forbidden("only the engagement's named members may write TLP:RED material")


def _add_item(
    actor: User,
    engagement_id: UUID,
    data: Mapping[str, Any],
    model: type[Item],
    kind: str,
    now: datetime | None,
    fields: Callable[[Engagement], dict[str, Any]],
) -> Item:
    """Add a workspace item: participant check, TLP (the request's by default), common fields,
    validation, audit and timeline, in one transaction."""
    now = _now(now)
    with transaction.atomic():
        eng = _workspace(actor, engagement_id)
        tlp = data.get("tlp") or eng.rfa.tlp
        _check_tlp(actor, eng, tlp)
        item = model(
            engagement=eng,
            author=actor,
            organisation=actor.organisation,
            tlp=tlp,
            created_at=now,
            updated_at=now,
            **fields(eng),
        )
        clean_or_invalid(item, exclude=["engagement", "author", "organisation"])
        item.save()
        audit(actor, f"{kind}.create", item, now=now, after=snapshot(item))
        _timeline(eng, actor, kind, f"{kind.capitalize()} added by {actor.organisation}", now)
        return item


def add_task(
    actor: User, engagement_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> Task:
    def fields(eng: Engagement) -> dict[str, Any]:
        assignee_id = data.get("assignee_id")
        if (
            not isinstance(assignee_id, int)
            or not Participant.objects.filter(engagement=eng, organisation_id=assignee_id).exists()
        ):
            raise Invalid("assignee_id", "tasks are assigned to participant organisations")
        return {
            "title": data["title"],
            "description": data.get("description", ""),
            "assignee_id": assignee_id,
            "due_at": data.get("due_at"),
        }

    return _add_item(actor, engagement_id, data, Task, "task", now, fields)


def add_note(
    actor: User, engagement_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> Note:
    return _add_item(
        actor, engagement_id, data, Note, "note", now, lambda eng: {"body": data["body"]}
    )


def add_sitrep(
    actor: User, engagement_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> SituationReport:
    def fields(eng: Engagement) -> dict[str, Any]:
        return {
            "summary": data["summary"],
            "actions_taken": data.get("actions_taken", ""),
            "next_steps": data.get("next_steps", ""),
            "outlook": data.get("outlook", "stable"),
        }

    return _add_item(actor, engagement_id, data, SituationReport, "sitrep", now, fields)


def update_task(
    actor: User,
    engagement_id: UUID,
    task_id: UUID,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> Task:
    now = _now(now)
    allowed = {"outcome", "title", "description", "due_at"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise Invalid(unknown[0], "cannot be changed here")
    reject_nulls(Task, changes)
    with transaction.atomic():
        eng = _workspace(actor, engagement_id)
        task = (
            Task.objects.select_for_update()
            .filter(authz.item_filter(actor, eng), engagement=eng, pk=task_id)
            .first()
        )
        if task is None:
            raise NotFound(f"task {task_id} not found")
        if "outcome" in changes and changes["outcome"] not in TaskOutcome.values:
            raise Invalid("outcome", f"one of {', '.join(TaskOutcome.values)}")
        before = snapshot(task)
        for name, value in changes.items():
            setattr(task, name, value)
        if task.outcome in (TaskOutcome.SUCCESSFUL, TaskOutcome.FAILED, TaskOutcome.CANCELLED):
            task.completed_at = task.completed_at or now
        task.updated_at = now
        task.save()
        audit(actor, "task.update", task, now=now, before=before, after=snapshot(task))
        _timeline(eng, actor, "task", f"Task #{task.pk} is {task.outcome}", now)
    return task


def add_member(
    actor: User, engagement_id: UUID, user_id: int, *, now: datetime | None = None
) -> EngagementMember:
    """A participant's liaison names a colleague of the same organisation as a member."""
    now = _now(now)
    with transaction.atomic():
        eng = _workspace(actor, engagement_id, writable=False)
        authz.require_role(actor, Role.LIAISON)
        user = User.objects.filter(
            pk=user_id, is_active=True, organisation=actor.organisation
        ).first()
        if user is None:
            raise Invalid("user_id", "not an active user of your organisation")
        member, created = EngagementMember.objects.get_or_create(
            engagement=eng, user=user, defaults={"added_at": now}
        )
        if not created:
            raise Conflict("already a member", allowed=[])
        audit(actor, "engagement.member", member, now=now, after=snapshot(member))
        _timeline(eng, actor, "member", f"{actor.organisation} named a member", now)
    return member


def submit_review(
    actor: User, engagement_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> AfterActionReview:
    """The requester's after-action review, while the request is in REPORTING."""
    now = _now(now)
    with transaction.atomic():
        eng = _workspace(actor, engagement_id)
        rfa = eng.rfa
        if rfa.requester_id != actor.organisation_id:
            raise Forbidden("the requesting organisation writes the after-action review")
        authz.require_role(actor, Role.LIAISON)
        if rfa.state != RfaState.REPORTING:
            raise Conflict(
                f"the review is written in the reporting state; the request is {rfa.state}",
                state=rfa.state,
                allowed=["report"] if rfa.state == RfaState.ACTIVE else [],
            )
        if AfterActionReview.objects.filter(engagement=eng).exists():
            raise Conflict("the after-action review was already submitted", allowed=["close"])
        tlp = data.get("tlp", rfa.tlp)
        _check_tlp(actor, eng, tlp)
        review = AfterActionReview(
            engagement=eng,
            author=actor,
            tlp=tlp,
            what_helped=data["what_helped"],
            what_did_not=data.get("what_did_not", ""),
            lessons=data["lessons"],
            first_deliverable_at=data.get("first_deliverable_at"),
            rating=data.get("rating"),
            created_at=now,
        )
        if (
            review.first_deliverable_at
            and rfa.accepted_at
            and review.first_deliverable_at < rfa.accepted_at
        ):
            raise Invalid("first_deliverable_at", "cannot be before the first offer was accepted")
        clean_or_invalid(review, exclude=["engagement", "author"])
        review.save()
        audit(actor, "review.create", review, now=now, after=snapshot(review))
        _timeline(eng, actor, "review", "After-action review submitted", now)
    return review
