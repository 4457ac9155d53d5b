"""Programmes: versions kept, previews that write nothing, saves the next tick uses, one-step
restores, field errors that save nothing, and concurrent edits refused instead of lost."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import NudgeState
from coachbot.models import AuditEntry, Nudge, ProgramDefault, ProgramVersion, TrackSchedule
from coachbot.runtime import Runtime
from coachbot.services import program_edits, programs
from coachbot.services.dispatch import plan_nudges
from coachbot.services.errors import ValidationFailed
from coachbot.services.program_edits import StaleVersion
from coachbot.services.schedules import program_default
from tests.support.builders import make_patient

NY = ZoneInfo("America/New_York")
# Monday 07:00 in New York: today's 08:30 sleep nudge is planned but not yet due.
MONDAY_0700 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _sleep(session: Session, **changes: object) -> programs.TrackSettings:
    base = programs.show_program(session, "standard").tracks["sleep"]
    values = {
        "track": "sleep",
        "times": base.times,
        "days": base.days,
        "phases": base.phases,
        "reply_window_minutes": base.reply_window_minutes,
        "followup": base.followup,
        "quiet_policy": base.quiet_policy,
        **changes,
    }
    return programs.validate_track(session, **values)  # type: ignore[arg-type]


def _versions(session: Session) -> int:
    return session.scalar(select(func.count(ProgramVersion.id))) or 0


def _local_due(runtime: Runtime, state: str = NudgeState.PLANNED) -> list[str]:
    with runtime.session_factory() as s:
        rows = s.scalars(select(Nudge).where(Nudge.state == state).order_by(Nudge.due_at))
        return [f"{n.due_at.astimezone(NY):%a %H:%M}" for n in rows]


def test_the_migration_turns_the_programme_defaults_into_standard_version_1(
    session: Session,
) -> None:
    [standard] = programs.list_programs(session)
    assert (standard.name, standard.version) == ("standard", 1)
    assert standard.tracks["sleep"].times == program_default(session, "sleep").local_times
    assert standard.tracks["mindfulness"].quiet_policy == "skip"
    assert standard.tracks["checkin"].followup == "none"
    # Seeded by the migration (SQLite copies it); recreated after PostgreSQL's truncation.
    assert programs.history(session, "standard")[0].created_by in {"migration", "system"}


def test_preview_lists_the_patients_and_their_next_nudges_and_writes_nothing(
    runtime: Runtime, session: Session
) -> None:
    follower = make_patient(session, first_name="Ana")
    custom = make_patient(session, first_name="Ben")
    custom.schedules[0].is_custom = True
    session.commit()
    preview = programs.preview_track(
        session,
        "standard",
        _sleep(session, times="09:15,19:00", reply_window_minutes=240),
        now=MONDAY_0700,
    )
    assert (preview.affected, preview.custom) == (1, 1)
    assert preview.changes == ["times: 08:30 -> 09:15,19:00", "reply_window_minutes: 600 -> 240"]
    [row] = preview.patients
    assert row.patient_id == follower.id
    assert [f"{t:%a %H:%M}" for t in row.before] == ["Mon 08:30", "Tue 08:30", "Wed 08:30"]
    assert [f"{t:%a %H:%M}" for t in row.after] == ["Mon 09:15", "Mon 19:00", "Tue 09:15"]
    assert _versions(session) == 1
    assert session.get(ProgramDefault, "sleep") is None


def test_a_save_is_used_by_the_next_tick_and_sent_nudges_are_kept(
    runtime: Runtime, session: Session
) -> None:
    follower = make_patient(session, first_name="Ana")
    custom = make_patient(session, first_name="Ben", tracks={"sleep": "08:45"})
    custom.schedules[0].is_custom = True
    session.commit()
    assert plan_nudges(runtime.session_factory, MONDAY_0700) > 0
    assert _local_due(runtime) == ["Mon 08:30", "Mon 08:45"]

    result = program_edits.save_track(
        runtime.session_factory,
        "standard",
        _sleep(session, times="09:15"),
        base_version=1,
        actor="staff:1",
        now=MONDAY_0700,
    )
    assert (result.version, result.schedules_changed, result.nudges_replaced) == (2, 1, 1)
    plan_nudges(runtime.session_factory, MONDAY_0700 + dt.timedelta(minutes=1))
    # The follower's 08:30 is replaced by 09:15; the custom schedule keeps its 08:45.
    assert _local_due(runtime) == ["Mon 08:45", "Mon 09:15"]
    assert _local_due(runtime, NudgeState.CANCELLED) == ["Mon 08:30"]
    with runtime.session_factory() as s:
        assert s.get(ProgramDefault, "sleep").local_times == "09:15"  # type: ignore[union-attr]
        assert s.get(TrackSchedule, follower.schedules[0].id).local_times == "09:15"  # type: ignore[union-attr]
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "program.save"))
        assert entry.actor == "staff:1"
        assert "v1->v2" in (entry.detail or "")
        assert "times: 08:30 -> 09:15" in programs.history(s, "standard")[0].change_summary


def test_restore_brings_back_an_earlier_version_as_a_new_one(
    runtime: Runtime, session: Session
) -> None:
    make_patient(session)
    program_edits.save_track(
        runtime.session_factory,
        "standard",
        _sleep(session, times="09:15"),
        base_version=1,
        actor="a",
        now=MONDAY_0700,
    )
    result = program_edits.restore_version(
        runtime.session_factory, "standard", 1, base_version=2, actor="a", now=MONDAY_0700
    )
    session.commit()  # the test's read snapshot ends: it reads what the saves committed
    assert result.version == 3
    plan_nudges(runtime.session_factory, MONDAY_0700 + dt.timedelta(minutes=1))
    assert _local_due(runtime) == ["Mon 08:30"]
    versions = programs.history(session, "standard")
    assert [(v.version, v.restored_from) for v in versions] == [(3, 1), (2, None), (1, None)]
    assert programs.show_program(session, "standard").tracks["sleep"].times == "08:30"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"times": "06:00"}, "times", "outside the allowed send window"),
        ({"track": "yoga"}, "track", "unknown track"),
        ({"times": "09:00,13:00", "reply_window_minutes": 300}, "reply_window_minutes", "4h"),
        ({"days": "mon,tue", "reply_window_minutes": 1500}, "reply_window_minutes", "24h"),
        ({"quiet_policy": "later"}, "quiet_policy", "defer"),
        ({"times": "25:00"}, "times", ""),
    ],
)
def test_invalid_changes_name_the_field_and_save_nothing(
    session: Session, changes: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _sleep(session, **changes)
    assert words in refused.value.errors[field]
    assert _versions(session) == 1


def test_a_reply_window_as_long_as_the_gap_between_nudges_is_accepted(session: Session) -> None:
    assert (
        _sleep(session, times="09:00,13:00", reply_window_minutes=240).reply_window_minutes == 240
    )


def test_two_editors_of_the_same_version_do_not_overwrite_each_other(
    runtime: Runtime, session: Session
) -> None:
    """Both loaded version 1 (two page loads); the second save is refused and the first
    one's times stand."""
    mine = _sleep(session, times="09:15")
    theirs = _sleep(session, times="10:45")
    session.commit()
    sessions = runtime.session_factory
    program_edits.save_track(sessions, "standard", mine, base_version=1, actor="a", now=MONDAY_0700)
    with pytest.raises(StaleVersion) as refused:
        program_edits.save_track(
            sessions, "standard", theirs, base_version=1, actor="b", now=MONDAY_0700
        )
    assert "nothing was saved" in refused.value.errors["version"]
    with runtime.session_factory() as s:
        assert programs.show_program(s, "standard").tracks["sleep"].times == "09:15"
        assert _versions(s) == 2


