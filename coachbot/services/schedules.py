"""Operator changes to schedules, programme defaults and dispatch settings, all audited.

A change is picked up by the next tick without a restart: the schedule's future unsent
nudges are cancelled (reason `schedule_changed`, kept visible) and planning resumes from
the change instant, so sent nudges are kept and a slot already sent today is never re-sent.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain import schedule as sched
from coachbot.domain.program import DEFAULT_DAILY_CAP, TRACK_POLICIES
from coachbot.domain.states import NudgeState
from coachbot.models import (
    DispatchConfig,
    GlobalSetting,
    Nudge,
    Patient,
    ProgramDefault,
    SenderPace,
    TrackSchedule,
)
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed

DEFAULT_MAX_CONCURRENCY = 32


@dataclass(frozen=True)
class DispatchSettings:
    window: sched.LocalWindow
    daily_cap: int
    max_concurrency: int
    paces: dict[str, float]
    # The operator's global staleness limit; None means each track's own (TrackPolicy).
    stale_limit: dt.timedelta | None = None

    def stale_limit_for(self, track: str) -> dt.timedelta:
        return self.stale_limit or TRACK_POLICIES[track].stale_limit

    def pace_for(self, sender: str) -> float | None:
        return self.paces.get(sender)


def dispatch_settings(session: Session) -> DispatchSettings:
    """The current settings; defaults when no operator has changed them."""
    row = session.get(DispatchConfig, 1)
    paces = {p.sender: p.segments_per_second for p in session.scalars(select(SenderPace))}
    stale = stale_limit_override(session)
    if row is None:
        return DispatchSettings(
            sched.DEFAULT_ALLOWED_WINDOW, DEFAULT_DAILY_CAP, DEFAULT_MAX_CONCURRENCY, paces, stale
        )
    return DispatchSettings(
        sched.LocalWindow(row.window_start, row.window_end),
        row.daily_cap,
        row.max_concurrency,
        paces,
        stale,
    )


STALE_LIMIT_KEY = "stale_limit_minutes"


def stale_limit_override(session: Session) -> dt.timedelta | None:
    row = session.get(GlobalSetting, STALE_LIMIT_KEY)
    return dt.timedelta(minutes=int(row.value)) if row is not None else None


def set_stale_limit(
    sessions: sessionmaker[Session], minutes: int | None, *, actor: str, now: dt.datetime
) -> None:
    """How overdue a nudge may be before it is recorded as missed instead of sent late;
    None returns every track to its own limit."""
    with sessions.begin() as session:
        store_stale_limit(session, minutes, actor=actor, now=now)


def store_stale_limit(
    session: Session, minutes: int | None, *, actor: str, now: dt.datetime
) -> None:
    """`set_stale_limit` in the caller's transaction (the operator console saves every
    global setting at once)."""
    if minutes is not None and not 5 <= minutes <= 24 * 60:
        raise ValidationFailed({"stale_limit": "must be between 5 and 1440 minutes"})
    value = None if minutes is None else {"value": str(minutes)}
    _save_setting(session, GlobalSetting, {"key": STALE_LIMIT_KEY}, value, actor=actor, now=now)
    audit.record(
        session,
        actor=actor,
        action="dispatch.stale_limit",
        now=now,
        detail=f"minutes={minutes if minutes is not None else 'per-track'}",
    )


# --- schedule text <-> domain -----------------------------------------------------------


def days_text(days: frozenset[int]) -> str:
    return "".join(str(d) for d in sorted(days))


def parse_phases(text: str | None) -> tuple[sched.Phase, ...]:
    """'0-28:daily;28-:mon,wed,fri' (days since enrolment, end exclusive) -> phases.

    The stored form uses digits for days ('0-28:0123456;28-:024'); both parse.
    """
    if not text or not text.strip():
        return ()
    phases = []
    for part in text.split(";"):
        span, sep, days = part.strip().partition(":")
        first, dash, last = span.partition("-")
        if not sep or not dash:
            raise ValueError(f"phase {part.strip()!r}: expected FROM-TO:DAYS such as 0-28:daily")
        try:
            from_day = int(first)
            to_day = int(last) if last.strip() else None
        except ValueError:
            raise ValueError(f"phase {part.strip()!r}: FROM and TO are day numbers") from None
        day_set = (
            frozenset(int(c) for c in days)
            if days.isdigit() or days == ""
            else sched.parse_days(days)
        )
        phases.append(sched.Phase(from_day, to_day, day_set))
    return tuple(sorted(phases, key=lambda p: p.from_day))


def phases_text(phases: tuple[sched.Phase, ...]) -> str | None:
    if not phases:
        return None
    return ";".join(
        f"{p.from_day}-{'' if p.to_day is None else p.to_day}:{days_text(p.days_of_week)}"
        for p in phases
    )


def domain_schedule(row: TrackSchedule) -> sched.TrackSchedule:
    return sched.TrackSchedule(
        track=row.track,
        times=tuple(sched.parse_hhmm(t) for t in row.local_times.split(",") if t),
        days_of_week=frozenset(int(d) for d in row.days_of_week),
        start_date=row.start_date,
        end_date=row.end_date,
        phases=parse_phases(row.phases),
    )


@dataclass(frozen=True)
class ScheduleSpec:
    """A validated schedule, ready to store."""

    track: str
    local_times: str
    days_of_week: str
    phases: str | None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


def validate_schedule(
    track: str,
    times: str,
    days: str = "daily",
    phases: str | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
) -> ScheduleSpec:
    errors: dict[str, str] = {}
    track = track.strip().lower()
    if track not in TRACK_POLICIES:
        errors["track"] = f"unknown track {track!r}; choose from {', '.join(TRACK_POLICIES)}"
    parsed_times: tuple[dt.time, ...] = ()
    try:
        parsed_times = tuple(sorted(sched.parse_hhmm(t) for t in times.split(",") if t.strip()))
        if not parsed_times:
            errors["times"] = "at least one HH:MM time is required"
        elif len(set(parsed_times)) > sched.MAX_TIMES_PER_TRACK:
            errors["times"] = f"at most {sched.MAX_TIMES_PER_TRACK} times a day"
    except ValueError as exc:
        errors["times"] = str(exc)
    day_set: frozenset[int] = frozenset()
    try:
        day_set = sched.parse_days(days)
    except ValueError as exc:
        errors["days"] = str(exc)
    phase_list: tuple[sched.Phase, ...] = ()
    try:
        phase_list = parse_phases(phases)
    except ValueError as exc:
        errors["phases"] = str(exc)
    if not errors:
        try:
            sched.TrackSchedule(track, parsed_times, day_set, start_date, end_date, phase_list)
        except ValueError as exc:
            errors["schedule"] = str(exc)
    if errors:
        raise ValidationFailed(errors)
    return ScheduleSpec(
        track,
        ",".join(f"{t:%H:%M}" for t in parsed_times),
        days_text(day_set),
        phases_text(phase_list),
        start_date,
        end_date,
    )


def program_default(session: Session, track: str) -> ScheduleSpec:
    """The programme's current default for a track (the built-in one until changed)."""
    row = session.get(ProgramDefault, track)
    if row is not None:
        return ScheduleSpec(track, row.local_times, row.days_of_week, row.phases)
    policy = TRACK_POLICIES[track]
    return ScheduleSpec(
        track, ",".join(f"{t:%H:%M}" for t in policy.default_times), "0123456", None
    )


