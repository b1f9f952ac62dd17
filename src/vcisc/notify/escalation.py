"""Deadline reminders and escalation (DOMAIN.md §3: "breaches escalate").

The worker calls :func:`scan` every ``VCISC_ESCALATION_SCAN_SECONDS``. For each request whose
triage, first-offer or acceptance clock is still running (its step has not happened and the
request has not ended), it looks at who must act:

============  ==================================================  ==============================
step          responsible                                          while
============  ==================================================  ==============================
triage        the secretariat                                      submitted, triage, needs-info
first offer   every organisation the request was routed to        circulated
acceptance    the requester (only once an offer awaits a decision) circulated
============  ==================================================  ==============================

*Before* the due time, a reminder goes to the responsible organisation's contacts on call, at
each ``VCISC_DEADLINE_REMINDERS`` offset (only the nearest one if several became due while no
worker ran). *After* it, each rule of ``VCISC_ESCALATION_POLICY`` fires once its delay has
passed:

* ``rota`` — the responsible organisation's next point of contact on call now (by their rota, in
  their time zone) who has not yet been asked about this deadline;
* ``duty-desk`` — its duty desk (``vcisc notify settings ORG --duty-desk ID``), else its
  round-the-clock contacts, else all its contacts;
* ``secretariat`` — the secretariat's duty officer, chosen the same way among its contacts.

Each reminder or escalation is one :class:`~vcisc.notify.models.Escalation` row (unique per
request, step, rule and organisation, so rescans and concurrent workers never repeat one), an
audit record, an entry on the request's timeline — shown to the organisation concerned, the
requester and the secretariat, never to other routed organisations — and an outbox message
carrying metadata only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from vcisc.assistance.deadlines import Step
from vcisc.assistance.lifecycle import OfferState, RfaState
from vcisc.assistance.models import Offer, RequestForAssistance, Routing
from vcisc.assistance.services import record_timeline
from vcisc.audit.log import audit, snapshot
from vcisc.federation.models import Organisation, OrgKind, PointOfContact
from vcisc.notify import outbox
from vcisc.notify.models import DeliverySettings, Escalation, EscalationKind
from vcisc.notify.policy import EscalationLevel, EscalationRule
from vcisc.oncall import on_call_at
from vcisc.tlp import Tlp

__all__ = ["on_call_now", "scan"]

log = logging.getLogger("vcisc.notify.escalation")

_WAITING_FOR = {
    Step.TRIAGE: "a triage decision by the secretariat",
    Step.FIRST_OFFER: "an offer from the organisations it was routed to",
    Step.ACCEPTANCE: "the requester's decision on the offers",
}
_DUE_FIELD = {
    Step.TRIAGE: ("triage_due", "triaged_at"),
    Step.FIRST_OFFER: ("first_offer_due", "first_offer_at"),
    Step.ACCEPTANCE: ("acceptance_due", "accepted_at"),
}
_STATES = {
    Step.TRIAGE: {RfaState.SUBMITTED, RfaState.TRIAGE, RfaState.NEEDS_INFO},
    Step.FIRST_OFFER: {RfaState.CIRCULATED},
    Step.ACCEPTANCE: {RfaState.CIRCULATED},
}
_LEVEL_TEXT = {
    EscalationLevel.ROTA: "the next point of contact on call",
    EscalationLevel.DUTY_DESK: "the duty desk",
    EscalationLevel.SECRETARIAT: "the secretariat's duty officer",
}


def _label(step: Step) -> str:
    return step.value.replace("-", " ")


def on_call_now(contact: PointOfContact, now: datetime) -> bool:
    """Whether ``contact``'s rota covers ``now`` (a rota that does not parse counts as off)."""
    return on_call_at(contact.on_call, contact.time_zone, now)


def _secretariat() -> Organisation | None:
    return Organisation.objects.filter(kind=OrgKind.SECRETARIAT, active=True).first()


def _step_open(rfa: RequestForAssistance, step: Step) -> bool:
    """The step has not happened, the request is where the step is expected, and (acceptance)
    an offer awaits the requester's decision."""
    due_field, done_field = _DUE_FIELD[step]
    if getattr(rfa, due_field) is None or getattr(rfa, done_field) is not None:
        return False
    if rfa.state not in _STATES[step]:
        return False
    if step is Step.ACCEPTANCE:
        return Offer.objects.filter(rfa=rfa, state=OfferState.PROPOSED).exists()
    return True


