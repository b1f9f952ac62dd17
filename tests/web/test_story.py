"""The story driven through the pages: file, triage, route, offer, accept and decline, work in
the engagement, report, review and close — with the uninvolved US user seeing nothing throughout.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from django.test import Client

from tests.conftest import Federation
from tests.web.conftest import html, signed_in
from vcisc.assistance.models import Offer, RequestForAssistance

pytestmark = pytest.mark.django_db

TITLE = "Ransomware on grid operator SCADA"


def filing(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": TITLE,
        "affected_entity": "Elering AS",
        "description": "Operator workstations encrypted; RTU traffic anomalies on IEC 104.",
        "rsit_class": "malicious-code",
        "rsit_type": "infected-system",
        "sector": "energy/electricity",
        "severity": "4",
        "services_needed": ["incident-response", "ics-ot-expertise"],
        "urgency": "immediate",
        "tlp": "amber",
        "languages": "et, en",
        "ics_protocols": ["iec-60870-5-104"],
        "intent": "submit",
    }
    data.update(overrides)
    return data


def offering(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "scope": "Remote IR team for triage of SCADA hosts",
        "team_size": "3",
        "available_from": "2030-01-01T08:00",
        "available_until": "2030-01-08T18:00",
        "services": ["incident-response"],
        "remote": "on",
        "conditions": "",
    }
    data.update(overrides)
    return data


def post(client: Client, url: str, data: dict[str, Any], status: int = 302) -> str:
    resp = client.post(url, data)
    assert resp.status_code == status, (resp.status_code, resp.content[:2000])
    text: str = resp.content.decode()
    return text


def state(rid: int) -> str:
    return RequestForAssistance.objects.get(pk=rid).state


def test_the_story_through_the_pages(federation: Federation) -> None:
    fed = federation
    ee, coord = signed_in(fed, "ee"), signed_in(fed, "coordinator")
    de, fr, us = signed_in(fed, "de"), signed_in(fed, "fr"), signed_in(fed, "us")

    resp = ee.post("/requests/new/", filing())
    assert resp.status_code == 302
    rid = UUID(resp["Location"].rstrip("/").rsplit("/", 1)[1])
    rfa = RequestForAssistance.objects.get(pk=rid)
    ref = rfa.reference
    engagement_url: list[str] = []

    def us_sees_nothing() -> None:
        html(us, f"/requests/{rid}/", status=404)
        for url in engagement_url:
            html(us, url, status=404)
        home = html(us, "/")
        assert ref not in home and TITLE not in home
        # Nor can the US user act on it: the same 404.
        post(us, f"/requests/{rid}/actions/", {"action": "withdraw", "reason": "x"}, 404)

    us_sees_nothing()
    page = html(ee, f"/requests/{rid}/")
    assert "Withdraw the request" in page and "Start triage" not in page

    # The coordinator starts triage and routes to DE and FR from the matches.
    page = html(coord, f"/requests/{rid}/")
    assert "Start triage" in page and "Matches and routing" not in page
    post(coord, f"/requests/{rid}/actions/", {"action": "start-triage"})
    assert state(rid) == "triage"
    us_sees_nothing()
    page = html(coord, f"/requests/{rid}/")
    assert "Matches and routing" in page
    assert "CERT-Bund" in page and "ANSSI" in page
    assert "declares the energy/electricity sector" in page  # a reason, not just a score
    assert 'id="reason-reject"' in page and 'id="reason-request-info"' in page
    orgs = [fed.orgs["de"].pk, fed.orgs["fr"].pk]
    post(coord, f"/requests/{rid}/routes/", {"organisations": orgs, "intent": "picked"})
    assert state(rid) == "circulated"
    us_sees_nothing()

    # Both offer through the form.
    page = html(de, f"/requests/{rid}/")
    assert 'id="offer-form"' in page and "Start triage" not in page
    post(de, f"/requests/{rid}/offers/", offering())
    post(fr, f"/requests/{rid}/offers/", offering(scope="Malware analysis of the samples"))
    page = html(de, f"/requests/{rid}/")
    assert 'id="offer-form"' not in page  # one open offer per organisation
    assert "Malware analysis of the samples" not in page  # DE does not see FR's offer
    us_sees_nothing()

    # The requester accepts DE's offer and declines FR's.
    de_offer = Offer.objects.get(rfa_id=rid, organisation=fed.orgs["de"])
    fr_offer = Offer.objects.get(rfa_id=rid, organisation=fed.orgs["fr"])
    page = html(ee, f"/requests/{rid}/")
    assert "Accept the offer of CERT-Bund" in page and "Decline the offer of ANSSI" in page
    post(ee, f"/offers/{de_offer.pk}/accept/", {})
    post(ee, f"/offers/{fr_offer.pk}/decline/", {"reason": "Covered by CERT-Bund"})
    assert state(rid) == "offer-accepted"
    de_offer.refresh_from_db()
    fr_offer.refresh_from_db()
    assert (de_offer.state, fr_offer.state) == ("accepted", "declined")

    eng_id = RequestForAssistance.objects.get(pk=rid).engagement.pk
    ws = f"/engagements/{eng_id}/"
    engagement_url.append(ws)
    assert f'href="{ws}"' in html(ee, f"/requests/{rid}/")
    assert f'href="{ws}"' in html(de, f"/requests/{rid}/")
    us_sees_nothing()

    # Participants work in the workspace.
    page = html(de, ws)
    assert "CERT-EE" in page and "CERT-Bund" in page and 'id="note-form"' in page
    post(de, f"{ws}notes/", {"body": "Found a second implant on HMI-03."})
    post(
        ee,
        f"{ws}sitreps/",
        {"summary": "Two substations back in remote control.", "outlook": "improving"},
    )
    post(
        ee,
        f"{ws}tasks/",
        {"title": "Image HMI-03", "assignee": str(fed.orgs["de"].pk)},
    )
    task_id = UUID(html(ee, ws).split('id="outcome-', 1)[1].split('"', 1)[0])
    post(de, f"{ws}tasks/{task_id}/", {"outcome": "successful"})
    for who in (ee, de):
        page = html(who, ws)
        assert "Found a second implant on HMI-03." in page
        assert "Two substations back in remote control." in page
        assert "Image HMI-03" in page and '<option value="successful" selected>' in page
    # FR was declined: it still sees the request it was routed, but not the engagement (who
    # helped is private to it).
    html(fr, ws, status=404)
    assert f'href="{ws}"' not in html(fr, f"/requests/{rid}/")
    us_sees_nothing()

    # The requester activates, moves to reporting, writes the review and closes.
    post(ee, f"/requests/{rid}/actions/", {"action": "activate"})
    post(ee, f"/requests/{rid}/actions/", {"action": "report"})
    assert state(rid) == "reporting"
    page = html(ee, ws)
    assert 'id="review-form"' in page
    assert 'id="review-form"' not in html(de, ws)  # the requester writes the review
    us_sees_nothing()
    post(ee, f"{ws}review/", {"what_helped": "Fast IR team", "lessons": "Keep HMI images"})
    assert "Keep HMI images" in html(de, ws)
    post(ee, f"/requests/{rid}/actions/", {"action": "close"})
    assert state(rid) == "closed"
    page = html(ee, f"/requests/{rid}/")
    assert "What you can do now" not in page
    us_sees_nothing()
