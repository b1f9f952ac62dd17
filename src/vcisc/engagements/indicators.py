"""Indicators in engagements: the write path, the bulk imports and the correlation (issue 5).

Every way in — one indicator by hand, a CSV file, free text, a STIX 2.1 bundle, a MISP event —
ends in :func:`add_indicators`, which in one transaction checks the workspace rules (participants
only; TLP:RED for named members), stores each normalised value once per engagement, records a
:class:`~vcisc.engagements.models.Correlation` with every other engagement holding the same value,
writes the audit record and a timeline entry. An import whose report says "rejected" stores
nothing: never a half-written engagement.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from vcisc import authz
from vcisc.audit.log import audit, snapshot
from vcisc.engagements.lookup import Held, indicators_elsewhere
from vcisc.engagements.models import (
    Correlation,
    CorrelationRelation,
    Engagement,
    Indicator,
    IndicatorSource,
    Participant,
)
from vcisc.engagements.services import _check_tlp, _timeline, _workspace
from vcisc.errors import Conflict, Invalid
from vcisc.federation.models import User
from vcisc.feeds.services import match_new_indicators
from vcisc.sharing.observables import (
    InvalidObservable,
    Observable,
    ObservableType,
    address_range,
    guess_type,
    normalise,
)
from vcisc.sharing.reports import ImportMode, ImportReport, ObjectProblem
from vcisc.tlp import Tlp, strictest

if TYPE_CHECKING:  # the importer loads stix2-validator: only when a bundle is read
    from vcisc.sharing.stix.importer import ImportedObject

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "AddResult",
    "Held",
    "ImportRejected",
    "IndicatorInput",
    "Ranged",
    "add_indicator",
    "add_indicators",
    "correlations_visible",
    "digest64_of",
    "digest_of",
    "holding",
    "import_indicators",
    "import_stix_stream",
    "indicators_elsewhere",
    "indicators_visible",
    "networks_over",
    "ranges_inside",
    "stix_indicator_inputs",
    "wide_networks",
]

#: The columns a CSV import reads (a header row names them; only ``value`` is required).
CSV_COLUMNS = (
    "type",
    "value",
    "tlp",
    "first_seen",
    "last_seen",
    "confidence",
    "for_detection",
    "description",
)
FORMATS = ("csv", "text", "stix", "misp")
#: Rows written per INSERT (SQLite allows 32,766 parameters a statement).
_BATCH = 500


class ImportRejected(Invalid):
    """The import was rejected as a whole; the body carries the per-object report."""

    def __init__(self, report: ImportReport) -> None:
        first = "; ".join(str(e) for e in report.errors[:3])
        more = f" (and {len(report.errors) - 3} more)" if len(report.errors) > 3 else ""
        reason = report.fatal or f"{len(report.errors)} invalid object(s): {first}{more}"
        super().__init__("content", reason)
        self.extra["report"] = report_out(report)


@dataclass(frozen=True, slots=True)
class IndicatorInput:
    """One indicator to add: a normalised observable and what is known of it."""

    observable: Observable
    tlp: Tlp | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    confidence: int | None = None
    for_detection: bool = True
    description: str = ""


@dataclass(slots=True)
class AddResult:
    created: list[Indicator] = field(default_factory=list)
    duplicates: int = 0
    correlations: int = 0
    #: New matches with federation feeds (vcisc.feeds).
    feed_matches: int = 0
    #: How many were created, when ``created`` is not kept (a streamed import).
    count: int = 0


def digest_of(observable: Observable) -> str:
    """The hex SHA-256 of the observable's correlation key (``Indicator.correlation_digest``)."""
    return hashlib.sha256(str(observable.correlation_key).encode()).hexdigest()


def digest64_of(digest: str) -> int:
    """The first 8 bytes of a hex digest as a signed 64-bit integer (``correlation_digest64``):
    a compact, BIGINT-indexed stand-in that look-ups probe before comparing full digests."""
    return int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)


