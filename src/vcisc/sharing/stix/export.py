"""An engagement as a STIX 2.1 bundle (§8), built from plain snapshots (DOMAIN.md §6).

The database layer turns rows into the frozen snapshots of :mod:`vcisc.sharing.snapshots` —
only what the recipient may see, already filtered by :mod:`vcisc.authz` — and
:func:`export_engagement` returns the bundle as a JSON-ready ``dict``. Mapping:

* the RFA/engagement → ``incident`` (§4.6) with the Incident Core extension
  (``extension_type: property-extension``, ``determination``, ``investigation_status``
  new/open/closed, ``task_refs``);
* nations → ``identity`` (§4.5, sector ``government-national``) located at a country
  ``location`` (§4.10); organisations → ``identity`` located at their nation's ``location``;
* engagement tasks → ``task`` (Task extension, ``extension_type: new-sdo``, ``outcome``) with
  ``identity assigned task`` and, once finished, ``identity performed task`` relationships;
* indicators → ``indicator`` (§4.7) whose pattern is built from the normalised observable;
* malware → ``malware`` (§4.11); analyses → ``malware-analysis`` (§4.12) with the sample as a
  ``file`` SCO (§6.7); notes → ``note`` (§4.13); SITREPs and after-action reviews →
  ``report`` (§4.16); relationships → ``relationship`` (§5.1).

Every object carries exactly one TLP 2.0 marking in ``object_marking_refs``, and the TLP 2.0
marking definitions used are in the bundle. Notes and reports refer to the incident by id only
and keep their own TLP. A relationship says that both its ends are
connected, so it is marked with the strictest TLP of itself and both ends (DOMAIN.md §5: a
derived object carries the strictest TLP of its sources). Ids are deterministic
(:mod:`.ids`), and the bundle's objects are sorted by id, so exporting the same snapshot twice
gives byte-identical JSON.

Observables STIX 2.1 cannot express as a pattern (JA3) and objects whose references point
outside the snapshot are left out and listed in :attr:`StixExport.skipped`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from vcisc.sharing.observables import Observable
from vcisc.sharing.snapshots import (
    AnalysisSnapshot,
    EngagementSnapshot,
    IndicatorSnapshot,
    NationSnapshot,
    OrganisationSnapshot,
    ReportSnapshot,
    TaskSnapshot,
)
from vcisc.sharing.stix.ids import StixIdMinter, sco_id
from vcisc.sharing.stix.markings import marking_definition, marking_id
from vcisc.sharing.stix.objects import (
    INCIDENT_CORE_EXTENSION_ID,
    INCIDENT_DETERMINATIONS,
    TASK_EXTENSION_ID,
    TASK_OUTCOMES,
)
from vcisc.sharing.stix.patterns import pattern_for
from vcisc.tlp import Tlp, strictest

__all__ = ["SkippedItem", "StixExport", "export_engagement", "stix_timestamp"]


def stix_timestamp(moment: datetime) -> str:
    """§2.7 timestamp in UTC with millisecond precision (``2024-05-01T10:00:00.000Z``)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class SkippedItem:
    kind: str
    id: object
    reason: str


@dataclass(frozen=True, slots=True)
class StixExport:
    bundle: dict[str, Any] = field(repr=False)
    skipped: tuple[SkippedItem, ...] = ()


# --- mapping ------------------------------------------------------------------------------

#: NIS2 sectors (DOMAIN.md §4) → STIX 2.1 industry-sector-ov (§10.12); unlisted ones are omitted.
_SECTORS: Final[Mapping[str, str]] = {
    "energy": "energy",
    "transport": "transportation",
    "banking": "financial-services",
    "financial-market-infrastructures": "financial-services",
    "health": "healthcare",
    "drinking-water": "utilities",
    "waste-water": "utilities",
    "digital-infrastructure": "telecommunications",
    "ict-service-management": "technology",
    "public-administration": "government-public-services",
    "space": "aerospace",
    "postal-and-courier": "logistics",
    "waste-management": "utilities",
    "chemicals": "manufacturing",
    "food": "manufacturing",
    "manufacturing": "manufacturing",
    "digital-providers": "technology",
    "research": "education",
    "defence": "defense",
    "government": "government",
}
#: Task outcomes after which the assignee has *performed* the task.
_FINISHED: Final = frozenset({"successful", "failed"})


