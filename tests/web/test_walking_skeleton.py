"""The whole loop once, end to end, through the CLI and signed HTTP posts: enrol, opt in,
tick, nudge, reply DONE, adherence — with the console backend and with the real twilio
client talking to a loopback Twilio-compatible server."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import select

from coachbot.app import create_app
from coachbot.cli import main
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import AdherenceRecord, Nudge, OutboundMessage, Patient
from coachbot.runtime import build_runtime
from coachbot.settings import Settings
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN, inbound_params, post_signed

ACCOUNT_SID = "AC" + "a1" * 16
FROM_NUMBER = "+16175550100"
PATIENT_PHONE = "+16175550142"


def _env_for(settings: Settings) -> dict[str, str]:
    env = {
        "DATABASE_URL": settings.database_url,
        "SMS_BACKEND": settings.sms_backend,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "CLINIC_NAME": settings.clinic_name,
        "CLINIC_PHONE": settings.clinic_phone,
    }
    if settings.sms_backend == "twilio":
        env |= {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE_URL": settings.twilio_api_base_url or "",
        }
    return env


@pytest.fixture(params=["console", "twilio"])
def backend(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Settings, Any]]:
    if request.param == "console":
        yield settings, None
        return
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        yield (
            dataclasses.replace(
                settings,
                sms_backend="twilio",
                twilio_account_sid=ACCOUNT_SID,
                twilio_from_number=FROM_NUMBER,
                twilio_api_base_url=fake.base_url,
                twilio_timeout_seconds=5.0,
            ),
            fake,
        )


def _cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_enrol_opt_in_tick_reply_done_and_see_adherence(backend: tuple[Settings, Any]) -> None:
    settings, fake = backend
    env = _env_for(settings)
    runtime = build_runtime(settings)
    client = create_app(runtime=runtime).test_client()

    # 08:00 in New York, as the send window opens: enrol with a sleep check at 08:30.
    with freeze_time("2026-11-23T13:00:00Z"):
        patient_id = int(
            _cli(
                env,
                "enroll",
                "--first-name",
                "Maya",
                "--phone",
                "(617) 555-0142",
                "--tz",
                "America/New_York",
                "--tracks",
                "sleep",
                "--times",
                "08:30",
            ).strip()
        )
    with runtime.session_factory() as s:
        patient = s.get_one(Patient, patient_id)
        assert patient.phone_e164 == PATIENT_PHONE
        assert patient.status == PatientStatus.PENDING_CONSENT
        welcome = s.scalars(select(OutboundMessage)).one()
        assert welcome.kind == "welcome"
        assert "YES" in welcome.body
        assert welcome.provider_sid is not None

    # Before the YES nothing else is sent, even at the scheduled time.
    assert "sent=0" in _cli(env, "tick", "--now", "2026-11-23T13:30:00Z")

    with freeze_time("2026-11-23T13:05:00Z"):
        answer = post_signed(client, "/sms/inbound", inbound_params(PATIENT_PHONE, "Yes"))
    assert answer.status_code == 200
    assert "<Message>" in answer.get_data(as_text=True)
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.ACTIVE

    assert "sent=1" in _cli(env, "tick", "--now", "2026-11-23T13:30:00Z")
    # A second tick at the same instant sends nothing more.
    assert "sent=0" in _cli(env, "tick", "--now", "2026-11-23T13:30:05Z")
    with runtime.session_factory() as s:
        nudge = s.scalars(select(Nudge)).one()
        assert nudge.state == NudgeState.SENT
        assert nudge.track == "sleep"
        assert nudge.provider_sid is not None

    with freeze_time("2026-11-23T13:40:00Z"):
        reply = post_signed(client, "/sms/inbound", inbound_params(PATIENT_PHONE, "DONE"))
    assert reply.status_code == 200
    assert "<Message>" in reply.get_data(as_text=True)
    with runtime.session_factory() as s:
        record = s.scalars(select(AdherenceRecord)).one()
        assert (record.nudge_id, record.outcome) == (nudge.id, "done")

    report = json.loads(
        _cli(
            env,
            "adherence",
            "--patient",
            str(patient_id),
            "--json",
            "--now",
            "2026-11-23T23:00:00Z",
        )
    )
    (track,) = report["patients"][0]["tracks"]
    assert track["track"] == "sleep"
    assert (track["sent"], track["done"], track["skipped"], track["missed"]) == (1, 1, 0, 0)
    assert track["last_reply_at"].startswith("2026-11-23T13:40")

    if fake is not None:
        # The real twilio client sent the welcome and the nudge to the loopback server.
        assert fake.count_by_to()[PATIENT_PHONE] == 2
    runtime.close()
