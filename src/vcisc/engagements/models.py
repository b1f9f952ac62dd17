"""The engagement: the shared workspace of an RFA once help is accepted (DOMAIN.md §3).

Participants are organisations (the requester, and each organisation whose offer was accepted);
``members`` are the named individuals, who alone may read TLP:RED material of the engagement.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.federation.models import Organisation
from vcisc.ids import uuid_primary_key
from vcisc.sharing.observables import MAX_URL_LENGTH, ObservableType
from vcisc.tlp import Tlp

__all__ = [
    "AfterActionReview",
    "Correlation",
    "CorrelationRelation",
    "Engagement",
    "EngagementMember",
    "Indicator",
    "IndicatorSource",
    "Note",
    "Participant",
    "ParticipantRole",
    "SituationReport",
    "Task",
    "TaskOutcome",
]


class Engagement(models.Model):
    id = uuid_primary_key()
    rfa = models.OneToOneField(
        RequestForAssistance, on_delete=models.PROTECT, related_name="engagement"
    )
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"engagement {self.rfa.reference}"


class ParticipantRole(models.TextChoices):
    REQUESTER = "requester", "Requester"
    ASSISTING = "assisting", "Assisting"


class Participant(models.Model):
    id = uuid_primary_key()
    engagement = models.ForeignKey(
        Engagement, on_delete=models.PROTECT, related_name="participants"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=10, choices=ParticipantRole.choices)
    offer = models.ForeignKey(
        Offer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    joined_at = models.DateTimeField()

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["engagement", "organisation"], name="participant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} ({self.role})"


class EngagementMember(models.Model):
    """A named individual of a participant organisation (the TLP:RED recipients)."""

    id = uuid_primary_key()
    engagement = models.ForeignKey(Engagement, on_delete=models.PROTECT, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["engagement", "user"], name="member_once")]

    def __str__(self) -> str:
        return f"member {self.user_id} of engagement {self.engagement_id}"


class TaskOutcome(models.TextChoices):
    """STIX Task extension ``outcome`` vocabulary (DOMAIN.md §6)."""

    PENDING = "pending", "Pending"
    ONGOING = "ongoing", "Ongoing"
    SUCCESSFUL = "successful", "Successful"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Unknown"


class _Item(models.Model):
    """Common shape of engagement content: who wrote it, when, under which TLP."""

    id = uuid_primary_key()
    engagement = models.ForeignKey(Engagement, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    tlp = models.CharField(max_length=12, choices=Tlp.choices())
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{type(self).__name__.lower()} {self.pk} [{self.tlp}]"


class Task(_Item):
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=10000, blank=True)
    assignee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(
        max_length=12, choices=TaskOutcome.choices, default=TaskOutcome.PENDING
    )
    due_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta(_Item.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=TaskOutcome.values), name="task_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in Tlp]), name="task_tlp_valid"
            ),
        ]


class Note(_Item):
    body = models.TextField(max_length=20000)

    class Meta(_Item.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in Tlp]), name="note_tlp_valid"
            ),
        ]


class SituationReport(_Item):
    """A SITREP: where things stand, what was done, what comes next."""

    summary = models.TextField(max_length=20000)
    actions_taken = models.TextField(max_length=20000, blank=True)
    next_steps = models.TextField(max_length=20000, blank=True)
    outlook = models.CharField(
        max_length=10,
        choices=[("improving", "Improving"), ("stable", "Stable"), ("worsening", "Worsening")],
        default="stable",
    )

    class Meta(_Item.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in Tlp]), name="sitrep_tlp_valid"
            ),
        ]


class AfterActionReview(models.Model):
    """Required to close an RFA: what helped, the times, lessons (DOMAIN.md §3)."""

    id = uuid_primary_key()
    engagement = models.OneToOneField(Engagement, on_delete=models.PROTECT, related_name="review")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tlp = models.CharField(max_length=12, choices=Tlp.choices())
    what_helped = models.TextField(max_length=20000)
    what_did_not = models.TextField(max_length=20000, blank=True)
    lessons = models.TextField(max_length=20000)
    first_deliverable_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | (Q(rating__gte=1) & Q(rating__lte=5)),
                name="aar_rating_range",
            )
        ]

    def __str__(self) -> str:
        return f"after-action review of engagement {self.engagement_id}"


class IndicatorSource(models.TextChoices):
    """How an indicator came into the engagement."""

    MANUAL = "manual", "Added by hand"
    CSV = "csv", "CSV import"
    STIX = "stix", "STIX 2.1 bundle"
    MISP = "misp", "MISP event"
    TEXT = "text", "Extracted from text"


class Indicator(_Item):
    """An indicator of compromise shared in the engagement (issue 5; DOMAIN.md §6).

    ``value`` is the canonical form of :func:`vcisc.sharing.observables.normalise`, never what
    was typed; ``correlation_key`` (``family:value``) says which values denote the same thing,
    and its SHA-256 ``correlation_digest`` identifies the value (a URL can be longer than a B-tree
    index entry may be). Correlation looks values up by ``correlation_digest64``, the digest's
    first 8 bytes as a signed 64-bit integer (a compact index, probed by the million), and then
    confirms the full digest: a 64-bit collision never makes a correlation. One engagement holds
    each indicator once.
    """

    type = models.CharField(max_length=16, choices=[(t.value, t.value) for t in ObservableType])
    value = models.TextField(max_length=MAX_URL_LENGTH)
    correlation_key = models.TextField(max_length=MAX_URL_LENGTH + 20)
    correlation_digest = models.CharField(max_length=64)
    #: ``correlation_digest``'s first 16 hex digits as a signed BIGINT (see ``digest64_of``).
    correlation_digest64 = models.BigIntegerField()
    #: When the row's digests were written, in the database's own order, set by a trigger on
    #: every insert and digest change whatever the writer passes (migration 0005; a model cannot
    #: declare one): the writing transaction's id on PostgreSQL, a tick of the one-row
    #: ``engagements_correlation_clock`` on SQLite. It keeps the correlation look-up's
    #: in-process filter exact (vcisc.engagements.lookup); NULL (a row no trigger stamped) means
    #: "always ask the database", never "already known".
    correlation_stamp = models.BigIntegerField(null=True, blank=True, editable=False)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(null=True, blank=True)
    #: STIX 2.1 confidence (§3.2): 0–100, or unknown.
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    #: Meant for detection (STIX: an indicator; MISP: ``to_ids``), or context only.
    for_detection = models.BooleanField(default=True)
    description = models.TextField(max_length=5000, blank=True)
    source = models.CharField(
        max_length=8, choices=IndicatorSource.choices, default=IndicatorSource.MANUAL
    )
    #: For an address or a network: the first and last address it covers, as sortable text
    #: (:func:`vcisc.sharing.observables.address_range`), so that an address of one engagement
    #: inside a network of another is found by a range scan. Blank for other types.
    range_low = models.CharField(max_length=33, blank=True, default="")
    range_high = models.CharField(max_length=33, blank=True, default="")

    class Meta(_Item.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["engagement", "correlation_digest"], name="indicator_once_per_engagement"
            ),
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in Tlp]), name="indicator_tlp_valid"
            ),
            models.CheckConstraint(
                condition=Q(type__in=[t.value for t in ObservableType]), name="indicator_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__lte=100),
                name="indicator_confidence_range",
            ),
        ]
        indexes = [
            models.Index(fields=["correlation_digest64"], name="indicator_digest64"),
            # The look-up's "written since the watermark" range (vcisc.engagements.lookup).
            models.Index(fields=["correlation_stamp"], name="indicator_stamp"),
            # Networks are few, addresses many: one partial index each.
            models.Index(
                fields=["range_low"], condition=Q(type="cidr"), name="indicator_network_range"
            ),
            models.Index(
                fields=["range_low"],
                condition=Q(type__in=["ipv4", "ipv6"]),
                name="indicator_address_range",
            ),
        ]


class CorrelationRelation(models.TextChoices):
    SAME = "same", "The same indicator"
    #: One is an address or network inside the other, a network (CIDR containment).
    WITHIN = "within", "An address or network inside a network"


class Correlation(models.Model):
    """The same indicator in two engagements, or an address or network of one inside a network
    of the other (``relation``): ``first`` was there before ``second`` came. For containment
    ``correlation_key`` is the containing network's.

    Only a user who may see both indicators learns of the pair (vcisc.authz).
    """

    id = uuid_primary_key()
    correlation_key = models.TextField(max_length=MAX_URL_LENGTH + 20)
    relation = models.CharField(
        max_length=8, choices=CorrelationRelation.choices, default=CorrelationRelation.SAME
    )
    first = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+")
    second = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="correlation_once"),
            models.CheckConstraint(
                condition=~Q(first=models.F("second")), name="correlation_two_sides"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.correlation_key}: {self.first_id} ~ {self.second_id}"
