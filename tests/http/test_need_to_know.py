"""Need-to-know: who learns what about a request, by TLP, participation and role (authz)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Federation, offer_body, rfa_body
from vcisc.notify.models import OutboxMessage

pytestmark = pytest.mark.django_db


def _circulate(fed: Federation, tlp: str, to: list[str]) -> int:
    ee, coord = fed.api("ee"), fed.api("coordinator")
    rid: int = ee.post("/requests", rfa_body(tlp=tlp, submit=True)).json()["id"]
    assert coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"}).status_code == 200
    resp = coord.post(f"/requests/{rid}/routes", {"organisations": [fed.orgs[k].pk for k in to]})
    assert resp.status_code == 200, resp.content
    return rid


def _accept(fed: Federation, rid: int, org: str) -> dict[str, Any]:
    offer = fed.api(org).post(f"/requests/{rid}/offers", offer_body()).json()
    assert fed.api("ee").post(f"/offers/{offer['id']}/accept").status_code == 200
    data: dict[str, Any] = fed.api("ee").get(f"/requests/{rid}").json()
    return data


def test_red_content_reaches_only_named_participants(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "red", ["de", "fr"])
    title = rfa_body()["title"]
    # The requester sees everything; secretariat and routed nations only routing metadata.
    assert fed.api("ee").get(f"/requests/{rid}").json()["title"] == title
    for who in ("coordinator", "de", "fr"):
        seen = fed.api(who).get(f"/requests/{rid}").json()
        assert seen["access"] == "metadata" and seen["title"] is None
        assert seen["description"] is None and seen["affected_entity"] is None
        assert seen["sector"] == "energy/electricity"  # routing metadata stays visible
    # Routing notifications of a RED request carry no content.
    bodies = " ".join(m.subject + m.body + str(m.payload) for m in OutboxMessage.objects.all())
    assert title not in bodies and "Elering" not in bodies
    # Once DE's offer is accepted, its offering liaison is a named member and reads the content…
    eng_id = _accept(fed, rid, "de")["engagement_id"]
    assert fed.api("de").get(f"/requests/{rid}").json()["title"] == title
    # …its colleague is not named, so still sees metadata, until DE's liaison names them.
    assert fed.api("de_analyst").get(f"/requests/{rid}").json()["title"] is None
    resp = fed.api("de").post(
        f"/engagements/{eng_id}/members", {"user_id": fed.users["de_analyst"].pk}
    )
    assert resp.status_code == 201
    assert fed.api("de_analyst").get(f"/requests/{rid}").json()["title"] == title
    # FR was not accepted: metadata only. The secretariat: metadata only.
    assert fed.api("fr").get(f"/requests/{rid}").json()["title"] is None
    assert fed.api("coordinator").get(f"/requests/{rid}").json()["title"] is None


def test_amber_content_reaches_the_involved_organisations(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "amber", ["de"])
    for who in ("coordinator", "de", "de_analyst"):
        assert fed.api(who).get(f"/requests/{rid}").json()["access"] == "content"
    msg = OutboxMessage.objects.get(organisation=fed.orgs["de"])
    assert rfa_body()["title"] in msg.body
    assert fed.api("fr").get(f"/requests/{rid}").status_code == 404


def test_red_items_in_an_engagement_are_for_members_only(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "amber", ["de"])
    eng_id = _accept(fed, rid, "de")["engagement_id"]
    ee = fed.api("ee")
    assert (
        ee.post(f"/engagements/{eng_id}/notes", {"body": "green note", "tlp": "green"}).status_code
        == 201
    )
    assert (
        ee.post(f"/engagements/{eng_id}/notes", {"body": "red note", "tlp": "red"}).status_code
        == 201
    )
    assert [n["body"] for n in fed.api("de").get(f"/engagements/{eng_id}/notes").json()] == [
        "green note",
        "red note",
    ]
    # A participant's analyst who is not a named member does not get the RED note.
    analyst = fed.api("de_analyst").get(f"/engagements/{eng_id}/notes").json()
    assert [n["body"] for n in analyst] == ["green note"]
    # …and may not write RED material either.
    resp = fed.api("de_analyst").post(f"/engagements/{eng_id}/notes", {"body": "x", "tlp": "red"})
    assert resp.status_code == 403
    # The secretariat sees the engagement's metadata, not its workspace.
    coord = fed.api("coordinator")
    assert coord.get(f"/engagements/{eng_id}").json()["access"] == "metadata"
    assert coord.get(f"/engagements/{eng_id}/notes").json() == []


def test_drafts_are_the_requesters_alone(federation: Federation) -> None:
    rid = federation.api("ee").post("/requests", rfa_body()).json()["id"]
    for who in ("coordinator", "de", "us", "admin", "am"):
        assert federation.api(who).get(f"/requests/{rid}").status_code == 404
        assert federation.api(who).get("/requests").json()["count"] == 0


def test_counts_and_lists_only_show_involved_requests(federation: Federation) -> None:
    fed = federation
    first = _circulate(fed, "green", ["de", "fr"])
    _circulate(fed, "green", ["fr"])
    assert fed.api("de").get("/requests").json()["count"] == 1
    assert fed.api("fr").get("/requests").json()["count"] == 2
    assert fed.api("coordinator").get("/requests").json()["count"] == 2
    assert fed.api("ee").get("/requests").json()["count"] == 2
    assert fed.api("us").get("/requests").json()["count"] == 0
    assert fed.api("de").get("/requests?state=circulated").json()["count"] == 1

    # Who else was routed is not told to a routed organisation; requester and secretariat know.
    def routed_to(who: str) -> set[str]:
        return {r["organisation"] for r in fed.api(who).get(f"/requests/{first}/routes").json()}

    assert routed_to("de") == {"CERT-Bund"}
    assert routed_to("fr") == {"ANSSI"}
    assert routed_to("coordinator") == routed_to("ee") == {"CERT-Bund", "ANSSI"}


def test_other_offers_stay_private(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "green", ["de", "fr"])
    de_offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()
    assert fed.api("fr").get(f"/offers/{de_offer['id']}").status_code == 404
    assert fed.api("us").get(f"/offers/{de_offer['id']}").status_code == 404
    assert fed.api("fr").post(f"/offers/{de_offer['id']}/withdraw").status_code == 404
    assert fed.api("coordinator").get(f"/offers/{de_offer['id']}").status_code == 200


@pytest.mark.parametrize(
    "who,action,status",
    [
        ("ee_analyst", "submit", 403),  # needs the liaison role
        ("coordinator", "submit", 404),  # drafts are invisible to the secretariat
        ("de", "submit", 404),
    ],
)
def test_who_may_submit(federation: Federation, who: str, action: str, status: int) -> None:
    rid = federation.api("ee").post("/requests", rfa_body()).json()["id"]
    resp = federation.api(who).post(f"/requests/{rid}/transitions", {"action": action})
    assert resp.status_code == status


@pytest.mark.parametrize(
    "who,status", [("ee", 403), ("de", 404), ("admin", 404), ("coordinator", 200)]
)
def test_only_the_secretariat_triages(federation: Federation, who: str, status: int) -> None:
    rid = federation.api("ee").post("/requests", rfa_body(submit=True)).json()["id"]
    resp = federation.api(who).post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    assert resp.status_code == status


def test_only_the_requester_accepts_offers(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "green", ["de"])
    offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()
    assert fed.api("de").post(f"/offers/{offer['id']}/accept").status_code == 403
    assert fed.api("coordinator").post(f"/offers/{offer['id']}/accept").status_code == 403
    assert fed.api("ee_analyst").post(f"/offers/{offer['id']}/accept").status_code == 403
    assert fed.api("ee").post(f"/offers/{offer['id']}/accept").status_code == 200


def test_matching_is_for_coordinators(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "green", ["de"])
    assert fed.api("de").get(f"/requests/{rid}/matches").status_code == 403
    assert fed.api("us").get(f"/requests/{rid}/matches").status_code == 404
    assert fed.api("coordinator").get(f"/requests/{rid}/matches").status_code == 200


def test_observers_and_partners_rights(federation: Federation) -> None:
    fed = federation
    # Observer nations file no requests and see no contacts or capabilities.
    assert fed.api("am").post("/requests", rfa_body()).status_code == 403
    assert fed.api("am").get("/capabilities").status_code == 403
    assert fed.api("am").get("/nations").status_code == 200
    # Partners may request.
    assert fed.api("ua").post("/requests", rfa_body()).status_code == 201


def test_directory_rights(federation: Federation) -> None:
    fed = federation
    de_cap = fed.api("de").get(f"/capabilities?organisation={fed.orgs['de'].pk}").json()["items"][0]
    fr_cap = fed.api("fr").get(f"/capabilities?organisation={fed.orgs['fr'].pk}").json()["items"][0]
    # A liaison edits its own organisation's catalogue, not another's.
    assert (
        fed.api("de").patch(f"/capabilities/{de_cap['id']}", {"max_concurrent": 5}).status_code
        == 200
    )
    assert (
        fed.api("de").patch(f"/capabilities/{fr_cap['id']}", {"max_concurrent": 5}).status_code
        == 403
    )
    assert (
        fed.api("de_analyst").patch(f"/capabilities/{de_cap['id']}", {"depth": "basic"}).status_code
        == 403
    )
    # Only operators manage nations and organisations.
    assert (
        fed.api("de")
        .post("/nations", {"code": "IS", "name": "Iceland", "kind": "member"})
        .status_code
        == 403
    )
    assert (
        fed.api("admin")
        .post("/nations", {"code": "IS", "name": "Iceland", "kind": "member"})
        .status_code
        == 201
    )
    assert (
        fed.api("coordinator")
        .post("/organisations", {"name": "CERT-IS", "kind": "cert", "nation": "IS"})
        .status_code
        == 201
    )
    # Users: admins manage everyone, others see only their colleagues.
    assert {u["email"] for u in fed.api("de").get("/users").json()["items"]} == {
        "liaison@cert-bund.de.example",
        "analyst@cert-bund.de.example",
    }
    assert fed.api("de").get(f"/users/{fed.users['fr'].pk}").status_code == 404
    assert (
        fed.api("de")
        .post(
            "/users",
            {"email": "x@de.example", "organisation_id": fed.orgs["de"].pk, "roles": ["admin"]},
        )
        .status_code
        == 403
    )
    # Deactivation keeps the row and audit trail.
    assert fed.api("de").post(f"/capabilities/{de_cap['id']}/deactivate").json()["active"] is False


def test_free_text_in_the_timeline_follows_content_access(federation: Federation) -> None:
    fed = federation
    rid = _circulate(fed, "red", ["de"])
    offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()
    secret = "the Narva substation is still down"
    resp = fed.api("ee").post(f"/offers/{offer['id']}/decline", {"reason": secret})
    assert resp.status_code == 200

    def details(who: str) -> list[object]:
        entries = fed.api(who).get(f"/requests/{rid}/timeline").json()
        return [e["detail"] for e in entries if e["kind"] == "offer.decline"]

    assert details("ee") == [secret]
    assert details("de") == [None]  # DE learns its offer was declined, not the RED reasoning
    assert details("coordinator") == [None]
