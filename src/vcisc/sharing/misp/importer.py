"""Reading MISP events and feeds into normalised, TLP-marked indicators (MISP core format §2).

:func:`import_event` accepts the MISP core format (``{"Event": {...}}``, a bare event, or a
MISP API ``{"response": [...]}``) as JSON text or a parsed mapping. It checks the event
(``info``, ``uuid``, ``distribution`` 0–4, ``threat_level_id`` 1–4, ``analysis`` 0–2, ``date``)
and every attribute, including those inside MISP objects: the type must be known and the
type/category pair allowed by PyMISP's describeTypes (the reference list MISP itself ships),
``distribution`` 0–5, ``to_ids`` boolean, and the value a valid indicator of the mapped type
(:mod:`vcisc.sharing.observables`). Each fault is an
:class:`~vcisc.sharing.reports.ObjectProblem` with the reason; attributes of valid types VCISC
does not hold as indicators (``text``, ``comment``, ``vulnerability`` …) are listed in
``report.skipped``.

TLP: an attribute's ``tlp:`` tag governs it, else its event's, else the caller's
``default_tlp`` (``tlp_marked`` False). An unknown ``tlp:`` tag is an error, like an unknown
STIX marking. A distribution wider than the TLP allows is reported as a warning: TLP, not
MISP distribution, is what VCISC enforces.

:func:`import_feed` reads a MISP feed: ``manifest.json`` and the event files it lists, which the
caller supplies through ``load_event`` (this layer does no I/O). Event files whose uuid does
not match the manifest, or which are missing, are errors.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pymisp.abstract import describe_types

from vcisc.sharing.misp.distribution import (
    Distribution,
    UnknownTlpTag,
    distribution_allowed,
    tlp_from_tags,
)
from vcisc.sharing.observables import InvalidObservable, Observable, ObservableType, normalise
from vcisc.sharing.reports import ImportMode, ImportReport, ObjectProblem
from vcisc.tlp import Tlp

__all__ = [
    "FeedImport",
    "MispImport",
    "MispIndicator",
    "import_event",
    "import_feed",
]

_TYPES: Final = frozenset(describe_types["types"])
_CATEGORIES: Final = frozenset(describe_types["categories"])
_PAIRS: Final[Mapping[str, frozenset[str]]] = {
    category: frozenset(types)
    for category, types in describe_types["category_type_mappings"].items()
}


@dataclass(frozen=True, slots=True)
class MispIndicator:
    """One indicator read from a MISP attribute (a composite attribute yields several)."""

    index: int
    attribute_uuid: str | None
    observable: Observable
    tlp: Tlp
    tlp_marked: bool
    to_ids: bool
    misp_type: str
    category: str
    comment: str = ""
    first_seen: str | None = None
    last_seen: str | None = None


@dataclass(frozen=True, slots=True)
class MispImport:
    """One event's indicators (none if the report says it was rejected) and its metadata."""

    event_uuid: str | None
    info: str | None
    tlp: Tlp | None
    indicators: tuple[MispIndicator, ...]
    report: ImportReport


@dataclass(frozen=True, slots=True)
class FeedImport:
    events: tuple[MispImport, ...]
    report: ImportReport = field(repr=False)


def _single(kind: ObservableType) -> Callable[[str], list[tuple[ObservableType, str]]]:
    return lambda value: [(kind, value)]


def _ip(value: str) -> list[tuple[ObservableType, str]]:
    if "/" in value:
        return [(ObservableType.CIDR, value)]
    return [(ObservableType.IPV6 if ":" in value else ObservableType.IPV4, value)]


def _pair(
    first: Callable[[str], list[tuple[ObservableType, str]]], second: ObservableType | None
) -> Callable[[str], list[tuple[ObservableType, str]]]:
    def split(value: str) -> list[tuple[ObservableType, str]]:
        left, bar, right = value.partition("|")
        if not bar:
            raise InvalidObservable(value, "a composite MISP value is 'first|second'")
        found = first(left)
        if second is not None:
            found.append((second, right))
        return found

    return split


_HASH_TYPES: Final = {
    "md5": ObservableType.MD5,
    "sha1": ObservableType.SHA1,
    "sha256": ObservableType.SHA256,
    "sha512": ObservableType.SHA512,
    "ssdeep": ObservableType.SSDEEP,
}

