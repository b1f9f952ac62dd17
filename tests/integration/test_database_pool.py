"""PostgreSQL connections come from a pool: under ASGI every request runs its sync code in a
thread of its own, and a connection per thread was a new connection for every request."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection, connections

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="PostgreSQL only (SQLite connections are files opened in the process)",
)


@pytest.mark.django_db(transaction=True)
def test_requests_in_new_threads_reuse_the_pools_connections() -> None:
    backends: list[int] = []

    def request() -> None:  # what one ASGI request does: a new thread, a query, the close
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])
        connections.close_all()

    for _ in range(20):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    assert len(backends) == 20
    # At most the pool's size (earlier tests may have left it holding several), never one each.
    size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert size < 20
    assert len(set(backends)) <= size, f"{len(set(backends))} connections for 20 requests"


def test_the_pool_is_bounded_and_connections_are_not_kept_per_thread() -> None:
    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert 1 <= pool["max_size"] <= 500
    assert connection.settings_dict["OPTIONS"]["pool"] == pool
