"""The enrol and edit forms' caregiver and close-watch fields: a good entry is saved (the
caregiver pending consent, their invitation due), a bad one comes back as the field's own
error, listed in the error summary, with nothing written; the edit form shows what is saved."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import Caregiver, Patient
from coachbot.runtime import Runtime
from coachbot.services.caregivers.records import caregiver_of
from tests.support.builders import make_caregiver, make_patient
from tests.web.test_dashboard_support import NOW, make_staff, post_form, sign_in

ENROL_FORM = {
    "first_name": "Tom",
    "phone": "+16175550401",
    "timezone": "America/New_York",
    "language": "en",
    "track_sleep": "y",
    "times_sleep": "8:15",
    "consent_how": "signed form in clinic",
    "consent_when": "2026-11-23T08:00",
}
CAREGIVER = "+16175550411"


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def clinician(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ana@clinic.test")
    assert sign_in(client, "ana@clinic.test").status_code == 302
    return user_id


def _counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.read_session_factory() as s:
        return (
            s.scalar(select(func.count()).select_from(Patient)) or 0,
            s.scalar(select(func.count()).select_from(Caregiver)) or 0,
        )


def test_enrolling_with_a_caregiver_and_a_close_watch_saves_both(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    page = post_form(
        client,
        "/patients/new",
        {
            **ENROL_FORM,
            "caregiver_phone": "617 555 0411",
            "caregiver_name": "Sam",
            "caregiver_language": "es",
            "close_watch_from": "2026-11-24",
            "close_watch_days": "28",
        },
    )
    assert page.status_code == 302
    with runtime.read_session_factory() as s:
        patient = s.scalars(select(Patient)).one()
        assert (patient.close_watch_from, patient.close_watch_days) == (dt.date(2026, 11, 24), 28)
        caregiver = caregiver_of(s, patient.id)
        assert caregiver is not None
        assert (caregiver.phone_e164, caregiver.first_name, caregiver.language) == (
            CAREGIVER,
            "Sam",
            "es",
        )
        assert (caregiver.status, caregiver.invite_due_at) == ("pending-consent", NOW)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"caregiver_phone": CAREGIVER}, "caregiver_name", "first name is required"),
        (
            {"caregiver_phone": "+16175550401", "caregiver_name": "Sam"},
            "caregiver_phone",
            "must differ",
        ),
        ({"caregiver_phone": "555", "caregiver_name": "Sam"}, "caregiver_phone", "not a valid"),
        ({"close_watch_from": "next week"}, "close_watch_from", "Not a valid date"),
        (
            {"close_watch_from": "2026-11-24", "close_watch_days": "120"},
            "close_watch_days",
            "from 1 to 90 days",
        ),
    ],
)
def test_a_bad_caregiver_or_close_watch_field_is_shown_on_the_field_and_saves_nothing(
    client: Any, clinician: int, runtime: Runtime, fields: dict[str, str], field: str, message: str
) -> None:
    page = post_form(client, "/patients/new", {**ENROL_FORM, **fields})
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    # On the field (USWDS error message, tied to the input), and in the summary as a link.
    assert f'<span class="usa-error-message" id="{field}-error">' in html
    assert message in html.split(f'id="{field}-error">')[1].split("</span>")[0]
    assert f'href="#{field}"' in html.split("data-error-summary")[1].split("</ul>")[0]
    assert _counts(runtime) == (0, 0)


def test_the_edit_form_shows_the_caregiver_and_close_watch_and_changes_them(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Maya", phone="+16175550402")
        patient.clinician_id = clinician
        patient.close_watch_from = dt.date(2026, 11, 20)
        patient.close_watch_days = 14
        make_caregiver(s, patient, phone=CAREGIVER, first_name="Sam", language="es")
        patient_id = patient.id
    html = client.get(f"/patients/{patient_id}/edit").get_data(as_text=True)
    assert f'value="{CAREGIVER}"' in html
    assert 'value="Sam"' in html
    assert '<option selected value="es">' in html
    assert 'value="2026-11-20"' in html
    assert 'value="14"' in html

    page = post_form(
        client,
        f"/patients/{patient_id}/edit",
        {
            "first_name": "Maya",
            "phone": "+16175550402",
            "timezone": "America/New_York",
            "language": "en",
            "caregiver_phone": "+16175550412",
            "caregiver_name": "Sam",
            "caregiver_language": "es",
            "close_watch_from": "2026-11-20",
            "close_watch_days": "",
            "track_sleep": "y",
            "times_sleep": "08:30",
        },
    )
    assert page.status_code == 302, page.get_data(as_text=True)
    with runtime.read_session_factory() as s:
        caregiver = caregiver_of(s, patient_id)
        assert caregiver is not None
        # A new number is a new consent: pending again, invited again.
        assert (caregiver.phone_e164, caregiver.status, caregiver.invite_due_at) == (
            "+16175550412",
            "pending-consent",
            NOW,
        )
        assert s.get_one(Patient, patient_id).close_watch_days is None


def test_a_bad_edit_shows_the_field_error_and_keeps_the_caregiver(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Maya", phone="+16175550402")
        patient.clinician_id = clinician
        make_caregiver(s, patient, phone=CAREGIVER, first_name="Sam")
        patient_id = patient.id
    page = post_form(
        client,
        f"/patients/{patient_id}/edit",
        {
            "first_name": "Maya",
            "phone": "+16175550402",
            "timezone": "America/New_York",
            "language": "en",
            "caregiver_phone": "+16175550412",
            "caregiver_name": "",
            "track_sleep": "y",
            "times_sleep": "08:30",
        },
    )
    assert page.status_code == 422
    assert 'id="caregiver_name-error"' in page.get_data(as_text=True)
    with runtime.read_session_factory() as s:
        caregiver = caregiver_of(s, patient_id)
        assert caregiver is not None
        assert caregiver.phone_e164 == CAREGIVER


def test_the_invite_box_shows_only_for_a_caregiver_never_invited(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Maya", phone="+16175550402")
        patient.clinician_id = clinician
        caregiver = make_caregiver(
            s, patient, phone=CAREGIVER, status=PatientStatus.PENDING_CONSENT
        )
        caregiver.invited_at = None
        s.commit()
        patient_id = patient.id
    assert 'name="caregiver_invite"' in client.get(f"/patients/{patient_id}/edit").get_data(
        as_text=True
    )
    page = post_form(
        client,
        f"/patients/{patient_id}/edit",
        {
            "first_name": "Maya",
            "phone": "+16175550402",
            "timezone": "America/New_York",
            "language": "en",
            "caregiver_phone": CAREGIVER,
            "caregiver_name": "Sam",
            "caregiver_invite": "y",
            "track_sleep": "y",
            "times_sleep": "08:30",
        },
    )
    assert page.status_code == 302
    with runtime.read_session_factory() as s:
        invited = caregiver_of(s, patient_id)
        assert invited is not None
        assert invited.invite_due_at == NOW
    html = client.get(f"/patients/{patient_id}/edit").get_data(as_text=True)
    assert 'name="caregiver_invite"' not in html
