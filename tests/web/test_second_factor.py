"""Sign-in end to end over HTTP: password, then TOTP enrolment (QR code, recovery codes) or a
code; lockout after repeated wrong passwords; per-IP rate limits; session expiry; sign-out
everywhere. Every security-relevant failure leaves an audit record and changes nothing."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django_otp.oath import TOTP

from tests.conftest import Federation
from vcisc.audit.models import AuditRecord
from vcisc.web.middleware import AUTH_AT, SEEN_AT

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Any:
    """Rate-limit counters live in the process cache: start every test from zero."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _with_password(fed: Federation, who: str = "ee") -> Any:
    user = fed.users[who]
    user.set_password(PASSWORD)
    user.save()
    return user


def _code(secret: str, *, ahead: int = 0) -> str:
    key = base64.b32decode(secret.replace(" ", ""))
    totp = TOTP(key)
    totp.time = time.time() + 30 * ahead
    return f"{totp.token():06d}"


def _password(client: Client, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/login/", {"username": email, "password": password, **extra})


def _enrol(client: Client, email: str, next_: str = "") -> tuple[str, list[str]]:
    """Password, then enrolment: (the TOTP secret, the recovery codes shown once)."""
    resp = _password(client, email, next=next_) if next_ else _password(client, email)
    assert resp.status_code == 302 and resp["Location"] == "/login/enrol/", resp.content[:500]
    page = client.get("/login/enrol/").content.decode()
    assert "<svg" in page and 'role="img"' in page  # the QR code, inline
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert secret
    resp = client.post("/login/enrol/", {"code": _code(secret[1])})
    assert resp.status_code == 200, resp.content[:1000]
    codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", resp.content.decode())
    assert len(codes) == 10
    return secret[1], codes


def test_first_sign_in_enrols_then_every_sign_in_asks_for_a_code(federation: Federation) -> None:
    user = _with_password(federation)
    client = Client()
    # The password alone signs no one in: every page still sends the browser to sign in.
    resp = _password(client, user.email)
    assert client.get("/")["Location"] == "/login/?next=/"
    assert client.get("/api/v1/users/me").status_code == 401
    # A wrong code at enrolment: refused next to the field, still not signed in.
    assert client.post("/login/enrol/", {"code": "000000"}).status_code == 422
    assert client.get("/")["Location"] == "/login/?next=/"
    assert AuditRecord.objects.filter(action="auth.second-factor-failed").count() == 1
    time.sleep(1.1)  # a wrong code makes the next one wait a second (django-otp's back-off)

    client = Client()
    secret, codes = _enrol(client, user.email)
    assert client.get("/").status_code == 200
    assert AuditRecord.objects.filter(action="auth.enrolled", object_id=str(user.pk)).exists()

    # Next time: password, then a code; back where the person was going.
    other = Client()
    resp = _password(other, user.email, next="/requests/new/")
    assert resp["Location"] == "/login/verify/"
    # The enrolment page never shows the key again.
    assert other.get("/login/enrol/")["Location"] == "/login/verify/"
    resp = other.post("/login/verify/", {"code": "123456"})
    assert resp.status_code == 422 and "That code is not right" in resp.content.decode()
    time.sleep(1.1)  # the back-off after a wrong code
    resp = other.post("/login/verify/", {"code": _code(secret, ahead=1)})
    assert resp.status_code == 302 and resp["Location"] == "/requests/new/"
    assert other.get("/").status_code == 200

    # A recovery code works once.
    third = Client()
    _password(third, user.email)
    resp = third.post("/login/verify/", {"code": codes[0]})
    assert resp.status_code == 302
    fourth = Client()
    _password(fourth, user.email)
    assert fourth.post("/login/verify/", {"code": codes[0]}).status_code == 422
    assert AuditRecord.objects.filter(action="auth.recovery-code-used").count() == 1


def test_code_step_without_a_password_step_starts_over(federation: Federation) -> None:
    client = Client()
    for path in ("/login/verify/", "/login/enrol/"):
        resp = client.post(path, {"code": "123456"})
        assert resp.status_code == 302 and resp["Location"] == "/login/"


def test_pending_sign_in_expires(federation: Federation, monkeypatch: Any) -> None:
    user = _with_password(federation)
    client = Client()
    _password(client, user.email)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 301)
    assert client.get("/login/enrol/")["Location"] == "/login/"


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_the_account(federation: Federation) -> None:
    user = _with_password(federation)
    client = Client()
    for _ in range(2):
        resp = _password(client, user.email, "wrong password!")
        assert resp.status_code == 200 and "Please enter a correct" in resp.content.decode()
    resp = _password(client, user.email, "wrong password!")
    assert resp.status_code == 429 and "locked" in resp.content.decode()
    # Locked: even the right password is refused, from anywhere, and no session is made.
    resp = _password(Client(REMOTE_ADDR="10.9.8.7"), user.email)
    assert resp.status_code == 429
    # Three wrong passwords and the refused attempt during the lockout.
    assert AuditRecord.objects.filter(action="auth.password-failed").count() == 4
    assert AuditRecord.objects.filter(action="auth.locked-out").exists()
    # Another account is not locked by it.
    other = _with_password(federation, "de")
    assert _password(Client(), other.email)["Location"] == "/login/enrol/"