def _responsible(rfa: RequestForAssistance, step: Step) -> list[Organisation]:
    if step is Step.TRIAGE:
        sec = _secretariat()
        return [sec] if sec else []
    if step is Step.FIRST_OFFER:
        ids = Routing.objects.filter(rfa=rfa).values_list("organisation_id", flat=True)
        return list(Organisation.objects.filter(pk__in=ids, active=True).order_by("pk"))
    return [rfa.requester]


def _contacts(org: Organisation) -> list[PointOfContact]:
    return list(org.contacts.filter(active=True).order_by("pk"))


def _duty_desk(org: Organisation) -> list[PointOfContact]:
    settings = DeliverySettings.objects.filter(organisation=org).select_related("duty_desk").first()
    if settings and settings.duty_desk and settings.duty_desk.active:
        return [settings.duty_desk]
    contacts = _contacts(org)
    always = [c for c in contacts if c.on_call.strip().lower() in ("24/7", "always")]
    return always or contacts


def _next_on_rota(
    rfa: RequestForAssistance, step: Step, org: Organisation, now: datetime
) -> list[PointOfContact]:
    asked = set(
        Escalation.objects.filter(
            rfa=rfa, step=step.value, kind=EscalationKind.ESCALATION, organisation=org
        ).values_list("contact_id", flat=True)
    )
    contacts = _contacts(org)
    on = [c for c in contacts if on_call_now(c, now)]
    for pool in (
        [c for c in on if c.pk not in asked],
        [c for c in contacts if c.pk not in asked],
        on,
        contacts,
    ):
        if pool:
            return pool[:1]
    return []


def _targets(
    rfa: RequestForAssistance,
    step: Step,
    rule: EscalationRule,
    responsible: Sequence[Organisation],
    now: datetime,
) -> list[tuple[Organisation, list[PointOfContact]]]:
    if rule.level is EscalationLevel.SECRETARIAT:
        sec = _secretariat()
        return [(sec, _duty_desk(sec))] if sec else []
    if rule.level is EscalationLevel.DUTY_DESK:
        return [(org, _duty_desk(org)) for org in responsible]
    return [(org, _next_on_rota(rfa, step, org, now)) for org in responsible]


def scan(*, now: datetime, policy: Sequence[EscalationRule], reminders: Sequence[timedelta]) -> int:
    """Fire the reminders and escalations that are due at ``now``; return how many fired."""
    lead = max(reminders, default=timedelta(0))
    window = Q()
    for step in Step:
        due_field, done_field = _DUE_FIELD[step]
        window |= Q(
            **{f"{due_field}__lte": now + lead, f"{done_field}__isnull": True},
            state__in=[s.value for s in _STATES[step]],
        )
    candidates = RequestForAssistance.objects.filter(
        window, submitted_at__isnull=False
    ).select_related("requester")
    fired = 0
    for rfa in candidates:
        for step in Step:
            if not _step_open(rfa, step):
                continue
            due: datetime = getattr(rfa, _DUE_FIELD[step][0])
            if now < due:
                fired += _remind(rfa, step, due, reminders, now)
            else:
                fired += _escalate(rfa, step, due, policy, now)
    return fired


def _remind(
    rfa: RequestForAssistance,
    step: Step,
    due: datetime,
    reminders: Sequence[timedelta],
    now: datetime,
) -> int:
    reached = [r for r in reminders if due - r <= now]
    if not reached:
        return 0
    # Only the nearest: reminders that came due while no worker ran are not sent late.
    rule = f"reminder-{int(min(reached).total_seconds())}s"
    fired = 0
    for org in _responsible(rfa, step):
        contacts = [c for c in _contacts(org) if on_call_now(c, now)] or _contacts(org)
        fired += _fire(rfa, step, EscalationKind.REMINDER, rule, org, contacts, due, now, None)
    return fired


def _escalate(
    rfa: RequestForAssistance,
    step: Step,
    due: datetime,
    policy: Sequence[EscalationRule],
    now: datetime,
) -> int:
    fired = 0
    responsible = _responsible(rfa, step)
    for rule in policy:
        if now < due + rule.delay:
            break  # rules are sorted by delay
        for org, contacts in _targets(rfa, step, rule, responsible, now):
            fired += _fire(
                rfa,
                step,
                EscalationKind.ESCALATION,
                rule.key,
                org,
                contacts,
                due,
                now,
                (rule, responsible),
            )
    return fired


