"""The request page: metadata always, content with content access, 404 for the uninvolved."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest
from django.test import Client

from tests.conftest import Federation, offer_body, rfa_body
from tests.web.conftest import file_request, html, signed_in

pytestmark = pytest.mark.django_db


def _without_csrf(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


CONTENT = (rfa_body()["title"], "Elering AS", "Operator workstations encrypted")


def test_requester_reads_metadata_content_clocks_and_timeline(federation: Federation) -> None:
    rfa = file_request(federation, tlp="red", route_to=("de",))
    page = html(signed_in(federation, "ee"), f"/requests/{rfa['id']}/")
    for text in CONTENT:
        assert text in page
    assert f"<title>{rfa['reference']} · VCISC</title>" in page
    assert '<span class="tlp tlp-red">TLP:RED</span>' in page
    assert 'id="page-marking">Page marking <span class="tlp tlp-red">' in page
    assert "Incident response, Industrial control systems / OT expertise" in page
    assert "withheld" not in page.lower()
    assert 'class="clock clock--met"' in page  # triage happened when it was routed
    assert "Routed to CERT-Bund" in page  # the requester's timeline names whom it was sent to


def test_routed_organisation_reads_red_metadata_only(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, tlp="red", route_to=("de", "fr"))
    rid = rfa["id"]
    de_offer = fed.api("de").post(f"/requests/{rid}/offers", offer_body()).json()
    fr_offer = fed.api("fr").post(f"/requests/{rid}/offers", offer_body(scope="FR scope")).json()
    resp = fed.api("ee").post(
        f"/offers/{de_offer['id']}/decline", {"reason": "Substation Vaivara is out of scope"}
    )
    assert resp.status_code == 200
    page = html(signed_in(fed, "de"), f"/requests/{rid}/")
    assert "Content withheld (TLP:RED)" in page
    for text in CONTENT:
        assert text not in page
    assert rfa["reference"] in page and "energy/electricity" in page  # routing metadata
    # The decline is on DE's timeline, its free-text reason (content) is not.
    assert "Offer of CERT-Bund declined" in page
    assert "Vaivara" not in page
    # DE sees its own offer, not FR's.
    assert "Remote IR team" in page and "FR scope" not in page and "ANSSI" not in page
    assert fr_offer["id"]
    # The requester reads the reason and both offers.
    own = html(signed_in(fed, "ee"), f"/requests/{rid}/")
    assert "Vaivara" in own and "FR scope" in own and "Remote IR team" in own


def test_amber_content_reaches_the_routed_organisation(federation: Federation) -> None:
    rfa = file_request(federation, tlp="amber", route_to=("de",))
    page = html(signed_in(federation, "de"), f"/requests/{rfa['id']}/")
    for text in CONTENT:
        assert text in page
    assert "Content withheld" not in page


def test_secretariat_reads_red_metadata_only(federation: Federation) -> None:
    rfa = file_request(federation, tlp="red")
    page = html(signed_in(federation, "coordinator"), f"/requests/{rfa['id']}/")
    assert "Content withheld (TLP:RED)" in page
    for text in CONTENT:
        assert text not in page


def test_uninvolved_user_gets_the_same_404_as_for_no_such_request(
    federation: Federation,
) -> None:
    rfa = file_request(federation, tlp="green", route_to=("de",))
    us = signed_in(federation, "us")
    hidden = html(us, f"/requests/{rfa['id']}/", status=404)
    absent = html(us, f"/requests/{uuid4()}/", status=404)
    for page in (hidden, absent):
        assert "Not found" in page
        assert rfa["reference"] not in page and rfa_body()["title"] not in page
    assert _without_csrf(hidden) == _without_csrf(absent)
    html(us, "/requests/999999/", status=404)  # not an id at all (ids are UUIDs): a plain 404


def test_drafts_are_the_requesters_alone(federation: Federation) -> None:
    draft = federation.api("ee").post("/requests", rfa_body()).json()
    html(signed_in(federation, "coordinator"), f"/requests/{draft['id']}/", status=404)
    page = html(signed_in(federation, "ee"), f"/requests/{draft['id']}/")
    assert "not submitted" in page and "draft" in page


def test_anonymous_is_sent_to_sign_in_not_told_whether_it_exists(federation: Federation) -> None:
    rfa = file_request(federation)
    for rid in (rfa["id"], uuid4()):
        resp = Client().get(f"/requests/{rid}/")
        assert resp.status_code == 302 and resp["Location"] == f"/login/?next=/requests/{rid}/"
