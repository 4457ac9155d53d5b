"""One limit for every way in: at most MAX_TIMES_PER_TRACK times a day on a track (care plan,
patient schedule, programme default, command line), and a bulk CSV the csv module cannot
read is reported by the service like any bad row, never raised."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.cli.schedule import schedule
from coachbot.domain.schedule import MAX_TIMES_PER_TRACK
from coachbot.models import AuditEntry, Patient, ProgramVersion, TrackSchedule
from coachbot.runtime import Runtime
from coachbot.services import care, programs
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import validate_schedule
from tests.support.builders import make_patient

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
TOO_MANY = f"at most {MAX_TIMES_PER_TRACK} times a day"


def every_half_hour(count: int, first: str = "08:00") -> str:
    start = dt.datetime.combine(dt.date(2026, 1, 1), dt.time.fromisoformat(first))
    return ",".join(f"{start + dt.timedelta(minutes=30 * i):%H:%M}" for i in range(count))


# --- the care plan (the clinician's edit page) -------------------------------------------


def test_a_care_plan_with_more_times_than_a_track_allows_is_refused(session: Session) -> None:
    patient = make_patient(session, tracks={"sleep": "08:30"})
    most = care.CarePlan({"sleep": every_half_hour(MAX_TIMES_PER_TRACK)}, ())
    assert care.check_care_plan(most) == {}
    plan = care.CarePlan({"sleep": every_half_hour(MAX_TIMES_PER_TRACK + 1)}, ())
    assert care.check_care_plan(plan) == {"times_sleep": TOO_MANY}
    with pytest.raises(ValidationFailed) as refused:
        care.update_care_plan(session, patient, plan, now=NOW, actor="staff:1")
    assert refused.value.errors == {"times_sleep": TOO_MANY}
    session.rollback()
    assert session.scalars(select(TrackSchedule.local_times)).all() == ["08:30"]


# --- the schedule services and the command line ------------------------------------------


def test_a_schedule_takes_at_most_the_limit_of_times() -> None:
    spec = validate_schedule("exercise", every_half_hour(MAX_TIMES_PER_TRACK))
    assert len(spec.local_times.split(",")) == MAX_TIMES_PER_TRACK
    with pytest.raises(ValidationFailed) as refused:
        validate_schedule("exercise", every_half_hour(MAX_TIMES_PER_TRACK + 1))
    assert refused.value.errors == {"times": TOO_MANY}


def test_a_programme_track_with_too_many_times_names_the_count(session: Session) -> None:
    with pytest.raises(ValidationFailed) as refused:
        programs.validate_track(
            session,
            track="exercise",
            times=every_half_hour(MAX_TIMES_PER_TRACK + 1),
            reply_window_minutes=15,
        )
    assert refused.value.errors == {"times": TOO_MANY}


def _counts(session: Session) -> tuple[int, int]:
    session.rollback()  # a fresh snapshot of what the command wrote
    return (
        session.scalar(select(func.count(ProgramVersion.id))) or 0,
        session.scalar(select(func.count(AuditEntry.id))) or 0,
    )


def test_the_cli_refuses_a_patient_schedule_with_too_many_times(
    runtime: Runtime, session: Session
) -> None:
    # 40 times are 239 characters: on PostgreSQL they overflowed the 200-character column
    # (a traceback), on SQLite they were stored.
    patient = make_patient(session, tracks={"exercise": "10:00"})
    before = _counts(session)
    result = CliRunner().invoke(
        schedule,
        ["set", "--patient", str(patient.id), "--track", "exercise",
         "--times", every_half_hour(40, first="00:00")],
        env={"DATABASE_URL": runtime.settings.database_url},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"error: times: {TOO_MANY}" in result.output
    assert _counts(session) == before
    assert session.scalars(select(TrackSchedule.local_times)).all() == ["10:00"]


def test_the_cli_refuses_a_programme_default_with_too_many_times(
    runtime: Runtime, session: Session
) -> None:
    # Reading "standard" recreates it after the PostgreSQL pass's truncation: counted after.
    exercise = programs.show_program(session, programs.STANDARD).tracks["exercise"]
    before = _counts(session)
    result = CliRunner().invoke(
        schedule,
        ["set-default", "--track", "exercise",
         "--times", every_half_hour(MAX_TIMES_PER_TRACK + 1)],
        env={"DATABASE_URL": runtime.settings.database_url},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"error: times: {TOO_MANY}" in result.output
    assert _counts(session) == before
    assert programs.show_program(session, programs.STANDARD).tracks["exercise"] == exercise


# --- bulk CSV --------------------------------------------------------------------------

HEADER = "first_name,phone,timezone,tracks"


def test_a_bulk_csv_with_bare_cr_line_ends_is_read_row_by_row() -> None:
    # Excel for Mac ends lines with CR; the service reads them as line ends itself, whatever
    # its caller did with the upload.
    text = "\r".join(
        [HEADER, "Ada,+16175550181,America/New_York,sleep", "Ben,+16175550182,UTC,rehab"]
    )
    requests, errors = care.parse_bulk_csv(text, "clin@clinic.test")
    assert errors == []
    assert [(r.first_name, r.tracks) for r in requests] == [("Ada", "sleep"), ("Ben", "rehab")]


def test_a_quoted_cell_keeps_its_line_break() -> None:
    text = f'{HEADER},homework\r\nAda,+16175550181,UTC,sleep,"walk\r\nstretch"\r\n'
    requests, errors = care.parse_bulk_csv(text, "clin@clinic.test")
    assert errors == []
    assert [r.homework for r in requests] == [("walk\r\nstretch",)]


def test_a_cell_past_the_csv_field_limit_is_a_file_error_at_its_line() -> None:
    text = "\n".join(
        [HEADER, "Ada,+16175550181,UTC,sleep", f"Ben,+16175550182,UTC,{'s' * 140_000}"]
    )
    requests, errors = care.parse_bulk_csv(text, "clin@clinic.test")
    assert [r.first_name for r in requests] == ["Ada"]
    assert [(e.line, e.field) for e in errors] == [(3, "file")]
    assert errors[0].message.startswith("not a readable CSV (field larger than field limit")


def test_an_unreadable_header_is_a_file_error() -> None:
    requests, errors = care.parse_bulk_csv(f"{'x' * 140_000},phone\n", "clin@clinic.test")
    assert requests == []
    assert [(e.line, e.field) for e in errors] == [(1, "file")]
    assert errors[0].message.startswith("not a readable CSV")


def test_bulk_enrolment_of_an_unreadable_csv_writes_and_sends_nothing(
    runtime: Runtime, session: Session
) -> None:
    text = "\n".join(
        [HEADER, "Ada,+16175550181,UTC,sleep", f"Ben,+16175550182,UTC,{'s' * 140_000}"]
    )
    patients, errors = care.bulk_enroll(
        session,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        text,
        clinician_email="",
        now=NOW,
        actor="staff:1",
    )
    assert patients == []
    assert [(e.line, e.field) for e in errors] == [(3, "file")]
    assert session.scalar(select(func.count(Patient.id))) == 0
