"""What a message looks like on each channel, given what the channel may carry.

Pure code: the worker loads the rows and settings and passes them in. A message's subject, body
and payload already hold only what its recipient organisation may see (:mod:`vcisc.notify.outbox`
builds them through the need-to-know rules). Here the channel's TLP ceiling is applied on top:
when the message's TLP is above it, the channel carries the TLP label, the reference, a generic
headline and a link to the console, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr
from typing import Any
from uuid import UUID

from vcisc.notify.pgp import encrypt_mime
from vcisc.notify.policy import carries_content
from vcisc.tlp import Tlp

__all__ = ["Notification", "Rendered", "email_message", "plain_text", "render", "webhook_body"]

# Quoted-printable UTF-8: readable where it is ASCII, exact where it is not.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP

#: What the redacted form says happened, per kind (metadata only).
_HEADLINES = {
    "rfa.routed": "a request for assistance was routed to your organisation",
    "offer.received": "an offer of help arrived on your request",
    "deadline.reminder": "a deadline is near",
    "deadline.escalated": "a deadline was breached and escalated to you",
    "indicator.correlated": "an indicator is also in another engagement you take part in",
    "engagements.related": "two engagements share indicators",
    "indicator.in_feed": "an indicator of an engagement you take part in is in a federation feed",
}


@dataclass(frozen=True)
class Notification:
    """The parts of an outbox message the channels use."""

    key: str
    kind: str
    created_at: datetime
    tlp: Tlp
    subject: str
    body: str
    payload: dict[str, Any]
    rfa_id: UUID | None
    reference: str
    link: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    #: Whether subject and text carry the content, or only label, reference and link.
    content: bool


def render(note: Notification, ceiling: Tlp, channel_name: str) -> Rendered:
    """The message as ``channel_name`` with ``ceiling`` may carry it."""
    if carries_content(note.tlp, ceiling):
        text = f"{note.tlp.label}\n\n{note.body}\n\nIn VCISC: {note.link}\n"
        return Rendered(note.subject, text, True)
    headline = _HEADLINES.get(note.kind, "there is news on a request")
    subject = f"[{note.tlp.label}] {note.reference}: {headline}"
    text = (
        f"{note.tlp.label}\n\n{note.reference}: {headline}.\n\n"
        f"The content is marked {note.tlp.label}, above what {channel_name} may carry. "
        f"Read it in VCISC:\n{note.link}\n"
    )
    return Rendered(subject, text, False)


def webhook_body(note: Notification, ceiling: Tlp) -> bytes:
    """The JSON document a webhook receives (signed over these exact bytes)."""
    shown = render(note, ceiling, "this webhook")
    document: dict[str, Any] = {
        "id": note.key,
        "type": note.kind,
        "created": note.created_at.isoformat(),
        "tlp": note.tlp.value,
        "content": shown.content,
        "reference": note.reference,
        "rfa_id": None if note.rfa_id is None else str(note.rfa_id),
        "url": note.link,
        "subject": shown.subject,
        "text": shown.text,
        "data": note.payload if shown.content else {},
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _address(address: Address) -> str:
    return formataddr((address.display_name, address.addr_spec), charset="utf-8")


def plain_text(text: str, subject: str | None = None) -> MIMENonMultipart:
    """A ``text/plain`` UTF-8 part (with the subject as a protected header if given)."""
    part = MIMENonMultipart("text", "plain")
    part.set_payload(text, _UTF8)
    if subject is not None:
        part.set_param("protected-headers", "v1")
        part["Subject"] = _header(subject)
    return part


def email_message(
    note: Notification,
    *,
    sender: Address,
    recipient: Address,
    reply_to: str,
    ceiling: Tlp,
    pgp_key: str | None,
    now: datetime,
) -> Message:
    """The e-mail for ``recipient``: plain, or PGP/MIME when the contact has a key.

    An encrypted message shows only the redacted subject outside; the real one travels inside
    (a protected header), since mail headers are not encrypted.
    """
    shown = render(note, ceiling, "e-mail")
    outside = render(note, Tlp.CLEAR if pgp_key else ceiling, "e-mail").subject
    # The classic (compat32) MIME classes: several times faster to build than EmailMessage,
    # which counts when a routing fans out to a hundred contacts.
    if pgp_key:
        message: Message = encrypt_mime(plain_text(shown.text, shown.subject), pgp_key)
    else:
        message = plain_text(shown.text)
    message["Subject"] = _header(outside if pgp_key else shown.subject)
    message["From"] = _address(sender)
    message["To"] = _address(recipient)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = format_datetime(now)
    # The same Message-ID on every attempt: mail systems and people can drop the duplicates.
    message["Message-ID"] = f"<{note.key}@{sender.domain}>"
    message["X-VCISC-Idempotency-Key"] = note.key
    message["X-VCISC-TLP"] = note.tlp.label
    message["Auto-Submitted"] = "auto-generated"
    return message
