"""A missed caregiver check is need in the patients list (issue #16): it ranks below an open
high alert and above silence for CAREGIVER_MISSED_DAYS after the check was due, and the
"Why" column says when it was missed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event
from sqlalchemy.orm import Session

from coachbot.domain.need import Need, NeedFacts, why
from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import Patient
from coachbot.queries.dashboard import ListFilter, patients_page
from coachbot.services.alerts import raise_alert
from tests.support.builders import (
    make_caregiver,
    make_caregiver_check,
    make_inbound,
    make_patient,
)
from tests.web.test_dashboard_support import NOW, make_staff

TODAY = dt.date(2026, 11, 23)  # NOW (13:00) in New York


def _mine(session: Session, clinician: int, name: str) -> Patient:
    patient = make_patient(session, first_name=name)
    patient.clinician_id = clinician
    session.commit()
    make_inbound(session, body="ok", received_at=NOW - dt.timedelta(hours=1), patient=patient)
    return patient


def _need(session: Session, clinician: int) -> list[tuple[str, Need | None, str]]:
    page = patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter(sort="need"))
    return [
        (r.first_name, r.need.rank if r.need else None, why(r.need, NOW) if r.need else "")
        for r in page.rows
    ]


def test_a_missed_check_ranks_between_high_alerts_and_silence(session: Session) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    missed, old, answered, high = (
        _mine(session, clinician, n) for n in ("Ada", "Bea", "Cy", "Dee")
    )
    silent = make_patient(session, first_name="Eve")
    silent.clinician_id = clinician
    session.commit()
    for patient in (missed, old, answered, high):
        sam = make_caregiver(session, patient)
        make_caregiver_check(session, patient, sam, day=TODAY - dt.timedelta(days=8), score=4)
    # Due yesterday at 18:00 UTC, missed: need. Due three days ago: no longer.
    make_caregiver_check(
        session, missed, missed_cg := make_caregiver(session, missed), day=TODAY - dt.timedelta(1)
    )
    make_caregiver_check(
        session,
        old,
        make_caregiver(session, old),
        day=TODAY - dt.timedelta(days=3),
        state="missed",
    )
    make_caregiver_check(session, answered, make_caregiver(session, answered), day=TODAY, score=3)
    raise_alert(
        session,
        patient_id=high.id,
        kind=AlertKind.REVOCATION,
        severity=AlertSeverity.HIGH,
        detail="plain_language_revocation",
        now=NOW - dt.timedelta(hours=1),
    )
    session.commit()
    # The first check of `missed` above is "sent", not missed yet: no need.
    ranks = {name: rank for name, rank, _ in _need(session, clinician)}
    assert ranks["Ada"] is Need.NONE
    make_caregiver_check(
        session,
        missed,
        missed_cg,
        day=TODAY - dt.timedelta(days=1),
        kind="seen_today",
        state="missed",
    )

    order = _need(session, clinician)

    assert [(n, r) for n, r, _ in order] == [
        ("Dee", Need.HIGH_ALERT),
        ("Ada", Need.CAREGIVER_MISSED),
        ("Eve", Need.SILENT),
        ("Bea", Need.NONE),
        ("Cy", Need.NONE),
    ]
    assert order[1][2] == "Caregiver check missed yesterday"


def test_why_names_the_missed_day() -> None:
    enrolled = NOW - dt.timedelta(days=20)
    facts = NeedFacts(Need.CAREGIVER_MISSED, enrolled, missed_check_days_ago=0)
    assert why(facts, NOW) == "Caregiver check missed today"
    facts = NeedFacts(Need.CAREGIVER_MISSED, enrolled, missed_check_days_ago=2)
    assert why(facts, NOW) == "Caregiver check missed 2 days ago"


def test_missed_checks_add_no_statements_per_patient(session: Session) -> None:
    clinician = make_staff(session, "ana@clinic.test")
    counted: list[str] = []
    engine = session.get_bind()

    def count(*_args: object) -> None:
        counted.append("x")

    def page_statements() -> int:
        counted.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            patients_page(session, clinician_id=clinician, now=NOW, f=ListFilter(sort="need"))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(counted)

    first = _mine(session, clinician, "Ada")
    make_caregiver_check(session, first, make_caregiver(session, first), day=TODAY, state="missed")
    one = page_statements()
    for n in range(5):
        patient = _mine(session, clinician, f"More{n}")
        make_caregiver_check(
            session, patient, make_caregiver(session, patient), day=TODAY, state="missed"
        )
    assert page_statements() == one
