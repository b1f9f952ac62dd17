"""vcisc.db.sqlite3: a closed connection is reused by the next thread instead of the database
being opened again for every request, and nothing of one use reaches the next."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.utils import ConnectionHandler

from vcisc.db.sqlite3 import base


@pytest.fixture
def handler(tmp_path: Path, django_db_blocker: Any) -> Iterator[ConnectionHandler]:
    """A file database of its own, configured as VCISC configures SQLite (not the tests'
    database, which pytest-django guards)."""
    options = dict(settings.DATABASES["default"].get("OPTIONS") or {})
    if settings.DATABASES["default"]["ENGINE"] != "vcisc.db.sqlite3":
        options = {"init_command": "PRAGMA journal_mode=WAL;"}
    name = str(tmp_path / "reuse.sqlite3")
    db = {"ENGINE": "vcisc.db.sqlite3", "NAME": name, "OPTIONS": options}
    with django_db_blocker.unblock():
        yield ConnectionHandler({"default": db, "x": db})
    with base.DatabaseWrapper._idle_lock:
        for conn in base.DatabaseWrapper._idle.pop(name, []):
            conn.close()


def _in_new_thread(handler: ConnectionHandler, work: Callable[[Any], Any]) -> Any:
    """What one ASGI request does: a new thread, its own wrapper, the close at the end."""
    out: list[Any] = []

    def run() -> None:
        wrapper = handler["x"]
        try:
            out.append(work(wrapper))
        finally:
            wrapper.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def test_threads_reuse_closed_connections(handler: ConnectionHandler) -> None:
    def raw(wrapper: Any) -> Any:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        return wrapper.connection

    used = [_in_new_thread(handler, raw) for _ in range(20)]  # kept alive: ids stay unique
    assert len({id(conn) for conn in used}) == 1, "a connection opened for every request"


def test_an_open_transaction_and_disabled_checks_do_not_carry_over(
    handler: ConnectionHandler,
) -> None:
    def setup(wrapper: Any) -> None:
        with wrapper.cursor() as cursor:
            cursor.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            cursor.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))")

    def abandon(wrapper: Any) -> bool:
        wrapper.connection  # noqa: B018 - connect
        wrapper.ensure_connection()
        raw = wrapper.connection
        raw.execute("PRAGMA foreign_keys = OFF")
        raw.execute("BEGIN")
        raw.execute("INSERT INTO parent VALUES (1)")
        return bool(raw.in_transaction)

    def state(wrapper: Any) -> tuple[int, int, bool]:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM parent")
            rows = cursor.fetchone()[0]
            cursor.execute("PRAGMA foreign_keys")
            checks = cursor.fetchone()[0]
        return rows, checks, bool(wrapper.connection.in_transaction)

    _in_new_thread(handler, setup)
    assert _in_new_thread(handler, abandon) is True
    assert _in_new_thread(handler, state) == (0, 1, False)
