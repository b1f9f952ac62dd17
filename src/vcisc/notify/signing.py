"""Webhook signatures: HMAC-SHA256 over a timestamp and the body.

The scheme receivers know from GitHub- and Stripe-style webhooks. Each request carries::

    VCISC-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e1…

where ``v1`` is the lower-case hex HMAC-SHA256, keyed with the contact's signing secret (the
whole ``whsec_…`` string, UTF-8), of the bytes ``<t>.<body>``: the decimal timestamp, a full
stop, and the raw request body exactly as received. While a secret is being rotated the header
carries one ``v1`` per valid secret; a receiver accepts the request if any of them matches.

A receiver

1. recomputes the HMAC over ``t`` and the raw body and compares it in constant time;
2. rejects the request when ``t`` is more than :data:`DEFAULT_TOLERANCE` seconds from its own
   clock (a captured request cannot be replayed later);
3. drops a request whose ``Idempotency-Key`` it has already processed (deliveries are
   at-least-once: a retry after a lost answer repeats the key).

:func:`verify` does 1 and 2 for Python receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "SignatureError",
    "new_secret",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "VCISC-Signature"
#: Seconds a signature stays acceptable; receivers may choose less.
DEFAULT_TOLERANCE = 300
_PREFIX = "whsec_"


class SignatureError(ValueError):
    """The signature is missing, malformed, stale or does not match."""


def new_secret() -> str:
    """A fresh signing secret (256 bits)."""
    return _PREFIX + secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secrets_: Sequence[str], body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (Unix seconds), one ``v1`` per secret."""
    if not secrets_:
        raise ValueError("at least one secret")
    return ",".join([f"t={timestamp}", *(f"v1={_mac(s, timestamp, body)}" for s in secrets_)])


def verify(
    secret: str, header: str, body: bytes, *, now: float, tolerance: int = DEFAULT_TOLERANCE
) -> int:
    """Check a ``VCISC-Signature`` header; return its timestamp or raise :class:`SignatureError`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("expected t=<timestamp>,v1=<hex signature>")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"the timestamp is more than {tolerance} s from now (replayed?)")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches this secret and body")
    return timestamp
