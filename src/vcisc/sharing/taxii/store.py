"""Object rows: reading pages, adding posted objects, deleting, and materialising engagements.

**Engagement items appear as rows, materialised on read.** Tasks, notes, SITREPs and
indicators written through the API or the console are exported
(:func:`vcisc.engagements.exports.stix_objects`, the same export and stable ids as
``GET /engagements/{id}/stix``) and stored as rows the first time the collection is read after
a change. A change is noticed by a marker — the number of timeline entries of the request
(every workspace write records one) and the request's ``updated_at`` — in one indexed query, so
an unchanged collection costs nothing more to read; a changed one re-exports only the items
changed since the last materialisation. Row storage is what makes a full paginated read a
keyset query and a concatenation of stored JSON (no per-object export or ``json.dumps``);
building the bundle on every read costs the whole export per page and cannot meet the
benchmark of issue 5. Objects POSTed over TAXII are stored as sent, and their indicators go
into the engagement through :func:`vcisc.engagements.indicators.add_indicators` (correlation,
audit, timeline) without being materialised a second time.

Every row carries the strictest TLP of its markings; readers see rows through the
collection's ``row_filter`` (:func:`vcisc.authz.item_filter`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.db import connections, transaction
from django.db.models import Max, Min, Q, QuerySet, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from vcisc import authz
from vcisc.assistance.models import TimelineEntry
from vcisc.audit.log import audit
from vcisc.engagements import exports
from vcisc.engagements.indicators import (
    IndicatorInput,
    add_indicators,
    digest_of,
    stix_indicator_inputs,
)
from vcisc.engagements.models import Engagement, EngagementMember, IndicatorSource
from vcisc.federation.models import User
from vcisc.feeds.services import add_from_collection, removed_from_collection
from vcisc.sharing.reports import ImportMode
from vcisc.sharing.stix.importer import BundleError, ImportOptions, read_bundle
from vcisc.sharing.stix.markings import tlp_for_marking_id
from vcisc.sharing.taxii.errors import TaxiiError, from_domain
from vcisc.sharing.taxii.media import Filters, timestamp
from vcisc.sharing.taxii.models import CollectionState, StatusResource, StixObject
from vcisc.sharing.taxii.scopes import Collection
from vcisc.tlp import Tlp, strictest

__all__ = [
    "Page",
    "add_objects",
    "delete_object",
    "materialise",
    "page",
    "rows",
    "text_page",
    "text_page_sql",
    "text_rows_page",
]

_BATCH = 500
_MICRO = timedelta(microseconds=1)
#: Items changed this long before a materialisation are looked at again by the next one
#: (a write may commit after a materialisation that started later than its ``updated_at``).
_MARGIN = timedelta(minutes=5)


# --- reading ----------------------------------------------------------------------------------


def rows(col: Collection, f: Filters, *, stix_id: str | None = None) -> QuerySet[StixObject]:
    """The collection's rows this user may read, filtered (§3.4), in date-added order."""
    qs = StixObject.objects.filter(collection=col.id)
    if col.row_filter is not None:
        qs = qs.filter(col.row_filter)
    if stix_id is not None:
        qs = qs.filter(stix_id=stix_id)
    if f.ids:
        qs = qs.filter(stix_id__in=f.ids)
    if f.types:
        qs = qs.filter(type__in=f.types)
    if f.spec_versions:
        qs = qs.filter(spec_version__in=f.spec_versions)
    if "all" not in f.versions:
        which = Q(pk__in=[])
        if "last" in f.versions:
            which |= Q(latest=True)
        if "first" in f.versions:
            which |= Q(first=True)
        if f.version_times:
            which |= Q(version__in=f.version_times)
        qs = qs.filter(which)
    if f.added_after is not None:
        qs = qs.filter(date_added__gt=f.added_after)
    if f.after is not None:
        qs = qs.filter(date_added__gt=f.after)
    if stix_id is not None or f.ids:
        # Ordered by an expression, not the column: SQLite's planner (no statistics) would
        # otherwise walk ``taxii_latest`` in date-added order through the whole collection to
        # avoid a sort, instead of finding the few versions of these ids in ``taxii_stix_id``.
        # Sorting those few rows costs nothing; PostgreSQL picks the id index either way.
        return qs.order_by(Coalesce("date_added", "date_added"))
    return qs.order_by("date_added")


@dataclass(frozen=True)
class Page:
    """One page (§3.5): the rows' chosen columns, and whether more follow."""

    items: list[tuple[Any, ...]]
    more: bool
    first_added: datetime | None
    last_added: datetime | None


def page(qs: QuerySet[StixObject], limit: int, *fields: str) -> Page:
    """``limit`` rows of ``fields`` (``date_added`` first), one more fetched to know ``more``."""
    found = list(qs.values_list("date_added", *fields)[: limit + 1])
    more = len(found) > limit
    items = found[:limit]
    return Page(items, more, items[0][0] if items else None, items[-1][0] if items else None)


