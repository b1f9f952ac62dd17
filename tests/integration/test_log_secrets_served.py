"""Nothing secret in a real server's log: `vcisc serve` (uvicorn, access log on) with
``VCISC_LOG_LEVEL=DEBUG``, driven over HTTP through a full sign-in (wrong password, a CSRF
failure, password, TOTP enrolment), pages, API calls with a good, a wrong and a malformed token,
a token and an identity provider's ``code``/``state`` in query strings, and 4xx answers. Every
line the server wrote is then searched for the password, the TOTP key, the recovery codes, the
session and CSRF cookies, the CSRF form tokens and the API token (and its secret part)."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from pathlib import Path

import httpx
from django_otp.oath import TOTP

from tests.integration.serving import DemoData, environment, run, served
from tests.web.logcapture import leaks

EMAIL = "logcheck@cert.ee.example"
PASSWORD = "correct horse battery staple 7Q"
WRONG_PASSWORD = "incorrect mule battery staple 3Z"


def _csrf(client: httpx.Client, path: str, noted: set[str]) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, f"no CSRF token on {path}"
    noted.add(found[1])
    return found[1]


def test_the_served_log_holds_no_secret(tmp_path: Path, demo_data: DemoData) -> None:
    env = environment(demo_data.copy_to(tmp_path / "data"), log_level="DEBUG")
    run(
        env,
        "user",
        "create",
        "--email",
        EMAIL,
        "--org",
        "CERT-EE",
        "--roles",
        "liaison",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    token = run(env, "token", "create", "--user", EMAIL, "--quiet").strip()
    key_id, secret = token.split("_", 2)[1:]
    wrong = f"vcisc_{key_id}_{'B' * len(secret)}"
    code, state = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    found: dict[str, set[str]] = {
        "password": {PASSWORD, WRONG_PASSWORD},
        "API token": {token, secret, wrong},
        "OpenID Connect code or state": {code, state},
        "CSRF form token": set(),
        "cookie": set(),
    }
    log = tmp_path / "server.log"

    with served(env, log) as base, httpx.Client(base_url=base, timeout=30) as browser:

        def cookies() -> None:
            found["cookie"].update(c.value for c in browser.cookies.jar if c.value)

        login = {"username": EMAIL, "password": PASSWORD}
        csrf = _csrf(browser, "/login/", found["CSRF form token"])
        wrong_pw = {**login, "password": WRONG_PASSWORD, "csrfmiddlewaretoken": csrf}
        assert browser.post("/login/", data=wrong_pw).status_code == 200
        assert browser.post("/login/", data=login).status_code == 403  # no CSRF token
        resp = browser.post("/login/", data={**login, "csrfmiddlewaretoken": csrf})
        assert resp.status_code == 302 and resp.headers["location"] == "/login/enrol/"
        cookies()
        page = browser.get("/login/enrol/").text
        shown = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
        assert shown
        found["TOTP key"] = {shown[1], shown[1].replace(" ", "")}
        totp = f"{TOTP(base64.b32decode(shown[1].replace(' ', ''))).token():06d}"
        csrf = _csrf(browser, "/login/enrol/", found["CSRF form token"])
        resp = browser.post("/login/enrol/", data={"code": totp, "csrfmiddlewaretoken": csrf})
        assert resp.status_code == 200
        found["recovery code"] = set(re.findall(r"<li><code>([a-z0-9]+)</code></li>", resp.text))
        assert len(found["recovery code"]) == 10
        cookies()
        assert browser.get("/").status_code == 200
        assert browser.get(f"/requests/{uuid.uuid4()}/").status_code == 404
        # A session cookie and an identity provider's answer in the query string.
        callback = f"/login/oidc/nobody/callback/?code={code}&state={state}"
        assert browser.get(callback).status_code == 404
        csrf = _csrf(browser, "/account/", found["CSRF form token"])
        cookies()
        assert browser.post("/logout/", data={"csrfmiddlewaretoken": csrf}).status_code == 302

        api = httpx.Client(base_url=base, timeout=30)
        good = {"Authorization": f"Bearer {token}"}
        assert api.get("/api/v1/users/me", headers=good).status_code == 200
        assert api.get(f"/api/v1/requests/{uuid.uuid4()}", headers=good).status_code == 404
        resp = api.post("/api/v1/requests", content=b"{not json", headers=good)
        assert 400 <= resp.status_code < 500
        bad = {"Authorization": f"Bearer {wrong}"}
        assert api.get("/api/v1/users/me", headers=bad).status_code == 401
        malformed = {"Authorization": "Bearer not-a-vcisc-token"}
        assert api.get("/api/v1/users/me", headers=malformed).status_code == 401
        assert api.get(f"/api/v1/users/me?access_token={token}").status_code == 401
        assert api.get(f"/api/v1/users/me?limit=3&token={token}").status_code == 401
        api.close()

    lines = log.read_text(errors="replace").splitlines()
    text = "\n".join(lines)
    # The log is the one described: uvicorn's access lines, Django's and axes' records.
    assert '"POST /login/ HTTP/1.1" 302' in text and '"GET / HTTP/1.1" 200' in text
    assert "/api/v1/users/me?access_token=[redacted] HTTP/1.1" in text
    assert "/api/v1/users/me?limit=3&token=[redacted] HTTP/1.1" in text
    assert "/login/oidc/nobody/callback/?code=[redacted]&state=[redacted] HTTP/1.1" in text
    assert "Forbidden (CSRF token missing.): /login/" in text
    assert "AXES: " in text
    assert found["cookie"] and len(found["CSRF form token"]) >= 3
    problems = leaks(lines, {k: {v for v in vs if len(v) >= 8} for k, vs in found.items()})
    assert not problems, f"{len(problems)} log line(s) hold secrets:\n" + "\n".join(problems[:10])
