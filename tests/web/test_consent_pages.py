"""Consent on the dashboard: the patient page explains why a clinician cannot resume a
patient who stopped their texts and shows the number they should text; a resume forced
anyway is refused; the consent ledger is on the page and exported as CSV (audited)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import AuditEntry, Patient
from coachbot.runtime import Runtime
from coachbot.services import consent
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, make_staff, post_form, sign_in


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def clinician(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ana@clinic.test")
    assert sign_in(client, "ana@clinic.test").status_code == 302
    return user_id


def _own(runtime: Runtime, clinician_id: int, paused_by: str | None = None, **kw: Any) -> int:
    with runtime.session_factory() as s:
        patient = make_patient(s, **kw)
        patient.clinician_id = clinician_id
        if paused_by is not None:
            patient.status = PatientStatus.PAUSED
            patient.paused_by = paused_by
        s.commit()
        return patient.id


def test_the_page_explains_why_a_patient_who_asked_to_stop_cannot_be_resumed(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    patient_id = _own(runtime, clinician, paused_by="patient")
    html = client.get(f"/patients/{patient_id}").get_data(as_text=True)
    assert "Texts are off at the patient's request." in html
    assert "Only Maya can restart them, by texting START or YES to" in html
    assert f'action="/patients/{patient_id}/resume"' not in html
    assert f'action="/patients/{patient_id}/discharge"' in html


def test_a_forced_resume_post_is_refused_with_the_reason_and_changes_nothing(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    patient_id = _own(runtime, clinician, paused_by="patient")
    answer = post_form(client, f"/patients/{patient_id}/resume", follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert "Maya asked to stop the texts. Only Maya can restart them" in html
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.PAUSED
        refused = s.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "patient.resume")
        ).all()
        assert refused == ["refused"]


def test_a_clinician_pause_shows_the_resume_button_and_resumes(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    patient_id = _own(runtime, clinician, paused_by="clinician")
    html = client.get(f"/patients/{patient_id}").get_data(as_text=True)
    assert f'action="/patients/{patient_id}/resume"' in html
    assert "Texts are off at the patient" not in html
    post_form(client, f"/patients/{patient_id}/resume")
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.ACTIVE


def test_the_ledger_is_on_the_page_and_exported_whole_with_an_audit_entry(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    patient_id = _own(runtime, clinician, phone="+16175550190")
    with runtime.session_factory() as s:
        # A STOP from the number before it was this patient's still belongs to its history.
        consent.suppress(s, "+16175550190", source="keyword", text="=STOP please", now=NOW)
        consent.record_event(
            s,
            number="+16175550190",
            patient_id=patient_id,
            event=consent.REVOCATION,
            text="no more texts",
            now=NOW,
        )
        s.commit()
    html = client.get(f"/patients/{patient_id}").get_data(as_text=True)
    assert "suppression added" in html
    assert "no more texts" in html
    assert "…0190" in html

    answer = client.get(f"/patients/{patient_id}/consent.csv")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].endswith(f'patient-{patient_id}-consent.csv"')
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["at", "event", "number", "patient_id", "source", "actor", "text"]
    assert [(r[1], r[2], r[6]) for r in rows[1:]] == [
        ("suppression_added", "+16175550190", "'=STOP please"),
        ("revocation", "+16175550190", "no more texts"),
    ]
    with runtime.session_factory() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.patient_id == patient_id)
        ).all()
        assert "export.consent_csv" in actions


def test_another_clinicians_patient_ledger_is_a_404_and_audited(
    client: Any, clinician: int, runtime: Runtime, session: Session
) -> None:
    other = make_staff(session, "ben@clinic.test")
    patient_id = _own(runtime, other)
    assert client.get(f"/patients/{patient_id}/consent.csv").status_code == 404
    with runtime.session_factory() as s:
        outcome = s.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "export.consent_csv")
        ).one()
        assert outcome == "denied"
