"""TLP 2.0 labels, order, parsing and STIX marking-definition ids (DOMAIN.md §5)."""

from __future__ import annotations

import re
from itertools import permutations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vcisc.tlp import STIX_TLP1_IDS, STIX_TLP2_IDS, Tlp, parse_tlp, strictest

# Copied from DOMAIN.md §5 (the FIRST / OASIS values); several public repositories publish
# wrong ids, so these are spelled out here rather than derived from the module.
DOMAIN_TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
DOMAIN_TLP1_IDS = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}

ORDER = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]


def test_values() -> None:
    assert [t.value for t in Tlp] == ["clear", "green", "amber", "amber+strict", "red"]


def test_rank_order_widest_to_narrowest() -> None:
    assert [t.rank for t in ORDER] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("tlp", "label"),
    [
        (Tlp.CLEAR, "TLP:CLEAR"),
        (Tlp.GREEN, "TLP:GREEN"),
        (Tlp.AMBER, "TLP:AMBER"),
        (Tlp.AMBER_STRICT, "TLP:AMBER+STRICT"),
        (Tlp.RED, "TLP:RED"),
    ],
)
def test_label(tlp: Tlp, label: str) -> None:
    assert tlp.label == label
    assert parse_tlp(label) is tlp


def test_choices() -> None:
    assert Tlp.choices() == [
        ("clear", "TLP:CLEAR"),
        ("green", "TLP:GREEN"),
        ("amber", "TLP:AMBER"),
        ("amber+strict", "TLP:AMBER+STRICT"),
        ("red", "TLP:RED"),
    ]


@pytest.mark.parametrize(("i", "a"), list(enumerate(ORDER)))
@pytest.mark.parametrize(("j", "b"), list(enumerate(ORDER)))
def test_at_least_as_strict_as(i: int, a: Tlp, j: int, b: Tlp) -> None:
    assert a.at_least_as_strict_as(b) is (i >= j)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TLP:AMBER+STRICT", Tlp.AMBER_STRICT),
        ("tlp:amber+strict", Tlp.AMBER_STRICT),
        ("amber+strict", Tlp.AMBER_STRICT),
        ("Amber+Strict", Tlp.AMBER_STRICT),
        ("TLP:AMBER", Tlp.AMBER),
        ("amber", Tlp.AMBER),
        ("TLP:RED", Tlp.RED),
        ("red", Tlp.RED),
        ("  TLP:GREEN \n", Tlp.GREEN),
        ("green", Tlp.GREEN),
        ("TLP:CLEAR", Tlp.CLEAR),
        ("clear", Tlp.CLEAR),
        # TLP 1.0 WHITE means CLEAR.
        ("TLP:WHITE", Tlp.CLEAR),
        ("white", Tlp.CLEAR),
        ("White", Tlp.CLEAR),
    ],
)
def test_parse(text: str, expected: Tlp) -> None:
    assert parse_tlp(text) is expected


@pytest.mark.parametrize("tlp", list(Tlp))
def test_parse_round_trips(tlp: Tlp) -> None:
    assert parse_tlp(tlp.value) is tlp
    assert parse_tlp(tlp.label) is tlp
    assert parse_tlp(str(tlp)) is tlp


@pytest.mark.parametrize(
    "text",
    [
        "",
        "TLP:",
        "purple",
        "TLP:PURPLE",
        "amber-strict",
        "amber strict",
        "TLP:TLP:RED",
        "tlp-red",
        "redd",
    ],
)
def test_parse_unknown_raises(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_tlp(text)
    message = str(info.value)
    assert f"unknown TLP label {text!r}" in message
    assert "clear, green, amber, amber+strict, red" in message


def test_strictest_examples() -> None:
    assert strictest([Tlp.GREEN, Tlp.RED, Tlp.AMBER]) is Tlp.RED
    assert strictest([Tlp.AMBER, Tlp.AMBER_STRICT]) is Tlp.AMBER_STRICT
    assert strictest([Tlp.GREEN, Tlp.CLEAR]) is Tlp.GREEN
    assert strictest([Tlp.CLEAR]) is Tlp.CLEAR
    assert strictest(iter([Tlp.AMBER, Tlp.GREEN])) is Tlp.AMBER


@pytest.mark.parametrize("labels", list(permutations(ORDER, 3)))
def test_strictest_is_the_highest_rank_in_any_order(labels: tuple[Tlp, ...]) -> None:
    assert strictest(labels) is max(labels, key=ORDER.index)


@given(st.lists(st.sampled_from(ORDER), min_size=1))
def test_strictest_property(labels: list[Tlp]) -> None:
    result = strictest(labels)
    assert result in labels
    assert all(result.at_least_as_strict_as(label) for label in labels)
    assert strictest(reversed(labels)) is result


# ---------------------------------------------------------------- STIX ids


def test_tlp2_ids_equal_domain_reference() -> None:
    assert {t.value: i for t, i in STIX_TLP2_IDS.items()} == DOMAIN_TLP2_IDS
    assert set(STIX_TLP2_IDS) == set(Tlp)


def test_tlp1_ids_equal_domain_reference() -> None:
    white_means_clear = {
        ("white" if t is Tlp.CLEAR else t.value): i for i, t in STIX_TLP1_IDS.items()
    }
    assert white_means_clear == DOMAIN_TLP1_IDS
    assert Tlp.AMBER_STRICT not in STIX_TLP1_IDS.values()


def test_stix_id_shape_and_uniqueness() -> None:
    pattern = re.compile(
        r"^marking-definition--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )
    all_ids = [*STIX_TLP2_IDS.values(), *STIX_TLP1_IDS]
    assert all(pattern.match(i) for i in all_ids)
    assert len(set(all_ids)) == len(all_ids) == 9