# --- applying changes -----------------------------------------------------------------


def _cancel_future(session: Session, patient_id: int, track: str, now: dt.datetime) -> int:
    """Cancels the track's future unsent nudges and frees their occurrence keys, so the new
    schedule may plan the same slot again. Follow-ups planned by the conversation engine
    (a preset template) are not the schedule's to cancel."""
    rows = session.scalars(
        select(Nudge).where(
            Nudge.patient_id == patient_id,
            Nudge.track == track,
            Nudge.state == NudgeState.PLANNED,
            Nudge.due_at >= now,
            Nudge.template_id.is_(None),
        )
    ).all()
    for nudge in rows:
        nudge.state = NudgeState.CANCELLED
        nudge.state_reason = "schedule_changed"
        nudge.occurrence_key = f"{nudge.occurrence_key[:40]}~x{nudge.id}"
        nudge.updated_at = now
    return len(rows)


def _apply_spec(row: TrackSchedule, spec: ScheduleSpec, now: dt.datetime) -> None:
    row.local_times = spec.local_times
    row.days_of_week = spec.days_of_week
    row.phases = spec.phases
    row.start_date = spec.start_date
    row.end_date = spec.end_date
    # Planning resumes from now: occurrences already behind us keep whatever happened.
    row.planned_through = now
    row.updated_at = now


