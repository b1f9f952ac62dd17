"""Directory reads: paging, filters and search over the federation's catalogue."""

from __future__ import annotations

import pytest

from tests.conftest import Federation

pytestmark = pytest.mark.django_db


def test_lists_are_paged(federation: Federation) -> None:
    api = federation.api("de")
    first = api.get("/organisations?limit=3").json()
    rest = api.get("/organisations?limit=3&offset=3").json()
    assert first["count"] == rest["count"] == 8
    assert len(first["items"]) == 3
    assert not {o["id"] for o in first["items"]} & {o["id"] for o in rest["items"]}
    assert api.get("/organisations?limit=501").status_code == 422
    assert api.get(f"/organisations?offset={2**70}").status_code == 422


def test_capability_filters(federation: Federation) -> None:
    api = federation.api("fr")

    def names(query: str) -> set[str]:
        return {c["organisation"] for c in api.get(f"/capabilities?{query}").json()["items"]}

    assert names("service_type=ics-ot-expertise") == {"CERT-Bund"}
    assert names("service_type=incident-response&nation=US") == {"CISA"}
    # A capability without sector limits matches any sector.
    assert "ANSSI" in names("sector=health") and "CERT-UA" not in names("sector=health")
    assert names("language=uk") == {"CERT-UA"}
    assert api.get("/capabilities?service_type=hacking").status_code == 422


def test_organisation_search(federation: Federation) -> None:
    found = federation.api("ee").get("/organisations?q=cert&kind=cert").json()["items"]
    assert {o["name"] for o in found} == {"CERT-EE", "CERT-Bund", "CERT-UA", "CERT-AM"}
