"""The append-only, hash-chained audit record.

Each record's ``digest`` is SHA-256 over its own canonical content *and* the previous record's
digest, so altering, removing or reordering any record breaks the chain from that point on
(:func:`vcisc.audit.chain.verify`). Records are written only by :func:`vcisc.audit.chain.record`,
inside the transaction of the change they describe.
"""

from __future__ import annotations

from typing import Any

from django.db import models

__all__ = ["AuditRecord"]


class AppendOnlyError(RuntimeError):
    pass


class AuditRecord(models.Model):
    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=254, help_text="e-mail of the acting user, or 'system'")
    organisation = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("audit records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit records are append-only")
