"""Programmes: named per-track defaults that patients follow, kept as immutable versions.

Every save writes a new version (who, when, what changed) and moves the programme's
`current_version` with a conditional UPDATE on the version the editor started from, so a
concurrent edit is refused rather than silently overwritten. Saving applies the new
defaults to every schedule that follows the programme (not the per-patient custom ones)
through `schedules.follow_default`: future unsent nudges are cancelled and the next tick
plans them again under the new times, without a restart. A restore is a save of an old
version's settings. Previews compute the next nudges with the domain schedule functions and
write nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, replace
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coachbot.domain import schedule as sched
from coachbot.domain.coaching import FOLLOWUP_TRACKS
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.states import PatientStatus
from coachbot.models import (
    Patient,
    Program,
    ProgramAssignment,
    ProgramDefault,
    ProgramVersion,
    TrackSchedule,
)
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import (
    ScheduleSpec,
    dispatch_settings,
    follow_default,
    parse_phases,
    shortest_interval,
    stale_limit_override,
    times_outside_window,
    validate_schedule,
)

STANDARD = "standard"
FOLLOWUP_POLICIES = ("once", "none")
QUIET_POLICIES = tuple(p.value for p in sched.QuietPolicy)
_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


class StaleVersion(ValidationFailed):
    """The programme moved on since the editor loaded it; nothing was saved."""


@dataclass(frozen=True)
class TrackSettings:
    """One track of a programme: when its nudges go out and how a reply is waited for."""

    track: str
    times: str  # "HH:MM,HH:MM"
    days: str  # digits Monday=0..Sunday=6
    phases: str | None  # "0-28:0123456;28-:024", days since enrolment
    reply_window_minutes: int
    followup: str  # once | none: one gentle follow-up when the window closes unanswered
    quiet_policy: str  # defer | skip: a nudge outside the window or in quiet hours

    def schedule_spec(self) -> ScheduleSpec:
        return ScheduleSpec(self.track, self.times, self.days, self.phases)

    def describe(self) -> str:
        return (
            f"times={self.times} days={self.days} phases={self.phases or '-'}"
            f" reply={self.reply_window_minutes}m followup={self.followup}"
            f" quiet={self.quiet_policy}"
        )


def built_in_settings(track: str) -> TrackSettings:
    policy = TRACK_POLICIES[track]
    return TrackSettings(
        track=track,
        times=",".join(f"{t:%H:%M}" for t in policy.default_times),
        days="0123456",
        phases=None,
        reply_window_minutes=int(policy.reply_window.total_seconds() // 60),
        followup="once" if track in FOLLOWUP_TRACKS else "none",
        quiet_policy=str(policy.quiet_policy),
    )


def _decode(settings_json: str) -> dict[str, TrackSettings]:
    tracks = json.loads(settings_json)["tracks"]
    out = {track: built_in_settings(track) for track in TRACK_POLICIES}
    for track, values in tracks.items():
        if track in TRACK_POLICIES:
            out[track] = TrackSettings(track=track, **values)
    return out


def _encode(tracks: dict[str, TrackSettings]) -> str:
    body = {
        t: {k: v for k, v in asdict(s).items() if k != "track"} for t, s in sorted(tracks.items())
    }
    return json.dumps({"tracks": body}, sort_keys=True)


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramView:
    id: int
    name: str
    description: str
    version: int
    updated_at: dt.datetime
    tracks: dict[str, TrackSettings]
    patients: int


def get_program(session: Session, name: str) -> Program:
    name = name.strip().lower()
    program = session.scalar(select(Program).where(Program.name == name))
    if program is None and name == STANDARD:
        program = _recreate_standard(session)
    if program is None:
        raise ValidationFailed({"program": f"no programme named {name!r}"})
    return program


def _recreate_standard(session: Session) -> Program | None:
    """Migration 0005 seeds "standard"; a database whose tables were emptied since (test
    truncation, a restore of data only) gets it back from the programme defaults, because
    every patient without an assignment follows it."""
    now = dt.datetime.now(dt.UTC)
    tracks = {t: built_in_settings(t) for t in TRACK_POLICIES}
    for row in session.scalars(select(ProgramDefault)):
        if row.track in tracks:
            tracks[row.track] = replace(
                tracks[row.track], times=row.local_times, days=row.days_of_week, phases=row.phases
            )
    program = Program(
        name=STANDARD, description="The default programme.", current_version=1,
        created_at=now, updated_at=now,
    )  # fmt: skip
    try:
        session.add(program)
        session.flush()
        session.add(
            ProgramVersion(
                program_id=program.id,
                version=1,
                settings_json=_encode(tracks),
                change_summary="recreated from the programme defaults",
                created_at=now,
                created_by="system",
            )
        )
        session.commit()
    except IntegrityError:
        # Another request recreated it first: theirs stands.
        session.rollback()
    return session.scalar(select(Program).where(Program.name == STANDARD))


def _version_row(session: Session, program_id: int, version: int) -> ProgramVersion | None:
    return session.scalar(
        select(ProgramVersion).where(
            ProgramVersion.program_id == program_id, ProgramVersion.version == version
        )
    )


def version_settings(session: Session, program: Program, version: int) -> dict[str, TrackSettings]:
    row = _version_row(session, program.id, version)
    if row is None:
        raise ValidationFailed({"version": f"{program.name} has no version {version}"})
    return _decode(row.settings_json)


def _assigned(program: Program) -> ColumnElement[bool]:
    """SQL condition: the patient follows `program` (no assignment row means standard)."""
    assigned = select(ProgramAssignment.program_id).where(
        ProgramAssignment.patient_id == Patient.id
    )
    if program.name == STANDARD:
        return ~assigned.exists() | (assigned.scalar_subquery() == program.id)
    return assigned.scalar_subquery() == program.id


def patient_count(session: Session, program: Program) -> int:
    return (
        session.scalar(
            select(func.count(Patient.id)).where(
                _assigned(program),
                Patient.status != PatientStatus.OPTED_OUT,
            )
        )
        or 0
    )


def show_program(session: Session, name: str) -> ProgramView:
    program = get_program(session, name)
    return ProgramView(
        program.id,
        program.name,
        program.description,
        program.current_version,
        program.updated_at,
        version_settings(session, program, program.current_version),
        patient_count(session, program),
    )


def list_programs(session: Session) -> list[ProgramView]:
    get_program(session, STANDARD)
    names = session.scalars(select(Program.name).order_by(Program.name)).all()
    return [show_program(session, n) for n in names]


def history(session: Session, name: str) -> list[ProgramVersion]:
    program = get_program(session, name)
    return list(
        session.scalars(
            select(ProgramVersion)
            .where(ProgramVersion.program_id == program.id)
            .order_by(ProgramVersion.version.desc())
        )
    )


def policy_for(session: Session, patient_id: int, track: str) -> TrackSettings:
    """The reply window, follow-up and quiet-hour policy a patient's programme sets for a
    track: what dispatch, delivery and follow-ups should read instead of TRACK_POLICIES."""
    assignment = session.get(ProgramAssignment, patient_id)
    # A plain read: this runs inside dispatch's and callbacks' transactions, so it must not
    # recreate a missing "standard" (that commits); the built-in rules stand in meanwhile.
    program = (
        session.get(Program, assignment.program_id)
        if assignment is not None
        else session.scalar(select(Program).where(Program.name == STANDARD))
    )
    if program is None:
        return built_in_settings(track)
    return version_settings(session, program, program.current_version)[track]


@dataclass(frozen=True)
class TrackRules:
    """What dispatch, follow-ups and delivery obey for one patient's track."""

    reply_window: dt.timedelta
    stale_limit: dt.timedelta
    quiet_policy: sched.QuietPolicy
    followup: bool


