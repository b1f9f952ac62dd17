"""Leaks the leak hunt found in the application, each pinned by a small test of its own."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from django.test import Client

from tests.conftest import Federation, offer_body, rfa_body
from vcisc import authz
from vcisc.assistance.models import RequestForAssistance

pytestmark = pytest.mark.django_db


def _signed_in(fed: Federation, who: str) -> Client:
    client = Client()
    client.force_login(fed.users[who])
    return client


def _events(client: Client) -> str:
    response: Any = client.get("/events/", {"once": "1", "since": "0"})
    return b"".join(response.streaming_content).decode()


def test_a_draft_withdrawn_before_submission_stays_the_requesters(federation: Federation) -> None:
    """Found by the hunt: the secretariat saw a request that was never submitted — listed, by id
    (with its content, below TLP:RED) and in the live events — once the requester withdrew the
    draft, because the rule tested "not a draft" instead of "was submitted"."""
    fed = federation
    rid = fed.api("ee").post("/requests", rfa_body(tlp="green")).json()["id"]
    resp = fed.api("ee").post(f"/requests/{rid}/transitions", {"action": "withdraw"})
    assert resp.json()["state"] == "withdrawn"
    coordinator = fed.api("coordinator")
    assert coordinator.get("/requests").json()["count"] == 0
    absent = uuid4()
    missing = coordinator.get(f"/requests/{absent}")
    hidden = coordinator.get(f"/requests/{rid}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace(str(absent), str(rid))
    assert _signed_in(fed, "coordinator").get(f"/requests/{rid}/").status_code == 404
    reference = RequestForAssistance.objects.get(pk=rid).reference
    assert reference not in _events(_signed_in(fed, "coordinator"))
    user = fed.users["coordinator"]
    assert not authz.Viewer.of(user).sees(RequestForAssistance.objects.get(pk=rid))
    # The requester still has it.
    assert fed.api("ee").get("/requests").json()["count"] == 1


def test_an_offer_decision_reason_follows_content_access(federation: Federation) -> None:
    """Found by the hunt: the requester's reason for accepting or declining an offer is free
    text about a request — the timeline shows it only to users with content access — but
    ``GET /offers/{id}`` and ``GET /requests/{id}/offers`` gave it to the offering organisation
    and to the secretariat on a TLP:RED request, where they read the routing metadata only."""
    fed = federation
    ee, coord = fed.api("ee"), fed.api("coordinator")
    rid = ee.post("/requests", rfa_body(tlp="red", submit=True)).json()["id"]
    assert coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"}).status_code == 200
    route = {"organisations": [fed.orgs["de"].pk, fed.orgs["fr"].pk]}
    assert coord.post(f"/requests/{rid}/routes", route).status_code == 200
    de_offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()["id"]
    fr_offer = fed.api("fr").post(f"/requests/{rid}/offers", offer_body()).json()["id"]
    accept = "the Narva substation needs you on site"
    decline = "the Narva substation is still down"
    assert ee.post(f"/offers/{de_offer}/accept", {"reason": accept}).status_code == 200
    assert ee.post(f"/offers/{fr_offer}/decline", {"reason": decline}).status_code == 200

    def reasons(who: str, offer: int) -> list[object]:
        one = fed.api(who).get(f"/offers/{offer}").json()["decision_reason"]
        listed = fed.api(who).get(f"/requests/{rid}/offers").json()
        return [one, *(o["decision_reason"] for o in listed if o["id"] == offer)]

    # Metadata readers of the RED request: the declined organisation, the secretariat, and the
    # accepted organisation's colleague who is not a named member.
    assert reasons("fr", fr_offer) == [None, None]
    assert reasons("coordinator", fr_offer) == [None, None]
    assert reasons("coordinator", de_offer) == [None, None]
    assert reasons("de_analyst", de_offer) == [None, None]
    # Content readers: the requester; the accepted offer's liaison, now a named member.
    assert reasons("ee", fr_offer) == [decline, decline]
    assert reasons("de", de_offer) == [accept, accept]
