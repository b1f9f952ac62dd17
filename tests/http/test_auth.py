"""Authentication: tokens shown once, stored hashed, expiring, revocable; every route but health
requires authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import Api, Federation
from vcisc.federation import services as fs
from vcisc.federation.models import ApiToken

pytestmark = pytest.mark.django_db


def test_health_answers_without_authentication() -> None:
    resp = Client().get("/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/requests",
        "/api/v1/nations",
        "/api/v1/openapi.json",
        "/api/v1/engagements",
        "/api/v1/users/me",
        "/api/v1/docs",
    ],
)
def test_everything_else_needs_authentication(path: str) -> None:
    resp = Client().get(path)
    assert resp.status_code == 401


def test_openapi_document_is_served_to_an_authenticated_client(federation: Federation) -> None:
    doc = federation.api("ee").get("/openapi.json").json()
    assert doc["info"]["title"] == "VCISC API"
    assert "/api/v1/requests/{rfa_id}/transitions" in doc["paths"]


def test_token_is_stored_hashed_and_works(federation: Federation) -> None:
    api = federation.api("ee")
    row = ApiToken.objects.get(user=api.user)
    secret = api.token.split("_", 2)[2]
    assert secret not in row.digest and len(row.digest) == 64
    assert api.get("/users/me").json()["email"] == "liaison@cert.ee.example"


@pytest.mark.parametrize(
    "header,reason",
    [
        ("Bearer vcisc_nope_nope", "unknown token"),
        ("Bearer garbage", "malformed token"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(header: str, reason: str) -> None:
    resp = Client().get("/api/v1/requests", HTTP_AUTHORIZATION=header)
    assert resp.status_code == 401 and resp.json()["detail"] == reason


def test_expired_token_is_refused(federation: Federation) -> None:
    user = federation.users["ee"]
    _, text = fs.create_token(None, user, days=1, now=timezone.now() - timedelta(days=2))
    resp = Api(user, text).get("/requests")
    assert resp.status_code == 401 and resp.json()["detail"] == "token expired"


def test_revoked_token_is_refused(federation: Federation) -> None:
    api = federation.api("ee")
    key_id = api.token.split("_")[1]
    assert api.post(f"/tokens/{key_id}/revoke").json()["revoked_at"] is not None
    resp = api.get("/requests")
    assert resp.status_code == 401 and resp.json()["detail"] == "token revoked"


def test_deactivated_user_loses_access(federation: Federation) -> None:
    admin, de = federation.api("admin"), federation.api("de")
    assert admin.post(f"/users/{de.user.pk}/deactivate").status_code == 200
    assert de.get("/requests").status_code == 401


def test_token_issued_through_the_api_is_shown_once(federation: Federation) -> None:
    api = federation.api("fr")
    created = api.post("/tokens", {"name": "laptop", "days": 7})
    assert created.status_code == 201
    text = created.json()["token"]
    assert Api(api.user, text).get("/users/me").status_code == 200
    listed = api.get("/tokens").json()
    assert all("token" not in t for t in listed) and len(listed) == 2


def test_only_admins_issue_tokens_for_others(federation: Federation) -> None:
    fr, admin = federation.api("fr"), federation.api("admin")
    other = federation.users["de"].pk
    assert fr.post("/tokens", {"user_id": other}).status_code == 404  # not even visible
    assert admin.post("/tokens", {"user_id": other}).status_code == 201


def test_passwords_are_hashed_with_argon2(federation: Federation) -> None:
    user = fs.create_user(
        None,
        email="pw@cert.ee.example",
        organisation_id=federation.orgs["ee"].pk,
        roles=["analyst"],
        password="a long enough passphrase",
    )
    assert user.password.startswith("argon2$")
    assert user.check_password("a long enough passphrase")
