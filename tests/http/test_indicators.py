"""Indicators in engagements (issue 5): normalised, once per engagement, need-to-know, imports
that store all or nothing, and correlation told only to those who may see both sides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Federation, accepted_engagement, rfa_body
from vcisc.audit.models import AuditRecord
from vcisc.engagements.models import Correlation, Indicator

pytestmark = pytest.mark.django_db

AMBER_2_0 = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
GREEN_1_0 = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


def _values(fed: Federation, who: str, eng: str) -> Any:
    resp = fed.api(who).get(f"/engagements/{eng}/indicators")
    ok = resp.status_code == 200
    return resp.status_code, sorted(i["value"] for i in resp.json()) if ok else None


def test_participants_add_normalised_indicators_and_only_they_read_them(
    federation: Federation,
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators", {"value": "hxxps://EVIL[.]example:443/Path?q=1#frag"}
    )
    assert resp.status_code == 201, resp.content
    created = resp.json()
    assert created["type"] == "url" and created["value"] == "https://evil.example/Path?q=1"
    assert created["tlp"] == "amber" and created["organisation"] == "CERT-Bund"
    fed.api("ee").post(f"/engagements/{eng}/indicators", {"value": "203.0.113.7", "tlp": "green"})
    both = ["203.0.113.7", "https://evil.example/Path?q=1"]
    assert _values(fed, "ee", eng) == (200, both)
    assert _values(fed, "de_analyst", eng) == (200, both)
    # Routed but not taking part, or uninvolved: the engagement does not exist for them.
    assert _values(fed, "fr", eng)[0] == 404
    assert _values(fed, "us", eng)[0] == 404
    # The secretariat coordinates but does not take part: metadata only, no workspace items.
    assert _values(fed, "coordinator", eng) == (200, [])
    assert AuditRecord.objects.filter(action="indicator.create").count() == 2


def test_red_indicators_are_for_named_members_only(federation: Federation) -> None:
    fed = federation
    eng = accepted_engagement(fed, "red")
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators", {"value": "c2.evil.example", "tlp": "red"}
    )
    assert resp.status_code == 201, resp.content
    assert _values(fed, "de", eng) == (200, ["c2.evil.example"])
    assert _values(fed, "de_analyst", eng) == (200, [])
    resp = fed.api("de_analyst").post(
        f"/engagements/{eng}/indicators", {"value": "x.evil.example", "tlp": "red"}
    )
    assert resp.status_code == 403
    assert Indicator.objects.count() == 1


def test_each_value_is_held_once_and_bad_values_say_what_is_wrong(federation: Federation) -> None:
    fed = federation
    eng = accepted_engagement(fed, "green")
    de = fed.api("de")
    assert de.post(f"/engagements/{eng}/indicators", {"value": "Evil.Example"}).status_code == 201
    again = de.post(
        f"/engagements/{eng}/indicators", {"value": "evil.example.", "type": "hostname"}
    )
    assert again.status_code == 409 and "already" in again.json()["detail"]
    bad = de.post(f"/engagements/{eng}/indicators", {"value": "999.1.2.3", "type": "ipv4"})
    assert bad.status_code == 422 and bad.json()["field"] == "value"
    assert "999.1.2.3" in bad.json()["detail"] or "octet" in bad.json()["detail"].lower()
    unknown = de.post(f"/engagements/{eng}/indicators", {"value": "x", "type": "telepathy"})
    assert unknown.status_code == 422
    assert Indicator.objects.count() == 1


def test_a_csv_import_stores_all_or_skips_and_reports_the_bad_rows(
    federation: Federation,
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "green")
    content = (
        "type,value,tlp,confidence\n"
        "ipv4,198.51.100.1,green,80\n"
        "ipv4,198.51.100.300,green,80\n"
        ",44d88612fea8a8f36de82e1278abb02f,amber,\n"
    )
    api = fed.api("de")
    rejected = api.post(
        f"/engagements/{eng}/indicators/import", {"format": "csv", "content": content}
    )
    assert rejected.status_code == 422, rejected.content
    report = rejected.json()["report"]
    assert report["rejected"] and [e["index"] for e in report["errors"]] == [1]
    assert "row 3" in report["errors"][0]["reason"]
    assert Indicator.objects.count() == 0
    skipped = api.post(
        f"/engagements/{eng}/indicators/import",
        {"format": "csv", "content": content, "on_error": "skip"},
    )
    assert skipped.status_code == 201, skipped.content
    body = skipped.json()
    assert body["created"] == 2 and len(body["report"]["skipped"]) == 1
    md5 = Indicator.objects.get(type="md5")
    assert md5.tlp == "amber" and md5.source == "csv"
    assert Indicator.objects.get(type="ipv4").confidence == 80
    assert AuditRecord.objects.filter(action="indicator.import").count() == 1
    header = api.post(
        f"/engagements/{eng}/indicators/import", {"format": "csv", "content": "ip;v\n1"}
    )
    assert header.status_code == 422 and "value" in header.json()["report"]["fatal"]


def test_free_text_yields_its_indicators(federation: Federation) -> None:
    fed = federation
    eng = accepted_engagement(fed, "green")
    text = (
        "Beacon to hxxp://update-check[.]example[.]com/gate.php from 192.0.2.44; dropper "
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f."
    )
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators/import", {"format": "text", "content": text}
    )
    assert resp.status_code == 201, resp.content
    kinds = dict(Indicator.objects.values_list("type", "value"))
    assert kinds["ipv4"] == "192.0.2.44"
    assert kinds["url"] == "http://update-check.example.com/gate.php"
    assert kinds["sha256"].startswith("275a021b")
    assert not Indicator.objects.filter(for_detection=True).exists()  # context, not detection


def _bundle(*objects: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "bundle", "id": "bundle--6f1b2d5c-1c1e-4f7b-9f3a-2b8c7d6e5f40", "objects": objects}
    )


def _indicator(n: int, pattern: str, marking: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--0a1b2c3d-4e5f-4a6b-8c7d-{n:012d}",
        "created": "2026-11-30T10:00:00.000Z",
        "modified": "2026-11-30T10:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-11-30T10:00:00Z",
        "confidence": 70,
        "object_marking_refs": [marking],
    }


def test_stix_bundles_with_tlp_1_and_2_markings_import_and_a_bad_pattern_is_refused(
    federation: Federation,
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    api = fed.api("de")
    good = [
        _indicator(1, "[ipv4-addr:value = '203.0.113.9']", AMBER_2_0),
        _indicator(2, "[domain-name:value = 'Bad.Example']", GREEN_1_0),
    ]
    bad = _indicator(3, "[ipv4-addr:value = ", AMBER_2_0)
    url = f"/engagements/{eng}/indicators/import"
    rejected = api.post(url, {"format": "stix", "content": _bundle(*good, bad)})
    assert rejected.status_code == 422, rejected.content
    assert rejected.json()["report"]["errors"][0]["object_id"] == bad["id"]
    assert Indicator.objects.count() == 0
    resp = api.post(url, {"format": "stix", "content": _bundle(*good)})
    assert resp.status_code == 201, resp.content
    stored = {i.value: (i.tlp, i.confidence, i.source) for i in Indicator.objects.all()}
    assert stored == {"203.0.113.9": ("amber", 70, "stix"), "bad.example": ("green", 70, "stix")}
    assert api.post(url, {"format": "stix", "content": "{not json"}).status_code == 422


def test_a_misp_event_imports_with_its_tlp(federation: Federation) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    event = {
        "Event": {
            "uuid": "5a2b3c4d-1e2f-4a3b-9c8d-7e6f5a4b3c2d",
            "info": "Grid intrusion",
            "date": "2026-11-30",
            "threat_level_id": "1",
            "analysis": "1",
            "distribution": "0",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                {
                    "type": "ip-dst",
                    "category": "Network activity",
                    "value": "198.51.100.23",
                    "to_ids": True,
                    "uuid": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
                },
                {
                    "type": "md5",
                    "category": "Payload delivery",
                    "value": "44D88612FEA8A8F36DE82E1278ABB02F",
                    "to_ids": False,
                    "uuid": "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
                    "Tag": [{"name": "tlp:amber"}],
                },
            ],
        }
    }
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators/import", {"format": "misp", "content": json.dumps(event)}
    )
    assert resp.status_code == 201, resp.content
    stored = {i.type: (i.value, i.tlp, i.for_detection) for i in Indicator.objects.all()}
    assert stored["ipv4"] == ("198.51.100.23", "green", True)
    assert stored["md5"] == ("44d88612fea8a8f36de82e1278abb02f", "amber", False)
    event["Event"]["Attribute"][0]["category"] = "Financial fraud"  # ip-dst is not allowed there
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators/import",
        {"format": "misp", "content": json.dumps(event)},
    )
    assert resp.status_code == 422 and Indicator.objects.count() == 2


def test_a_shared_indicator_is_told_only_to_those_who_see_both_engagements(
    federation: Federation,
) -> None:
    fed = federation
    first = accepted_engagement(fed, "amber", helper="de")
    second = accepted_engagement(fed, "amber", helper="fr")
    fed.api("de").post(f"/engagements/{first}/indicators", {"value": "203.0.113.50"})
    resp = fed.api("fr").post(f"/engagements/{second}/indicators", {"value": "203.0.113.50/32"})
    assert resp.status_code == 201, resp.content
    assert Correlation.objects.count() == 1
    # EE takes part in both: it is told, from either side, which engagement shares the address.
    seen = fed.api("ee").get(f"/engagements/{first}/correlations").json()
    assert [c["other_engagement_id"] for c in seen] == [second]
    seen = fed.api("ee").get(f"/engagements/{second}/correlations").json()
    assert [c["other_engagement_id"] for c in seen] == [first]
    # DE and FR each see one side only: they learn nothing of the other engagement.
    assert fed.api("de").get(f"/engagements/{first}/correlations").json() == []
    assert fed.api("fr").get(f"/engagements/{second}/correlations").json() == []
    assert fed.api("us").get(f"/engagements/{first}/correlations").status_code == 404


def test_the_stix_export_validates_and_holds_only_what_the_caller_may_read(
    federation: Federation,
) -> None:
    from stix2validator import ValidationOptions, validate_instance

    fed = federation
    eng = accepted_engagement(fed, "red")
    de = fed.api("de")
    resp = de.post(f"/engagements/{eng}/indicators", {"value": "203.0.113.77", "tlp": "green"})
    assert resp.status_code == 201
    de.post(f"/engagements/{eng}/indicators", {"value": "red.evil.example", "tlp": "red"})
    de.post(f"/engagements/{eng}/notes", {"body": "Amber note", "tlp": "amber"})
    member = de.get(f"/engagements/{eng}/export/stix")
    assert member.status_code == 200, member.content
    bundle = member.json()
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
    assert not result.warnings, [str(w) for w in result.warnings]
    text = json.dumps(bundle)
    assert "203.0.113.77" in text and "red.evil.example" in text
    assert rfa_body()["title"] in text  # the liaison is a named member: RED content
    for obj in bundle["objects"]:
        if obj["type"] != "marking-definition":
            assert obj.get("object_marking_refs"), obj["id"]
    # DE's analyst takes part but is not named: no RED indicator, no RED request content.
    analyst = json.dumps(fed.api("de_analyst").get(f"/engagements/{eng}/export/stix").json())
    assert "203.0.113.77" in analyst and "red.evil.example" not in analyst
    assert rfa_body()["title"] not in analyst and rfa_body()["description"] not in analyst
    # Outside the engagement: nothing, exactly as for an engagement that does not exist.
    assert fed.api("fr").get(f"/engagements/{eng}/export/stix").status_code == 404
    assert fed.api("coordinator").get(f"/engagements/{eng}/export/stix").status_code == 403


def test_the_misp_export_loads_in_pymisp_and_round_trips(federation: Federation) -> None:
    from pymisp import MISPEvent

    fed = federation
    eng = accepted_engagement(fed, "amber")
    de = fed.api("de")
    de.post(f"/engagements/{eng}/indicators", {"value": "198.51.100.99", "tlp": "green"})
    de.post(f"/engagements/{eng}/indicators", {"value": "bad.example", "for_detection": False})
    resp = de.get(f"/engagements/{eng}/export/misp")
    assert resp.status_code == 200, resp.content
    exported = resp.content.decode()
    event = MISPEvent()
    event.from_dict(**json.loads(exported))  # PyMISP takes its input apart: give it a copy
    values = {a.value: a for a in event.attributes}
    assert set(values) == {"198.51.100.99", "bad.example"}
    assert values["bad.example"].to_ids is False
    assert "tlp:amber" in {t.name for t in event.tags}
    assert int(event.distribution) <= 1  # AMBER: this community at the widest
    # Back into another engagement: every indicator keeps its value and its TLP.
    other = accepted_engagement(fed, "amber", helper="fr")
    resp = fed.api("fr").post(
        f"/engagements/{other}/indicators/import",
        {"format": "misp", "content": exported},
    )
    assert resp.status_code == 201, resp.content
    back = {i.value: i.tlp for i in Indicator.objects.filter(engagement_id=other)}
    assert back == {"198.51.100.99": "green", "bad.example": "amber"}


def _told(fed: Federation, kind: str) -> set[str]:
    from vcisc.notify.models import InAppNotification

    names = {o.pk: key for key, o in fed.orgs.items()}
    return {names[n.organisation_id] for n in InAppNotification.objects.filter(kind=kind)}


@pytest.mark.parametrize(
    ("tlp", "participants_told", "secretariat_told"),
    [("amber", {"ee"}, False), ("green", {"ee"}, True), ("red", set(), False)],
)
def test_a_correlation_is_told_to_exactly_those_who_may_know_both_sides(
    federation: Federation, tlp: str, participants_told: set[str], secretariat_told: bool
) -> None:
    from vcisc.notify.models import OutboxMessage

    fed = federation
    first = accepted_engagement(fed, tlp, helper="de")
    second = accepted_engagement(fed, tlp, helper="fr")
    value = "shared.evil.example"
    for who, eng in (("de", first), ("fr", second)):
        # (At TLP:RED the offering liaisons may write: they are the engagements' named members.)
        resp = fed.api(who).post(f"/engagements/{eng}/indicators", {"value": value, "tlp": tlp})
        assert resp.status_code == 201, resp.content
    assert _told(fed, "indicator.correlated") == participants_told
    assert _told(fed, "engagements.related") == ({"secretariat"} if secretariat_told else set())
    # DE and FR never hear of each other's engagement, nor of the other request.
    for msg in OutboxMessage.objects.filter(
        kind__in=["indicator.correlated", "engagements.related"]
    ):
        assert msg.organisation_id not in (fed.orgs["de"].pk, fed.orgs["fr"].pk)
        assert msg.tlp == tlp
    if participants_told:
        msg = OutboxMessage.objects.filter(kind="indicator.correlated").first()
        assert msg is not None and value in msg.body


def test_a_red_engagement_is_not_exported_to_misp(federation: Federation) -> None:
    """MISP's narrowest distribution (one organisation) is wider than TLP:RED's named people:
    the export is refused with the reason, never a 500 (found by the leak hunt)."""
    fed = federation
    eng = accepted_engagement(fed, "red")
    resp = fed.api("de").get(f"/engagements/{eng}/export/misp")
    assert resp.status_code == 409 and "STIX" in resp.json()["detail"]
    assert fed.api("de").get(f"/engagements/{eng}/export/stix").status_code == 200


def test_an_address_inside_another_engagements_network_is_correlated(
    federation: Federation,
) -> None:
    """CIDR containment: an address (or smaller network) of one engagement inside a network of
    another, whichever came first; shown to those who may read both, like equality."""
    fed = federation
    first = accepted_engagement(fed, "amber", helper="de")
    second = accepted_engagement(fed, "amber", helper="fr")
    for value in ("198.51.100.0/24", "2001:db8::/32", "203.0.113.9"):
        assert (
            fed.api("de").post(f"/engagements/{first}/indicators", {"value": value}).status_code
            == 201
        )
    body = {"format": "text", "content": "seen 198.51.100.77, 2001:db8:1::5, 203.0.113.0/28"}
    resp = fed.api("fr").post(f"/engagements/{second}/indicators/import", body)
    assert resp.status_code == 201, resp.content
    assert resp.json()["correlations"] == 3
    pairs = {
        (c["value"], c["other_value"], c["relation"])
        for c in fed.api("ee").get(f"/engagements/{second}/correlations").json()
    }
    assert pairs == {
        ("198.51.100.77", "198.51.100.0/24", "within"),
        ("2001:db8:1::5", "2001:db8::/32", "within"),
        ("203.0.113.0/28", "203.0.113.9", "within"),
    }
    # Not inside: nothing. The same value stays an equality correlation, not containment.
    fed.api("fr").post(f"/engagements/{second}/indicators", {"value": "198.51.101.1"})
    fed.api("fr").post(f"/engagements/{second}/indicators", {"value": "203.0.113.9/32"})
    relations = [c.relation for c in Correlation.objects.order_by("created_at", "pk")]
    assert relations == ["within"] * 3 + ["same"]
    # DE and FR, each in one engagement only, see neither side of the other.
    assert fed.api("de").get(f"/engagements/{first}/correlations").json() == []
