"""The write path of delivery: directory settings for delivery, webhook secrets, dead letters.

Every function changes rows and appends the audit record in one transaction (STYLE.md habit 1).
``actor=None`` is the operator at the server console (the ``vcisc`` command), trusted like the
database; other actors need the admin role, or the liaison role in the organisation concerned.
Secrets never enter the audit trail: their records say that a secret was created or rotated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from vcisc.audit.log import audit, snapshot
from vcisc.dbutil import clean_or_invalid
from vcisc.errors import Conflict, Forbidden, Invalid, NotFound
from vcisc.federation.models import Organisation, PointOfContact, Role, User
from vcisc.notify.addresses import UrlRejected, check_webhook_url
from vcisc.notify.models import (
    ContactKey,
    Delivery,
    DeliverySettings,
    DeliveryStatus,
    OutboxMessage,
    OutboxStatus,
    WebhookSecret,
)
from vcisc.notify.pgp import KeyProblem, parse_public_key
from vcisc.notify.policy import parse_ceiling, parse_networks
from vcisc.notify.signing import new_secret

__all__ = [
    "check_contact_channels",
    "remove_contact_key",
    "replay",
    "rotate_webhook_secret",
    "set_contact_key",
    "update_delivery_settings",
    "webhook_secrets",
]

#: How long the previous webhook secret still signs after a rotation.
ROTATION_GRACE = timedelta(hours=24)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _require_manager(actor: User | None, org_id: int) -> None:
    if actor is None or actor.has_role(Role.ADMIN):
        return
    if actor.organisation_id == org_id and actor.has_role(Role.LIAISON):
        return
    raise Forbidden("only your organisation's liaison officers or an admin may change this")


def _without_secrets(row: WebhookSecret) -> dict[str, Any]:
    data = snapshot(row)
    data.pop("secret", None)
    data.pop("previous_secret", None)
    return data


# --- contacts -----------------------------------------------------------------------------------


def check_contact_channels(contact: PointOfContact) -> None:
    """Refuse a webhook URL that may not be used (SSRF rules), naming the field.

    Called by the directory's validation whenever a point of contact is created or changed.
    """
    if contact.webhook_url:
        allowed = parse_networks(settings.CONFIG.webhook_allowed_networks)
        try:
            check_webhook_url(contact.webhook_url, allowed)
        except UrlRejected as exc:
            raise Invalid("webhook_url", str(exc)) from None


def set_contact_key(
    actor: User | None, contact: PointOfContact, armored: str, *, now: datetime | None = None
) -> ContactKey:
    """Store a contact's OpenPGP public key; e-mail to them is encrypted from now on."""
    now = _now(now)
    _require_manager(actor, contact.organisation_id)
    try:
        key = parse_public_key(armored, now=now)
    except KeyProblem as exc:
        raise Invalid("pgp_key", str(exc)) from None
    with transaction.atomic():
        row = ContactKey.objects.select_for_update().filter(contact=contact).first()
        before = snapshot(row) if row else None
        if row is None:
            row = ContactKey(contact=contact)
        row.armored = key.armored
        row.fingerprint = key.fingerprint
        row.expires_at = key.expires_at
        row.updated_at = now
        row.save()
        audit(actor, "contact.pgp-key", row, now=now, before=before, after=snapshot(row))
    return row


def remove_contact_key(
    actor: User | None, contact: PointOfContact, *, now: datetime | None = None
) -> None:
    now = _now(now)
    _require_manager(actor, contact.organisation_id)
    with transaction.atomic():
        row = ContactKey.objects.select_for_update().filter(contact=contact).first()
        if row is None:
            raise NotFound(f"contact {contact.pk} has no OpenPGP key")
        audit(actor, "contact.pgp-key-removed", row, now=now, before=snapshot(row))
        row.delete()


def webhook_secrets(
    contacts: Iterable[PointOfContact], *, now: datetime | None = None
) -> dict[int, tuple[str, ...]]:
    """The secrets each contact's webhook is signed with (current first), creating missing ones.

    A secret is created the first time it is needed — when the operator shows it with
    ``vcisc notify secret`` or when the first webhook goes out — and that creation is audited.
    """
    now = _now(now)
    wanted = {c.pk: c for c in contacts}
    rows = {r.contact_id: r for r in WebhookSecret.objects.filter(contact_id__in=list(wanted))}
    missing = [c for pk, c in wanted.items() if pk not in rows]
    if missing:
        with transaction.atomic():
            for contact in missing:
                row, created = WebhookSecret.objects.get_or_create(
                    contact=contact, defaults={"secret": new_secret(), "created_at": now}
                )
                if created:
                    audit(None, "contact.webhook-secret", row, now=now, after=_without_secrets(row))
                rows[contact.pk] = row
    found: dict[int, tuple[str, ...]] = {}
    for pk, row in rows.items():
        current: tuple[str, ...] = (row.secret,)
        if row.previous_secret and row.previous_valid_until and row.previous_valid_until > now:
            current += (row.previous_secret,)
        found[pk] = current
    return found


