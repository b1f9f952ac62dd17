"""Deterministic STIX identifiers (STIX 2.1 §2.9), so that re-exporting is stable.

§2.9 wants SDO and SRO ids to be UUIDv4 (stix2-validator warns otherwise, check 103) and SCO ids
UUIDv5 over the object's ID-contributing properties in the namespace
``00abedb4-aa42-466c-9c01-fed23315a9b7``. VCISC needs the same STIX id every time it exports
the same engagement object, so for SDOs/SROs it derives the 122 random bits of a version-4 UUID
from SHA-256 over a per-deployment namespace and VCISC's own object id: a receiver sees a
well-formed v4 id, the same one on every export, and cannot recover the VCISC id without the
namespace. SCOs get the spec's v5 ids, so they deduplicate across producers as §2.9 intends.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["SCO_NAMESPACE", "StixIdMinter", "sco_id"]

#: STIX 2.1 §2.9: the namespace of deterministic (UUIDv5) cyber-observable ids.
SCO_NAMESPACE: Final = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")


@dataclass(frozen=True, slots=True)
class StixIdMinter:
    """Mints stable SDO/SRO ids; ``namespace`` is a per-deployment secret-ish UUID.

    Keep the namespace fixed for a deployment (a setting): changing it changes every exported
    id, and receivers would see all objects as new.
    """

    namespace: uuid.UUID

    def sdo_id(self, stix_type: str, kind: str, vcisc_id: object) -> str:
        """``<stix_type>--<uuid4>`` for VCISC object ``kind``/``vcisc_id`` (e.g. task, 42)."""
        name = f"{stix_type}\x00{kind}\x00{vcisc_id}".encode()
        digest = hashlib.sha256(self.namespace.bytes + name).digest()
        return f"{stix_type}--{uuid.UUID(bytes=digest[:16], version=4)}"


def sco_id(stix_type: str, contributing: Mapping[str, Any]) -> str:
    """§2.9 deterministic SCO id: UUIDv5 over the JSON of the ID-contributing properties.

    The name is the RFC 8785-style canonical JSON of ``contributing`` (sorted keys, no
    whitespace, UTF-8); for the strings and integers used here that is exactly JCS.
    """
    name = json.dumps(contributing, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, name)}"
