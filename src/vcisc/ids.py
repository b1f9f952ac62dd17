"""Identifiers of the objects that belong to a request for assistance.

Requests, offers, routings, timeline entries, engagements and everything in an engagement are
keyed by random UUIDs, never by counters: a counter would tell anyone who is shown one id how
many others exist, and let them walk the neighbours (issue 4, enumeration resistance).

The ids are UUID version 7 (RFC 9562 §5.7): 76 random bits, which no one can guess, after a
millisecond timestamp, which keeps rows created in one transaction in creation order when they
share a timestamp (a timeline's "submitted" then "triaged") and keeps the primary-key index
append-mostly. The timestamp says no more than the object's own ``created_at``, which everyone
shown the id may read anyway.
"""

from __future__ import annotations

import uuid

from django.db import models
from uuid6 import uuid7

__all__ = ["new_id", "uuid_primary_key"]


def new_id() -> uuid.UUID:
    """A fresh, unguessable, time-ordered id (UUIDv7; monotonic within this process)."""
    return uuid7()


def uuid_primary_key() -> models.UUIDField:
    """The primary key of every request-domain model."""
    return models.UUIDField(primary_key=True, default=new_id, editable=False)
