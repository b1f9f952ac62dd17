"""The offering organisation's side of the console: its home panels (our offers, our
engagements, our capacity), moving its own offers, naming members, and the requester editing a
request the secretariat sent back."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest

from tests.conftest import Federation, offer_body
from tests.web.conftest import file_request, html, signed_in
from tests.web.test_story import post, state
from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.audit.models import AuditRecord
from vcisc.engagements.models import EngagementMember

pytestmark = pytest.mark.django_db


def _section(page: str, heading_id: str) -> str:
    """The HTML of the section a heading id labels (up to the next section)."""
    start = page.index(f'aria-labelledby="{heading_id}"')
    end = page.find("<section", start)
    return page[start : end if end != -1 else len(page)]


def _accepted(fed: Federation, who: str = "de", **overrides: object) -> tuple[int, int, int]:
    """A request routed to DE and FR, ``who``'s offer accepted: (rfa id, offer id, eng id)."""
    rfa = file_request(fed, route_to=("de", "fr"), **overrides)
    offer = fed.api(who).post(f"/requests/{rfa['id']}/offers", offer_body()).json()
    assert fed.api("ee").post(f"/offers/{offer['id']}/accept").status_code == 200
    eng = fed.api("ee").get(f"/requests/{rfa['id']}").json()["engagement_id"]
    return rfa["id"], offer["id"], eng


def test_home_shows_our_offers_engagements_and_capacity(federation: Federation) -> None:
    fed = federation
    rid, _, eng = _accepted(fed, title="Grid outage in Tallinn")
    other = file_request(fed, route_to=("fr",), title="Hospital ransomware")
    fed.api("fr").post(f"/requests/{other['id']}/offers", offer_body())
    ref = RequestForAssistance.objects.get(pk=rid).reference
    other_ref = other["reference"]

    page = html(signed_in(fed, "de"), "/")
    offers = _section(page, "offers-heading")
    assert ref in offers and "accepted" in offers
    assert other_ref not in page  # FR's request was never routed to DE
    engagements = _section(page, "engagements-heading")
    assert f'href="/engagements/{eng}/"' in engagements and "assisting" in engagements
    capacity = _section(page, "capacity-heading")
    # DE declared two capabilities of 3 concurrent engagements; one offer is accepted.
    assert "1 engagement in progress" in capacity
    assert capacity.count('<td class="num">2</td>') == 2
    assert "Edit our capabilities" in capacity

    # The requester's own engagement is listed with its role; FR sees its pending offer only.
    ee_page = html(signed_in(fed, "ee"), "/")
    assert f'href="/engagements/{eng}/"' in _section(ee_page, "engagements-heading")
    assert "requester" in _section(ee_page, "engagements-heading")
    fr_page = html(signed_in(fed, "fr"), "/")
    fr_offers = _section(fr_page, "offers-heading")
    assert other_ref in fr_offers and "proposed" in fr_offers
    assert "takes part in no engagement" in _section(fr_page, "engagements-heading")
    # An uninvolved organisation: empty panels, nothing of the others.
    us_page = html(signed_in(fed, "us"), "/")
    assert ref not in us_page and other_ref not in us_page
    assert "has made no offers" in us_page and "0 engagements in progress" in us_page


def test_capacity_says_when_a_capability_is_full(federation: Federation) -> None:
    fed = federation
    for _ in range(3):
        _accepted(fed)
    capacity = _section(html(signed_in(fed, "de"), "/"), "capacity-heading")
    assert "3 engagements in progress" in capacity
    assert capacity.count("0: full") == 2


def test_offering_organisation_withdraws_starts_and_completes_its_offer(
    federation: Federation,
) -> None:
    fed = federation
    rid, offer_id, _ = _accepted(fed)
    de, ee = signed_in(fed, "de"), signed_in(fed, "ee")
    page = html(de, f"/requests/{rid}/")
    assert "Start work" in page and "Withdraw our offer" in page
    assert "Start work" not in html(ee, f"/requests/{rid}/")  # the requester does not move it
    # Only the offering organisation may: the requester's post is refused with the 403.
    post(ee, f"/offers/{offer_id}/start/", {}, 403)
    post(de, f"/offers/{offer_id}/start/", {})
    assert Offer.objects.get(pk=offer_id).state == "active"
    page = html(de, f"/requests/{rid}/")
    assert "Mark our work complete" in page and "Withdraw our offer" not in page
    # An action the state does not allow: a 409 message, nothing changed.
    page = post(de, f"/offers/{offer_id}/withdraw/", {"reason": "x"}, 409)
    assert "withdraw" in page
    post(de, f"/offers/{offer_id}/complete/", {})
    assert Offer.objects.get(pk=offer_id).state == "completed"
    assert AuditRecord.objects.filter(action="offer.complete").count() == 1

    # A proposed offer can be withdrawn with a reason, which reaches the timeline's detail.
    other = file_request(fed, route_to=("fr",))
    fr_offer = fed.api("fr").post(f"/requests/{other['id']}/offers", offer_body()).json()
    fr = signed_in(fed, "fr")
    post(fr, f"/offers/{fr_offer['id']}/withdraw/", {"reason": "Team recalled"})
    assert Offer.objects.get(pk=fr_offer["id"]).state == "withdrawn"
    # Someone else's offer, unseen: 404 as for no offer at all.
    post(signed_in(fed, "us"), f"/offers/{fr_offer['id']}/withdraw/", {}, 404)
    post(de, f"/offers/{uuid4()}/withdraw/", {}, 404)


