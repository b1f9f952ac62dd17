"""Live updates: ``GET /events/`` streams what the user may see, and nothing else."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import Federation, offer_body
from tests.web.conftest import file_request, signed_in
from vcisc.assistance.models import RequestForAssistance, TimelineEntry

pytestmark = pytest.mark.django_db


def _raw(client: Client, query: str = "?once=1&since=0", **extra: Any) -> str:
    resp = client.get(f"/events/{query}", **extra)
    assert resp.status_code == 200, resp.status_code
    assert resp["Content-Type"].startswith("text/event-stream")
    return b"".join(resp.streaming_content).decode()  # type: ignore[arg-type]


def _events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into messages (comments and ``retry:`` skipped)."""
    found = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event", "data"):
                fields[name] = value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            found.append(fields)
    return found


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["kind"] for e in events]


def test_unauthenticated_is_sent_to_sign_in(federation: Federation) -> None:
    resp = Client().get("/events/?once=1")
    assert resp.status_code == 302
    assert resp["Location"].startswith("/login/")


def test_stream_headers(federation: Federation) -> None:
    resp = signed_in(federation, "ee").get("/events/?once=1")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/event-stream")
    assert "no-cache" in resp["Cache-Control"] and "no-store" in resp["Cache-Control"]
    assert resp.streaming


def test_routed_organisation_gets_the_routing_event(federation: Federation) -> None:
    rfa = file_request(federation, route_to=("de",))
    events = _events(_raw(signed_in(federation, "de")))
    routed = [e for e in events if e["data"]["kind"] == "routed"]
    assert len(routed) == 1
    event = routed[0]
    assert event["event"] == "routing"
    assert event["data"]["reference"] == rfa["reference"]
    assert event["data"]["summary"] == "Routed to CERT-Bund"
    assert event["data"]["url"] == f"/requests/{rfa['id']}/"
    entry = TimelineEntry.objects.get(rfa_id=rfa["id"], kind="routed")
    assert UUID(event["id"]) == entry.pk


def test_requester_gets_offer_events_and_the_cursor_is_honoured(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, route_to=("de",))
    ee = signed_in(fed, "ee")
    before = _events(_raw(ee))
    last = max(UUID(e["id"]) for e in before)
    resp = fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body())
    assert resp.status_code == 201, resp.content
    after = _events(_raw(ee, f"?once=1&since={last}"))
    offers = [e for e in after if e["event"] == "offer"]
    assert [e["data"]["summary"] for e in offers] == ["CERT-Bund offered help"]
    assert all(UUID(e["id"]) > last for e in after)
    # A reconnecting EventSource sends Last-Event-ID instead of ?since=.
    resumed = _events(_raw(ee, "?once=1", HTTP_LAST_EVENT_ID=str(last)))
    assert _kinds(resumed) == _kinds(after)
    newest = max(UUID(e["id"]) for e in after)
    assert _events(_raw(ee, f"?once=1&since={newest}")) == []


def test_state_changes_reach_the_requester(federation: Federation) -> None:
    rfa = file_request(federation, triage=True)
    events = _events(_raw(signed_in(federation, "ee")))
    states = [e for e in events if e["event"] == "state"]
    assert {e["data"]["kind"] for e in states} >= {"state.submit", "state.start-triage"}
    assert all(e["data"]["reference"] == rfa["reference"] for e in events)


def test_uninvolved_user_hears_nothing(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, route_to=("de", "fr"))
    fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body())
    RequestForAssistance.objects.filter(pk=rfa["id"]).update(
        triage_due=timezone.now() - timedelta(seconds=30)
    )
    for who in ("us", "am", "admin"):
        text = _raw(signed_in(fed, who))
        assert _events(text) == [], who
        assert rfa["reference"] not in text
    # FR is routed too, but DE's offer concerns DE only.
    fr = _events(_raw(signed_in(fed, "fr")))
    assert "offer" not in _kinds(fr)
    assert "CERT-Bund" not in json.dumps(fr)


def test_red_detail_only_with_content_access(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, tlp="red", route_to=("de",))
    offer = fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).json()
    resp = fed.api("ee").post(
        f"/offers/{offer['id']}/decline", {"reason": "Substation Vaivara is out of scope"}
    )
    assert resp.status_code == 200, resp.content
    de_text = _raw(signed_in(fed, "de"))
    de = _events(de_text)
    assert "offer.decline" in _kinds(de)
    assert "Vaivara" not in de_text
    assert all("detail" not in e["data"] for e in de)
    coord_text = _raw(signed_in(fed, "coordinator"))
    assert "offer.decline" in _kinds(_events(coord_text)) and "Vaivara" not in coord_text
    own = _events(_raw(signed_in(fed, "ee")))
    declined = [e for e in own if e["data"]["kind"] == "offer.decline"]
    assert declined[0]["data"]["detail"] == "Substation Vaivara is out of scope"


