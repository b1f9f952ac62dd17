"""A live HTTP server on 127.0.0.1 serving the application on the test's own database, and
OASIS taxii2-client connections acting as the federation's users through their API tokens.

pytest-django's ``live_server`` needs a transactional database, which the append-only audit
trail cannot be flushed from; so the server here runs in a thread on the test's connection
(inside its transaction, rolled back at the end like every test). Requests are served one at
a time while the test waits for the answer, so the connection is never used by two threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from django.db import connections
from taxii2client.v21 import ApiRoot, Collection, Server

from tests.conftest import Federation


class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: Any) -> Any:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def live_url(db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` served by Django's WSGI handler on this test's connection."""
    httpd = WSGIServer(("127.0.0.1", 0), _Quiet, allow_reuse_address=False)
    httpd.set_app(WSGIHandler())
    conn = connections["default"]
    conn.inc_thread_sharing()

    def serve() -> None:
        connections["default"] = conn
        httpd.serve_forever(poll_interval=0.05)

    # A request's end would close the connection (it is inside the test's transaction); the
    # test client reconnects Django's receivers after each of its calls, so the connection
    # itself is told to stay open.
    monkeypatch.setattr(conn, "close_if_unusable_or_obsolete", lambda: None)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        conn.dec_thread_sharing()


@pytest.fixture
def taxii(live_url: str, federation: Federation) -> Callable[[str], ApiRoot]:
    """``taxii("de")``: the API root as the user ``de`` sees it."""

    def root(who: str) -> ApiRoot:
        server = Server(f"{live_url}/taxii2/", auth=Bearer(federation.apis[who].token))
        return server.default

    return root


def collection(root: ApiRoot, cid: str) -> Collection:
    return Collection(f"{root.url}collections/{cid}/", conn=root._conn)
