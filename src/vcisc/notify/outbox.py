"""Queue notifications in the outbox, inside the caller's transaction.

A message says only what its recipient organisation may see: for a TLP:RED request a routed
organisation learns the routing metadata, never the content (DOMAIN.md §1, §5). Each message is
marked with the TLP of its content; a channel whose ceiling is lower carries only the label and a
link (:mod:`vcisc.notify.render`).

Queuing writes, in the caller's transaction: one :class:`OutboxMessage` per point of contact, one
:class:`Delivery` per channel the workers serve (e-mail, webhook), one
:class:`InAppNotification` for the organisation, and on PostgreSQL a ``NOTIFY`` that wakes the
workers when — and only if — the transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import connection

from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.federation.models import Organisation, PointOfContact
from vcisc.notify.models import (
    Channel,
    Delivery,
    InAppNotification,
    OutboxMessage,
    OutboxStatus,
)
from vcisc.tlp import Tlp

__all__ = [
    "WAKE_CHANNEL",
    "queue_correlation",
    "queue_escalation",
    "queue_offer",
    "queue_routing",
    "wake_workers",
]

#: The PostgreSQL NOTIFY channel the workers LISTEN on.
WAKE_CHANNEL = "vcisc_outbox"


def _channels(contact: object) -> list[str]:
    return [
        name
        for name, value in (
            ("email", getattr(contact, "email", "")),
            ("webhook", getattr(contact, "webhook_url", "")),
            ("phone", getattr(contact, "phone", "")),
        )
        if value
    ]


def wake_workers() -> None:
    """Wake the delivery workers when the current transaction commits (PostgreSQL; SQLite
    workers poll). Notifications with the same payload in one transaction are sent once."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [WAKE_CHANNEL])


def _queue(
    org: Organisation,
    kind: str,
    subject: str,
    body: str,
    payload: dict[str, object],
    rfa: RequestForAssistance,
    now: datetime,
    *,
    contacts: Iterable[PointOfContact] | None = None,
    tlp: Tlp | None = None,
) -> int:
    """One message per contact (all active contacts of ``org`` unless named), its deliveries,
    and one in-app notification for ``org``. The message is marked ``tlp`` (the request's TLP
    unless the content is something else, such as indicators of their own TLP)."""
    chosen = list(org.contacts.filter(active=True) if contacts is None else contacts)
    messages = []
    for contact in chosen:
        channels = _channels(contact)
        automatic = [c for c in channels if c in Channel.values]
        messages.append(
            OutboxMessage(
                created_at=now,
                key=uuid.uuid4(),
                kind=kind,
                organisation=org,
                contact=contact,
                channels=channels,
                subject=subject,
                body=body,
                payload=payload,
                rfa_id=rfa.pk,
                tlp=(tlp or Tlp(rfa.tlp)).value,
                status=OutboxStatus.PENDING if automatic else OutboxStatus.NO_CHANNEL,
            )
        )
    OutboxMessage.objects.bulk_create(messages)
    Delivery.objects.bulk_create(
        Delivery(message=m, channel=c, created_at=now, next_attempt_at=now)
        for m in messages
        for c in m.channels
        if c in Channel.values
    )
    InAppNotification.objects.create(
        organisation=org, created_at=now, kind=kind, summary=subject[:300], rfa_id=rfa.pk
    )
    if messages:
        wake_workers()
    return len(messages)


def routing_summary(
    rfa: RequestForAssistance, recipient: Organisation
) -> tuple[str, str, dict[str, object]]:
    """Subject, body and payload for a routed organisation, content only if its TLP allows."""
    tlp = Tlp(rfa.tlp)
    nation = rfa.requester.nation
    subject = (
        f"[{tlp.label}] {rfa.reference}: assistance requested ({', '.join(rfa.services_needed)})"
    )
    lines = [
        f"{rfa.reference} was routed to {recipient.name} by the secretariat.",
        f"Requesting nation: {nation.name if nation else '-'}",
        f"Severity: {rfa.get_severity_display()}; sector: {rfa.sector}; urgency: {rfa.urgency}",
        f"Services needed: {', '.join(rfa.services_needed)}",
        f"First offer due: {rfa.first_offer_due.isoformat() if rfa.first_offer_due else '-'}",
    ]
    payload: dict[str, object] = {
        "rfa_id": rfa.pk,
        "reference": rfa.reference,
        "tlp": rfa.tlp,
        "severity": rfa.severity,
        "sector": rfa.sector,
        "services_needed": rfa.services_needed,
    }
    if tlp is not Tlp.RED:
        lines.insert(1, f"Title: {rfa.title}")
        payload["title"] = rfa.title
    else:
        lines.append(
            "Content is TLP:RED and is shared only with the engagement's named participants."
        )
    return subject, "\n".join(lines), payload


def queue_routing(rfa: RequestForAssistance, org: Organisation, *, now: datetime) -> int:
    """One message per active point of contact of ``org``; returns how many were queued."""
    subject, body, payload = routing_summary(rfa, org)
    return _queue(org, "rfa.routed", subject, body, payload, rfa, now)


def queue_offer(rfa: RequestForAssistance, offer: Offer, *, now: datetime) -> int:
    """Tell the requester's points of contact that an offer arrived (they see all content)."""
    subject = f"[{Tlp(rfa.tlp).label}] {rfa.reference}: offer from {offer.organisation.name}"
    body = (
        f"{offer.organisation.name} offered help on {rfa.reference}: team of {offer.team_size}, "
        f"available {offer.available_from:%Y-%m-%d %H:%M} "
        f"to {offer.available_until:%Y-%m-%d %H:%M} UTC."
    )
    payload: dict[str, object] = {
        "rfa_id": rfa.pk,
        "reference": rfa.reference,
        "offer_id": offer.pk,
    }
    return _queue(rfa.requester, "offer.received", subject, body, payload, rfa, now)


def queue_escalation(
    rfa: RequestForAssistance,
    org: Organisation,
    contacts: Iterable[PointOfContact],
    *,
    kind: str,
    subject: str,
    body: str,
    payload: dict[str, object],
    now: datetime,
) -> int:
    """A deadline reminder or escalation to chosen contacts of ``org`` (metadata only: the
    reference, the step and its due time, and who is to act)."""
    return _queue(org, kind, subject, body, payload, rfa, now, contacts=contacts)


def queue_correlation(
    rfa: RequestForAssistance,
    org: Organisation,
    *,
    subject: str,
    body: str,
    payload: dict[str, object],
    tlp: Tlp,
    now: datetime,
    kind: str = "indicator.correlated",
) -> int:
    """Tell ``org`` that an indicator of ``rfa``'s engagement is also in another engagement it
    may see (issue 5), or the secretariat that two engagements share indicators
    (``engagements.related``). ``tlp`` is the strictest of the indicators named: a channel whose
    ceiling is lower carries the label and a link only."""
    return _queue(org, kind, subject, body, payload, rfa, now, tlp=tlp)
