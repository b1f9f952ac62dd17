"""TLP as STIX 2.1 marking definitions (STIX 2.1 §7.2.1, FIRST TLP 2.0, DOMAIN.md §5)."""

from __future__ import annotations

import copy

import pytest

from vcisc.sharing.stix.markings import (
    TLP2_EXTENSION_ID,
    MarkingError,
    marking_definition,
    marking_id,
    tlp_for_marking_id,
    tlp_of_marking_definition,
    tlp_of_refs,
)
from vcisc.tlp import Tlp

# Spelled out from DOMAIN.md §5, not taken from the code under test.
TLP2 = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1 = {
    "white": ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", Tlp.CLEAR),
    "green": ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Tlp.GREEN),
    "amber": ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", Tlp.AMBER),
    "red": ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", Tlp.RED),
}


def tlp1_definition(label: str) -> dict[str, object]:
    mid, _ = TLP1[label]
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": mid,
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": f"TLP:{label.upper()}",
        "definition": {"tlp": label},
    }


@pytest.mark.parametrize("tlp", list(Tlp))
def test_tlp2_definition_is_exactly_the_published_object(tlp: Tlp) -> None:
    assert marking_id(tlp) == TLP2[tlp]
    assert marking_definition(tlp) == {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{tlp.value.upper()}",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": tlp.value,
            }
        },
    }
    assert "definition_type" not in marking_definition(tlp)


@pytest.mark.parametrize("tlp", list(Tlp))
def test_tlp2_ids_and_objects_read_back(tlp: Tlp) -> None:
    assert tlp_for_marking_id(TLP2[tlp]) is tlp
    assert tlp_of_marking_definition(marking_definition(tlp)) is tlp


@pytest.mark.parametrize("label", list(TLP1))
def test_tlp1_ids_and_objects_are_accepted(label: str) -> None:
    mid, tlp = TLP1[label]
    assert tlp_for_marking_id(mid) is tlp
    assert tlp_of_marking_definition(tlp1_definition(label)) is tlp


def test_amber_strict_exists_only_in_tlp2() -> None:
    assert [t for _, t in TLP1.values()].count(Tlp.AMBER_STRICT) == 0
    assert tlp_for_marking_id(TLP2[Tlp.AMBER_STRICT]) is Tlp.AMBER_STRICT


@pytest.mark.parametrize(
    "mid",
    [
        "marking-definition--00000000-0000-4000-8000-000000000000",
        # A look-alike: the TLP:CLEAR id with one digit changed.
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8488",
        "",
    ],
)
def test_unknown_ids_are_not_tlp(mid: str) -> None:
    assert tlp_for_marking_id(mid) is None


def test_tlp2_extension_under_an_unknown_id_is_refused() -> None:
    fake = marking_definition(Tlp.GREEN)
    fake["id"] = "marking-definition--00000000-0000-4000-8000-000000000001"
    with pytest.raises(MarkingError, match=r"not a TLP 2\.0 marking-definition id"):
        tlp_of_marking_definition(fake)


def test_tlp2_label_contradicting_its_id_is_refused() -> None:
    lying = marking_definition(Tlp.CLEAR)
    lying["extensions"][TLP2_EXTENSION_ID]["tlp_2_0"] = "red"
    with pytest.raises(MarkingError, match="TLP:CLEAR but its tlp_2_0 says 'red'"):
        tlp_of_marking_definition(lying)


def test_tlp1_definition_under_an_unknown_id_or_wrong_label_is_refused() -> None:
    wrong_id = tlp1_definition("green")
    wrong_id["id"] = "marking-definition--00000000-0000-4000-8000-000000000002"
    with pytest.raises(MarkingError):
        tlp_of_marking_definition(wrong_id)
    wrong_label = copy.deepcopy(tlp1_definition("white"))
    wrong_label["definition"] = {"tlp": "red"}
    with pytest.raises(MarkingError):
        tlp_of_marking_definition(wrong_label)


def test_tlp_id_defining_something_else_is_refused() -> None:
    statement = {
        "type": "marking-definition",
        "id": TLP2[Tlp.RED],
        "definition_type": "statement",
        "definition": {"statement": "Copyright"},
    }
    with pytest.raises(MarkingError):
        tlp_of_marking_definition(statement)


def test_statement_markings_are_not_tlp() -> None:
    statement = {
        "type": "marking-definition",
        "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41db",
        "definition_type": "statement",
        "definition": {"statement": "Copyright 2026"},
    }
    assert tlp_of_marking_definition(statement) is None


def test_several_tlp_refs_strictest_governs() -> None:
    assert tlp_of_refs([TLP2[Tlp.GREEN], TLP1["amber"][0]]) is Tlp.AMBER
    assert tlp_of_refs([TLP2[Tlp.RED], TLP2[Tlp.CLEAR]]) is Tlp.RED
    assert tlp_of_refs(["marking-definition--00000000-0000-4000-8000-000000000000"]) is None
    assert tlp_of_refs([]) is None