def report_out(report: ImportReport) -> dict[str, Any]:
    def problems(items: Iterable[ObjectProblem]) -> list[dict[str, Any]]:
        return [
            {"index": p.index, "object_id": p.object_id, "reason": p.reason, "details": p.details}
            for p in items
        ]

    return {
        "mode": report.mode.value,
        "seen": report.seen,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "fatal": report.fatal,
        "errors": problems(report.errors),
        "warnings": problems(report.warnings),
        "skipped": problems(report.skipped),
    }


# --- reading -----------------------------------------------------------------------------------


def indicators_visible(user: User, engagement: Engagement) -> Any:
    """The engagement's indicators the user may read (the workspace rule of vcisc.authz)."""
    return Indicator.objects.filter(engagement=engagement).filter(
        authz.item_filter(user, engagement)
    )


def correlations_visible(user: User, engagement: Engagement) -> list[dict[str, Any]]:
    """Indicators of this engagement also present in another engagement, for a user who may read
    both indicators: the other side is named only when the user may see that engagement too."""
    mine = {i.pk: i for i in indicators_visible(user, engagement)}
    if not mine:
        return []
    rows = Correlation.objects.filter(first_id__in=list(mine)) | Correlation.objects.filter(
        second_id__in=list(mine)
    )
    pairs = []
    elsewhere: dict[UUID, tuple[Engagement, list[UUID]]] = {}
    for corr in rows.select_related("first__engagement__rfa", "second__engagement__rfa"):
        here, there = (
            (corr.first, corr.second) if corr.first_id in mine else (corr.second, corr.first)
        )
        pairs.append((corr, here, there))
        elsewhere.setdefault(there.engagement_id, (there.engagement, []))[1].append(there.pk)
    # The other side is read through the same rule as this one, once per other engagement.
    readable: set[UUID] = set()
    for other, ids in elsewhere.values():
        readable.update(
            indicators_visible(user, other).filter(pk__in=ids).values_list("pk", flat=True)
        )
    found = []
    for corr, here, there in pairs:
        if there.pk not in readable:
            continue
        other = there.engagement
        found.append(
            {
                "indicator_id": here.pk,
                "type": here.type,
                "value": here.value,
                "other_engagement_id": other.pk,
                "other_reference": other.rfa.reference,
                "other_indicator_id": there.pk,
                "other_value": there.value,
                "relation": corr.relation,
                "created_at": corr.created_at,
            }
        )
    return found


# --- writing -----------------------------------------------------------------------------------


def add_indicators(
    actor: User,
    engagement_id: UUID,
    inputs: Sequence[IndicatorInput],
    *,
    source: IndicatorSource = IndicatorSource.MANUAL,
    now: datetime | None = None,
) -> AddResult:
    """Store ``inputs`` in the engagement (each value once), correlate and audit them."""
    now = now or timezone.now()
    result = AddResult()
    with transaction.atomic():
        eng = _workspace(actor, engagement_id)
        result.created = _store(actor, eng, inputs, source, now, result)
        _record(actor, eng, source, now, [i.pk for i in result.created], result, result.created)
    return result


