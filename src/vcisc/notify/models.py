"""The notification outbox: one row per message to deliver, written in the same transaction as
the change that causes it, so that a committed change always has its notifications queued
(delivery, retries and escalation are handled by the worker of a later issue).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from vcisc.federation.models import Organisation, PointOfContact

__all__ = ["OutboxMessage", "OutboxStatus"]


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboxMessage(models.Model):
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=40)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(PointOfContact, on_delete=models.PROTECT, related_name="+")
    #: Channels to try, in order (email, webhook, phone) as the contact declared them.
    channels = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=300)
    #: Only what the recipient organisation may see (built through vcisc.authz).
    body = models.TextField(max_length=20000)
    payload = models.JSONField(default=dict, blank=True)
    rfa_id = models.BigIntegerField(null=True, blank=True)
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
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to contact {self.contact_id} ({self.status})"
