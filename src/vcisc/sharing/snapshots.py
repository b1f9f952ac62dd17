"""Snapshots of an engagement: the plain, frozen input of every exporter.

The database layer builds these from rows — holding only what the recipient may see, already
filtered by :mod:`vcisc.authz` — and hands them to :func:`vcisc.sharing.stix.export.
export_engagement` or :func:`vcisc.sharing.misp.export.export_event`. Ids are VCISC's own
object ids (UUIDs, or anything with a stable ``str``); timestamps are timezone-aware.
Every snapshot carries its TLP: nothing is exported unmarked (DOMAIN.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vcisc.sharing.observables import Observable
from vcisc.tlp import Tlp

__all__ = [
    "AnalysisSnapshot",
    "EngagementSnapshot",
    "IncidentSnapshot",
    "IndicatorSnapshot",
    "InvestigationStatus",
    "MalwareSnapshot",
    "NationSnapshot",
    "NoteSnapshot",
    "OrganisationSnapshot",
    "Ref",
    "RelationshipSnapshot",
    "ReportKind",
    "ReportSnapshot",
    "TaskSnapshot",
]


class InvestigationStatus(StrEnum):
    """Incident Core ``investigation_status`` (DOMAIN.md §6)."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


# --- snapshots: what the database layer hands in ------------------------------------------


@dataclass(frozen=True, slots=True)
class NationSnapshot:
    """A nation (ISO 3166 alpha-2 ``code``)."""

    code: str
    name: str
    tlp: Tlp


@dataclass(frozen=True, slots=True)
class OrganisationSnapshot:
    """An organisation; ``sectors`` are NIS2 sector names (vcisc.vocabulary.SECTORS keys)."""

    id: object
    name: str
    nation_code: str
    tlp: Tlp
    sectors: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class IncidentSnapshot:
    """The RFA behind the engagement."""

    id: object
    reference: str
    title: str
    description: str
    tlp: Tlp
    created: datetime
    modified: datetime
    requester_org_id: object
    determination: str = "suspected"
    investigation_status: InvestigationStatus = InvestigationStatus.OPEN
    #: PPD-41 severity 0–5 (DOMAIN.md §4), for MISP threat_level_id.
    severity: int | None = None
    #: RSIT "class/type" strings, e.g. ``malicious-code/infected-system``.
    incident_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    id: object
    title: str
    description: str
    tlp: Tlp
    created: datetime
    modified: datetime
    author_org_id: object
    assignee_org_id: object
    outcome: str = "pending"
    due: datetime | None = None
    completed: datetime | None = None


@dataclass(frozen=True, slots=True)
class IndicatorSnapshot:
    """An engagement indicator. ``first_seen`` becomes ``valid_from``."""

    id: object
    observable: Observable
    tlp: Tlp
    created: datetime
    modified: datetime
    author_org_id: object
    first_seen: datetime
    last_seen: datetime | None = None
    valid_until: datetime | None = None
    confidence: int | None = None
    for_detection: bool = True
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class MalwareSnapshot:
    id: object
    name: str
    is_family: bool
    tlp: Tlp
    created: datetime
    modified: datetime
    author_org_id: object
    malware_types: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class AnalysisSnapshot:
    """A malware analysis; ``sample`` is the analysed file's hashes (md5/sha1/sha256/sha512)."""

    id: object
    product: str
    result: str
    tlp: Tlp
    created: datetime
    modified: datetime
    author_org_id: object
    sample: tuple[Observable, ...] = ()
    malware_id: object | None = None
    analysis_started: datetime | None = None
    analysis_ended: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoteSnapshot:
    id: object
    body: str
    tlp: Tlp
    created: datetime
    modified: datetime
    author_org_id: object
    abstract: str = ""


class ReportKind(StrEnum):
    SITREP = "sitrep"
    AFTER_ACTION = "after-action"


@dataclass(frozen=True, slots=True)
class ReportSnapshot:
    """A SITREP or after-action review, published at ``published``."""

    id: object
    kind: ReportKind
    name: str
    body: str
    tlp: Tlp
    created: datetime
    modified: datetime
    published: datetime
    author_org_id: object


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another snapshot: ``kind`` is indicator, malware, analysis, task, …"""

    kind: str
    id: object


@dataclass(frozen=True, slots=True)
class RelationshipSnapshot:
    """``source relationship_type target``, e.g. an indicator ``indicates`` a malware."""

    id: object
    relationship_type: str
    source: Ref
    target: Ref
    tlp: Tlp
    created: datetime
    modified: datetime
    author_org_id: object


@dataclass(frozen=True, slots=True)
class EngagementSnapshot:
    """Everything of one engagement the recipient may see."""

    id: object
    incident: IncidentSnapshot
    nations: tuple[NationSnapshot, ...]
    organisations: tuple[OrganisationSnapshot, ...]
    tasks: tuple[TaskSnapshot, ...] = ()
    indicators: tuple[IndicatorSnapshot, ...] = ()
    malware: tuple[MalwareSnapshot, ...] = ()
    analyses: tuple[AnalysisSnapshot, ...] = ()
    notes: tuple[NoteSnapshot, ...] = ()
    reports: tuple[ReportSnapshot, ...] = ()
    relationships: tuple[RelationshipSnapshot, ...] = ()