def test_a_patient_assigned_to_another_programme_follows_it_and_standard_no_longer_moves_them(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session)
    sessions = runtime.session_factory
    program_edits.create_program(sessions, "gentle", actor="a", now=MONDAY_0700)
    program_edits.save_track(
        sessions,
        "gentle",
        _sleep(session, times="10:00"),
        base_version=1,
        actor="a",
        now=MONDAY_0700,
    )
    program_edits.assign_patient(sessions, patient.id, "gentle", actor="a", now=MONDAY_0700)
    program_edits.save_track(
        sessions,
        "standard",
        _sleep(session, times="09:15"),
        base_version=1,
        actor="a",
        now=MONDAY_0700,
    )
    with runtime.session_factory() as s:
        assert s.get(TrackSchedule, patient.schedules[0].id).local_times == "10:00"  # type: ignore[union-attr]
        assert programs.policy_for(s, patient.id, "sleep").times == "10:00"
        assert [p.name for p in programs.list_programs(s)] == ["gentle", "standard"]
        assert programs.show_program(s, "gentle").patients == 1


def test_programme_names_are_checked(runtime: Runtime) -> None:
    sessions = runtime.session_factory
    with pytest.raises(ValidationFailed) as refused:
        program_edits.create_program(sessions, "Bad Name!", actor="a", now=MONDAY_0700)
    assert "name" in refused.value.errors
    with pytest.raises(ValidationFailed):
        program_edits.create_program(sessions, "standard", actor="a", now=MONDAY_0700)
