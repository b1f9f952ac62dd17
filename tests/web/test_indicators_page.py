"""The engagement page's indicators (issue 5): list, add, import, correlations, exports."""

from __future__ import annotations

import pytest

from tests.conftest import Federation
from tests.web.conftest import html, signed_in
from tests.web.test_offering_side import _accepted, _section
from tests.web.test_story import post
from vcisc.engagements.models import Indicator

pytestmark = pytest.mark.django_db


def test_participants_add_and_import_indicators_on_the_engagement_page(
    federation: Federation,
) -> None:
    fed = federation
    _, _, eng = _accepted(fed, tlp="amber")
    de = signed_in(fed, "de")
    url = f"/engagements/{eng}/"
    post(de, f"{url}indicators/", {"value": "hxxp://c2.evil[.]example/b", "for_detection": "on"})
    section = _section(html(de, url), "indicators-heading")
    assert "http://c2.evil.example/b" in section and "detection" in section
    # A bad import is refused next to the form, input kept, nothing stored.
    bad = {"format": "csv", "content": "value\n300.1.1.1\n198.51.100.8\n"}
    page = post(de, f"{url}indicators/import/", bad, status=422)
    assert "1 invalid object(s): #0: row 2: value" in _section(page, "indicators-heading")
    assert "300.1.1.1" in page
    assert Indicator.objects.count() == 1
    page = post(de, f"{url}indicators/import/", {**bad, "skip_invalid": "on"})
    page = html(de, url)
    assert "1 indicator(s) added" in page and "1 invalid object(s) skipped" in page
    assert "198.51.100.8" in _section(page, "indicators-heading")
    assert 'href="/api/v1/engagements/' in page  # the STIX and MISP exports
    # Not a participant: the page answers 404, and so does a write.
    us = signed_in(fed, "us")
    html(us, url, 404)
    post(us, f"{url}indicators/", {"value": "x.evil.example"}, status=404)
    # The secretariat sees the engagement but not its workspace: no indicators, no form.
    page = html(signed_in(fed, "coordinator"), url)
    assert "c2.evil.example" not in page and 'id="indicator-form"' not in page
