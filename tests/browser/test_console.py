"""The console beyond the story, in a real browser: live updates arriving on an open page
(under the pages' own Content-Security-Policy), the offering organisation's home panels and
offer actions, the capability editor, people and token pages, and the pages on a tablet."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Session
from tests.browser.test_story import COORDINATOR, HELPERS, REQUESTER, act, submit

ADMIN = "admin@secretariat.example"


def file_request(s: Session, title: str) -> tuple[str, str]:
    """File and submit a request through the form; (its page's path, its reference)."""
    s.goto("/requests/new/", check=False)
    p = s.page
    p.fill("#id_title", title)
    p.fill("#id_affected_entity", "Elering AS")
    p.fill("#id_description", "Operator workstations encrypted.")
    p.select_option("#id_rsit_class", "malicious-code")
    p.select_option("#id_rsit_type", "infected-system")
    p.select_option("#id_sector", "energy/electricity")
    p.select_option("#id_severity", "3")
    p.check("input[name=services_needed][value=incident-response]")
    p.select_option("#id_urgency", "immediate")
    p.select_option("#id_tlp", "green")
    submit(s, p.get_by_role("button", name="Submit to the secretariat"), "request filed")
    match = re.search(r"/requests/([0-9a-f-]{36})/$", p.url)
    assert match, p.url
    reference = p.locator("h1").inner_text().split(":", 1)[0].strip()
    return f"/requests/{match.group(1)}/", reference


def test_live_updates_offer_actions_and_home_panels(sessions: Any) -> None:
    ee: Session = sessions("live-ee", REQUESTER)
    url, reference = file_request(ee, "Live update check on substation RTUs")

    # DE's home page is open, with the pages' policy enforced, before anything is routed to it.
    de_email, de_org = HELPERS["de"]
    de: Session = sessions("live-de", de_email, enforce_csp=True)
    assert reference not in de.page.locator("main").inner_text()

    coord: Session = sessions("live-coordinator", COORDINATOR)
    coord.goto(url, check=False)
    act(coord, "start-triage")
    route = coord.page.locator("#route-form")
    route.get_by_label(de_org, exact=False).check()
    submit(coord, route.get_by_role("button", name="Route to the chosen organisations"), "routed")

    # Without a reload, DE's open page shows the routing in its live region, linked.
    live = de.page.locator("#live-updates")
    expect(live).to_contain_text(reference, timeout=15_000)
    expect(live.get_by_role("link", name=reference).first).to_have_attribute("href", url)
    de.screenshot("live update arrived")

    # The requester's open page learns of DE's offer the same way.
    ee.goto(url, check=False)
    de.goto(url, check=False)
    form = de.page.locator("#offer-form")
    form.locator("#offer_scope").fill("Remote IR team")
    form.locator("#offer_team_size").fill("2")
    form.locator("#offer_available_from").fill("2030-01-01T08:00")
    form.locator("#offer_available_until").fill("2030-01-08T18:00")
    form.locator("input[name=services][value=incident-response]").check()
    submit(de, form.get_by_role("button", name="Send the offer"), "offered")
    expect(ee.page.locator("#live-updates")).to_contain_text(reference, timeout=15_000)

    # DE sees its offer on its home page, then withdraws it from the request page.
    offers = sessions("panels-de", de_email)
    offers.goto("/")
    row = offers.page.locator("#our-offers tr", has_text=reference)
    expect(row).to_contain_text("proposed")
    expect(offers.page.locator("#our-capacity")).to_be_visible()
    offers.goto(url, check=False)
    offers.page.fill("textarea[name=reason][id^=withdraw-reason]", "Team recalled")
    submit(offers, offers.page.get_by_role("button", name="Withdraw our offer"), "withdrawn")
    offers.goto("/", check=False)
    expect(offers.page.locator("#our-offers tr", has_text=reference)).to_contain_text("withdrawn")


def test_capability_editor_account_and_people_pages(sessions: Any) -> None:
    ee: Session = sessions("editor-ee", REQUESTER)
    link = ee.page.get_by_role("link", name="Edit our capabilities and on-call hours")
    with ee.page.expect_navigation():
        link.click()
    ee.check("capability editor")
    assert "/capabilities/" in ee.page.url
    ee.goto("/account/")
    ee.page.fill("#token_name", "Browser test")
    submit(ee, ee.page.get_by_role("button", name="Issue the token"), "token issued")
    token = ee.page.locator("#new-token-text").input_value()
    assert token.startswith("vcisc_")

    admin: Session = sessions("admin", ADMIN)
    admin.goto("/users/?q=cert.ee")
    with admin.page.expect_navigation():
        admin.page.get_by_role("link", name=REQUESTER).click()
    admin.check("person")
    assert "Browser test" in admin.page.locator("#tokens").inner_text()
    assert token not in admin.page.content()  # shown once, to its owner only
    admin.goto("/users/new/")


def test_pages_fit_a_tablet(sessions: Any) -> None:
    """An iPad held upright: no page scrolls sideways (wide tables scroll inside their own
    frame), and every page passes axe at that size too."""
    for name, email in (("tablet-coordinator", COORDINATOR), ("tablet-ee", REQUESTER)):
        s: Session = sessions(name, email, viewport=Session.TABLET)
        pages = ["/", "/metrics/", "/directory/", "/feeds/"]
        if email == REQUESTER:
            pages.append("/requests/new/")
            first = s.page.locator("main table a[href^='/requests/']").first
            href = first.get_attribute("href")
            assert href
            pages.append(href)
        for path in pages:
            s.goto(path)
            overflow = s.page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a tablet"