def _store(
    actor: User,
    eng: Engagement,
    inputs: Sequence[IndicatorInput],
    source: IndicatorSource,
    now: datetime,
    result: AddResult,
) -> list[Indicator]:
    """Write one batch (the caller's transaction): each value once, correlated, matched with the
    feeds, the notifications queued; ``result`` counts duplicates, correlations and matches
    across batches; the indicators created are returned."""
    default_tlp = Tlp(eng.rfa.tlp)
    for tlp in {i.tlp or default_tlp for i in inputs}:
        _check_tlp(actor, eng, tlp.value)
    fresh: dict[str, Indicator] = {}
    for item in inputs:
        digest = digest_of(item.observable)
        if digest in fresh:
            result.duplicates += 1
            continue
        fresh[digest] = Indicator(
            engagement=eng,
            author=actor,
            organisation=actor.organisation,
            tlp=(item.tlp or default_tlp).value,
            created_at=now,
            updated_at=now,
            type=item.observable.type.value,
            value=item.observable.value,
            correlation_key=str(item.observable.correlation_key),
            correlation_digest=digest,
            correlation_digest64=digest64_of(digest),
            first_seen=item.first_seen or now,
            last_seen=item.last_seen,
            confidence=item.confidence,
            for_detection=item.for_detection,
            description=item.description,
            source=source,
        )
        covered = address_range(item.observable)
        if covered is not None:
            fresh[digest].range_low, fresh[digest].range_high = covered
    digests = list(fresh)
    for start in range(0, len(digests), _BATCH):
        chunk = digests[start : start + _BATCH]
        present = Indicator.objects.filter(engagement=eng, correlation_digest__in=chunk)
        for digest in present.values_list("correlation_digest", flat=True):
            del fresh[digest]
            result.duplicates += 1
    created = list(fresh.values())
    for start in range(0, len(created), _BATCH):
        Indicator.objects.bulk_create(created[start : start + _BATCH])
    pairs = _correlate(eng, created, now)
    result.correlations += len(pairs)
    _tell(eng, pairs, now)
    result.feed_matches += match_new_indicators(created, now)
    return created


