"""Allowed windows, quiet hours and deferral: never text a sleeping patient, never lose a nudge."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coachbot.domain.schedule import (
    DEFAULT_ALLOWED_WINDOW,
    LocalWindow,
    QuietPolicy,
    SendDecision,
    TrackSchedule,
    local_day_bounds,
    may_send_at,
    occurrences_between,
    place_in_window,
)
from tests.support.zone_eras import scenario

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SANTIAGO = ZoneInfo("America/Santiago")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
NIGHT = LocalWindow(dt.time(21), dt.time(7, 30))
NAP = LocalWindow(dt.time(12), dt.time(13))
# As close to "any time" as a half-open window of wall times gets.
ALWAYS = LocalWindow(dt.time(0), dt.time(23, 59, 59, 999999))


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0
) -> dt.datetime:
    """A local wall time in `zone`, returned as the UTC instant the functions take."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def defer(
    due: dt.datetime,
    zone: ZoneInfo,
    quiet: LocalWindow | None = NIGHT,
    allowed: LocalWindow = DEFAULT_ALLOWED_WINDOW,
    **kw: dt.timedelta,
) -> SendDecision:
    return place_in_window(due, zone, allowed, quiet, QuietPolicy.DEFER, **kw)


# --- LocalWindow -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        (
            LocalWindow(dt.time(8), dt.time(20)),
            [dt.time(8), dt.time(12), dt.time(19, 59, 59)],
            [dt.time(7, 59, 59), dt.time(20), dt.time(23), dt.time(0)],
        ),
        (
            NIGHT,
            [dt.time(21), dt.time(23, 59), dt.time(0), dt.time(3), dt.time(7, 29)],
            [dt.time(7, 30), dt.time(12), dt.time(20, 59)],
        ),
        (LocalWindow(dt.time(9), dt.time(9)), [], [dt.time(9), dt.time(0), dt.time(8, 59)]),
    ],
)
def test_window_contains(
    window: LocalWindow, inside: list[dt.time], outside: list[dt.time]
) -> None:
    assert all(window.contains(t) for t in inside)
    assert not any(window.contains(t) for t in outside)


def test_window_refuses_zoned_times() -> None:
    with pytest.raises(ValueError, match="tzinfo"):
        LocalWindow(dt.time(8, tzinfo=UTC), dt.time(20))


def test_may_send_at_reads_local_wall_time() -> None:
    assert may_send_at(local(NEW_YORK, 2026, 6, 1, 8), NEW_YORK, DEFAULT_ALLOWED_WINDOW, NIGHT)
    assert not may_send_at(local(NEW_YORK, 2026, 6, 1, 7), NEW_YORK, DEFAULT_ALLOWED_WINDOW, None)
    assert not may_send_at(
        local(NEW_YORK, 2026, 6, 1, 12, 30), NEW_YORK, DEFAULT_ALLOWED_WINDOW, NAP
    )
    # 12:00 UTC is 08:00 in New York in June but 07:00 in January.
    assert may_send_at(
        dt.datetime(2026, 6, 1, 12, tzinfo=UTC), NEW_YORK, DEFAULT_ALLOWED_WINDOW, None
    )
    assert not may_send_at(
        dt.datetime(2026, 1, 5, 12, tzinfo=UTC), NEW_YORK, DEFAULT_ALLOWED_WINDOW, None
    )


def test_may_send_at_refuses_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        may_send_at(dt.datetime(2026, 6, 1, 12), LONDON, DEFAULT_ALLOWED_WINDOW, None)  # noqa: DTZ001


# --- place_in_window ---------------------------------------------------------------------


def test_inside_window_is_sent_at_due_time() -> None:
    due = local(LONDON, 2026, 6, 1, 9, 15)
    assert defer(due, LONDON) == SendDecision("send", due, None)


def test_one_minute_before_the_window_waits_for_it() -> None:
    due = local(LONDON, 2026, 6, 1, 7, 59)
    decision = defer(due, LONDON, quiet=None)
    assert decision == SendDecision("defer", local(LONDON, 2026, 6, 1, 8), "outside_allowed_window")


def test_window_end_is_exclusive_so_20_00_goes_to_next_morning() -> None:
    due = local(LONDON, 2026, 6, 1, 20)
    decision = defer(due, LONDON, quiet=None)
    assert decision == SendDecision("defer", local(LONDON, 2026, 6, 2, 8), "outside_allowed_window")


def test_quiet_hours_wrapping_midnight() -> None:
    allowed = LocalWindow(dt.time(6), dt.time(23))
    # 22:00 is allowed but quiet; the next permitted moment is when quiet ends, tomorrow 07:30.
    decision = defer(local(LONDON, 2026, 6, 1, 22), LONDON, allowed=allowed)
    assert decision == SendDecision("defer", local(LONDON, 2026, 6, 2, 7, 30), "quiet_hours")
    # Just after midnight, same local day.
    decision = defer(local(LONDON, 2026, 6, 2, 0, 10), LONDON, allowed=allowed)
    assert decision == SendDecision("defer", local(LONDON, 2026, 6, 2, 7, 30), "quiet_hours")


