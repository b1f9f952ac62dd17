"""``VCISC_MAX_BODY_BYTES`` against a real `vcisc serve` (uvicorn): bodies with a declared
``Content-Length`` and bodies sent chunked, with no length (``Transfer-Encoding: chunked``), to
the API and to a console form, as JSON, a form and a file upload. Over the limit the answer is
413 with a message that says so, and nothing changes; at the limit the body is read as usual.
Then :class:`vcisc.web.middleware.BodyLimit` alone, with an application that records what it
was given."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.serving import DemoData, environment, run, served

LIMIT = 64 * 1024
NATION = {"code": "XQ", "name": "Padland", "kind": "partner"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, demo_data: DemoData
) -> Iterator[tuple[str, dict[str, str]]]:
    data = demo_data.copy_to(tmp_path_factory.mktemp("body-limit") / "data")
    env = environment(data, max_body_bytes=str(LIMIT))
    token = run(env, "token", "create", "--user", "admin@secretariat.example", "--quiet")
    with served(env) as base:
        yield base, {"env": json.dumps(env), "token": token.strip()}


def _records(info: dict[str, str]) -> int:
    """Audit records in the database: any change writes one."""
    found = re.search(r"(\d+) records", run(json.loads(info["env"]), "audit", "verify"))
    assert found, "vcisc audit verify did not count the records"
    return int(found[1])


def _chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, without Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _padded_json(body: dict[str, Any], total: int) -> bytes:
    """Valid JSON of exactly ``total`` bytes (trailing white space): what the limit must stop
    would otherwise be accepted."""
    text = json.dumps(body).encode()
    return text + b" " * (total - len(text))


def _nations(base: str, token: str) -> set[str]:
    resp = httpx.get(f"{base}/api/v1/nations", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    return {n["code"] for n in resp.json()}


def test_a_chunked_api_body_over_the_limit_is_refused_and_changes_nothing(
    server: tuple[str, dict[str, str]],
) -> None:
    base, info = server
    auth = {"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"}
    before = _records(info)
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        resp = client.post("/api/v1/nations", content=_chunks(_padded_json(NATION, LIMIT + 1)))
        assert resp.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in resp.request.headers
        assert resp.status_code == 413, resp.text
        assert resp.json() == {"detail": f"request body is over the limit of {LIMIT} bytes"}
        # Far over the limit: the same answer, and the connection stays usable afterwards.
        resp = client.post("/api/v1/nations", content=_chunks(_padded_json(NATION, 40 * LIMIT)))
        assert resp.status_code == 413
        assert client.get("/api/v1/users/me").status_code == 200
    assert "XQ" not in _nations(base, info["token"])
    assert _records(info) == before


def test_a_chunked_api_body_at_the_limit_is_read(server: tuple[str, dict[str, str]]) -> None:
    base, info = server
    auth = {"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"}
    body = _padded_json({**NATION, "code": "XR", "name": "Edgeland"}, LIMIT)
    resp = httpx.post(f"{base}/api/v1/nations", content=_chunks(body), headers=auth)
    assert resp.status_code == 201, resp.text
    assert "XR" in _nations(base, info["token"])


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    server: tuple[str, dict[str, str]],
) -> None:
    base, info = server
    auth = {"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"}
    before = _records(info)
    body = _padded_json({**NATION, "code": "XS"}, LIMIT + 1)
    resp = httpx.post(f"{base}/api/v1/nations", content=body, headers=auth)
    assert resp.request.headers["content-length"] == str(LIMIT + 1)
    assert resp.status_code == 413
    assert resp.json()["detail"] == (
        f"request body of {LIMIT + 1} bytes is over the limit of {LIMIT} bytes"
    )
    assert "XS" not in _nations(base, info["token"])
    assert _records(info) == before


def _login_form(client: httpx.Client) -> dict[str, str]:
    page = client.get("/login/")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    return {
        "csrfmiddlewaretoken": token[1],
        "username": "liaison@cert.ee.example",
        "password": "not the password at all",
    }


def test_console_form_posts_and_uploads_over_the_limit_are_refused(
    server: tuple[str, dict[str, str]],
) -> None:
    """A wrong password that reached Django would be an ``auth.password-failed`` record."""
    base, info = server
    before = _records(info)
    with httpx.Client(base_url=base, timeout=30) as client:
        form = _login_form(client)
        plain = str(httpx.QueryParams(form)).encode()
        # Within the limit the form is read: a wrong password, one audit record.
        resp = client.post(
            "/login/",
            content=_chunks(plain),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status_code == 200 and "Please enter a correct" in resp.text
        assert _records(info) == before + 1

        padded = plain + b"&padding=" + b"x" * LIMIT
        contents: list[bytes | Iterator[bytes]] = [_chunks(padded), padded]  # no length, length
        for content in contents:
            resp = client.post(
                "/login/",
                content=content,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert resp.status_code == 413, resp.text
            assert resp.headers["content-type"].startswith("text/plain")
            assert "over the limit of" in resp.text

        # A file upload (multipart), chunked, then with its length.
        upload = httpx.Request(
            "POST",
            f"{base}/login/",
            data=form,
            files={"evidence": ("dump.bin", b"\x00" * (LIMIT + 10), "application/octet-stream")},
        )
        multipart = upload.read()
        kind = upload.headers["content-type"]
        for content in (_chunks(multipart), multipart):
            resp = client.post("/login/", content=content, headers={"Content-Type": kind})
            assert resp.status_code == 413, resp.text
    assert _records(info) == before + 1


# --- the ASGI middleware alone ------------------------------------------------------------------


def _drive(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Run BodyLimit over an app that reads the whole body (as Django's handler does) and
    answers 200; what the app read, how many messages were taken, what was sent."""
    from vcisc.web.middleware import BodyLimit

    seen: dict[str, Any] = {"body": b"", "aborted": False, "sent": [], "taken": 0}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen["aborted"] = True
                return
            seen["body"] += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    queue = list(messages)

    async def receive() -> dict[str, Any]:
        seen["taken"] += 1
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        seen["sent"].append(message)

    scope = {"type": "http", "path": "/api/v1/nations", "method": "POST", "headers": headers}
    asyncio.run(BodyLimit(app)(scope, receive, send))  # type: ignore[arg-type]
    return seen