class _Builder:
    def __init__(
        self, snapshot: EngagementSnapshot, minter: StixIdMinter, task_relationships: bool
    ) -> None:
        self.snapshot = snapshot
        self.task_relationships = task_relationships
        self.minter = minter
        self.objects: dict[str, dict[str, Any]] = {}
        self.tlps: dict[str, Tlp] = {}
        self.by_ref: dict[tuple[str, str], str] = {}
        self.skipped: list[SkippedItem] = []

    def sid(self, stix_type: str, kind: str, vcisc_id: object) -> str:
        return self.minter.sdo_id(stix_type, kind, vcisc_id)

    def add(
        self, obj: dict[str, Any], tlp: Tlp, kind: str | None = None, vcisc_id: object = None
    ) -> str:
        obj["object_marking_refs"] = [marking_id(tlp)]
        self.objects[obj["id"]] = obj
        self.tlps[obj["id"]] = tlp
        if kind is not None:
            self.by_ref[(kind, str(vcisc_id))] = obj["id"]
        return str(obj["id"])

    def sdo(
        self, stix_type: str, kind: str, vcisc_id: object, created: datetime, modified: datetime
    ) -> dict[str, Any]:
        return {
            "type": stix_type,
            "spec_version": "2.1",
            "id": self.sid(stix_type, kind, vcisc_id),
            "created": stix_timestamp(created),
            "modified": stix_timestamp(max(created, modified)),
        }

    def org_identity(self, org_id: object) -> str | None:
        return self.by_ref.get(("organisation", str(org_id)))

    def creator(self, obj: dict[str, Any], org_id: object) -> None:
        identity = self.org_identity(org_id)
        if identity is not None:
            obj["created_by_ref"] = identity


def _location_and_nation(builder: _Builder, nation: NationSnapshot) -> None:
    created = builder.snapshot.incident.created
    location = builder.sdo("location", "nation-location", nation.code, created, created)
    location.update({"name": nation.name, "country": nation.code.upper()})
    location_id = builder.add(location, nation.tlp, "nation-location", nation.code)
    identity = builder.sdo("identity", "nation", nation.code, created, created)
    identity.update(
        {
            "name": nation.name,
            "description": f"{nation.name} ({nation.code.upper()}), a nation of the federation.",
            "identity_class": "organization",
            "sectors": ["government-national"],
        }
    )
    identity_id = builder.add(identity, nation.tlp, "nation", nation.code)
    _relationship(
        builder,
        "located-at",
        identity_id,
        location_id,
        nation.tlp,
        ("nation", nation.code),
        created,
    )


def _relationship(
    builder: _Builder,
    relationship_type: str,
    source: str,
    target: str,
    tlp: Tlp,
    key: tuple[str, object],
    when: datetime,
    modified: datetime | None = None,
    created_by: str | None = None,
) -> None:
    # A relationship reveals both ends: never less strict than either (DOMAIN.md §5).
    marking = strictest([tlp, builder.tlps[source], builder.tlps[target]])
    rel = builder.sdo(
        "relationship", f"{relationship_type}:{key[0]}", key[1], when, modified or when
    )
    rel.update({"relationship_type": relationship_type, "source_ref": source, "target_ref": target})
    if created_by is not None:
        rel["created_by_ref"] = created_by
    builder.add(rel, marking)