@dataclass(frozen=True)
class PolicyBook:
    """Every programme's current settings and who follows which, read once per transaction
    so the hot paths look rules up in memory instead of querying per nudge."""

    by_program: dict[int, dict[str, TrackSettings]]
    assignments: dict[int, int]
    standard_id: int | None
    stale_limit: dt.timedelta | None

    def rules(self, patient_id: int, track: str) -> TrackRules:
        program_id = self.assignments.get(patient_id, self.standard_id)
        tracks = self.by_program.get(program_id) if program_id is not None else None
        settings = (tracks or {}).get(track) or built_in_settings(track)
        return TrackRules(
            reply_window=dt.timedelta(minutes=settings.reply_window_minutes),
            stale_limit=self.stale_limit or TRACK_POLICIES[track].stale_limit,
            quiet_policy=sched.QuietPolicy(settings.quiet_policy),
            followup=settings.followup == "once",
        )


def rules_for(session: Session, patient_id: int, track: str) -> TrackRules:
    """One patient's rules, for the rare per-nudge paths (a settled ambiguous send)."""
    settings = policy_for(session, patient_id, track)
    return PolicyBook(
        by_program={0: {track: settings}},
        assignments={patient_id: 0},
        standard_id=None,
        stale_limit=stale_limit_override(session),
    ).rules(patient_id, track)


