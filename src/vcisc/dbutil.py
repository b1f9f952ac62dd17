"""Small database helpers shared by services."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction

from vcisc.errors import Invalid

__all__ = ["clean_or_invalid", "reject_nulls", "serialize"]


def clean_or_invalid(obj: models.Model, exclude: list[str] | None = None) -> None:
    """Django's model validation (choices, lengths, constraints), its first problem raised as an
    Invalid naming the field."""
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise Invalid("request" if field == "__all__" else field, "; ".join(messages)) from None


def reject_nulls(model: type[models.Model], changes: Mapping[str, object]) -> None:
    """A partial update may say ``null``; for a column that cannot hold it, that is an Invalid
    naming the field rather than a database error (or a misleading conflict)."""
    for name, value in changes.items():
        if value is None and not model._meta.get_field(name).null:
            raise Invalid(name, "may not be null")


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
