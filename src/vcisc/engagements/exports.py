"""An engagement as STIX 2.1 and as a MISP event, holding only what the caller may read.

The snapshot is built through :mod:`vcisc.authz` (the workspace rule for items, the request's
content rule for the incident) and handed to the pure exporters of :mod:`vcisc.sharing`, so an
export can never show more than the API does: a TLP:RED item is left out for a participant who
is not a named member, and the incident's title and description are withheld from a user with
metadata access only.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Q

from vcisc import authz
from vcisc.engagements.models import Engagement, Indicator, Note, Participant, SituationReport, Task
from vcisc.engagements.services import _workspace
from vcisc.errors import Conflict
from vcisc.federation.models import User
from vcisc.sharing.misp.export import MispExportError, MispOrganisation, export_event
from vcisc.sharing.observables import Observable, ObservableType
from vcisc.sharing.snapshots import (
    EngagementSnapshot,
    IncidentSnapshot,
    IndicatorSnapshot,
    InvestigationStatus,
    NationSnapshot,
    NoteSnapshot,
    OrganisationSnapshot,
    ReportKind,
    ReportSnapshot,
    TaskSnapshot,
)
from vcisc.sharing.stix.export import export_engagement
from vcisc.sharing.stix.ids import StixIdMinter
from vcisc.tlp import Tlp

__all__ = ["misp_event", "snapshot_for", "snapshot_of", "stix_bundle", "stix_objects"]


def _minter() -> StixIdMinter:
    """Stable STIX ids for this deployment, derived from its secret key (never shown)."""
    seed = hashlib.sha256(b"vcisc-stix-ids\x00" + settings.SECRET_KEY.encode()).digest()
    return StixIdMinter(uuid.UUID(bytes=seed[:16], version=4))


def snapshot_for(user: User, engagement_id: UUID) -> EngagementSnapshot:
    """What of the engagement ``user`` may read, as the exporters' input."""
    eng: Engagement = _workspace(user, engagement_id, writable=False)
    content = authz.rfa_access(user, eng.rfa) is authz.Access.CONTENT
    return snapshot_of(eng, items=authz.item_filter(user, eng), content=content)


def snapshot_of(eng: Engagement, *, items: Q, content: bool) -> EngagementSnapshot:
    """The engagement with the workspace items ``items`` selects; the incident's title and
    description only with ``content``. The caller has decided what may be read (the TAXII
    store materialises every item, each row then read through ``authz.item_filter``)."""
    rfa = eng.rfa
    parts = Participant.objects.filter(engagement=eng).select_related("organisation__nation")
    orgs = [p.organisation for p in parts]
    tlp = Tlp(rfa.tlp)
    nations = {
        o.nation.code: NationSnapshot(o.nation.code, o.nation.name, tlp) for o in orgs if o.nation
    }
    status = InvestigationStatus.CLOSED if eng.closed_at else InvestigationStatus.OPEN
    incident = IncidentSnapshot(
        id=rfa.pk,
        reference=rfa.reference,
        title=rfa.title if content else rfa.reference,
        description=rfa.description if content else "",
        tlp=tlp,
        created=rfa.created_at,
        modified=rfa.updated_at,
        requester_org_id=rfa.requester_id,
        investigation_status=status,
        severity=rfa.severity,
        incident_types=(f"{rfa.rsit_class}/{rfa.rsit_type}",) if content else (),
    )

    def mine(model: type[Any]) -> Any:
        return model.objects.filter(items, engagement=eng).order_by("created_at", "pk")

    return EngagementSnapshot(
        id=eng.pk,
        incident=incident,
        nations=tuple(nations.values()),
        organisations=tuple(
            OrganisationSnapshot(
                o.pk, o.name, o.nation.code if o.nation else "", tlp, description=o.kind
            )
            for o in orgs
        ),
        tasks=tuple(
            TaskSnapshot(
                t.pk,
                t.title,
                t.description,
                Tlp(t.tlp),
                t.created_at,
                t.updated_at,
                t.organisation_id,
                t.assignee_id,
                outcome=t.outcome,
                due=t.due_at,
                completed=t.completed_at,
            )
            for t in mine(Task)
        ),
        indicators=tuple(
            IndicatorSnapshot(
                i.pk,
                Observable(ObservableType(i.type), i.value),
                Tlp(i.tlp),
                i.created_at,
                i.updated_at,
                i.organisation_id,
                first_seen=i.first_seen,
                last_seen=i.last_seen,
                confidence=i.confidence,
                for_detection=i.for_detection,
                description=i.description,
            )
            for i in mine(Indicator)
        ),
        notes=tuple(
            NoteSnapshot(n.pk, n.body, Tlp(n.tlp), n.created_at, n.updated_at, n.organisation_id)
            for n in mine(Note)
        ),
        reports=tuple(
            ReportSnapshot(
                s.pk,
                ReportKind.SITREP,
                f"SITREP {rfa.reference} {s.created_at:%Y-%m-%d %H:%M}",
                "\n\n".join(x for x in (s.summary, s.actions_taken, s.next_steps) if x),
                Tlp(s.tlp),
                s.created_at,
                s.updated_at,
                s.created_at,
                s.organisation_id,
            )
            for s in mine(SituationReport)
        ),
    )


def stix_bundle(user: User, engagement_id: UUID) -> dict[str, Any]:
    """The engagement as a STIX 2.1 bundle (DOMAIN.md §6), TLP 2.0 markings on every object."""
    bundle: dict[str, Any] = export_engagement(
        snapshot_for(user, engagement_id), minter=_minter(), task_relationships=False
    ).bundle
    return bundle


def stix_objects(eng: Engagement, *, items: Q) -> list[dict[str, Any]]:
    """The STIX objects of the engagement's export for the items ``items`` selects (incident
    content included, this deployment's stable ids): what the TAXII store materialises."""
    snapshot = snapshot_of(eng, items=items, content=True)
    bundle = export_engagement(snapshot, minter=_minter(), task_relationships=False).bundle
    return list(bundle["objects"])


def misp_event_uuid(engagement_id: UUID) -> uuid.UUID:
    """The uuid :func:`misp_event` gives the engagement's event (stable, reveals nothing)."""
    return uuid.uuid5(_minter().namespace, f"misp-event\x00{engagement_id}")


def misp_event(user: User, engagement_id: UUID) -> dict[str, Any]:
    """The engagement's indicators as one MISP event (MISP core format), ``tlp:`` tags and a
    distribution never wider than the TLP allows."""
    namespace = _minter().namespace
    creator = MispOrganisation("VCISC", uuid.uuid5(namespace, "vcisc-deployment"))
    try:
        exported = export_event(
            snapshot_for(user, engagement_id), namespace=namespace, creator=creator
        )
    except MispExportError as exc:  # a TLP:RED engagement: no MISP distribution is narrow enough
        raise Conflict(f"{exc}; export STIX 2.1 instead", allowed=["export/stix"]) from None
    # TLP:RED goes to named people only, which no MISP distribution can say: such indicators
    # stay out of MISP exports (export STIX instead).
    event: dict[str, Any] = exported.event
    return event
