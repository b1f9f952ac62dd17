"""One RFA through every state by API: requester (EE), secretariat, two offering nations (DE, FR),
and at every step a third, uninvolved nation (US) that must see nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import Federation, offer_body, rfa_body


def _uninvolved_sees_nothing(fed: Federation, rfa_id: int, eng_id: int | None = None) -> None:
    us = fed.api("us")
    listing = us.get("/requests").json()
    assert listing == {"count": 0, "items": []}
    assert us.get(f"/requests/{rfa_id}").status_code == 404
    assert us.get(f"/requests/{rfa_id}/timeline").status_code == 404
    assert us.get(f"/requests/{rfa_id}/offers").status_code == 404
    assert us.get(f"/requests/{rfa_id}/routes").status_code == 404
    assert us.get("/engagements").json() == []
    assert us.get("/metrics/requests").json() == []
    assert us.get("/metrics/nations").json() == []
    if eng_id is not None:
        for path in ("", "/tasks", "/notes", "/sitreps", "/review", "/timeline"):
            assert us.get(f"/engagements/{eng_id}{path}").status_code == 404
    # The observer nation sees nothing either.
    assert fed.api("am").get("/requests").json()["count"] == 0


def _state(resp: Any, expected: str) -> dict[str, Any]:
    assert resp.status_code in (200, 201), resp.content
    data: dict[str, Any] = resp.json()
    assert data["state"] == expected, data
    return data


def test_one_request_through_every_state(federation: Federation) -> None:
    fed = federation
    ee, coord, de, fr = fed.api("ee"), fed.api("coordinator"), fed.api("de"), fed.api("fr")

    # DRAFT: only the requesting organisation knows.
    rfa = _state(ee.post("/requests", rfa_body()), "draft")
    rid = rfa["id"]
    assert rfa["access"] == "content" and rfa["deadlines"] == {}
    assert coord.get(f"/requests/{rid}").status_code == 404
    _uninvolved_sees_nothing(fed, rid)

    # SUBMITTED: deadlines derived from severity 4 (triage 2 h, offer 8 h, acceptance 24 h).
    rfa = _state(ee.post(f"/requests/{rid}/transitions", {"action": "submit"}), "submitted")
    clocks = rfa["deadlines"]
    assert {k: v["state"] for k, v in clocks.items()} == {
        "triage": "running",
        "first-offer": "running",
        "acceptance": "running",
    }
    assert coord.get(f"/requests/{rid}").json()["access"] == "content"  # TLP:AMBER
    _uninvolved_sees_nothing(fed, rid)

    # An illegal step answers 409 naming the allowed ones.
    resp = ee.post(f"/requests/{rid}/transitions", {"action": "close"})
    assert resp.status_code == 409
    assert resp.json()["allowed"] == ["start-triage", "withdraw"]

    # TRIAGE ⇄ NEEDS_INFO.
    _state(coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"}), "triage")
    _state(
        coord.post(
            f"/requests/{rid}/transitions",
            {"action": "request-info", "reason": "Which RTU vendor?"},
        ),
        "needs-info",
    )
    _state(ee.patch(f"/requests/{rid}", {"ics_vendors": ["siemens"]}), "needs-info")
    _state(ee.post(f"/requests/{rid}/transitions", {"action": "provide-info"}), "triage")
    _uninvolved_sees_nothing(fed, rid)

    # Matching: DE ranks first (expert IR + ICS, IEC 104, energy); the requester is filtered out.
    matches = coord.get(f"/requests/{rid}/matches").json()
    ranked = [c["organisation"] for c in matches["candidates"]]
    assert ranked[0] == "CERT-Bund"
    assert "CERT-EE" in {e["organisation"] for e in matches["excluded"]}
    assert all(c["reasons"] for c in matches["candidates"])

    # CIRCULATED: routed to DE and FR only (the secretariat picks), one message per contact.
    routed = coord.post(
        f"/requests/{rid}/routes", {"organisations": [fed.orgs["de"].pk, fed.orgs["fr"].pk]}
    )
    assert routed.status_code == 200, routed.content
    assert routed.json()["rfa"]["state"] == "circulated"
    assert routed.json()["notifications_queued"] == 2
    assert de.get(f"/requests/{rid}").json()["title"] == rfa_body()["title"]
    assert [r["organisation"] for r in de.get(f"/requests/{rid}/routes").json()] == ["CERT-Bund"]
    _uninvolved_sees_nothing(fed, rid)

    # The uninvolved nation cannot offer: it does not know the request exists.
    assert fed.api("us").post(f"/requests/{rid}/offers", offer_body()).status_code == 404

    # Two nations offer; each sees only its own offer, the requester sees both.
    de_offer = de.post(
        f"/requests/{rid}/offers", offer_body(services=["incident-response", "ics-ot-expertise"])
    )
    fr_offer = fr.post(f"/requests/{rid}/offers", offer_body(scope="Malware RE of the encryptor"))
    assert de_offer.status_code == 201 and fr_offer.status_code == 201
    assert len(ee.get(f"/requests/{rid}/offers").json()) == 2
    assert [o["organisation"] for o in fr.get(f"/requests/{rid}/offers").json()] == ["ANSSI"]
    rfa = ee.get(f"/requests/{rid}").json()
    assert rfa["deadlines"]["first-offer"]["state"] == "met"
    _uninvolved_sees_nothing(fed, rid)

    # OFFER_ACCEPTED: the requester accepts DE and declines FR.
    resp = ee.post(f"/offers/{de_offer.json()['id']}/accept")
    assert resp.json()["state"] == "accepted"
    ee.post(f"/offers/{fr_offer.json()['id']}/decline", {"reason": "covered by CERT-Bund"})
    rfa = _state(ee.get(f"/requests/{rid}"), "offer-accepted")
    assert rfa["deadlines"]["acceptance"]["state"] == "met"
    eng_id = rfa["engagement_id"]
    assert eng_id is not None
    eng = de.get(f"/engagements/{eng_id}").json()
    assert {p["organisation"] for p in eng["participants"]} == {"CERT-EE", "CERT-Bund"}
    # FR was declined: it still sees the request it was routed, but not the engagement (who
    # helped is private to it).
    assert fr.get(f"/engagements/{eng_id}").status_code == 404
    assert fr.get(f"/engagements/{eng_id}/notes").status_code == 404
    _uninvolved_sees_nothing(fed, rid, eng_id)

    # ACTIVE: work happens in the engagement.
    _state(ee.post(f"/requests/{rid}/transitions", {"action": "activate"}), "active")
    task = de.post(
        f"/engagements/{eng_id}/tasks",
        {"title": "Image HMI workstations", "assignee_id": fed.orgs["de"].pk},
    )
    assert task.status_code == 201, task.content
    assert (
        de.patch(f"/engagements/{eng_id}/tasks/{task.json()['id']}", {"outcome": "ongoing"}).json()[
            "outcome"
        ]
        == "ongoing"
    )
    note = ee.post(f"/engagements/{eng_id}/notes", {"body": "VPN logs uploaded to the share."})
    sitrep = de.post(
        f"/engagements/{eng_id}/sitreps",
        {"summary": "Encryptor identified; no spread to OT.", "outlook": "improving"},
    )
    assert note.status_code == 201 and sitrep.status_code == 201
    assert [n["body"] for n in de.get(f"/engagements/{eng_id}/notes").json()] == [
        "VPN logs uploaded to the share."
    ]
    assert fr.get(f"/engagements/{eng_id}/sitreps").status_code == 404
    _uninvolved_sees_nothing(fed, rid, eng_id)

    # REPORTING, then CLOSED only with an after-action review.
    _state(ee.post(f"/requests/{rid}/transitions", {"action": "report"}), "reporting")
    resp = ee.post(f"/requests/{rid}/transitions", {"action": "close"})
    assert resp.status_code == 409 and "after-action review" in resp.json()["detail"]
    review = ee.post(
        f"/engagements/{eng_id}/review",
        {"what_helped": "IEC 104 expertise on call", "lessons": "Pre-agree data sharing"},
    )
    assert review.status_code == 201, review.content
    assert review.json()["hours"]["triage"] is not None
    rfa = _state(ee.post(f"/requests/{rid}/transitions", {"action": "close"}), "closed")
    assert rfa["allowed_actions"] == []
    assert de.get(f"/requests/{rid}/offers").json()[0]["state"] == "completed"
    _uninvolved_sees_nothing(fed, rid, eng_id)

    # Metrics: per request and per nation, over what the caller may see.
    figures = ee.get("/metrics/requests").json()
    assert [f["reference"] for f in figures] == [rfa["reference"]]
    assert all(v is not None for v in figures[0]["hours"].values())
    nations = coord.get("/metrics/nations").json()
    assert nations[0]["nation"] == "EE" and nations[0]["requests"] == 1

    # The timeline records the whole story for the requester; DE reads no FR entries.
    kinds = [e["kind"] for e in ee.get(f"/requests/{rid}/timeline").json()]
    assert "state.submit" in kinds and "state.close" in kinds and "offer" in kinds
    eng_kinds = [e["kind"] for e in de.get(f"/engagements/{eng_id}/timeline").json()]
    assert {"note", "sitrep", "task", "review"} <= set(eng_kinds)
    de_summaries = " ".join(e["summary"] for e in de.get(f"/requests/{rid}/timeline").json())
    assert "ANSSI" not in de_summaries


def test_withdraw_from_every_open_state(federation: Federation) -> None:
    ee, coord = federation.api("ee"), federation.api("coordinator")
    steps = [None, "submit", "start-triage"]
    for n in range(len(steps)):
        rid = ee.post("/requests", rfa_body(title=f"Withdraw me {n}")).json()["id"]
        for action in steps[1 : n + 1]:
            actor = ee if action == "submit" else coord
            assert actor.post(f"/requests/{rid}/transitions", {"action": action}).status_code == 200
        assert _state(ee.post(f"/requests/{rid}/transitions", {"action": "withdraw"}), "withdrawn")
        resp = ee.post(f"/requests/{rid}/transitions", {"action": "withdraw"})
        assert resp.status_code == 409 and resp.json()["allowed"] == []