def export_engagement(
    snapshot: EngagementSnapshot, *, minter: StixIdMinter, task_relationships: bool = True
) -> StixExport:
    """The engagement as a STIX 2.1 bundle; see the module docstring for the mapping.

    ``task_relationships`` emits DOMAIN.md §6's ``identity assigned task`` and ``identity
    performed task``. STIX 2.1 §5.1 permits relationship types beyond its suggested ones, but
    stix2-validator warns about them (check 202, "not a suggested relationship type"). With
    ``False`` they are left out — the tasks then name no assignee, since neither STIX 2.1 nor
    the Task extension has a property for one — and the export validates with no warning.
    """
    builder = _Builder(snapshot, minter, task_relationships)
    incident = snapshot.incident
    if incident.determination not in INCIDENT_DETERMINATIONS:
        raise ValueError(
            f"determination {incident.determination!r} is not in the Incident Core enum"
        )
    for task in snapshot.tasks:
        if task.outcome not in TASK_OUTCOMES:
            raise ValueError(f"task outcome {task.outcome!r} is not in the Task extension's enum")

    for nation in sorted(snapshot.nations, key=lambda n: n.code):
        _location_and_nation(builder, nation)
    for org in sorted(snapshot.organisations, key=lambda o: str(o.id)):
        _organisation(builder, org)

    incident_obj = builder.sdo(
        "incident", "incident", incident.id, incident.created, incident.modified
    )
    incident_obj.update(
        {
            "name": f"{incident.reference}: {incident.title}",
            "description": incident.description or incident.title,
        }
    )
    builder.creator(incident_obj, incident.requester_org_id)
    extension: dict[str, Any] = {
        "extension_type": "property-extension",
        "determination": incident.determination,
        "investigation_status": incident.investigation_status.value,
    }
    if incident.incident_types:
        extension["incident_types"] = list(incident.incident_types)
    incident_obj["extensions"] = {INCIDENT_CORE_EXTENSION_ID: extension}
    incident_id = builder.add(incident_obj, incident.tlp, "incident", incident.id)

    task_ids: list[str] = []
    for task in sorted(snapshot.tasks, key=lambda t: str(t.id)):
        task_id = _task(builder, task)
        if task_id is not None:
            task_ids.append(task_id)
    if task_ids:
        extension["task_refs"] = sorted(task_ids)

    for indicator in snapshot.indicators:
        _indicator(builder, indicator)
    for malware in snapshot.malware:
        obj = builder.sdo("malware", "malware", malware.id, malware.created, malware.modified)
        obj.update({"name": malware.name, "is_family": malware.is_family})
        if malware.malware_types:
            obj["malware_types"] = list(malware.malware_types)
        if malware.description:
            obj["description"] = malware.description
        builder.creator(obj, malware.author_org_id)
        builder.add(obj, malware.tlp, "malware", malware.id)
    for analysis in snapshot.analyses:
        _analysis(builder, analysis)
    for note in snapshot.notes:
        obj = builder.sdo("note", "note", note.id, note.created, note.modified)
        obj.update({"content": note.body, "object_refs": [incident_id]})
        if note.abstract:
            obj["abstract"] = note.abstract
        builder.creator(obj, note.author_org_id)
        builder.add(obj, note.tlp, "note", note.id)
    for report in snapshot.reports:
        _report(builder, report, incident_id)
    for rel in snapshot.relationships:
        source = builder.by_ref.get((rel.source.kind, str(rel.source.id)))
        target = builder.by_ref.get((rel.target.kind, str(rel.target.id)))
        if source is None or target is None:
            builder.skipped.append(
                SkippedItem(
                    "relationship",
                    rel.id,
                    "an end is not in this export (not visible, or not exportable)",
                )
            )
            continue
        _relationship(
            builder,
            rel.relationship_type,
            source,
            target,
            rel.tlp,
            ("relationship", rel.id),
            rel.created,
            rel.modified,
            builder.org_identity(rel.author_org_id),
        )

    used = sorted(set(builder.tlps.values()), key=lambda t: t.rank)
    objects = [marking_definition(tlp) for tlp in used]
    objects += [builder.objects[oid] for oid in sorted(builder.objects)]
    digest = hashlib.sha256(
        "\n".join(f"{o['id']} {o.get('modified', '')}" for o in objects).encode()
    ).digest()
    bundle_id = f"bundle--{uuid.UUID(bytes=digest[:16], version=4)}"
    return StixExport(
        {"type": "bundle", "id": bundle_id, "objects": objects}, tuple(builder.skipped)
    )


def _organisation(builder: _Builder, org: OrganisationSnapshot) -> None:
    created = builder.snapshot.incident.created
    identity = builder.sdo("identity", "organisation", org.id, created, created)
    identity.update(
        {
            "name": org.name,
            "description": org.description
            or f"{org.name}, an organisation of {org.nation_code.upper()}.",
            "identity_class": "organization",
        }
    )
    sectors = sorted({_SECTORS[s] for s in org.sectors if s in _SECTORS})
    if sectors:
        identity["sectors"] = sectors
    identity_id = builder.add(identity, org.tlp, "organisation", org.id)
    location = builder.by_ref.get(("nation-location", org.nation_code))
    if location is not None:
        _relationship(
            builder, "located-at", identity_id, location, org.tlp, ("organisation", org.id), created
        )