def test_breach_event_when_a_clock_is_past_due(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed)  # submitted, not yet triaged
    ee = signed_in(fed, "ee")
    assert "deadline" not in [e["event"] for e in _events(_raw(ee))]
    RequestForAssistance.objects.filter(pk=rfa["id"]).update(
        triage_due=timezone.now() - timedelta(seconds=30)
    )
    events = _events(_raw(ee))
    breaches = [e for e in events if e["event"] == "deadline"]
    assert len(breaches) == 1
    assert "id" not in breaches[0]  # not a timeline entry: the cursor stays where it was
    assert breaches[0]["data"] == {
        "reference": rfa["reference"],
        "kind": "deadline.breached",
        "step": "triage",
        "summary": "Triage deadline breached",
        "url": f"/requests/{rfa['id']}/",
    }
    # The secretariat sees it too; the uninvolved do not.
    assert "deadline" in [e["event"] for e in _events(_raw(signed_in(fed, "coordinator")))]
    assert _events(_raw(signed_in(fed, "us"))) == []


def test_met_clock_is_no_breach(federation: Federation) -> None:
    rfa = file_request(federation, route_to=("de",))  # routing meets the triage clock
    RequestForAssistance.objects.filter(pk=rfa["id"]).update(
        triaged_at=timezone.now() - timedelta(minutes=2),
        triage_due=timezone.now() - timedelta(seconds=30),
    )
    events = _events(_raw(signed_in(federation, "ee")))
    assert "deadline" not in [e["event"] for e in events]


def test_bad_cursor_is_ignored(federation: Federation) -> None:
    file_request(federation, route_to=("de",))
    events = _events(_raw(signed_in(federation, "de"), "?once=1&since=nonsense"))
    assert "routed" in _kinds(events)
    assert _events(_raw(signed_in(federation, "de"), f"?once=1&since={UUID(int=2**128 - 1)}")) == []
    # A number is no cursor any more (ids are UUIDs): it is ignored like any other nonsense.
    assert "routed" in _kinds(_events(_raw(signed_in(federation, "de"), "?once=1&since=42")))


def test_post_is_refused(federation: Federation) -> None:
    assert signed_in(federation, "ee").post("/events/").status_code == 405


def test_pages_load_the_script_and_the_live_region(federation: Federation) -> None:
    resp = signed_in(federation, "ee").get("/")
    page = resp.content.decode()
    assert re.search(r'<script src="/static/web/live\.js" defer></script>', page)
    assert 'id="live-updates" role="status" aria-live="polite"' in page
    assert 'data-events-url="/events/"' in page
    # Every script is loaded from a file: none is inline.
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == []
    script = Client().get("/static/web/live.js")
    assert script.status_code == 200
    body = b"".join(script.streaming_content).decode() if script.streaming else script.text  # type: ignore[arg-type]
    assert "EventSource" in body and "innerHTML" not in body and "eval(" not in body


def test_csp_allows_own_scripts_and_forbids_inline(federation: Federation) -> None:
    for client, url in ((Client(), "/login/"), (signed_in(federation, "ee"), "/")):
        csp = client.get(url)["Content-Security-Policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
        assert directives["script-src"] == ["'self'"]
        assert directives["connect-src"] == ["'self'"]
        assert directives["default-src"] == ["'none'"]
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp


def test_live_stream_polls_then_ends(federation: Federation, monkeypatch: Any) -> None:
    from asgiref.sync import async_to_sync

    from vcisc.web import live

    monkeypatch.setattr(live, "LIFETIME_SECONDS", 0.05)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.0)
    rfa = file_request(federation, route_to=("de",))
    de = signed_in(federation, "de")
    resp = de.get("/events/?since=0")
    assert resp["Content-Type"].startswith("text/event-stream")
    assert resp.is_async
    text = async_to_sync(_join)(resp)
    assert text.startswith("retry: 3000\n\n")
    assert ": heartbeat\n\n" in text
    events = _events(text)
    assert "routed" in _kinds(events) and events[0]["data"]["reference"] == rfa["reference"]
    # Without a cursor a live stream starts at the newest entry: no backlog.
    resp = de.get("/events/")
    assert _events(async_to_sync(_join)(resp)) == []


async def _join(resp: Any) -> str:
    """Read a live (asynchronous) stream to its end."""
    return b"".join([chunk async for chunk in resp.streaming_content]).decode()
