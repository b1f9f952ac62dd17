"""What `make run` does, in real processes: migrate, load the demo (the session's ``demo_data``,
copied), issue a token, serve over ASGI, and list exactly what that user may see over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.serving import DemoData

VCISC = str(Path(sys.executable).parent / "vcisc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, token: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _launch(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`vcisc serve` on a free port, not waited for (see :func:`_wait_up`)."""
    port = _free_port()
    server = subprocess.Popen(
        [VCISC, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, f"http://127.0.0.1:{port}"


def _wait_up(server: subprocess.Popen[bytes], base: str) -> tuple[subprocess.Popen[bytes], str]:
    for _ in range(100):
        try:
            if _get(f"{base}/healthz")[0] == 200:
                return server, base
        except OSError:
            time.sleep(0.1)
    server.kill()
    pytest.fail("the server did not come up")


def _post(url: str, token: str, body: dict[str, object]) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, demo_data: DemoData) -> dict[str, str]:
    data = demo_data.copy_to(tmp_path_factory.mktemp("serve") / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env["VCISC_DATA_DIR"] = str(data)  # always the embedded SQLite default, like `make run`
    return env


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [VCISC, *args], env=env, check=True, capture_output=True, text=True, timeout=300
    )
    return done.stdout


@pytest.fixture(scope="module")
def spare(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A second server process on the same database, started beside the first (a server takes
    seconds to come up; the two come up at once), for the test that kills one."""
    server, base = _launch(env)
    try:
        yield server, base
    finally:
        server.kill()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def served(
    env: dict[str, str], spare: tuple[subprocess.Popen[bytes], str]
) -> Iterator[tuple[str, dict[str, str]]]:
    server, base = _launch(env)
    try:
        # Tokens are issued while the servers start.
        tokens = {
            who: _run(env, "token", "create", "--user", email, "--quiet").strip()
            for who, email in {
                "coordinator": "coordinator@secretariat.example",
                "ee": "liaison@cert.ee.example",
                "am": "observer@cert.am.example",
                "admin": "admin@secretariat.example",
            }.items()
        }
        # Each server imports most of the application on its first request (seconds): both
        # are asked at once.
        with ThreadPoolExecutor(2) as pool:
            for up in [pool.submit(_wait_up, *started) for started in ((server, base), spare)]:
                up.result()
        yield base, tokens
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_health_and_authentication(served: tuple[str, dict[str, str]]) -> None:
    base, _ = served
    assert _get(f"{base}/healthz") == (200, {"status": "ok", "database": "sqlite"})
    assert _get(f"{base}/api/v1/requests")[0] == 401
    assert _get(f"{base}/api/v1/requests", "vcisc_bad_token")[0] == 401


def test_each_user_lists_what_they_may_see(served: tuple[str, dict[str, str]]) -> None:
    base, tokens = served
    status, coord = _get(f"{base}/api/v1/requests?limit=500", tokens["coordinator"])
    assert status == 200 and isinstance(coord, dict)
    states = {item["state"] for item in coord["items"]}
    assert "draft" not in states and {"triage", "circulated", "closed"} <= states
    status, ee = _get(f"{base}/api/v1/requests", tokens["ee"])
    assert status == 200 and isinstance(ee, dict)
    assert ee["count"] >= 1 and ee["count"] < coord["count"]
    assert all(
        i["requester_nation"] == "EE"
        or "routed" in i["involvement"]
        or "participant" in i["involvement"]
        for i in ee["items"]
    )
    status, am = _get(f"{base}/api/v1/requests", tokens["am"])
    assert (status, am) == (200, {"count": 0, "items": []})


def test_openapi_document(served: tuple[str, dict[str, str]]) -> None:
    base, tokens = served
    status, doc = _get(f"{base}/api/v1/openapi.json", tokens["ee"])
    assert status == 200 and isinstance(doc, dict) and doc["openapi"].startswith("3.")


def test_an_acknowledged_write_survives_a_crash(
    served: tuple[str, dict[str, str]],
    spare: tuple[subprocess.Popen[bytes], str],
    env: dict[str, str],
) -> None:
    _, tokens = served
    server, base = _wait_up(*spare)  # a second server process on the same database
    status, _ = _post(
        f"{base}/api/v1/nations",
        tokens["admin"],
        {"code": "XK", "name": "Crashland", "kind": "partner"},
    )
    assert status == 201
    server.send_signal(signal.SIGKILL)  # no shutdown, no flush: the acknowledgement must hold
    server.wait(timeout=10)
    assert "Crashland" in _run(env, "nation", "list")
    assert "intact" in _run(env, "audit", "verify")
