"""Filtering, scoring and ranking of capabilities against a request (matching.scoring)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcisc.matching.scoring import (
    WEIGHTS,
    Candidate,
    CapabilityFacts,
    MatchResult,
    Need,
    OrganisationFacts,
    Reason,
    rank,
)

FACTORS = ["services", "sector", "ics", "languages", "capacity", "on-call", "response-time"]
REQUESTER = 999


def cap(
    id: int = 1,
    service: str = "malware-analysis",
    depth: str = "expert",
    sectors: Iterable[str] = ("energy",),
    ics_protocols: Iterable[str] = (),
    ics_vendors: Iterable[str] = (),
    languages: Iterable[str] = ("en",),
    max_concurrent: int = 2,
    legal: Iterable[str] = (),
    active: bool = True,
) -> CapabilityFacts:
    return CapabilityFacts(
        id=id,
        service_type=service,
        depth=depth,
        sectors=frozenset(sectors),
        ics_protocols=frozenset(ics_protocols),
        ics_vendors=frozenset(ics_vendors),
        languages=frozenset(languages),
        max_concurrent=max_concurrent,
        legal_conditions=frozenset(legal),
        active=active,
    )


def org(
    id: int = 1,
    name: str | None = None,
    kind: str = "csirt",
    nation: str | None = "EE",
    nation_kind: str | None = "member",
    nation_in_eu: bool = True,
    caps: Iterable[CapabilityFacts] | None = None,
    active_engagements: int = 0,
    on_call_now: bool = True,
    median_response_hours: float | None = 0.5,
    active: bool = True,
) -> OrganisationFacts:
    return OrganisationFacts(
        id=id,
        name=name if name is not None else f"Org {id}",
        kind=kind,
        nation=nation,
        nation_kind=nation_kind,
        nation_in_eu=nation_in_eu,
        capabilities=tuple(caps) if caps is not None else (cap(id=id * 10),),
        active_engagements=active_engagements,
        on_call_now=on_call_now,
        median_response_hours=median_response_hours,
        active=active,
    )


def need(
    services: Iterable[str] = ("malware-analysis",),
    sector: str = "energy",
    requester_org_id: int = REQUESTER,
    requester_nation: str | None = "LV",
    requester_in_eu: bool = True,
    requester_is_member: bool = True,
    ics_protocols: Iterable[str] = (),
    ics_vendors: Iterable[str] = (),
    languages: Iterable[str] = (),
    excluded_org_ids: Iterable[int] = (),
    excluded_nations: Iterable[str] = (),
    legal_requirements: Iterable[str] = (),
    involves_personal_data: bool = False,
) -> Need:
    return Need(
        services=frozenset(services),
        sector=sector,
        requester_org_id=requester_org_id,
        requester_nation=requester_nation,
        requester_in_eu=requester_in_eu,
        requester_is_member=requester_is_member,
        ics_protocols=frozenset(ics_protocols),
        ics_vendors=frozenset(ics_vendors),
        languages=frozenset(languages),
        excluded_org_ids=frozenset(excluded_org_ids),
        excluded_nations=frozenset(excluded_nations),
        legal_requirements=frozenset(legal_requirements),
        involves_personal_data=involves_personal_data,
    )


def only(result: MatchResult) -> Candidate:
    assert result.excluded == []
    assert len(result.candidates) == 1
    return result.candidates[0]


def reason(candidate: Candidate, factor: str) -> Reason:
    (found,) = [r for r in candidate.reasons if r.factor == factor]
    return found


def points(candidate: Candidate, factor: str) -> float:
    return reason(candidate, factor).points


def excluded_reason(result: MatchResult) -> str:
    assert result.candidates == []
    (exclusion,) = result.excluded
    return exclusion.reason


def check_reasons(candidate: Candidate) -> None:
    assert [r.factor for r in candidate.reasons] == FACTORS
    for r in candidate.reasons:
        assert r.max_points == WEIGHTS[r.factor]
        assert 0.0 <= r.points <= r.max_points, r
        assert r.detail
    assert math.isclose(candidate.score, sum(r.points for r in candidate.reasons), abs_tol=1e-9)
    assert 0.0 <= candidate.score <= 100.0


# ---------------------------------------------------------------- weights and the perfect match


def test_weights_add_up_to_100() -> None:
    assert list(WEIGHTS) == FACTORS
    assert sum(WEIGHTS.values()) == 100.0


def test_perfect_match_scores_100_with_every_reason() -> None:
    c = only(rank(need(), [org(id=1, name="CERT-EE")]))
    check_reasons(c)
    assert c.score == 100.0
    for r in c.reasons:
        assert r.points == r.max_points
    assert c.organisation_id == 1
    assert c.organisation_name == "CERT-EE"
    assert c.nation == "EE"
    assert c.capability_ids == (10,)
    assert c.services_covered == ("malware-analysis",)


def test_no_services_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one service type"):
        rank(need(services=()), [org()])


def test_no_organisations_gives_empty_result() -> None:
    result = rank(need(), [])
    assert result.candidates == [] and result.excluded == []


def test_accepts_any_iterable() -> None:
    result = rank(need(), (o for o in [org(id=1), org(id=2)]))
    assert [c.organisation_id for c in result.candidates] == [1, 2]


# ---------------------------------------------------------------- organisation filters


@pytest.mark.parametrize(
    ("the_need", "the_org", "message"),
    [
        (need(), org(active=False), "organisation is deactivated"),
        (need(requester_org_id=7), org(id=7), "the requesting organisation itself"),
        (need(), org(kind="secretariat"), "the secretariat coordinates and does not offer"),
        (need(excluded_org_ids={1, 5}), org(id=1), "excluded by the requester"),
        (need(excluded_nations={"EE"}), org(nation="EE"), "nation EE excluded by the requester"),
        (need(), org(nation_kind="observer"), "observer nations do not offer assistance"),
        (
            need(legal_requirements={"eu-only-transfer"}),
            org(nation="NO", nation_kind="partner", nation_in_eu=False),
            "request requires EU-only transfer; organisation is outside the EU",
        ),
        (
            need(legal_requirements={"no-law-enforcement"}),
            org(kind="law-enforcement"),
            "request excludes law-enforcement organisations",
        ),
        (
            need(legal_requirements={"members-only"}),
            org(nation_kind="partner"),
            "request is for member nations only",
        ),
        (
            need(legal_requirements={"members-only"}),
            org(nation=None, nation_kind=None),
            "request is for member nations only",
        ),
    ],
)
def test_organisation_filters(the_need: Need, the_org: OrganisationFacts, message: str) -> None:
    result = rank(the_need, [the_org])
    assert excluded_reason(result) == message
    assert result.excluded[0].organisation_id == the_org.id
    assert result.excluded[0].organisation_name == the_org.name


@pytest.mark.parametrize(
    ("the_need", "the_org"),
    [
        # The same organisations pass when the request does not ask for the restriction.
        (need(), org(nation="NO", nation_kind="partner", nation_in_eu=False)),
        (need(), org(kind="law-enforcement")),
        (need(legal_requirements={"no-law-enforcement"}), org(kind="cert")),
        (need(legal_requirements={"eu-only-transfer"}), org(nation_in_eu=True)),
        (need(legal_requirements={"members-only"}), org(nation_kind="member")),
        (need(excluded_org_ids={2}), org(id=1)),
        (need(excluded_nations={"LT"}), org(nation="EE")),
        (need(excluded_nations={"EE"}), org(nation=None, nation_kind=None)),
        (need(requester_org_id=2), org(id=1)),
    ],
)
def test_organisation_not_filtered(the_need: Need, the_org: OrganisationFacts) -> None:
    only(rank(the_need, [the_org]))


def test_filters_apply_per_organisation() -> None:
    orgs = [
        org(id=1, name="Alpha"),
        org(id=2, name="Bravo", kind="secretariat"),
        org(id=REQUESTER, name="Requester"),
        org(id=4, name="Delta", nation="FI"),
        org(id=5, name="Echo", nation_kind="observer"),
    ]
    result = rank(need(excluded_nations={"FI"}), orgs)
    assert [c.organisation_name for c in result.candidates] == ["Alpha"]
    assert [e.organisation_id for e in result.excluded] == [2, REQUESTER, 4, 5]


# ---------------------------------------------------------------- capability filters


@pytest.mark.parametrize(
    ("the_need", "the_cap", "message"),
    [
        (need(), cap(active=False), "malware-analysis: deactivated"),
        (
            need(involves_personal_data=True),
            cap(legal={"no-personal-data"}),
            "malware-analysis: will not process personal data; the request involves personal data",
        ),
        (
            need(requester_in_eu=False),
            cap(legal={"eu-only-transfer"}),
            "malware-analysis: assists EU requesters only",
        ),
        (
            need(requester_is_member=False),
            cap(legal={"members-only"}),
            "malware-analysis: assists member nations only",
        ),
    ],
)
def test_capability_filters(the_need: Need, the_cap: CapabilityFacts, message: str) -> None:
    assert excluded_reason(rank(the_need, [org(caps=[the_cap])])) == message


@pytest.mark.parametrize(
    ("the_need", "the_cap"),
    [
        (need(involves_personal_data=False), cap(legal={"no-personal-data"})),
        (need(requester_in_eu=True), cap(legal={"eu-only-transfer"})),
        (need(requester_is_member=True), cap(legal={"members-only"})),
        (need(involves_personal_data=True), cap(legal={"eu-only-transfer", "members-only"})),
    ],
)
def test_capability_conditions_met(the_need: Need, the_cap: CapabilityFacts) -> None:
    only(rank(the_need, [org(caps=[the_cap])]))


def test_all_dropped_capabilities_are_listed() -> None:
    o = org(
        caps=[
            cap(id=1, service="malware-analysis", active=False),
            cap(id=2, service="digital-forensics", legal={"no-personal-data"}),
        ]
    )
    why = excluded_reason(
        rank(
            need(services={"malware-analysis", "digital-forensics"}, involves_personal_data=True),
            [o],
        )
    )
    assert "malware-analysis: deactivated" in why
    assert "digital-forensics: will not process personal data" in why


def test_one_usable_capability_is_enough() -> None:
    o = org(
        caps=[
            cap(id=1, depth="expert", active=False),
            cap(id=2, depth="basic"),
        ]
    )
    c = only(rank(need(), [o]))
    assert c.capability_ids == (2,)
    assert points(c, "services") == 24.0


def test_capabilities_for_other_services_do_not_count() -> None:
    o = org(caps=[cap(service="threat-intelligence")])
    assert excluded_reason(rank(need(), [o])) == "offers none of the requested services"
    o = org(caps=[])
    assert excluded_reason(rank(need(), [o])) == "offers none of the requested services"


def test_capability_for_other_service_is_not_filtered_or_used() -> None:
    o = org(
        caps=[
            cap(id=1, service="threat-intelligence", active=False),
            cap(id=2, service="malware-analysis"),
        ]
    )
    c = only(rank(need(), [o]))
    assert c.capability_ids == (2,)
    assert c.services_covered == ("malware-analysis",)


# ---------------------------------------------------------------- services and depth


@pytest.mark.parametrize(
    ("depth", "expected"), [("expert", 40.0), ("advanced", 34.0), ("basic", 24.0), ("odd", 24.0)]
)
def test_depth(depth: str, expected: float) -> None:
    c = only(rank(need(), [org(caps=[cap(depth=depth)])]))
    assert points(c, "services") == expected
    assert f"malware-analysis ({depth})" in reason(c, "services").detail


@pytest.mark.parametrize("order", [0, 1, 2])
def test_deeper_capability_preferred(order: int) -> None:
    caps = [cap(id=1, depth="basic"), cap(id=2, depth="expert"), cap(id=3, depth="advanced")]
    caps = caps[order:] + caps[:order]
    c = only(rank(need(), [org(caps=caps)]))
    assert c.capability_ids == (2,)
    assert points(c, "services") == 40.0


def test_equal_depth_keeps_the_first_declared() -> None:
    c = only(rank(need(), [org(caps=[cap(id=5), cap(id=3)])]))
    assert c.capability_ids == (5,)


def test_partial_service_coverage() -> None:
    the_need = need(services={"malware-analysis", "digital-forensics", "incident-response"})
    o = org(
        caps=[
            cap(id=1, service="malware-analysis", depth="expert"),
            cap(id=2, service="digital-forensics", depth="basic"),
        ]
    )
    c = only(rank(the_need, [o]))
    assert math.isclose(points(c, "services"), round(40 * 1.6 / 3, 2))
    assert c.services_covered == ("digital-forensics", "malware-analysis")
    assert c.capability_ids == (2, 1)
    detail = reason(c, "services").detail
    assert detail.startswith("covers digital-forensics (basic), malware-analysis (expert)")
    assert detail.endswith("; missing incident-response")
    check_reasons(c)


def test_full_coverage_mentions_nothing_missing() -> None:
    c = only(rank(need(), [org()]))
    assert "missing" not in reason(c, "services").detail


def test_more_services_covered_ranks_higher() -> None:
    the_need = need(services={"malware-analysis", "digital-forensics"})
    both = org(
        id=1,
        name="Zulu",
        caps=[cap(id=1, service="malware-analysis"), cap(id=2, service="digital-forensics")],
    )
    one = org(id=2, name="Alpha", caps=[cap(id=3, service="malware-analysis")])
    result = rank(the_need, [one, both])
    assert [c.organisation_name for c in result.candidates] == ["Zulu", "Alpha"]


# ---------------------------------------------------------------- sector


@pytest.mark.parametrize(
    ("need_sector", "cap_sectors", "expected", "detail"),
    [
        ("energy", {"energy"}, 15.0, "declares the energy sector"),
        ("energy/electricity", {"energy/electricity"}, 15.0, "declares the energy/electricity"),
        ("energy/electricity", {"energy"}, 15.0, "declares the energy/electricity"),
        ("energy/electricity", {"energy/gas"}, 0.0, "does not declare the energy/electricity"),
        ("energy", {"energy/electricity"}, 0.0, "does not declare the energy sector"),
        ("health", {"energy", "banking"}, 0.0, "does not declare the health sector"),
        ("health", set(), 10.0, "declares no sector limits"),
    ],
)
def test_sector(need_sector: str, cap_sectors: set[str], expected: float, detail: str) -> None:
    c = only(rank(need(sector=need_sector), [org(caps=[cap(sectors=cap_sectors)])]))
    assert points(c, "sector") == expected
    assert detail in reason(c, "sector").detail


def test_sector_declared_wins_over_no_limits() -> None:
    the_need = need(services={"malware-analysis", "digital-forensics"}, sector="health")
    o = org(
        caps=[
            cap(id=1, service="malware-analysis", sectors=()),
            cap(id=2, service="digital-forensics", sectors={"health"}),
        ]
    )
    assert points(only(rank(the_need, [o])), "sector") == 15.0


# ---------------------------------------------------------------- ICS


def test_ics_not_requested_gives_full_points() -> None:
    c = only(rank(need(), [org()]))
    assert points(c, "ics") == 10.0
    assert reason(c, "ics").detail == "no ICS protocols or vendors requested"


@pytest.mark.parametrize(
    ("protocols", "vendors", "cap_protocols", "cap_vendors", "expected"),
    [
        ({"modbus", "dnp3"}, set(), {"modbus", "dnp3", "s7"}, set(), 10.0),
        ({"modbus", "dnp3"}, set(), {"modbus"}, set(), 5.0),
        ({"modbus"}, {"siemens"}, {"modbus"}, set(), 5.0),
        ({"modbus"}, {"siemens"}, {"modbus"}, {"siemens"}, 10.0),
        ({"modbus", "dnp3", "iec-61850", "opc-ua"}, set(), {"dnp3"}, set(), 2.5),
        ({"modbus"}, set(), set(), set(), 0.0),
        (set(), {"siemens", "abb"}, set(), {"abb"}, 5.0),
    ],
)
def test_ics_fraction(
    protocols: set[str],
    vendors: set[str],
    cap_protocols: set[str],
    cap_vendors: set[str],
    expected: float,
) -> None:
    the_need = need(ics_protocols=protocols, ics_vendors=vendors)
    o = org(caps=[cap(ics_protocols=cap_protocols, ics_vendors=cap_vendors)])
    c = only(rank(the_need, [o]))
    assert points(c, "ics") == expected
    detail = reason(c, "ics").detail
    assert detail.endswith(", ".join(sorted(protocols | vendors)))
    if expected == 0:
        assert detail.startswith("knows none of them")


def test_ics_knowledge_combines_over_chosen_capabilities() -> None:
    the_need = need(
        services={"ics-ot-expertise", "digital-forensics"}, ics_protocols={"modbus", "s7"}
    )
    o = org(
        caps=[
            cap(id=1, service="ics-ot-expertise", ics_protocols={"modbus"}),
            cap(id=2, service="digital-forensics", ics_protocols={"s7"}),
        ]
    )
    c = only(rank(the_need, [o]))
    assert points(c, "ics") == 10.0
    assert reason(c, "ics").detail == "knows modbus, s7 of modbus, s7"


# ---------------------------------------------------------------- languages


@pytest.mark.parametrize(
    ("wanted", "offered", "expected", "detail"),
    [
        (set(), {"en"}, 10.0, "no language requested"),
        ({"et", "en"}, {"en", "fr"}, 10.0, "works in en"),
        ({"et", "en"}, {"en", "et"}, 10.0, "works in en, et"),
        ({"et"}, {"en"}, 0.0, "shares no requested language"),
        ({"et"}, set(), 0.0, "shares no requested language"),
    ],
)
def test_languages(wanted: set[str], offered: set[str], expected: float, detail: str) -> None:
    c = only(rank(need(languages=wanted), [org(caps=[cap(languages=offered)])]))
    assert points(c, "languages") == expected
    assert reason(c, "languages").detail == detail


# ---------------------------------------------------------------- capacity, on-call, response time


@pytest.mark.parametrize(
    ("limit", "busy", "expected", "detail"),
    [
        (4, 0, 10.0, "4 of 4 concurrent engagements free"),
        (4, 1, 7.5, "3 of 4 concurrent engagements free"),
        (4, 3, 2.5, "1 of 4 concurrent engagements free"),
        (4, 4, 0.0, "0 of 4 concurrent engagements free"),
        (4, 9, 0.0, "0 of 4 concurrent engagements free"),
        (3, 1, 6.67, "2 of 3 concurrent engagements free"),
        (0, 0, 0.0, "0 of 0 concurrent engagements free"),
    ],
)
def test_capacity(limit: int, busy: int, expected: float, detail: str) -> None:
    o = org(caps=[cap(max_concurrent=limit)], active_engagements=busy)
    c = only(rank(need(), [o]))
    assert points(c, "capacity") == expected
    assert reason(c, "capacity").detail == detail


def test_capacity_uses_largest_limit_of_chosen_capabilities() -> None:
    the_need = need(services={"malware-analysis", "digital-forensics"})
    o = org(
        caps=[
            cap(id=1, service="malware-analysis", max_concurrent=1),
            cap(id=2, service="digital-forensics", max_concurrent=5),
        ],
        active_engagements=1,
    )
    assert points(only(rank(the_need, [o])), "capacity") == 8.0


def test_busy_organisation_ranks_below_free_one() -> None:
    result = rank(need(), [org(id=1, name="Alpha", active_engagements=2), org(id=2, name="Bravo")])
    assert [c.organisation_name for c in result.candidates] == ["Bravo", "Alpha"]
    assert result.candidates[0].score - result.candidates[1].score == 10.0


def test_on_call() -> None:
    on = only(rank(need(), [org(on_call_now=True)]))
    off = only(rank(need(), [org(on_call_now=False)]))
    assert points(on, "on-call") == 10.0
    assert points(off, "on-call") == 0.0
    assert reason(off, "on-call").detail == "no point of contact on call now"
    assert on.score - off.score == 10.0


def test_on_call_breaks_an_otherwise_equal_tie() -> None:
    result = rank(
        need(),
        [org(id=1, name="Alpha", on_call_now=False), org(id=2, name="Bravo", on_call_now=True)],
    )
    assert [c.organisation_name for c in result.candidates] == ["Bravo", "Alpha"]


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (None, 2.5),
        (0.0, 5.0),
        (1.0, 5.0),
        (1.01, 4.0),
        (4.0, 4.0),
        (4.5, 3.0),
        (12.0, 3.0),
        (12.5, 2.0),
        (24.0, 2.0),
        (24.1, 1.0),
        (1000.0, 1.0),
    ],
)
def test_response_time(hours: float | None, expected: float) -> None:
    c = only(rank(need(), [org(median_response_hours=hours)]))
    assert points(c, "response-time") == expected
    detail = reason(c, "response-time").detail
    if hours is None:
        assert detail == "no past responses to judge by"
    else:
        assert detail == f"median {hours:.1f} h from routing to offer"


def test_faster_responder_ranks_higher() -> None:
    result = rank(
        need(),
        [
            org(id=1, name="Alpha", median_response_hours=30),
            org(id=2, name="Bravo", median_response_hours=2),
        ],
    )
    assert [c.organisation_name for c in result.candidates] == ["Bravo", "Alpha"]


# ---------------------------------------------------------------- ranking


def test_ties_broken_by_name() -> None:
    orgs = [org(id=i, name=n) for i, n in enumerate(["Charlie", "alpha", "Bravo", "Alpha"], 1)]
    result = rank(need(), orgs)
    assert {c.score for c in result.candidates} == {100.0}
    assert [c.organisation_name for c in result.candidates] == [
        "Alpha",
        "Bravo",
        "Charlie",
        "alpha",
    ]


def test_best_first() -> None:
    orgs = [
        org(
            id=1,
            name="Low",
            caps=[cap(id=1, depth="basic", sectors={"banking"})],
            on_call_now=False,
        ),
        org(id=2, name="High"),
        org(id=3, name="Mid", caps=[cap(id=3, depth="advanced")]),
    ]
    result = rank(need(), orgs)
    assert [c.organisation_name for c in result.candidates] == ["High", "Mid", "Low"]
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    for c in result.candidates:
        check_reasons(c)


def test_score_equals_sum_of_displayed_reasons_with_thirds() -> None:
    # Thirds make every factor round: the displayed total must still be the sum of the parts.
    the_need = need(
        services={"malware-analysis", "digital-forensics", "incident-response"},
        ics_protocols={"modbus", "dnp3", "s7"},
        sector="health",
    )
    o = org(
        caps=[cap(depth="advanced", sectors=(), ics_protocols={"modbus"}, max_concurrent=3)],
        active_engagements=2,
    )
    c = only(rank(the_need, [o]))
    # Unrounded: 11.333 + 10 + 3.333 + 10 + 3.333 + 10 + 5 = 53.0; rounded parts: 52.99.
    assert [r.points for r in c.reasons] == [11.33, 10.0, 3.33, 10.0, 3.33, 10.0, 5.0]
    check_reasons(c)
    assert c.score == round(sum(r.points for r in c.reasons), 2)


# ---------------------------------------------------------------- properties

SERVICES = ["malware-analysis", "digital-forensics", "incident-response", "threat-intelligence"]
SECTORS = ["energy", "energy/electricity", "health", "banking"]
ICS = ["modbus", "dnp3", "s7"]
LANGS = ["en", "et", "fr"]


@st.composite
def capabilities(draw: st.DrawFn, cap_id: int) -> CapabilityFacts:
    return cap(
        id=cap_id,
        service=draw(st.sampled_from(SERVICES)),
        depth=draw(st.sampled_from(["basic", "advanced", "expert", "other"])),
        sectors=draw(st.frozensets(st.sampled_from(SECTORS))),
        ics_protocols=draw(st.frozensets(st.sampled_from(ICS))),
        languages=draw(st.frozensets(st.sampled_from(LANGS))),
        max_concurrent=draw(st.integers(0, 5)),
        legal=draw(st.frozensets(st.sampled_from(["no-personal-data", "eu-only-transfer"]))),
        active=draw(st.booleans()),
    )


@st.composite
def organisations(draw: st.DrawFn) -> list[OrganisationFacts]:
    count = draw(st.integers(0, 8))
    names = draw(
        st.lists(
            st.text("ABCab", min_size=1, max_size=3), min_size=count, max_size=count, unique=True
        )
    )
    result = []
    for i, name in enumerate(names, start=1):
        caps = [draw(capabilities(i * 100 + j)) for j in range(draw(st.integers(0, 3)))]
        result.append(
            org(
                id=i,
                name=name,
                kind=draw(st.sampled_from(["csirt", "law-enforcement", "secretariat"])),
                nation_kind=draw(st.sampled_from(["member", "partner", "observer"])),
                nation_in_eu=draw(st.booleans()),
                caps=caps,
                active_engagements=draw(st.integers(0, 6)),
                on_call_now=draw(st.booleans()),
                median_response_hours=draw(
                    st.none() | st.floats(0, 100, allow_nan=False, allow_infinity=False)
                ),
                active=draw(st.booleans()),
            )
        )
    return result


needs = st.builds(
    need,
    services=st.frozensets(st.sampled_from(SERVICES), min_size=1),
    sector=st.sampled_from(SECTORS),
    requester_org_id=st.integers(1, 9),
    requester_in_eu=st.booleans(),
    ics_protocols=st.frozensets(st.sampled_from(ICS)),
    languages=st.frozensets(st.sampled_from(LANGS)),
    legal_requirements=st.frozensets(
        st.sampled_from(["eu-only-transfer", "no-law-enforcement", "members-only"])
    ),
    involves_personal_data=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(the_need=needs, orgs=organisations())
def test_scores_bounded_reasons_complete_and_sum(
    the_need: Need, orgs: list[OrganisationFacts]
) -> None:
    result = rank(the_need, orgs)
    for c in result.candidates:
        check_reasons(c)
        assert c.score == round(sum(r.points for r in c.reasons), 2)
        assert set(c.services_covered) <= the_need.services
    # Every organisation is either a candidate or excluded, exactly once.
    ids = [c.organisation_id for c in result.candidates] + [
        e.organisation_id for e in result.excluded
    ]
    assert sorted(ids) == sorted(o.id for o in orgs)
    keys = [(-c.score, c.organisation_name) for c in result.candidates]
    assert keys == sorted(keys)


@settings(max_examples=100, deadline=None)
@given(the_need=needs, orgs=organisations(), data=st.data())
def test_rank_is_permutation_invariant(
    the_need: Need, orgs: list[OrganisationFacts], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(orgs))
    first, second = rank(the_need, orgs), rank(the_need, shuffled)
    assert first.candidates == second.candidates
    key = lambda e: e.organisation_id  # noqa: E731
    assert sorted(first.excluded, key=key) == sorted(second.excluded, key=key)
    # And repeating the call gives the same answer.
    assert rank(the_need, orgs) == first
