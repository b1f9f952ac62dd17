"""The story in a real browser, through the forms: file, triage, route, offer, accept and
decline, work in the engagement, report, review and close — while an uninvolved nation's
liaison never learns the request exists. Every page seen is checked with axe and screenshotted.
"""

from __future__ import annotations

import os
import re
from typing import Any

from tests.browser.conftest import ROOT, Session

TITLE = "Ransomware on grid operator SCADA"
REQUESTER = "liaison@cert.ee.example"  # CERT-EE (Estonia)
COORDINATOR = "coordinator@secretariat.example"
HELPERS = {  # two ICS-capable CERTs the matching ranks for an energy/ICS request
    "de": ("liaison@cert.de.example", "CERT-Bund (Germany)"),
    "fr": ("liaison@cert.fr.example", "CERT-FR (France)"),
}
UNINVOLVED = "liaison@cert.is.example"  # CERT-IS (Iceland): never routed this request
TRIAGE_IMAGE = ROOT / "docs" / "images" / "triage.png"


def submit(s: Session, button: Any, label: str) -> None:
    """Click a form's submit button, wait for the page it leads to, and check that page."""
    with s.page.expect_navigation() as nav:
        button.click()
    resp = nav.value
    assert resp is not None and resp.status < 400, (label, resp and resp.status, s.page.url)
    s.page.wait_for_load_state()
    s.check(label)


def act(s: Session, action: str) -> None:
    """Press the lifecycle action ``action`` on the request page."""
    form = s.page.locator(f"form.action-form:has(input[name=action][value={action}])")
    submit(s, form.get_by_role("button"), f"request after {action}")


