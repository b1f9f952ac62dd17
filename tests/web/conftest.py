"""Helpers for the console's tests: sign in as a fixture user, file requests through the API."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.conftest import Federation, rfa_body


def signed_in(fed: Federation, who: str) -> Client:
    """A browser session for ``who`` (a key of ``federation.users``)."""
    client = Client()
    client.force_login(fed.users[who])
    return client


def html(client: Client, url: str, status: int = 200) -> str:
    resp = client.get(url)
    assert resp.status_code == status, (resp.status_code, resp.content[:500])
    text: str = resp.content.decode()
    return text


def file_request(
    fed: Federation, *, route_to: tuple[str, ...] = (), triage: bool = False, **overrides: Any
) -> dict[str, Any]:
    """EE files and submits a request; the secretariat starts triage and routes it if asked."""
    ee, coord = fed.api("ee"), fed.api("coordinator")
    resp = ee.post("/requests", rfa_body(submit=True, **overrides))
    assert resp.status_code == 201, resp.content
    rid = resp.json()["id"]
    if triage or route_to:
        resp = coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
        assert resp.status_code == 200, resp.content
    if route_to:
        orgs = [fed.orgs[k].pk for k in route_to]
        resp = coord.post(f"/requests/{rid}/routes", {"organisations": orgs})
        assert resp.status_code == 200, resp.content
    data: dict[str, Any] = ee.get(f"/requests/{rid}").json()
    return data
