"""Requests for assistance (RFA), their routing and the offers made on them (DOMAIN.md §3).

States change only through :mod:`vcisc.assistance.services`, which consults the pure state
machine in :mod:`vcisc.assistance.lifecycle` and writes an audit record in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from vcisc.assistance.deadlines import ClockState, Step, clock_state
from vcisc.assistance.lifecycle import TERMINAL, OfferState, RfaState
from vcisc.federation.models import Capability, Organisation
from vcisc.ids import uuid_primary_key
from vcisc.tlp import Tlp
from vcisc.vocabulary import EuImpact, Severity, Urgency

__all__ = ["Offer", "RequestForAssistance", "Routing", "TimelineEntry"]


class RequestForAssistance(models.Model):
    """What a nation under attack asks for (after the Cyber Solidarity Act's request content)."""

    id = uuid_primary_key()
    reference = models.CharField(max_length=20, unique=True)
    requester = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="requests")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=20, choices=[(s.value, s.value) for s in RfaState])
    tlp = models.CharField(max_length=12, choices=Tlp.choices())
    is_exercise = models.BooleanField(default=False)

    # Content (visible only where TLP and participation allow).
    title = models.CharField(max_length=200)
    affected_entity = models.CharField(max_length=200)
    description = models.TextField(max_length=20000)
    rsit_class = models.CharField(max_length=40)
    rsit_type = models.CharField(max_length=60)
    impact = models.TextField(max_length=10000, blank=True)
    measures_taken = models.TextField(max_length=10000, blank=True)
    other_support = models.TextField(max_length=5000, blank=True)
    handling_caveats = models.TextField(max_length=5000, blank=True)
    legal_requirements = models.JSONField(default=list, blank=True)
    involves_personal_data = models.BooleanField(default=False)
    excluded_nations = models.JSONField(default=list, blank=True)
    excluded_organisations = models.JSONField(default=list, blank=True)

    # Routing metadata (visible to the secretariat and routed organisations).
    sector = models.CharField(max_length=60)
    severity = models.PositiveSmallIntegerField(
        choices=Severity.choices, validators=[MinValueValidator(0), MaxValueValidator(5)]
    )
    eu_impact = models.CharField(max_length=10, choices=EuImpact.choices, blank=True)
    services_needed = models.JSONField(default=list, blank=True)
    urgency = models.CharField(max_length=12, choices=Urgency.choices)
    languages = models.JSONField(default=list, blank=True)
    ics_protocols = models.JSONField(default=list, blank=True)
    ics_vendors = models.JSONField(default=list, blank=True)
    needed_by = models.DateTimeField(null=True, blank=True)

    # Lifecycle timestamps (metrics are derived from these).
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    triaged_at = models.DateTimeField(null=True, blank=True)
    circulated_at = models.DateTimeField(null=True, blank=True)
    first_offer_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    # Deadlines, derived from severity at submission (see deadlines.py) and stored.
    triage_due = models.DateTimeField(null=True, blank=True)
    first_offer_due = models.DateTimeField(null=True, blank=True)
    acceptance_due = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "request for assistance"
        verbose_name_plural = "requests for assistance"
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in RfaState]), name="rfa_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in Tlp]), name="rfa_tlp_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__gte=0) & Q(severity__lte=5), name="rfa_severity_range"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["draft", "withdrawn"]) | Q(submitted_at__isnull=False),
                name="rfa_submitted_has_time",
            ),
        ]
        indexes = [models.Index(fields=["state"]), models.Index(fields=["requester", "state"])]

    def __str__(self) -> str:
        return self.reference

    @property
    def rfa_state(self) -> RfaState:
        return RfaState(self.state)

    @property
    def tlp_label(self) -> Tlp:
        return Tlp(self.tlp)

    @property
    def is_terminal(self) -> bool:
        return self.rfa_state in TERMINAL

    def clocks(self, now: datetime) -> dict[str, dict[str, object]]:
        """Each step's due time and clock state (running / met / breached / void)."""
        if self.submitted_at is None:
            return {}
        assert self.triage_due and self.first_offer_due and self.acceptance_due
        ended = (
            self.ended_at
            if self.state in (RfaState.WITHDRAWN, RfaState.REJECTED, RfaState.EXPIRED)
            else None
        )
        steps = (
            (Step.TRIAGE, self.triage_due, self.triaged_at),
            (Step.FIRST_OFFER, self.first_offer_due, self.first_offer_at),
            (Step.ACCEPTANCE, self.acceptance_due, self.accepted_at),
        )
        result: dict[str, dict[str, object]] = {}
        for step, due, happened in steps:
            state: ClockState = clock_state(due, happened, now, ended)
            result[step.value] = {"due": due, "at": happened, "state": state.value}
        return result


class Routing(models.Model):
    """The secretariat sent this request to this organisation (one row per pair)."""

    id = uuid_primary_key()
    rfa = models.ForeignKey(RequestForAssistance, on_delete=models.PROTECT, related_name="routings")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="routings"
    )
    routed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    routed_at = models.DateTimeField()
    suggested = models.BooleanField(default=False, help_text="chosen from the ranked matches")
    score = models.FloatField(null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["routed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rfa", "organisation"], name="routing_once_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.rfa_id} → organisation {self.organisation_id}"


class Offer(models.Model):
    """Voluntary help an organisation proposes on a request."""

    id = uuid_primary_key()
    rfa = models.ForeignKey(RequestForAssistance, on_delete=models.PROTECT, related_name="offers")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="offers")
    capability = models.ForeignKey(
        Capability, on_delete=models.PROTECT, null=True, blank=True, related_name="offers"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=12, choices=[(s.value, s.value) for s in OfferState])
    services = models.JSONField(default=list, blank=True)
    scope = models.TextField(max_length=5000)
    team_size = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    available_from = models.DateTimeField()
    available_until = models.DateTimeField()
    remote = models.BooleanField(default=True)
    on_site = models.BooleanField(default=False)
    conditions = models.TextField(max_length=5000, blank=True)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in OfferState]), name="offer_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(available_until__gt=models.F("available_from")),
                name="offer_window_ordered",
            ),
            models.CheckConstraint(condition=Q(remote=True) | Q(on_site=True), name="offer_mode"),
            models.CheckConstraint(condition=Q(team_size__gte=1), name="offer_team_size_pos"),
        ]

    def __str__(self) -> str:
        return f"offer {self.pk} ({self.state})"


class TimelineEntry(models.Model):
    """One thing that happened to a request, for the people involved to read.

    ``audience`` is ``None`` for entries every involved organisation may read; otherwise the entry
    concerns one organisation (e.g. "routed to X", "X offered") and is shown only to that
    organisation, the requester and the secretariat — participation itself is sensitive.
    """

    id = uuid_primary_key()
    rfa = models.ForeignKey(RequestForAssistance, on_delete=models.PROTECT, related_name="timeline")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=40)
    #: Metadata: what happened, readable by everyone the entry is shown to.
    summary = models.CharField(max_length=500)
    #: Content (a reason in the requester's or the secretariat's words): shown only to users
    #: with content access to the request, since free text may repeat what TLP:RED protects.
    detail = models.TextField(max_length=2000, blank=True)
    audience = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    participants_only = models.BooleanField(
        default=False, help_text="engagement content: only participants read it"
    )

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}"
