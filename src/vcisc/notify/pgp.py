"""OpenPGP for notification e-mail: check a contact's public key, encrypt to it (PGP/MIME).

Sequoia-PGP does the cryptography (``pysequoia``). A key is accepted when it parses as exactly
one certificate, holds no secret key material, is neither revoked nor expired, and can encrypt
(proven by encrypting a probe to it), so a bad key is refused when it is configured rather than
failing every delivery later.

Encrypted mail follows RFC 3156 (PGP/MIME): ``multipart/encrypted`` with a version part and the
armored ciphertext of the inner MIME entity, which carries the real subject as a protected header.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart

import pysequoia

__all__ = ["KeyProblem", "PublicKey", "encrypt_mime", "parse_public_key"]

_MAX_KEY_BYTES = 64 * 1024


class KeyProblem(ValueError):
    """The text is not a usable OpenPGP public key; the message says why."""


@dataclass(frozen=True)
class PublicKey:
    fingerprint: str
    user_ids: tuple[str, ...]
    expires_at: datetime | None
    armored: str


def _first_line(exc: Exception) -> str:
    # Sequoia's messages may carry a backtrace after the first line.
    return (str(exc).strip().splitlines() or ["unreadable"])[0]


def parse_public_key(text: str, *, now: datetime) -> PublicKey:
    """Validate an OpenPGP public key (ASCII-armored); raise :class:`KeyProblem` if unusable."""
    data = text.strip().encode()
    if not data:
        raise KeyProblem("empty: paste the ASCII-armored public key block")
    if len(data) > _MAX_KEY_BYTES:
        raise KeyProblem(f"longer than {_MAX_KEY_BYTES // 1024} KiB; export the key minimised")
    if b"PRIVATE KEY BLOCK" in data:
        raise KeyProblem("this is a secret key; give the public key only (gpg --export --armor)")
    try:
        certs = pysequoia.Cert.split_bytes(data)
    except Exception as exc:  # Sequoia raises RuntimeError/ValueError with its parser's message
        raise KeyProblem(f"not an OpenPGP public key ({_first_line(exc)})") from None
    if len(certs) != 1:
        raise KeyProblem(f"expected one certificate, found {len(certs)}")
    cert = certs[0]
    # Serialised as a certificate, secret key material is left out; as a TSK it is kept.
    tsk = pysequoia.Tsk.from_bytes(data)
    if bytes(tsk) != bytes(tsk.extract_certificate()):
        raise KeyProblem("this holds secret key material; give the public key only")
    if cert.is_revoked:
        raise KeyProblem(f"key {cert.fingerprint} is revoked")
    if cert.expiration is not None and cert.expiration <= now:
        raise KeyProblem(f"key {cert.fingerprint} expired on {cert.expiration:%Y-%m-%d}")
    try:
        pysequoia.encrypt(b"probe", [cert])
    except Exception as exc:
        raise KeyProblem(f"key {cert.fingerprint} cannot encrypt ({_first_line(exc)})") from None
    return PublicKey(
        fingerprint=cert.fingerprint,
        user_ids=tuple(str(u) for u in cert.user_ids),
        expires_at=cert.expiration,
        armored=str(cert),
    )


def encrypt_mime(inner: Message, armored_key: str) -> MIMEMultipart:
    """The RFC 3156 ``multipart/encrypted`` body for ``inner``, encrypted to ``armored_key``."""
    cert = pysequoia.Cert.from_bytes(armored_key.encode())
    ciphertext = pysequoia.encrypt(inner.as_bytes(), [cert])
    outer = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 3156)."
    version = MIMEApplication(b"Version: 1\n", "pgp-encrypted", _encoder=_noop)
    version["Content-Description"] = "PGP/MIME version identification"
    payload = MIMEApplication(ciphertext, "octet-stream", _encoder=_noop, name="encrypted.asc")
    payload["Content-Description"] = "OpenPGP encrypted message"
    payload["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    outer.attach(version)
    outer.attach(payload)
    return outer


def _noop(part: MIMEApplication) -> None:
    """Armored text is 7-bit already: keep it as it is (no base64)."""
    payload = part.get_payload(decode=False)
    if isinstance(payload, bytes):
        part.set_payload(payload.decode("ascii"))
    part["Content-Transfer-Encoding"] = "7bit"
