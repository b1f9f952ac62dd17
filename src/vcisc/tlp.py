"""TLP 2.0 (FIRST) arithmetic: labels, their order and the sharing rule (DOMAIN.md §5).

Pure code: no database. The :mod:`vcisc.authz` module applies it to users and objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

__all__ = ["STIX_TLP1_IDS", "STIX_TLP2_IDS", "Tlp", "parse_tlp", "strictest"]


class Tlp(StrEnum):
    """TLP 2.0 labels, wire form as in the standard without the ``TLP:`` prefix, lower case."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        """0 (CLEAR, widest) … 4 (RED, narrowest)."""
        return _ORDER.index(self)

    @property
    def label(self) -> str:
        """``TLP:AMBER+STRICT`` as printed on documents."""
        return f"TLP:{self.value.upper()}"

    def at_least_as_strict_as(self, other: Tlp) -> bool:
        return self.rank >= other.rank

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(t.value, t.label) for t in cls]


#: The labels as a Literal type, for typed API schemas.
TlpName = Literal["clear", "green", "amber", "amber+strict", "red"]

_ORDER = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


def parse_tlp(value: str) -> Tlp:
    """Accept ``TLP:AMBER``, ``amber+strict``, and TLP 1.0 ``WHITE`` (= CLEAR)."""
    text = value.strip().lower().removeprefix("tlp:")
    if text == "white":
        return Tlp.CLEAR
    try:
        return Tlp(text)
    except ValueError:
        raise ValueError(
            f"unknown TLP label {value!r}; expected one of {', '.join(t.value for t in Tlp)}"
        ) from None


def strictest(labels: Iterable[Tlp]) -> Tlp:
    """A derived object carries the strictest TLP of what it was derived from."""
    result = Tlp.CLEAR
    for label in labels:
        if label.rank > result.rank:
            result = label
    return result


#: STIX 2.1 marking-definition ids for TLP 2.0 (DOMAIN.md §5; emit these).
STIX_TLP2_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

#: STIX 2.1 TLP 1.0 ids (accepted on import only).
STIX_TLP1_IDS: dict[str, Tlp] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
}