def rotate_webhook_secret(
    actor: User | None, contact: PointOfContact, *, now: datetime | None = None
) -> str:
    """A new signing secret; the old one keeps signing too for :data:`ROTATION_GRACE`."""
    now = _now(now)
    _require_manager(actor, contact.organisation_id)
    webhook_secrets([contact], now=now)
    with transaction.atomic():
        row = WebhookSecret.objects.select_for_update().get(contact=contact)
        before = _without_secrets(row)
        row.previous_secret = row.secret
        row.previous_valid_until = now + ROTATION_GRACE
        row.secret = new_secret()
        row.save()
        audit(
            actor,
            "contact.webhook-secret-rotated",
            row,
            now=now,
            before=before,
            after=_without_secrets(row),
        )
    return row.secret


# --- organisations ------------------------------------------------------------------------------

_SETTINGS_FIELDS = frozenset(
    {
        "sender_name",
        "sender_address",
        "reply_to",
        "email_tlp_ceiling",
        "webhook_tlp_ceiling",
        "duty_desk_id",
    }
)


def update_delivery_settings(
    actor: User | None,
    org: Organisation,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> DeliverySettings:
    """Change how VCISC writes to ``org`` (sender, reply-to, TLP ceilings, duty desk)."""
    now = _now(now)
    _require_manager(actor, org.pk)
    unknown = sorted(set(changes) - _SETTINGS_FIELDS)
    if unknown:
        raise Invalid(unknown[0], "cannot be changed here")
    for field in ("email_tlp_ceiling", "webhook_tlp_ceiling"):
        value = changes.get(field)
        if value:
            try:
                parse_ceiling(str(value))
            except ValueError as exc:
                raise Invalid(field, str(exc)) from None
    desk = changes.get("duty_desk_id")
    if (
        desk is not None
        and not PointOfContact.objects.filter(pk=desk, organisation=org, active=True).exists()
    ):
        raise Invalid("duty_desk_id", f"not an active point of contact of {org.name}")
    with transaction.atomic():
        row = DeliverySettings.objects.select_for_update().filter(organisation=org).first()
        before = snapshot(row) if row else None
        if row is None:
            row = DeliverySettings(organisation=org, updated_at=now)
        for name, value in changes.items():
            if name.endswith("_tlp_ceiling") and value:
                value = parse_ceiling(str(value)).value
            setattr(row, name, "" if value is None and name != "duty_desk_id" else value)
        row.updated_at = now
        clean_or_invalid(row, exclude=["organisation", "duty_desk"])
        row.save()
        audit(
            actor,
            "organisation.delivery-settings",
            row,
            now=now,
            before=before,
            after=snapshot(row),
        )
    return row


# --- dead letters -------------------------------------------------------------------------------


def replay(
    actor: User | None, delivery_ids: Sequence[int], *, now: datetime | None = None
) -> list[Delivery]:
    """Send dead letters back to the queue: attempts start again from zero, at once."""
    now = _now(now)
    if actor is not None and not actor.has_role(Role.ADMIN):
        raise Forbidden("replaying dead letters needs the admin role")
    if not delivery_ids:
        raise Invalid("delivery", "name at least one delivery")
    with transaction.atomic():
        rows = Delivery.objects.select_for_update().in_bulk(list(delivery_ids))
        for pk in delivery_ids:
            row = rows.get(pk)
            if row is None:
                raise NotFound(f"no delivery {pk}")
            if row.status != DeliveryStatus.DEAD:
                raise Conflict(
                    f"delivery {pk} is {row.status}, not a dead letter", state=row.status
                )
        for row in rows.values():
            before = snapshot(row)
            row.status = DeliveryStatus.PENDING
            row.attempts = 0
            row.next_attempt_at = now
            row.dead_at = None
            row.replays += 1
            row.save()
            audit(actor, "delivery.replay", row, now=now, before=before, after=snapshot(row))
        OutboxMessage.objects.filter(
            pk__in={r.message_id for r in rows.values()}, status=OutboxStatus.FAILED
        ).update(status=OutboxStatus.PENDING)
        from vcisc.notify.outbox import wake_workers

        wake_workers()
    return list(rows.values())
