"""The welcome (the opt-in request) keeps the patient's clock like every nudge: texted at once
inside the send window and outside quiet hours, otherwise held to the first permitted
instant and sent there by the clock tick, once, to the patient's current number, and only
while they are still waiting to answer YES."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import AuditEntry, OutboundMessage, Patient
from coachbot.runtime import Runtime
from coachbot.services.care import CarePlan, PatientChanges, bulk_enroll, edit_patient
from coachbot.services.enrollment import (
    WELCOME_RECHECK,
    EnrollmentRequest,
    enroll_patient,
    send_due_welcomes,
    welcome_note,
)
from coachbot.services.schedules import set_window
from coachbot.services.status_changes import change_status
from coachbot.services.tick import run_clock_tick
from tests.web.test_dashboard_support import make_staff

# London keeps GMT in November: local time is UTC.
LATE = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)  # 23:30, inside 21:00-07:30
QUIET_ENDS = dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.UTC)
WINDOW_OPENS = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)  # the default 08:00-20:00
MIDDAY = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
PHONE = "+447911123456"
NEW_PHONE = "+447911123457"


def _request(**overrides: object) -> EnrollmentRequest:
    fields: dict[str, object] = {
        "first_name": "Tom",
        "phone": PHONE,
        "timezone": "Europe/London",
        "quiet_hours": "21:00-07:30",
        "clinician_email": "ana@clinic.test",
        "tracks": "sleep",
    }
    fields.update(overrides)
    return EnrollmentRequest(**fields)  # type: ignore[arg-type]


def _enrol(runtime: Runtime, now: dt.datetime, **overrides: object) -> int:
    with runtime.session_factory() as session:
        if session.scalar(select(func.count()).select_from(Patient)) == 0:
            make_staff(session, "ana@clinic.test")
        patient = enroll_patient(
            session,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            _request(**overrides),
            now=now,
            actor="test",
        )
        return patient.id


def _window(runtime: Runtime, start: str, end: str) -> None:
    with runtime.session_factory() as session:
        set_window(
            session,
            start=dt.time.fromisoformat(start),
            end=dt.time.fromisoformat(end),
            daily_cap=None,
            max_concurrency=None,
            actor="test",
            now=MIDDAY - dt.timedelta(days=1),
        )


def _tick(runtime: Runtime, now: dt.datetime) -> None:
    run_clock_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now)


def _welcomes(runtime: Runtime) -> list[tuple[str, dt.datetime]]:
    with runtime.read_session_factory() as session:
        rows = session.execute(
            select(OutboundMessage.to_e164, OutboundMessage.created_at)
            .where(OutboundMessage.kind == "welcome")
            .order_by(OutboundMessage.id)
        ).all()
        return [(to, at) for to, at in rows]


def _edit(
    runtime: Runtime, patient_id: int, phone: str, quiet_hours: str, *, now: dt.datetime
) -> None:
    """The clinician's edit form: Tom's number and quiet hours, the rest unchanged."""
    with runtime.session_factory() as session:
        edit_patient(
            session,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            session.get_one(Patient, patient_id),
            PatientChanges("Tom", phone, "Europe/London", "en", quiet_hours, None, False),
            CarePlan({"sleep": "08:30"}, ()),
            now=now,
            actor="test",
        )


def _held(runtime: Runtime, patient_id: int) -> dt.datetime | None:
    with runtime.read_session_factory() as session:
        return session.get_one(Patient, patient_id).welcome_due_at


def test_a_welcome_inside_the_window_is_texted_at_once(runtime: Runtime) -> None:
    patient_id = _enrol(runtime, MIDDAY)
    assert _welcomes(runtime) == [(PHONE, MIDDAY)]
    assert _held(runtime, patient_id) is None


def test_a_welcome_in_quiet_hours_is_held_and_the_tick_sends_it_when_they_end(
    runtime: Runtime,
) -> None:
    _window(runtime, "07:00", "21:00")  # quiet hours, not the window, decide here
    patient_id = _enrol(runtime, LATE)
    assert _welcomes(runtime) == []
    assert _held(runtime, patient_id) == QUIET_ENDS
    with runtime.read_session_factory() as session:
        audit = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "consent.welcome_held")
        ).all()
        assert audit == [f"until {QUIET_ENDS.isoformat()} (quiet_hours)"]
        patient = session.get_one(Patient, patient_id)
        assert welcome_note(session, patient, LATE) == (
            "The welcome text will go at 07:30 their time (quiet hours)."
        )

    for minute in (LATE + dt.timedelta(hours=2), QUIET_ENDS - dt.timedelta(minutes=1)):
        _tick(runtime, minute)
    assert _welcomes(runtime) == []
    assert _held(runtime, patient_id) == QUIET_ENDS

    _tick(runtime, QUIET_ENDS)
    assert _welcomes(runtime) == [(PHONE, QUIET_ENDS)]
    assert _held(runtime, patient_id) is None
    # A second tick at the same instant, and later ones, send nothing more.
    _tick(runtime, QUIET_ENDS)
    _tick(runtime, QUIET_ENDS + dt.timedelta(minutes=5))
    assert len(_welcomes(runtime)) == 1


def test_the_programme_window_holds_the_welcome_past_the_end_of_quiet_hours(
    runtime: Runtime,
) -> None:
    patient_id = _enrol(runtime, LATE)  # default window 08:00-20:00
    assert _held(runtime, patient_id) == WINDOW_OPENS
    _tick(runtime, QUIET_ENDS)
    assert _welcomes(runtime) == []
    _tick(runtime, WINDOW_OPENS)
    assert _welcomes(runtime) == [(PHONE, WINDOW_OPENS)]


def test_the_tick_checks_quiet_hours_again_and_holds_the_welcome_further(
    runtime: Runtime,
) -> None:
    _window(runtime, "07:00", "21:00")
    patient_id = _enrol(runtime, LATE)
    # Overnight the clinician learns the patient sleeps until nine.
    _edit(runtime, patient_id, PHONE, "21:00-09:00", now=LATE + dt.timedelta(hours=1))
    _tick(runtime, QUIET_ENDS)
    assert _welcomes(runtime) == []
    nine = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
    assert _held(runtime, patient_id) == nine
    _tick(runtime, nine)
    assert _welcomes(runtime) == [(PHONE, nine)]


def test_a_patient_discharged_before_the_welcome_is_due_gets_nothing(runtime: Runtime) -> None:
    _window(runtime, "07:00", "21:00")
    patient_id = _enrol(runtime, LATE)
    change_status(
        runtime.session_factory,
        patient_id,
        "discharge",
        now=LATE + dt.timedelta(hours=1),
        actor="t",
    )
    _tick(runtime, QUIET_ENDS)
    assert _welcomes(runtime) == []
    assert _held(runtime, patient_id) is None


def test_a_patient_who_answered_yes_before_the_welcome_went_is_not_asked_again(
    runtime: Runtime,
) -> None:
    _window(runtime, "07:00", "21:00")
    patient_id = _enrol(runtime, LATE)
    with runtime.session_factory() as session:
        patient = session.get_one(Patient, patient_id)
        patient.status = PatientStatus.ACTIVE
        patient.opted_in_at = LATE + dt.timedelta(hours=1)
        session.commit()
    _tick(runtime, QUIET_ENDS)
    assert _welcomes(runtime) == []


def test_a_new_number_before_the_welcome_is_due_gets_its_own_welcome_and_the_old_none(
    runtime: Runtime,
) -> None:
    _window(runtime, "07:00", "21:00")
    patient_id = _enrol(runtime, LATE)
    _edit(runtime, patient_id, NEW_PHONE, "21:00-07:30", now=LATE + dt.timedelta(hours=2))
    assert _welcomes(runtime) == []  # 01:30: the new number's welcome is held too
    assert _held(runtime, patient_id) == QUIET_ENDS
    _tick(runtime, QUIET_ENDS)
    _tick(runtime, QUIET_ENDS + dt.timedelta(seconds=5))
    assert _welcomes(runtime) == [(NEW_PHONE, QUIET_ENDS)]


def test_a_new_number_in_the_day_is_welcomed_at_once_and_drops_the_held_welcome(
    runtime: Runtime,
) -> None:
    patient_id = _enrol(runtime, LATE)
    assert _held(runtime, patient_id) == WINDOW_OPENS
    # The held welcome was never claimed (the clock was down); the clinician changes the
    # number at 09:00 and that welcome goes at once, to the new number only.
    nine = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
    _edit(runtime, patient_id, NEW_PHONE, "21:00-07:30", now=nine)
    assert _held(runtime, patient_id) is None
    _tick(runtime, nine + dt.timedelta(seconds=5))
    assert _welcomes(runtime) == [(NEW_PHONE, nine)]


def test_quiet_hours_that_cover_the_whole_window_keep_the_welcome_on_hold(
    runtime: Runtime,
) -> None:
    patient_id = _enrol(runtime, MIDDAY, quiet_hours="07:00-21:00")
    assert _welcomes(runtime) == []
    assert _held(runtime, patient_id) == MIDDAY + WELCOME_RECHECK
    with runtime.read_session_factory() as session:
        patient = session.get_one(Patient, patient_id)
        note = welcome_note(session, patient, MIDDAY)
    assert note is not None
    assert "on hold" in note
    _tick(runtime, MIDDAY + WELCOME_RECHECK)
    assert _welcomes(runtime) == []
    assert _held(runtime, patient_id) == MIDDAY + 2 * WELCOME_RECHECK
    # The operator widens the window: the next look sends it.
    _window(runtime, "07:00", "22:00")
    _tick(runtime, MIDDAY + 2 * WELCOME_RECHECK)
    assert _welcomes(runtime) == []  # 14:00 is still quiet; 21:00 is the first permitted
    nine_pm = dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.UTC)
    assert _held(runtime, patient_id) == nine_pm
    _tick(runtime, nine_pm)
    assert _welcomes(runtime) == [(PHONE, nine_pm)]


def test_two_clocks_at_the_same_instant_send_each_held_welcome_once(
    runtime: Runtime, session: Session
) -> None:
    _window(runtime, "07:00", "21:00")
    with runtime.session_factory() as s:
        make_staff(s, "ana@clinic.test")
    rows = "".join(f"P{i},+4479111234{i:02d},Europe/London,sleep,21:00-07:30\n" for i in range(30))
    with runtime.session_factory() as s:
        patients, errors = bulk_enroll(
            s,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            "first_name,phone,timezone,tracks,quiet_hours\n" + rows,
            clinician_email="ana@clinic.test",
            now=LATE,
            actor="test",
        )
    assert errors == []
    assert len(patients) == 30
    assert _welcomes(runtime) == []

    def clock(_: int) -> int:
        return send_due_welcomes(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, QUIET_ENDS
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        sent = list(pool.map(clock, range(2)))
    assert sum(sent) == 30
    per_number = session.execute(
        select(OutboundMessage.to_e164, func.count())
        .where(OutboundMessage.kind == "welcome")
        .group_by(OutboundMessage.to_e164)
    ).all()
    assert len(per_number) == 30
    assert {n for _, n in per_number} == {1}
