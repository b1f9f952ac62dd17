"""Django's SQLite backend with its connections kept for reuse within the process.

Under ASGI each request runs its synchronous code in a thread of its own, and Django keeps a
connection per thread, so every request opened the database again: the file, the PRAGMAs of
``init_command``, Django's SQL functions (about 1.4 ms, as long as some requests take in
all). PostgreSQL has ``psycopg_pool`` for this (:mod:`vcisc.settings`); SQLite needs no server
connection, only an idle list: a connection that Django closes goes back on the list of its
database file, and the next new connection of the process is taken from it.

What a connection carries between uses is reset when it is handed out again: a transaction
left open is rolled back when it comes back (as closing it would), and foreign-key checks are
turned on again (migrations turn them off and on). In-memory databases (the tests') are never
closed by Django, so they never reach the list. Connections are created with
``check_same_thread=False`` (Django's default), and a listed connection belongs to no thread.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, ClassVar

from django.db.backends.sqlite3 import base

__all__ = ["IDLE_LIMIT", "DatabaseWrapper"]

#: Idle connections kept per database file; more are closed (the busiest moment's threads).
IDLE_LIMIT = 16


class DatabaseWrapper(base.DatabaseWrapper):
    _idle: ClassVar[dict[str, list[sqlite3.Connection]]] = {}
    _idle_lock: ClassVar[threading.Lock] = threading.Lock()

    def _idle_list(self) -> list[sqlite3.Connection]:
        return self._idle.setdefault(str(self.settings_dict["NAME"]), [])

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        if not self.is_in_memory_db():
            with self._idle_lock:
                idle = self._idle_list()
                conn = idle.pop() if idle else None
            if conn is not None:
                try:
                    conn.execute("PRAGMA foreign_keys = ON")
                    return conn
                except sqlite3.Error:
                    conn.close()  # unusable (the file went away): open a new one
        fresh: sqlite3.Connection = super().get_new_connection(conn_params)
        return fresh

    def _close(self) -> None:
        conn = self.connection
        if conn is not None and not self.is_in_memory_db() and self._reset(conn):
            with self._idle_lock:
                idle = self._idle_list()
                if len(idle) < IDLE_LIMIT:
                    idle.append(conn)
                    return
        super()._close()  # type: ignore[misc]  # django-stubs leave out the private method

    @staticmethod
    def _reset(conn: sqlite3.Connection) -> bool:
        """Roll back what the last user left open; False if the connection is unusable."""
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error:
            return False
        return True