def test_quiet_hours_name_the_reason_even_outside_the_allowed_window() -> None:
    decision = defer(local(LONDON, 2026, 6, 1, 23), LONDON)
    assert decision == SendDecision("defer", local(LONDON, 2026, 6, 2, 8), "quiet_hours")


def test_nap_inside_the_allowed_window() -> None:
    decision = defer(local(LONDON, 2026, 6, 1, 12, 15), LONDON, quiet=NAP)
    assert decision == SendDecision("defer", local(LONDON, 2026, 6, 1, 13), "quiet_hours")
    due = local(LONDON, 2026, 6, 1, 11, 59)
    assert defer(due, LONDON, quiet=NAP).action == "send"


def test_skip_policy_never_moves_a_nudge() -> None:
    decide = place_in_window
    assert decide(
        local(LONDON, 2026, 6, 1, 23), LONDON, DEFAULT_ALLOWED_WINDOW, NIGHT, QuietPolicy.SKIP
    ) == SendDecision("skip", None, "quiet_hours")
    assert decide(
        local(LONDON, 2026, 6, 1, 7), LONDON, DEFAULT_ALLOWED_WINDOW, None, QuietPolicy.SKIP
    ) == SendDecision("skip", None, "outside_allowed_window")
    due = local(LONDON, 2026, 6, 1, 9)
    assert decide(due, LONDON, DEFAULT_ALLOWED_WINDOW, NIGHT, QuietPolicy.SKIP) == SendDecision(
        "send", due, None
    )


def test_quiet_covering_the_whole_allowed_window_skips_with_no_window() -> None:
    quiet = LocalWindow(dt.time(7), dt.time(21))
    decision = defer(local(LONDON, 2026, 6, 1, 9), LONDON, quiet=quiet)
    assert decision == SendDecision("skip", None, "no_window")


def test_empty_allowed_window_never_sends() -> None:
    empty = LocalWindow(dt.time(8), dt.time(8))
    assert defer(local(LONDON, 2026, 6, 1, 8), LONDON, allowed=empty, quiet=None).reason == (
        "no_window"
    )


def test_max_defer_bounds_the_wait() -> None:
    due = local(LONDON, 2026, 6, 1, 20)  # next window opens 12 h later
    assert defer(due, LONDON, max_defer=dt.timedelta(hours=11, minutes=59)) == SendDecision(
        "skip", None, "no_window"
    )
    assert defer(due, LONDON, max_defer=dt.timedelta(hours=12)).send_at == local(
        LONDON, 2026, 6, 2, 8
    )
    with pytest.raises(ValueError, match="max_defer"):
        defer(due, LONDON, max_defer=dt.timedelta(seconds=-1))


def test_defer_across_spring_forward_lands_on_local_opening_time() -> None:
    # The night of 2026-03-08 is 23 h long; 08:00 EDT is 12:00 UTC, not 13:00.
    decision = defer(local(NEW_YORK, 2026, 3, 7, 21, 30), NEW_YORK)
    assert decision == SendDecision("defer", dt.datetime(2026, 3, 8, 12, tzinfo=UTC), "quiet_hours")


def test_defer_across_fall_back_lands_on_local_opening_time() -> None:
    decision = defer(local(NEW_YORK, 2026, 10, 31, 21, 30), NEW_YORK)
    assert decision == SendDecision(
        "defer", dt.datetime(2026, 11, 1, 13, tzinfo=UTC), "quiet_hours"
    )


def test_quiet_hours_ending_inside_the_gap_release_at_the_transition() -> None:
    # Quiet until 02:30, which does not exist on 2026-03-08: the clock jumps from 01:59:59
    # EST (quiet) to 03:00 EDT (not quiet), so 03:00 EDT is the first permitted instant.
    quiet = LocalWindow(dt.time(21), dt.time(2, 30))
    decision = defer(local(NEW_YORK, 2026, 3, 8, 1, 0), NEW_YORK, quiet=quiet, allowed=ALWAYS)
    assert decision == SendDecision("defer", dt.datetime(2026, 3, 8, 7, tzinfo=UTC), "quiet_hours")
    assert decision.send_at is not None
    assert decision.send_at.astimezone(NEW_YORK).time() == dt.time(3)