def _task(builder: _Builder, task: TaskSnapshot) -> str | None:
    assignee = builder.org_identity(task.assignee_org_id)
    obj = builder.sdo("task", "task", task.id, task.created, task.modified)
    obj.update({"name": task.title, "outcome": task.outcome})
    if task.description:
        obj["description"] = task.description
    if task.completed is not None:
        obj["end_time"] = stix_timestamp(task.completed)
    builder.creator(obj, task.author_org_id)
    obj["extensions"] = {TASK_EXTENSION_ID: {"extension_type": "new-sdo"}}
    task_id = builder.add(obj, task.tlp, "task", task.id)
    if assignee is not None and builder.task_relationships:
        # DOMAIN.md §6: "identity assigned task", and "identity performed task" once done.
        _relationship(
            builder,
            "assigned",
            assignee,
            task_id,
            task.tlp,
            ("task-assigned", task.id),
            task.created,
            task.modified,
        )
        if task.outcome in _FINISHED:
            _relationship(
                builder,
                "performed",
                assignee,
                task_id,
                task.tlp,
                ("task-performed", task.id),
                task.completed or task.modified,
                task.modified,
            )
    return task_id


def _indicator(builder: _Builder, indicator: IndicatorSnapshot) -> None:
    pattern = pattern_for(indicator.observable)
    if pattern is None:
        builder.skipped.append(
            SkippedItem(
                "indicator",
                indicator.id,
                f"STIX 2.1 has no pattern for {indicator.observable.type.value}",
            )
        )
        return
    obj = builder.sdo("indicator", "indicator", indicator.id, indicator.created, indicator.modified)
    observable = indicator.observable
    obj.update(
        {
            "name": indicator.name or f"{observable.type.value} {observable.value}"[:250],
            "description": indicator.description
            or f"{observable.type.value} indicator of {builder.snapshot.incident.reference}.",
            "indicator_types": ["malicious-activity"]
            if indicator.for_detection
            else ["anomalous-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": stix_timestamp(indicator.first_seen),
        }
    )
    if indicator.valid_until is not None and indicator.valid_until > indicator.first_seen:
        obj["valid_until"] = stix_timestamp(indicator.valid_until)
    if indicator.confidence is not None:
        obj["confidence"] = max(0, min(100, indicator.confidence))
    builder.creator(obj, indicator.author_org_id)
    builder.add(obj, indicator.tlp, "indicator", indicator.id)


def _analysis(builder: _Builder, analysis: AnalysisSnapshot) -> None:
    obj = builder.sdo(
        "malware-analysis", "analysis", analysis.id, analysis.created, analysis.modified
    )
    # §4.12: product SHOULD be lower case with words separated by a dash ("vcisc-sandbox").
    product = re.sub(r"[^a-z0-9]+", "-", analysis.product.lower()).strip("-") or "unknown"
    obj.update({"product": product, "result": analysis.result})
    if analysis.analysis_started is not None:
        obj["analysis_started"] = stix_timestamp(analysis.analysis_started)
    if analysis.analysis_ended is not None:
        obj["analysis_ended"] = stix_timestamp(analysis.analysis_ended)
    hashes = _stix_hashes(analysis.sample)
    if hashes:
        # §6.7: a file's id comes from its hashes (UUIDv5, §2.9), so every producer agrees.
        file_obj: dict[str, Any] = {"type": "file", "spec_version": "2.1", "hashes": hashes}
        file_obj["id"] = sco_id("file", {"hashes": hashes})
        builder.add(file_obj, analysis.tlp)
        obj["sample_ref"] = file_obj["id"]
    builder.creator(obj, analysis.author_org_id)
    analysis_id = builder.add(obj, analysis.tlp, "analysis", analysis.id)
    if analysis.malware_id is not None:
        malware = builder.by_ref.get(("malware", str(analysis.malware_id)))
        if malware is not None:
            _relationship(
                builder,
                "characterizes",
                analysis_id,
                malware,
                analysis.tlp,
                ("analysis", analysis.id),
                analysis.created,
                analysis.modified,
            )


_STIX_HASH_NAMES: Final[Mapping[str, str]] = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha512": "SHA-512",
    "ssdeep": "SSDEEP",
}


def _stix_hashes(sample: Iterable[Observable]) -> dict[str, str]:
    return {
        _STIX_HASH_NAMES[o.type.value]: o.value for o in sample if o.type.value in _STIX_HASH_NAMES
    }


def _report(builder: _Builder, report: ReportSnapshot, incident_id: str) -> None:
    obj = builder.sdo("report", "report", report.id, report.created, report.modified)
    obj.update(
        {
            "name": report.name,
            "description": report.body,
            "report_types": ["threat-report"],
            "published": stix_timestamp(report.published),
            "object_refs": [incident_id],
            "labels": [report.kind.value],
        }
    )
    builder.creator(obj, report.author_org_id)
    builder.add(obj, report.tlp, "report", report.id)
