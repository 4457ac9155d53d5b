"""The one place that reads the wall clock; everything below the entry points takes `now`."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def require_aware(instant: dt.datetime, name: str = "instant") -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {instant.isoformat()}")
    return instant.astimezone(dt.UTC)


def utc_offset_at(instant: dt.datetime, zone: dt.tzinfo) -> dt.timedelta:
    """The zone's UTC offset in force at `instant` (aware): local wall reading minus UTC.

    Read from the wall clock rather than from `.utcoffset()` of the local time, which
    depends on its `fold` flag in the repeated hour when clocks go back; a datetime
    subclass that drops `fold` (freezegun's FakeDatetime, which tests run under) would
    otherwise report the summer offset for the whole repeated hour and hide the transition.
    """
    local = instant.astimezone(zone).replace(tzinfo=None)
    return local - instant.astimezone(dt.UTC).replace(tzinfo=None)


def parse_instant(text: str) -> dt.datetime:
    """ISO-8601 from the CLI; a value without an offset is refused rather than guessed."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO-8601 instant") from exc
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z or +HH:MM")
    return value.astimezone(dt.UTC)
