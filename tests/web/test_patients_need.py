"""The patients list in need order: open urgent alerts, then high, then silence, then falling
adherence, then everyone else by name; the "Why" words come from the same facts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from coachbot.domain.need import Need, why
from coachbot.domain.states import AlertKind, AlertSeverity, PatientStatus
from coachbot.models import Patient
from coachbot.queries.dashboard import ListFilter, patients_page
from coachbot.services.alerts import raise_alert
from tests.support.builders import make_delivered_day, make_inbound, make_patient
from tests.web.test_dashboard_support import NOW, make_staff


def _week(session: Session, patient: Patient, days_ago: int, done: int) -> None:
    """A sleep nudge on each of the 7 days from `days_ago` back, the first `done` answered."""
    for n in range(7):
        make_delivered_day(
            session,
            patient,
            due=NOW - dt.timedelta(days=days_ago + n, hours=2),
            window=dt.timedelta(hours=1),
            done=n < done,
            answered_after=dt.timedelta(minutes=5),
        )
    session.commit()


def _cohort(session: Session) -> int:
    clinician = make_staff(session, "ana@clinic.test")

    def mine(name: str, **kwargs: object) -> Patient:
        patient = make_patient(session, first_name=name, **kwargs)  # type: ignore[arg-type]
        patient.clinician_id = clinician
        session.commit()
        return patient

    def replied(patient: Patient, ago: dt.timedelta) -> None:
        make_inbound(session, body="ok", received_at=NOW - ago, patient=patient)

    steady = mine("Val")
    mine("Uma", status=PatientStatus.PAUSED)  # never replied, but not texted either
    falling, silent = mine("Wes"), mine("Xia")
    high, urgent = mine("Yan"), mine("Zed")
    for patient in (steady, falling, high, urgent):
        replied(patient, dt.timedelta(hours=3))
    replied(silent, dt.timedelta(days=5))
    _week(session, steady, 0, 7)
    _week(session, steady, 7, 7)
    _week(session, falling, 7, 7)  # last week 7 of 7
    _week(session, falling, 0, 4)  # this week 4 of 7: 43%, down 57 points
    raise_alert(
        session,
        patient_id=high.id,
        kind=AlertKind.REVOCATION,
        severity=AlertSeverity.HIGH,
        detail="plain_language_revocation",
        now=NOW - dt.timedelta(minutes=30),
    )
    for ago, flag in ((dt.timedelta(hours=5), "fever"), (dt.timedelta(hours=2), "confusion")):
        raise_alert(
            session,
            patient_id=urgent.id,
            kind=AlertKind.RED_FLAG,
            severity=AlertSeverity.URGENT,
            detail=flag,
            now=NOW - ago,
        )
    session.commit()
    return clinician


def test_need_order_puts_urgent_then_high_then_silent_then_falling_then_the_rest(
    session: Session,
) -> None:
    clinician = _cohort(session)
    page = patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter(sort="need"))
    assert [(r.first_name, r.need.rank if r.need else None) for r in page.rows] == [
        ("Zed", Need.URGENT_ALERT),
        ("Yan", Need.HIGH_ALERT),
        ("Xia", Need.SILENT),
        ("Wes", Need.FALLING),
        ("Uma", Need.NONE),  # paused: not texted, so its silence is no news
        ("Val", Need.NONE),
    ]
    words = {r.first_name: why(r.need, NOW) for r in page.rows if r.need}
    # The newest of the most severe open alerts speaks for the patient.
    assert words["Zed"] == "Red flag 2 h ago: confusion"
    assert words["Yan"] == "Asked to stop the texts 30 min ago: asked in their own words to stop"
    assert words["Xia"] == "No reply for 5 days"
    assert words["Wes"] == "Adherence down from 100% to 57% this week"
    assert words["Val"] == words["Uma"] == ""


def test_the_other_orders_and_the_exports_default_are_unchanged(session: Session) -> None:
    clinician = _cohort(session)
    by_name = patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter())
    assert [r.first_name for r in by_name.rows] == ["Uma", "Val", "Wes", "Xia", "Yan", "Zed"]
    # Whatever the order, each row still carries its need.
    assert {r.first_name: r.need.rank for r in by_name.rows if r.need}["Zed"] is Need.URGENT_ALERT


def test_a_resolved_alert_is_no_longer_need_and_a_drop_under_twenty_points_is_not_falling(
    session: Session,
) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    patient = make_patient(session, first_name="Ola")
    patient.clinician_id = clinician
    make_inbound(session, body="ok", received_at=NOW - dt.timedelta(hours=1), patient=patient)
    _week(session, patient, 7, 7)
    _week(session, patient, 0, 6)  # 86%: 14 points down
    alert = raise_alert(
        session,
        patient_id=patient.id,
        kind=AlertKind.RED_FLAG,
        severity=AlertSeverity.URGENT,
        detail="seizure",
        now=NOW - dt.timedelta(hours=1),
    )
    alert.status = "resolved"
    session.commit()
    row = patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter(sort="need")).rows
    assert row[0].need is not None
    assert row[0].need.rank is Need.NONE


def test_the_list_costs_the_same_number_of_statements_for_a_page_of_need(
    session: Session,
) -> None:
    """No per-row queries: adding patients adds no statements to a page."""
    clinician = _cohort(session)
    counted: list[str] = []

    def count(*_args: object) -> None:
        counted.append("x")

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter(sort="need"))
        statements = len(counted)
        for n in range(10):
            make_patient(session, first_name=f"More{n}").clinician_id = clinician
        session.commit()
        counted.clear()
        patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter(sort="need"))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(counted) == statements
    assert session.scalar(select(func.count(Patient.id))) == 16
