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
from coachbot.models import AuditEntry, OutboundMessage, Patient
from coachbot.runtime import Runtime
from coachbot.services import consent
from coachbot.services.caregivers.records import caregiver_of
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

    with runtime.session_factory() as s:
        # The number's earlier owner's words stay in their own record.
        consent.record_event(
            s,
            number="+16175550190",
            patient_id=patient_id + 1000,
            event=consent.REVOCATION,
            text="someone else's words",
            now=NOW,
        )
        s.commit()
    assert "someone else" not in client.get(f"/patients/{patient_id}").get_data(as_text=True)

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


# --- enrolling a suppressed number --------------------------------------------------------

ENROL_FORM = {
    "first_name": "Tom",
    "phone": "+16175550191",
    "timezone": "America/New_York",
    "language": "en",
    "track_sleep": "y",
    "times_sleep": "8:15",
    "consent_how": "signed form in clinic",
    "consent_when": "2026-11-23T08:00",
}


def _suppress(runtime: Runtime, number: str) -> None:
    with runtime.session_factory() as s:
        consent.suppress(s, number, source="keyword", text="STOP", now=NOW)
        s.commit()


def test_enrolling_a_suppressed_number_is_allowed_but_texts_nothing_and_says_so(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    _suppress(runtime, "+16175550191")
    _suppress(runtime, "+16175550192")
    page = post_form(
        client,
        "/patients/new",
        {**ENROL_FORM, "caregiver_phone": "+16175550192", "caregiver_name": "Sam"},
        follow_redirects=True,
    )
    html = page.get_data(as_text=True)
    assert "Tom is enrolled; no welcome was texted." in html
    assert (
        "The patient&#39;s number: this number has opted out; ask them to text START to the"
        " number coachbot texts them from." in html
    )
    assert "The caregiver&#39;s number: this number has opted out" in html
    with runtime.session_factory() as s:
        assert s.scalars(select(OutboundMessage)).all() == []
        patient = s.scalars(select(Patient)).one()
        assert (patient.status, patient.welcome_due_at) == (PatientStatus.PENDING_CONSENT, None)


def test_a_bulk_upload_names_the_rows_whose_numbers_opted_out(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    _suppress(runtime, "+16175550194")
    csv_text = (
        "first_name,phone,timezone\n"
        "Ada,+16175550193,America/New_York\n"
        "Ben,+16175550194,America/New_York\n"
    )
    page = post_form(
        client,
        "/patients/bulk",
        {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = page.get_data(as_text=True)
    assert "Line(s) 3: this number has opted out; ask them to text START to" in html
    with runtime.session_factory() as s:
        assert s.scalars(select(OutboundMessage.to_e164)).all() == ["+16175550193"]


def test_a_number_changed_on_the_edit_page_to_a_suppressed_one_is_told_and_texted_nothing(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    patient_id = _own(runtime, clinician, phone="+16175550195")
    _suppress(runtime, "+16175550196")
    page = post_form(
        client,
        f"/patients/{patient_id}/edit",
        {
            "first_name": "Maya",
            "phone": "+16175550196",
            "timezone": "America/New_York",
            "language": "en",
            "track_sleep": "y",
            "times_sleep": "08:30",
        },
        follow_redirects=True,
    )
    html = page.get_data(as_text=True)
    assert "New number saved; no welcome was texted." in html
    assert "this number has opted out; ask them to text START to" in html
    with runtime.session_factory() as s:
        assert s.scalars(select(OutboundMessage)).all() == []


# --- the suppression list for admins ------------------------------------------------------


def test_admins_see_the_suppression_list_and_export_it_audited(
    client: Any, runtime: Runtime, session: Session
) -> None:
    make_staff(session, "root@clinic.test", role="admin")
    _suppress(runtime, "+16175550197")
    assert sign_in(client, "root@clinic.test").status_code == 302
    html = client.get("/admin/suppressions").get_data(as_text=True)
    assert "+16175550197" in html
    assert "keyword" in html
    answer = client.get("/admin/suppressions.csv")
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows == [
        ["number", "source", "suppressed_at"],
        ["+16175550197", "keyword", NOW.isoformat()],
    ]
    with runtime.session_factory() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert [a for a in actions if a.startswith(("suppression", "export.suppression"))] == [
        "suppression.view",
        "export.suppression_csv",
    ]


def test_a_clinician_does_not_get_the_suppression_list(client: Any, clinician: int) -> None:
    assert client.get("/admin/suppressions").status_code == 404
    assert client.get("/admin/suppressions.csv").status_code == 404


def test_a_caregiver_number_that_opted_out_is_named_when_saved_on_the_edit_page(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    patient_id = _own(runtime, clinician, phone="+16175550198")
    _suppress(runtime, "+16175550199")
    page = post_form(
        client,
        f"/patients/{patient_id}/edit",
        {
            "first_name": "Maya",
            "phone": "+16175550198",
            "timezone": "America/New_York",
            "language": "en",
            "caregiver_phone": "+16175550199",
            "caregiver_name": "Sam",
            "track_sleep": "y",
            "times_sleep": "08:30",
        },
        follow_redirects=True,
    )
    html = page.get_data(as_text=True)
    assert "Saved. The caregiver&#39;s number: this number has opted out; ask them to text" in html
    with runtime.session_factory() as s:
        caregiver = caregiver_of(s, patient_id)
        assert caregiver is not None
        assert (caregiver.phone_e164, caregiver.status) == ("+16175550199", "pending-consent")
