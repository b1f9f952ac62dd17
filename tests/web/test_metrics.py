"""The metrics page: charts and tables over what the user may see, and nothing else."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from tests.conftest import Federation, offer_body
from tests.web.conftest import file_request, html, signed_in

pytestmark = pytest.mark.django_db


def svgs(page: str) -> list[ET.Element]:
    found = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    return [ET.fromstring(s) for s in found]


def engaged_request(fed: Federation) -> dict[str, object]:
    """A waste-management request only EE (requester), DE (routed, offered, engaged) and the
    secretariat are involved in."""
    rfa = file_request(
        fed,
        route_to=("de",),
        sector="waste-management",
        severity=5,
        services_needed=["digital-forensics"],
    )
    offer = fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).json()
    assert fed.api("ee").post(f"/offers/{offer['id']}/accept").status_code == 200
    return rfa


@pytest.mark.parametrize("who", ["ee", "de_analyst", "us", "am", "coordinator", "admin"])
def test_page_loads_for_every_role_with_accessible_svg(federation: Federation, who: str) -> None:
    engaged_request(federation)
    page = html(signed_in(federation, who), "/metrics/")
    assert "<h1>Metrics</h1>" in page
    assert 'aria-current="page">Metrics</a>' in page
    charts = svgs(page)
    assert len(charts) == 6
    for svg in charts:
        assert svg.get("role") == "img"
        assert svg.find("{http://www.w3.org/2000/svg}title") is not None
        assert svg.find("{http://www.w3.org/2000/svg}desc") is not None
    main = page[page.index("<main") : page.index("</main>")]
    assert "<script" not in main  # the charts need no JavaScript
    assert page.count('<table class="chart-data">') == 6


def test_involved_organisations_see_the_figures(federation: Federation) -> None:
    engaged_request(federation)
    for who in ("ee", "de", "coordinator"):
        page = html(signed_in(federation, who), "/metrics/")
        assert "Computed over the 1 submitted request " in page
        assert '<th scope="row">waste-management</th><td class="num">1</td>' in page
        assert '<th scope="row">5 Emergency (black)</th>' in page
        assert '<th scope="row">Digital forensics</th>' in page
        # DE offered once and takes part in the engagement (with EE, the requester).
        assert '<th scope="row">DE</th><td class="num">1</td><td class="num">1</td>' in page
        # Triage and first offer happened; their distributions have one value each.
        assert re.search(r'<th scope="row">Time to triage</th><td class="num">1</td>', page)


def test_uninvolved_organisations_learn_nothing(federation: Federation) -> None:
    engaged_request(federation)
    for who in ("us", "fr", "am", "admin"):
        page = html(signed_in(federation, who), "/metrics/")
        assert "Computed over the 0 submitted requests " in page
        assert "waste" not in page.lower()
        assert "Emergency" not in page and "Digital forensics" not in page
        assert '<th scope="row">DE</th>' not in page and '<th scope="row">EE</th>' not in page
        assert "No data to show." in page


def test_routed_organisation_sees_only_its_own_offers(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, route_to=("de", "fr"), sector="health")
    for key in ("de", "fr"):
        resp = fed.api(key).post(f"/requests/{rfa['id']}/offers", offer_body())
        assert resp.status_code == 201, resp.content
    fr_page = html(signed_in(fed, "fr"), "/metrics/")
    assert '<th scope="row">FR</th><td class="num">1</td>' in fr_page
    assert '<th scope="row">DE</th>' not in fr_page  # who else offered stays hidden
    ee_page = html(signed_in(fed, "ee"), "/metrics/")
    assert '<th scope="row">FR</th><td class="num">1</td>' in ee_page
    assert '<th scope="row">DE</th><td class="num">1</td>' in ee_page


def test_trend_is_per_iso_week_of_submission(federation: Federation) -> None:
    rfa = file_request(federation, route_to=("fr",))  # routing completes triage
    page = html(signed_in(federation, "coordinator"), "/metrics/")
    year, week, _ = datetime.fromisoformat(str(rfa["submitted_at"])).isocalendar()
    assert f'<th scope="row">{year}-W{week:02d}</th><td class="num">' in page
    assert 'id="chart-trend"' in page


def test_metrics_needs_sign_in(client: object) -> None:
    from django.test import Client

    resp = Client().get("/metrics/")
    assert resp.status_code == 302 and "/login/" in resp["Location"]