def test_liaison_names_a_colleague_as_member(federation: Federation) -> None:
    fed = federation
    _, _, eng = _accepted(fed)
    ws = f"/engagements/{eng}/"
    de = signed_in(fed, "de")
    page = html(de, ws)
    assert 'id="member-form"' in page
    form = page[page.index('id="member-form"') :]
    form = form[: form.index("</form>")]
    # Only active colleagues of DE's own organisation are offered.
    assert "analyst@cert-bund.de.example" in form and "cert.ee.example" not in form
    analyst = fed.users["de_analyst"]
    post(de, f"{ws}members/", {"user": str(analyst.pk)})
    assert EngagementMember.objects.filter(engagement_id=eng, user=analyst).exists()
    assert "analyst@cert-bund.de.example" in _section(html(de, ws), "participants-heading")
    # Someone of another organisation, forged into the post: refused on the field, nothing added.
    page = post(de, f"{ws}members/", {"user": str(fed.users["us"].pk)}, 422)
    assert "Select a valid choice" in page
    assert not EngagementMember.objects.filter(engagement_id=eng, user=fed.users["us"]).exists()
    # An analyst cannot name members (no form), and FR, declined, has no workspace at all.
    assert 'id="member-form"' not in html(signed_in(fed, "de_analyst"), ws)
    post(signed_in(fed, "us"), f"{ws}members/", {"user": str(analyst.pk)}, 404)


def _form_fields(page: str) -> dict[str, str]:
    """Text inputs' values and textareas' contents of the edit form, by name."""
    fields = {
        m[0]: m[1] for m in re.findall(r'<input type="text" name="(\w+)" value="([^"]*)"', page)
    }
    fields.update(re.findall(r'<textarea name="(\w+)"[^>]*>\s*([^<]*)</textarea>', page))
    return fields


def test_requester_edits_a_request_sent_back_for_information(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, triage=True, title="Grid outage in Tallinn")
    rid = rfa["id"]
    coord, ee = signed_in(fed, "coordinator"), signed_in(fed, "ee")
    # Not editable in triage: no link, and the page sends the requester back with a message.
    assert 'id="edit-link"' not in html(ee, f"/requests/{rid}/")
    assert ee.get(f"/requests/{rid}/edit/").status_code == 302
    post(coord, f"/requests/{rid}/actions/", {"action": "request-info", "reason": "Which HMI?"})
    assert state(rid) == "needs-info"

    page = html(ee, f"/requests/{rid}/")
    assert 'id="edit-link"' in page
    page = html(ee, f"/requests/{rid}/edit/")
    assert 'value="Grid outage in Tallinn"' in page
    assert "The severity is fixed once submitted" in page
    # The coordinator, other organisations and analysts of EE may not edit it.
    html(coord, f"/requests/{rid}/edit/", status=403)
    html(signed_in(fed, "us"), f"/requests/{rid}/edit/", status=404)
    html(signed_in(fed, "ee_analyst"), f"/requests/{rid}/edit/", status=403)

    fields = _form_fields(page)
    data = {
        **fields,
        "rsit_class": rfa["rsit_class"],
        "rsit_type": rfa["rsit_type"],
        "sector": rfa["sector"],
        "severity": "1",  # ignored: fixed once submitted
        "services_needed": rfa["services_needed"],
        "urgency": rfa["urgency"],
        "tlp": rfa["tlp"],
    }
    # A bad value: the error is next to the field, the input kept, nothing saved.
    bad = {**data, "title": "x", "description": "HMI-07 at substation 4 runs WinCC"}
    page = post(ee, f"/requests/{rid}/edit/", bad, 422)
    assert "The changes were not saved" in page and "HMI-07 at substation 4" in page
    assert RequestForAssistance.objects.get(pk=rid).title == "Grid outage in Tallinn"

    good = {**data, "description": "HMI-07 at substation 4 runs WinCC", "intent": "submit"}
    post(ee, f"/requests/{rid}/edit/", good)
    saved = RequestForAssistance.objects.get(pk=rid)
    assert saved.description == "HMI-07 at substation 4 runs WinCC"
    assert saved.severity == rfa["severity"]
    assert saved.state == "triage"  # information provided: back to triage
    assert AuditRecord.objects.filter(action="update", object_id=str(rid)).exists()
