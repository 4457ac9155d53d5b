"""Occurrences, local day bounds and schedule parsing, with daylight saving taken seriously.

Every instant is written out explicitly: the functions under test never read the clock.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from coachbot.domain.clock import utc_offset_at
from coachbot.domain.schedule import (
    TRACKS,
    LocalWindow,
    Occurrence,
    Phase,
    QuietPolicy,
    TrackSchedule,
    count_in_local_day,
    local_day_bounds,
    occurrences_between,
    overdue,
    parse_days,
    parse_hhmm,
    place_in_window,
)

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SANTIAGO = ZoneInfo("America/Santiago")
APIA = ZoneInfo("Pacific/Apia")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def daily(*times: str, track: str = "sleep") -> TrackSchedule:
    return TrackSchedule(track, tuple(parse_hhmm(t) for t in times))


def local_days(
    schedule: TrackSchedule,
    zone: ZoneInfo,
    first: dt.date,
    last: dt.date,
    **kw: dt.date,
) -> list[Occurrence]:
    """Occurrences whose instants fall in local days first..last inclusive."""
    start = local_day_bounds(first, zone)[0]
    end = local_day_bounds(last, zone)[1]
    return occurrences_between(schedule, zone, start, end, **kw)


def summary(occs: list[Occurrence]) -> list[tuple[str, dt.datetime]]:
    return [(o.key, o.due_at) for o in occs]


# --- daylight saving, one zone at a time -------------------------------------------------


def test_new_york_spring_forward_moves_missing_time_forward_by_the_gap() -> None:
    occs = local_days(daily("02:30"), NEW_YORK, dt.date(2026, 3, 7), dt.date(2026, 3, 9))
    assert summary(occs) == [
        ("sleep:2026-03-07T02:30", utc(2026, 3, 7, 7, 30)),  # 02:30 EST
        ("sleep:2026-03-08T02:30", utc(2026, 3, 8, 7, 30)),  # 03:30 EDT
        ("sleep:2026-03-09T02:30", utc(2026, 3, 9, 6, 30)),  # 02:30 EDT
    ]
    assert occs[1].due_at.astimezone(NEW_YORK).time() == dt.time(3, 30)
    assert occs[1].wall_time == dt.time(2, 30)


def test_new_york_shifted_slot_landing_on_another_slot_is_sent_once() -> None:
    occs = local_days(daily("02:30", "03:30"), NEW_YORK, dt.date(2026, 3, 8), dt.date(2026, 3, 8))
    # 02:30 does not exist and would land on 03:30 EDT, where the 03:30 slot already fires.
    assert summary(occs) == [("sleep:2026-03-08T03:30", utc(2026, 3, 8, 7, 30))]


def test_new_york_fall_back_repeated_time_fires_once_at_first_occurrence() -> None:
    occs = local_days(daily("01:30"), NEW_YORK, dt.date(2026, 10, 31), dt.date(2026, 11, 2))
    assert summary(occs) == [
        ("sleep:2026-10-31T01:30", utc(2026, 10, 31, 5, 30)),
        ("sleep:2026-11-01T01:30", utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not 01:30 EST
        ("sleep:2026-11-02T01:30", utc(2026, 11, 2, 6, 30)),
    ]


def test_window_covering_only_the_second_pass_of_a_repeated_hour_fires_nothing() -> None:
    # 01:00-02:00 EST: the 01:30 slot already fired at 01:30 EDT, an hour earlier.
    occs = occurrences_between(
        daily("01:30"), NEW_YORK, utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 7, 0)
    )
    assert occs == []


def test_london_spring_forward_and_fall_back() -> None:
    spring = local_days(daily("01:30"), LONDON, dt.date(2026, 3, 29), dt.date(2026, 3, 29))
    assert summary(spring) == [("sleep:2026-03-29T01:30", utc(2026, 3, 29, 1, 30))]  # 02:30 BST
    autumn = local_days(daily("01:30"), LONDON, dt.date(2026, 10, 25), dt.date(2026, 10, 25))
    assert summary(autumn) == [("sleep:2026-10-25T01:30", utc(2026, 10, 25, 0, 30))]  # BST


def test_kathmandu_quarter_hour_offset() -> None:
    occs = local_days(daily("08:00"), KATHMANDU, dt.date(2026, 3, 8), dt.date(2026, 3, 9))
    assert [o.due_at for o in occs] == [utc(2026, 3, 8, 2, 15), utc(2026, 3, 9, 2, 15)]


def test_kathmandu_1986_change_skipped_the_first_quarter_hour_of_new_year() -> None:
    # 1986-01-01 00:00 +05:30 became 00:15 +05:45: midnight itself never happened.
    if dt.datetime(1986, 1, 2, tzinfo=KATHMANDU).utcoffset() != dt.timedelta(hours=5, minutes=45):
        pytest.skip("installed tzdata lacks Kathmandu's 1986 offset change")
    occs = local_days(daily("00:10"), KATHMANDU, dt.date(1985, 12, 31), dt.date(1986, 1, 1))
    assert summary(occs) == [
        ("sleep:1985-12-31T00:10", utc(1985, 12, 30, 18, 40)),
        ("sleep:1986-01-01T00:10", utc(1985, 12, 31, 18, 40)),  # 00:25 +05:45
    ]
    start, end = local_day_bounds(dt.date(1986, 1, 1), KATHMANDU)
    assert start == utc(1985, 12, 31, 18, 30)
    assert start.astimezone(KATHMANDU).time() == dt.time(0, 15)
    assert end - start == dt.timedelta(hours=23, minutes=45)


def test_lord_howe_half_hour_daylight_saving() -> None:
    # 2026-10-04 02:00 +10:30 -> 02:30 +11:00: a 30-minute gap.
    spring = local_days(daily("02:15"), LORD_HOWE, dt.date(2026, 10, 4), dt.date(2026, 10, 4))
    assert summary(spring) == [("sleep:2026-10-04T02:15", utc(2026, 10, 3, 15, 45))]
    assert spring[0].due_at.astimezone(LORD_HOWE).time() == dt.time(2, 45)
    # 2026-04-05 02:00 +11:00 -> 01:30 +10:30: 01:30-02:00 happens twice.
    autumn = local_days(daily("01:45"), LORD_HOWE, dt.date(2026, 4, 5), dt.date(2026, 4, 5))
    assert summary(autumn) == [("sleep:2026-04-05T01:45", utc(2026, 4, 4, 14, 45))]
    start, end = local_day_bounds(dt.date(2026, 4, 5), LORD_HOWE)
    assert end - start == dt.timedelta(hours=24, minutes=30)


def test_santiago_day_that_skips_midnight() -> None:
    # 2026-09-06 00:00 -04 became 01:00 -03: the local day starts at 01:00 and lasts 23 h.
    start, end = local_day_bounds(dt.date(2026, 9, 6), SANTIAGO)
    assert start == utc(2026, 9, 6, 4, 0)
    assert start.astimezone(SANTIAGO).date() == dt.date(2026, 9, 6)
    assert start.astimezone(SANTIAGO).time() == dt.time(1, 0)
    assert end - start == dt.timedelta(hours=23)
    occs = local_days(daily("00:30", "08:00"), SANTIAGO, dt.date(2026, 9, 5), dt.date(2026, 9, 7))
    assert summary(occs) == [
        ("sleep:2026-09-05T00:30", utc(2026, 9, 5, 4, 30)),
        ("sleep:2026-09-05T08:00", utc(2026, 9, 5, 12, 0)),
        ("sleep:2026-09-06T00:30", utc(2026, 9, 6, 4, 30)),  # 01:30 -03
        ("sleep:2026-09-06T08:00", utc(2026, 9, 6, 11, 0)),
        ("sleep:2026-09-07T00:30", utc(2026, 9, 7, 3, 30)),
        ("sleep:2026-09-07T08:00", utc(2026, 9, 7, 11, 0)),
    ]


def test_santiago_fall_back_at_midnight_makes_a_25_hour_day() -> None:
    # 2026-04-05 00:00 -03 went back to 2026-04-04 23:00 -04.
    start, end = local_day_bounds(dt.date(2026, 4, 4), SANTIAGO)
    assert end - start == dt.timedelta(hours=25)
    occs = local_days(daily("23:30"), SANTIAGO, dt.date(2026, 4, 4), dt.date(2026, 4, 4))
    assert summary(occs) == [("sleep:2026-04-04T23:30", utc(2026, 4, 5, 2, 30))]


def test_skipped_calendar_day_is_empty_and_never_doubles_the_next_day() -> None:
    # Samoa jumped from 2011-12-29 to 2011-12-31.
    start, end = local_day_bounds(dt.date(2011, 12, 30), APIA)
    assert start == end
    occs = local_days(daily("09:00"), APIA, dt.date(2011, 12, 29), dt.date(2011, 12, 31))
    assert summary(occs) == [
        ("sleep:2011-12-29T09:00", utc(2011, 12, 29, 19, 0)),
        ("sleep:2011-12-31T09:00", utc(2011, 12, 30, 19, 0)),
    ]


def test_a_whole_year_in_new_york_fires_once_a_day_at_the_local_time() -> None:
    occs = occurrences_between(daily("08:00"), NEW_YORK, utc(2026, 1, 1, 5), utc(2027, 1, 1, 5))
    assert len(occs) == 365
    assert {o.due_at.astimezone(NEW_YORK).time() for o in occs} == {dt.time(8)}
    assert len({o.due_at.astimezone(NEW_YORK).date() for o in occs}) == 365


def test_split_windows_give_the_same_occurrences_as_one_window() -> None:
    schedule = daily("01:30", "02:30", "03:30", "09:00")
    start, end = utc(2026, 3, 7), utc(2026, 11, 3)
    whole = occurrences_between(schedule, NEW_YORK, start, end)
    cuts = [start, utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 30), utc(2026, 11, 1, 6), end]
    pieces = [
        o
        for a, b in itertools.pairwise(cuts)
        for o in occurrences_between(schedule, NEW_YORK, a, b)
    ]
    assert pieces == whole


# --- schedule rules ----------------------------------------------------------------------


def test_several_times_a_day_are_sorted_by_due_at() -> None:
    occs = local_days(
        daily("20:00", "08:00", "12:30"), LONDON, dt.date(2026, 6, 1), dt.date(2026, 6, 1)
    )
    assert [o.wall_time for o in occs] == [dt.time(8), dt.time(12, 30), dt.time(20)]


def test_days_of_week_and_inclusive_date_range() -> None:
    schedule = TrackSchedule(
        "exercise",
        (dt.time(10),),
        days_of_week=parse_days("mon,wed,fri"),
        start_date=dt.date(2026, 6, 3),
        end_date=dt.date(2026, 6, 12),
    )
    occs = local_days(schedule, LONDON, dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    assert [o.local_date.isoformat() for o in occs] == [
        "2026-06-03",
        "2026-06-05",
        "2026-06-08",
        "2026-06-10",
        "2026-06-12",
    ]


def test_phases_daily_for_four_weeks_then_mon_wed_fri() -> None:
    schedule = TrackSchedule(
        "checkin",
        (dt.time(9),),
        phases=(
            Phase(0, 28, frozenset(range(7))),
            Phase(28, None, frozenset({0, 2, 4})),
        ),
    )
    enrolled = dt.date(2026, 6, 3)  # a Wednesday
    occs = local_days(
        schedule, NEW_YORK, dt.date(2026, 6, 1), dt.date(2026, 7, 12), enrolled_on=enrolled
    )
    dates = [o.local_date for o in occs]
    assert dates[0] == enrolled  # nothing before enrolment
    assert dates[:28] == [enrolled + dt.timedelta(days=i) for i in range(28)]
    assert dates[28:] == [
        dt.date(2026, 7, 1),
        dt.date(2026, 7, 3),
        dt.date(2026, 7, 6),
        dt.date(2026, 7, 8),
        dt.date(2026, 7, 10),
    ]


def test_phase_gap_and_end_mean_no_occurrence() -> None:
    schedule = TrackSchedule(
        "rehab",
        (dt.time(15),),
        phases=(Phase(0, 2, frozenset(range(7))), Phase(4, 5, frozenset(range(7)))),
    )
    occs = local_days(
        schedule,
        LONDON,
        dt.date(2026, 6, 1),
        dt.date(2026, 6, 30),
        enrolled_on=dt.date(2026, 6, 10),
    )
    assert [o.local_date.day for o in occs] == [10, 11, 14]


def test_phases_without_enrolment_date_are_refused() -> None:
    schedule = TrackSchedule("checkin", (dt.time(9),), phases=(Phase(0, None, frozenset({0})),))
    with pytest.raises(ValueError, match="enrolled_on"):
        occurrences_between(schedule, LONDON, utc(2026, 6, 1), utc(2026, 6, 8))


def test_occurrence_key_format() -> None:
    occ = Occurrence("diet", dt.date(2026, 3, 8), dt.time(2, 30), utc(2026, 3, 8, 7, 30))
    assert occ.key == "diet:2026-03-08T02:30"


def test_non_utc_aware_bounds_are_accepted_and_results_are_utc() -> None:
    start = dt.datetime(2026, 6, 1, tzinfo=NEW_YORK)
    occs = occurrences_between(daily("08:00"), NEW_YORK, start, start + dt.timedelta(days=1))
    assert [o.due_at for o in occs] == [utc(2026, 6, 1, 12)]
    assert occs[0].due_at.tzinfo is UTC


def test_empty_or_reversed_window_is_empty() -> None:
    assert occurrences_between(daily("08:00"), LONDON, utc(2026, 6, 2), utc(2026, 6, 1)) == []
    assert occurrences_between(daily("08:00"), LONDON, utc(2026, 6, 2), utc(2026, 6, 2)) == []


@pytest.mark.parametrize("which", ["start", "end"])
def test_naive_bounds_are_refused(which: str) -> None:
    bounds = {"start": utc(2026, 6, 1), "end": utc(2026, 6, 2)}
    bounds[which] = bounds[which].replace(tzinfo=None)
    with pytest.raises(ValueError, match=which):
        occurrences_between(daily("08:00"), LONDON, bounds["start"], bounds["end"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"track": "yoga"}, "unknown track"),
        ({"times": ()}, "no times"),
        ({"times": (dt.time(8), dt.time(8))}, "repeats"),
        ({"times": (dt.time(8, 0, 30),)}, "whole minutes"),
        ({"times": (dt.time(8, tzinfo=UTC),)}, "without tzinfo"),
        ({"days_of_week": frozenset()}, "no days"),
        ({"days_of_week": frozenset({7})}, "Monday"),
        ({"start_date": dt.date(2026, 6, 2), "end_date": dt.date(2026, 6, 1)}, "before"),
        (
            {"phases": (Phase(0, 10, frozenset({0})), Phase(5, None, frozenset({1})))},
            "overlap",
        ),
    ],
)
def test_invalid_schedules_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"track": "sleep", "times": (dt.time(8),)} | kwargs
    with pytest.raises(ValueError, match=message):
        TrackSchedule(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("from_day", "to_day", "days"),
    [(-1, None, {0}), (5, 5, {0}), (5, 3, {0}), (0, None, {-1})],
)
def test_invalid_phases_are_refused(from_day: int, to_day: int | None, days: set[int]) -> None:
    with pytest.raises(ValueError, match="phase"):
        Phase(from_day, to_day, frozenset(days))


def test_every_track_name_is_accepted() -> None:
    for track in TRACKS:
        assert TrackSchedule(track, (dt.time(8),)).track == track


# --- local days and the daily cap --------------------------------------------------------


def test_local_day_bounds_on_23_and_25_hour_days() -> None:
    start, end = local_day_bounds(dt.date(2026, 3, 8), NEW_YORK)
    assert (start, end - start) == (utc(2026, 3, 8, 5), dt.timedelta(hours=23))
    start, end = local_day_bounds(dt.date(2026, 11, 1), NEW_YORK)
    assert (start, end - start) == (utc(2026, 11, 1, 4), dt.timedelta(hours=25))


def test_count_in_local_day_uses_the_local_calendar() -> None:
    sends = [
        utc(2026, 11, 1, 3, 59),  # 23:59 EDT on Oct 31
        utc(2026, 11, 1, 4, 0),  # 00:00 EDT Nov 1
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 6, 30),  # 01:30 EST, same local day
        utc(2026, 11, 2, 4, 59),  # 23:59 EST Nov 1
        utc(2026, 11, 2, 5, 0),  # 00:00 EST Nov 2
    ]
    assert count_in_local_day(sends, dt.date(2026, 11, 1), NEW_YORK) == 4
    assert count_in_local_day(sends, dt.date(2026, 10, 31), NEW_YORK) == 1
    assert count_in_local_day(iter(sends), dt.date(2026, 11, 2), NEW_YORK) == 1


def test_count_in_local_day_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        count_in_local_day([dt.datetime(2026, 6, 1, 12)], dt.date(2026, 6, 1), LONDON)  # noqa: DTZ001


# --- staleness is counted from the first permitted instant -------------------------------

_WINDOW = LocalWindow(dt.time(8, 0), dt.time(20, 0))
_TWO_HOURS = dt.timedelta(hours=2)


def _utc(local: str, zone: ZoneInfo = NEW_YORK) -> dt.datetime:
    return dt.datetime.fromisoformat(local).replace(tzinfo=zone).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("due_local", "now_local", "quiet", "policy", "expected"),
    [
        # Deferred from 05:59 to the 08:00 window start: on time at 08:00, not 2 h late.
        ("2026-11-23 05:59", "2026-11-23 08:00", None, QuietPolicy.DEFER, False),
        ("2026-11-23 05:59", "2026-11-23 10:00", None, QuietPolicy.DEFER, False),
        ("2026-11-23 05:59", "2026-11-23 10:01", None, QuietPolicy.DEFER, True),
        # Deferred past the patient's quiet hours, which end 11:01.
        (
            "2026-11-23 09:00",
            "2026-11-23 11:01",
            LocalWindow(dt.time(8, 30), dt.time(11, 1)),
            QuietPolicy.DEFER,
            False,
        ),
        # Inside the window: the slot itself is the permitted instant.
        ("2026-11-23 09:00", "2026-11-23 11:00", None, QuietPolicy.DEFER, False),
        ("2026-11-23 09:00", "2026-11-23 11:01", None, QuietPolicy.DEFER, True),
        # A skip-policy track has no later permitted instant: counted from its slot.
        ("2026-11-23 05:59", "2026-11-23 08:00", None, QuietPolicy.SKIP, True),
    ],
)
def test_overdue_counts_from_the_first_permitted_instant(
    due_local: str,
    now_local: str,
    quiet: LocalWindow | None,
    policy: QuietPolicy,
    expected: bool,
) -> None:
    late = overdue(_utc(due_local), _utc(now_local), _TWO_HOURS, NEW_YORK, _WINDOW, quiet, policy)
    assert late is expected


def test_a_deferral_into_the_repeated_hour_is_found_under_freezegun() -> None:
    """Found by the planning property test: Belgrade's clocks go back at 03:00 CEST on
    2000-10-29, so 02:00-03:00 happens twice. A 02:30 nudge (first pass, outside a window
    ending 02:01) may go at 02:00 CET, the second pass. Tests run the tick under freezegun,
    whose datetimes drop `fold`; the transition must still be seen, or the nudge is skipped
    as having no window."""
    zone = ZoneInfo("Europe/Belgrade")
    window = LocalWindow(dt.time(0, 0), dt.time(2, 1))
    with freeze_time(dt.datetime(2000, 10, 28, 22, 0, tzinfo=dt.UTC)):
        due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2, minutes=30)  # a FakeDatetime
        decision = place_in_window(due, zone, window, None, QuietPolicy.DEFER)
        assert utc_offset_at(due + dt.timedelta(hours=1), zone) == dt.timedelta(hours=1)
    assert due == dt.datetime(2000, 10, 29, 0, 30, tzinfo=dt.UTC)
    assert (decision.action, decision.send_at) == (
        "defer",
        dt.datetime(2000, 10, 29, 1, 0, tzinfo=dt.UTC),
    )
