"""TLP in MISP: ``tlp:`` tags and the widest distribution each TLP allows (DOMAIN.md §5, §8).

MISP distribution levels (MISP core format §2.2.1.7): 0 your organisation only, 1 this
community only, 2 connected communities, 3 all communities, 4 sharing group, 5 inherit the
event's (attributes only). TLP travels as the ``tlp:`` taxonomy tags; MISP itself does not
enforce them, so VCISC never emits a distribution wider than the TLP permits:

======================  ==========================  =========================================
TLP                     widest distribution         why
======================  ==========================  =========================================
TLP:CLEAR               3 all communities           no limit on disclosure
TLP:GREEN               1 this community only       the community (the federation), not
                                                    onward to connected communities
TLP:AMBER               0 your organisation only    the recipient organisation (MISP cannot
                                                    name its clients)
TLP:AMBER+STRICT        0 your organisation only    the recipient organisation only
TLP:RED                 0 your organisation only    MISP has nothing narrower; even this is
                                                    wider than RED's named individuals, so
                                                    exporting RED needs an explicit opt-in
======================  ==========================  =========================================

A sharing group (4) has a membership MISP defines elsewhere, so its breadth cannot be checked
here: it is never within any TLP's limit. "Inherit" (5) is as wide as the event it inherits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Final

from vcisc.tlp import Tlp, strictest

__all__ = [
    "MAX_DISTRIBUTION",
    "Distribution",
    "UnknownTlpTag",
    "distribution_allowed",
    "tlp_from_tags",
    "tlp_tag",
]


class Distribution(IntEnum):
    ORGANISATION = 0
    COMMUNITY = 1
    CONNECTED_COMMUNITIES = 2
    ALL_COMMUNITIES = 3
    SHARING_GROUP = 4
    INHERIT = 5


#: The widest distribution each TLP allows (the table in the module docstring).
MAX_DISTRIBUTION: Final[Mapping[Tlp, Distribution]] = {
    Tlp.CLEAR: Distribution.ALL_COMMUNITIES,
    Tlp.GREEN: Distribution.COMMUNITY,
    Tlp.AMBER: Distribution.ORGANISATION,
    Tlp.AMBER_STRICT: Distribution.ORGANISATION,
    Tlp.RED: Distribution.ORGANISATION,
}

_ORDERED: Final = frozenset(
    {
        Distribution.ORGANISATION,
        Distribution.COMMUNITY,
        Distribution.CONNECTED_COMMUNITIES,
        Distribution.ALL_COMMUNITIES,
    }
)


def distribution_allowed(
    tlp: Tlp, distribution: Distribution, event_distribution: Distribution | None = None
) -> bool:
    """Whether ``distribution`` stays within what ``tlp`` allows.

    ``INHERIT`` is judged as ``event_distribution`` (and refused without one); a sharing group
    is always refused, its breadth being unknowable here.
    """
    if distribution is Distribution.INHERIT:
        if event_distribution is None or event_distribution is Distribution.INHERIT:
            return False
        return distribution_allowed(tlp, event_distribution)
    if distribution not in _ORDERED:
        return False
    return distribution <= MAX_DISTRIBUTION[tlp]


_TAGS: Final[Mapping[Tlp, str]] = {
    Tlp.CLEAR: "tlp:clear",
    Tlp.GREEN: "tlp:green",
    Tlp.AMBER: "tlp:amber",
    Tlp.AMBER_STRICT: "tlp:amber+strict",
    Tlp.RED: "tlp:red",
}
_FROM_TAG: Final[Mapping[str, Tlp]] = {
    **{tag: tlp for tlp, tag in _TAGS.items()},
    "tlp:white": Tlp.CLEAR,  # TLP 1.0, still common in MISP
}


class UnknownTlpTag(ValueError):
    """A ``tlp:`` tag that is not a TLP 1.0 or 2.0 label (``tlp:ex:chr`` …)."""


def tlp_tag(tlp: Tlp) -> str:
    """The MISP tlp taxonomy tag (TLP 2.0 names: ``tlp:clear``, ``tlp:amber+strict`` …)."""
    return _TAGS[tlp]


def tlp_from_tags(names: Iterable[str]) -> Tlp | None:
    """The strictest TLP among tag names, ``None`` if there is none.

    Tags are case-insensitive in MISP's taxonomy; an unknown ``tlp:`` tag raises
    :class:`UnknownTlpTag` rather than being ignored, as an unknown marking would.
    """
    found: list[Tlp] = []
    for name in names:
        text = name.strip().lower()
        if not text.startswith("tlp:"):
            continue
        tlp = _FROM_TAG.get(text)
        if tlp is None:
            raise UnknownTlpTag(f"unknown TLP tag {name!r}")
        found.append(tlp)
    return strictest(found) if found else None