def test_the_story_in_the_browser(sessions: Any) -> None:
    ee: Session = sessions("ee", REQUESTER)

    # The requester files the request through the form.
    ee.page.get_by_role("link", name="File a request", exact=True).click()
    ee.page.wait_for_load_state()
    ee.check("new request")
    p = ee.page
    p.fill("#id_title", TITLE)
    p.fill("#id_affected_entity", "Elering AS")
    p.fill("#id_description", "Operator workstations encrypted; RTU traffic anomalies on IEC 104.")
    p.select_option("#id_rsit_class", "malicious-code")
    p.select_option("#id_rsit_type", "infected-system")
    p.select_option("#id_sector", "energy/electricity")
    p.select_option("#id_severity", "4")
    p.check("input[name=services_needed][value=incident-response]")
    p.check("input[name=services_needed][value=ics-ot-expertise]")
    p.select_option("#id_urgency", "immediate")
    p.select_option("#id_tlp", "amber")
    p.fill("#id_languages", "et, en")
    p.check("input[name=ics_protocols][value=iec-60870-5-104]")
    submit(ee, p.get_by_role("button", name="Submit to the secretariat"), "request filed")
    match = re.search(r"/requests/([0-9a-f-]{36})/$", p.url)
    assert match, p.url
    request_url = f"/requests/{match.group(1)}/"
    reference = p.locator("h1").inner_text().split(":", 1)[0].strip()
    assert reference and TITLE in p.locator("h1").inner_text()

    # The secretariat sees it in the triage queue, starts triage and routes to DE and FR.
    coord: Session = sessions("coordinator", COORDINATOR)
    assert reference in coord.page.locator("main").inner_text()
    # The README's picture is refreshed on request only, so that a test run leaves the tree clean.
    refresh = os.environ.get("VCISC_REFRESH_DOCS_IMAGES") == "1"
    coord.screenshot("triage", path=TRIAGE_IMAGE if refresh else None)
    coord.goto(request_url)
    act(coord, "start-triage")
    route = coord.page.locator("#route-form")
    for _, org in HELPERS.values():
        route.get_by_label(org, exact=False).check()
    submit(coord, route.get_by_role("button", name="Route to the chosen organisations"), "routed")
    assert "circulated" in coord.page.locator(".lead").inner_text()

    # Both routed liaisons offer through the form.
    helpers: dict[str, Session] = {}
    for key, (email, _) in HELPERS.items():
        s = helpers[key] = sessions(key, email)
        assert reference in s.page.locator("main").inner_text()  # routed to them: listed
        s.goto(request_url)
        form = s.page.locator("#offer-form")
        form.locator("#offer_scope").fill(f"Remote IR and ICS team from {key.upper()}")
        form.locator("#offer_team_size").fill("3")
        form.locator("#offer_available_from").fill("2030-01-01T08:00")
        form.locator("#offer_available_until").fill("2030-01-08T18:00")
        form.locator("input[name=services][value=incident-response]").check()
        submit(s, form.get_by_role("button", name="Send the offer"), "offered")
        assert s.page.locator("#offer-form").count() == 0  # one open offer per organisation

    # The requester accepts DE's offer and declines FR's.
    ee.goto(request_url)
    de_org, fr_org = HELPERS["de"][1], HELPERS["fr"][1]
    submit(ee, p.get_by_role("button", name=f"Accept the offer of {de_org}"), "accepted")
    row = p.locator("tr", has_text=fr_org)
    row.locator("textarea[name=reason]").fill("Covered by CERT-Bund")
    submit(ee, row.get_by_role("button", name=f"Decline the offer of {fr_org}"), "declined")
    assert "offer-accepted" in p.locator(".lead").inner_text()

    # The participants work in the workspace: a note from DE, a situation report from EE.
    href = p.locator("#engagement-link").get_attribute("href")
    assert href and href.startswith("/engagements/")
    de = helpers["de"]
    de.goto(href)
    de.page.fill("#note_body", "Found a second implant on HMI-03.")
    submit(de, de.page.locator("#note-form").get_by_role("button"), "workspace note")
    ee.goto(href)
    p.fill("#sitrep_summary", "Two substations back in remote control.")
    p.select_option("#sitrep_outlook", "improving")
    submit(ee, p.locator("#sitrep-form").get_by_role("button"), "workspace sitrep")
    for s in (ee, de):
        s.goto(href, check=False)  # both pages were checked right after their posts
        text = s.page.locator("main").inner_text()
        assert "Found a second implant on HMI-03." in text
        assert "Two substations back in remote control." in text
    fr = helpers["fr"]
    # Declined: FR still sees the request it was routed, but not the engagement (who helped is
    # private to it).
    fr.goto(href, 404)

    # The requester moves to reporting, writes the after-action review and closes.
    ee.goto(request_url)
    act(ee, "activate")
    act(ee, "report")
    assert "reporting" in p.locator(".lead").inner_text()
    ee.goto(href)
    p.fill("#review_what_helped", "A fast IR team with ICS protocol expertise.")
    p.fill("#review_lessons", "Keep golden images of the HMIs.")
    submit(ee, p.locator("#review-form").get_by_role("button"), "review")
    assert "Keep golden images of the HMIs." in p.locator("main").inner_text()
    ee.goto(request_url)
    act(ee, "close")
    assert "closed" in p.locator(".lead").inner_text()
    assert p.get_by_text("What you can do now").count() == 0

    # An uninvolved nation's liaison never learns the request exists.
    outsider: Session = sessions("uninvolved", UNINVOLVED)
    home = outsider.page.content()
    assert reference not in home and TITLE not in home
    for url in (request_url, href):
        outsider.goto(url, status=404)
        body = outsider.page.content()
        assert reference not in body and TITLE not in body
    # Nor from the metrics or the directory, which it may read.
    for url in ("/metrics/", "/directory/"):
        outsider.goto(url)
        assert reference not in outsider.page.content()


def test_metrics_and_directory_pages_are_accessible(sessions: Any) -> None:
    """The pages around the story, for the secretariat and a liaison: charts and directory, each
    checked with axe and kept as a screenshot."""
    coord: Session = sessions("coordinator", "coordinator@secretariat.example")
    coord.goto("/metrics/")
    assert coord.page.locator("svg[role=img]").count() >= 4
    coord.goto("/directory/?q=cert")
    ee: Session = sessions("requester", "liaison@cert.ee.example")
    ee.goto("/directory/?service_type=ics-ot-expertise")
    ee.goto("/metrics/")