def test_quiet_hours_ending_in_the_repeated_hour_release_at_the_first_pass() -> None:
    quiet = LocalWindow(dt.time(21), dt.time(1, 30))
    decision = defer(local(NEW_YORK, 2026, 11, 1, 1, 0), NEW_YORK, quiet=quiet, allowed=ALWAYS)
    assert decision.send_at == local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0)  # 01:30 EDT
    # Due in the second pass of the hour (01:10 EST): quiet again until 01:30 EST.
    later = defer(
        local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1), NEW_YORK, quiet=quiet, allowed=ALWAYS
    )
    assert later.send_at == dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_window_opening_at_a_skipped_midnight() -> None:
    # Santiago skipped 00:00-01:00 on 2026-09-06; a window opening at 00:30 opens at 01:00.
    allowed = LocalWindow(dt.time(0, 30), dt.time(20))
    decision = defer(local(SANTIAGO, 2026, 9, 5, 22), SANTIAGO, quiet=None, allowed=allowed)
    assert decision.send_at == dt.datetime(2026, 9, 6, 4, tzinfo=UTC)


def test_quarter_hour_zone() -> None:
    decision = defer(local(KATHMANDU, 2026, 6, 1, 6), KATHMANDU)
    assert decision.send_at == dt.datetime(2026, 6, 1, 2, 15, tzinfo=UTC)


def test_send_at_is_utc_even_for_a_non_utc_due_time() -> None:
    due = dt.datetime(2026, 6, 1, 9, tzinfo=LONDON)
    decision = defer(due, LONDON)
    assert decision.send_at == due
    assert decision.send_at is not None
    assert decision.send_at.tzinfo is UTC


def test_place_in_window_refuses_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        defer(dt.datetime(2026, 6, 1, 9), LONDON)  # noqa: DTZ001


# --- property ----------------------------------------------------------------------------

minute_times = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
# Denser sampling than this makes the run slow; coarser would miss short permitted spans.
PROBE = dt.timedelta(minutes=7)


def permitted_probe(
    lo: dt.datetime,
    hi: dt.datetime,
    zone: ZoneInfo,
    allowed: LocalWindow,
    quiet: LocalWindow | None,
) -> dt.datetime | None:
    """First sampled instant in [lo, hi) at which sending is allowed, if any."""
    probes = [lo + PROBE * i for i in range(int((hi - lo) / PROBE) + 1)]
    probes.append(hi - dt.timedelta(seconds=1))
    return next((p for p in probes if lo <= p < hi and may_send_at(p, zone, allowed, quiet)), None)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(place=scenario(), data=st.data())
def test_property_deferral_never_lands_in_a_forbidden_moment(
    place: tuple[ZoneInfo, dt.date, list[dt.time]], data: st.DataObject
) -> None:
    zone, day, hot = place
    # Window edges near an offset change put openings inside gaps and repeated hours.
    edge = st.one_of(minute_times, st.sampled_from(hot)) if hot else minute_times
    window = st.builds(LocalWindow, edge, edge)
    allowed = data.draw(st.one_of(st.just(DEFAULT_ALLOWED_WINDOW), st.just(ALWAYS), window))
    quiet = data.draw(st.one_of(st.none(), st.just(NIGHT), window))
    slots = data.draw(st.lists(edge, min_size=1, max_size=3, unique=True))
    start = local_day_bounds(day, zone)[0]
    end = local_day_bounds(day + dt.timedelta(days=3), zone)[0]
    occs = occurrences_between(TrackSchedule("diet", tuple(slots)), zone, start, end)
    dues = [start + dt.timedelta(seconds=data.draw(st.integers(0, 3 * 86_400)))]
    for occ in occs:
        # Also a little before each slot, so deferrals cross the offset change near it.
        earlier = dt.timedelta(seconds=data.draw(st.integers(0, 4 * 3600)))
        dues += [occ.due_at, occ.due_at - earlier]
    max_defer = dt.timedelta(hours=16)
    for due in dues:
        decision = place_in_window(due, zone, allowed, quiet, QuietPolicy.DEFER)
        event(decision.action)
        if decision.action == "send":
            assert decision.send_at == due
            assert may_send_at(due, zone, allowed, quiet)
        elif decision.action == "defer":
            assert decision.send_at is not None
            assert decision.send_at.tzinfo is UTC
            assert due < decision.send_at <= due + max_defer
            assert may_send_at(decision.send_at, zone, allowed, quiet)
            assert decision.reason in {"quiet_hours", "outside_allowed_window"}
            # Earliest: nothing permitted in between (sampled).
            assert permitted_probe(due, decision.send_at, zone, allowed, quiet) is None
            if decision.send_at.astimezone(zone).time() not in {allowed.start, quiet and quiet.end}:
                event("deferred to an offset change, not a window edge")
        else:
            assert decision == SendDecision("skip", None, "no_window")
            assert permitted_probe(due, due + max_defer, zone, allowed, quiet) is None

        skipping = place_in_window(due, zone, allowed, quiet, QuietPolicy.SKIP)
        if decision.action == "send":
            assert skipping == decision
        else:
            assert skipping.action == "skip"
            assert skipping.send_at is None
            assert skipping.reason in {"quiet_hours", "outside_allowed_window"}
