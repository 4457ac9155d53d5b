"""Homework a clinician types goes into the rehab texts word for word, so it passes the
privacy lint everywhere it can be typed: the enrol form and edit page show a field error, the
bulk CSV reports the row, the CLI exits 2 naming the word; nothing is written."""

from __future__ import annotations

import io
from typing import Any

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.cli import main
from coachbot.models import HomeworkItem, Patient
from coachbot.runtime import Runtime
from coachbot.settings import Settings
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import NOW, make_staff, post_form, sign_in

BAD = "Cards for chemo brain, then dexamethasone"


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def clinician(client: Any, session: Session) -> int:
    user_id = make_staff(session, "ana@clinic.test")
    assert sign_in(client, "ana@clinic.test").status_code == 302
    return user_id


def test_the_enrol_form_shows_a_homework_field_error_and_enrols_nobody(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    page = post_form(
        client,
        "/patients/new",
        {
            "first_name": "Tom",
            "phone": "+16175550201",
            "timezone": "America/New_York",
            "language": "en",
            "track_rehab": "y",
            "times_rehab": "10:00",
            "homework": f"Walk 10 minutes\n{BAD}",
            "consent_how": "signed form",
            "consent_when": "2026-11-23T08:00",
        },
    )
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "remove &#34;chemo brain&#34;, &#34;dexamethasone&#34;" in html
    with runtime.session_factory() as s:
        assert s.scalars(select(Patient)).all() == []


def test_the_edit_page_shows_a_homework_field_error_and_saves_nothing(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    with runtime.session_factory() as s:
        patient = make_patient(s, phone="+16175550202", tracks={"rehab": "10:00"})
        patient.clinician_id = clinician
        s.commit()
        patient_id = patient.id
    page = post_form(
        client,
        f"/patients/{patient_id}/edit",
        {
            "first_name": "Maya",
            "phone": "+16175550202",
            "timezone": "America/New_York",
            "language": "en",
            "track_rehab": "y",
            "times_rehab": "10:00",
            "homework": BAD,
        },
    )
    assert page.status_code == 422
    assert "texts must not name a diagnosis, cause or drug" in page.get_data(as_text=True)
    with runtime.session_factory() as s:
        assert s.scalars(select(HomeworkItem)).all() == []


def test_the_bulk_upload_reports_the_row_with_the_offending_word(
    client: Any, clinician: int, runtime: Runtime
) -> None:
    csv_text = (
        "first_name,phone,timezone,tracks,homework\n"
        "Ada,+16175550203,America/New_York,rehab,Walk 10 minutes\n"
        "Ben,+16175550204,America/New_York,rehab,Word cards|Log the CAR-T week\n"
    )
    page = post_form(
        client,
        "/patients/bulk",
        {"csv_file": (io.BytesIO(csv_text.encode()), "patients.csv")},
        content_type="multipart/form-data",
    )
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "remove &#34;CAR-T&#34;" in html
    assert "<td>3</td>" in html
    with runtime.session_factory() as s:
        assert s.scalars(select(Patient)).all() == []


def test_the_cli_exits_2_with_the_offending_word(settings: Settings, runtime: Runtime) -> None:
    result = CliRunner().invoke(
        main,
        [
            "enroll",
            "--first-name",
            "Ana",
            "--phone",
            "+16175550205",
            "--tz",
            "America/Chicago",
            "--homework",
            BAD,
        ],
        env={"DATABASE_URL": settings.database_url, "SMS_BACKEND": "console"},
    )
    assert result.exit_code == 2
    assert (
        "error: homework: texts must not name a diagnosis, cause or drug (privacy):"
        ' remove "chemo brain", "dexamethasone"' in result.output
    )
    with runtime.session_factory() as s:
        assert s.scalars(select(Patient)).all() == []
