"""Enrolling with a caregiver and a close-watch date in a real browser, and a caregiver field
error shown at the field and in the error summary, whose link moves focus to the field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import Caregiver, Patient
from coachbot.runtime import Runtime
from tests.e2e.conftest import Screenshots
from tests.support.sign_in import make_staff, sign_in_browser


def _fill_patient(page: Any) -> None:
    page.get_by_label("First name", exact=True).fill("Tom")
    page.get_by_label("Mobile number", exact=True).fill("+16175550601")
    page.get_by_label("When consent was given").fill("2026-11-02T08:00")
    page.get_by_label("Caregiver's mobile number (optional)").fill("617 555 0611")
    page.get_by_label("First day of the close watch").fill("2026-11-24")


def test_enrolling_with_a_caregiver_and_a_close_watch_date(
    page: Any, live_server: str, session: Session, runtime: Runtime, shots: Screenshots
) -> None:
    make_staff(session, "ana@clinic.test")
    sign_in_browser(page, live_server, "ana@clinic.test")
    page.goto(f"{live_server}/patients/new")
    _fill_patient(page)
    page.get_by_label("Caregiver's first name").fill("Sam")
    page.get_by_label("Caregiver's language").select_option("es")
    page.get_by_label("Close-watch length in days").fill("21")
    shots.take("enrol-caregiver")
    page.get_by_role("button", name="Enrol and send the welcome").click()
    page.get_by_text("Tom is enrolled").wait_for()

    with runtime.read_session_factory() as s:
        patient = s.scalars(select(Patient)).one()
        assert (str(patient.close_watch_from), patient.close_watch_days) == ("2026-11-24", 21)
        caregiver = s.scalars(select(Caregiver)).one()
        assert (caregiver.phone_e164, caregiver.first_name, caregiver.language) == (
            "+16175550611",
            "Sam",
            "es",
        )
        assert caregiver.status == "pending-consent"
        assert caregiver.invite_due_at is not None

    # The edit form shows what was saved.
    page.goto(f"{live_server}/patients/{patient.id}/edit")
    assert page.get_by_label("Caregiver's first name").input_value() == "Sam"
    assert page.get_by_label("First day of the close watch").input_value() == "2026-11-24"


def test_a_caregiver_without_a_name_is_a_field_error_and_enrols_nobody(
    page: Any, live_server: str, session: Session, runtime: Runtime, shots: Screenshots
) -> None:
    make_staff(session, "ana@clinic.test")
    sign_in_browser(page, live_server, "ana@clinic.test")
    page.goto(f"{live_server}/patients/new")
    _fill_patient(page)
    page.get_by_role("button", name="Enrol and send the welcome").click()

    summary = page.locator("[data-error-summary]")
    summary.wait_for()
    message = "the caregiver's first name is required with their number"
    link = summary.get_by_role("link", name=f"Caregiver's first name: {message}")
    assert link.count() == 1
    field = page.get_by_label("Caregiver's first name")
    assert field.get_attribute("aria-invalid") == "true"
    assert page.locator("#caregiver_name-error").inner_text() == message
    shots.take("enrol-caregiver-error")
    link.click()
    assert page.evaluate("document.activeElement.id") == "caregiver_name"
    # The typed values are kept for the correction.
    assert page.get_by_label("First day of the close watch").input_value() == "2026-11-24"
    with runtime.read_session_factory() as s:
        assert s.scalars(select(Patient)).all() == []
        assert s.scalars(select(Caregiver)).all() == []