@override_settings(VCISC_SIGNIN_RATE_PER_IP="4/d", AXES_FAILURE_LIMIT=100)
def test_sign_in_posts_are_rate_limited_per_address(federation: Federation) -> None:
    client = Client(REMOTE_ADDR="192.0.2.10")
    statuses = [_password(client, f"nobody{i}@example.org", "x" * 12).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    # Another address is not affected.
    assert _password(Client(REMOTE_ADDR="192.0.2.11"), "a@example.org", "x").status_code == 200


@override_settings(VCISC_API_RATE_PER_TOKEN="3/d")
def test_api_calls_are_rate_limited_per_token(federation: Federation) -> None:
    ee, de = federation.api("ee"), federation.api("de")
    assert [ee.get("/users/me").status_code for _ in range(4)] == [200, 200, 200, 429]
    resp = ee.get("/users/me")
    assert resp.status_code == 429 and resp["Retry-After"] == "60"
    assert "rate limit" in resp.json()["detail"]
    assert de.get("/users/me").status_code == 200  # per token


@override_settings(VCISC_REQUIRE_SECOND_FACTOR=False)
def test_second_factor_can_be_optional_for_those_not_enrolled(federation: Federation) -> None:
    user = _with_password(federation)
    client = Client()
    resp = _password(client, user.email)
    assert resp.status_code == 302 and resp["Location"] == "/"
    assert client.get("/").status_code == 200


def _signed_in(fed: Federation) -> Client:
    client = Client()
    client.force_login(fed.users["ee"])
    assert client.get("/").status_code == 200
    return client


def _age(client: Client, **seconds: float) -> None:
    session = client.session
    for key, ago in seconds.items():
        session[{"auth": AUTH_AT, "seen": SEEN_AT}[key]] = time.time() - ago
    session.save()


def test_idle_session_expires_and_returns_after_sign_in(federation: Federation) -> None:
    client = _signed_in(federation)
    _age(client, seen=31 * 60)
    resp = client.get("/requests/new/")
    assert resp.status_code == 302 and resp["Location"] == "/login/?next=/requests/new/"
    assert client.get("/")["Location"] == "/login/?next=/"
    # The API refuses the expired session too.
    client = _signed_in(federation)
    _age(client, seen=31 * 60)
    assert client.get("/api/v1/users/me").status_code == 401


def test_session_ends_at_its_absolute_limit_even_when_busy(federation: Federation) -> None:
    client = _signed_in(federation)
    _age(client, auth=8 * 3600 + 1, seen=5)
    assert client.get("/")["Location"] == "/login/?next=/"


def test_sign_out_everywhere_ends_every_session(federation: Federation) -> None:
    one, two = _signed_in(federation), _signed_in(federation)
    resp = one.post("/account/sign-out-everywhere/")
    assert resp.status_code == 302 and resp["Location"] == "/login/"
    assert two.get("/")["Location"] == "/login/?next=/"
    assert one.get("/")["Location"] == "/login/?next=/"
    assert AuditRecord.objects.filter(action="auth.sign-out-everywhere").count() == 1
    # The API tokens are a separate credential and keep working.
    assert federation.api("ee").get("/users/me").status_code == 200


def test_new_recovery_codes_replace_the_old(federation: Federation) -> None:
    user = _with_password(federation)
    client = Client()
    _, old = _enrol(client, user.email)
    page = client.get("/account/").content.decode()
    assert "10 recovery codes left" in page
    resp = client.post("/account/recovery-codes/")
    new = re.findall(r"<li><code>([a-z0-9]+)</code></li>", resp.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    other = Client()
    _password(other, user.email)
    assert other.post("/login/verify/", {"code": old[1]}).status_code == 422
    time.sleep(1.1)  # the back-off after a wrong code
    assert other.post("/login/verify/", {"code": new[1]}).status_code == 302


def test_security_headers_and_body_limit(federation: Federation) -> None:
    resp = Client().get("/login/")
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert resp["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp["Content-Security-Policy"]
    assert "unsafe-inline" not in resp["Content-Security-Policy"]
    assert "HttpOnly" in str(_signed_in(federation).cookies["sessionid"])
    limit = settings.VCISC_MAX_BODY_BYTES
    before = AuditRecord.objects.count()
    resp = federation.api("ee").client.post(
        "/api/v1/requests",
        data=b"x",
        content_type="application/json",
        CONTENT_LENGTH=str(limit + 1),
        HTTP_AUTHORIZATION=f"Bearer {federation.api('ee').token}",
    )
    assert resp.status_code == 413 and "over the limit" in resp.json()["detail"]
    assert AuditRecord.objects.count() == before
    resp = Client().post("/login/", data=b"x", content_type="text/plain", CONTENT_LENGTH="x")
    assert resp.status_code == 400
