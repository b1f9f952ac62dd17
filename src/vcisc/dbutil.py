"""Small database helpers shared by services."""

from __future__ import annotations

import zlib

from django.db import connection, transaction

__all__ = ["serialize"]


def serialize(name: str) -> None:
    """Let one transaction at a time past this point for ``name`` (until it commits).

    On PostgreSQL this takes a transaction-scoped advisory lock; on SQLite the IMMEDIATE
    transaction already holds the database's single write lock, so there is nothing to do.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("serialize() must be called inside transaction.atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])
