"""Changing programmes: saving a track, restoring a version, creating a programme and
moving a patient onto one. Each is one transaction.

Every save writes a new version (who, when, what changed) and moves the programme's
`current_version` with a conditional UPDATE on the version the editor started from, so a
concurrent edit is refused rather than silently overwritten. Saving applies the new
defaults to every schedule that follows the programme (not the per-patient custom ones)
through `schedules.follow_default`: future unsent nudges are cancelled and the next tick
plans them again under the new times, without a restart. A restore is a save of an old
version's settings.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain import close_watch
from coachbot.domain.close_watch import CloseWatchSettings
from coachbot.domain.program import TRACK_POLICIES
from coachbot.models import Patient, Program, ProgramAssignment, ProgramDefault, ProgramVersion
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed
from coachbot.services.programs import (
    STANDARD,
    add_program,
    followers,
    get_program,
    show_program,
    version_close_watch,
    version_settings,
)
from coachbot.services.schedules import follow_default
from coachbot.services.track_settings import (
    TrackSettings,
    encode_tracks,
    track_changes,
    validate_track,
)

_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


class StaleVersion(ValidationFailed):
    """The programme moved on since the editor loaded it; nothing was saved."""


@dataclass(frozen=True)
class SaveResult:
    program: str
    version: int
    schedules_changed: int
    nudges_replaced: int


def _write_version(
    session: Session,
    program: Program,
    tracks: dict[str, TrackSettings],
    *,
    base_version: int,
    summary: str,
    restored_from: int | None,
    actor: str,
    now: dt.datetime,
    watch: CloseWatchSettings | None = None,
) -> SaveResult:
    old = version_settings(session, program, program.current_version)
    # A track edit keeps the close-watch rules as they are; a restore brings back its own.
    watch = watch or version_close_watch(session, program, program.current_version)
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
            settings_json=encode_tracks(tracks, watch),
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
        for row in session.scalars(followers(program, track, custom=False)):
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
    sessions: sessionmaker[Session],
    name: str,
    proposed: TrackSettings,
    *,
    base_version: int,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    """A new version with one track changed, in one transaction (see `_repair_standard`)."""
    _repair_standard(sessions, name)
    with sessions.begin() as session:
        program = get_program(session, name)
        return _save_track(session, program, proposed, base_version, actor, now)


def _save_track(
    session: Session,
    program: Program,
    proposed: TrackSettings,
    base_version: int,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    current = version_settings(session, program, program.current_version)
    changes = track_changes(current[proposed.track], proposed)
    if not changes and program.current_version == base_version:
        raise ValidationFailed({"track": f"no change to {proposed.track}; nothing to save"})
    tracks = {**current, proposed.track: proposed}
    summary = f"{proposed.track}: " + "; ".join(changes)
    return _write_version(
        session,
        program,
        tracks,
        base_version=base_version,
        summary=summary,
        restored_from=None,
        actor=actor,
        now=now,
    )


def save_close_watch(
    sessions: sessionmaker[Session],
    name: str,
    proposed: CloseWatchSettings,
    *,
    base_version: int,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    """A new version with the close-watch rules changed (validated by
    `close_watch_settings.propose`), the tracks as they are, in one transaction."""
    _repair_standard(sessions, name)
    with sessions.begin() as session:
        program = get_program(session, name)
        current = version_close_watch(session, program, program.current_version)
        changes = close_watch.changes(current, proposed)
        if not changes and program.current_version == base_version:
            raise ValidationFailed({"close_watch": "no change to the close watch; nothing to save"})
        return _write_version(
            session,
            program,
            version_settings(session, program, program.current_version),
            base_version=base_version,
            summary="; ".join(changes),
            restored_from=None,
            actor=actor,
            now=now,
            watch=proposed,
        )


def restore_version(
    sessions: sessionmaker[Session],
    name: str,
    version: int,
    *,
    base_version: int,
    actor: str,
    now: dt.datetime,
) -> SaveResult:
    """Makes an earlier version current again, as a new version (history only grows), in
    one transaction (see `_repair_standard`)."""
    _repair_standard(sessions, name)
    with sessions.begin() as session:
        program = get_program(session, name)
        tracks = version_settings(session, program, version)
        if version == program.current_version:
            raise ValidationFailed({"version": f"version {version} is already current"})
        return _write_version(
            session,
            program,
            tracks,
            base_version=base_version,
            summary=f"restored v{version}",
            restored_from=version,
            actor=actor,
            now=now,
            watch=version_close_watch(session, program, version),
        )


def create_program(
    sessions: sessionmaker[Session],
    name: str,
    *,
    description: str = "",
    copy_from: str = STANDARD,
    actor: str,
    now: dt.datetime,
) -> Program:
    """A new programme, a copy of `copy_from`'s current version, in one transaction."""
    name = name.strip().lower()
    if not _NAME.match(name):
        raise ValidationFailed(
            {"name": "2-40 characters: lower-case letters, digits, - and _, starting with a letter"}
        )
    _repair_standard(sessions, copy_from)
    with sessions.begin() as session:
        source = get_program(session, copy_from)
        return _create_program(session, name, source, description, actor, now)


def _create_program(
    session: Session, name: str, source: Program, description: str, actor: str, now: dt.datetime
) -> Program:
    if session.scalar(select(Program.id).where(Program.name == name)) is not None:
        raise ValidationFailed({"name": f"a programme named {name!r} exists"})
    program = add_program(
        session,
        name=name,
        description=description,
        tracks=version_settings(session, source, source.current_version),
        summary=f"created from {source.name} v{source.current_version}",
        actor=actor,
        now=now,
        close_watch=version_close_watch(session, source, source.current_version),
    )
    audit.record(session, actor=actor, action="program.create", now=now, detail=f"program={name}")
    return program


def assign_patient(
    sessions: sessionmaker[Session], patient_id: int, name: str, *, actor: str, now: dt.datetime
) -> int:
    """Moves a patient onto a programme, in one transaction (see `_repair_standard`); their
    non-custom schedules take its defaults. Returns the future nudges replaced."""
    _repair_standard(sessions, name)
    with sessions.begin() as session:
        return _assign(session, get_program(session, name), patient_id, actor, now)


def _assign(
    session: Session, program: Program, patient_id: int, actor: str, now: dt.datetime
) -> int:
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
    return replaced


def with_changes(current: TrackSettings, **changes: object) -> TrackSettings:
    """A copy of a track's settings with some fields replaced (for callers that edit one)."""
    return replace(current, **changes)  # type: ignore[arg-type]


def _repair_standard(sessions: sessionmaker[Session], name: str) -> None:
    """A missing "standard" (a database emptied since its migration) is recreated and
    committed on its own before an edit's transaction, as any read of it does
    (`programs.get_program`): that repair commits, so it cannot run inside the edit's."""
    if name.strip().lower() == STANDARD:
        with sessions() as session:
            get_program(session, STANDARD)
