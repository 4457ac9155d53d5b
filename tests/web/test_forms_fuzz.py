"""Bad input through the staff forms and the bulk CSV enrolment: the short CI run of the
proof's fuzz (same strategies and checks, proof/fuzz_forms/), then the bugs it found,
each pinned by an example."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from coachbot.models import (
    Alert,
    AuditEntry,
    OutboundMessage,
    Patient,
    ProgramVersion,
    TrackSchedule,
)
from coachbot.runtime import Runtime
from proof.fuzz_forms import STRATEGIES, Bench, Case, upload
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import (
    csrf_token,
    give_history,
    make_staff,
    post_form,
    sign_in,
)

FAST = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def bench(runtime: Runtime, app: Any) -> Bench:
    return Bench(runtime, app)


def _post(bench: Bench, case: Case) -> None:
    problems = bench.run(case)
    assert not problems, "\n".join(map(str, problems))


@FAST
@given(case=STRATEGIES["bulk"])
def test_bulk_csv_is_all_or_nothing(bench: Bench, case: Case) -> None:
    _post(bench, case)


@FAST
@given(case=STRATEGIES["enrol"])
def test_enrolment_form(bench: Bench, case: Case) -> None:
    _post(bench, case)


@FAST
@given(case=STRATEGIES["edit"])
def test_patient_edit_form(bench: Bench, case: Case) -> None:
    _post(bench, case)


@FAST
@given(case=STRATEGIES["alert"])
def test_alert_note_forms(bench: Bench, case: Case) -> None:
    _post(bench, case)


@FAST
@given(case=STRATEGIES["schedule"])
def test_operator_schedule_form(bench: Bench, case: Case) -> None:
    _post(bench, case)


# --- what the fuzz found --------------------------------------------------------------

ENROL = {
    "first_name": "Rosa",
    "phone": "(617) 555-0177",
    "timezone": "America/Chicago",
    "language": "en",
    "track_sleep": "y",
    "times_sleep": "08:30",
    "track_rehab": "y",
    "times_rehab": "15:00, 19:30",
    "homework": "word cards",
    "consent_how": "signed form in clinic",
    "consent_when": "2025-11-20T10:30",
}
HEADER = "first_name,phone,timezone,tracks\n"


@pytest.fixture
def clinician(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ana@clinic.test")
    assert sign_in(client, "ana@clinic.test").status_code == 302
    return user_id


def _count(session: Session, model: Any) -> int:
    session.rollback()  # a fresh snapshot: the app committed in its own sessions
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Not zone files: ZoneInfo raised OSError (a directory, a name too long), a 500.
        ("timezone", "America"),
        ("timezone", "a" * 300),
        # Year 1 in Tokyo is before the first UTC instant: OverflowError, a 500.
        ("consent_when", "0001-01-01T00:00"),
        # More than 20 items: refused only after the patient was enrolled and welcomed.
        ("homework", "\n".join(f"task {i}" for i in range(21))),
        # 48 times made a list longer than the column: a 500 on PostgreSQL.
        ("times_rehab", ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 720, 15))),
        # PostgreSQL cannot store NUL: a 500 there.
        ("first_name", "Ro\x00sa"),
    ],
)
def test_an_enrolment_the_fuzz_broke_is_a_field_error_and_writes_nothing(
    client: Any, session: Session, clinician: int, field: str, value: str
) -> None:
    form = {**ENROL, field: value}
    if field == "consent_when":
        form["timezone"] = "Asia/Tokyo"
    answer = post_form(client, "/patients/new", form)
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.get_data(as_text=True)
    assert (_count(session, Patient), _count(session, OutboundMessage)) == (0, 0)


def test_enrolment_writes_the_patient_and_its_times_in_one_step(
    client: Any, session: Session, clinician: int
) -> None:
    assert post_form(client, "/patients/new", ENROL).status_code == 302
    schedules = {s.track: s for s in session.scalars(select(TrackSchedule))}
    assert {t: s.local_times for t, s in schedules.items()} == {
        "sleep": "08:30",
        "rehab": "15:00,19:30",
    }
    # The programme's own time stays the programme's; a time of the patient's own does not.
    assert (schedules["sleep"].is_custom, schedules["rehab"].is_custom) == (False, True)
    actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("patient.enroll") == 1
    assert "patient.care_plan" not in actions  # no second write after the enrolment


def _upload(client: Any, data: bytes) -> Any:
    token = csrf_token(client, "/patients/bulk")
    return client.post("/patients/bulk", **upload(MultiDict({"csrf_token": token}), data))


def test_a_csv_with_bare_cr_line_ends_is_read_row_by_row(
    client: Any, session: Session, clinician: int
) -> None:
    # Excel for Mac ends lines with CR: the csv module refused it mid-parse, a 500.
    rows = [HEADER.strip(), "Ada,+16175550181,America/New_York,sleep"]
    rows.append("Ben,+16175550182,America/New_York,rehab")
    answer = _upload(client, "\r".join(rows).encode())
    assert answer.status_code == 302
    assert _count(session, Patient) == 2


@pytest.mark.parametrize(
    ("why", "data", "message"),
    [
        # A cell past the csv module's field limit raised csv.Error: a 500.
        (
            "huge cell",
            f"{HEADER}Ada,+16175550181,America/New_York,{'s' * 140_000}\n".encode(),
            "not a readable CSV",
        ),
        # PostgreSQL cannot store NUL: a 500 there.
        ("NUL", f"{HEADER}A\x00da,+16175550181,America/New_York,sleep\n".encode(), "NUL"),
        # Read up to 1 MB and cut there: the first rows of a longer file were enrolled.
        (
            "over 1 MB",
            (HEADER.strip() + ",notes\n").encode()
            + b"".join(
                f"P{i},+1617555{1000 + i},America/New_York,sleep,{'n' * 100_000}\n".encode()
                for i in range(11)
            ),
            "larger than 1 MB",
        ),
    ],
)
def test_a_csv_the_fuzz_broke_is_refused_whole(
    client: Any, session: Session, clinician: int, why: str, data: bytes, message: str
) -> None:
    answer = _upload(client, data)
    assert answer.status_code == 422, why
    assert message in answer.get_data(as_text=True)
    assert (_count(session, Patient), _count(session, OutboundMessage)) == (0, 0)


def test_a_csv_row_with_too_much_homework_is_a_row_error(
    client: Any, session: Session, clinician: int
) -> None:
    # It was enrolled with all 21 items, more than an edit may keep.
    homework = "|".join(f"task {i}" for i in range(21))
    data = f"first_name,phone,timezone,homework\nAda,+16175550181,UTC,{homework}\n".encode()
    answer = _upload(client, data)
    assert answer.status_code == 422
    assert "at most 20 homework items" in answer.get_data(as_text=True)
    assert _count(session, Patient) == 0


def test_an_alert_note_with_a_nul_is_refused(client: Any, session: Session, clinician: int) -> None:
    patient = make_patient(session)
    patient.clinician_id = clinician
    session.commit()
    give_history(session, patient, days=1)
    alert_id = session.scalars(select(Alert.id)).one()
    answer = post_form(client, f"/alerts/{alert_id}/resolve", {"note": "called\x00"})
    assert answer.status_code == 400
    session.rollback()
    assert session.get_one(Alert, alert_id).status == "open"


def test_a_programme_track_with_more_times_than_a_day_allows_is_refused(
    client: Any, session: Session
) -> None:
    make_staff(session, "ops@clinic.test", role="operator")
    assert sign_in(client, "ops@clinic.test").status_code == 302
    every_quarter = ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(480, 1200, 15))
    answer = post_form(
        client,
        "/operator/programs/standard/edit?track=sleep",
        {
            "track": "sleep",
            "times": every_quarter,
            "days": "daily",
            "reply_window_minutes": "15",
            "followup": "once",
            "quiet_policy": "defer",
            "base_version": "1",
            "action": "save",
        },
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'id="times-error"' in page
    # The service's check (the same one the command line gets), not a form-only one.
    assert "at most 12 times a day" in page
    assert _count(session, ProgramVersion) == 1
