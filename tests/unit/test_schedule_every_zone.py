"""The schedule's property over every zone in the time zone database and every era: each
slot fires once per local day, at the local time or, when a clock change skips it, at the
first instant after the gap. Apart from the hand-picked daylight saving cases of
tests/unit/test_schedule.py because of its size and its strategies (a zone, a year and
its offset changes)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coachbot.domain.schedule import (
    TrackSchedule,
    local_day_bounds,
    occurrences_between,
)
from tests.support.zone_eras import (
    UTC,
    minute_times,
    offset_at,
    readings,
    scenario,
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    place=scenario(),
    ndays=st.integers(1, 6),
    extra=st.lists(minute_times, max_size=2),
    use_hot=st.integers(1, 2),
    days_off=st.frozensets(st.integers(0, 6), max_size=5),
    cut=st.floats(0, 1),
)
def test_property_one_fire_per_local_day_per_slot(
    place: tuple[ZoneInfo, dt.date, list[dt.time]],
    ndays: int,
    extra: list[dt.time],
    use_hot: int,
    days_off: frozenset[int],
    cut: float,
) -> None:
    zone, first, hot = place
    slots = list(dict.fromkeys(hot[:use_hot] + extra)) or [dt.time(8)]
    # Drawn as days off so the simplest examples fire every day rather than never.
    days = frozenset(range(7)) - days_off
    schedule = TrackSchedule("mindfulness", tuple(slots), days)
    start = local_day_bounds(first, zone)[0]
    end = local_day_bounds(first + dt.timedelta(days=ndays), zone)[0]
    occs = occurrences_between(schedule, zone, start, end)

    dues = [o.due_at for o in occs]
    assert all(d.tzinfo is UTC for d in dues)
    assert all(a < b for a, b in itertools.pairwise(dues))
    assert all(start <= d < end for d in dues)
    assert len({o.key for o in occs}) == len(occs)

    for occ in occs:
        assert occ.local_date.weekday() in days
        wall = dt.datetime.combine(occ.local_date, occ.wall_time)
        real = readings(wall, zone)
        if real:
            event("repeated wall time" if len(real) > 1 else "ordinary wall time")
            assert occ.due_at == real[0], "a repeated wall time fires at its first occurrence"
        else:
            event("wall time in a gap")
            shift = occ.due_at.astimezone(zone).replace(tzinfo=None) - wall
            assert shift > dt.timedelta(0)
            assert shift == offset_at(occ.due_at, zone) - offset_at(occ.due_at - shift, zone)

    # Every scheduled (day, slot) whose instant is in the window is there, or was merged into
    # another slot firing at that same instant because its wall time did not exist.
    emitted = {o.key: o.due_at for o in occs}
    for i in range(-2, ndays + 2):
        day = first + dt.timedelta(days=i)
        if day.weekday() not in days:
            continue
        for slot in slots:
            wall = dt.datetime.combine(day, slot)
            real = readings(wall, zone)
            key = f"mindfulness:{day.isoformat()}T{slot:%H:%M}"
            if real:
                if start <= real[0] < end:
                    assert emitted.get(key) == real[0]
                else:
                    assert key not in emitted
            elif key not in emitted:
                event("gap slot merged into another")
                shifted = dt.datetime.combine(day, slot, tzinfo=zone).astimezone(UTC)
                assert not start <= shifted < end or shifted in emitted.values()

    # Planning in two pieces must neither drop nor repeat anything.
    middle = start + (end - start) * cut
    halves = occurrences_between(schedule, zone, start, middle) + occurrences_between(
        schedule, zone, middle, end
    )
    assert halves == occs