def _fire(
    rfa: RequestForAssistance,
    step: Step,
    kind: EscalationKind,
    rule: str,
    org: Organisation,
    contacts: Sequence[PointOfContact],
    due: datetime,
    now: datetime,
    escalation: tuple[EscalationRule, Sequence[Organisation]] | None,
) -> int:
    """Record one reminder/escalation and queue its message, in one transaction; 0 if another
    worker got there first or the step happened meanwhile."""
    try:
        with transaction.atomic():
            locked = (
                RequestForAssistance.objects.select_for_update(skip_locked=True)
                .select_related("requester")
                .filter(pk=rfa.pk)
                .first()
            )
            if locked is None or not _step_open(locked, step):
                return 0
            if Escalation.objects.filter(
                rfa=locked, step=step.value, kind=kind, rule=rule, organisation=org
            ).exists():
                return 0
            row = Escalation.objects.create(
                rfa=locked,
                step=step.value,
                kind=kind,
                rule=rule,
                organisation=org,
                contact=contacts[0] if contacts else None,
                due=due,
                at=now,
            )
            audit(None, f"rfa.{kind.value}", row, now=now, after=snapshot(row))
            _tell(locked, step, kind, org, contacts, due, now, escalation)
    except IntegrityError:  # a concurrent worker recorded the same one
        return 0
    return 1


def _tell(
    rfa: RequestForAssistance,
    step: Step,
    kind: EscalationKind,
    org: Organisation,
    contacts: Sequence[PointOfContact],
    due: datetime,
    now: datetime,
    escalation: tuple[EscalationRule, Sequence[Organisation]] | None,
) -> None:
    label = Tlp(rfa.tlp).label
    step_text = _label(step)
    who = ", ".join(c.name for c in contacts) or "no active point of contact"
    at = f"{due:%Y-%m-%d %H:%M} UTC"
    if escalation is None:
        minutes = max(1, round((due - now).total_seconds() / 60))
        subject = f"[{label}] {rfa.reference}: {step_text} deadline in {minutes} min"
        summary = f"Reminder to {org.name} ({who}): {step_text} due {at}"
        lines = [
            f"{rfa.reference}: the {step_text} deadline is {at}, in {minutes} minutes.",
            f"Still waiting for {_WAITING_FOR[step]}.",
        ]
        payload_level = "reminder"
    else:
        rule, responsible = escalation
        subject = f"[{label}] {rfa.reference}: {step_text} deadline breached, escalated to you"
        summary = (
            f"{step_text.capitalize()} deadline breached: escalated to {org.name} ({who}), "
            f"{_LEVEL_TEXT[rule.level]}"
        )
        late = now - due
        lines = [
            f"{rfa.reference}: the {step_text} deadline was {at}; "
            f"{int(late.total_seconds() // 60)} minutes later there is still no "
            f"{_WAITING_FOR[step].removeprefix('a ').removeprefix('an ')}.",
            f"You are {_LEVEL_TEXT[rule.level]} in the escalation policy ({rule.key}).",
        ]
        if org.pk not in {o.pk for o in responsible}:
            # The secretariat's duty officer learns who is responsible and how to reach them.
            for other in responsible:
                phones = [f"{c.name} {c.phone}" for c in _contacts(other) if c.phone]
                lines.append(
                    f"Responsible: {other.name}"
                    + (f" (call {'; '.join(phones)})" if phones else "")
                )
        payload_level = rule.level.value
    lines.append(f"Severity: {rfa.get_severity_display()}; state: {rfa.state}.")
    record_timeline(
        rfa,
        None,
        f"deadline.{'reminder' if escalation is None else 'escalated'}",
        summary,
        now,
        audience=org,
    )
    if contacts:
        outbox.queue_escalation(
            rfa,
            org,
            contacts,
            kind="deadline.reminder" if escalation is None else "deadline.escalated",
            subject=subject[:300],
            body="\n".join(lines),
            payload={
                "rfa_id": rfa.pk,
                "reference": rfa.reference,
                "step": step.value,
                "due": due.isoformat(),
                "level": payload_level,
            },
            now=now,
        )
    else:
        log.warning("%s: nobody to tell at %s about the %s deadline", rfa.reference, org, step)
