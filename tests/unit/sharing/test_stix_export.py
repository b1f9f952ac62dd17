"""STIX 2.1 export of an engagement, checked by stix2-validator (DOMAIN.md §6, STIX 2.1 §8)."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections import Counter
from typing import Any

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from vcisc.sharing.stix.export import export_engagement, stix_timestamp
from vcisc.sharing.stix.ids import StixIdMinter, sco_id
from vcisc.sharing.stix.markings import marking_definition
from vcisc.tlp import STIX_TLP2_IDS, Tlp

from .factories import INDICATORS, NAMESPACE, T0, engagement

MINTER = StixIdMinter(NAMESPACE)
UUID4 = re.compile(
    r"^[a-z0-9-]+--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


def validate(bundle: dict[str, Any]) -> tuple[list[str], list[str]]:
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    return [str(e) for e in result.errors], list(result.warnings or [])


def by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for obj in bundle["objects"]:
        found.setdefault(obj["type"], []).append(obj)
    return found


def test_export_without_task_relationships_has_no_error_and_no_warning() -> None:
    bundle = export_engagement(engagement(), minter=MINTER, task_relationships=False).bundle
    errors, warnings = validate(bundle)
    assert errors == []
    assert warnings == []


def test_domain_task_relationships_are_the_only_warnings() -> None:
    """DOMAIN.md §6 asks for ``identity assigned/performed task``; STIX 2.1 §5.1 permits these
    types but stix2-validator flags them as not suggested (check 202) — and nothing else."""
    bundle = export_engagement(engagement(), minter=MINTER).bundle
    errors, warnings = validate(bundle)
    assert errors == []
    task_rels = [
        o
        for o in bundle["objects"]
        if o["type"] == "relationship" and o["relationship_type"] in ("assigned", "performed")
    ]
    assert Counter(r["relationship_type"] for r in task_rels) == {"assigned": 2, "performed": 1}
    assert sorted(warnings) == sorted(
        f"{r['id']}: {{202}} '{r['relationship_type']}' is permitted, but not a suggested "
        "relationship type for 'identity' objects."
        for r in task_rels
    )


def test_export_parses_with_the_reference_library() -> None:
    bundle = export_engagement(engagement(), minter=MINTER).bundle
    parsed = stix2.parse(json.dumps(bundle), allow_custom=True)
    assert len(parsed.objects) == len(bundle["objects"])


def test_every_object_has_exactly_one_tlp2_marking_and_definitions_are_present() -> None:
    bundle = export_engagement(engagement(), minter=MINTER).bundle
    definitions = {o["id"]: o for o in bundle["objects"] if o["type"] == "marking-definition"}
    for tlp_id, definition in definitions.items():
        tlp = next(t for t, i in STIX_TLP2_IDS.items() if i == tlp_id)
        assert definition == marking_definition(tlp)
    for obj in bundle["objects"]:
        if obj["type"] == "marking-definition":
            continue
        assert len(obj["object_marking_refs"]) == 1, obj["id"]
        assert obj["object_marking_refs"][0] in definitions


def test_mapping_of_the_engagement() -> None:
    bundle = export_engagement(engagement(), minter=MINTER).bundle
    objects = by_type(bundle)
    (incident,) = objects["incident"]
    ext = incident["extensions"]["extension-definition--ef765651-680c-498d-9894-99799f2fa126"]
    assert ext["extension_type"] == "property-extension"
    assert ext["determination"] == "confirmed"
    assert ext["investigation_status"] == "open"
    assert sorted(ext["task_refs"]) == sorted(t["id"] for t in objects["task"])
    assert incident["object_marking_refs"] == [STIX_TLP2_IDS[Tlp.AMBER]]
    for task in objects["task"]:
        assert task["extensions"] == {
            "extension-definition--2074a052-8be4-4932-849e-f5e7798e0030": {
                "extension_type": "new-sdo"
            }
        }
        assert task["outcome"] in ("successful", "pending")
    names = {i["name"] for i in objects["identity"]}
    assert {"Estonia", "Finland", "CERT-EE", "NCSC-FI"} <= names
    cert_ee = next(i for i in objects["identity"] if i["name"] == "CERT-EE")
    assert cert_ee["sectors"] == ["energy", "government"]
    assert {loc["country"] for loc in objects["location"]} == {"EE", "FI"}
    assert incident["created_by_ref"] == cert_ee["id"]
    # 17 indicator types, JA3 has no STIX pattern.
    assert len(objects["indicator"]) == len(INDICATORS) - 1
    assert objects["malware"][0]["is_family"] is True
    (analysis,) = objects["malware-analysis"]
    (sample,) = objects["file"]
    assert analysis["sample_ref"] == sample["id"]
    assert sample["hashes"] == {
        "SHA-256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "MD5": "d41d8cd98f00b204e9800998ecf8427e",
    }
    assert objects["note"][0]["object_marking_refs"] == [STIX_TLP2_IDS[Tlp.RED]]
    assert objects["report"][0]["published"] == stix_timestamp(T0.replace(hour=13))
    rel_types = Counter(r["relationship_type"] for r in objects["relationship"])
    assert rel_types["indicates"] == 1 and rel_types["characterizes"] == 1
    assert rel_types["located-at"] == 4


def test_indicator_marking_and_pattern_follow_the_snapshot() -> None:
    snapshot = engagement()
    bundle = export_engagement(snapshot, minter=MINTER).bundle
    indicators = {o["id"]: o for o in bundle["objects"] if o["type"] == "indicator"}
    for item in snapshot.indicators:
        sid = MINTER.sdo_id("indicator", "indicator", item.id)
        if item.observable.type.value == "ja3":
            assert sid not in indicators
            continue
        assert indicators[sid]["object_marking_refs"] == [STIX_TLP2_IDS[item.tlp]]
        assert indicators[sid]["pattern_type"] == "stix"
        assert indicators[sid]["valid_from"] == stix_timestamp(item.first_seen)


def test_relationship_is_as_strict_as_its_ends() -> None:
    snapshot = engagement()
    bundle = export_engagement(snapshot, minter=MINTER).bundle
    (indicates,) = [o for o in bundle["objects"] if o.get("relationship_type") == "indicates"]
    # rel-1 is GREEN, but its source indicator is AMBER: the relationship is AMBER.
    assert indicates["object_marking_refs"] == [STIX_TLP2_IDS[Tlp.AMBER]]
    hunt = next(o for o in bundle["objects"] if o.get("name") == "Hunt for lateral movement")
    assigned = [o for o in bundle["objects"] if o.get("target_ref") == hunt["id"]]
    assert [a["object_marking_refs"] for a in assigned] == [[STIX_TLP2_IDS[Tlp.AMBER_STRICT]]]


def test_unexportable_things_are_reported_not_dropped_silently() -> None:
    skipped = export_engagement(engagement(), minter=MINTER).skipped
    assert {(s.kind, str(s.id)) for s in skipped} == {
        ("indicator", "ind-13"),
        ("relationship", "rel-2"),
    }


def test_ids_are_deterministic_uuid4_and_the_export_is_byte_stable() -> None:
    first = export_engagement(engagement(), minter=MINTER).bundle
    second = export_engagement(engagement(), minter=MINTER).bundle
    assert json.dumps(first) == json.dumps(second)
    for obj in first["objects"]:
        if obj["type"] not in ("marking-definition", "file"):
            assert UUID4.match(obj["id"]), obj["id"]
    other = export_engagement(engagement(), minter=StixIdMinter(uuid.uuid4())).bundle
    assert {o["id"] for o in other["objects"] if o["type"] == "incident"} != {
        o["id"] for o in first["objects"] if o["type"] == "incident"
    }


def test_sco_ids_follow_stix_2_9_uuid5() -> None:
    # §2.9: UUIDv5 in namespace 00abedb4-… over the canonical JSON of the ID contributing
    # properties; stix2 computes the same id for the same file.
    hashes = {"MD5": "d41d8cd98f00b204e9800998ecf8427e"}
    assert sco_id("file", {"hashes": hashes}) == stix2.File(hashes=hashes).id


@pytest.mark.parametrize("tlp", list(Tlp))
def test_every_incident_tlp_validates(tlp: Tlp) -> None:
    bundle = export_engagement(
        engagement(incident_tlp=tlp, red_note=False), minter=MINTER, task_relationships=False
    ).bundle
    assert validate(bundle) == ([], [])


def test_timestamps_are_utc_milliseconds() -> None:
    assert stix_timestamp(T0) == "2026-03-01T08:30:15.123Z"
    with pytest.raises(ValueError):
        stix_timestamp(T0.replace(tzinfo=None))


def test_values_outside_the_extension_vocabularies_are_refused() -> None:
    snapshot = engagement()
    bad_incident = dataclasses.replace(
        snapshot, incident=dataclasses.replace(snapshot.incident, determination="probable")
    )
    with pytest.raises(ValueError, match="determination"):
        export_engagement(bad_incident, minter=MINTER)
    bad_task = dataclasses.replace(
        snapshot, tasks=(dataclasses.replace(snapshot.tasks[0], outcome="done"),)
    )
    with pytest.raises(ValueError, match="outcome"):
        export_engagement(bad_task, minter=MINTER)
