"""Audit helpers for services: snapshot a model instance and append the record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models

from vcisc.audit.chain import record
from vcisc.audit.models import AuditRecord

__all__ = ["audit", "snapshot"]

#: Never copied into the audit trail: secrets and their digests.
_SECRET_FIELDS = frozenset({"password", "digest"})


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The concrete field values of ``obj`` (foreign keys as ids), secrets left out."""
    return {
        f.attname: getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in _SECRET_FIELDS
    }


def audit(
    actor: Any,
    action: str,
    obj: models.Model,
    *,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append the audit record of one change; ``actor`` is a User, or None for the console."""
    if actor is None:
        actor_id, actor_name, org_name = None, "system", ""
    else:
        actor_id, actor_name = actor.pk, actor.email
        org_name = actor.organisation.name if actor.organisation_id else ""
    return record(
        at=now,
        actor_id=actor_id,
        actor=actor_name,
        organisation=org_name,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before,
        after=after,
    )
