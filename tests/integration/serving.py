"""A real `vcisc serve` (uvicorn) on 127.0.0.1 for end-to-end tests: its own SQLite database
in a temporary directory, its own settings, and its log output kept in a file when asked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

__all__ = ["VCISC", "DemoData", "environment", "run", "served"]

VCISC = str(Path(sys.executable).parent / "vcisc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its VCISC_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCISC_")}
    env["VCISC_DATA_DIR"] = str(data_dir)  # always the embedded SQLite default
    env.update({f"VCISC_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass(frozen=True)
class DemoData:
    """A migrated data directory holding the demo (the ``demo_data`` fixture), to copy from."""

    path: Path

    def copy_to(self, data_dir: Path) -> Path:
        """A copy at ``data_dir``, as if `vcisc migrate` and `vcisc demo` had run there."""
        shutil.copytree(self.path, data_dir)
        return data_dir


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [VCISC, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
    )
    return done.stdout


@contextmanager
def served(env: dict[str, str], log: Path | None = None) -> Iterator[str]:
    """`vcisc serve` on a free port until the block ends; its base URL. With ``log``, the
    server's standard output and error (uvicorn's and Django's log lines) go to that file."""
    port = _free_port()
    sink = log.open("wb") if log is not None else subprocess.DEVNULL
    server = subprocess.Popen(
        [VCISC, "serve", "--port", str(port)], env=env, stdout=sink, stderr=sink
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not come up")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        if log is not None:
            sink.close()  # type: ignore[union-attr]
