"""The feeds page and an engagement's feed matches in the console (issue 5)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Federation
from tests.feeds.test_feeds import feed_files, misp_event
from tests.web.conftest import html, signed_in
from tests.web.test_offering_side import _accepted, _section
from tests.web.test_story import post
from vcisc.feeds import services

pytestmark = pytest.mark.django_db


def test_feeds_are_listed_and_matches_shown_on_the_engagement_page(
    federation: Federation,
) -> None:
    fed = federation
    _, _, eng = _accepted(fed, tlp="amber")
    de = signed_in(fed, "de")
    post(de, f"/engagements/{eng}/indicators/", {"value": "feed-hit.evil.example"})
    coordinator = fed.users["coordinator"]
    feed = services.create_feed(coordinator, {"name": "CIRCL OSINT", "tlp": "green"})
    manifest, files = feed_files(misp_event("Campaign Z", [("domain", "feed-hit.evil.example")]))
    services.import_feed_content(coordinator, feed.pk, manifest, lambda u: json.dumps(files[u]))
    section = _section(html(de, f"/engagements/{eng}/"), "indicators-heading")
    assert "Also in federation feeds" in section and "CIRCL OSINT" in section
    assert "Campaign Z" in section
    page = html(de, "/feeds/")
    assert "CIRCL OSINT" in page and 'href="/feeds/"' in page and "Pull now" not in page
    # The coordinator may pull; a feed without a URL offers no button.
    assert "Pull now" not in html(signed_in(fed, "coordinator"), "/feeds/")
    # Not a participant: no match shown anywhere; an observer has no feeds page.
    assert "feed-hit" not in html(signed_in(fed, "us"), "/feeds/")
    observer = signed_in(fed, "am")
    assert 'href="/feeds/"' not in html(observer, "/")
    html(observer, "/feeds/", 403)
    post(de, f"/feeds/{feed.pk}/pull/", {}, status=302)
    assert "only secretariat coordinators" in html(de, "/feeds/")
