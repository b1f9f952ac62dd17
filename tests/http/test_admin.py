"""Django's admin for operators: directory, tokens, outbox and audit — read-only, and no request
content anywhere."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Federation, rfa_body
from vcisc.audit.models import AuditRecord
from vcisc.federation.models import Nation

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(federation: Federation) -> Client:
    client = Client()
    client.force_login(federation.users["admin"])
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/federation/nation/",
        "/admin/federation/organisation/",
        "/admin/federation/pointofcontact/",
        "/admin/federation/capability/",
        "/admin/federation/user/",
        "/admin/federation/apitoken/",
        "/admin/notify/outboxmessage/",
        "/admin/audit/auditrecord/",
    ],
)
def test_operator_pages_load(admin_client: Client, path: str) -> None:
    assert admin_client.get(path).status_code == 200


def test_no_request_content_in_the_admin(federation: Federation, admin_client: Client) -> None:
    federation.api("ee").post("/requests", rfa_body(submit=True))
    for path in ("/admin/assistance/requestforassistance/", "/admin/engagements/note/"):
        assert admin_client.get(path).status_code == 404
    record = AuditRecord.objects.filter(object_type="assistance.requestforassistance").first()
    assert record is not None
    page = admin_client.get(f"/admin/audit/auditrecord/{record.pk}/change/").content.decode()
    assert "Elering" not in page and rfa_body()["title"] not in page


def test_nothing_is_edited_in_place(federation: Federation, admin_client: Client) -> None:
    nation = Nation.objects.get(code="EE")
    assert admin_client.get("/admin/federation/nation/add/").status_code == 403
    resp = admin_client.post(
        f"/admin/federation/nation/{nation.pk}/change/", {"name": "Renamed", "kind": "member"}
    )
    assert resp.status_code == 403
    assert Nation.objects.get(pk=nation.pk).name == "Estonia"


def test_deactivate_action_is_audited(federation: Federation, admin_client: Client) -> None:
    nation = Nation.objects.get(code="UA")
    resp = admin_client.post(
        "/admin/federation/nation/",
        {"action": "deactivate_selected", "_selected_action": [nation.pk]},
    )
    assert resp.status_code == 302
    assert Nation.objects.get(pk=nation.pk).active is False
    assert AuditRecord.objects.filter(action="deactivate", object_id=str(nation.pk)).exists()


def test_non_operators_are_kept_out(federation: Federation) -> None:
    client = Client()
    client.force_login(federation.users["ee"])
    assert client.get("/admin/federation/nation/").status_code == 302  # to the login page
