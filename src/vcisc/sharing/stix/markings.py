"""TLP as STIX 2.1 marking definitions (STIX 2.1 §7.2.1, FIRST TLP 2.0; DOMAIN.md §5).

VCISC emits the TLP 2.0 marking-definition objects, which carry the TLP 2.0 extension
(``extension-definition--60a3c5c5-…``, ``"tlp_2_0": "<label>"``, created
``2022-10-01T00:00:00.000Z``, no ``definition_type``) with exactly the ids of DOMAIN.md §5 —
several public repositories publish wrong ones. On import both TLP 2.0 and the STIX 2.1 §7.2.1.4
TLP 1.0 ids are accepted (MISP's converter still emits 1.0 for white/green/amber/red); TLP 1.0
WHITE is TLP 2.0 CLEAR, and AMBER+STRICT exists only in 2.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from vcisc.tlp import STIX_TLP1_IDS, STIX_TLP2_IDS, Tlp, strictest

__all__ = [
    "TLP1_CREATED",
    "TLP2_CREATED",
    "TLP2_EXTENSION_ID",
    "MarkingError",
    "marking_definition",
    "marking_id",
    "tlp_for_marking_id",
    "tlp_of_marking_definition",
    "tlp_of_refs",
]

TLP2_EXTENSION_ID: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED: Final = "2022-10-01T00:00:00.000Z"
#: STIX 2.1 §7.2.1.4: the TLP 1.0 marking definitions' fixed ``created``.
TLP1_CREATED: Final = "2017-01-20T00:00:00.000Z"

_TLP2_BY_ID: Final[Mapping[str, Tlp]] = {mid: tlp for tlp, mid in STIX_TLP2_IDS.items()}
_TLP1_LABEL: Final[Mapping[Tlp, str]] = {
    Tlp.CLEAR: "white",
    Tlp.GREEN: "green",
    Tlp.AMBER: "amber",
    Tlp.RED: "red",
}


class MarkingError(ValueError):
    """A marking definition that claims to be TLP but is not one of the published objects."""


def marking_id(tlp: Tlp) -> str:
    """The TLP 2.0 marking-definition id VCISC puts in ``object_marking_refs``."""
    return STIX_TLP2_IDS[tlp]


def marking_definition(tlp: Tlp) -> dict[str, Any]:
    """The TLP 2.0 marking-definition object for ``tlp``, exactly as DOMAIN.md §5 gives it."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": STIX_TLP2_IDS[tlp],
        "created": TLP2_CREATED,
        "name": tlp.label,
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp.value}
        },
    }


def tlp_for_marking_id(marking_ref: str) -> Tlp | None:
    """The TLP a marking id stands for (TLP 2.0 or 1.0), or ``None`` if it is not a TLP id."""
    found = _TLP2_BY_ID.get(marking_ref)
    return found if found is not None else STIX_TLP1_IDS.get(marking_ref)


def tlp_of_marking_definition(obj: Mapping[str, Any]) -> Tlp | None:
    """The TLP of a marking-definition object found in a bundle, checked against its id.

    Returns ``None`` for a marking that is not TLP (a statement, copyright …). Raises
    :class:`MarkingError` when the object claims a TLP (the 2.0 extension, or
    ``definition_type: tlp``) under an unknown id, or its label contradicts its id — the wrong
    ids in circulation are caught here rather than silently trusted.
    """
    raw_id = obj.get("id")
    mid = raw_id if isinstance(raw_id, str) else ""
    expected = tlp_for_marking_id(mid)
    extensions = obj.get("extensions")
    claimed: str | None = None
    if isinstance(extensions, Mapping) and TLP2_EXTENSION_ID in extensions:
        ext = extensions[TLP2_EXTENSION_ID]
        label = ext.get("tlp_2_0") if isinstance(ext, Mapping) else None
        if not isinstance(label, str):
            raise MarkingError("TLP 2.0 extension without a tlp_2_0 label")
        claimed = label.lower()
        if mid not in _TLP2_BY_ID:
            raise MarkingError(
                f"{mid} claims TLP:{label.upper()} but is not a TLP 2.0 marking-definition id"
            )
        if claimed != _TLP2_BY_ID[mid].value:
            raise MarkingError(
                f"{mid} is TLP:{_TLP2_BY_ID[mid].value.upper()} but its tlp_2_0 says {label!r}"
            )
        return _TLP2_BY_ID[mid]
    if obj.get("definition_type") == "tlp":
        definition = obj.get("definition")
        label = definition.get("tlp") if isinstance(definition, Mapping) else None
        if mid not in STIX_TLP1_IDS:
            raise MarkingError(f"{mid} claims to be a TLP 1.0 marking but its id is not one")
        tlp = STIX_TLP1_IDS[mid]
        if not isinstance(label, str) or label.lower() != _TLP1_LABEL[tlp]:
            raise MarkingError(f"{mid} is TLP:{_TLP1_LABEL[tlp].upper()} but says {label!r}")
        return tlp
    if expected is not None:
        raise MarkingError(f"{mid} is a TLP id but the object does not define that TLP")
    return None


def tlp_of_refs(marking_refs: Iterable[str]) -> Tlp | None:
    """The strictest TLP among marking refs, or ``None`` if none of them is TLP.

    An object SHOULD carry one TLP marking; if a producer put several, the strictest governs
    (never widen).
    """
    found = [t for t in (tlp_for_marking_id(ref) for ref in marking_refs) if t is not None]
    return strictest(found) if found else None
