"""Per-step deadlines of an RFA (DOMAIN.md §3) and the state of each clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcisc.assistance.deadlines import ClockState, Deadlines, Step, clock_state, deadlines_for

H = timedelta(hours=1)
T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
TALLINN = ZoneInfo("Europe/Tallinn")

#: severity -> hours for (triage, first offer, acceptance)
TARGETS = {
    5: (1, 4, 8),
    4: (2, 8, 24),
    3: (4, 24, 48),
    2: (8, 48, 96),
    1: (24, 120, 240),
    0: (48, 240, 480),
}


@pytest.mark.parametrize(("severity", "hours"), sorted(TARGETS.items()))
def test_targets_per_severity(severity: int, hours: tuple[int, int, int]) -> None:
    d = deadlines_for(severity, T0)
    assert isinstance(d, Deadlines)
    assert d.triage_due == T0 + hours[0] * H
    assert d.first_offer_due == T0 + hours[1] * H
    assert d.acceptance_due == T0 + hours[2] * H
    assert d.due(Step.TRIAGE) == d.triage_due
    assert d.due(Step.FIRST_OFFER) == d.first_offer_due
    assert d.due(Step.ACCEPTANCE) == d.acceptance_due


@pytest.mark.parametrize("severity", range(6))
def test_steps_are_in_order(severity: int) -> None:
    d = deadlines_for(severity, T0)
    assert T0 < d.triage_due < d.first_offer_due < d.acceptance_due


@pytest.mark.parametrize("step", list(Step))
def test_higher_severity_means_tighter_deadline(step: Step) -> None:
    dues = [deadlines_for(s, T0).due(step) for s in range(6)]
    # severity 0 (baseline) has the longest, 5 (emergency) the shortest.
    assert dues == sorted(dues, reverse=True)
    assert len(set(dues)) == 6


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadlines_for(3, datetime(2025, 1, 1, 12, 0))


@pytest.mark.parametrize("severity", [-1, 6, 10, 100])
def test_unknown_severity_rejected(severity: int) -> None:
    with pytest.raises(ValueError, match=f"severity must be 0–5, got {severity}"):
        deadlines_for(severity, T0)


def test_due_times_stay_aware() -> None:
    d = deadlines_for(2, T0)
    for step in Step:
        assert d.due(step).utcoffset() is not None


def test_same_instant_in_other_zones_gives_the_same_deadlines() -> None:
    plus_five = T0.astimezone(timezone(timedelta(hours=5)))
    in_tallinn = T0.astimezone(TALLINN)
    for severity in range(6):
        expected = deadlines_for(severity, T0)
        for start in (plus_five, in_tallinn):
            got = deadlines_for(severity, start)
            for step in Step:
                assert got.due(step) == expected.due(step)


@pytest.mark.parametrize(
    "submitted",
    [
        # Spring forward in Tallinn: 2024-03-31 03:00 EET -> 04:00 EEST.
        datetime(2024, 3, 31, 2, 30, tzinfo=TALLINN),
        # Fall back in Tallinn: 2024-10-27 04:00 EEST -> 03:00 EET.
        datetime(2024, 10, 27, 3, 30, tzinfo=TALLINN),
        datetime(2024, 10, 27, 3, 30, fold=1, tzinfo=TALLINN),
    ],
)
@pytest.mark.parametrize("severity", range(6))
def test_deadlines_are_elapsed_time_across_dst(submitted: datetime, severity: int) -> None:
    """A one-hour deadline is one real hour even when a DST change falls inside it."""
    d = deadlines_for(severity, submitted)
    start = submitted.astimezone(UTC)
    for step, hours in zip(Step, TARGETS[severity], strict=True):
        assert d.due(step).astimezone(UTC) - start == hours * H, step


@settings(max_examples=200)
@given(
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
    ),
    severity=st.integers(0, 5),
)
def test_deadlines_property_elapsed_time(when: datetime, severity: int) -> None:
    d = deadlines_for(severity, when)
    reference = deadlines_for(severity, when.astimezone(UTC))
    for step, hours in zip(Step, TARGETS[severity], strict=True):
        assert d.due(step).astimezone(UTC) - when.astimezone(UTC) == hours * H
        assert d.due(step) == reference.due(step)


# ---------------------------------------------------------------- clock states

DUE = T0 + 4 * H
EARLY = DUE - timedelta(minutes=1)
LATE = DUE + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("happened", "now", "ended", "expected"),
    [
        # The step happened: met at or before the due time, breached after it — whatever else.
        (EARLY, EARLY, None, ClockState.MET),
        (DUE, DUE, None, ClockState.MET),
        (EARLY, LATE + 100 * H, None, ClockState.MET),
        (LATE, LATE, None, ClockState.BREACHED),
        (EARLY, LATE, LATE, ClockState.MET),
        (LATE, LATE, EARLY, ClockState.BREACHED),
        # Not happened, request still open: running until the due time, then breached.
        (None, T0, None, ClockState.RUNNING),
        (None, EARLY, None, ClockState.RUNNING),
        (None, DUE, None, ClockState.RUNNING),
        (None, LATE, None, ClockState.BREACHED),
        # Not happened, request ended: void if it ended in time, breached if after the due time.
        (None, LATE, EARLY, ClockState.VOID),
        (None, LATE, DUE, ClockState.VOID),
        (None, LATE + 100 * H, LATE, ClockState.BREACHED),
        (None, EARLY, EARLY, ClockState.VOID),
    ],
)
def test_clock_state(
    happened: datetime | None, now: datetime, ended: datetime | None, expected: ClockState
) -> None:
    assert clock_state(DUE, happened, now, ended) is expected


def test_clock_state_compares_instants_across_zones() -> None:
    # 10:59 in Tallinn (UTC+2 in March) is 08:59 UTC, i.e. before a 09:00 UTC due time.
    due = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    before = datetime(2025, 3, 10, 10, 59, tzinfo=TALLINN)
    after = datetime(2025, 3, 10, 11, 1, tzinfo=TALLINN)
    assert clock_state(due, before, after, None) is ClockState.MET
    assert clock_state(due, after, after, None) is ClockState.BREACHED
    assert clock_state(due, None, before, None) is ClockState.RUNNING
    assert clock_state(due, None, after, None) is ClockState.BREACHED
    assert clock_state(due, None, after, before) is ClockState.VOID


def test_clock_state_values() -> None:
    assert {c.value for c in ClockState} == {"running", "met", "breached", "void"}
    assert [s.value for s in Step] == ["triage", "first-offer", "acceptance"]


def test_clock_with_deadlines_end_to_end() -> None:
    d = deadlines_for(5, T0)  # triage 1 h, first offer 4 h, acceptance 8 h
    now = T0 + 5 * H
    triaged = T0 + 30 * timedelta(minutes=1)
    assert clock_state(d.triage_due, triaged, now, None) is ClockState.MET
    assert clock_state(d.first_offer_due, None, now, None) is ClockState.BREACHED
    assert clock_state(d.acceptance_due, None, now, None) is ClockState.RUNNING