def load_policy_book(session: Session) -> PolicyBook:
    programs = session.scalars(select(Program)).all()
    return PolicyBook(
        by_program={p.id: version_settings(session, p, p.current_version) for p in programs},
        assignments={
            row.patient_id: row.program_id
            for row in session.execute(
                select(ProgramAssignment.patient_id, ProgramAssignment.program_id)
            )
        },
        standard_id=next((p.id for p in programs if p.name == STANDARD), None),
        stale_limit=stale_limit_override(session),
    )


# --- validating -----------------------------------------------------------------------------


def validate_track(
    session: Session,
    *,
    track: str,
    times: str,
    days: str = "daily",
    phases: str | None = None,
    reply_window_minutes: int | str | None = None,
    followup: str = "once",
    quiet_policy: str = "defer",
) -> TrackSettings:
    """Every field checked at once: the schedule (via schedules.validate_schedule), the
    times against the allowed send window, and a reply window no longer than the shortest
    gap between two nudges (a longer one would swallow the next nudge's answer)."""
    errors: dict[str, str] = {}
    spec: ScheduleSpec | None = None
    try:
        spec = validate_schedule(track, times, _day_names(days), phases or None)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    minutes: int | None = None
    try:
        minutes = int(str(reply_window_minutes).strip())
        if not 15 <= minutes <= 48 * 60:
            errors["reply_window_minutes"] = "must be between 15 and 2880 minutes"
            minutes = None
    except ValueError:
        errors["reply_window_minutes"] = "a whole number of minutes is required"
    if followup not in FOLLOWUP_POLICIES:
        errors["followup"] = f"choose from {', '.join(FOLLOWUP_POLICIES)}"
    if quiet_policy not in QUIET_POLICIES:
        errors["quiet_policy"] = f"choose from {', '.join(QUIET_POLICIES)}"
    if spec is not None:
        window = dispatch_settings(session).window
        outside = times_outside_window(spec.local_times, window)
        if outside:
            errors["times"] = (
                f"{', '.join(outside)} outside the allowed send window"
                f" {window.start:%H:%M}-{window.end:%H:%M}"
            )
        if minutes is not None:
            gap = shortest_interval(spec)
            if dt.timedelta(minutes=minutes) > gap:
                errors["reply_window_minutes"] = (
                    f"{minutes} minutes is longer than the {_span(gap)} between two nudges"
                )
    if errors or spec is None or minutes is None:
        raise ValidationFailed(errors)
    return TrackSettings(
        spec.track,
        spec.local_times,
        spec.days_of_week,
        spec.phases,
        minutes,
        followup,
        quiet_policy,
    )


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def day_names(days: str) -> str:
    """The stored digits ('024') as the names people type ('mon,wed,fri')."""
    return ",".join(_WEEKDAYS[int(d)] for d in days) if days.isdigit() else days


def _day_names(days: str) -> str:
    # Stored digits are accepted as well as names, so a form can round-trip what it shows.
    days = days.strip()
    return day_names(days) if days.isdigit() and all(c in "0123456" for c in days) else days


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}" if rest else f"{hours}h"


# --- preview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientPreview:
    patient_id: int
    timezone: str
    before: list[dt.datetime]  # local next due times under the current version
    after: list[dt.datetime]  # ... and under the new one


@dataclass(frozen=True)
class Preview:
    program: str
    track: str
    base_version: int
    current: TrackSettings
    proposed: TrackSettings
    changes: list[str]
    affected: int  # patients whose schedule follows this programme's track
    custom: int  # patients on the programme whose own schedule is kept
    patients: list[PatientPreview]


def _diff(old: TrackSettings, new: TrackSettings) -> list[str]:
    old_d, new_d = asdict(old), asdict(new)
    return [f"{k}: {old_d[k] or '-'} -> {new_d[k] or '-'}" for k in old_d if old_d[k] != new_d[k]]