#: MISP attribute types VCISC reads as indicators, and how to split the value.
_READERS: Final[Mapping[str, Callable[[str], list[tuple[ObservableType, str]]]]] = {
    "ip-dst": _ip,
    "ip-src": _ip,
    "domain": _single(ObservableType.DOMAIN),
    "hostname": _single(ObservableType.HOSTNAME),
    "url": _single(ObservableType.URL),
    "email": _single(ObservableType.EMAIL),
    "email-src": _single(ObservableType.EMAIL),
    "email-dst": _single(ObservableType.EMAIL),
    "filename": _single(ObservableType.FILENAME),
    "ja3-fingerprint-md5": _single(ObservableType.JA3),
    "AS": _single(ObservableType.ASN),
    "mutex": _single(ObservableType.MUTEX),
    "regkey": _single(ObservableType.REGISTRY_KEY),
    **{name: _single(kind) for name, kind in _HASH_TYPES.items()},
    **{
        f"filename|{name}": _pair(_single(ObservableType.FILENAME), kind)
        for name, kind in _HASH_TYPES.items()
    },
    "domain|ip": _pair(_single(ObservableType.DOMAIN), None),
    "hostname|port": _pair(_single(ObservableType.HOSTNAME), None),
    "ip-dst|port": _pair(_ip, None),
    "ip-src|port": _pair(_ip, None),
}


def _composite_second(misp_type: str, value: str) -> list[tuple[ObservableType, str]]:
    # domain|ip carries an IP after the bar, which is an indicator too.
    if misp_type == "domain|ip":
        return _ip(value.partition("|")[2])
    return []


_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _tag_names(container: Mapping[str, Any], where: str) -> list[str]:
    tags = container.get("Tag", [])
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise ValueError(f"{where} Tag must be a list")
    names: list[str] = []
    for tag in tags:
        name = tag.get("name") if isinstance(tag, Mapping) else tag
        if not isinstance(name, str):
            raise ValueError(f"{where} has a tag without a name")
        names.append(name)
    return names


def _int_in(value: object, allowed: range, what: str) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]  # MISP sends numbers as strings
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if number not in allowed:
        raise ValueError(f"{what} {number} is not in {allowed.start}–{allowed.stop - 1}")
    return number


def _to_ids(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return value in (1, "1")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"to_ids {value!r} is not a boolean")


def _unwrap(data: object) -> Mapping[str, Any]:
    if isinstance(data, Mapping) and isinstance(data.get("response"), list):
        data = data["response"][0] if data["response"] else None
    if isinstance(data, Mapping) and isinstance(data.get("Event"), Mapping):
        data = data["Event"]
    if not isinstance(data, Mapping):
        raise ValueError('not a MISP event (expected {"Event": {...}})')
    return data


