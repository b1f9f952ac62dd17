"""Nothing secret in the logs: a full sign-in (wrong password, CSRF failures, password, TOTP
enrolment, recovery codes), console pages and forms, API calls with a good, a wrong and a
malformed bearer token, and error answers that are not server errors, with every logger at
DEBUG; no captured record — its formatted message, its arguments, its traceback — holds the
password, the TOTP key, a recovery code, a session cookie, a CSRF token or an API token (or its
secret part). The same story against a real `vcisc serve` with uvicorn's access log on lives in
``tests/integration/test_log_secrets_served.py``."""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import Federation
from tests.web.logcapture import Capture, every_logger_at_debug, leaks
from vcisc.federation import services as fs

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple 7Q"
WRONG_PASSWORD = "incorrect mule battery staple 3Z"


@pytest.fixture
def every_log() -> Iterator[Capture]:
    with every_logger_at_debug() as capture:
        yield capture


class Story:
    """Drives one person through the console and the API, noting every secret it meets."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.secrets: dict[str, set[str]] = {}

    def note(self, what: str, *values: str) -> None:
        self.secrets.setdefault(what, set()).update(v for v in values if v)

    def cookies(self) -> None:
        for name, what in (("sessionid", "session cookie"), ("csrftoken", "CSRF cookie")):
            if name in self.client.cookies and self.client.cookies[name].value:
                self.note(what, self.client.cookies[name].value)

    def form_token(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
        assert found, f"no CSRF token on {path}"
        self.note("CSRF form token", found[1])
        self.cookies()
        return found[1]

    def post(self, path: str, data: dict[str, str], status: int, *, csrf: str | None) -> Any:
        if csrf is not None:
            data = {**data, "csrfmiddlewaretoken": csrf}
        resp = self.client.post(path, data)
        assert resp.status_code == status, (path, resp.status_code, resp.content[:300])
        self.cookies()
        return resp


def _code(secret: str) -> str:
    return f"{TOTP(base64.b32decode(secret.replace(' ', ''))).token():06d}"


def sign_in_and_use(fed: Federation) -> Story:
    """The whole story; every step asserts its answer, so a story that stopped short fails."""
    user = fed.users["ee"]
    user.set_password(PASSWORD)
    user.save()
    story = Story(Client(enforce_csrf_checks=True))
    story.note("password", PASSWORD, WRONG_PASSWORD)
    login = {"username": user.email, "password": PASSWORD}

    csrf = story.form_token("/login/")
    story.post("/login/", {**login, "password": WRONG_PASSWORD}, 200, csrf=csrf)
    # CSRF failures: no token at all, and a forged one; the password is in both posts.
    story.post("/login/", login, 403, csrf=None)
    story.post("/login/", login, 403, csrf="forged" + csrf[6:])
    resp = story.post("/login/", login, 302, csrf=csrf)
    assert resp["Location"] == "/login/enrol/"

    page = story.client.get("/login/enrol/").content.decode()
    shown = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert shown
    device = TOTPDevice.objects.get(user=user)
    story.note("TOTP key", shown[1], shown[1].replace(" ", ""), device.key)
    csrf = story.form_token("/login/enrol/")
    resp = story.post("/login/enrol/", {"code": _code(shown[1])}, 200, csrf=csrf)
    codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", resp.content.decode())
    assert len(codes) == 10
    story.note("recovery code", *codes)

    # Signed in: pages, a form, an error that is not a server error.
    assert story.client.get("/").status_code == 200
    story.cookies()
    csrf = story.form_token("/account/")
    resp = story.post("/account/recovery-codes/", {}, 200, csrf=csrf)
    story.note(
        "recovery code", *re.findall(r"<li><code>([a-z0-9]+)</code></li>", resp.content.decode())
    )
    assert story.client.get(f"/requests/{uuid.uuid4()}/").status_code == 404
    story.post("/account/recovery-codes/", {}, 403, csrf=None)  # CSRF failure when signed in
    # The API with the session: a write without the CSRF header is refused.
    resp = story.client.post("/api/v1/requests", "{}", content_type="application/json")
    assert resp.status_code in (401, 403), resp.status_code

    # The API with tokens.
    _, token = fs.create_token(user, user, days=30)
    key_id, secret = token.split("_", 2)[1:]
    wrong = f"vcisc_{key_id}_{'A' * len(secret)}"
    story.note("API token", token, secret, wrong, "A" * len(secret))
    api = Client()
    bearer: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert api.get("/api/v1/users/me", **bearer).status_code == 200
    assert api.get(f"/api/v1/requests/{uuid.uuid4()}", **bearer).status_code == 404
    resp = api.post("/api/v1/requests", "{not json", content_type="application/json", **bearer)
    assert 400 <= resp.status_code < 500
    resp = api.post("/api/v1/requests", {"title": 1}, content_type="application/json", **bearer)
    assert resp.status_code == 422
    assert api.get("/api/v1/users/me", HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 401
    assert (
        api.get("/api/v1/users/me", HTTP_AUTHORIZATION="Bearer not-a-vcisc-token").status_code
        == 401
    )
    # A token put in the query string by mistake is not accepted (and must not be logged).
    assert api.get(f"/api/v1/users/me?access_token={token}").status_code == 401

    csrf = story.form_token("/account/")
    story.post("/logout/", {}, 302, csrf=csrf)
    return story


def test_no_secret_reaches_any_log_record(federation: Federation, every_log: Capture) -> None:
    story = sign_in_and_use(federation)
    assert set(story.secrets) == {
        "password",
        "TOTP key",
        "recovery code",
        "session cookie",
        "CSRF cookie",
        "CSRF form token",
        "API token",
    }
    assert len(story.secrets["session cookie"]) >= 2  # the key changes at sign-in
    # The capture saw the story: CSRF refusals, 4xx answers, axes' failed password.
    text = "\n".join(every_log.lines)
    assert "Forbidden (CSRF token missing.)" in text
    assert "Not Found: /requests/" in text
    assert "AXES: " in text
    found = leaks(every_log.lines, story.secrets)
    assert not found, f"{len(found)} log record(s) hold secrets:\n" + "\n".join(found[:10])


def test_the_check_finds_a_secret_that_is_logged(
    federation: Federation, every_log: Capture
) -> None:
    """The assertion above can fail: a secret in a message or only in the arguments is found."""
    secret = "qz" + uuid.uuid4().hex
    logging.getLogger("vcisc.somewhere").debug("session %s", secret)
    logging.getLogger("django.request").warning("x", extra={"status_code": 400}, exc_info=False)
    logging.getLogger("axes").info("%r", {"key": secret[::-1]})
    found = leaks(every_log.lines, {"session cookie": {secret}, "reversed": {secret[::-1]}})
    assert len(found) == 2


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1:5 - "GET /login/oidc/x/callback/?code=abc123&state=def456 HTTP/1.1" 302',
            '127.0.0.1:5 - "GET /login/oidc/x/callback/?code=[redacted]&state=[redacted] HTTP/1.1"'
            " 302",
        ),
        (
            "GET /api/v1/requests?limit=3&Access_Token=t0k3n",
            "GET /api/v1/requests?limit=3&Access_Token=[redacted]",
        ),
        ("GET /x?token=&next=/requests/", "GET /x?token=[redacted]&next=/requests/"),
        (
            "Bearer vcisc_0a1b2c3d4e5f_Zm9vYmFyYmF6cXV4LWFiY19kZWY",
            "Bearer vcisc_0a1b2c3d4e5f_[redacted]",
        ),
        ("Using code_verifier: 'abc.DEF~123'", "Using code_verifier: '[redacted]'"),
        # Not credentials: left alone.
        ("GET /requests/?limit=3&offset=10&codes=x", "GET /requests/?limit=3&offset=10&codes=x"),
        ("state changed for vcisc_auth_at", "state changed for vcisc_auth_at"),
    ],
)
def test_redaction(line: str, expected: str) -> None:
    from vcisc.web.middleware import redact

    assert redact(line) == expected


def test_the_access_log_filter_rewrites_the_record_before_any_handler() -> None:
    from vcisc.web.middleware import SecretRedaction

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/cb/?code=s3cr3t-code", "1.1", 404),
        None,
    )
    assert SecretRedaction().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5 - "GET /cb/?code=[redacted] HTTP/1.1" 404'
    assert "s3cr3t" not in repr(record.args)
