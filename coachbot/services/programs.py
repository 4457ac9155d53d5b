"""Programmes: named per-track defaults that patients follow, kept as immutable versions.
Reading them (the views, the history, the rules a nudge follows) and previewing an edit,
which computes the next nudges with the domain schedule functions and writes nothing.
Changes are in `services.program_edits`, a track's settings in `services.track_settings`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coachbot.domain import schedule as sched
from coachbot.domain.clock import utcnow
from coachbot.domain.close_watch import DEFAULTS, CloseWatchSettings
from coachbot.domain.program import STANDARD as STANDARD
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
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import ScheduleSpec, parse_phases, stale_limit_override
from coachbot.services.track_settings import FOLLOWUP_POLICIES as FOLLOWUP_POLICIES
from coachbot.services.track_settings import QUIET_POLICIES as QUIET_POLICIES
from coachbot.services.track_settings import TrackSettings as TrackSettings
from coachbot.services.track_settings import built_in_settings as built_in_settings
from coachbot.services.track_settings import day_names as day_names
from coachbot.services.track_settings import (
    decode_close_watch,
    decode_tracks,
    encode_tracks,
    track_changes,
)
from coachbot.services.track_settings import validate_track as validate_track

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
    close_watch: CloseWatchSettings = DEFAULTS


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
    every patient without an assignment follows it.

    The one read that writes, and the one place a function handed a session commits it: the
    repair must outlive a read-only caller, and it is only ever reached on a database emptied
    of its seed, before the request has written anything else. The instant is read here
    because no caller of a read passes one."""
    now = utcnow()
    tracks = {t: built_in_settings(t) for t in TRACK_POLICIES}
    for row in session.scalars(select(ProgramDefault)):
        if row.track in tracks:
            tracks[row.track] = replace(
                tracks[row.track], times=row.local_times, days=row.days_of_week, phases=row.phases
            )
    try:
        add_program(
            session,
            name=STANDARD,
            description="The default programme.",
            tracks=tracks,
            summary="recreated from the programme defaults",
            actor="system",
            now=now,
        )
        session.commit()
    except IntegrityError:
        # Another request recreated it first: theirs stands.
        session.rollback()
    return session.scalar(select(Program).where(Program.name == STANDARD))


def add_program(
    session: Session,
    *,
    name: str,
    description: str,
    tracks: dict[str, TrackSettings],
    summary: str,
    actor: str,
    now: dt.datetime,
    close_watch: CloseWatchSettings | None = None,
) -> Program:
    """A programme at version 1 with these settings, flushed in the caller's transaction."""
    program = Program(
        name=name, description=description[:200], current_version=1, created_at=now, updated_at=now
    )
    session.add(program)
    session.flush()
    session.add(
        ProgramVersion(
            program_id=program.id,
            version=1,
            settings_json=encode_tracks(tracks, close_watch),
            change_summary=summary,
            created_at=now,
            created_by=actor,
        )
    )
    return program


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
    return decode_tracks(row.settings_json)


def version_close_watch(session: Session, program: Program, version: int) -> CloseWatchSettings:
    row = _version_row(session, program.id, version)
    if row is None:
        raise ValidationFailed({"version": f"{program.name} has no version {version}"})
    return decode_close_watch(row.settings_json)


@dataclass(frozen=True)
class CloseWatchBook:
    """Every programme's current close-watch rules and who follows which, read once so the
    tick looks them up in memory for a thousand patients."""

    by_program: dict[int, tuple[int, CloseWatchSettings]]
    assignments: dict[int, int]
    standard_id: int | None

    def for_patient(self, patient_id: int) -> tuple[int | None, CloseWatchSettings]:
        """(programme version, its rules); the built-in rules when no programme is found."""
        program_id = self.assignments.get(patient_id, self.standard_id)
        found = self.by_program.get(program_id) if program_id is not None else None
        return found if found is not None else (None, CloseWatchSettings())


def load_close_watch_book(session: Session) -> CloseWatchBook:
    rows = session.execute(
        select(Program.id, Program.name, ProgramVersion.version, ProgramVersion.settings_json)
        .join(ProgramVersion, ProgramVersion.program_id == Program.id)
        .where(ProgramVersion.version == Program.current_version)
    ).all()
    return CloseWatchBook(
        by_program={r.id: (r.version, decode_close_watch(r.settings_json)) for r in rows},
        assignments={
            row.patient_id: row.program_id
            for row in session.execute(
                select(ProgramAssignment.patient_id, ProgramAssignment.program_id)
            )
        },
        standard_id=next((r.id for r in rows if r.name == STANDARD), None),
    )


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
        version_close_watch(session, program, program.current_version),
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


def followers(program: Program, track: str, *, custom: bool) -> Select[TrackSchedule]:
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
    rows = session.scalars(followers(program, proposed.track, custom=False).limit(limit)).all()
    affected = _count(session, followers(program, proposed.track, custom=False))
    custom = _count(session, followers(program, proposed.track, custom=True))
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
        track_changes(current, proposed),
        affected,
        custom,
        patients,
    )
