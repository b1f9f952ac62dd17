"""API token format and checks (pure apart from the hash).

A token reads ``vcisc_<key_id>_<secret>``: the key id (public, indexed) finds the row, the secret
(256 bits from :mod:`secrets`) is compared in constant time against its stored SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["PREFIX", "NewToken", "digest", "matches", "new_token", "split"]

PREFIX = "vcisc"


@dataclass(frozen=True)
class NewToken:
    key_id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{PREFIX}_{self.key_id}_{self.secret}"


def new_token() -> NewToken:
    return NewToken(secrets.token_hex(6), secrets.token_urlsafe(32))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(text: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed token, else None."""
    parts = text.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
