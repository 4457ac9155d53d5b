"""A clinician cannot switch texts back on for a patient who asked to stop, in a real browser:
the page says why and which number the patient should text, and a Resume clicked on a page
loaded before the patient's own revocation arrived is refused with the same reason."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from coachbot.models import Patient
from coachbot.runtime import Runtime
from tests.e2e.conftest import Screenshots
from tests.support.builders import make_patient
from tests.support.sign_in import make_staff, sign_in_browser


def _paused_patient(runtime: Runtime, clinician_id: int, paused_by: str) -> int:
    with runtime.session_factory() as s:
        patient = make_patient(s, first_name="Rosa")
        patient.clinician_id = clinician_id
        patient.status = PatientStatus.PAUSED
        patient.paused_by = paused_by
        s.commit()
        return patient.id


def test_the_page_refuses_to_resume_a_patient_who_asked_to_stop_and_says_why(
    page: Any, live_server: str, runtime: Runtime, session: Session, shots: Screenshots
) -> None:
    clinician_id = make_staff(session, "ana@clinic.test")
    patient_id = _paused_patient(runtime, clinician_id, "clinician")
    sign_in_browser(page, live_server, "ana@clinic.test")

    page.goto(f"{live_server}/patients/{patient_id}")
    resume = page.get_by_role("button", name="Resume")
    assert resume.is_visible()
    shots.take("clinician-pause-resumable")

    # Meanwhile the patient texts "please stop texting me": their own pause now.
    with runtime.session_factory() as s:
        s.get_one(Patient, patient_id).paused_by = "patient"
        s.commit()
    resume.click()
    page.wait_for_url(f"{live_server}/patients/{patient_id}")
    shots.take("resume-refused")
    body = page.locator("main").inner_text()
    assert re.search(
        r"Rosa asked to stop the texts\. Only Rosa can restart them, by texting"
        r" START or YES to",
        body,
    )
    assert "Texts are off at the patient's request." in body
    assert page.get_by_role("button", name="Resume").count() == 0
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.PAUSED

    # The consent history on the same page records the refusal.
    assert "resume refused" in page.locator("table.consent").inner_text()
