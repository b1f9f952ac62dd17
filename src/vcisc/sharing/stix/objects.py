"""Direct checks of one STIX 2.1 object: the MUSTs an importer relies on, without ``stix2``.

``stix2.parse`` builds a class instance per object and, for indicators, runs the ANTLR pattern
grammar; at about 2,700 objects a second it cannot ingest the bundles allies exchange. This
module checks the same requirements directly on the parsed JSON:

* §3.1 — ``type`` (3–250 of a–z, 0–9, hyphen), property names (letters, digits, underscore);
* §3.2 — common properties: ``spec_version`` "2.1", ``id`` (§2.9: ``<type>--<RFC 4122 UUID>``),
  ``created``/``modified`` timestamps (§2.7 ``Z`` form, millisecond precision as the 2.1 JSON
  schema requires) with ``modified`` ≥ ``created``, ``created_by_ref``, ``revoked``,
  ``labels``, ``confidence`` 0–100, ``lang``, ``external_references``, ``object_marking_refs``,
  ``granular_markings``, ``extensions`` (§7.3, §7.2.3);
* §2.9 / §3.1 — every ``*_ref`` property is an identifier and every ``*_refs`` a non-empty list;
* §4, §5, §6 — the required properties of each object type, plus the rules whose violation
  would corrupt stored data (``valid_until`` after ``valid_from``, ``is_family`` malware named,
  ``relationship_type`` format, counts in range);
* the Incident Core and Task extensions VCISC exports (DOMAIN.md §6).

Everything the JSON schemas add beyond these (vocabulary suggestions, every optional property's
shape) is left to ``stix2-validator``, which an import runs on invalid objects for its wording
and on every object when asked to be thorough.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from stix2validator.v21 import enums as validator_enums

__all__ = [
    "INCIDENT_CORE_EXTENSION_ID",
    "INCIDENT_DETERMINATIONS",
    "TASK_EXTENSION_ID",
    "TASK_OUTCOMES",
    "check_object",
    "is_sco",
]

INCIDENT_CORE_EXTENSION_ID: Final = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
TASK_EXTENSION_ID: Final = "extension-definition--2074a052-8be4-4932-849e-f5e7798e0030"

_TYPE_RE: Final = re.compile(r"^([a-z][a-z0-9]*)+(-[a-z0-9]+)*-?$")
_ID_RE: Final = re.compile(
    r"^([a-z][a-z0-9-]+[a-z0-9])--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}"
    r"-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
_TIMESTAMP_RE: Final = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):([0-5][0-9])"
    r":([0-5][0-9]|60)(\.[0-9]+)?Z$"
)
#: §3.2 created/modified: a timestamp precise to the millisecond (the 2.1 JSON schema's rule).
_TIMESTAMP_MILLIS_RE: Final = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):([0-5][0-9])"
    r":([0-5][0-9]|60)\.[0-9]{3,}Z$"
)
#: Property names already found valid: names repeat across a bundle, the regex need not.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX: Final = 4096
_PROPERTY_RE: Final = re.compile(r"^[A-Za-z0-9_]{1,250}$")
_EXTENSION_KEY_RE: Final = re.compile(
    r"^(extension-definition--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB]"
    r"[0-9a-fA-F]{3}-[0-9a-fA-F]{12}|([a-z][a-z0-9]*)+(-[a-z0-9]+)*-ext)$"
)
_RELATIONSHIP_TYPE_RE: Final = re.compile(r"^[a-z0-9-]+$")

SCO_TYPES: Final = frozenset(validator_enums.OBSERVABLE_TYPES)
_SDO_SRO_TYPES: Final = frozenset(
    {
        "attack-pattern",
        "campaign",
        "course-of-action",
        "grouping",
        "identity",
        "incident",
        "indicator",
        "infrastructure",
        "intrusion-set",
        "location",
        "malware",
        "malware-analysis",
        "note",
        "observed-data",
        "opinion",
        "report",
        "threat-actor",
        "tool",
        "vulnerability",
        "relationship",
        "sighting",
    }
)
_META_TYPES: Final = frozenset({"marking-definition", "language-content", "extension-definition"})
_NEW_OBJECT_EXTENSIONS: Final = frozenset({"new-sdo", "new-sco", "new-sro"})

#: §4–§6: properties an object of each type MUST have (beyond the common ones).
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "malware": ("is_family",),
    "malware-analysis": ("product",),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed"),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
    "language-content": ("object_ref", "object_modified", "contents"),
    "extension-definition": ("name", "schema", "version", "extension_types", "created_by_ref"),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "domain-name": ("value",),
    "url": ("value",),
    "email-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "software": ("name",),
    "network-traffic": ("protocols",),
    "email-message": ("is_multipart",),
    "task": ("outcome",),
}
_TIMESTAMP_PROPERTIES: Final = (
    "valid_from",
    "valid_until",
    "published",
    "first_seen",
    "last_seen",
    "first_observed",
    "last_observed",
    "object_modified",
    "analysis_started",
    "analysis_ended",
    "start_time",
    "end_time",
)
_STRING_PROPERTIES: Final = ("name", "description", "pattern", "pattern_type", "content")
_INVESTIGATION_STATUS: Final = frozenset({"new", "open", "closed"})
INCIDENT_DETERMINATIONS: Final = frozenset(
    {"blocked", "confirmed", "failed-attempt", "false-positive", "low-value", "suspected"}
)
TASK_OUTCOMES: Final = frozenset(
    {"pending", "ongoing", "successful", "failed", "cancelled", "unknown"}
)


def is_sco(obj: Mapping[str, Any]) -> bool:
    """A cyber-observable (§6, or a new SCO type defined by an extension, §7.3)."""
    kind = obj.get("type")
    if kind in SCO_TYPES:
        return True
    return _new_object_kind(obj) == "new-sco"


def _new_object_kind(obj: Mapping[str, Any]) -> str | None:
    extensions = obj.get("extensions")
    if isinstance(extensions, Mapping):
        for value in extensions.values():
            if isinstance(value, Mapping):
                kind = value.get("extension_type")
                if kind in _NEW_OBJECT_EXTENSIONS:
                    return str(kind)
    return None


def _timestamp_key(value: str) -> tuple[str, str]:
    # "…:05.5Z" and "…:05.500Z" are the same instant; compare seconds, then padded fraction.
    head, _, fraction = value[:-1].partition(".")
    return head, fraction.ljust(9, "0")


def _is_identifier(value: object) -> bool:
    return isinstance(value, str) and _ID_RE.match(value) is not None


def check_object(obj: object) -> list[str]:
    """Every reason ``obj`` breaks STIX 2.1 as far as this module checks; empty if none.

    Marking references are checked for form only here; whether each id is *known* is the
    importer's business (it knows the bundle's marking definitions).
    """
    if not isinstance(obj, dict):
        return [f"not a JSON object but {type(obj).__name__}"]
    errors: list[str] = []
    kind = obj.get("type")
    if not isinstance(kind, str) or not _TYPE_RE.match(kind) or not 3 <= len(kind) <= 250:
        errors.append(
            f"type {kind!r} is not a STIX type name (§3.1: 3–250 characters of a–z, 0–9, '-')"
        )
        return errors
    oid = obj.get("id")
    id_match = _ID_RE.match(oid) if isinstance(oid, str) else None
    if id_match is None:
        errors.append(f"id {oid!r} is not an identifier (§2.9: {kind}--<RFC 4122 UUID>)")
    elif id_match.group(1) != kind:
        errors.append(f"id {oid!r} does not start with its type {kind!r}--")
    for key in obj:
        if key in _VALID_NAMES:
            continue
        if not isinstance(key, str) or not _PROPERTY_RE.match(key):
            errors.append(f"property name {key!r} is not allowed (§3.1: a–z, A–Z, 0–9, _)")
        elif len(_VALID_NAMES) < _VALID_NAMES_MAX:
            _VALID_NAMES.add(key)

    sco = kind in SCO_TYPES
    new_kind = (
        None if sco or kind in _SDO_SRO_TYPES or kind in _META_TYPES else _new_object_kind(obj)
    )
    if new_kind == "new-sco":
        sco = True
    if (
        not sco
        and kind not in _SDO_SRO_TYPES
        and kind not in _META_TYPES
        and new_kind is None
        and not kind.startswith("x-")
    ):
        errors.append(
            f"unknown object type {kind!r}: not in STIX 2.1 and not defined by an "
            "extension (§7.3 extension_type new-sdo/new-sco/new-sro)"
        )

    spec_version = obj.get("spec_version")
    if spec_version is None:
        if not sco:
            errors.append("spec_version is required (§3.2) and must be '2.1'")
    elif spec_version != "2.1":
        errors.append(f"spec_version {spec_version!r} is not '2.1' (only STIX 2.1 is accepted)")

    created = obj.get("created")
    modified = obj.get("modified")
    if not sco:
        if created is None:
            errors.append("created is required (§3.2)")
        if modified is None and kind != "marking-definition":
            errors.append("modified is required (§3.2)")
    for name, value in (("created", created), ("modified", modified)):
        if value is not None and (
            not isinstance(value, str) or not _TIMESTAMP_MILLIS_RE.match(value)
        ):
            errors.append(
                f"{name} {value!r} is not a timestamp to the millisecond "
                "(§2.7, §3.2: YYYY-MM-DDTHH:MM:SS.sssZ)"
            )
            if name == "created":
                created = None
            else:
                modified = None
    if (
        isinstance(created, str)
        and isinstance(modified, str)
        and modified != created
        and _timestamp_key(modified) < _timestamp_key(created)
    ):
        errors.append("modified is earlier than created (§3.2)")

    _check_common(obj, errors)
    for name in _REQUIRED.get(kind, ()):
        if name not in obj:
            errors.append(f"{kind} requires the {name} property")
    checker = _TYPE_CHECKS.get(kind)
    if checker is not None:
        checker(obj, errors)
    return errors


def _check_common(obj: Mapping[str, Any], errors: list[str]) -> None:
    # One pass over the properties, dispatching on the name: cheaper than probing for each.
    for name, value in obj.items():
        check = _PROPERTY_CHECKS.get(name)
        if check is not None:
            check(name, value, errors)
        elif name.endswith("_ref"):
            _ref(name, value, errors)
        elif name.endswith("_refs"):
            _refs(name, value, errors)


def _ref(name: str, value: object, errors: list[str]) -> None:
    if not _is_identifier(value):
        errors.append(f"{name} {value!r} is not an identifier (§2.9)")


def _refs(name: str, value: object, errors: list[str]) -> None:
    if not isinstance(value, list) or not value:
        errors.append(f"{name} must be a non-empty list of identifiers")
        return
    bad = [v for v in value if not _is_identifier(v)]
    if bad:
        errors.append(f"{name} holds non-identifiers: {bad[:3]!r}")


def _created_by_ref(name: str, value: object, errors: list[str]) -> None:
    _ref(name, value, errors)
    if isinstance(value, str) and not value.startswith("identity--"):
        errors.append("created_by_ref must refer to an identity")


def _object_marking_refs(name: str, value: object, errors: list[str]) -> None:
    _refs(name, value, errors)
    if isinstance(value, list):
        bad = [
            m for m in value if not (isinstance(m, str) and m.startswith("marking-definition--"))
        ]
        if bad:
            errors.append(f"object_marking_refs must refer to marking-definitions: {bad[:3]!r}")


def _revoked(name: str, value: object, errors: list[str]) -> None:
    if not isinstance(value, bool):
        errors.append("revoked must be true or false")


def _labels(name: str, value: object, errors: list[str]) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        errors.append("labels must be a non-empty list of strings")


def _confidence(name: str, value: object, errors: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        errors.append(f"confidence {value!r} must be an integer from 0 to 100 (§3.2)")


def _external_references(name: str, value: object, errors: list[str]) -> None:
    if not isinstance(value, list) or not value:
        errors.append("external_references must be a non-empty list")
        return
    for ref in value:
        if not isinstance(ref, dict) or not isinstance(ref.get("source_name"), str):
            errors.append("each external reference needs a source_name (§2.5)")
            return


def _timestamp(name: str, value: object, errors: list[str]) -> None:
    if not isinstance(value, str) or not _TIMESTAMP_RE.match(value):
        errors.append(f"{name} {value!r} is not a timestamp (§2.7)")


def _string(name: str, value: object, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{name} must be a string")


def _nothing(name: str, value: object, errors: list[str]) -> None:
    """Checked elsewhere (type, id, spec_version, created, modified)."""


_PROPERTY_CHECKS: Final[Mapping[str, Callable[[str, Any, list[str]], None]]] = {
    "type": _nothing,
    "id": _nothing,
    "spec_version": _nothing,
    "created": _nothing,
    "modified": _nothing,
    "created_by_ref": _created_by_ref,
    "object_marking_refs": _object_marking_refs,
    "revoked": _revoked,
    "labels": _labels,
    "confidence": _confidence,
    "lang": _string,
    "external_references": _external_references,
    "granular_markings": lambda name, value, errors: _check_granular(value, errors),
    "extensions": lambda name, value, errors: _check_extensions(value, errors),
    **dict.fromkeys(_TIMESTAMP_PROPERTIES, _timestamp),
    **dict.fromkeys(_STRING_PROPERTIES, _string),
}


def _check_granular(value: object, errors: list[str]) -> None:
    if not isinstance(value, list) or not value:
        errors.append("granular_markings must be a non-empty list")
        return
    for marking in value:
        if not isinstance(marking, dict):
            errors.append("each granular marking must be an object (§7.2.3)")
            return
        selectors = marking.get("selectors")
        if (
            not isinstance(selectors, list)
            or not selectors
            or not all(isinstance(s, str) for s in selectors)
        ):
            errors.append("a granular marking needs a non-empty list of selectors (§7.2.3)")
        has_ref = "marking_ref" in marking
        if has_ref == ("lang" in marking):
            errors.append("a granular marking has exactly one of marking_ref and lang (§7.2.3)")
        elif has_ref and not (
            _is_identifier(marking["marking_ref"])
            and str(marking["marking_ref"]).startswith("marking-definition--")
        ):
            errors.append(f"granular marking_ref {marking['marking_ref']!r} is not a marking id")


def _check_extensions(value: object, errors: list[str]) -> None:
    if not isinstance(value, dict) or not value:
        errors.append("extensions must be a non-empty object (§7.3)")
        return
    for key, ext in value.items():
        if not _EXTENSION_KEY_RE.match(key):
            errors.append(f"extension key {key!r} is neither an extension-definition id nor *-ext")
        if not isinstance(ext, dict) or not ext:
            errors.append(f"extension {key!r} must be a non-empty object")


def _indicator(obj: Mapping[str, Any], errors: list[str]) -> None:
    start, end = obj.get("valid_from"), obj.get("valid_until")
    if (
        isinstance(start, str)
        and isinstance(end, str)
        and _TIMESTAMP_RE.match(start)
        and _TIMESTAMP_RE.match(end)
        and _timestamp_key(end) <= _timestamp_key(start)
    ):
        errors.append("valid_until must be later than valid_from (§4.7)")
    if "indicator_types" in obj and not (
        isinstance(obj["indicator_types"], list) and obj["indicator_types"]
    ):
        errors.append("indicator_types must be a non-empty list")


def _malware(obj: Mapping[str, Any], errors: list[str]) -> None:
    is_family = obj.get("is_family")
    if "is_family" in obj and not isinstance(is_family, bool):
        errors.append("is_family must be true or false (§4.11)")
    if is_family is True and not obj.get("name"):
        errors.append("a malware family must have a name (§4.11)")


def _malware_analysis(obj: Mapping[str, Any], errors: list[str]) -> None:
    if "result" not in obj and "analysis_sco_refs" not in obj:
        errors.append("malware-analysis needs result or analysis_sco_refs (§4.12)")


def _relationship(obj: Mapping[str, Any], errors: list[str]) -> None:
    relationship_type = obj.get("relationship_type")
    if "relationship_type" in obj and (
        not isinstance(relationship_type, str) or not _RELATIONSHIP_TYPE_RE.match(relationship_type)
    ):
        errors.append(f"relationship_type {relationship_type!r} may hold only a–z, 0–9 and '-'")


def _sighting(obj: Mapping[str, Any], errors: list[str]) -> None:
    count = obj.get("count")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 999_999_999
    ):
        errors.append("count must be an integer from 0 to 999,999,999 (§5.2)")


def _observed_data(obj: Mapping[str, Any], errors: list[str]) -> None:
    number = obj.get("number_observed")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 999_999_999
    ):
        errors.append("number_observed must be an integer from 1 to 999,999,999 (§4.14)")
    if "object_refs" not in obj and "objects" not in obj:
        errors.append("observed-data needs object_refs (§4.14)")


def _marking_definition(obj: Mapping[str, Any], errors: list[str]) -> None:
    if "extensions" not in obj and ("definition_type" not in obj or "definition" not in obj):
        errors.append("a marking-definition needs definition_type and definition, or an extension")


def _incident(obj: Mapping[str, Any], errors: list[str]) -> None:
    extensions = obj.get("extensions")
    if not isinstance(extensions, Mapping) or INCIDENT_CORE_EXTENSION_ID not in extensions:
        return
    ext = extensions[INCIDENT_CORE_EXTENSION_ID]
    if not isinstance(ext, Mapping):
        return
    if ext.get("extension_type") != "property-extension":
        errors.append("the Incident Core extension has extension_type property-extension")
    if ext.get("determination") not in INCIDENT_DETERMINATIONS:
        errors.append(f"Incident Core determination {ext.get('determination')!r} is not allowed")
    status = ext.get("investigation_status")
    if not isinstance(status, str) or not status:
        errors.append("the Incident Core extension requires investigation_status")


def _task(obj: Mapping[str, Any], errors: list[str]) -> None:
    if obj.get("outcome") is not None and obj.get("outcome") not in TASK_OUTCOMES:
        errors.append(f"task outcome {obj.get('outcome')!r} is not in the Task extension's enum")


def _file(obj: Mapping[str, Any], errors: list[str]) -> None:
    if "hashes" not in obj and "name" not in obj:
        errors.append("a file needs hashes or name (§6.7)")
    hashes = obj.get("hashes")
    if hashes is not None and (
        not isinstance(hashes, dict)
        or not hashes
        or not all(isinstance(v, str) for v in hashes.values())
    ):
        errors.append("hashes must be a non-empty object of strings (§2.6)")


def _autonomous_system(obj: Mapping[str, Any], errors: list[str]) -> None:
    number = obj.get("number")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int) or number < 0
    ):
        errors.append("autonomous-system number must be a non-negative integer (§6.2)")


_TYPE_CHECKS: Final = {
    "indicator": _indicator,
    "malware": _malware,
    "malware-analysis": _malware_analysis,
    "relationship": _relationship,
    "sighting": _sighting,
    "observed-data": _observed_data,
    "marking-definition": _marking_definition,
    "incident": _incident,
    "task": _task,
    "file": _file,
    "autonomous-system": _autonomous_system,
}
