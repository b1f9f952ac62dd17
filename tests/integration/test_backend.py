"""The suite runs on the backend the environment names (so `make test` proves both)."""

import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_runs_on_the_configured_backend() -> None:
    url = os.environ.get("VCISC_DATABASE_URL", "")
    expected = "postgresql" if url.startswith("postgres") else "sqlite"
    assert connection.vendor == expected


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_foreign_keys() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cur:
        cur.execute("PRAGMA foreign_keys")
        assert cur.fetchone()[0] == 1
    # WAL needs a file; the test database is in memory, so check the configured pragma string.
    assert "journal_mode=WAL" in connection.settings_dict["OPTIONS"]["init_command"]
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