def text_page(qs: QuerySet[StixObject], limit: int) -> Page:
    """:func:`page` of ``text``, as ``[(date_added, text), …]`` with ``date_added`` converted
    in the first and last row only (the envelope needs no other).

    The rows come straight from the database cursor, with ``date_added`` as text: a page holds
    up to 10,000 objects, and converting every row's timestamp (the ORM's converters, or
    psycopg's timestamp loader in Python) cost more than reading the page.
    """
    sql, params = text_page_sql(qs, limit)
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return text_rows_page(found, limit)


def text_page_sql(qs: QuerySet[StixObject], limit: int) -> tuple[str, tuple[Any, ...]]:
    """The query of :func:`text_page` (``%s`` placeholders, Django's parameters)."""
    added = Cast("date_added", output_field=TextField())
    sliced = qs.annotate(added_text=added).values_list("added_text", "text")[: limit + 1]
    sql, params = sliced.query.get_compiler(using=sliced.db).as_sql()
    return sql, tuple(params)


def text_rows_page(found: list[tuple[str, str]], limit: int) -> Page:
    """The :class:`Page` of the rows :func:`text_page_sql`'s query fetched."""
    more = len(found) > limit
    items = found[:limit]
    if not items:
        return Page([], more, None, None)
    return Page(items, more, _moment(items[0][0]), _moment(items[-1][0]))


def _moment(value: str) -> datetime:
    """A ``date_added`` cast to text (PostgreSQL: with its offset; SQLite: UTC, without)."""
    moment = parse_datetime(value)
    if moment is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- materialising an engagement -------------------------------------------------------------


def _marker(eng: Engagement) -> str:
    entries = TimelineEntry.objects.filter(rfa_id=eng.rfa_id).count()
    return f"{entries}|{eng.rfa.updated_at.isoformat()}|{eng.closed_at}"


def _state(cid: uuid.UUID) -> CollectionState:
    """The collection's state row, locked until the transaction ends."""
    CollectionState.objects.get_or_create(collection=cid)
    return CollectionState.objects.select_for_update().get(collection=cid)


def materialise(eng: Engagement, *, now: datetime | None = None) -> None:
    """Store the STIX objects of the engagement's items changed since the last time (above)."""
    marker = _marker(eng)
    if CollectionState.objects.filter(collection=eng.pk, marker=marker).exists():
        return
    now = now or timezone.now()
    with transaction.atomic():
        state = _state(eng.pk)
        if state.marker == marker:
            return
        posted = StixObject.objects.filter(
            collection=eng.pk, posted=True, item_id__isnull=False
        ).values("item_id")
        items = ~Q(pk__in=posted)
        if state.materialised_since is not None:
            items &= Q(updated_at__gte=state.materialised_since)
        objects = exports.stix_objects(eng, items=items)
        _insert(state, eng, [(o, orjson.dumps(o).decode(), _tlp_of(o)) for o in objects], now)
        state.marker = marker
        state.materialised_since = now - _MARGIN
        state.save()


def _tlp_of(obj: Mapping[str, Any]) -> Tlp:
    found = [t for r in obj.get("object_marking_refs", ()) if (t := tlp_for_marking_id(r))]
    if obj.get("type") == "marking-definition" and not found:
        return Tlp.CLEAR
    return strictest(found) if found else Tlp.RED  # never unmarked: the export marks all


def _version(obj: Mapping[str, Any], fallback: datetime) -> datetime:
    for name in ("modified", "created"):
        value = obj.get(name)
        if isinstance(value, str):
            moment = parse_datetime(value)
            if moment is not None and moment.tzinfo is not None:
                return moment
    return fallback


