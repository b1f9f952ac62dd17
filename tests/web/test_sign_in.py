"""Every console page needs a session: absent or expired, the browser goes to /login/?next=…"""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from tests.conftest import Federation
from tests.web.conftest import html, signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/", "/requests/new/", "/requests/01a23456-0000-7000-8000-000000000001/"]
)
def test_pages_send_an_anonymous_browser_to_sign_in_with_next(path: str) -> None:
    resp = Client().get(path)
    assert resp.status_code == 302
    assert resp["Location"] == f"/login/?next={path}"


def test_sign_in_page_is_labelled_and_marked_up_for_everyone() -> None:
    page = html(Client(), "/login/?next=/requests/1/")
    assert '<html lang="en">' in page
    assert 'class="skip-link" href="#main"' in page and 'id="main"' in page
    assert '<label for="id_username"' in page and '<label for="id_password"' in page
    assert 'name="next" value="/requests/1/"' in page
    assert "csrfmiddlewaretoken" in page


@override_settings(VCISC_REQUIRE_SECOND_FACTOR=False)  # the second factor: test_second_factor
def test_sign_in_returns_to_next_and_sign_out_ends_the_session(federation: Federation) -> None:
    user = federation.users["ee"]
    user.set_password("correct horse battery staple")
    user.save()
    client = Client()
    resp = client.post(
        "/login/",
        {
            "username": "liaison@cert.ee.example",
            "password": "correct horse battery staple",
            "next": "/requests/new/",
        },
    )
    assert resp.status_code == 302 and resp["Location"] == "/requests/new/"
    assert client.get("/").status_code == 200
    resp = client.post("/logout/")
    assert resp.status_code == 302 and resp["Location"] == "/login/"
    assert client.get("/")["Location"] == "/login/?next=/"


def test_a_wrong_password_is_refused_on_the_page(federation: Federation) -> None:
    resp = Client().post("/login/", {"username": "liaison@cert.ee.example", "password": "nope"})
    assert resp.status_code == 200
    assert "Please enter a correct email and password" in resp.content.decode()


@override_settings(VCISC_REQUIRE_SECOND_FACTOR=False)
def test_sign_in_does_not_redirect_off_site(federation: Federation) -> None:
    user = federation.users["ee"]
    user.set_password("correct horse battery staple")
    user.save()
    resp = Client().post(
        "/login/?next=https://evil.example/",
        {"username": user.email, "password": "correct horse battery staple"},
    )
    assert resp.status_code == 302 and resp["Location"] == "/"


def test_an_expired_session_goes_back_to_sign_in(federation: Federation) -> None:
    client = signed_in(federation, "ee")
    assert client.get("/").status_code == 200
    Session.objects.all().delete()  # what expiry does on the server side
    resp = client.get("/requests/new/")
    assert resp.status_code == 302 and resp["Location"] == "/login/?next=/requests/new/"


def test_a_deactivated_user_loses_the_console(federation: Federation) -> None:
    client = signed_in(federation, "ee")
    user = federation.users["ee"]
    user.is_active = False
    user.save()
    assert client.get("/")["Location"] == "/login/?next=/"


def test_pages_are_not_cached_and_load_only_their_own_resources(federation: Federation) -> None:
    resp = signed_in(federation, "ee").get("/")
    assert "no-store" in resp["Cache-Control"]
    assert "default-src 'none'" in resp["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp["Content-Security-Policy"]


def test_forms_need_the_csrf_token(federation: Federation) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(federation.users["ee"])
    assert client.post("/requests/new/", {"title": "x"}).status_code == 403
    assert client.post("/logout/").status_code == 403


def test_off_site_next_is_dropped_with_the_second_factor_too(federation: Federation) -> None:
    user = federation.users["ee"]
    user.set_password("correct horse battery staple")
    user.save()
    client = Client()
    resp = client.post(
        "/login/?next=https://evil.example/",
        {"username": user.email, "password": "correct horse battery staple"},
    )
    assert resp["Location"] == "/login/enrol/"
    assert client.session["vcisc_pending_signin"]["next"] == "/"