def _body(chunk: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": chunk, "more_body": more}


def test_the_app_never_gets_more_than_the_limit(settings: Any) -> None:
    settings.VCISC_MAX_BODY_BYTES = 1000
    # Chunked: the message that passes the limit is not handed on; the rest is never taken.
    seen = _drive([_body(b"a" * 600), _body(b"b" * 600), _body(b"c" * 600, False)], [])
    assert seen["aborted"] and seen["body"] == b"a" * 600 and seen["taken"] == 2
    start, body = seen["sent"]
    assert start["status"] == 413 and json.loads(body["body"])["detail"] == (
        "request body is over the limit of 1000 bytes"
    )
    # Exactly the limit is read, in any number of messages.
    seen = _drive([_body(b"a" * 500), _body(b"b" * 500, False)], [])
    assert not seen["aborted"] and len(seen["body"]) == 1000
    assert seen["sent"][0]["status"] == 200
    # A declared length over the limit: answered without taking a single message.
    seen = _drive([_body(b"a", False)], [(b"content-length", b"1001")])
    assert seen["taken"] == 0 and seen["body"] == b"" and seen["sent"][0]["status"] == 413
    assert b"1001 bytes" in seen["sent"][1]["body"]


def test_other_scopes_pass_through(settings: Any) -> None:
    from vcisc.web.middleware import BodyLimit

    settings.VCISC_MAX_BODY_BYTES = 1000
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["type"])

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: Any) -> None:
        return None

    asyncio.run(BodyLimit(app)({"type": "lifespan"}, nothing, ignore))
    assert called == ["lifespan"]
