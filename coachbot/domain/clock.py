"""The one place that reads the wall clock; everything below the entry points takes `now`."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def require_aware(instant: dt.datetime, name: str = "instant") -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {instant.isoformat()}")
    return instant.astimezone(dt.UTC)


def parse_instant(text: str) -> dt.datetime:
    """ISO-8601 from the CLI; a value without an offset is refused rather than guessed."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO-8601 instant") from exc
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z or +HH:MM")
    return value.astimezone(dt.UTC)
