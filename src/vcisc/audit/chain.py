"""Writing and verifying the audit hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from vcisc.audit.models import AuditRecord
from vcisc.dbutil import serialize

__all__ = ["GENESIS", "Problem", "canonical", "record", "verify"]

GENESIS = "0" * 64


def canonical(value: Any) -> Any:
    """JSON-safe, order-stable form of ``value`` (datetimes as ISO strings)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def _digest(prev: str, fields: dict[str, Any]) -> str:
    # The sequence number is deliberately not hashed: order is carried by the link to the
    # predecessor's digest, so a moved record shows as "reordered", not merely "altered".
    payload = json.dumps({"prev": prev, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _fields(rec: AuditRecord) -> dict[str, Any]:
    return {
        "at": rec.at.isoformat(),
        "actor_id": rec.actor_id,
        "actor": rec.actor,
        "organisation": rec.organisation,
        "action": rec.action,
        "object_type": rec.object_type,
        "object_id": rec.object_id,
        "before": rec.before,
        "after": rec.after,
    }


def record(
    *,
    at: datetime,
    actor_id: int | None,
    actor: str,
    organisation: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record. Must run inside the transaction of the change it describes."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must be called inside transaction.atomic()")
    # Serialise writers so that two transactions never chain onto the same predecessor.
    serialize("audit-chain")
    last = AuditRecord.objects.order_by("-seq").values_list("seq", "digest").first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    rec = AuditRecord(
        seq=seq,
        at=at,
        actor_id=actor_id,
        actor=actor,
        organisation=organisation,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=canonical(before) if before is not None else None,
        after=canonical(after) if after is not None else None,
        prev_digest=prev,
    )
    rec.digest = _digest(prev, _fields(rec))
    rec.save()
    return rec


@dataclass(frozen=True)
class Problem:
    """The first place the chain breaks."""

    seq: int
    kind: str  # altered | removed | reordered
    detail: str

    def __str__(self) -> str:
        return f"record #{self.seq} {self.kind}: {self.detail}"


def _records(batch: int = 2000) -> Iterator[AuditRecord]:
    # Walk in storage order of seq; a reordering shows up as a broken link.
    yield from AuditRecord.objects.order_by("seq").iterator(chunk_size=batch)


def verify() -> tuple[int, str, Problem | None]:
    """Walk the chain; return the records checked, the head digest and the first problem.

    Truncation of the newest records cannot be seen from inside the chain: operators keep the
    head digest that ``vcisc audit verify`` prints and compare it later (``--expect-head``).
    """
    prev = GENESIS
    expected_seq = 1
    count = 0
    for rec in _records():
        count += 1
        if rec.seq != expected_seq:
            if rec.seq > expected_seq:
                return (
                    count,
                    prev,
                    Problem(
                        expected_seq,
                        "removed",
                        f"records #{expected_seq}…#{rec.seq - 1} are missing before #{rec.seq}",
                    ),
                )
            return count, prev, Problem(rec.seq, "reordered", f"sequence went back to #{rec.seq}")
        own = _digest(rec.prev_digest, _fields(rec))
        if own != rec.digest:
            return (
                count,
                prev,
                Problem(rec.seq, "altered", "its content no longer matches its digest"),
            )
        if rec.prev_digest != prev:
            # Content intact but linked to another predecessor: it was moved or one was dropped.
            return (
                count,
                prev,
                Problem(rec.seq, "reordered", "it does not follow the record stored before it"),
            )
        prev = rec.digest
        expected_seq += 1
    return count, prev, None