def _insert(
    state: CollectionState,
    eng: Engagement | None,
    objects: Sequence[tuple[Mapping[str, Any], str, Tlp]],
    now: datetime,
    *,
    posted: bool = False,
    organisation_id: Any = None,
) -> dict[int, StixObject]:
    """Store the versions not stored yet; dates added unique and increasing (the state's
    clock); ``latest``/``first`` kept right. Returns the new rows by position in ``objects``."""
    cid = state.collection
    ids = sorted({str(o["id"]) for o, _, _ in objects})
    known: dict[str, list[datetime]] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        for sid, version in StixObject.objects.filter(
            collection=cid, stix_id__in=chunk
        ).values_list("stix_id", "version"):
            known.setdefault(sid, []).append(version)
    clock = now if state.last_added is None else max(now, state.last_added + _MICRO)
    created: dict[int, StixObject] = {}
    for index, (obj, text, tlp) in enumerate(objects):
        sid = str(obj["id"])
        version = _version(obj, clock)
        versions = known.setdefault(sid, [])
        if version in versions:
            continue
        created[index] = StixObject(
            collection=cid,
            engagement=eng,
            stix_id=sid,
            type=str(obj["type"]),
            spec_version=str(obj.get("spec_version", "2.1")),
            version=version,
            date_added=clock,
            tlp=tlp.value,
            latest=not versions or version > max(versions),
            first=not versions or version < min(versions),
            posted=posted,
            organisation_id=organisation_id,
            text=text,
        )
        versions.append(version)
        clock += _MICRO
    rows_ = list(created.values())
    # A newer (older) version takes over ``latest`` (``first``) from the stored ones.
    _demote(cid, [r for r in rows_ if r.latest], "latest", Max)
    _demote(cid, [r for r in rows_ if r.first], "first", Min)
    # Within one batch, only the newest/oldest of several new versions keeps the flag.
    best: dict[str, StixObject] = {}
    worst: dict[str, StixObject] = {}
    for r in rows_:
        if r.stix_id not in best or r.version > best[r.stix_id].version:
            best[r.stix_id] = r
        if r.stix_id not in worst or r.version < worst[r.stix_id].version:
            worst[r.stix_id] = r
    for r in rows_:
        r.latest = r.latest and best[r.stix_id] is r
        r.first = r.first and worst[r.stix_id] is r
    for start in range(0, len(rows_), _BATCH):
        StixObject.objects.bulk_create(rows_[start : start + _BATCH])
    if rows_:
        state.last_added = clock - _MICRO
        state.save(update_fields=["last_added"])
    return created


def _demote(cid: uuid.UUID, fresh: Iterable[StixObject], flag: str, agg: Any) -> None:
    ids = sorted({r.stix_id for r in fresh})
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        StixObject.objects.filter(collection=cid, stix_id__in=chunk, **{flag: True}).update(
            **{flag: False}
        )


def _refresh_flags(cid: uuid.UUID, stix_id: str) -> None:
    """After a delete: the newest and oldest remaining versions carry the flags again."""
    left = StixObject.objects.filter(collection=cid, stix_id=stix_id)
    left.update(latest=False, first=False)
    newest = left.order_by("-version").first()
    oldest = left.order_by("version").first()
    if newest is not None and oldest is not None:
        StixObject.objects.filter(pk=newest.pk).update(latest=True)
        StixObject.objects.filter(pk=oldest.pk).update(first=True)


# --- adding (§5.4) ---------------------------------------------------------------------------


def _is_member(user: User, eng: Engagement) -> bool:
    return EngagementMember.objects.filter(engagement=eng, user=user).exists()