def follow_default(
    session: Session, row: TrackSchedule, spec: ScheduleSpec, now: dt.datetime
) -> int:
    """Moves a schedule that follows a programme onto the programme's new `spec` (keeping the
    patient's own start and end dates); returns the future nudges cancelled for re-planning."""
    keep = ScheduleSpec(
        spec.track, spec.local_times, spec.days_of_week, spec.phases, row.start_date, row.end_date
    )
    _apply_spec(row, keep, now)
    return _cancel_future(session, row.patient_id, spec.track, now)


def times_outside_window(local_times: str, window: sched.LocalWindow) -> list[str]:
    """The HH:MM times of a schedule that the allowed window would never let go out."""
    return [t for t in local_times.split(",") if t and not window.contains(sched.parse_hhmm(t))]


def shortest_interval(spec: ScheduleSpec) -> dt.timedelta:
    """The shortest gap between two consecutive nudges the schedule can produce, in local
    wall time over two weeks of each day pattern it uses (every phase included)."""
    phases = parse_phases(spec.phases)
    patterns = [p.days_of_week for p in phases] or [frozenset(int(d) for d in spec.days_of_week)]
    times = [sched.parse_hhmm(t) for t in spec.local_times.split(",") if t]
    monday = dt.date(2024, 1, 1)
    best = dt.timedelta(days=14)
    for days in patterns:
        instants = sorted(
            dt.datetime.combine(monday + dt.timedelta(days=i), t)
            for i in range(14)
            if (monday + dt.timedelta(days=i)).weekday() in days
            for t in times
        )
        for a, b in itertools.pairwise(instants):
            best = min(best, b - a)
    return best


def set_patient_schedule(
    sessions: sessionmaker[Session],
    patient_id: int,
    spec: ScheduleSpec,
    *,
    actor: str,
    now: dt.datetime,
) -> int:
    """Gives one patient their own schedule for a track; returns nudges cancelled."""
    with sessions.begin() as session:
        return _store_patient_schedule(session, patient_id, spec, actor=actor, now=now)


def _store_patient_schedule(
    session: Session, patient_id: int, spec: ScheduleSpec, *, actor: str, now: dt.datetime
) -> int:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise ValidationFailed({"patient": f"no patient with id {patient_id}"})
    row = session.scalar(
        select(TrackSchedule).where(
            TrackSchedule.patient_id == patient_id, TrackSchedule.track == spec.track
        )
    )
    if row is None:
        row = TrackSchedule(patient_id=patient_id, track=spec.track, updated_at=now)
        session.add(row)
    _apply_spec(row, spec, now)
    row.is_custom = True
    cancelled = _cancel_future(session, patient_id, spec.track, now)
    audit.record(
        session,
        actor=actor,
        action="schedule.set",
        now=now,
        patient_id=patient_id,
        detail=_describe(spec) + f" cancelled={cancelled}",
    )
    return cancelled


