"""Engagement indicators as a MISP event and as a MISP feed (MISP core format; DOMAIN.md §8).

:func:`export_event` turns an :class:`~vcisc.sharing.snapshots.EngagementSnapshot` into the
MISP core format's ``{"Event": {...}}`` (MISP core format §2), which PyMISP's ``MISPEvent``
loads: ``info``, ``date``, ``threat_level_id`` (from the PPD-41 severity), ``analysis`` (from
the investigation status), ``distribution``, a ``tlp:`` tag, the creator organisation, and one
``Attribute`` per indicator with its type/category pair from PyMISP's describeTypes, value,
``to_ids``, ``first_seen``/``last_seen``, ``distribution`` and its own ``tlp:`` tag.

TLP is never widened: the event is marked with the strictest TLP of the incident and its
indicators, every distribution is at most what :data:`~.distribution.MAX_DISTRIBUTION` allows
for the object's TLP (and an attribute's at most its event's), and TLP:RED — which MISP cannot
confine to named individuals — is only exported when the caller says ``allow_red``: otherwise a
RED event raises :class:`MispExportError` and RED indicators are skipped and listed.

:func:`feed_files` lays events out as a MISP feed: ``manifest.json`` plus ``<uuid>.json``.
UUIDs are derived from VCISC ids in a per-deployment namespace, so re-export is stable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from vcisc.sharing.misp.distribution import (
    MAX_DISTRIBUTION,
    Distribution,
    distribution_allowed,
    tlp_tag,
)
from vcisc.sharing.snapshots import EngagementSnapshot, IncidentSnapshot, InvestigationStatus
from vcisc.tlp import Tlp, strictest

__all__ = [
    "MispExport",
    "MispExportError",
    "MispOrganisation",
    "SkippedIndicator",
    "export_event",
    "feed_files",
]


class MispExportError(ValueError):
    """The event cannot be exported as asked without widening its TLP."""


@dataclass(frozen=True, slots=True)
class MispOrganisation:
    """The event's creator organisation (``Orgc``): the VCISC deployment, usually."""

    name: str
    uuid: uuid.UUID


@dataclass(frozen=True, slots=True)
class SkippedIndicator:
    id: object
    reason: str


@dataclass(frozen=True, slots=True)
class MispExport:
    """The event (``{"Event": …}``), its TLP and distribution, and what was left out."""

    event: dict[str, Any] = field(repr=False)
    tlp: Tlp
    distribution: Distribution
    skipped: tuple[SkippedIndicator, ...] = ()

    @property
    def uuid(self) -> str:
        return str(self.event["Event"]["uuid"])


def _threat_level(incident: IncidentSnapshot) -> int:
    # MISP threat_level_id: 1 high, 2 medium, 3 low, 4 undefined; PPD-41 0–5 (DOMAIN.md §4).
    severity = incident.severity
    if severity is None or severity <= 0:
        return 4
    if severity >= 4:
        return 1
    return 2 if severity == 3 else 3


_ANALYSIS: Final[Mapping[InvestigationStatus, int]] = {
    InvestigationStatus.NEW: 0,
    InvestigationStatus.OPEN: 1,
    InvestigationStatus.CLOSED: 2,
}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return moment.astimezone(UTC).isoformat()


def export_event(
    snapshot: EngagementSnapshot,
    *,
    namespace: uuid.UUID,
    creator: MispOrganisation,
    distribution: Distribution | None = None,
    allow_red: bool = False,
) -> MispExport:
    """The engagement's indicators as one MISP event.

    ``distribution`` asks for a distribution (default: the widest the event's TLP allows); one
    wider than the TLP allows, a sharing group, or "inherit" raises :class:`MispExportError`.
    """
    incident = snapshot.incident
    skipped: list[SkippedIndicator] = []
    indicators = []
    for indicator in snapshot.indicators:
        if indicator.tlp is Tlp.RED and not allow_red:
            skipped.append(
                SkippedIndicator(
                    indicator.id,
                    "TLP:RED: MISP's narrowest distribution (the organisation) is wider than "
                    "RED's named recipients; export with allow_red to include it",
                )
            )
            continue
        indicators.append(indicator)
    event_tlp = strictest([incident.tlp, *(i.tlp for i in indicators)])
    if event_tlp is Tlp.RED and not allow_red:
        raise MispExportError(
            "the engagement is TLP:RED; MISP cannot confine it to named recipients "
            "(pass allow_red to export it at distribution 0, your organisation only)"
        )
    limit = MAX_DISTRIBUTION[event_tlp]
    if distribution is None:
        distribution = limit
    elif not distribution_allowed(event_tlp, distribution):
        raise MispExportError(
            f"distribution {distribution.value} ({distribution.name.lower()}) is wider than "
            f"{event_tlp.label} allows (at most {limit.value}, {limit.name.lower()})"
        )

    event_uuid = uuid.uuid5(namespace, f"misp-event\x00{snapshot.id}")
    modified = max([incident.modified, *(i.modified for i in indicators)])
    attributes: list[dict[str, Any]] = []
    for indicator in indicators:
        observable = indicator.observable
        info = observable.info
        attribute_distribution = min(MAX_DISTRIBUTION[indicator.tlp], distribution)
        attribute: dict[str, Any] = {
            "uuid": str(uuid.uuid5(namespace, f"misp-attribute\x00{indicator.id}")),
            "type": info.misp_type,
            "category": info.misp_category,
            "value": observable.value,
            "to_ids": indicator.for_detection,
            "distribution": int(attribute_distribution),
            "timestamp": str(int(indicator.modified.timestamp())),
            "first_seen": _iso(indicator.first_seen),
            "comment": indicator.description or indicator.name,
            "Tag": [{"name": tlp_tag(indicator.tlp)}],
        }
        if indicator.last_seen is not None and indicator.last_seen >= indicator.first_seen:
            attribute["last_seen"] = _iso(indicator.last_seen)
        attributes.append(attribute)
    attributes.sort(key=lambda a: str(a["uuid"]))

    event: dict[str, Any] = {
        "uuid": str(event_uuid),
        "info": f"{incident.reference}: {incident.title}",
        "date": incident.created.astimezone(UTC).date().isoformat(),
        "threat_level_id": str(_threat_level(incident)),
        "analysis": str(_ANALYSIS[incident.investigation_status]),
        "distribution": str(int(distribution)),
        "published": False,
        "timestamp": str(int(modified.timestamp())),
        "Orgc": {"name": creator.name, "uuid": str(creator.uuid)},
        "Tag": [{"name": tlp_tag(event_tlp)}],
        "Attribute": attributes,
    }
    return MispExport({"Event": event}, event_tlp, distribution, tuple(skipped))


def feed_files(exports: Iterable[MispExport]) -> dict[str, dict[str, Any]]:
    """A MISP feed's files: ``manifest.json`` and one ``<uuid>.json`` per event.

    The manifest maps each event uuid to the event's metadata (Orgc, Tag, info, date, analysis,
    threat_level_id, timestamp), as MISP's feed fetcher expects.
    """
    files: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] = {}
    for export in exports:
        event = export.event["Event"]
        manifest[event["uuid"]] = {
            "Orgc": event["Orgc"],
            "Tag": event["Tag"],
            "info": event["info"],
            "date": event["date"],
            "analysis": int(event["analysis"]),
            "threat_level_id": int(event["threat_level_id"]),
            "timestamp": int(event["timestamp"]),
        }
        files[f"{event['uuid']}.json"] = export.event
    files["manifest.json"] = manifest
    return files
