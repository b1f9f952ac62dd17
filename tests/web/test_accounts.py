"""People and tokens in the console: everyone's own tokens on the account page; administrators
add people, change roles, deactivate them, and issue or revoke their tokens. Every change is
audited; a new token's text appears once, in the response, and is never stored."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Federation
from tests.web.conftest import html, signed_in
from tests.web.test_story import post
from vcisc.audit.models import AuditRecord
from vcisc.federation.models import ApiToken, User
from vcisc.federation.services import TokenRejected, authenticate_token

pytestmark = pytest.mark.django_db


def _new_token(page: str) -> str:
    found = re.search(r'id="new-token-text" readonly value="([^"]+)"', page)
    assert found, page[:3000]
    return found[1]


def test_everyone_issues_and_revokes_their_own_tokens(federation: Federation) -> None:
    fed = federation
    de = signed_in(fed, "de")
    page = html(de, "/account/")
    assert "liaison@cert-bund.de.example" in page and 'id="token-form"' in page
    resp = de.post("/account/", {"form": "token", "name": "MISP sync", "days": "30"})
    assert resp.status_code == 201
    page = resp.content.decode()
    text = _new_token(page)
    assert authenticate_token(text) == fed.users["de"]
    assert "no-store" in resp["Cache-Control"]
    # Shown once: the next view of the page lists the token by key id, never its text.
    page = html(de, "/account/")
    row = ApiToken.objects.get(user=fed.users["de"], name="MISP sync")
    assert row.key_id in page and text not in page
    assert text not in str(de.session.items())
    # Bad input: the error is next to the field, nothing issued.
    page = post(de, "/account/", {"form": "token", "name": "x", "days": "0"}, 422)
    assert "Ensure this value is greater than or equal to 1" in page
    assert ApiToken.objects.filter(user=fed.users["de"]).count() == 2  # fixture's + this one
    # Revoke it; the API refuses it from then on.
    post(de, f"/tokens/{row.key_id}/revoke/", {})
    with pytest.raises(TokenRejected):
        authenticate_token(text)
    assert AuditRecord.objects.filter(action="revoke", object_id=str(row.pk)).exists()
    # Someone else's token is a 404 to a non-admin, as for no token at all.
    other = ApiToken.objects.filter(user=fed.users["fr"]).first()
    assert other is not None
    post(de, f"/tokens/{other.key_id}/revoke/", {}, 404)
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None


def test_people_pages_are_for_admins_only(federation: Federation) -> None:
    fed = federation
    for who in ("de", "coordinator"):
        client = signed_in(fed, who)
        html(client, "/users/", status=403)
        html(client, "/users/new/", status=403)
        html(client, f"/users/{fed.users['fr'].pk}/", status=403)
        post(client, f"/users/{fed.users['fr'].pk}/deactivate/", {}, 403)
        assert "People</a>" not in html(client, "/")
    admin = signed_in(fed, "admin")
    assert "People</a>" in html(admin, "/")
    page = html(admin, "/users/?q=cert-bund")
    assert "liaison@cert-bund.de.example" in page and "anssi" not in page
    html(admin, "/users/999999/", status=404)


def test_admin_adds_a_person_edits_roles_and_deactivates(federation: Federation) -> None:
    fed = federation
    admin = signed_in(fed, "admin")
    fr = fed.orgs["fr"]
    new = {
        "email": "Duty@ANSSI.fr.example",
        "first_name": "Camille",
        "last_name": "Martin",
        "organisation": str(fr.pk),
        "roles": ["analyst"],
        "password": "",
    }
    # The service's rule lands on its field, with the input kept.
    page = post(admin, "/users/new/", {**new, "roles": ["coordinator"]}, 422)
    assert "the coordinator role belongs to secretariat users" in page
    assert 'value="Camille"' in page
    page = post(admin, "/users/new/", {**new, "email": "not-an-address"}, 422)
    assert "Enter a valid email address." in page
    resp = admin.post("/users/new/", new)
    assert resp.status_code == 302
    person = User.objects.get(email="duty@anssi.fr.example")
    assert person.organisation == fr and person.roles == ["analyst"]
    assert not person.has_usable_password()
    assert resp["Location"] == f"/users/{person.pk}/"
    # The same address again: a conflict message, no second account.
    page = post(admin, "/users/new/", new, 422)
    assert "an account with this e-mail address already exists" in page
    assert User.objects.filter(email="duty@anssi.fr.example").count() == 1

    url = f"/users/{person.pk}/"
    edit = {
        "form": "user",
        "first_name": "Camille",
        "last_name": "Martin",
        "organisation": str(fr.pk),
        "roles": ["analyst", "liaison"],
    }
    page = post(admin, url, {**edit, "roles": ["coordinator"]}, 422)
    assert "the coordinator role belongs to secretariat users" in page
    person.refresh_from_db()
    assert person.roles == ["analyst"]
    post(admin, url, edit)
    person.refresh_from_db()
    assert sorted(person.roles) == ["analyst", "liaison"]
    assert AuditRecord.objects.filter(action="update", object_id=str(person.pk)).exists()

    # A token for them, shown once to the admin.
    resp = admin.post(url, {"form": "token", "name": "SOAR", "days": "7"})
    assert resp.status_code == 201
    text = _new_token(resp.content.decode())
    assert authenticate_token(text) == person

    post(admin, f"/users/{person.pk}/deactivate/", {})
    person.refresh_from_db()
    assert not person.is_active
    with pytest.raises(TokenRejected):
        authenticate_token(text)
    assert AuditRecord.objects.filter(action="deactivate", object_id=str(person.pk)).exists()
    # No deactivating oneself.
    me = fed.users["admin"]
    post(admin, f"/users/{me.pk}/deactivate/", {})
    me.refresh_from_db()
    assert me.is_active
