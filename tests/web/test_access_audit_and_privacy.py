"""Gaps a review found in the audit trail and the logs, each pinned here:

- opening a patient's edit form shows the record, so it is audited like the patient page;
- an attempt refused by role names the record it was aimed at, so it shows in its trail;
- an API token of the wrong role is a denied, audited attempt like any other;
- command-line reports that read patients' records are audited per patient;
- a database error never carries a message body or a phone number into the logs;
- a status callback naming a nudge with non-ASCII digits is ignored, not a 500.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from coachbot.cli import main
from coachbot.models import AuditEntry, Patient
from coachbot.runtime import Runtime
from coachbot.settings import Settings
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient
from tests.support.twilio_signing import inbound_params, post_signed
from tests.web.test_dashboard_support import make_staff, post_form, sign_in


def _trail(session: Session, patient_id: int) -> list[tuple[str, str, str]]:
    session.expire_all()
    return [
        (e.actor, e.action, e.outcome)
        for e in session.scalars(
            select(AuditEntry).where(AuditEntry.patient_id == patient_id).order_by(AuditEntry.id)
        )
    ]


@pytest.fixture
def maya(session: Session) -> Patient:
    owner = make_staff(session, "ana@clinic.test")
    make_staff(session, "ops@clinic.test", role="operator")
    patient = make_patient(session, first_name="Maya", phone="+16175554567")
    patient.clinician_id = owner
    session.commit()
    return patient


def test_opening_the_edit_form_is_an_audited_view(
    app: Any, session: Session, maya: Patient
) -> None:
    client = app.test_client()
    sign_in(client, "ana@clinic.test")
    page = client.get(f"/patients/{maya.id}/edit")
    assert page.status_code == 200
    assert "+16175554567" in page.get_data(as_text=True)
    assert ("patient.edit_view", "ok") in [
        (action, outcome) for _, action, outcome in _trail(session, maya.id)
    ]


def test_a_refusal_by_role_is_in_the_records_trail(
    app: Any, session: Session, maya: Patient
) -> None:
    client = app.test_client()
    sign_in(client, "ops@clinic.test")
    for path in (f"/patients/{maya.id}", f"/exports/patients/{maya.id}.csv"):
        assert client.get(path).status_code == 404
    denied = [(action, outcome) for _, action, outcome in _trail(session, maya.id)]
    assert ("page.show", "denied") in denied
    assert ("page.patient_export_csv", "denied") in denied


def test_an_api_token_of_the_wrong_role_is_a_denied_audited_attempt(
    app: Any, session: Session, maya: Patient
) -> None:
    ui = app.test_client()
    sign_in(ui, "ops@clinic.test")
    page = post_form(ui, "/account/tokens", {"name": "ops script"}).get_data(as_text=True)
    found = re.search(r'<code class="token">([^<]+)</code>', page)
    assert found, "the token page shows the new token once"
    answer = app.test_client().get(
        f"/api/v1/patients/{maya.id}", headers={"Authorization": f"Bearer {found.group(1)}"}
    )
    assert answer.status_code == 404
    trail = _trail(session, maya.id)
    assert [(action, outcome) for _, action, outcome in trail] == [("api.patient", "denied")]
    assert trail[0][0].startswith("staff:")


def test_command_line_reports_of_records_are_audited_per_patient(
    settings: Settings, session: Session
) -> None:
    first = make_patient(session, first_name="Ana", phone="+16175550111")
    second = make_patient(session, first_name="Ben", phone="+16175550122")
    env = {
        "DATABASE_URL": settings.database_url,
        "SMS_BACKEND": "console",
        "CLINIC_NAME": settings.clinic_name,
        "CLINIC_PHONE": settings.clinic_phone,
    }
    runner = CliRunner()
    for args in (
        ["adherence", "--patient", str(first.id)],
        ["schedule", "show", "--patient", str(first.id)],
        ["adherence"],
    ):
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
    assert _trail(session, first.id) == [
        ("cli", "cli.adherence", "ok"),
        ("cli", "cli.schedule_show", "ok"),
        ("cli", "cli.adherence", "ok"),
    ]
    assert _trail(session, second.id) == [("cli", "cli.adherence", "ok")]


def test_a_database_error_logs_neither_the_body_nor_the_number(
    client: Any, runtime: Runtime, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    patient = make_patient(session, phone="+16175552345")
    body = "I had a seizure last night and my dose was changed"

    def locked(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_MESSAGES"):
            raise sqlite3.OperationalError("database is locked")

    event.listen(runtime.engine, "before_cursor_execute", locked)
    caplog.set_level(logging.INFO)
    try:
        with freeze_time(MONDAY_0830_NEW_YORK):
            answer = post_signed(client, "/sms/inbound", inbound_params(patient.phone_e164, body))
    finally:
        event.remove(runtime.engine, "before_cursor_execute", locked)
    assert answer.status_code == 200
    assert "database is locked" in caplog.text  # the failure itself is logged...
    assert body not in caplog.text  # ...without what the patient wrote
    assert "+16175552345" not in caplog.text
    assert "seizure" not in caplog.text


@pytest.mark.parametrize("nudge", ["²", "١٢", "99999999999999999999", "-1"])
def test_a_status_callback_naming_an_odd_nudge_is_acknowledged_not_a_500(
    client: Any, nudge: str
) -> None:
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    answer = post_signed(client, "/sms/status?nudge=" + quote(nudge), params)
    assert answer.status_code == 204