def _next_local(
    spec: ScheduleSpec, row: TrackSchedule, zone: ZoneInfo, now: dt.datetime, count: int
) -> list[dt.datetime]:
    schedule = sched.TrackSchedule(
        track=spec.track,
        times=tuple(sched.parse_hhmm(t) for t in spec.local_times.split(",") if t),
        days_of_week=frozenset(int(d) for d in spec.days_of_week),
        start_date=row.start_date,
        end_date=row.end_date,
        phases=parse_phases(spec.phases),
    )
    enrolled_on = row.patient.enrolled_at.astimezone(zone).date()
    found = sched.occurrences_between(
        schedule, zone, now, now + dt.timedelta(days=8), enrolled_on=enrolled_on
    )
    return [o.due_at.astimezone(zone) for o in found[:count]]


def _followers(program: Program, track: str, *, custom: bool) -> Select[TrackSchedule]:
    """Schedules of the programme's patients for a track: the ones that follow its defaults
    (custom=False) or the ones a clinician gave their own times (custom=True). Every status
    is included, so a paused patient who comes back is already on the current version."""
    return (
        select(TrackSchedule)
        .join(Patient)
        .where(
            TrackSchedule.track == track,
            TrackSchedule.is_custom.is_(custom),
            _assigned(program),
        )
        .order_by(TrackSchedule.patient_id)
    )


def _count(session: Session, query: Select[TrackSchedule]) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def preview_track(
    session: Session,
    name: str,
    proposed: TrackSettings,
    *,
    now: dt.datetime,
    limit: int = 50,
    per_patient: int = 3,
) -> Preview:
    """Which patients the change reaches and their next nudges before and after; reads only."""
    program = get_program(session, name)
    current = version_settings(session, program, program.current_version)[proposed.track]
    rows = session.scalars(_followers(program, proposed.track, custom=False).limit(limit)).all()
    affected = _count(session, _followers(program, proposed.track, custom=False))
    custom = _count(session, _followers(program, proposed.track, custom=True))
    patients = []
    for row in rows:
        zone = ZoneInfo(row.patient.timezone)
        patients.append(
            PatientPreview(
                row.patient_id,
                row.patient.timezone,
                _next_local(current.schedule_spec(), row, zone, now, per_patient),
                _next_local(proposed.schedule_spec(), row, zone, now, per_patient),
            )
        )
    return Preview(
        program.name,
        proposed.track,
        program.current_version,
        current,
        proposed,
        _diff(current, proposed),
        affected,
        custom,
        patients,
    )


# --- saving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveResult:
    program: str
    version: int
    schedules_changed: int
    nudges_replaced: int


