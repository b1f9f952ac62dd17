"""The write path of requests for assistance, routing and offers (STYLE.md habit 1).

Each public function: finds the object through :mod:`vcisc.authz` (404 if the actor's organisation
is not involved), asks the pure state machine whether the step is allowed (409 naming the allowed
actions), checks the actor's role (403), then in one transaction changes the rows, appends the
timeline and the audit record, and queues the notifications in the outbox.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from vcisc import authz
from vcisc.assistance.deadlines import deadlines_for
from vcisc.assistance.lifecycle import (
    Action,
    IllegalTransition,
    OfferAction,
    OfferState,
    RfaState,
    allowed_actions,
    next_offer_state,
    next_state,
)
from vcisc.assistance.models import Offer, RequestForAssistance, Routing, TimelineEntry
from vcisc.audit.log import audit, snapshot
from vcisc.dbutil import reject_nulls
from vcisc.errors import Conflict, Forbidden, Invalid
from vcisc.federation.models import NationKind, Organisation, Role, User
from vcisc.matching import services as matching
from vcisc.matching.scoring import Candidate
from vcisc.notify import outbox
from vcisc.tlp import Tlp
from vcisc.vocabulary import ICS_PROTOCOLS, LEGAL_REQUIREMENTS, RSIT, ServiceType, sector_choices

__all__ = [
    "RFA_CONTENT_FIELDS",
    "RFA_EDITABLE_FIELDS",
    "RouteResult",
    "create_offer",
    "create_rfa",
    "expire_overdue",
    "offer_action",
    "record_timeline",
    "route",
    "transition",
    "update_rfa",
]

#: Fields a requester sets; editable while the request is a draft or needs information.
RFA_EDITABLE_FIELDS = frozenset(
    {
        "title",
        "affected_entity",
        "description",
        "rsit_class",
        "rsit_type",
        "impact",
        "measures_taken",
        "other_support",
        "handling_caveats",
        "legal_requirements",
        "involves_personal_data",
        "excluded_nations",
        "excluded_organisations",
        "sector",
        "severity",
        "eu_impact",
        "services_needed",
        "urgency",
        "languages",
        "ics_protocols",
        "ics_vendors",
        "needed_by",
        "tlp",
    }
)

#: Fields shown only to those with content access (see authz's table).
RFA_CONTENT_FIELDS = (
    "title",
    "affected_entity",
    "description",
    "rsit_class",
    "rsit_type",
    "impact",
    "measures_taken",
    "other_support",
    "handling_caveats",
    "legal_requirements",
    "involves_personal_data",
    "excluded_nations",
    "excluded_organisations",
    "eu_impact",
)

_REQUESTER_ACTIONS = {Action.SUBMIT, Action.PROVIDE_INFO, Action.WITHDRAW, Action.REPORT}
_SECRETARIAT_ACTIONS = {Action.START_TRIAGE, Action.REQUEST_INFO, Action.REJECT, Action.EXPIRE}
_OWN_ENDPOINT = {
    Action.ROUTE: "POST /requests/{id}/routes",
    Action.ACCEPT_OFFER: "POST /offers/{id}/accept",
}


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _actor_org(actor: User) -> Organisation:
    org = actor.organisation
    if org is None or not org.active or not actor.is_active:
        raise Forbidden("your account belongs to no active organisation")
    return org


def record_timeline(
    rfa: RequestForAssistance,
    actor: User | None,
    kind: str,
    summary: str,
    now: datetime,
    *,
    audience: Organisation | None = None,
    participants_only: bool = False,
    detail: str = "",
) -> None:
    """Append what happened to ``rfa``'s timeline (inside the caller's transaction)."""
    TimelineEntry.objects.create(
        detail=detail[:2000],
        rfa=rfa,
        at=now,
        actor=actor,
        actor_organisation=actor.organisation if actor else None,
        kind=kind,
        summary=summary[:500],
        audience=audience,
        participants_only=participants_only,
    )


# --- validation of request content ---------------------------------------------------------------


def _validate_rfa(rfa: RequestForAssistance) -> None:
    sectors = sector_choices()
    if rfa.sector not in sectors:
        raise Invalid("sector", f"unknown sector {rfa.sector!r}")
    if rfa.rsit_class not in RSIT:
        raise Invalid("rsit_class", f"unknown RSIT class {rfa.rsit_class!r}")
    if rfa.rsit_type not in RSIT[rfa.rsit_class]:
        raise Invalid(
            "rsit_type",
            f"{rfa.rsit_type!r} is not a type of {rfa.rsit_class} "
            f"(one of {', '.join(RSIT[rfa.rsit_class])})",
        )
    if not rfa.services_needed:
        raise Invalid("services_needed", "name at least one service type")
    for field, values, allowed in (
        ("services_needed", rfa.services_needed, ServiceType.values),
        ("ics_protocols", rfa.ics_protocols, ICS_PROTOCOLS),
        ("legal_requirements", rfa.legal_requirements, tuple(LEGAL_REQUIREMENTS)),
    ):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise Invalid(field, f"unknown value(s) {', '.join(map(repr, bad))}")
        if len(set(values)) != len(values):
            raise Invalid(field, "lists each value once")
    for lang in rfa.languages:
        if not (2 <= len(lang) <= 3 and lang.isalpha() and lang.islower()):
            raise Invalid("languages", f"{lang!r} is not an ISO 639 language code")
    for code in rfa.excluded_nations:
        if not (isinstance(code, str) and len(code) == 2 and code.isupper()):
            raise Invalid("excluded_nations", f"{code!r} is not an ISO 3166 alpha-2 code")
    if rfa.excluded_organisations:
        known = set(
            Organisation.objects.filter(pk__in=rfa.excluded_organisations).values_list(
                "pk", flat=True
            )
        )
        missing = [o for o in rfa.excluded_organisations if o not in known]
        if missing:
            raise Invalid("excluded_organisations", f"unknown organisation id(s) {missing}")
    try:
        Tlp(rfa.tlp)
    except ValueError:
        raise Invalid("tlp", f"unknown TLP {rfa.tlp!r}") from None


#: Crockford's base-32 alphabet: no I, L, O or U, so a reference read out on the phone is not
#: misheard or misread.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_LENGTH = 6


def _next_reference(now: datetime) -> str:
    """``RFA-<year>-<6 random characters>``, e.g. ``RFA-2026-7KQ3XD``.

    Random, not counted: a number counting up would tell every requester how many requests the
    federation received before theirs (issue 4, enumeration resistance). 32⁶ ≈ 10⁹ references a
    year; a clash is drawn again, and the unique constraint is the last word.
    """
    prefix = f"RFA-{now.year}-"
    while True:
        tail = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(_REFERENCE_LENGTH))
        reference = prefix + tail
        if not RequestForAssistance.objects.filter(reference=reference).exists():
            return reference


# --- requests -----------------------------------------------------------------------------------


def create_rfa(
    actor: User,
    data: Mapping[str, Any],
    *,
    submit: bool = False,
    now: datetime | None = None,
    is_exercise: bool = False,
) -> RequestForAssistance:
    """File a request (a draft, or submitted at once with ``submit=True``)."""
    now = _now(now)
    org = _actor_org(actor)
    authz.require_role(actor, Role.LIAISON)
    if org.is_secretariat:
        raise Forbidden("the secretariat does not file requests for assistance")
    if org.nation is None or org.nation.kind == NationKind.OBSERVER or not org.nation.active:
        raise Forbidden("observer nations do not file requests for assistance")
    unknown = sorted(set(data) - RFA_EDITABLE_FIELDS)
    if unknown:
        raise Invalid(unknown[0], "unknown field")
    rfa = RequestForAssistance(
        requester=org,
        created_by=actor,
        state=RfaState.DRAFT,
        created_at=now,
        updated_at=now,
        is_exercise=is_exercise,
        **data,
    )
    _validate_rfa(rfa)
    with transaction.atomic():
        rfa.reference = _next_reference(now)
        rfa.save()
        audit(actor, "create", rfa, now=now, after=snapshot(rfa))
        record_timeline(rfa, actor, "created", "Request drafted", now, audience=org)
        if submit:
            _apply(actor, rfa, Action.SUBMIT, "", now)
    return rfa


def update_rfa(
    actor: User, rfa_id: UUID, changes: Mapping[str, Any], *, now: datetime | None = None
) -> RequestForAssistance:
    """Edit content while the request is a draft or awaits more information."""
    now = _now(now)
    with transaction.atomic():
        rfa = authz.get_rfa(actor, rfa_id, for_update=True)
        _require_requester(actor, rfa)
        if rfa.state not in (RfaState.DRAFT, RfaState.NEEDS_INFO):
            raise Conflict(
                f"a request can be edited only as a draft or when information is requested; "
                f"it is {rfa.state}",
                allowed=[a.value for a in allowed_actions(rfa.rfa_state)],
            )
        unknown = sorted(set(changes) - RFA_EDITABLE_FIELDS)
        if unknown:
            raise Invalid(unknown[0], "unknown or read-only field")
        reject_nulls(RequestForAssistance, changes)
        if "severity" in changes and rfa.submitted_at is not None:
            raise Invalid("severity", "fixed once submitted (deadlines derive from it)")
        before = snapshot(rfa)
        for name, value in changes.items():
            setattr(rfa, name, value)
        _validate_rfa(rfa)
        rfa.updated_at = now
        rfa.save()
        audit(actor, "update", rfa, now=now, before=before, after=snapshot(rfa))
        record_timeline(rfa, actor, "edited", "Request edited by the requester", now)
    return rfa


def _require_requester(actor: User, rfa: RequestForAssistance) -> None:
    org = _actor_org(actor)
    if rfa.requester_id != org.pk:
        raise Forbidden("only the requesting organisation may do this")
    authz.require_role(actor, Role.LIAISON)


def _check_rights(actor: User, rfa: RequestForAssistance, action: Action) -> None:
    if action in _REQUESTER_ACTIONS or action is Action.CLOSE:
        _require_requester(actor, rfa)
    elif action in _SECRETARIAT_ACTIONS or action is Action.ROUTE:
        if not authz.is_coordinator(actor):
            raise Forbidden("this is a secretariat coordinator's decision")
    elif action is Action.ACTIVATE and not authz.is_coordinator(actor):
        _require_requester(actor, rfa)


def _apply(
    actor: User | None, rfa: RequestForAssistance, action: Action, reason: str, now: datetime
) -> RequestForAssistance:
    """Move ``rfa`` by ``action`` (already authorised); stamp times; audit; timeline."""
    before = snapshot(rfa)
    target = next_state(rfa.rfa_state, action)
    rfa.state = target
    rfa.updated_at = now
    if action is Action.SUBMIT:
        rfa.submitted_at = now
        dl = deadlines_for(rfa.severity, now)
        rfa.triage_due, rfa.first_offer_due, rfa.acceptance_due = (
            dl.triage_due,
            dl.first_offer_due,
            dl.acceptance_due,
        )
    if action in (Action.ROUTE, Action.REJECT) and rfa.triaged_at is None:
        rfa.triaged_at = now
    if action is Action.ROUTE and rfa.circulated_at is None:
        rfa.circulated_at = now
    if action is Action.ACCEPT_OFFER and rfa.accepted_at is None:
        rfa.accepted_at = now
    if action is Action.ACTIVATE:
        rfa.activated_at = now
    if target is RfaState.CLOSED:
        rfa.closed_at = now
    if target in (RfaState.CLOSED, RfaState.WITHDRAWN, RfaState.REJECTED, RfaState.EXPIRED):
        rfa.ended_at = now
    rfa.save()
    audit(actor, f"rfa.{action.value}", rfa, now=now, before=before, after=snapshot(rfa))
    if before["state"] != rfa.state:
        summary = f"{before['state']} → {rfa.state}"
        # Reasons for rejection or requests for information concern requester and secretariat.
        private = action in (Action.REJECT, Action.REQUEST_INFO, Action.PROVIDE_INFO)
        record_timeline(
            rfa,
            actor,
            f"state.{action.value}",
            summary,
            now,
            audience=rfa.requester if private else None,
            detail=reason,
        )
    return rfa


def transition(
    actor: User, rfa_id: UUID, action: str, *, reason: str = "", now: datetime | None = None
) -> RequestForAssistance:
    """Fire a named lifecycle action on a request."""
    now = _now(now)
    try:
        act = Action(action)
    except ValueError:
        raise Invalid(
            "action", f"unknown action {action!r}; actions are {', '.join(a.value for a in Action)}"
        ) from None
    if act in _OWN_ENDPOINT:
        raise Invalid("action", f"use {_OWN_ENDPOINT[act]} for {act.value}")
    if len(reason) > 2000:
        raise Invalid("reason", "at most 2000 characters")
    with transaction.atomic():
        rfa = authz.get_rfa(actor, rfa_id, for_update=True)
        _allowed_or_conflict(rfa, act)
        _check_rights(actor, rfa, act)
        if act is Action.CLOSE:
            _close_checks(rfa)
        if act in (Action.REJECT, Action.REQUEST_INFO) and not reason.strip():
            raise Invalid("reason", f"say why ({act.value} is sent to the requester)")
        _apply(actor, rfa, act, reason, now)
        if act is Action.ACTIVATE:
            _offers_follow(actor, rfa, OfferState.ACCEPTED, OfferAction.START, now)
        if act is Action.CLOSE:
            _offers_follow(actor, rfa, OfferState.ACTIVE, OfferAction.COMPLETE, now)
        if act in (Action.CLOSE, Action.WITHDRAW):
            from vcisc.engagements.services import close_engagement

            close_engagement(actor, rfa, now)
        if act in (Action.WITHDRAW, Action.EXPIRE, Action.REJECT):
            for offer in rfa.offers.filter(state=OfferState.PROPOSED):
                _offer_move(actor, offer, OfferAction.DECLINE, f"request {rfa.state}", now)
    return rfa


def _allowed_or_conflict(rfa: RequestForAssistance, act: Action) -> None:
    try:
        next_state(rfa.rfa_state, act)
    except IllegalTransition as exc:
        raise Conflict(str(exc), state=exc.state, allowed=list(exc.allowed)) from None


def _close_checks(rfa: RequestForAssistance) -> None:
    from vcisc.engagements.models import AfterActionReview

    if not AfterActionReview.objects.filter(engagement__rfa=rfa).exists():
        raise Conflict(
            "closing needs an after-action review: POST /engagements/{id}/review first",
            state=rfa.state,
            allowed=["withdraw"],
        )


def expire_overdue(*, now: datetime | None = None) -> list[str]:
    """Expire circulated requests whose own deadline passed with no accepted offer."""
    now = _now(now)
    expired: list[str] = []
    due = RequestForAssistance.objects.filter(
        state=RfaState.CIRCULATED, needed_by__isnull=False, needed_by__lt=now
    ).values_list("pk", flat=True)
    for pk in due:
        with transaction.atomic():
            rfa = RequestForAssistance.objects.select_for_update().get(pk=pk)
            if rfa.state != RfaState.CIRCULATED:
                continue
            _apply(None, rfa, Action.EXPIRE, "deadline passed with no accepted offer", now)
            for offer in rfa.offers.filter(state=OfferState.PROPOSED):
                _offer_move(None, offer, OfferAction.DECLINE, "request expired", now)
            expired.append(rfa.reference)
    return expired


# --- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteResult:
    rfa: RequestForAssistance
    routed: list[Routing]
    already: list[int]
    notifications: int


def route(
    actor: User,
    rfa_id: UUID,
    organisation_ids: Sequence[int] | None = None,
    *,
    top: int = 5,
    now: datetime | None = None,
) -> RouteResult:
    """Send the request to organisations: the ``top`` suggested matches, or the given ones.

    The requester's exclusions and legal requirements hold for picked organisations too.
    """
    now = _now(now)
    if not 1 <= top <= 50:
        raise Invalid("top", "must be between 1 and 50")
    with transaction.atomic():
        rfa = authz.get_rfa(actor, rfa_id, for_update=True)
        _allowed_or_conflict(rfa, Action.ROUTE)
        _check_rights(actor, rfa, Action.ROUTE)
        result = matching.match(rfa, now=now)
        by_org: dict[int, Candidate] = {c.organisation_id: c for c in result.candidates}
        binding = {e.organisation_id: e.reason for e in result.excluded if e.binding}
        if organisation_ids is None:
            done = set(Routing.objects.filter(rfa=rfa).values_list("organisation_id", flat=True))
            fresh = [c.organisation_id for c in result.candidates if c.organisation_id not in done]
            chosen = fresh[:top]
            if not chosen:
                raise Conflict(
                    "no further organisation matches this request; pick organisations yourself",
                    state=rfa.state,
                    allowed=["route", "reject", "request-info"],
                )
        else:
            chosen = list(dict.fromkeys(organisation_ids))
            if not chosen:
                raise Invalid("organisations", "name at least one organisation")
            orgs = Organisation.objects.filter(pk__in=chosen, active=True).in_bulk()
            for org_id in chosen:
                if org_id not in orgs:
                    raise Invalid("organisations", f"no active organisation {org_id}")
                if org_id in binding:
                    raise Invalid("organisations", f"{orgs[org_id].name}: {binding[org_id]}")
        already = set(
            Routing.objects.filter(rfa=rfa, organisation_id__in=chosen).values_list(
                "organisation_id", flat=True
            )
        )
        routed: list[Routing] = []
        notes = 0
        for org_id in chosen:
            if org_id in already:
                continue
            cand = by_org.get(org_id)
            row = Routing.objects.create(
                rfa=rfa,
                organisation_id=org_id,
                routed_by=actor,
                routed_at=now,
                suggested=organisation_ids is None or cand is not None,
                score=cand.score if cand else None,
                reasons=[r.__dict__ for r in cand.reasons] if cand else [],
            )
            audit(actor, "rfa.route", row, now=now, after=snapshot(row))
            record_timeline(
                rfa,
                actor,
                "routed",
                f"Routed to {row.organisation.name}",
                now,
                audience=row.organisation,
            )
            notes += outbox.queue_routing(rfa, row.organisation, now=now)
            routed.append(row)
        if not routed:
            raise Conflict(
                "every chosen organisation already has this request",
                state=rfa.state,
                allowed=list(a.value for a in allowed_actions(rfa.rfa_state)),
            )
        if rfa.state == RfaState.TRIAGE:
            _apply(actor, rfa, Action.ROUTE, "", now)
    return RouteResult(rfa, routed, sorted(already), notes)


# --- offers -------------------------------------------------------------------------------------

_OFFER_FIELDS = frozenset(
    {
        "services",
        "scope",
        "team_size",
        "available_from",
        "available_until",
        "remote",
        "on_site",
        "conditions",
        "capability_id",
    }
)
_OFFERABLE = (RfaState.CIRCULATED, RfaState.OFFER_ACCEPTED, RfaState.ACTIVE)


def create_offer(
    actor: User, rfa_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> Offer:
    now = _now(now)
    org = _actor_org(actor)
    unknown = sorted(set(data) - _OFFER_FIELDS)
    if unknown:
        raise Invalid(unknown[0], "unknown field")
    with transaction.atomic():
        rfa = authz.get_rfa(actor, rfa_id, for_update=True)
        if not Routing.objects.filter(rfa=rfa, organisation=org).exists():
            if rfa.requester_id == org.pk:
                raise Forbidden("an organisation does not offer help on its own request")
            raise Forbidden("only organisations the request was routed to may offer")
        authz.require_role(actor, Role.LIAISON)
        if rfa.state not in _OFFERABLE:
            raise Conflict(
                f"offers are taken while a request is circulated or under way; it is {rfa.state}",
                state=rfa.state,
                allowed=[a.value for a in allowed_actions(rfa.rfa_state)],
            )
        if Offer.objects.filter(
            rfa=rfa,
            organisation=org,
            state__in=[OfferState.PROPOSED, OfferState.ACCEPTED, OfferState.ACTIVE],
        ).exists():
            raise Conflict(
                "your organisation already has an open offer on this request",
                state=rfa.state,
                allowed=["withdraw the open offer first"],
            )
        offer = Offer(
            rfa=rfa,
            organisation=org,
            created_by=actor,
            state=OfferState.PROPOSED,
            created_at=now,
            **data,
        )
        _validate_offer(offer)
        offer.save()
        audit(actor, "offer.create", offer, now=now, after=snapshot(offer))
        if rfa.first_offer_at is None:
            before = snapshot(rfa)
            rfa.first_offer_at = now
            rfa.updated_at = now
            rfa.save(update_fields=["first_offer_at", "updated_at"])
            audit(actor, "rfa.first-offer", rfa, now=now, before=before, after=snapshot(rfa))
        record_timeline(rfa, actor, "offer", f"{org.name} offered help", now, audience=org)
        outbox.queue_offer(rfa, offer, now=now)
    return offer


def _validate_offer(offer: Offer) -> None:
    if offer.services:
        bad = [s for s in offer.services if s not in ServiceType.values]
        if bad:
            raise Invalid("services", f"unknown value(s) {', '.join(map(repr, bad))}")
    if offer.available_until <= offer.available_from:
        raise Invalid("available_until", "must be after available_from")
    if not (offer.remote or offer.on_site):
        raise Invalid("remote", "an offer is remote, on-site, or both")
    if offer.team_size < 1:
        raise Invalid("team_size", "at least 1")
    cap_id = offer.capability_id
    if (
        cap_id is not None
        and not offer.organisation.capabilities.filter(pk=cap_id, active=True).exists()
    ):
        raise Invalid("capability_id", "not an active capability of your organisation")


def _offer_move(
    actor: User | None, offer: Offer, action: OfferAction, reason: str, now: datetime
) -> Offer:
    before = snapshot(offer)
    offer.state = next_offer_state(OfferState(offer.state), action)
    if action in (OfferAction.ACCEPT, OfferAction.DECLINE):
        offer.decided_at = now
        offer.decision_reason = reason[:2000]
    offer.save()
    audit(actor, f"offer.{action.value}", offer, now=now, before=before, after=snapshot(offer))
    record_timeline(
        offer.rfa,
        actor,
        f"offer.{action.value}",
        f"Offer of {offer.organisation.name} {offer.state}",
        now,
        audience=offer.organisation,
        detail=reason,
    )
    return offer


def _offers_follow(
    actor: User, rfa: RequestForAssistance, state: OfferState, action: OfferAction, now: datetime
) -> None:
    for offer in rfa.offers.filter(state=state).select_related("organisation"):
        _offer_move(actor, offer, action, "", now)


def offer_action(
    actor: User, offer_id: UUID, action: str, *, reason: str = "", now: datetime | None = None
) -> Offer:
    """accept / decline (the requester), withdraw / start / complete (the offering organisation)."""
    now = _now(now)
    try:
        act = OfferAction(action)
    except ValueError:
        raise Invalid(
            "action",
            f"unknown offer action {action!r}; actions are "
            f"{', '.join(a.value for a in OfferAction)}",
        ) from None
    if len(reason) > 2000:
        raise Invalid("reason", "at most 2000 characters")
    org = _actor_org(actor)
    with transaction.atomic():
        found = authz.get_offer(actor, offer_id)
        rfa = authz.get_rfa(actor, found.rfa_id, for_update=True)
        offer = Offer.objects.select_for_update().select_related("organisation").get(pk=found.pk)
        try:
            next_offer_state(OfferState(offer.state), act)
        except IllegalTransition as exc:
            raise Conflict(str(exc), state=exc.state, allowed=list(exc.allowed)) from None
        if act in (OfferAction.ACCEPT, OfferAction.DECLINE):
            _require_requester(actor, rfa)
        elif offer.organisation_id != org.pk:
            raise Forbidden("only the offering organisation may do this")
        else:
            authz.require_role(actor, Role.LIAISON)
        if act is OfferAction.ACCEPT:
            _allowed_or_conflict(rfa, Action.ACCEPT_OFFER)
            _offer_move(actor, offer, act, reason, now)
            _apply(actor, rfa, Action.ACCEPT_OFFER, "", now)
            from vcisc.engagements.services import add_participant

            add_participant(actor, rfa, offer, now)
            if rfa.state == RfaState.ACTIVE:
                _offer_move(actor, offer, OfferAction.START, "", now)
        else:
            _offer_move(actor, offer, act, reason, now)
    return offer
