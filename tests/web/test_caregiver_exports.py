"""Caregiver checks in the patient CSV and the API (issue #16): the answered checks, the same
rows in both (and in the FHIR export, tests/contract/test_fhir_schema.py), audited and for
the clinician's own patients only."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from coachbot.models import AuditEntry, Patient
from coachbot.queries.exports import PATIENT_CSV_COLUMNS, patient_csv
from coachbot.runtime import Runtime
from tests.support.builders import make_caregiver, make_caregiver_check, make_patient
from tests.web.test_api import _token_via_ui
from tests.web.test_dashboard_support import NOW, give_history, make_staff, sign_in

TODAY = dt.date(2026, 11, 23)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def checked(session: Session) -> tuple[int, list[int]]:
    """Ana's patient Maya with a history and caregiver Sam's checks: two answered, one
    missed; and a check about another patient of Sam's."""
    owner = make_staff(session, "ana@clinic.test")
    maya = make_patient(session, first_name="Maya")
    maya.clinician_id = owner
    session.commit()
    give_history(session, maya)
    sam = make_caregiver(session, maya, first_name="=Sam", baseline=4)
    answered = [
        make_caregiver_check(session, maya, sam, day=TODAY - dt.timedelta(2), score=3),
        make_caregiver_check(session, maya, sam, day=TODAY - dt.timedelta(1), concern="worse"),
    ]
    make_caregiver_check(session, maya, sam, day=TODAY, state="missed")
    bo = make_patient(session, first_name="Bo")
    make_caregiver(session, bo, phone=sam.phone_e164)
    make_caregiver_check(session, bo, sam, day=TODAY, score=1)
    return maya.id, answered


def test_the_patient_csv_carries_the_answered_checks(
    app: Any, checked: tuple[int, list[int]]
) -> None:
    pid, _answered = checked
    client = app.test_client()
    sign_in(client, "ana@clinic.test")
    rows = list(csv.DictReader(io.StringIO(client.get(f"/exports/patients/{pid}.csv").text)))
    assert tuple(rows[0].keys()) == PATIENT_CSV_COLUMNS
    nudges = [r for r in rows if not r["track"].startswith("caregiver_")]
    checks = [r for r in rows if r["track"].startswith("caregiver_")]
    assert len(nudges) == 10
    assert all(r["caregiver"] == "" for r in nudges)
    assert [(r["track"], r["value"], r["unit"], r["outcome"]) for r in checks] == [
        ("caregiver_observation", "3", "of 4 items", ""),
        ("caregiver_observation", "", "", "worse"),
    ]
    assert {r["by_caregiver"] for r in checks} == {"yes"}
    assert {r["caregiver"] for r in checks} == {"'=Sam"}  # a formula is kept as text
    assert checks[0]["replied_at"] == "2026-11-21T20:00:00+00:00"


def test_the_api_lists_the_same_checks_and_audits_the_read(
    app: Any, session: Session, checked: tuple[int, list[int]]
) -> None:
    pid, answered = checked
    auth = {"Authorization": f"Bearer {_token_via_ui(app.test_client(), 'ana@clinic.test')}"}
    body = app.test_client().get(f"/api/v1/patients/{pid}/caregiver-checks", headers=auth)
    assert body.status_code == 200
    checks = body.get_json()["checks"]
    assert [c["id"] for c in checks] == answered
    assert checks[0]["items_as_usual"] == 3
    assert checks[0]["items_asked"] == 4
    assert checks[0]["answer"] == "3 of 4 as usual"
    assert checks[1]["concern"] == "worse"
    assert checks[1]["answer"] == "WORSE"
    assert checks[1]["caregiver"]["first_name"] == "=Sam"
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == pid))
    assert "api.caregiver_checks" in set(actions)


def test_another_clinicians_patient_checks_are_not_found(
    app: Any, session: Session, checked: tuple[int, list[int]]
) -> None:
    pid, _answered = checked
    make_staff(session, "bea@clinic.test")
    auth = {"Authorization": f"Bearer {_token_via_ui(app.test_client(), 'bea@clinic.test')}"}
    body = app.test_client().get(f"/api/v1/patients/{pid}/caregiver-checks", headers=auth)
    assert body.status_code == 404
    assert "checks" not in body.get_json()


def test_a_patient_with_checks_and_no_nudges_still_gets_the_check_rows(
    session: Session, checked: tuple[int, list[int]]
) -> None:
    bo = session.scalars(select(Patient).where(Patient.first_name == "Bo")).one()
    rows = list(csv.DictReader(io.StringIO("".join(patient_csv(session, bo)))))
    assert [(r["track"], r["value"], r["caregiver"]) for r in rows] == [
        ("caregiver_observation", "1", "'=Sam")
    ]


def test_a_patient_without_checks_is_exported_in_one_statement(
    session: Session, runtime: Runtime
) -> None:
    # Most patients never have a caregiver: their download does not ask for checks.
    maya = make_patient(session, first_name="Maya")
    give_history(session, maya)
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        rows = list(csv.DictReader(io.StringIO("".join(patient_csv(session, maya)))))
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)
    assert len(rows) == 10
    reads = [st for st in sent if st.strip().upper() != "BEGIN"]  # SQLite's deferred BEGIN
    assert len(reads) == 1
    assert "caregiver_checks c" in reads[0]
