"""One check at the gateway boundary: every send path (welcome, held welcome, nudges,
follow-ups, re-engagement, caregiver texts, recovered replies, pages to staff, a number
changed on the edit page) refuses a suppressed number, with the real twilio client against
the loopback Twilio server, which must never hear of that number. Twilio's 21610 suppresses
the number as a STOP does."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import RenderedMessage
from coachbot.db import make_engine, make_session_factory
from coachbot.domain.provider_errors import Outcome
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import Alert, ConsentEvent, Nudge, OutboundMessage, Patient
from coachbot.runtime import Runtime, build_runtime
from coachbot.services import consent
from coachbot.services.care import CarePlan, PatientChanges, edit_patient
from coachbot.services.delivery import StatusCallback, handle_status
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient
from coachbot.services.messaging import send_text
from coachbot.services.tick import run_tick
from coachbot.services.welcomes import send_due_welcomes
from coachbot.settings import Settings
from coachbot.sms.console import ConsoleGateway
from coachbot.sms.gateway import OutgoingSms, Pacing, SendFailure, SendReceipt, open_batch_sender
from coachbot.sms.suppression import SuppressionGuard
from tests.support.builders import MONDAY_0830_NEW_YORK, make_caregiver, make_nudge, make_patient
from tests.support.fake_twilio import FakeTwilio, Fault
from tests.support.twilio_signing import AUTH_TOKEN
from tests.web.test_dashboard_support import make_staff

ACCOUNT_SID = "AC" + "c3" * 16
FROM_NUMBER = "+16175550100"
STOPPED = "+16175550160"
CONTROL = "+16175550161"
NOW = MONDAY_0830_NEW_YORK


@pytest.fixture
def twilio(settings: Settings) -> Iterator[tuple[Runtime, FakeTwilio]]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        runtime = build_runtime(
            dataclasses.replace(
                settings,
                sms_backend="twilio",
                twilio_account_sid=ACCOUNT_SID,
                twilio_from_number=FROM_NUMBER,
                twilio_api_base_url=fake.base_url,
                twilio_timeout_seconds=5.0,
            )
        )
        yield runtime, fake
        runtime.close()


def _suppress(runtime: Runtime, number: str) -> None:
    with runtime.session_factory() as s:
        consent.suppress(s, number, source="keyword", text="STOP", now=NOW - dt.timedelta(days=1))
        s.commit()


def _tick(runtime: Runtime, at: dt.datetime = NOW) -> None:
    run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, at)


def _message(runtime: Runtime, template: str, **variables: object) -> RenderedMessage:
    values: dict[str, object] = {
        "first_name": "Maya",
        "clinic_name": "Riverside",
        "clinic_phone": "+16175550199",
        "emergency_number": "911",
    }
    values.update(variables)
    return runtime.library.render(template, "en", values, seed="1")


def test_a_nudge_to_a_suppressed_number_is_skipped_and_never_reaches_twilio(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    with runtime.session_factory() as s:
        stopped = make_patient(s, phone=STOPPED, tracks={"sleep": "08:30"})
        make_patient(s, phone=CONTROL, tracks={"sleep": "08:30"})
        stopped_id = stopped.id
    _suppress(runtime, STOPPED)

    _tick(runtime)

    assert fake.count_by_to() == {CONTROL: 1}
    with runtime.session_factory() as s:
        nudge = s.scalars(
            select(Nudge).where(Nudge.patient_id == stopped_id, Nudge.due_at == NOW)
        ).one()
        assert (nudge.state, nudge.state_reason, nudge.sent_at) == (
            NudgeState.SKIPPED,
            "suppressed",
            None,
        )
        assert (
            s.scalar(
                select(func.count())
                .select_from(OutboundMessage)
                .where(OutboundMessage.to_e164 == STOPPED)
            )
            == 0
        )
        # The guard's refusal is not the carrier's: no alert, the record is left as it was.
        assert s.scalar(select(func.count()).select_from(Alert)) == 0
        assert s.get_one(Patient, stopped_id).status == PatientStatus.ACTIVE


@pytest.mark.parametrize("template", ["followup.sleep", "reengage"])
def test_a_followup_or_reengagement_to_a_suppressed_number_is_skipped(
    twilio: tuple[Runtime, FakeTwilio], template: str
) -> None:
    runtime, fake = twilio
    with runtime.session_factory() as s:
        patient = make_patient(s, phone=STOPPED, tracks={"sleep": "20:00"})
        make_nudge(s, patient, due=NOW, key=f"{template}:1", template_id=template)
        s.commit()
    _suppress(runtime, STOPPED)

    _tick(runtime)

    assert fake.count_by_to() == {}
    with runtime.session_factory() as s:
        row = s.scalars(select(Nudge).where(Nudge.template_id == template)).one()
        assert (row.state, row.state_reason) == (NudgeState.SKIPPED, "suppressed")


def _request(phone: str) -> EnrollmentRequest:
    return EnrollmentRequest(
        first_name="Tom",
        phone=phone,
        timezone="America/New_York",
        tracks="sleep",
        clinician_email="ana@clinic.test",
    )


def test_the_welcome_to_a_suppressed_number_is_not_sent(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    _suppress(runtime, STOPPED)
    with runtime.session_factory() as s:
        make_staff(s, "ana@clinic.test")
    for phone in (STOPPED, CONTROL):
        enroll_patient(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            _request(phone),
            now=NOW,
            actor="test",
        )
    assert fake.count_by_to() == {CONTROL: 1}


def test_a_held_welcome_to_a_number_suppressed_meanwhile_is_not_sent(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    night = NOW + dt.timedelta(hours=14)  # 22:30 in New York: the welcome is held
    with runtime.session_factory() as s:
        make_staff(s, "ana@clinic.test")
    patient = enroll_patient(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        _request(STOPPED),
        now=night,
        actor="test",
    )
    assert patient.welcome_due_at is not None
    due = patient.welcome_due_at
    _suppress(runtime, STOPPED)

    send_due_welcomes(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, due
    )

    assert fake.count_by_to() == {}


def test_a_number_changed_on_the_edit_page_to_a_suppressed_one_gets_no_welcome(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    with runtime.session_factory() as s:
        patient = make_patient(s, phone=CONTROL, tracks={"sleep": "20:00"})
        patient_id = patient.id
    _suppress(runtime, STOPPED)
    edit_patient(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        patient_id,
        PatientChanges("Maya", STOPPED, "America/New_York", "en", None, None, False),
        CarePlan({"sleep": "20:00"}, ()),
        now=NOW,
        actor="staff:1",
    )
    _tick(runtime, NOW + dt.timedelta(hours=12))

    assert fake.count_by_to() == {}
    with runtime.session_factory() as s:
        assert s.get_one(Patient, patient_id).status == PatientStatus.PENDING_CONSENT


def test_a_caregiver_text_or_a_coaching_reply_to_a_suppressed_number_is_refused(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    caregiver = "+16175550170"
    with runtime.session_factory() as s:
        patient = make_patient(s, phone=CONTROL)
        make_caregiver(s, patient, phone=caregiver)
        patient_id = patient.id
    _suppress(runtime, caregiver)
    with runtime.session_factory() as s:
        for template in ("not_understood", "optin_confirmed"):
            row = send_text(
                s,
                runtime.gateway,
                patient_id=patient_id,
                to_e164=caregiver,
                message=_message(runtime, template),
                kind="reply",
                now=NOW,
                status_callback=None,
            )
            assert (row.delivery_status, row.error_code, row.provider_sid) == (
                "failed",
                "suppressed",
                None,
            )
        s.commit()
    assert fake.count_by_to() == {}


@pytest.mark.parametrize("template", ["help", "stop_confirmation", "revocation_paused", "red_flag"])
def test_compliance_and_safety_replies_still_reach_a_suppressed_number(
    twilio: tuple[Runtime, FakeTwilio], template: str
) -> None:
    runtime, fake = twilio
    _suppress(runtime, STOPPED)
    with runtime.session_factory() as s:
        row = send_text(
            s,
            runtime.gateway,
            patient_id=None,
            to_e164=STOPPED,
            message=_message(runtime, template),
            kind="reply",
            now=NOW,
            status_callback=None,
        )
        s.commit()
        assert row.provider_sid is not None
    assert fake.count_by_to() == {STOPPED: 1}


def test_any_other_send_such_as_a_page_to_staff_is_refused_at_the_gateway(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    _suppress(runtime, STOPPED)
    with pytest.raises(SendFailure) as refused:
        runtime.gateway.send(OutgoingSms(to=STOPPED, body="Page: patient 4 needs a call"))
    assert refused.value.outcome is Outcome.OPTED_OUT
    receipt = runtime.gateway.send(OutgoingSms(to=CONTROL, body="Page: patient 4 needs a call"))
    assert receipt.provider_sid
    assert fake.count_by_to() == {CONTROL: 1}


def test_a_21610_at_send_time_suppresses_the_number_for_every_record(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    with runtime.session_factory() as s:
        first = make_patient(s, phone=STOPPED, tracks={"sleep": "08:30"})
        other = make_patient(s, phone=CONTROL, tracks={"sleep": "20:00"})
        make_caregiver(s, other, phone=STOPPED)
        first_id, other_id = first.id, other.id
    fake.inject(Fault.unsubscribed(), to=STOPPED)

    _tick(runtime)

    with runtime.session_factory() as s:
        assert consent.is_suppressed(s, STOPPED)
        assert s.get_one(Patient, first_id).status == PatientStatus.OPTED_OUT
        events = s.scalars(
            select(ConsentEvent.event).where(ConsentEvent.number_e164 == STOPPED)
        ).all()
        assert events == ["carrier_21610", "suppression_added"]
        # The same number as another patient's caregiver: nothing goes there either.
        row = send_text(
            s,
            runtime.gateway,
            patient_id=other_id,
            to_e164=STOPPED,
            message=_message(runtime, "not_understood"),
            kind="reply",
            now=NOW,
            status_callback=None,
        )
        s.commit()
        assert row.error_code == "suppressed"
    assert fake.count_by_to().get(STOPPED, 0) == 0


def test_a_21610_in_a_status_callback_for_a_welcome_suppresses_the_number(
    twilio: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio
    with runtime.session_factory() as s:
        make_staff(s, "ana@clinic.test")
    enroll_patient(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        _request(STOPPED),
        now=NOW,
        actor="test",
    )
    (welcome,) = fake.sent_to(STOPPED)
    handle_status(runtime.session_factory, StatusCallback(welcome.sid, "undelivered", "21610"), NOW)
    with runtime.session_factory() as s:
        assert consent.is_suppressed(s, STOPPED)


def test_when_the_list_cannot_be_read_nothing_is_sent(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broken: sessionmaker[Session] = make_session_factory(
        make_engine("sqlite:////nonexistent-directory/coachbot.db")
    )
    guard = SuppressionGuard(ConsoleGateway(), consent.suppression_reader(broken))
    with pytest.raises(SendFailure) as held:
        guard.send(OutgoingSms(to=CONTROL, body="hello"))
    assert held.value.outcome is Outcome.RETRY
    with open_batch_sender(guard, Pacing()) as send:
        results = send([OutgoingSms(to=CONTROL, body="a"), OutgoingSms(to=STOPPED, body="b")], None)
    assert isinstance(results[0], SendFailure)
    assert results[0].outcome is Outcome.RETRY
    assert results[1] is None
    # The warning says why, never which numbers were looked up.
    assert "suppression list unreadable" in caplog.text
    assert "OperationalError" in caplog.text
    assert CONTROL[-7:] not in caplog.text
    assert STOPPED[-7:] not in caplog.text


def test_a_batch_keeps_its_order_and_reports_each_result_at_its_own_index(
    runtime: Runtime,
) -> None:
    _suppress(runtime, STOPPED)
    seen: list[tuple[int, str]] = []
    batch = [
        OutgoingSms(to=STOPPED, body="a"),
        OutgoingSms(to=CONTROL, body="b"),
        OutgoingSms(to=STOPPED, body="c"),
        OutgoingSms(to="+16175550162", body="d"),
    ]

    def hook(index: int, result: SendReceipt | SendFailure) -> None:
        seen.append((index, type(result).__name__))

    with open_batch_sender(runtime.gateway, Pacing()) as send:
        results = send(batch, hook)
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["SendFailure", "SendReceipt", "SendFailure", "SendReceipt"]
    assert sorted(seen) == [
        (0, "SendFailure"),
        (1, "SendReceipt"),
        (2, "SendFailure"),
        (3, "SendReceipt"),
    ]
