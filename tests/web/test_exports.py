"""Exports: per-patient and cohort CSV, and a FHIR R4 Bundle checked with fhir.resources'
R4B models (the R4 line that fhir.resources 8 ships; R5 is its default package)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from freezegun import freeze_time
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from coachbot.models import AuditEntry, Nudge, OutboundMessage, Patient
from coachbot.queries.exports import COHORT_CSV_COLUMNS, PATIENT_CSV_COLUMNS
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
    assert bundle.entry is not None
    # Each entry holds its concrete class (Observation, ...); the annotation says Resource.
    resources: list[Any] = [entry.resource for entry in bundle.entry]
    kinds = [resource.__resource_type__ for resource in resources]
    assert kinds.count("Patient") == 1
    # 7 answers: an adherence Observation and a reported-hours Observation each.
    assert kinds.count("Observation") == 14
    # 10 nudges sent and 7 replies received.
    assert kinds.count("Communication") == 17
    sleep = [
        r for r in resources if r.__resource_type__ == "Observation" and r.valueQuantity is not None
    ]
    assert sleep[0].code.coding[0].code == "93832-4"
    assert sleep[0].valueQuantity.unit == "hours"
    actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == pid)))
    assert "export.patient_fhir" in actions


def _sent_text(patient_id: int, to: str, nudge_id: int, status: str, at: Any) -> OutboundMessage:
    return OutboundMessage(
        patient_id=patient_id,
        to_e164=to,
        body="How many hours did you sleep?",
        kind="nudge",
        nudge_id=nudge_id,
        backend="console",
        delivery_status=status,
        created_at=at,
    )


def test_the_patient_csv_reports_the_newest_texts_delivery_status_per_nudge(
    maya: tuple[Any, int], session: Session
) -> None:
    """A resent nudge has two texts: the CSV shows the newer one's status. A nudge with no
    text yet shows none, and another patient's texts never lend it theirs."""
    client, pid = maya
    nudges = session.scalars(select(Nudge).where(Nudge.patient_id == pid).order_by(Nudge.due_at))
    first, second, *_ = nudges
    resent_at = first.due_at + dt.timedelta(minutes=5)
    session.add(_sent_text(pid, "+16175550199", first.id, "undelivered", resent_at))
    session.execute(delete(OutboundMessage).where(OutboundMessage.nudge_id == second.id))
    other = make_patient(session, first_name="Other", phone="+16175550142")
    # A stray link to Maya's nudge must not surface in her export.
    session.add(_sent_text(other.id, other.phone_e164, second.id, "failed", second.due_at))
    session.commit()
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/exports/patients/{pid}.csv").get_data(True)))
    )
    assert [r["delivery_status"] for r in rows[:3]] == ["undelivered", "", "delivered"]
    assert len(rows) == 10


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x.test","hi")', "+1+1", "-2", "@SUM(A1)"])
def test_a_first_name_a_spreadsheet_would_run_is_exported_as_text(
    maya: tuple[Any, int], session: Session, name: str
) -> None:
    client, pid = maya
    patient = session.get_one(Patient, pid)
    patient.first_name = name
    session.commit()
    rows = list(csv.DictReader(io.StringIO(client.get("/exports/cohort.csv").get_data(True))))
    assert [r["first_name"] for r in rows] == ["'" + name]


def test_the_cohort_csv_is_in_the_trail_of_each_record_it_holds(
    maya: tuple[Any, int], session: Session
) -> None:
    client, pid = maya
    other = make_patient(session, first_name="NotMine", phone="+16175550177")
    session.commit()
    assert client.get("/exports/cohort.csv").status_code == 200
    session.expire_all()

    def actions(patient_id: int) -> list[str]:
        return list(
            session.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == patient_id))
        )

    assert "export.cohort_csv" in actions(pid)
    assert "export.cohort_csv" not in actions(other.id)