def _commit_version(
    session: Session,
    program: Program,
    tracks: dict[str, TrackSettings],
    *,
    base_version: int,
    summary: str,
    restored_from: int | None,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    old = version_settings(session, program, program.current_version)
    new_version = base_version + 1
    # The conditional UPDATE is the lock: of two editors who loaded the same version, the
    # second finds no row to move and is refused, whatever the isolation level.
    moved = session.execute(
        update(Program)
        .where(Program.id == program.id, Program.current_version == base_version)
        .values(current_version=new_version, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:
        session.rollback()
        raise StaleVersion(
            {
                "version": (
                    f"{program.name} was changed since you opened version {base_version}"
                    " (reload to see the current version); nothing was saved"
                )
            }
        )
    session.add(
        ProgramVersion(
            program_id=program.id,
            version=new_version,
            settings_json=_encode(tracks),
            change_summary=summary[:500],
            restored_from=restored_from,
            created_at=now,
            created_by=actor,
        )
    )
    schedules_changed = nudges = 0
    for track, settings in tracks.items():
        if old[track].schedule_spec() == settings.schedule_spec():
            continue
        spec = settings.schedule_spec()
        if program.name == STANDARD:
            # Enrolment reads ProgramDefault: the standard programme stays its source.
            default = session.get(ProgramDefault, track)
            if default is None:
                default = ProgramDefault(track=track, updated_at=now, updated_by=actor)
                session.add(default)
            default.local_times, default.days_of_week, default.phases = (
                spec.local_times,
                spec.days_of_week,
                spec.phases,
            )
            default.updated_at, default.updated_by = now, actor
        for row in session.scalars(_followers(program, track, custom=False)):
            nudges += follow_default(session, row, spec, now)
            schedules_changed += 1
    audit.record(
        session,
        actor=actor,
        action="program.restore" if restored_from is not None else "program.save",
        now=now,
        detail=(
            f"program={program.name} v{base_version}->v{new_version} {summary}"
            f" schedules={schedules_changed} nudges_replaced={nudges}"
        ),
    )
    session.commit()
    return SaveResult(program.name, new_version, schedules_changed, nudges)


def propose_track(session: Session, name: str, track: str, **given: object) -> TrackSettings:
    """A programme's current settings for `track` with only the given fields replaced
    (None means "keep"), validated as a whole: what an edit would save."""
    track = track.strip().lower()
    if track not in TRACK_POLICIES:
        raise ValidationFailed(
            {"track": f"unknown track {track!r}; choose from {', '.join(TRACK_POLICIES)}"}
        )
    current = show_program(session, name).tracks[track]
    pick = {k: v for k, v in given.items() if v is not None}
    return validate_track(
        session,
        track=track,
        times=str(pick.get("times", current.times)),
        days=str(pick.get("days", current.days)),
        phases=str(pick["phases"]) if "phases" in pick else current.phases,
        reply_window_minutes=str(pick.get("reply_window", current.reply_window_minutes)),
        followup=str(pick.get("followup", current.followup)),
        quiet_policy=str(pick.get("quiet_policy", current.quiet_policy)),
    )


def save_track(
    session: Session,
    name: str,
    proposed: TrackSettings,
    *,
    base_version: int,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    program = get_program(session, name)
    current = version_settings(session, program, program.current_version)
    changes = _diff(current[proposed.track], proposed)
    if not changes and program.current_version == base_version:
        raise ValidationFailed({"track": f"no change to {proposed.track}; nothing to save"})
    tracks = {**current, proposed.track: proposed}
    summary = f"{proposed.track}: " + "; ".join(changes)
    return _commit_version(
        session,
        program,
        tracks,
        base_version=base_version,
        summary=summary,
        restored_from=None,
        actor=actor,
        now=now,
    )


def restore_version(
    session: Session,
    name: str,
    version: int,
    *,
    base_version: int,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    """Makes an earlier version current again, as a new version (history only grows)."""
    program = get_program(session, name)
    tracks = version_settings(session, program, version)
    if version == program.current_version:
        raise ValidationFailed({"version": f"version {version} is already current"})
    return _commit_version(
        session,
        program,
        tracks,
        base_version=base_version,
        summary=f"restored v{version}",
        restored_from=version,
        actor=actor,
        now=now,
    )


def create_program(
    session: Session,
    name: str,
    *,
    description: str = "",
    copy_from: str = STANDARD,
    actor: str,
    now: dt.datetime,
) -> Program:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise ValidationFailed(
            {"name": "2-40 characters: lower-case letters, digits, - and _, starting with a letter"}
        )
    source = get_program(session, copy_from)
    if session.scalar(select(Program.id).where(Program.name == name)) is not None:
        raise ValidationFailed({"name": f"a programme named {name!r} exists"})
    tracks = version_settings(session, source, source.current_version)
    program = Program(
        name=name, description=description[:200], current_version=1, created_at=now, updated_at=now
    )
    session.add(program)
    session.flush()
    session.add(
        ProgramVersion(
            program_id=program.id,
            version=1,
            settings_json=_encode(tracks),
            change_summary=f"created from {source.name} v{source.current_version}",
            created_at=now,
            created_by=actor,
        )
    )
    audit.record(session, actor=actor, action="program.create", now=now, detail=f"program={name}")
    session.commit()
    return program


def assign_patient(
    session: Session, patient_id: int, name: str, *, actor: str, now: dt.datetime
) -> int:
    """Moves a patient onto a programme; their non-custom schedules take its defaults.
    Returns the future nudges replaced."""
    program = get_program(session, name)
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise ValidationFailed({"patient": f"no patient with id {patient_id}"})
    row = session.get(ProgramAssignment, patient_id)
    if row is None:
        session.add(
            ProgramAssignment(
                patient_id=patient_id, program_id=program.id, assigned_at=now, assigned_by=actor
            )
        )
    else:
        row.program_id, row.assigned_at, row.assigned_by = program.id, now, actor
    tracks = version_settings(session, program, program.current_version)
    replaced = 0
    for schedule in patient.schedules:
        if not schedule.is_custom and schedule.track in tracks:
            replaced += follow_default(
                session, schedule, tracks[schedule.track].schedule_spec(), now
            )
    audit.record(
        session,
        actor=actor,
        action="program.assign",
        patient_id=patient_id,
        now=now,
        detail=f"program={program.name} v{program.current_version} nudges_replaced={replaced}",
    )
    session.commit()
    return replaced


def with_changes(current: TrackSettings, **changes: object) -> TrackSettings:
    """A copy of a track's settings with some fields replaced (for callers that edit one)."""
    return replace(current, **changes)  # type: ignore[arg-type]
