"""The notification outbox and what delivers it.

* :class:`OutboxMessage` — one notification for one point of contact, written in the same
  transaction as the change that causes it, so a committed change always has its notifications
  queued and a rolled-back one has none. Its ``key`` is the idempotency key receivers see.
* :class:`Delivery` — one row per channel (e-mail, webhook) of a message: the unit the workers
  claim, retry and dead-letter (see :mod:`vcisc.notify.worker`).
* :class:`InAppNotification` — one per organisation and notification, streamed to its users'
  console (:mod:`vcisc.web.live`).
* :class:`DeliverySettings`, :class:`ContactKey`, :class:`WebhookSecret` — how VCISC writes to
  an organisation (sender, TLP ceilings, duty desk), a contact's OpenPGP key, a webhook's signing
  secret: the delivery part of the directory.
* :class:`Escalation` — a reminder or escalation of a deadline, recorded once per rule and target.
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from vcisc.assistance.deadlines import Step
from vcisc.assistance.models import RequestForAssistance
from vcisc.federation.models import Organisation, PointOfContact
from vcisc.tlp import Tlp

__all__ = [
    "Channel",
    "ContactKey",
    "Delivery",
    "DeliverySettings",
    "DeliveryStatus",
    "Escalation",
    "EscalationKind",
    "InAppNotification",
    "OutboxMessage",
    "OutboxStatus",
    "WebhookSecret",
]


class OutboxStatus(models.TextChoices):
    """The message as a whole, summed up from its deliveries."""

    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    #: The contact has no channel VCISC delivers by itself (a phone number only).
    NO_CHANNEL = "no-channel", "No automatic channel"


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    #: Claimed by a worker until ``lease_until``; after that any worker may take it over.
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    #: Attempts exhausted or a permanent failure: kept for operators to inspect and replay.
    DEAD = "dead", "Dead letter"


class OutboxMessage(models.Model):
    created_at = models.DateTimeField()
    #: The idempotency key: the same for every attempt and channel of this notification.
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=40)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(PointOfContact, on_delete=models.PROTECT, related_name="+")
    #: Channels to try, in order (email, webhook, phone) as the contact declared them.
    channels = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=300)
    #: Only what the recipient organisation may see (built through vcisc.authz).
    body = models.TextField(max_length=20000)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    rfa_id = models.UUIDField(null=True, blank=True)
    #: The marking of the content in subject, body and payload; a channel whose TLP ceiling is
    #: lower carries only the label, the reference and a link. Strictest unless stated.
    tlp = models.CharField(max_length=12, choices=Tlp.choices(), default=Tlp.RED.value)
    status = models.CharField(
        max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=OutboxStatus.values), name="outbox_status_valid"
            ),
            models.CheckConstraint(condition=Q(tlp__in=[t.value for t in Tlp]), name="outbox_tlp"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to contact {self.contact_id} ({self.status})"


class Delivery(models.Model):
    """One channel of one message. Workers claim due rows (``SKIP LOCKED`` on PostgreSQL)."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    #: Attempts started, including one whose worker died before it could record the outcome.
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=80, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    #: Times an operator sent the dead letter back to the queue.
    replays = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "channel"], name="delivery_once_per_channel"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="delivery_channel_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=DeliveryStatus.SENDING) | Q(lease_until__isnull=False),
                name="delivery_sending_has_lease",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} delivery {self.pk} ({self.status})"


class InAppNotification(models.Model):
    """What the organisation's users see in the console: the summary and a link, no body."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=40)
    #: Metadata only (reference, TLP label, what happened): the page behind the link applies
    #: need-to-know to its reader.
    summary = models.CharField(max_length=300)
    rfa_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["organisation", "id"], name="inapp_by_org")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.organisation_id}"


class DeliverySettings(models.Model):
    """How VCISC writes to one organisation; blank fields take the server's defaults."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, related_name="delivery_settings"
    )
    #: Sender of e-mail to this organisation (e.g. an address its mail filters trust).
    sender_name = models.CharField(max_length=100, blank=True)
    sender_address = models.EmailField(blank=True)
    reply_to = models.EmailField(blank=True)
    #: Highest TLP whose content goes out by plain e-mail / webhook (else label and link).
    email_tlp_ceiling = models.CharField(max_length=12, blank=True)
    webhook_tlp_ceiling = models.CharField(max_length=12, blank=True)
    #: The contact escalations reach at the "duty-desk" level (the secretariat's: its duty
    #: officer). Unset: the organisation's round-the-clock contacts.
    duty_desk = models.ForeignKey(
        PointOfContact, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "delivery settings"

    def __str__(self) -> str:
        return f"delivery settings of {self.organisation_id}"


class ContactKey(models.Model):
    """A point of contact's OpenPGP public key: e-mail to them is encrypted (PGP/MIME)."""

    contact = models.OneToOneField(PointOfContact, on_delete=models.PROTECT, related_name="+")
    armored = models.TextField(max_length=65536)
    fingerprint = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"OpenPGP key {self.fingerprint} of contact {self.contact_id}"


class WebhookSecret(models.Model):
    """The HMAC key a contact's webhook receiver verifies (see :mod:`vcisc.notify.signing`).

    After a rotation the previous secret keeps signing too until ``previous_valid_until``.
    Never written to the audit trail.
    """

    contact = models.OneToOneField(PointOfContact, on_delete=models.PROTECT, related_name="+")
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"webhook secret of contact {self.contact_id}"


class EscalationKind(models.TextChoices):
    REMINDER = "reminder", "Reminder"
    ESCALATION = "escalation", "Escalation"


class Escalation(models.Model):
    """A reminder before, or an escalation after, one deadline of one request, to one target.

    The unique constraint makes the scheduler idempotent: several workers may scan at once,
    and a rescan never repeats a reminder or an escalation.
    """

    rfa = models.ForeignKey(RequestForAssistance, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=20, choices=[(s.value, s.value) for s in Step])
    kind = models.CharField(max_length=12, choices=EscalationKind.choices)
    #: The policy rule (``rota+0s``, ``duty-desk+1800s``) or reminder (``reminder-1800s``).
    rule = models.CharField(max_length=40)
    #: The organisation reached: the one whose deadline it is, or the secretariat (its level).
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(
        PointOfContact, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    due = models.DateTimeField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rfa", "step", "kind", "rule", "organisation"], name="escalation_once"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=EscalationKind.values), name="escalation_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.rule} of {self.step} on {self.rfa_id}"