def _record(
    actor: User,
    eng: Engagement,
    source: IndicatorSource,
    now: datetime,
    created_ids: Sequence[UUID],
    result: AddResult,
    created: Sequence[Indicator] = (),
) -> None:
    """The audit record and the timeline entry of what was added (``created_ids``; a single
    indicator is audited with its snapshot, from ``created``)."""
    if len(created_ids) == 1 and created:
        audit(actor, "indicator.create", created[0], now=now, after=snapshot(created[0]))
    elif created_ids:
        ids = sorted(str(i) for i in created_ids)
        audit(
            actor,
            "indicator.import",
            eng,
            now=now,
            after={
                "source": source.value,
                "created": len(created_ids),
                "duplicates": result.duplicates,
                "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            },
        )
    if created_ids:
        noun = "indicator" if len(created_ids) == 1 else f"{len(created_ids)} indicators"
        _timeline(eng, actor, "indicator", f"{noun} added by {actor.organisation}", now)


def _correlate(eng: Engagement, created: Sequence[Indicator], now: datetime) -> list[Correlation]:
    """One Correlation per (earlier indicator elsewhere, new indicator) with the same value."""
    by_digest = {i.correlation_digest: i for i in created}
    probes = {i.correlation_digest: i.correlation_digest64 for i in created}
    pairs = [
        Correlation(
            correlation_key=held.correlation_key,
            first_id=held.indicator_id,
            second=by_digest[held.digest],
            created_at=now,
        )
        for held in indicators_elsewhere(eng.pk, probes)
    ]
    pairs += _containment(eng, created, now)
    for start in range(0, len(pairs), _BATCH):
        Correlation.objects.bulk_create(pairs[start : start + _BATCH], ignore_conflicts=True)
    return pairs


#: At most this many addresses and networks elsewhere are correlated with one new network
#: (a /8 may hold millions of stored addresses; the first ones make the point).
CONTAINED_LIMIT = 1_000


def _containment(eng: Engagement, created: Sequence[Indicator], now: datetime) -> list[Correlation]:
    """CIDR containment: a new address or network inside a network of another engagement, and
    addresses or networks of other engagements inside a new network (the same value is the
    equality correlation's). Two range scans on partial indexes; networks are few."""
    ranged = [i for i in created if i.range_low]
    if not ranged:
        return []
    pairs: list[Correlation] = []
    elsewhere = Indicator.objects.exclude(engagement=eng).exclude(range_low="")
    # Networks elsewhere holding a new address or network.
    nets = list(
        networks_over(elsewhere, ranged).only("id", "correlation_key", "range_low", "range_high")
    )
    pairs += [_within(net, new, net.correlation_key, now) for net, new in holding(nets, ranged)]
    # Addresses and networks elsewhere inside a new network.
    for new in wide_networks(ranged):
        inside = ranges_inside(elsewhere, new).only("id")[:CONTAINED_LIMIT]
        pairs += [_within(other, new, new.correlation_key, now) for other in inside]
    return pairs


class Ranged(Protocol):
    """An engagement's indicator or a feed's value: the addresses it covers (address_range)."""

    type: str
    range_low: str
    range_high: str


N = TypeVar("N", bound=Ranged)
R = TypeVar("R", bound=Ranged)
QS = TypeVar("QS", bound="QuerySet[Any]")


def holding(networks: Iterable[N], ranged: Iterable[R]) -> Iterator[tuple[N, R]]:
    """``(network, item)`` for each network (a CIDR block) that holds the whole range of an
    item with a shorter prefix (the same block is the equality correlation's). Networks are
    grouped by (family, prefix length, first address), so each item looks up the one block of
    each prefix length present that would hold it: no pairwise comparison."""
    blocks: dict[tuple[str, int, int], list[N]] = {}
    for net in networks:
        family, low, length = _block(net.range_low, net.range_high)
        blocks.setdefault((family, length, low), []).append(net)
    lengths = sorted({(family, length) for family, length, _ in blocks})
    for item in ranged:
        family, low, length = _block(item.range_low, item.range_high)
        bits = 32 if family == "4" else 128
        for fam, shorter in lengths:
            if fam != family or shorter >= length:
                continue
            start = low & ~((1 << (bits - shorter)) - 1)
            for net in blocks.get((family, shorter, start), ()):
                yield net, item


def wide_networks(ranged: Iterable[R]) -> Iterator[R]:
    """The networks among ``ranged`` that hold more than one address (others can hold nothing
    but themselves, which is the equality correlation's)."""
    for item in ranged:
        if item.type == ObservableType.CIDR.value and item.range_low != item.range_high:
            yield item


def networks_over(rows: QS, ranged: Sequence[Ranged]) -> QS:
    """The networks among ``rows`` that may hold one of ``ranged`` (:func:`holding` tells
    which): every network whose start is at most the highest end of ``ranged`` (the partial
    index orders by the start only) and whose end is at least their lowest start."""
    lowest = min(i.range_low for i in ranged)
    highest = max(i.range_high for i in ranged)
    found: QS = rows.filter(type=ObservableType.CIDR.value, range_low__lte=highest).filter(
        range_high__gte=lowest
    )
    return found


def ranges_inside(rows: QS, network: Ranged) -> QS:
    """The rows (addresses and networks) inside ``network``, the network itself excluded."""
    found: QS = (
        rows.exclude(range_low="")
        .filter(range_low__gte=network.range_low, range_low__lte=network.range_high)
        .filter(range_high__lte=network.range_high)
        .exclude(range_low=network.range_low, range_high=network.range_high)
    )
    return found


def _block(range_low: str, range_high: str) -> tuple[str, int, int]:
    """``(family, first address, prefix length)`` of a stored range (a CIDR block)."""
    family, low, high = range_low[0], int(range_low[1:], 16), int(range_high[1:], 16)
    bits = 32 if family == "4" else 128
    return family, low, bits - (high - low + 1).bit_length() + 1


def _within(earlier: Indicator, new: Indicator, key: str, now: datetime) -> Correlation:
    return Correlation(
        correlation_key=key,
        relation=CorrelationRelation.WITHIN,
        first_id=earlier.pk,
        second=new,
        created_at=now,
    )


#: Indicators at these TLPs may be known federation-wide (TLP 2.0: the community), so the
#: secretariat may learn that two engagements share them; AMBER and stricter stay with the
#: recipients' own organisations.
_COMMUNITY = frozenset({Tlp.CLEAR, Tlp.GREEN})


def _tell(eng: Engagement, pairs: Sequence[Correlation], now: datetime) -> None:
    """Notify exactly those who may see both sides of each new correlation (issue 5).

    An organisation that takes part in both engagements is told, in a message marked with the
    strictest TLP of the indicators it names — unless one of them is TLP:RED, which goes to
    named people only and so to no organisation's desk. The secretariat, which takes part in
    neither workspace, is told that the two engagements share indicators, so that it can propose
    to connect the nations, only when every shared indicator is TLP:CLEAR or GREEN.
    """
    from vcisc.federation.models import Organisation
    from vcisc.notify.outbox import queue_correlation

    if not pairs:
        return
    by_engagement: dict[UUID, list[Correlation]] = {}
    others = Indicator.objects.in_bulk([p.first_id for p in pairs])
    for pair in pairs:
        by_engagement.setdefault(others[pair.first_id].engagement_id, []).append(pair)
    here = set(Participant.objects.filter(engagement=eng).values_list("organisation", flat=True))
    for other_id, found in by_engagement.items():
        other = Engagement.objects.select_related("rfa").get(pk=other_id)
        there = Participant.objects.filter(engagement=other).values_list("organisation", flat=True)
        tlps = [Tlp(p.second.tlp) for p in found] + [Tlp(others[p.first_id].tlp) for p in found]
        marking = strictest(tlps)
        values = sorted({p.second.value for p in found})
        shown = ", ".join(values[:20]) + (
            f" and {len(values) - 20} more" if len(values) > 20 else ""
        )
        refs = f"{eng.rfa.reference} and {other.rfa.reference}"
        pair_refs: dict[str, object] = {
            "reference": eng.rfa.reference,
            "other_reference": other.rfa.reference,
        }
        if Tlp.RED not in tlps:
            for org in Organisation.objects.filter(pk__in=here & set(there)):
                queue_correlation(
                    eng.rfa,
                    org,
                    subject=f"[{marking.label}] {refs} share {len(values)} indicator(s)",
                    body=f"Both engagements you take part in, {refs}, hold: {shown}.",
                    payload={**pair_refs, "values": values[:100]},
                    tlp=marking,
                    now=now,
                )
        if set(tlps) <= _COMMUNITY:
            for org in Organisation.objects.filter(kind="secretariat", active=True):
                queue_correlation(
                    eng.rfa,
                    org,
                    subject=f"[{marking.label}] {refs} share indicators",
                    body=(
                        f"The engagements of {refs} share {len(values)} indicator(s): {shown}. "
                        "Consider proposing that the nations work together."
                    ),
                    payload={
                        "reference": eng.rfa.reference,
                        "other_reference": other.rfa.reference,
                    },
                    tlp=marking,
                    now=now,
                    kind="engagements.related",
                )


def add_indicator(
    actor: User, engagement_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> Indicator:
    """One indicator by hand; its type is guessed from the value when not given."""
    item = _input(data, field_prefix="")
    result = add_indicators(actor, engagement_id, [item], now=now)
    if not result.created:
        raise Conflict("this indicator is already in the engagement", allowed=[])
    return result.created[0]


def _input(data: Mapping[str, Any], *, field_prefix: str) -> IndicatorInput:
    """An :class:`IndicatorInput` from API/CSV fields; errors name the field."""

    def bad(name: str, message: str) -> Invalid:
        return Invalid(f"{field_prefix}{name}", message)

    raw = data.get("value")
    if not isinstance(raw, str) or not raw.strip():
        raise bad("value", "an indicator needs a value")
    kind = data.get("type") or None
    try:
        observable = normalise(kind or guess_type(raw), raw)
    except InvalidObservable as exc:
        raise bad("value", exc.reason if kind else f"{exc.reason} (or say its type)") from None
    tlp = data.get("tlp") or None
    try:
        label = Tlp(tlp) if tlp else None
    except ValueError:
        raise bad("tlp", f"unknown TLP {tlp!r}") from None
    return IndicatorInput(
        observable=observable,
        tlp=label,
        first_seen=_moment(data.get("first_seen"), bad, "first_seen"),
        last_seen=_moment(data.get("last_seen"), bad, "last_seen"),
        confidence=_confidence(data.get("confidence"), bad),
        for_detection=_flag(data.get("for_detection", True), bad),
        description=str(data.get("description") or "")[:5000],
    )


def _moment(value: Any, bad: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment: datetime | None = value
    else:
        moment = parse_datetime(str(value))
    if moment is None or moment.tzinfo is None:
        raise bad(name, "a date and time with a time zone (ISO 8601), e.g. 2026-12-01T10:00Z")
    return moment


def _confidence(value: Any, bad: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad("confidence", "a whole number from 0 to 100") from None
    if not 0 <= number <= 100:
        raise bad("confidence", "a whole number from 0 to 100")
    return number


def _flag(value: Any, bad: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", ""):
        return True
    if text in ("0", "false", "no"):
        return False
    raise bad("for_detection", "true or false")


# --- imports -------------------------------------------------------------------------------------


def import_indicators(
    actor: User,
    engagement_id: UUID,
    *,
    fmt: str,
    content: str,
    mode: ImportMode = ImportMode.ATOMIC,
    now: datetime | None = None,
) -> tuple[AddResult, ImportReport]:
    """Read ``content`` as ``fmt`` and add what it holds; reject all or skip the invalid."""
    if fmt not in FORMATS:
        raise Invalid("format", f"one of {', '.join(FORMATS)}")
    eng = authz.get_engagement(actor, engagement_id)
    default_tlp = Tlp(eng.rfa.tlp)
    readers = {"csv": _read_csv, "text": _read_text, "stix": _read_stix, "misp": _read_misp}
    inputs, report = readers[fmt](content, default_tlp, mode)
    if report.rejected:
        raise ImportRejected(report)
    source = IndicatorSource(fmt)
    return add_indicators(actor, engagement_id, inputs, source=source, now=now), report


#: Indicators written per batch by :func:`import_stix_stream`.
STREAM_BATCH = 5_000


def import_stix_stream(
    actor: User,
    engagement_id: UUID,
    source: IO[bytes],
    *,
    mode: ImportMode = ImportMode.ATOMIC,
    now: datetime | None = None,
    batch: int = STREAM_BATCH,
    progress: Callable[[int], None] | None = None,
) -> tuple[AddResult, ImportReport]:
    """A STIX 2.1 bundle read from a file as a stream and stored as it is read, in batches,
    in one transaction: memory stays bounded by the batch, not the bundle (the CLI's import of
    large bundles). All or nothing as :func:`import_indicators`: in atomic mode the first
    invalid object stops the writing (the rest is still read, to report every problem) and the
    transaction is rolled back. ``result.created`` stays empty; its length is ``result.count``.
    """
    from vcisc.sharing.stix.importer import BundleError, ImportOptions, read_bundle

    now = now or timezone.now()
    result = AddResult()
    ids: list[UUID] = []
    with transaction.atomic():
        eng = _workspace(actor, engagement_id)
        reader = read_bundle(source, ImportOptions(default_tlp=Tlp(eng.rfa.tlp), mode=mode))
        pending: list[IndicatorInput] = []
        seen = 0

        def flush() -> None:
            if pending and not (mode is ImportMode.ATOMIC and reader.report.errors):
                ids.extend(
                    i.pk for i in _store(actor, eng, pending, IndicatorSource.STIX, now, result)
                )
            pending.clear()

        try:
            for obj in reader:
                seen += 1
                pending.extend(stix_indicator_inputs(obj))
                if len(pending) >= batch:
                    flush()
                    if progress is not None:
                        progress(seen)
        except BundleError:
            pass  # the report says why (fatal)
        report = reader.report
        if report.rejected:
            raise ImportRejected(report)  # rolls the batches written so far back
        flush()
        result.count = len(ids)
        _record(actor, eng, IndicatorSource.STIX, now, ids, result)
    return result, report


def _report(
    mode: ImportMode, seen: int, accepted: int, errors: list[ObjectProblem], **kw: Any
) -> ImportReport:
    skipped = tuple(errors) if mode is ImportMode.SKIP_INVALID else ()
    return ImportReport(mode, seen, accepted, tuple(errors), skipped=skipped, **kw)


def _read_csv(
    content: str, default_tlp: Tlp, mode: ImportMode
) -> tuple[list[IndicatorInput], ImportReport]:
    reader = csv.DictReader(io.StringIO(content))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "value" not in header:
        fatal = (
            f"the first row names the columns and must include 'value' ({', '.join(CSV_COLUMNS)})"
        )
        return [], _report(mode, 0, 0, [], fatal=fatal)
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown:
        return [], _report(mode, 0, 0, [], fatal=f"unknown column(s) {', '.join(unknown)}")
    inputs: list[IndicatorInput] = []
    errors: list[ObjectProblem] = []
    seen = 0
    for index, row in enumerate(reader):
        seen += 1
        cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            inputs.append(_input(cells, field_prefix=""))
        except Invalid as exc:
            errors.append(ObjectProblem(index, None, f"row {index + 2}: {exc.message}"))
    return inputs, _report(mode, seen, len(inputs), errors)


def _read_text(
    content: str, default_tlp: Tlp, mode: ImportMode
) -> tuple[list[IndicatorInput], ImportReport]:
    from vcisc.sharing.extract import extract_observables

    try:
        found = extract_observables(content)
    except ValueError as exc:
        return [], ImportReport(ImportMode.SKIP_INVALID, 0, 0, fatal=str(exc))
    inputs = [IndicatorInput(observable=o, for_detection=False) for o in found.observables]
    errors = [
        ObjectProblem(None, None, f"{p.type.value} {p.text!r}: {p.reason}") for p in found.rejected
    ]
    # Text is free: what does not parse as an indicator is reported, never a reason to reject.
    return inputs, ImportReport(
        ImportMode.SKIP_INVALID, len(inputs) + len(errors), len(inputs), warnings=tuple(errors)
    )


def _read_stix(
    content: str, default_tlp: Tlp, mode: ImportMode
) -> tuple[list[IndicatorInput], ImportReport]:
    from vcisc.sharing.stix.importer import ImportOptions, import_bundle

    imported = import_bundle(content.encode(), ImportOptions(default_tlp=default_tlp, mode=mode))
    inputs = [i for obj in imported.objects for i in stix_indicator_inputs(obj)]
    return inputs, imported.report


def stix_indicator_inputs(obj: ImportedObject) -> list[IndicatorInput]:
    """What a valid STIX ``indicator`` adds to an engagement: one input per observable its
    pattern names (none for other object types). Used by the bundle import and by TAXII."""
    if obj.type != "indicator":
        return []
    confidence = obj.stix.get("confidence")
    return [
        IndicatorInput(
            observable=observable,
            tlp=obj.tlp,
            first_seen=parse_datetime(str(obj.stix.get("valid_from") or "")),
            confidence=confidence if isinstance(confidence, int) else None,
            description=str(obj.stix.get("description") or "")[:5000],
        )
        for observable in obj.observables
    ]


def _read_misp(
    content: str, default_tlp: Tlp, mode: ImportMode
) -> tuple[list[IndicatorInput], ImportReport]:
    from vcisc.sharing.misp.importer import import_event

    event = import_event(content, default_tlp=default_tlp, mode=mode)
    inputs = [
        IndicatorInput(
            observable=i.observable,
            tlp=i.tlp,
            first_seen=parse_datetime(i.first_seen) if i.first_seen else None,
            last_seen=parse_datetime(i.last_seen) if i.last_seen else None,
            for_detection=i.to_ids,
            description=i.comment[:5000],
        )
        for i in event.indicators
    ]
    return inputs, event.report
