"""Queue notifications in the outbox, inside the caller's transaction.

A message says only what its recipient organisation may see: for a TLP:RED request a routed
organisation learns the routing metadata, never the content (DOMAIN.md §1, §5).
"""

from __future__ import annotations

from datetime import datetime

from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.federation.models import Organisation
from vcisc.notify.models import OutboxMessage
from vcisc.tlp import Tlp

__all__ = ["queue_offer", "queue_routing"]


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


def _queue(
    org: Organisation,
    kind: str,
    subject: str,
    body: str,
    payload: dict[str, object],
    rfa_id: int,
    now: datetime,
) -> int:
    contacts = list(org.contacts.filter(active=True))
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            created_at=now,
            kind=kind,
            organisation=org,
            contact=c,
            channels=_channels(c),
            subject=subject,
            body=body,
            payload=payload,
            rfa_id=rfa_id,
        )
        for c in contacts
    )
    return len(contacts)


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
    return _queue(org, "rfa.routed", subject, body, payload, rfa.pk, now)


def queue_offer(rfa: RequestForAssistance, offer: Offer, *, now: datetime) -> int:
    """Tell the requester's points of contact that an offer arrived (they see all content)."""
    subject = f"[{Tlp(rfa.tlp).label}] {rfa.reference}: offer from {offer.organisation.name}"
    body = (
        f"{offer.organisation.name} offered help on {rfa.reference}: team of {offer.team_size}, "
        f"available {offer.available_from:%Y-%m-%d %H:%M} "
        f"to {offer.available_until:%Y-%m-%d %H:%M} UTC."
    )
    payload: dict[str, object] = {"rfa_id": rfa.pk, "offer_id": offer.pk}
    return _queue(rfa.requester, "offer.received", subject, body, payload, rfa.pk, now)