def set_window(
    sessions: sessionmaker[Session],
    *,
    start: dt.time | None,
    end: dt.time | None,
    daily_cap: int | None,
    max_concurrency: int | None,
    actor: str,
    now: dt.datetime,
) -> DispatchSettings:
    """The send window (None keeps that end), the daily cap and the API calls in flight."""
    with sessions.begin() as session:
        return store_window(
            session,
            start=start,
            end=end,
            daily_cap=daily_cap,
            max_concurrency=max_concurrency,
            actor=actor,
            now=now,
        )


def store_window(
    session: Session,
    *,
    start: dt.time | None,
    end: dt.time | None,
    daily_cap: int | None,
    max_concurrency: int | None,
    actor: str,
    now: dt.datetime,
) -> DispatchSettings:
    """`set_window` in the caller's transaction."""
    current = dispatch_settings(session)
    errors: dict[str, str] = {}
    if daily_cap is not None and not 1 <= daily_cap <= 20:
        errors["daily_cap"] = "must be between 1 and 20 automated messages a day"
    if max_concurrency is not None and not 1 <= max_concurrency <= 256:
        errors["max_concurrency"] = "must be between 1 and 256 API calls in flight"
    window = sched.LocalWindow(start or current.window.start, end or current.window.end)
    if window.start == window.end:
        errors["window"] = "start and end must differ (an empty window sends nothing)"
    if errors:
        raise ValidationFailed(errors)
    row = session.get(DispatchConfig, 1)
    if row is None:
        row = DispatchConfig(id=1, updated_at=now, updated_by=actor)
        session.add(row)
    row.window_start, row.window_end = window.start, window.end
    row.daily_cap = daily_cap if daily_cap is not None else current.daily_cap
    row.max_concurrency = (
        max_concurrency if max_concurrency is not None else current.max_concurrency
    )
    row.updated_at, row.updated_by = now, actor
    audit.record(
        session,
        actor=actor,
        action="dispatch.settings",
        now=now,
        detail=(
            f"window={window.start:%H:%M}-{window.end:%H:%M} cap={row.daily_cap}"
            f" concurrency={row.max_concurrency}"
        ),
    )
    # Built from the values just stored, not re-read: the caller's transaction is still
    # open and a read would only add to it.
    return DispatchSettings(window, row.daily_cap, row.max_concurrency, current.paces)


def set_pace(
    sessions: sessionmaker[Session],
    sender: str,
    segments_per_second: float | None,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    """Caps a sender at so many segments per second; None removes the cap."""
    with sessions.begin() as session:
        store_pace(session, sender, segments_per_second, actor=actor, now=now)


def store_pace(
    session: Session,
    sender: str,
    segments_per_second: float | None,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    """`set_pace` in the caller's transaction."""
    if segments_per_second is not None and not 0 < segments_per_second <= 10_000:
        raise ValidationFailed({"segments_per_second": "must be in (0, 10000]"})
    pace = None if segments_per_second is None else {"segments_per_second": segments_per_second}
    _save_setting(session, SenderPace, {"sender": sender}, pace, actor=actor, now=now)
    audit.record(
        session,
        actor=actor,
        action="dispatch.pace",
        now=now,
        detail=f"sender={sender} segments_per_second={segments_per_second}",
    )


def _save_setting(
    session: Session,
    model: type[GlobalSetting] | type[SenderPace],
    key: dict[str, str],
    fields: dict[str, Any] | None,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    """One operator setting's row: None deletes it (back to the default), anything else
    inserts or updates it, stamped with who changed it and when."""
    row = session.get(model, next(iter(key.values())))
    if fields is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = model(**key)
        session.add(row)
    for name, value in {**fields, "updated_at": now, "updated_by": actor}.items():
        setattr(row, name, value)


def _describe(spec: ScheduleSpec) -> str:
    return (
        f"track={spec.track} times={spec.local_times} days={spec.days_of_week}"
        f" phases={spec.phases or '-'} start={spec.start_date or '-'} end={spec.end_date or '-'}"
    )
