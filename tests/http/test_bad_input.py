"""Bad input gets a 4xx naming the field and the problem, and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Federation, offer_body, rfa_body
from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.audit.models import AuditRecord

pytestmark = pytest.mark.django_db


def _unchanged(fn: Any) -> Any:
    before = (
        RequestForAssistance.objects.count(),
        Offer.objects.count(),
        AuditRecord.objects.count(),
    )
    resp = fn()
    after = (
        RequestForAssistance.objects.count(),
        Offer.objects.count(),
        AuditRecord.objects.count(),
    )
    assert before == after
    return resp


def _fields(resp: Any) -> str:
    return str(resp.json()["detail"])


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"urgency": "yesterday"}, "urgency"),
        ({"tlp": "purple"}, "tlp"),
        ({"severity": 9}, "severity"),
        ({"severity": "high"}, "severity"),
        ({"services_needed": ["hacking-back"]}, "services_needed"),
        ({"services_needed": []}, "services_needed"),
        ({"title": "x" * 201}, "title"),
        ({"description": "x" * 20001}, "description"),
        ({"languages": ["English"]}, "languages"),
        ({"excluded_nations": ["est"]}, "excluded_nations"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_schema_errors_name_the_field(
    federation: Federation, overrides: dict[str, Any], field: str
) -> None:
    resp = _unchanged(lambda: federation.api("ee").post("/requests", rfa_body(**overrides)))
    assert resp.status_code == 422
    assert field in _fields(resp)


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"sector": "agriculture"}, "sector"),
        ({"rsit_class": "nonsense"}, "rsit_class"),
        ({"rsit_type": "ddos"}, "rsit_type"),  # ddos is availability, not malicious-code
        ({"ics_protocols": ["carrier-pigeon"]}, "ics_protocols"),
        ({"legal_requirements": ["no-lawyers"]}, "legal_requirements"),
        ({"excluded_organisations": [999999]}, "excluded_organisations"),
    ],
)
def test_domain_errors_name_the_field(
    federation: Federation, overrides: dict[str, Any], field: str
) -> None:
    resp = _unchanged(lambda: federation.api("ee").post("/requests", rfa_body(**overrides)))
    assert resp.status_code == 422
    assert resp.json()["field"] == field


def test_missing_field(federation: Federation) -> None:
    body = rfa_body()
    del body["sector"]
    resp = _unchanged(lambda: federation.api("ee").post("/requests", body))
    assert resp.status_code == 422 and "sector" in _fields(resp)


def test_not_json(federation: Federation) -> None:
    api = federation.api("ee")
    resp = _unchanged(
        lambda: api.client.post(
            "/api/v1/requests",
            data="{nope",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api.token}",
        )
    )
    assert 400 <= resp.status_code < 500


def test_unknown_transition(federation: Federation) -> None:
    ee = federation.api("ee")
    rid = ee.post("/requests", rfa_body()).json()["id"]
    resp = _unchanged(lambda: ee.post(f"/requests/{rid}/transitions", {"action": "teleport"}))
    assert resp.status_code == 422 and resp.json()["field"] == "action"


def test_offer_on_a_request_the_organisation_cannot_see(federation: Federation) -> None:
    ee, coord = federation.api("ee"), federation.api("coordinator")
    rid = ee.post("/requests", rfa_body(submit=True)).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    coord.post(f"/requests/{rid}/routes", {"organisations": [federation.orgs["de"].pk]})
    resp = _unchanged(lambda: federation.api("fr").post(f"/requests/{rid}/offers", offer_body()))
    assert resp.status_code == 404
    assert "request" in resp.json()["detail"] and "CERT-EE" not in resp.content.decode()


def test_offer_window_must_be_ordered(federation: Federation) -> None:
    ee, coord, de = federation.api("ee"), federation.api("coordinator"), federation.api("de")
    rid = ee.post("/requests", rfa_body(submit=True)).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    coord.post(f"/requests/{rid}/routes", {"organisations": [federation.orgs["de"].pk]})
    body = offer_body()
    body["available_until"], body["available_from"] = (
        body["available_from"],
        body["available_until"],
    )
    resp = _unchanged(lambda: de.post(f"/requests/{rid}/offers", body))
    assert resp.status_code == 422 and resp.json()["field"] == "available_until"
    resp = _unchanged(lambda: de.post(f"/requests/{rid}/offers", offer_body(team_size=0)))
    assert resp.status_code == 422 and "team_size" in _fields(resp)


def test_routing_to_an_excluded_nation_is_refused(federation: Federation) -> None:
    ee, coord = federation.api("ee"), federation.api("coordinator")
    rid = ee.post("/requests", rfa_body(submit=True, excluded_nations=["US"])).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    resp = _unchanged(
        lambda: coord.post(f"/requests/{rid}/routes", {"organisations": [federation.orgs["us"].pk]})
    )
    assert resp.status_code == 422 and "excluded by the requester" in resp.json()["detail"]
    assert RequestForAssistance.objects.get(pk=rid).state == "triage"


def test_directory_errors(federation: Federation) -> None:
    admin = federation.api("admin")
    assert admin.post("/nations", {"code": "xx", "name": "X", "kind": "member"}).status_code == 422
    dup = admin.post("/nations", {"code": "EE", "name": "Estonia again", "kind": "member"})
    assert dup.status_code == 422 and dup.json()["field"] == "code"
    bad = admin.post(
        "/contacts",
        {
            "organisation_id": federation.orgs["de"].pk,
            "name": "Night desk",
            "email": "n@de.example",
            "on_call": "weekdays 9-5",
        },
    )
    assert bad.status_code == 422 and bad.json()["field"] == "on_call"
    bad = admin.post(
        "/contacts",
        {
            "organisation_id": federation.orgs["de"].pk,
            "name": "Desk",
            "email": "n@de.example",
            "time_zone": "Mars/Olympus",
        },
    )
    assert bad.status_code == 422 and bad.json()["field"] == "time_zone"
    bad = admin.post(
        "/capabilities",
        {
            "organisation_id": federation.orgs["de"].pk,
            "service_type": "incident-response",
            "sectors": ["farming"],
        },
    )
    assert bad.status_code == 422 and bad.json()["field"] == "sectors"


def test_nul_characters_are_refused_with_a_reason_everywhere(federation: Federation) -> None:
    """PostgreSQL cannot store U+0000: text with it is a clear 422 in bodies and query strings,
    never a 500 (found by the fuzzer once engagement ids could no longer be guessed)."""
    api = federation.api("ee")
    before = RequestForAssistance.objects.count()
    resp = api.post("/requests", rfa_body(title="Ransom\x00ware"))
    assert resp.status_code == 422 and "NUL" in resp.text
    resp = api.post("/requests", rfa_body(languages=["et\x00"]))
    assert resp.status_code == 422 and "NUL" in resp.text
    assert RequestForAssistance.objects.count() == before
    resp = api.get("/organisations?q=cert%00")
    assert resp.status_code == 422 and "NUL" in resp.text
