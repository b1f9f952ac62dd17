"""Matching against the stored catalogue: the facts it loads (load, on-call, past response times)
and the filters of the request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import Federation, offer_body, rfa_body
from vcisc.assistance.models import RequestForAssistance
from vcisc.federation import services as fs
from vcisc.federation.models import PointOfContact
from vcisc.matching.services import match

pytestmark = pytest.mark.django_db


def _routed(fed: Federation, orgs: list[str], **overrides: object) -> int:
    ee, coord = fed.api("ee"), fed.api("coordinator")
    rid: int = ee.post("/requests", rfa_body(submit=True, **overrides)).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    resp = coord.post(f"/requests/{rid}/routes", {"organisations": [fed.orgs[o].pk for o in orgs]})
    assert resp.status_code == 200, resp.content
    return rid


def _reason(fed: Federation, rid: int, org: str, factor: str) -> str:
    result = match(RequestForAssistance.objects.get(pk=rid), now=timezone.now())
    cand = next(c for c in result.candidates if c.organisation_id == fed.orgs[org].pk)
    return next(r.detail for r in cand.reasons if r.factor == factor)


def test_capacity_counts_open_engagements_only(federation: Federation) -> None:
    fed = federation
    rid = _routed(fed, ["de"])
    offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()
    fed.api("ee").post(f"/offers/{offer['id']}/accept")
    other = _routed(fed, ["fr"], title="Second incident")
    assert _reason(fed, other, "de", "capacity") == "2 of 3 concurrent engagements free"
    fed.api("ee").post(f"/requests/{rid}/transitions", {"action": "withdraw"})
    assert _reason(fed, other, "de", "capacity") == "3 of 3 concurrent engagements free"


def test_on_call_follows_the_contacts_rota(federation: Federation) -> None:
    fed = federation
    rid = _routed(fed, ["fr"])
    assert _reason(fed, rid, "de", "on-call") == "a point of contact is on call now"
    for contact in PointOfContact.objects.filter(organisation=fed.orgs["de"]):
        # A rota that never covers now: the hour that is furthest away today, in UTC.
        hour = (timezone.now().hour + 12) % 24
        fs.update(None, contact, {"on_call": f"mon-sun {hour:02d}:00-{hour:02d}:30"})
    assert _reason(fed, rid, "de", "on-call") == "no point of contact on call now"


def test_past_response_times_feed_back(federation: Federation) -> None:
    fed = federation
    rid = _routed(fed, ["de"])
    assert _reason(fed, rid, "de", "response-time") == "no past responses to judge by"
    fed.api("de").post(f"/requests/{rid}/offers", offer_body())
    other = _routed(fed, ["fr"], title="Second incident")
    assert _reason(fed, other, "de", "response-time").startswith("median 0.0 h")


def test_requester_exclusions_and_legal_requirements(federation: Federation) -> None:
    fed = federation
    rid = _routed(
        fed,
        ["fr"],
        excluded_nations=["DE"],
        legal_requirements=["eu-only-transfer"],
        services_needed=["incident-response", "law-enforcement-coordination"],
    )
    result = match(RequestForAssistance.objects.get(pk=rid), now=timezone.now())
    excluded = {e.organisation_name: e.reason for e in result.excluded}
    assert excluded["CERT-Bund"] == "nation DE excluded by the requester"
    assert excluded["BKA Cyber"] == "nation DE excluded by the requester"
    assert "outside the EU" in excluded["CISA"] and "outside the EU" in excluded["CERT-UA"]
    assert excluded["CERT-EE"] == "the requesting organisation itself"
    assert [c.organisation_name for c in result.candidates] == ["ANSSI"]


def test_deadline_clocks_breach_when_time_passes(federation: Federation) -> None:
    rid = federation.api("ee").post("/requests", rfa_body(submit=True, severity=5)).json()["id"]
    rfa = RequestForAssistance.objects.get(pk=rid)
    later = timezone.now() + timedelta(hours=2)
    clocks = rfa.clocks(later)
    assert clocks["triage"]["state"] == "breached"  # 1 h for an emergency
    assert clocks["first-offer"]["state"] == "running"  # 4 h


def test_routing_again_by_suggestion_takes_the_next_best(federation: Federation) -> None:
    fed = federation
    ee, coord = fed.api("ee"), fed.api("coordinator")
    rid = ee.post("/requests", rfa_body(submit=True)).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    first = coord.post(f"/requests/{rid}/routes", {"top": 1}).json()["routed"]
    second = coord.post(f"/requests/{rid}/routes", {"top": 1}).json()["routed"]
    assert [r["organisation"] for r in first] == ["CERT-Bund"]
    assert len(second) == 1 and second[0]["organisation"] != "CERT-Bund"


def test_the_secretariat_may_pick_an_organisation_without_the_services(
    federation: Federation,
) -> None:
    fed = federation
    rid = fed.api("ee").post("/requests", rfa_body(submit=True)).json()["id"]
    coord = fed.api("coordinator")
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    # BKA declares law-enforcement coordination only: not suggested, but may be picked…
    resp = coord.post(f"/requests/{rid}/routes", {"organisations": [fed.orgs["de_police"].pk]})
    assert resp.status_code == 200
    routed = resp.json()["routed"][0]
    assert routed["organisation"] == "BKA Cyber" and routed["suggested"] is False
    # …while an observer nation may not, whatever the secretariat thinks.
    resp = coord.post(f"/requests/{rid}/routes", {"organisations": [fed.orgs["am"].pk]})
    assert resp.status_code == 422 and "observer" in resp.json()["detail"]
