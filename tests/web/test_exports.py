"""Exports: per-patient and cohort CSV, and a FHIR R4 Bundle checked with fhir.resources'
R4B models (the R4 line that fhir.resources 8 ships; R5 is its default package)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import AuditEntry
from coachbot.services.exports import COHORT_CSV_COLUMNS, PATIENT_CSV_COLUMNS
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, give_history, make_staff, sign_in


@pytest.fixture(autouse=True)
def frozen() -> Any:
    """Pages are read at NOW, the instant the history is built around."""
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def maya(app: Any, session: Session) -> tuple[Any, int]:
    owner = make_staff(session, "ana@clinic.test")
    patient = make_patient(session, first_name="Maya")
    patient.clinician_id = owner
    session.commit()
    give_history(session, patient)
    client = app.test_client()
    sign_in(client, "ana@clinic.test")
    return client, patient.id


def test_the_patient_csv_has_one_row_per_nudge_with_the_answer(maya: tuple[Any, int]) -> None:
    client, pid = maya
    answer = client.get(f"/exports/patients/{pid}.csv")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert tuple(rows[0].keys()) == PATIENT_CSV_COLUMNS
    assert len(rows) == 10
    assert sum(r["outcome"] == "done" for r in rows) == 7
    assert {r["delivery_status"] for r in rows} == {"delivered"}


def test_the_cohort_csv_lists_the_clinicians_patients_per_track(
    maya: tuple[Any, int], session: Session
) -> None:
    client, _pid = maya
    make_patient(session, first_name="NotMine")
    session.rollback()
    answer = client.get("/exports/cohort.csv")
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert tuple(rows[0].keys()) == COHORT_CSV_COLUMNS
    assert [(r["first_name"], r["track"], r["done_30d"], r["sent_30d"]) for r in rows] == [
        ("Maya", "sleep", "7", "10")
    ]


def test_the_fhir_bundle_validates_as_r4_with_observations_and_communications(
    maya: tuple[Any, int], session: Session
) -> None:
    client, pid = maya
    answer = client.get(f"/exports/patients/{pid}.fhir.json")
    assert answer.status_code == 200
    data = json.loads(answer.get_data(as_text=True))
    bundle = Bundle.model_validate(data)
    kinds = [entry.resource.__resource_type__ for entry in bundle.entry]
    assert kinds.count("Patient") == 1
    # 7 answers: an adherence Observation and a reported-hours Observation each.
    assert kinds.count("Observation") == 14
    # 10 nudges sent and 7 replies received.
    assert kinds.count("Communication") == 17
    sleep = [
        e.resource
        for e in bundle.entry
        if e.resource.__resource_type__ == "Observation" and e.resource.valueQuantity is not None
    ]
    assert sleep[0].code.coding[0].code == "93832-4"
    assert sleep[0].valueQuantity.unit == "hours"
    actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == pid)))
    assert "export.patient_fhir" in actions
