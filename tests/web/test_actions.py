"""Acting from the pages when it goes wrong: errors keep the input, refusals are messages with
the service's status (never a 500), and every form needs its CSRF token."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest
from django.test import Client

from tests.conftest import Federation, offer_body
from tests.web.conftest import file_request, html, signed_in
from tests.web.test_story import offering, post, state
from vcisc.assistance.models import Offer

pytestmark = pytest.mark.django_db


def test_offer_errors_keep_the_input_next_to_the_field(federation: Federation) -> None:
    rfa = file_request(federation, route_to=("de",))
    de = signed_in(federation, "de")
    url = f"/requests/{rfa['id']}/offers/"
    # The service's rule (window order) lands on its field, with what was typed kept.
    page = post(
        de,
        url,
        offering(scope="Keep this scope", available_until="2029-12-31T08:00"),
        422,
    )
    assert "The offer was not sent" in page
    assert "must be after available_from" in page
    assert "Keep this scope" in page and 'value="2029-12-31T08:00"' in page
    # Neither remote nor on site: the service names the remote field.
    page = post(de, url, {**offering(scope="Second try"), "remote": ""}, 422)
    assert "an offer is remote, on-site, or both" in page and "Second try" in page
    # The form's own checks: a missing team size.
    page = post(de, url, offering(team_size="", scope="Third try"), 422)
    assert "This field is required." in page and "Third try" in page
    assert not Offer.objects.filter(rfa_id=rfa["id"]).exists()


def test_workspace_form_errors_keep_the_input(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, route_to=("de",))
    offer = fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).json()
    assert fed.api("ee").post(f"/offers/{offer['id']}/accept").status_code == 200
    eng = fed.api("ee").get(f"/requests/{rfa['id']}").json()["engagement_id"]
    ee = signed_in(fed, "ee")
    page = post(ee, f"/engagements/{eng}/tasks/", {"title": "Image HMI-07"}, 422)
    assert "Image HMI-07" in page and "This field is required." in page
    # Assigned to an organisation that does not take part: the service refuses, on the field.
    us_org = fed.orgs["us"].pk
    page = post(
        ee, f"/engagements/{eng}/tasks/", {"title": "Image HMI-08", "assignee": us_org}, 422
    )
    assert "Image HMI-08" in page and "Select a valid choice" in page
    page = post(ee, f"/engagements/{eng}/review/", {"what_helped": "Fast team"}, 422)
    assert "Fast team" in page and "This field is required." in page
    review = {"what_helped": "Fast team", "lessons": "Image early"}
    page = post(ee, f"/engagements/{eng}/review/", review, 409)
    assert "the review is written in the reporting state" in page


def test_refusals_are_messages_with_the_service_status(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, route_to=("de", "fr"))
    rid = rfa["id"]
    de, coord = signed_in(fed, "de"), signed_in(fed, "coordinator")
    # A routed organisation may not withdraw someone else's request: 403, page with message.
    page = post(de, f"/requests/{rid}/actions/", {"action": "withdraw", "reason": "no"}, 403)
    assert "only the requesting organisation may do this" in page
    assert 'class="message message--error"' in page
    assert "no</textarea>" not in page  # DE has no withdraw form to refill
    # The state machine says no: 409 naming what is allowed.
    page = post(coord, f"/requests/{rid}/actions/", {"action": "close"}, 409)
    assert "cannot close in state circulated" in page
    # An unknown action: 422.
    post(coord, f"/requests/{rid}/actions/", {"action": "explode"}, 422)
    # An analyst is not the liaison who decides on offers.
    offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()
    analyst = signed_in(fed, "ee_analyst")
    page = post(analyst, f"/offers/{offer['id']}/accept/", {}, 403)
    assert "this needs the liaison role" in page
    assert "Accept the offer" not in page  # the analyst gets no buttons
    # FR did not make that offer and cannot see it: 404, as for no such offer.
    post(signed_in(fed, "fr"), f"/offers/{offer['id']}/accept/", {}, 404)
    post(signed_in(fed, "fr"), f"/offers/{uuid4()}/accept/", {}, 404)
    post(signed_in(fed, "fr"), "/offers/1/accept/", {}, 404)  # not an id (ids are UUIDs)
    assert state(rid) == "circulated"


def test_reason_is_needed_and_kept(federation: Federation) -> None:
    rfa = file_request(federation, triage=True)
    coord = signed_in(federation, "coordinator")
    page = post(coord, f"/requests/{rfa['id']}/actions/", {"action": "reject", "reason": " "}, 422)
    assert "say why" in page
    page = post(
        coord,
        f"/requests/{rfa['id']}/routes/",
        {"organisations": [federation.orgs["ee"].pk], "intent": "picked"},
        422,
    )
    assert "The request was not routed" in page
    post(coord, f"/requests/{rfa['id']}/routes/", {"intent": "picked"}, 422)
    post(coord, f"/requests/{rfa['id']}/routes/", {"intent": "top", "top": "2"})
    assert state(rfa["id"]) == "circulated"


def test_workspace_is_404_for_the_uninvolved_and_withheld_from_the_secretariat(
    federation: Federation,
) -> None:
    fed = federation
    rfa = file_request(fed, tlp="red", route_to=("de",))
    offer = fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).json()
    fed.api("ee").post(f"/offers/{offer['id']}/accept")
    eng = fed.api("ee").get(f"/requests/{rfa['id']}").json()["engagement_id"]
    post(signed_in(fed, "de"), f"/engagements/{eng}/notes/", {"body": "RED note body"})
    us = signed_in(fed, "us")
    for url in (f"/engagements/{eng}/", f"/engagements/{uuid4()}/", "/engagements/999999/"):
        hidden = html(us, url, 404)
        assert "Not found" in hidden and rfa["reference"] not in hidden
    post(us, f"/engagements/{eng}/notes/", {"body": "x"}, 404)
    page = html(signed_in(fed, "coordinator"), f"/engagements/{eng}/")
    assert "Workspace withheld" in page and "RED note body" not in page
    page = post(signed_in(fed, "coordinator"), f"/engagements/{eng}/notes/", {"body": "y"}, 403)
    assert "only participants work in the engagement" in page
    # The DE analyst is a participant but not a named member: no TLP:RED items.
    page = html(signed_in(fed, "de_analyst"), f"/engagements/{eng}/")
    assert "RED note body" not in page
    assert "RED note body" in html(signed_in(fed, "ee"), f"/engagements/{eng}/")


def _token(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_csrf_is_enforced_on_every_action(federation: Federation) -> None:
    rfa = file_request(federation)
    rid = rfa["id"]
    coord = Client(enforce_csrf_checks=True)
    coord.force_login(federation.users["coordinator"])
    for url, data in (
        (f"/requests/{rid}/actions/", {"action": "start-triage"}),
        (f"/requests/{rid}/routes/", {"intent": "top"}),
        (f"/requests/{rid}/offers/", offering()),
        (f"/offers/{uuid4()}/accept/", {}),
        (f"/engagements/{uuid4()}/notes/", {"body": "x"}),
    ):
        assert coord.post(url, data).status_code == 403
    assert state(rid) == "submitted"
    page = html(coord, f"/requests/{rid}/")
    resp = coord.post(
        f"/requests/{rid}/actions/",
        {"action": "start-triage", "csrfmiddlewaretoken": _token(page)},
    )
    assert resp.status_code == 302
    assert state(rid) == "triage"


def test_pages_only_post(federation: Federation) -> None:
    rfa = file_request(federation)
    coord = signed_in(federation, "coordinator")
    assert coord.get(f"/requests/{rfa['id']}/actions/").status_code == 405
    assert Client().post(f"/requests/{rfa['id']}/actions/").status_code == 302  # sign in first
