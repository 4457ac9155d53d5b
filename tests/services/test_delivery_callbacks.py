"""Status callbacks: forward only, first final status wins, each distinct event stored once,
none lost when it outruns the send record, carrier error codes acted on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import Alert, DeliveryEvent, Nudge, OutboundMessage, Patient
from coachbot.runtime import Runtime
from coachbot.services.delivery import StatusCallback, handle_status
from coachbot.services.tick import run_tick
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient

NOW = MONDAY_0830_NEW_YORK


class Sent:
    """Plain values (not ORM rows) so reading them opens no transaction on the test session."""

    def __init__(self, nudge: Nudge, message: OutboundMessage) -> None:
        self.id, self.patient_id = nudge.id, nudge.patient_id
        self.message_id, self.provider_sid = message.id, message.provider_sid


def sent_nudge(runtime: Runtime, session: Session) -> tuple[Sent, Sent]:
    make_patient(session)
    run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, NOW)
    session.expire_all()
    nudge = session.scalars(select(Nudge).where(Nudge.due_at == NOW)).one()
    message = session.scalars(select(OutboundMessage)).one()
    sent = Sent(nudge, message)
    # SQLite: end the read so the test's session holds no lock against the service.
    session.rollback()
    return sent, sent


def callback(runtime: Runtime, sid: str, status: str, code: str | None = None) -> None:
    handle_status(runtime.session_factory, StatusCallback(sid, status, code), NOW)


def test_statuses_only_move_forward_and_the_first_final_one_wins(
    runtime: Runtime, session: Session
) -> None:
    nudge, message = sent_nudge(runtime, session)
    sid = message.provider_sid or ""
    for status in ("sending", "delivered", "sent", "queued", "undelivered", "failed"):
        callback(runtime, sid, status)
    session.expire_all()
    assert session.get_one(OutboundMessage, message.message_id).delivery_status == "delivered"
    assert session.get_one(Nudge, nudge.id).state == NudgeState.DELIVERED
    session.rollback()
    callback(runtime, sid, "read")
    session.expire_all()
    assert session.get_one(OutboundMessage, message.message_id).delivery_status == "read"


def test_a_redelivered_callback_is_stored_once(runtime: Runtime, session: Session) -> None:
    _, message = sent_nudge(runtime, session)
    for _ in range(3):
        callback(runtime, message.provider_sid or "", "delivered")
    assert session.scalar(select(func.count(DeliveryEvent.id))) == 1


def test_a_callback_that_arrives_before_the_send_is_recorded_is_applied_later(
    runtime: Runtime, session: Session
) -> None:
    class FastProvider:
        """Twilio's callback lands while our send call has not yet returned."""

        name = "console"

        def send(self, sms: object) -> object:
            from coachbot.sms.gateway import SendReceipt

            callback(runtime, "SMearly", "delivered")
            return SendReceipt("SMearly", "queued")

    make_patient(session)
    run_tick(runtime.session_factory, FastProvider(), runtime.library, runtime.settings, NOW)  # type: ignore[arg-type]
    session.expire_all()
    nudge = session.scalars(select(Nudge).where(Nudge.due_at == NOW)).one()
    assert (nudge.state, nudge.provider_sid) == (NudgeState.DELIVERED, "SMearly")
    message = session.scalars(select(OutboundMessage)).one()
    assert message.delivery_status == "delivered"


@pytest.mark.parametrize("code", ["30005", "30006"])
def test_an_undelivered_callback_with_an_invalid_number_code_pauses_and_alerts(
    runtime: Runtime, session: Session, code: str
) -> None:
    nudge, message = sent_nudge(runtime, session)
    callback(runtime, message.provider_sid or "", "undelivered", code)
    session.expire_all()
    assert session.get_one(Nudge, nudge.id).state == NudgeState.FAILED
    assert session.get_one(Nudge, nudge.id).state_reason == code
    assert session.get_one(Patient, nudge.patient_id).status == PatientStatus.PAUSED
    alert = session.scalars(select(Alert)).one()
    assert (alert.kind, alert.detail) == (AlertKind.INVALID_NUMBER, f"code_{code}")


def test_an_undelivered_30003_callback_retries_the_nudge_later_then_gives_up(
    runtime: Runtime, session: Session
) -> None:
    nudge, message = sent_nudge(runtime, session)
    when = NOW
    sid = message.provider_sid or ""
    for attempt in range(1, 4):
        handle_status(runtime.session_factory, StatusCallback(sid, "undelivered", "30003"), when)
        session.expire_all()
        row = session.get_one(Nudge, nudge.id)
        if attempt == 3:
            assert (row.state, row.state_reason) == (NudgeState.FAILED, "30003")
            break
        assert (row.state, row.send_at) == (NudgeState.PLANNED, when + dt.timedelta(minutes=30))
        when = row.send_at
        session.rollback()
        run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, when)
        session.expire_all()
        sid = session.get_one(Nudge, nudge.id).provider_sid or ""
        session.rollback()
    assert session.scalar(select(func.count(OutboundMessage.id))) == 3
    assert session.get_one(Patient, nudge.patient_id).status == PatientStatus.ACTIVE


def test_a_callback_naming_another_nudge_cannot_rewrite_it(
    runtime: Runtime, session: Session
) -> None:
    nudge, _ = sent_nudge(runtime, session)
    handle_status(
        runtime.session_factory,
        StatusCallback("SMforged", "failed", "30006", nudge_id=nudge.id),
        NOW,
    )
    session.expire_all()
    assert session.get_one(Nudge, nudge.id).state == NudgeState.SENT
    assert session.get_one(Patient, nudge.patient_id).status == PatientStatus.ACTIVE
