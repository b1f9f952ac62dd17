"""Real-browser tests: a `vcisc serve` process on its own SQLite data dir with the demo loaded,
driven by Playwright in Debian's headless Chromium (never a downloaded browser).

Without /usr/bin/chromium the directory is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django_otp.oath import TOTP

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"  # the demo users' passphrase in these tests
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VCISC = str(Path(sys.executable).parent / "vcisc")

_IN_CI = os.environ.get("CI") == "true"
_HAVE_CHROMIUM = os.access(CHROMIUM, os.X_OK)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _HAVE_CHROMIUM or _IN_CI:
        return
    skip = pytest.mark.skip(
        reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    )
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a served demo federation (SQLite, whatever VCISC_DATABASE_URL says)."""
    data = tmp_path_factory.mktemp("browser-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env["VCISC_DATA_DIR"] = str(data)
    for args in (["migrate"], ["demo", "--quiet", "--password", PASSWORD]):
        subprocess.run(
            [VCISC, *args], env=env, check=True, capture_output=True, text=True, timeout=300
        )
    port = _free_port()
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen(
        [VCISC, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            if _healthy(base):
                break
            if proc.poll() is not None:
                pytest.fail(f"vcisc serve exited: {(data / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("vcisc serve did not come up")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="package")  # closed after tests/browser: Playwright's sync API keeps an
def browser() -> Iterator[Any]:  # event loop running, and later tests call asyncio.run()
    if not _HAVE_CHROMIUM:
        pytest.fail(
            f"CI=true and {CHROMIUM} is missing: the browser tests must run in CI "
            "(install Debian's chromium; .ci/run does)"
        )
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci --no-audit --no-fund` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One signed-in user in a browser context of their own; every page they see is checked
    with axe and kept as a full-page screenshot."""

    #: A laptop's screen; tests pass TABLET for an iPad held upright.
    LAPTOP = {"width": 1280, "height": 900}
    TABLET = {"width": 768, "height": 1024}

    def __init__(
        self,
        browser: Any,
        base: str,
        name: str,
        viewport: dict[str, int] | None = None,
        *,
        enforce_csp: bool = False,
    ) -> None:
        self.base = base
        self.name = name
        # axe is injected as an inline script, which the pages' policy forbids; a session that
        # keeps the policy (to prove live.js works under it) is screenshotted but not axe-checked.
        self.enforce_csp = enforce_csp
        self.context = browser.new_context(
            base_url=base, bypass_csp=not enforce_csp, viewport=viewport or self.LAPTOP
        )
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.shots = 0

    def close(self) -> None:
        self.context.close()

    def goto(self, path: str, status: int = 200, *, check: bool = True) -> Any:
        resp = self.page.goto(path)
        assert resp is not None and resp.status == status, (path, resp and resp.status)
        if check:
            self.check(path)
        return resp

    def check(self, label: str) -> None:
        """Screenshot the page and assert axe finds nothing serious or critical on it."""
        self.screenshot(label)
        if not self.enforce_csp:
            assert_accessible(self.page, f"{self.name} {label}")

    def screenshot(self, label: str, path: Path | None = None) -> Path:
        self.shots += 1
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "home"
        target = path or SCREENSHOTS / f"{self.name}-{self.shots:02d}-{slug}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(target), full_page=True)
        return target

    login_checked = False  # the sign-in pages are the same for everyone: check them once
    #: Per person: the TOTP key enrolled at first sign-in, the last time step used, and the
    #: recovery codes left (a second sign-in within one 30-second step uses one of those,
    #: since a TOTP code is accepted once).
    second_factor: ClassVar[dict[str, dict[str, Any]]] = {}

    def sign_in(self, email: str) -> None:
        first_time = not Session.login_checked
        self.goto("/login/", check=first_time)
        Session.login_checked = True
        self.page.fill("input[name=username]", email)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()
        path = self.page.url.removeprefix(self.base)
        known = Session.second_factor.get(email)
        if path == "/login/enrol/":
            assert known is None, f"{email} was asked to enrol twice"
            if first_time:
                self.check("enrol")
            secret = self.page.locator("#totp-secret").inner_text().replace(" ", "")
            known = Session.second_factor[email] = {"key": secret, "step": 0, "codes": []}
            self._code(known)
            self.page.get_by_role("button", name="Confirm and sign in").click()
            self.page.wait_for_load_state()
            if first_time:
                self.check("recovery codes")
            known["codes"] = self.page.locator("#recovery-codes code").all_inner_texts()
            self.page.get_by_role("link", name="I have saved them: continue").click()
        elif path == "/login/verify/":
            assert known is not None, f"{email} has no second factor on record"
            if first_time:
                self.check("verify")
            self._code(known)
            self.page.get_by_role("button", name="Verify").click()
        self.page.wait_for_load_state()
        assert not self.page.url.removeprefix(self.base).startswith("/login"), (
            f"{email} did not sign in: {self.page.url}"
        )
        self.check("home")

    def _code(self, known: dict[str, Any]) -> None:
        """Type the current TOTP code, or a recovery code if this step's code was used."""
        totp = TOTP(base64.b32decode(known["key"]))
        step = totp.t()
        if step > known["step"]:
            known["step"] = step
            code = f"{totp.token():06d}"
        else:
            code = known["codes"].pop()
        self.page.fill("#id_code", code)


def assert_accessible(page: Any, where: str) -> None:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    detail = "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in bad
    )
    assert not bad, f"axe on {where} ({page.url}):\n{detail}"


@pytest.fixture
def sessions(browser: Any, server: str) -> Iterator[Any]:
    opened: list[Session] = []

    def open_session(
        name: str,
        email: str | None = None,
        *,
        viewport: dict[str, int] | None = None,
        enforce_csp: bool = False,
    ) -> Session:
        s = Session(browser, server, name, viewport, enforce_csp=enforce_csp)
        opened.append(s)
        if email:
            s.sign_in(email)
        return s

    yield open_session
    for s in opened:
        s.close()
