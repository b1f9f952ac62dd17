"""TLP badges in FIRST's TLP 2.0 colours, the EXERCISE watermark, the stylesheet and 404 page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.conftest import Federation, rfa_body
from tests.web.conftest import file_request, html, signed_in
from vcisc.assistance import services
from vcisc.tlp import Tlp
from vcisc.web.templatetags.vcisc_web import tlp_badge


@pytest.mark.parametrize(
    "value,css,label",
    [
        ("clear", "tlp-clear", "TLP:CLEAR"),
        ("white", "tlp-clear", "TLP:CLEAR"),  # TLP 1.0 WHITE means CLEAR
        ("green", "tlp-green", "TLP:GREEN"),
        ("amber", "tlp-amber", "TLP:AMBER"),
        ("amber+strict", "tlp-amber-strict", "TLP:AMBER+STRICT"),
        (Tlp.RED, "tlp-red", "TLP:RED"),
    ],
)
def test_badge_spells_out_the_label(value: str, css: str, label: str) -> None:
    assert tlp_badge(value) == f'<span class="tlp {css}">{label}</span>'


def test_stylesheet_has_first_tlp_colours_on_black() -> None:
    path = finders.find("web/vcisc.css")
    assert isinstance(path, str)
    css = Path(path).read_text(encoding="utf-8").lower()
    badge = css.split(".tlp {")[1].split("}")[0]
    assert "background: #000000" in badge
    for selector, colour in [
        (".tlp-clear {", "#ffffff"),
        (".tlp-green {", "#33ff00"),
        (".tlp-amber-strict {", "#ffc000"),
        (".tlp-red {", "#ff2b2b"),
    ]:
        assert f"color: {colour}" in css.split(selector)[1].split("}")[0], selector
    assert ":focus-visible" in css
    assert "http://" not in css and "https://" not in css and "@import" not in css


@pytest.mark.django_db
def test_pages_link_the_local_stylesheet(federation: Federation) -> None:
    client = signed_in(federation, "ee")
    page = html(client, "/")
    assert '<link rel="stylesheet" href="/static/web/vcisc.css">' in page
    # Only our own scripts, by URL: nothing inline, nothing from elsewhere.
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == []
    assert all(
        src.startswith("/static/") for src in re.findall(r'<script[^>]*\ssrc="([^"]+)"', page)
    )
    assert client.get("/static/web/vcisc.css").status_code == 200


@pytest.mark.django_db
def test_exercise_requests_are_watermarked(federation: Federation) -> None:
    rfa = services.create_rfa(federation.users["ee"], rfa_body(), is_exercise=True)
    assert '<span class="exercise">EXERCISE</span>' in html(signed_in(federation, "ee"), "/")
    page = html(signed_in(federation, "ee"), f"/requests/{rfa.pk}/")
    assert '<span class="exercise">EXERCISE</span>' in page


@pytest.mark.django_db
def test_unknown_pages_answer_the_console_404() -> None:
    resp = Client().get("/no/such/page/")
    assert resp.status_code == 404
    page = resp.content.decode()
    assert '<html lang="en">' in page and "Not found" in page


def test_exercise_data_carries_the_exercise_banner(federation: Federation) -> None:
    fed = federation
    body = rfa_body()
    body.pop("submit", None)
    drill = services.create_rfa(fed.users["ee"], body, submit=True, is_exercise=True)
    real = file_request(fed, title="A real one")
    ee = signed_in(fed, "ee")
    banner = 'id="exercise-banner"'
    assert banner in html(ee, f"/requests/{drill.pk}/")
    assert banner not in html(ee, f"/requests/{real['id']}/")
    assert banner in html(ee, "/")  # the home page lists it
    assert banner in html(signed_in(fed, "coordinator"), "/")
    assert banner not in html(signed_in(fed, "de"), "/")  # DE's home shows no exercise data