def import_event(
    data: bytes | str | Mapping[str, Any],
    *,
    default_tlp: Tlp,
    mode: ImportMode = ImportMode.ATOMIC,
    expected_uuid: str | None = None,
) -> MispImport:
    """Read one MISP event; see the module docstring for what is checked."""
    try:
        parsed = json.loads(data) if isinstance(data, bytes | str) else data
    except (ValueError, UnicodeDecodeError) as exc:
        return _fatal(mode, f"invalid JSON: {exc}")
    try:
        event = _unwrap(parsed)
    except ValueError as exc:
        return _fatal(mode, str(exc))
    errors: list[ObjectProblem] = []
    warnings: list[ObjectProblem] = []
    skipped: list[ObjectProblem] = []

    info = event.get("info")
    event_uuid = event.get("uuid")
    fatal: str | None = None
    if not isinstance(info, str) or not info.strip():
        fatal = "the event has no info (MISP core format §2.2.1.2: required)"
    elif event_uuid is not None and not _valid_uuid(event_uuid):
        fatal = f"event uuid {event_uuid!r} is not a UUID"
    elif expected_uuid is not None and event_uuid != expected_uuid:
        fatal = f"the event's uuid {event_uuid!r} is not {expected_uuid!r} as the manifest says"
    if fatal is not None:
        return _fatal(mode, fatal, event_uuid if isinstance(event_uuid, str) else None)

    event_distribution: Distribution | None = None
    try:
        if event.get("distribution") is not None:
            event_distribution = Distribution(
                _int_in(event["distribution"], range(5), "event distribution")
            )
        if event.get("threat_level_id") is not None:
            _int_in(event["threat_level_id"], range(1, 5), "threat_level_id")
        if event.get("analysis") is not None:
            _int_in(event["analysis"], range(3), "analysis")
        if event.get("date") is not None:
            if not isinstance(event["date"], str) or not _DATE_RE.match(event["date"]):
                raise ValueError(f"date {event['date']!r} is not YYYY-MM-DD")
            date.fromisoformat(event["date"])
        event_tlp = tlp_from_tags(_tag_names(event, "the event"))
    except (ValueError, UnknownTlpTag) as exc:
        return _fatal(mode, str(exc), str(event_uuid) if event_uuid else None)

    if (
        event_tlp is not None
        and event_distribution is not None
        and not distribution_allowed(event_tlp, event_distribution)
    ):
        warnings.append(
            ObjectProblem(
                None,
                str(event_uuid),
                f"event distribution {int(event_distribution)} is wider than "
                f"{event_tlp.label} allows; the TLP governs",
            )
        )

    indicators: list[MispIndicator] = []
    attributes = list(_attributes(event))
    for index, attribute in enumerate(attributes):
        _read_attribute(
            index,
            attribute,
            event_tlp,
            default_tlp,
            event_distribution,
            indicators,
            errors,
            warnings,
            skipped,
        )

    report = ImportReport(
        mode=mode,
        seen=len(attributes),
        accepted=len({i.index for i in indicators}),
        errors=tuple(errors),
        warnings=tuple(warnings),
        skipped=tuple(skipped),
    )
    if report.rejected:
        return MispImport(str(event_uuid) if event_uuid else None, info, event_tlp, (), report)
    return MispImport(
        str(event_uuid) if event_uuid else None, info, event_tlp, tuple(indicators), report
    )


def _attributes(event: Mapping[str, Any]) -> Iterator[Any]:
    attributes = event.get("Attribute") or []
    if isinstance(attributes, list):
        yield from attributes
    else:
        yield attributes  # reported as not an object below
    for obj in event.get("Object") or []:
        if isinstance(obj, Mapping):
            yield from obj.get("Attribute") or []
        else:
            yield obj


def _read_attribute(
    index: int,
    attribute: object,
    event_tlp: Tlp | None,
    default_tlp: Tlp,
    event_distribution: Distribution | None,
    indicators: list[MispIndicator],
    errors: list[ObjectProblem],
    warnings: list[ObjectProblem],
    skipped: list[ObjectProblem],
) -> None:
    if not isinstance(attribute, Mapping):
        errors.append(ObjectProblem(index, None, "an attribute must be a JSON object"))
        return
    attr_uuid = attribute.get("uuid") if isinstance(attribute.get("uuid"), str) else None
    misp_type = attribute.get("type")
    category = attribute.get("category")
    value = attribute.get("value")
    if not isinstance(misp_type, str) or misp_type not in _TYPES:
        errors.append(ObjectProblem(index, attr_uuid, f"unknown MISP attribute type {misp_type!r}"))
        return
    if category is not None:
        if not isinstance(category, str) or category not in _CATEGORIES:
            errors.append(ObjectProblem(index, attr_uuid, f"unknown MISP category {category!r}"))
            return
        if misp_type not in _PAIRS[category]:
            errors.append(
                ObjectProblem(
                    index,
                    attr_uuid,
                    f"type {misp_type!r} is not allowed in category {category!r} "
                    "(MISP describeTypes category_type_mappings)",
                )
            )
            return
    else:
        category = describe_types["sane_defaults"][misp_type]["default_category"]
    if not isinstance(value, str) or not value:
        errors.append(ObjectProblem(index, attr_uuid, "the attribute has no value"))
        return
    try:
        to_ids = _to_ids(attribute.get("to_ids", False))
        distribution = None
        if attribute.get("distribution") is not None:
            distribution = Distribution(
                _int_in(attribute["distribution"], range(6), "distribution")
            )
        tlp = tlp_from_tags(_tag_names(attribute, "the attribute"))
    except (ValueError, UnknownTlpTag) as exc:
        errors.append(ObjectProblem(index, attr_uuid, str(exc)))
        return
    reader = _READERS.get(misp_type)
    if reader is None:
        skipped.append(
            ObjectProblem(
                index, attr_uuid, f"MISP type {misp_type!r} is not an indicator type VCISC holds"
            )
        )
        return
    marked = tlp is not None or event_tlp is not None
    governing = tlp if tlp is not None else event_tlp if event_tlp is not None else default_tlp
    if distribution is not None and not distribution_allowed(
        governing, distribution, event_distribution
    ):
        warnings.append(
            ObjectProblem(
                index,
                attr_uuid,
                f"distribution {int(distribution)} is wider than {governing.label} allows; "
                "the TLP governs",
            )
        )
    try:
        parts = reader(value) + _composite_second(misp_type, value)
        observables = [normalise(kind, text) for kind, text in parts]
    except InvalidObservable as exc:
        errors.append(ObjectProblem(index, attr_uuid, f"{misp_type}: {exc}"))
        return
    comment = attribute.get("comment")
    first_seen = attribute.get("first_seen")
    last_seen = attribute.get("last_seen")
    for observable in observables:
        indicators.append(
            MispIndicator(
                index=index,
                attribute_uuid=attr_uuid,
                observable=observable,
                tlp=governing,
                tlp_marked=marked,
                to_ids=to_ids,
                misp_type=misp_type,
                category=category,
                comment=comment if isinstance(comment, str) else "",
                first_seen=first_seen if isinstance(first_seen, str) else None,
                last_seen=last_seen if isinstance(last_seen, str) else None,
            )
        )


def _valid_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _fatal(mode: ImportMode, reason: str, event_uuid: str | None = None) -> MispImport:
    report = ImportReport(mode=mode, seen=0, accepted=0, fatal=reason)
    return MispImport(event_uuid, None, None, (), report)


def import_feed(
    manifest: bytes | str | Mapping[str, Any],
    load_event: Callable[[str], bytes | str | None],
    *,
    default_tlp: Tlp,
    mode: ImportMode = ImportMode.ATOMIC,
) -> FeedImport:
    """Read a MISP feed: the manifest, then each event ``load_event(uuid)`` returns.

    ``load_event`` returns the bytes of ``<uuid>.json`` (or ``None`` if the file is missing).
    The feed report has one entry per event (``index`` is the event's place in the manifest);
    in atomic mode one bad event rejects the whole feed.
    """
    try:
        parsed = json.loads(manifest) if isinstance(manifest, bytes | str) else manifest
    except (ValueError, UnicodeDecodeError) as exc:
        return FeedImport(
            (),
            ImportReport(
                mode=mode, seen=0, accepted=0, fatal=f"manifest.json is not valid JSON: {exc}"
            ),
        )
    if not isinstance(parsed, Mapping):
        return FeedImport(
            (),
            ImportReport(
                mode=mode,
                seen=0,
                accepted=0,
                fatal="manifest.json is not an object of events by uuid",
            ),
        )
    events: list[MispImport] = []
    errors: list[ObjectProblem] = []
    warnings: list[ObjectProblem] = []
    for index, (event_uuid, meta) in enumerate(parsed.items()):
        if not _valid_uuid(event_uuid) or not isinstance(meta, Mapping):
            errors.append(
                ObjectProblem(index, str(event_uuid), "manifest entry is not uuid → event metadata")
            )
            continue
        raw = load_event(event_uuid)
        if raw is None:
            errors.append(
                ObjectProblem(index, event_uuid, f"{event_uuid}.json is missing from the feed")
            )
            continue
        result = import_event(raw, default_tlp=default_tlp, mode=mode, expected_uuid=event_uuid)
        if result.report.fatal is not None:
            errors.append(ObjectProblem(index, event_uuid, result.report.fatal))
            continue
        for problem in result.report.errors:
            errors.append(
                ObjectProblem(index, event_uuid, f"attribute #{problem.index}: {problem.reason}")
            )
        warnings.extend(ObjectProblem(index, event_uuid, w.reason) for w in result.report.warnings)
        events.append(result)
    report = ImportReport(
        mode=mode,
        seen=len(parsed),
        accepted=sum(1 for e in events if not e.report.rejected),
        errors=tuple(errors),
        warnings=tuple(warnings),
    )
    if report.rejected:
        return FeedImport((), report)
    return FeedImport(tuple(events), report)
