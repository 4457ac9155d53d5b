"""Hypothesis strategies and helpers over every zone in the time zone database and every
era: the zones, a zone's offset changes in a year, a (zone, local day, slot times) scenario
steered into gaps and repeated hours, and the UTC readings of a wall time. Shared by the
schedule's property (tests/unit/test_schedule_every_zone.py), the send window's
(tests/unit/test_send_window.py) and the planning property through the real tick
(tests/services/test_planning_properties.py)."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

UTC = dt.UTC

ZONES = sorted(zoneinfo.available_timezones())
minute_times = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))


@functools.lru_cache(maxsize=4096)
def offset_changes(zone_name: str, year: int) -> tuple[tuple[dt.date, dt.time, dt.time], ...]:
    """(local date, wall time just before, wall time at) each offset change in that year."""
    zone = ZoneInfo(zone_name)
    found: list[tuple[dt.date, dt.time, dt.time]] = []
    instant = dt.datetime(year, 1, 1, tzinfo=UTC)
    while instant.year == year:
        later = instant + dt.timedelta(hours=6)
        before = instant.astimezone(zone).utcoffset()
        if later.astimezone(zone).utcoffset() != before:
            # Bisect on whole seconds: tzdata transitions fall on whole seconds.
            lo, hi = 0, 6 * 3600
            while hi - lo > 1:
                mid = (lo + hi) // 2
                probe = instant + dt.timedelta(seconds=mid)
                lo, hi = (lo, mid) if probe.astimezone(zone).utcoffset() != before else (mid, hi)
            at = instant + dt.timedelta(seconds=hi)
            local = at.astimezone(zone)
            found.append(
                (local.date(), (at - dt.timedelta(seconds=1)).astimezone(zone).time(), local.time())
            )
        instant = later
    return tuple(found)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[ZoneInfo, dt.date, list[dt.time]]:
    """A zone, a first local date and nearby wall times, mostly steered at offset changes.

    Uniform dates and times would almost never land in a gap or a repeated hour.
    """
    zone_name = draw(st.sampled_from(ZONES))
    day = draw(st.dates(dt.date(1990, 1, 1), dt.date(2037, 12, 20)))
    hot: list[dt.time] = []
    changes = offset_changes(zone_name, day.year)
    steer = draw(st.integers(0, 3)) > 0
    if changes and steer:
        day, before, at = draw(st.sampled_from(changes))
        day -= dt.timedelta(days=draw(st.integers(0, 2)))
        for wall in (before, at):
            nudge = dt.timedelta(minutes=draw(st.integers(-40, 40)))
            moved = dt.datetime.combine(day, wall) + nudge
            hot.append(moved.time().replace(second=0, microsecond=0))
    return ZoneInfo(zone_name), day, hot


def readings(wall: dt.datetime, zone: ZoneInfo) -> list[dt.datetime]:
    """Every real instant reading `wall` locally, found by trying each offset near it."""
    offsets = {
        (wall - dt.timedelta(hours=h)).replace(tzinfo=UTC).astimezone(zone).utcoffset()
        for h in range(-36, 37, 3)
    }
    hits = set()
    for offset in offsets:
        assert offset is not None
        instant = (wall - offset).replace(tzinfo=UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            hits.add(instant)
    return sorted(hits)


def offset_at(instant: dt.datetime, zone: ZoneInfo) -> dt.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset
