"""The clinician is told when the welcome could not go at once: after an enrolment at night
in the patient's zone, after a bulk upload, and after a new number."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.models import OutboundMessage, Patient
from tests.web.test_dashboard_support import make_staff, post_form, sign_in

LATE_IN_LONDON = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)
MIDDAY_IN_LONDON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
FORM = {
    "first_name": "Tom",
    "phone": "+447911123456",
    "timezone": "Europe/London",
    "language": "en",
    "quiet_hours": "21:00-07:30",
    "track_sleep": "y",
    "times_sleep": "8:15",
    "consent_how": "signed form in clinic",
    "consent_when": "2026-11-23T10:30",
}


@pytest.fixture
def clinician(session: Session) -> None:
    make_staff(session, "ana@clinic.test")


def _as_clinician(client: Any) -> None:
    assert sign_in(client, "ana@clinic.test").status_code == 302


def test_an_enrolment_at_night_says_when_the_welcome_will_go(
    client: Any, session: Session, clinician: None
) -> None:
    with freeze_time(LATE_IN_LONDON):
        _as_clinician(client)
        page = post_form(client, "/patients/new", FORM, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "Tom is enrolled; the welcome text asks for YES." in html
    assert "The welcome text will go at 08:00 their time (quiet hours)." in html
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0
    patient = session.scalars(select(Patient)).one()
    assert patient.welcome_due_at == dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


def test_an_enrolment_in_the_day_texts_the_welcome_and_says_nothing_more(
    client: Any, session: Session, clinician: None
) -> None:
    with freeze_time(MIDDAY_IN_LONDON):
        _as_clinician(client)
        page = post_form(client, "/patients/new", FORM, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "Tom is enrolled; the welcome text asks for YES." in html
    assert "will go at" not in html
    assert session.scalars(select(OutboundMessage.kind)).all() == ["welcome"]


def test_a_bulk_upload_at_night_counts_the_held_welcomes(
    client: Any, session: Session, clinician: None
) -> None:
    csv_text = (
        "first_name,phone,timezone,quiet_hours\n"
        "Ada,+447911123401,Europe/London,21:00-07:30\n"
        "Ben,+16175550182,America/New_York,\n"  # 18:30 in New York: texted at once
    )
    with freeze_time(LATE_IN_LONDON):
        _as_clinician(client)
        page = post_form(
            client,
            "/patients/bulk",
            {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
            content_type="multipart/form-data",
            follow_redirects=True,
        )
    html = page.get_data(as_text=True)
    assert "Enrolled 2 patients; 1 welcome texts wait for the end of the patient" in html
    assert session.scalars(select(OutboundMessage.to_e164)).all() == ["+16175550182"]
