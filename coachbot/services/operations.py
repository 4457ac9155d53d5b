"""The operator's global settings as one change: every field validated, all saved or none.

Reuses the setters in services.schedules (each audits its part) inside one transaction, so
a bad daily cap does not leave a new send window saved behind it. Dispatch reads these rows
at every tick, so a change applies without a restart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain import schedule as sched
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import (
    dispatch_settings,
    stale_limit_override,
    store_pace,
    store_stale_limit,
    store_window,
)


@dataclass(frozen=True)
class GlobalSettings:
    window_start: dt.time
    window_end: dt.time
    daily_cap: int
    max_concurrency: int
    sender: str
    segments_per_second: float | None
    stale_limit_minutes: int | None  # None: each track's own limit


def global_settings(session: Session, sender: str) -> GlobalSettings:
    config = dispatch_settings(session)
    stale = stale_limit_override(session)
    return GlobalSettings(
        config.window.start,
        config.window.end,
        config.daily_cap,
        config.max_concurrency,
        sender,
        config.pace_for(sender),
        int(stale.total_seconds() // 60) if stale is not None else None,
    )


def _parse(errors: dict[str, str], name: str, text: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(text.strip())
    except ValueError:
        errors[name] = "a number is required"
        return 0


def update_global_settings(
    sessions: sessionmaker[Session],
    *,
    sender: str,
    window_start: str,
    window_end: str,
    daily_cap: str,
    max_concurrency: str,
    segments_per_second: str,
    stale_limit_minutes: str,
    actor: str,
    now: dt.datetime,
) -> GlobalSettings:
    """Form text in, every field's error out at once; empty pace or staleness means none."""
    errors: dict[str, str] = {}
    times: dict[str, dt.time] = {}
    for name, text in (("window_start", window_start), ("window_end", window_end)):
        try:
            times[name] = sched.parse_hhmm(text)
        except ValueError as exc:
            errors[name] = str(exc)
    cap = int(_parse(errors, "daily_cap", daily_cap, int))
    concurrency = int(_parse(errors, "max_concurrency", max_concurrency, int))
    pace = (
        _parse(errors, "segments_per_second", segments_per_second, float)
        if segments_per_second.strip()
        else None
    )
    stale = (
        int(_parse(errors, "stale_limit", stale_limit_minutes, int))
        if stale_limit_minutes.strip()
        else None
    )
    steps = (
        lambda session: store_window(
            session,
            start=times.get("window_start"),
            end=times.get("window_end"),
            daily_cap=cap,
            max_concurrency=concurrency,
            actor=actor,
            now=now,
        ),
        lambda session: store_pace(session, sender, pace, actor=actor, now=now),
        lambda session: store_stale_limit(session, stale, actor=actor, now=now),
    )
    if errors:
        raise ValidationFailed(errors)
    with sessions.begin() as session:
        for step in steps:
            try:
                step(session)
            except ValidationFailed as exc:
                errors.update(exc.errors)
        if errors:
            # Raised inside the transaction: a step that passed is rolled back with it.
            raise ValidationFailed(errors)
        return global_settings(session, sender)
