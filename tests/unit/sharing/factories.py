"""A small engagement snapshot with one of everything, for the exporter and MISP tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from vcisc.sharing.observables import ObservableType, normalise
from vcisc.sharing.snapshots import (
    AnalysisSnapshot,
    EngagementSnapshot,
    IncidentSnapshot,
    IndicatorSnapshot,
    InvestigationStatus,
    MalwareSnapshot,
    NationSnapshot,
    NoteSnapshot,
    OrganisationSnapshot,
    Ref,
    RelationshipSnapshot,
    ReportKind,
    ReportSnapshot,
    TaskSnapshot,
)
from vcisc.tlp import Tlp

T0 = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c2a53-9b8e-4d7a-a1f0-3c2b1a0e9d88")

REQUESTER = uuid.UUID("0190f0a0-0000-7000-8000-000000000001")
HELPER = uuid.UUID("0190f0a0-0000-7000-8000-000000000002")

#: (type, value, TLP) of the engagement's indicators: every type, every TLP.
INDICATORS: list[tuple[ObservableType, str, Tlp]] = [
    (ObservableType.IPV4, "198.51.100.7", Tlp.AMBER),
    (ObservableType.IPV6, "2001:db8::7", Tlp.GREEN),
    (ObservableType.CIDR, "203.0.113.0/24", Tlp.CLEAR),
    (ObservableType.DOMAIN, "bücher-update.example", Tlp.AMBER),
    (ObservableType.HOSTNAME, "c2.evil.example", Tlp.AMBER_STRICT),
    (ObservableType.URL, "https://evil.example/gate.php?id=1&x='y'", Tlp.AMBER),
    (ObservableType.EMAIL, "Phish@evil.example", Tlp.GREEN),
    (ObservableType.MD5, "d41d8cd98f00b204e9800998ecf8427e", Tlp.AMBER),
    (ObservableType.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", Tlp.AMBER),
    (
        ObservableType.SHA256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        Tlp.AMBER,
    ),
    (ObservableType.SHA512, "cf83" + "e1" * 62, Tlp.AMBER),
    (ObservableType.SSDEEP, "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C", Tlp.AMBER),
    (ObservableType.FILENAME, "invoice'2026.pdf.exe", Tlp.AMBER),
    (ObservableType.JA3, "e7d705a3286e19ea42f587b344ee6865", Tlp.GREEN),
    (ObservableType.ASN, "AS64500", Tlp.CLEAR),
    (ObservableType.MUTEX, "Global\\Lck_{3f2a}", Tlp.AMBER),
    (
        ObservableType.REGISTRY_KEY,
        "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
        Tlp.AMBER,
    ),
]


def engagement(
    *,
    indicators: list[tuple[ObservableType, str, Tlp]] | None = None,
    incident_tlp: Tlp = Tlp.AMBER,
    red_note: bool = True,
) -> EngagementSnapshot:
    later = T0 + timedelta(hours=5)
    rows = INDICATORS if indicators is None else indicators
    return EngagementSnapshot(
        id=uuid.UUID("0190f0a0-0000-7000-8000-0000000000e1"),
        incident=IncidentSnapshot(
            id=uuid.UUID("0190f0a0-0000-7000-8000-0000000000a1"),
            reference="RFA-2026-0042",
            title="Ransomware at a transmission system operator",
            description="Encryption of SCADA historians; OT network segmented.",
            tlp=incident_tlp,
            created=T0,
            modified=later,
            requester_org_id=REQUESTER,
            determination="confirmed",
            investigation_status=InvestigationStatus.OPEN,
            severity=4,
            incident_types=("malicious-code/infected-system",),
        ),
        nations=(
            NationSnapshot("ee", "Estonia", Tlp.GREEN),
            NationSnapshot("fi", "Finland", Tlp.GREEN),
        ),
        organisations=(
            OrganisationSnapshot(REQUESTER, "CERT-EE", "ee", Tlp.GREEN, ("energy", "government")),
            OrganisationSnapshot(HELPER, "NCSC-FI", "fi", Tlp.GREEN, ("digital-infrastructure",)),
        ),
        tasks=(
            TaskSnapshot(
                "task-1",
                "Reverse the loader",
                "Static and dynamic analysis.",
                Tlp.AMBER,
                T0,
                later,
                REQUESTER,
                HELPER,
                "successful",
                completed=later,
            ),
            TaskSnapshot(
                "task-2",
                "Hunt for lateral movement",
                "",
                Tlp.AMBER_STRICT,
                T0,
                T0,
                REQUESTER,
                HELPER,
            ),
        ),
        indicators=tuple(
            IndicatorSnapshot(
                id=f"ind-{n}",
                observable=normalise(kind, value),
                tlp=tlp,
                created=T0,
                modified=later,
                author_org_id=HELPER,
                first_seen=T0 - timedelta(days=2),
                last_seen=T0,
                confidence=75,
                for_detection=n % 5 != 0,
            )
            for n, (kind, value, tlp) in enumerate(rows)
        ),
        malware=(
            MalwareSnapshot(
                "mal-1",
                "GridLock",
                True,
                Tlp.AMBER,
                T0,
                later,
                HELPER,
                ("ransomware",),
                "Wiper-ransomware family.",
            ),
        ),
        analyses=(
            AnalysisSnapshot(
                "ana-1",
                "VCISC sandbox",
                "malicious",
                Tlp.AMBER,
                T0,
                later,
                HELPER,
                sample=(
                    normalise(
                        ObservableType.SHA256,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    ),
                    normalise(ObservableType.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
                ),
                malware_id="mal-1",
                analysis_started=T0,
                analysis_ended=later,
            ),
        ),
        notes=(NoteSnapshot("note-1", "Named contacts only.", Tlp.RED, T0, T0, REQUESTER),)
        if red_note
        else (),
        reports=(
            ReportSnapshot(
                "sitrep-1",
                ReportKind.SITREP,
                "SITREP 1",
                "Containment holding.",
                Tlp.AMBER,
                T0,
                later,
                later,
                REQUESTER,
            ),
        ),
        relationships=(
            RelationshipSnapshot(
                "rel-1",
                "indicates",
                Ref("indicator", "ind-0"),
                Ref("malware", "mal-1"),
                Tlp.GREEN,
                T0,
                T0,
                HELPER,
            ),
            RelationshipSnapshot(
                "rel-2",
                "indicates",
                Ref("indicator", "missing"),
                Ref("malware", "mal-1"),
                Tlp.GREEN,
                T0,
                T0,
                HELPER,
            ),
        ),
    )
