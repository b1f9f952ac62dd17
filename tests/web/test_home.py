"""The home page per role, over what authz lets the user see and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import Federation, rfa_body
from tests.web.conftest import file_request, html, signed_in
from vcisc.assistance import services

pytestmark = pytest.mark.django_db


def test_liaison_sees_our_requests_with_badge_and_clocks(federation: Federation) -> None:
    rfa = file_request(federation, tlp="amber")
    page = html(signed_in(federation, "ee"), "/")
    assert "Our requests" in page and "Routed to us" in page
    assert rfa["reference"] in page and rfa_body()["title"] in page
    assert f'href="/requests/{rfa["id"]}/"' in page
    assert '<span class="tlp tlp-amber">TLP:AMBER</span>' in page
    assert "4 Severe (red)" in page and "energy/electricity" in page
    assert page.count('class="clock clock--running"') == 3
    assert '<th scope="col">Deadlines</th>' in page and '<th scope="row">' in page
    # The page header carries the strictest TLP on the page.
    assert 'id="page-marking">Page marking <span class="tlp tlp-amber">' in page
    assert "No requests have been routed to our organisation." in page


def test_page_marking_is_the_strictest_tlp_shown(federation: Federation) -> None:
    file_request(federation, tlp="green", title="Green one")
    file_request(federation, tlp="amber+strict", title="Strict one")
    page = html(signed_in(federation, "ee"), "/")
    assert 'id="page-marking">Page marking <span class="tlp tlp-amber-strict">' in page
    assert '<span class="tlp tlp-green">TLP:GREEN</span>' in page


def test_routed_organisation_sees_the_request_but_not_red_content(
    federation: Federation,
) -> None:
    amber = file_request(federation, tlp="amber", route_to=("de",), title="Amber grid attack")
    red = file_request(federation, tlp="red", route_to=("de",), title="Red grid attack")
    page = html(signed_in(federation, "de"), "/")
    assert amber["reference"] in page and "Amber grid attack" in page
    assert red["reference"] in page and "Red grid attack" not in page
    assert "withheld (TLP:RED)" in page
    assert "CERT-EE (EE)" in page  # the requester, routing metadata
    assert "Our organisation has filed no requests." in page
    assert 'id="page-marking">Page marking <span class="tlp tlp-red">' in page


def test_uninvolved_organisation_never_learns_of_the_request(federation: Federation) -> None:
    rfa = file_request(federation, tlp="green", route_to=("de",))
    for who in ("us", "fr", "am", "admin"):
        page = html(signed_in(federation, who), "/")
        assert rfa["reference"] not in page, who
        assert rfa_body()["title"] not in page, who
        assert "Elering" not in page, who
        assert "page-marking" not in page, who  # nothing marked is shown


def test_coordinator_triage_queue_is_ordered_and_highlights_breaches(
    federation: Federation,
) -> None:
    fed = federation
    ee = fed.users["ee"]
    long_ago = timezone.now() - timedelta(days=3)
    # Severity 2, submitted three days ago: its triage clock (8 h) has breached.
    late = services.create_rfa(
        ee, rfa_body(severity=2, title="Late one"), submit=True, now=long_ago
    )
    low = file_request(fed, severity=1, title="Low one")
    high = file_request(fed, severity=5, title="High one")
    in_triage = file_request(fed, severity=3, title="In triage", triage=True)
    routed = file_request(fed, severity=5, title="Already routed", route_to=("de",))
    draft = fed.api("ee").post("/requests", rfa_body(title="Still a draft")).json()

    page = html(signed_in(fed, "coordinator"), "/")
    assert "Triage queue" in page and "Federation picture" in page
    queue = page.split('id="queue-heading"')[1].split('id="picture-heading"')[0]
    order = [high["reference"], in_triage["reference"], late.reference, low["reference"]]
    positions = [queue.index(ref) for ref in order]
    assert positions == sorted(positions)
    assert routed["reference"] not in queue  # circulated: out of the queue
    assert draft["reference"] not in page  # drafts are the requester's alone
    assert queue.count('class="row--breached"') == 1
    assert "⚠ </span>breached" in queue
    # The picture counts the five open requests the coordinator may see (not the draft).
    picture = page.split('id="picture-heading"')[1]
    assert "Open requests by sector and severity (5 in all)" in picture
    assert '<th scope="row">energy</th>' in picture


def test_picture_counts_only_open_requests(federation: Federation) -> None:
    fed = federation
    open_one = file_request(fed, sector="health", title="Open")
    gone = file_request(fed, sector="health", title="Withdrawn")
    resp = fed.api("ee").post(f"/requests/{gone['id']}/transitions", {"action": "withdraw"})
    assert resp.status_code == 200
    page = html(signed_in(fed, "coordinator"), "/")
    picture = page.split('id="picture-heading"')[1]
    assert "(1 in all)" in picture and '<th scope="row">health</th>' in picture
    assert open_one["reference"] in page and gone["reference"] not in page


def test_analyst_without_liaison_role_gets_no_file_link(federation: Federation) -> None:
    file_request(federation)
    page = html(signed_in(federation, "ee_analyst"), "/")
    assert "Our requests" in page
    assert 'href="/requests/new/"' not in page
    assert 'href="/requests/new/"' in html(signed_in(federation, "ee"), "/")


def test_home_costs_the_same_queries_for_more_requests(federation: Federation) -> None:
    def queries(who: str) -> int:
        client = signed_in(federation, who)
        with CaptureQueriesContext(connection) as ctx:
            html(client, "/")
        return len(ctx.captured_queries)

    file_request(federation, route_to=("de",))
    few = {who: queries(who) for who in ("ee", "de", "coordinator")}
    for n in range(4):
        file_request(federation, route_to=("de",), title=f"More {n}")
    assert {who: queries(who) for who in ("ee", "de", "coordinator")} == few