def _bundle_bytes(body: bytes) -> tuple[bytes, int]:
    """The envelope (§3.7) — or a STIX bundle, which clients also send — as bundle bytes."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TaxiiError(400, "Invalid JSON", f"the body is not JSON: {exc}") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("objects"), list):
        raise TaxiiError(
            422, "Not an envelope", 'send an envelope: {"objects": [ …STIX 2.1 objects… ]}'
        )
    objects = envelope["objects"]
    if envelope.get("type") == "bundle":
        return body, len(objects)
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
    return orjson.dumps(bundle), len(objects)


def add_objects(
    user: User, col: Collection, body: bytes, *, max_bytes: int, now: datetime | None = None
) -> StatusResource:
    """Validate and store the posted objects in one transaction (§5.4), with an audit record.

    Each object is checked by the streaming importer (STIX 2.1 MUSTs, markings, patterns);
    invalid ones are failures of the status, the rest are stored (the TAXII way: a status
    lists both). An object marked more strictly than the collection allows is a failure:
    TLP:RED in an engagement for anyone but its named members, anything above the scope in a
    federation collection. Unmarked objects get the engagement's TLP, or the scope's.
    """
    if not col.can_write:
        raise TaxiiError(403, "Forbidden", "you may read this collection but not write to it")
    now = now or timezone.now()
    data, _ = _bundle_bytes(body)
    eng = col.engagement
    default_tlp = col.scope if col.scope is not None else Tlp(eng.rfa.tlp) if eng else Tlp.RED
    options = ImportOptions(
        default_tlp=default_tlp, mode=ImportMode.SKIP_INVALID, max_bytes=max_bytes
    )
    reader = read_bundle(data, options)
    try:
        accepted = list(reader)
    except BundleError as exc:
        raise TaxiiError(422, "Invalid bundle", exc.reason) from None
    report = reader.report
    failures = [
        {"id": p.object_id or f"objects[{p.index}]", "message": p.reason} for p in report.errors
    ]
    successes: list[dict[str, str]] = []
    member = eng is not None and _is_member(user, eng)
    keep = []
    for obj in accepted:
        if col.scope is not None and obj.tlp.rank > col.scope.rank:
            failures.append(
                {
                    "id": obj.id,
                    "message": f"marked {obj.tlp.label}, stricter than this collection "
                    f"({col.scope.label}) may carry",
                }
            )
        elif eng is not None and obj.tlp is Tlp.RED and not member:
            failures.append(
                {"id": obj.id, "message": "only the engagement's named members may write TLP:RED"}
            )
        else:
            keep.append(obj)
    try:
        with transaction.atomic():
            if eng is not None:
                materialise(eng, now=now)
            state = _state(col.id)
            entries = [(dict(o.stix), orjson.dumps(o.stix).decode(), o.tlp) for o in keep]
            created = _insert(
                state, eng, entries, now, posted=True, organisation_id=user.organisation_id
            )
            for i, obj in enumerate(keep):
                row = created.get(i)
                version = timestamp(row.version) if row else str(obj.modified or "")
                successes.append({"id": obj.id, "version": version})
            if eng is not None:
                _add_indicators(user, eng, keep, created, now)
            elif col.scope is not None:  # a federation collection is a federation feed
                add_from_collection(
                    user, col.id, col.scope, [o for i, o in enumerate(keep) if i in created], now
                )
            for p in report.warnings:
                if "identical copy" in p.reason and p.object_id:
                    successes.append({"id": p.object_id, "message": p.reason})
            status = StatusResource.objects.create(
                id=uuid.uuid4(),
                collection=col.id,
                user=user,
                request_timestamp=now,
                total_count=len(successes) + len(failures),
                success_count=len(successes),
                failure_count=len(failures),
                successes=successes,
                failures=failures,
            )
            digest = hashlib.sha256("\n".join(sorted(o.id for o in keep)).encode()).hexdigest()
            audit(
                user,
                "taxii.add",
                status,
                now=now,
                after={
                    "collection": str(col.id),
                    "stored": len(created),
                    "successes": len(successes),
                    "failures": len(failures),
                    "ids_sha256": digest,
                },
            )
    except (TaxiiError, BundleError):
        raise
    except Exception as exc:
        raise from_domain(exc) from None
    return status


def _add_indicators(
    user: User,
    eng: Engagement,
    keep: Sequence[Any],
    created: Mapping[int, StixObject],
    now: datetime,
) -> None:
    """Posted indicators join the engagement (correlation, audit, timeline): one write path."""
    inputs: list[IndicatorInput] = []
    rows_by_digest: dict[str, StixObject] = {}
    for i, obj in enumerate(keep):
        if i not in created:
            continue
        found = stix_indicator_inputs(obj)
        inputs += found
        if len(found) == 1:
            rows_by_digest[digest_of(found[0].observable)] = created[i]
    if not inputs:
        return
    result = add_indicators(user, eng.pk, inputs, source=IndicatorSource.STIX, now=now)
    links = [
        (rows_by_digest[ind.correlation_digest].pk, ind.pk)
        for ind in result.created
        if ind.correlation_digest in rows_by_digest
    ]
    for row_id, item_id in links:
        StixObject.objects.filter(pk=row_id).update(item_id=item_id)


# --- deleting (§5.6) -------------------------------------------------------------------------


def delete_object(
    user: User, col: Collection, stix_id: str, f: Filters, *, now: datetime | None = None
) -> int:
    """Delete the versions of ``stix_id`` that ``f`` selects (all by default), if the user may.

    Only objects posted over TAXII by the user's organisation can be deleted (the secretariat's
    coordinators may also delete from federation collections); an engagement item's object is
    removed by changing the item in the engagement, not here. The engagement's indicator that
    a posted object became stays (it has its own history); the deletion is audited.
    """
    now = now or timezone.now()
    visible = rows(col, f, stix_id=stix_id)
    if not visible.exists():
        raise TaxiiError(404, "Object not found", f"no object {stix_id} in this collection")
    if not col.can_write:
        raise TaxiiError(403, "Forbidden", "you may read this collection but not write to it")
    coordinator = col.scope is not None and authz.is_coordinator(user)
    theirs = visible.exclude(posted=True, organisation=user.organisation)
    if not coordinator and theirs.exists():
        raise TaxiiError(
            403, "Forbidden", "only objects your organisation posted over TAXII can be deleted"
        )
    with transaction.atomic():
        _state(col.id)
        versions = [timestamp(v) for v in visible.values_list("version", flat=True)]
        count, _ = StixObject.objects.filter(
            pk__in=list(visible.values_list("pk", flat=True))
        ).delete()
        _refresh_flags(col.id, stix_id)
        if (
            col.scope is not None
            and not StixObject.objects.filter(collection=col.id, stix_id=stix_id).exists()
        ):
            removed_from_collection(col.id, stix_id)
        state = CollectionState.objects.get(collection=col.id)
        audit(
            user,
            "taxii.delete",
            state,
            now=now,
            after={"collection": str(col.id), "stix_id": stix_id, "versions": versions},
        )
    return count
