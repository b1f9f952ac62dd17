"""On-call rota parsing and "is someone on call now?" across time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcisc.oncall import OnCall, OnCallError, Window, parse_on_call, parse_timezone

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
UTC_ZONE = ZoneInfo("UTC")
TALLINN = ZoneInfo("Europe/Tallinn")
NEW_YORK = ZoneInfo("America/New_York")


def at(weekday: int, hh: int, mm: int = 0, zone: ZoneInfo = UTC_ZONE) -> datetime:
    """An aware instant on the given weekday of the week of 2025-01-06, wall clock in zone."""
    day = datetime(2025, 1, 6 + weekday, hh, mm, tzinfo=zone)
    assert day.weekday() == weekday
    return day


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("spec", ["24/7", "always", " 24/7 ", "ALWAYS", "Always\n"])
def test_always(spec: str) -> None:
    rota = parse_on_call(spec)
    assert rota == OnCall(True, ())
    for hour in range(0, 24, 5):
        for day in range(7):
            assert rota.covers(at(day, hour), TALLINN)


@pytest.mark.parametrize("spec", ["", "   ", ";", " ; ;  "])
def test_empty_means_never(spec: str) -> None:
    rota = parse_on_call(spec)
    assert rota.always is False
    assert rota.windows == ()
    assert not any(rota.covers(at(d, h), UTC_ZONE) for d in range(7) for h in range(24))


def test_single_window() -> None:
    rota = parse_on_call("mon-fri 08:00-18:00")
    assert rota == OnCall(False, (Window(frozenset(range(5)), time(8), time(18)),))


def test_several_windows_and_whitespace_and_case() -> None:
    rota = parse_on_call("  MON-FRI   08:00-18:00 ;  Sat 09:30-12:00;  ")
    assert rota.windows == (
        Window(frozenset({MON, TUE, WED, THU, FRI}), time(8), time(18)),
        Window(frozenset({SAT}), time(9, 30), time(12)),
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon", {MON}),
        ("sun", {SUN}),
        ("mon-fri", {MON, TUE, WED, THU, FRI}),
        ("mon-sun", set(range(7))),
        ("wed-wed", {WED}),
        ("sat,sun", {SAT, SUN}),
        ("mon,wed,fri", {MON, WED, FRI}),
        ("mon,wed-fri", {MON, WED, THU, FRI}),
        ("tue,tue", {TUE}),
        # Ranges that wrap around the end of the week.
        ("sat-mon", {SAT, SUN, MON}),
        ("fri-tue", {FRI, SAT, SUN, MON, TUE}),
        ("sun-mon", {SUN, MON}),
        ("sun-sat", set(range(7))),
        ("tue-mon", set(range(7))),
    ],
)
def test_day_specs(days: str, expected: set[int]) -> None:
    (window,) = parse_on_call(f"{days} 10:00-11:00").windows
    assert window.days == frozenset(expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("funday 08:00-09:00", "unknown day 'funday'"),
        ("mon,xyz 08:00-09:00", "unknown day 'xyz'"),
        ("mon, 08:00-09:00", "cannot read"),
        ("mon-xyz 08:00-09:00", "unknown day in 'mon-xyz'"),
        ("xyz-mon 08:00-09:00", "unknown day in 'xyz-mon'"),
        ("mon-tue-wed 08:00-09:00", "unknown day in 'mon-tue-wed'"),
        ("monday 08:00-09:00", "unknown day 'monday'"),
        ("mon 25:00-26:00", "'25:00' is not a time of day"),
        ("mon 08:60-09:00", "'08:60' is not a time of day"),
        ("mon 08:00-24:30", "'24:30' is not a time of day"),
        ("mon 08:00-08:00", "cannot start and end at the same time"),
        ("mon 8:00-18:00", "cannot read 'mon 8:00-18:00'"),
        ("mon 08:00 - 18:00", "cannot read"),
        ("08:00-18:00", "cannot read '08:00-18:00'"),
        ("mon", "cannot read 'mon'"),
        ("mon 08:00", "cannot read"),
        ("24/7; mon 08:00-09:00", "cannot read '24/7'"),
        ("mon 08:00-09:00; nonsense", "cannot read 'nonsense'"),
        ("mon1 08:00-09:00", "cannot read"),
    ],
)
def test_bad_input_messages(spec: str, message: str) -> None:
    with pytest.raises(OnCallError) as info:
        parse_on_call(spec)
    assert message in str(info.value)


def test_bad_day_message_lists_valid_days() -> None:
    with pytest.raises(OnCallError, match="days are mon, tue, wed, thu, fri, sat, sun"):
        parse_on_call("tues 08:00-09:00")


def test_cannot_read_message_shows_an_example() -> None:
    with pytest.raises(OnCallError, match="write '24/7' or windows like 'mon-fri 08:00-18:00'"):
        parse_on_call("whenever")


def test_on_call_error_is_value_error() -> None:
    assert issubclass(OnCallError, ValueError)


def test_whitespace_inside_window_is_normalised() -> None:
    assert parse_on_call("mon\t 08:00-09:00") == parse_on_call("mon 08:00-09:00")


# ---------------------------------------------------------------- Window.covers


def test_day_window_boundaries() -> None:
    w = Window(frozenset({MON}), time(8), time(18))
    assert not w.covers(MON, time(7, 59, 59))
    assert w.covers(MON, time(8))
    assert w.covers(MON, time(17, 59, 59))
    assert not w.covers(MON, time(18))  # end is exclusive
    assert not w.covers(TUE, time(12))
    assert not w.covers(SUN, time(12))


def test_over_midnight_window() -> None:
    (w,) = parse_on_call("fri 22:00-06:00").windows
    assert w.start == time(22) and w.end == time(6)
    assert not w.covers(FRI, time(21, 59))
    assert w.covers(FRI, time(22))
    assert w.covers(FRI, time(23, 59, 59))
    assert w.covers(SAT, time(0))
    assert w.covers(SAT, time(5, 59))
    assert not w.covers(SAT, time(6))
    assert not w.covers(SAT, time(22))  # saturday evening is not named
    assert not w.covers(FRI, time(5))  # the morning part belongs to the day after the named one
    assert not w.covers(SUN, time(3))


def test_over_midnight_wraps_the_week() -> None:
    (w,) = parse_on_call("sun 23:00-02:00").windows
    assert w.covers(SUN, time(23, 30))
    assert w.covers(MON, time(1, 59))
    assert not w.covers(MON, time(2))
    assert not w.covers(MON, time(23, 30))
    assert not w.covers(SAT, time(23, 30))


def test_over_midnight_with_day_range() -> None:
    (w,) = parse_on_call("mon-fri 18:00-08:00").windows
    assert w.covers(MON, time(19))
    assert w.covers(TUE, time(7))
    assert w.covers(SAT, time(7))  # friday night runs into saturday morning
    assert not w.covers(MON, time(7))  # sunday night is not on the rota
    assert not w.covers(SAT, time(19))
    assert not w.covers(WED, time(12))


def test_end_of_day_2400() -> None:
    rota = parse_on_call("mon 00:00-24:00")
    assert rota.covers(at(MON, 0), UTC_ZONE)
    assert rota.covers(at(MON, 23, 59), UTC_ZONE)
    assert rota.covers(at(MON, 23, 59) + timedelta(seconds=59), UTC_ZONE)
    assert not rota.covers(at(TUE, 0), UTC_ZONE)
    assert not rota.covers(at(SUN, 23, 59), UTC_ZONE)


# ---------------------------------------------------------------- OnCall.covers with zones


def test_covers_any_of_several_windows() -> None:
    rota = parse_on_call("mon-fri 08:00-12:00; mon-fri 13:00-17:00; sat 10:00-11:00")
    assert rota.covers(at(WED, 9), UTC_ZONE)
    assert not rota.covers(at(WED, 12, 30), UTC_ZONE)
    assert rota.covers(at(WED, 13), UTC_ZONE)
    assert rota.covers(at(SAT, 10, 30), UTC_ZONE)
    assert not rota.covers(at(SUN, 10, 30), UTC_ZONE)


def test_rota_is_read_in_the_contacts_zone() -> None:
    rota = parse_on_call("mon-fri 09:00-17:00")
    # Winter: Tallinn is UTC+2.
    instant = at(MON, 7, 30)  # 09:30 in Tallinn
    assert rota.covers(instant, TALLINN)
    assert not rota.covers(instant, UTC_ZONE)
    instant = at(MON, 16)  # 18:00 in Tallinn
    assert rota.covers(instant, UTC_ZONE)
    assert not rota.covers(instant, TALLINN)
    # The same instant expressed in any zone gives the same answer.
    assert rota.covers(at(MON, 7, 30).astimezone(NEW_YORK), TALLINN)
    assert rota.covers(at(MON, 9, 30, zone=TALLINN), TALLINN)
    assert not rota.covers(at(MON, 9, 30, zone=TALLINN), UTC_ZONE)


def test_weekday_is_the_local_weekday() -> None:
    rota = parse_on_call("sat 00:00-03:00")
    friday_late_utc = at(FRI, 23)  # saturday 01:00 in Tallinn
    assert rota.covers(friday_late_utc, TALLINN)
    assert not rota.covers(friday_late_utc, UTC_ZONE)
    # New York is behind UTC: saturday 02:00 UTC is still friday there.
    assert rota.covers(at(SAT, 2), UTC_ZONE)
    assert not rota.covers(at(SAT, 2), NEW_YORK)


def test_dst_summer_versus_winter_in_tallinn() -> None:
    rota = parse_on_call("mon-fri 08:00-18:00")
    winter_monday = datetime(2025, 1, 6, tzinfo=UTC)
    summer_monday = datetime(2025, 7, 7, tzinfo=UTC)
    assert summer_monday.weekday() == MON
    # Winter: EET = UTC+2 → 06:00–16:00 UTC.
    assert not rota.covers(winter_monday.replace(hour=5, minute=30), TALLINN)
    assert rota.covers(winter_monday.replace(hour=6), TALLINN)
    assert rota.covers(winter_monday.replace(hour=15, minute=59), TALLINN)
    assert not rota.covers(winter_monday.replace(hour=16), TALLINN)
    # Summer: EEST = UTC+3 → 05:00–15:00 UTC.
    assert rota.covers(summer_monday.replace(hour=5, minute=30), TALLINN)
    assert rota.covers(summer_monday.replace(hour=5), TALLINN)
    assert not rota.covers(summer_monday.replace(hour=4, minute=59), TALLINN)
    assert not rota.covers(summer_monday.replace(hour=15, minute=30), TALLINN)


def test_dst_change_day() -> None:
    # 2025-03-30 (Sunday): Tallinn goes from 03:00 EET straight to 04:00 EEST (01:00 UTC).
    rota = parse_on_call("sun 02:00-05:00")
    day = datetime(2025, 3, 30, tzinfo=UTC)
    assert day.weekday() == SUN
    assert not rota.covers(day.replace(hour=0) - timedelta(minutes=1), TALLINN)  # 01:59 EET
    assert rota.covers(day.replace(hour=0, minute=30), TALLINN)  # 02:30 EET
    assert rota.covers(day.replace(hour=1, minute=30), TALLINN)  # 04:30 EEST
    assert not rota.covers(day.replace(hour=2), TALLINN)  # 05:00 EEST
    # The window is only 2 real hours long that night.
    covered = [m for m in range(0, 6 * 60, 15) if rota.covers(day + timedelta(minutes=m), TALLINN)]
    assert len(covered) * 15 == 120


def test_dst_fall_back_day_counts_the_repeated_hour() -> None:
    # 2025-10-26 (Sunday): Tallinn 04:00 EEST -> 03:00 EET, so 03:00–04:00 happens twice.
    rota = parse_on_call("sun 03:00-04:00")
    day = datetime(2025, 10, 26, tzinfo=UTC)
    assert day.weekday() == SUN
    covered = [m for m in range(0, 6 * 60, 15) if rota.covers(day + timedelta(minutes=m), TALLINN)]
    assert len(covered) * 15 == 120


@settings(max_examples=150)
@given(
    instant=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from([TALLINN, NEW_YORK, UTC_ZONE, ZoneInfo("Asia/Kolkata")]),
)
def test_covers_matches_a_direct_local_check(instant: datetime, zone: ZoneInfo) -> None:
    rota = parse_on_call("mon-fri 08:00-18:00; sat,sun 22:00-02:00")
    local = instant.astimezone(zone)
    day, t = local.weekday(), local.time()
    expected = (day < 5 and time(8) <= t < time(18)) or (
        (day in (SAT, SUN) and t >= time(22)) or (day in (SUN, MON) and t < time(2))
    )
    assert rota.covers(instant, zone) is expected
    # The zone of the aware instant itself does not matter.
    assert rota.covers(instant.astimezone(NEW_YORK), zone) is expected


# ---------------------------------------------------------------- parse_timezone


@pytest.mark.parametrize("name", ["Europe/Tallinn", "UTC", "America/New_York"])
def test_parse_timezone(name: str) -> None:
    assert parse_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "Europe"])
def test_parse_timezone_rejects(name: str) -> None:
    with pytest.raises(OnCallError) as info:
        parse_timezone(name)
    assert f"unknown time zone {name!r}" in str(info.value)
    assert "IANA" in str(info.value)


def test_spaces_after_commas_in_day_lists_are_accepted() -> None:
    assert parse_on_call("sat, sun 10:00-14:00") == parse_on_call("sat,sun 10:00-14:00")


def test_covers_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_on_call("24/7").covers(datetime(2025, 1, 6, 12, 0), ZoneInfo("UTC"))
