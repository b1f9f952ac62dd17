"""The leak suite finds the routes itself, and refuses the ones it cannot exercise."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
from django.http import StreamingHttpResponse

from tests.leak.build import Built
from tests.leak.checker import Checker
from tests.leak.routes import DESCRIBED, Route, Undescribed, discover
from tests.leak.world import World


def test_every_read_route_is_found() -> None:
    from vcisc.api import api
    from vcisc.web import urls as web

    labels = {r.label for r in discover()}
    schema = api.get_openapi_schema()["paths"]
    assert {f"GET {path}" for path, ops in schema.items() if "get" in ops} <= labels
    skipped = {label for label, d in DESCRIBED.items() if d.skip}
    pages = {f"web:{p.name}" for p in web.urlpatterns if getattr(p, "name", None)}
    assert pages - skipped <= labels
    assert {"healthz", "api-v1:openapi-json", "admin:index"} <= labels
    events = next(r for r in discover() if r.label == "web:events")
    assert dict(events.query) == {"once": "1", "since": "0"} and events.streams


def test_a_route_it_cannot_fill_fails_until_described(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.leak.undescribed_urls"
    with pytest.raises(Undescribed, match=r"widget: path parameter 'widget_id'.*DESCRIBED"):
        discover()


def test_an_api_parameter_it_cannot_fill_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from vcisc.api import api

    schema = api.get_openapi_schema()
    widget = {"in": "path", "name": "widget_id", "required": True, "schema": {"type": "integer"}}
    schema["paths"]["/api/v1/widgets/{widget_id}"] = {"get": {"parameters": [widget]}}
    monkeypatch.setattr(api, "get_openapi_schema", lambda *a, **k: schema)
    with pytest.raises(Undescribed, match=r"GET /api/v1/widgets/\{widget_id\}"):
        discover()


def test_a_stream_it_was_not_told_about_is_a_finding() -> None:
    checker = Checker(Built(World(), {}), [], probes=0, stats=Counter())
    route = Route("page", "web:ticker", "/ticker/")
    answer = checker.answer(None, route, "/ticker/", StreamingHttpResponse(iter([b"x"])))
    assert answer is None
    assert "answers with a stream; describe" in checker.findings[0].problem


def test_djangos_template_debugging_stays_off_in_the_configuration() -> None:
    """The leak suite records every logger at DEBUG but ``django.template`` (see conftest.py):
    that is only sound while the configuration keeps it above DEBUG."""
    assert logging.getLogger("django.template").getEffectiveLevel() > logging.DEBUG
