"""The inbound pipeline under database faults, and the clock tick's recovery of what it kept.

Faults are injected with engine events on the app's own engine (the error a driver raises
for a lock, a deadlock or a serialization failure), so every line of our code runs as in
production."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import (
    Alert,
    AuditEntry,
    Caregiver,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
)
from coachbot.runtime import Runtime
from coachbot.services import inbound
from coachbot.services.inbound.recovery import recover_failed_inbound
from coachbot.services.tick import run_clock_tick
from tests.support.builders import (
    MONDAY_0800_NEW_YORK,
    MONDAY_0830_NEW_YORK,
    make_caregiver,
    make_nudge,
    make_patient,
    make_sent_nudge,
)
from tests.support.twilio_signing import inbound_params, post_signed

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
T0 = MONDAY_0830_NEW_YORK
CAREGIVER = "+16175553456"


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A plain engine: reading between posts never holds SQLite's write lock."""
    engine = create_engine(database_url)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def _transient_error(engine: Engine) -> Exception:
    if engine.dialect.name == "postgresql":
        return psycopg.errors.SerializationFailure("could not serialize access")
    return sqlite3.OperationalError("database is locked")


class Fault:
    """Makes the first `times` statements starting with `prefix` fail with the driver's
    transient error (times=None: every one) until removed."""

    def __init__(self, engine: Engine, prefix: str, times: int | None = 1) -> None:
        self.engine, self.prefix, self.left = engine, prefix.upper(), times
        self.hits = 0
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(self.prefix):
            return
        if self.left is not None:
            if self.left <= 0:
                return
            self.left -= 1
        self.hits += 1
        raise _transient_error(self.engine)

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)


@pytest.fixture
def fault(runtime: Runtime) -> Iterator[Callable[..., Fault]]:
    made: list[Fault] = []

    def make(prefix: str, times: int | None = 1) -> Fault:
        made.append(Fault(runtime.engine, prefix, times))
        return made[-1]

    yield make
    for f in made:
        if event.contains(f.engine, "before_cursor_execute", f._before):
            f.remove()


def post(client: Any, sender: str, body: str, at: dt.datetime, sid: str | None = None) -> str:
    with freeze_time(at):
        response = post_signed(client, "/sms/inbound", inbound_params(sender, body, sid))
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def tick(runtime: Runtime, at: dt.datetime) -> None:
    run_clock_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, at)


def count(session: Session, model: type[Any], *where: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def only_inbound(session: Session) -> InboundMessage:
    session.expire_all()
    return session.scalars(select(InboundMessage)).one()


def texts_to(session: Session, number: str) -> list[OutboundMessage]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.to_e164 == number, OutboundMessage.kind == "reply")
            .order_by(OutboundMessage.id)
        )
    )


def planned_nudge(session: Session, patient: Patient, at: dt.datetime) -> Nudge:
    nudge = make_nudge(session, patient, due=at, track="exercise")
    session.commit()
    return nudge


def sent_nudge(session: Session, patient: Patient, track: str, at: dt.datetime) -> Nudge:
    nudge = make_sent_nudge(session, patient, sent_at=at, window=dt.timedelta(hours=6), track=track)
    session.commit()
    return nudge


# --- retries ------------------------------------------------------------------------------


def test_a_transient_error_is_retried_and_the_stop_is_applied_and_confirmed(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session, tracks={"sleep": "08:30"})
    failure = fault("UPDATE patients")
    answer = post(client, patient.phone_e164, "STOP", MONDAY_0800_NEW_YORK)
    assert failure.hits == 1
    assert "unsubscribed" in answer
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert only_inbound(session).outcome == "opt_out"
    # The 08:30 sleep nudge never goes out.
    tick(runtime, MONDAY_0800_NEW_YORK + dt.timedelta(minutes=31))
    assert count(session, Nudge, Nudge.state == NudgeState.SENT) == 0


def test_a_database_error_reading_a_duplicate_answer_is_never_a_500(
    client: Any, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session)
    params = inbound_params(patient.phone_e164, "HELP")
    first = post(client, patient.phone_e164, "HELP", T0, params["MessageSid"])
    assert "<Message>" in first
    # Twilio retries the message while the stored answer cannot be read, once, then always.
    fault("SELECT inbound_messages.id, inbound_messages.response_twiml")
    assert post(client, patient.phone_e164, "HELP", T0, params["MessageSid"]) == first
    fault("SELECT inbound_messages.id, inbound_messages.response_twiml", times=None)
    assert post(client, patient.phone_e164, "HELP", T0, params["MessageSid"]) == EMPTY
    assert count(session, InboundMessage) == 1
    assert only_inbound(session).outcome == "help"


# --- the fallback when every attempt fails --------------------------------------------------


def test_a_stop_that_keeps_failing_still_opts_out_and_is_confirmed_by_the_next_tick(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session, tracks={"sleep": "08:30"})
    later = planned_nudge(session, patient, T0 + dt.timedelta(hours=2))
    # Every run of the pipeline fails on its first write; the fallback's own write succeeds.
    failure = fault("UPDATE patients", times=inbound.ATTEMPTS)
    assert post(client, patient.phone_e164, "  Stop. ", MONDAY_0800_NEW_YORK) == EMPTY
    assert failure.hits == inbound.ATTEMPTS
    row = only_inbound(session)
    assert (row.outcome, row.patient_id) == (inbound.FAILED, patient.id)
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert session.get_one(Nudge, later.id).state == NudgeState.SKIPPED
    assert len(session.scalars(select(Alert).where(Alert.kind == AlertKind.OPT_OUT)).all()) == 1

    tick(runtime, MONDAY_0800_NEW_YORK + dt.timedelta(minutes=31))
    tick(runtime, MONDAY_0800_NEW_YORK + dt.timedelta(minutes=32))
    assert count(session, Nudge, Nudge.state == NudgeState.SENT) == 0  # never texted again
    (confirmation,) = texts_to(session, patient.phone_e164)  # exactly one, by the gateway
    assert (confirmation.template_id, confirmation.backend) == ("stop_confirmation", "console")
    assert "unsubscribed" in confirmation.body
    assert only_inbound(session).outcome == "opt_out"
    assert len(session.scalars(select(Alert).where(Alert.kind == AlertKind.OPT_OUT)).all()) == 1


def test_a_red_flag_that_keeps_failing_still_alerts_and_the_safety_text_follows(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session, quiet=(dt.time(7), dt.time(10)))  # safety text ignores it
    failure = fault("INSERT INTO outbound_messages", times=None)  # the reply's row, every run
    body = "I fell and hit my head, very confused"
    assert post(client, patient.phone_e164, body, T0) == EMPTY
    assert failure.hits == inbound.ATTEMPTS
    failure.remove()
    row = only_inbound(session)
    assert (row.outcome, row.patient_id) == (inbound.FAILED, patient.id)
    (alert,) = session.scalars(select(Alert).where(Alert.kind == AlertKind.RED_FLAG)).all()
    assert (alert.patient_id, alert.severity, alert.inbound_message_id) == (
        patient.id,
        "urgent",
        row.id,
    )

    tick(runtime, T0 + dt.timedelta(minutes=5))
    tick(runtime, T0 + dt.timedelta(minutes=6))
    assert count(session, Alert, Alert.kind == AlertKind.RED_FLAG) == 1  # not raised twice
    (safety,) = texts_to(session, patient.phone_e164)
    assert (safety.template_id, safety.backend) == ("red_flag", "console")
    assert only_inbound(session).outcome == "red_flag"


def test_when_even_the_fallback_fails_the_webhook_answers_200_and_logs_no_body(
    client: Any, session: Session, fault: Callable[..., Fault], caplog: pytest.LogCaptureFixture
) -> None:
    patient = make_patient(session)
    fault("INSERT INTO inbound_messages", times=None)
    assert post(client, patient.phone_e164, "I fell, confused", T0) == EMPTY
    assert count(session, InboundMessage) == 0
    assert "fell" not in caplog.text
    assert patient.phone_e164 not in caplog.text


# --- recovery -----------------------------------------------------------------------------


def test_an_answer_kept_as_failed_is_recorded_and_acknowledged_by_the_next_tick(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session)
    nudge = sent_nudge(session, patient, "sleep", T0)
    failure = fault("INSERT INTO adherence_records", times=None)
    assert post(client, patient.phone_e164, "7 hours", T0 + dt.timedelta(minutes=2)) == EMPTY
    failure.remove()
    assert only_inbound(session).outcome == inbound.FAILED

    tick(runtime, T0 + dt.timedelta(minutes=3))
    row = only_inbound(session)
    assert (row.outcome, row.nudge_id, row.patient_id) == ("value", nudge.id, patient.id)
    assert row.response_twiml == EMPTY  # what Twilio got, kept
    (ack,) = texts_to(session, patient.phone_e164)
    assert ack.backend == "console"
    assert (ack.template_id or "").startswith("ack.")


def test_a_late_coaching_reply_is_not_texted_in_quiet_hours_but_the_answer_counts(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session, quiet=(dt.time(8, 45), dt.time(10)))
    sent_nudge(session, patient, "sleep", T0)
    failure = fault("INSERT INTO adherence_records", times=None)
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(minutes=2))
    failure.remove()
    tick(runtime, T0 + dt.timedelta(minutes=20))  # 08:50 local: quiet hours
    assert only_inbound(session).outcome == "done"
    assert texts_to(session, patient.phone_e164) == []


def test_a_failed_row_is_recovered_by_one_clock_process_only(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session)
    failure = fault("INSERT INTO outbound_messages", times=None)
    post(client, patient.phone_e164, "HELP", T0)
    failure.remove()
    row_id = only_inbound(session).id
    args = (runtime.session_factory, runtime.library, runtime.settings, row_id)
    first = inbound.recover_failed(*args)
    assert first is not None
    assert first.message is not None
    assert first.message.template_id == "help"
    assert inbound.recover_failed(*args) is None  # claimed: a second clock gets nothing
    assert (
        recover_failed_inbound(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            T0 + dt.timedelta(minutes=1),
        )
        == 0
    )
    assert only_inbound(session).outcome == "help"


def test_a_recovery_that_keeps_failing_transiently_is_tried_again_next_tick(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    patient = make_patient(session)
    sent_nudge(session, patient, "diet", T0)
    failure = fault("INSERT INTO adherence_records", times=None)
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(minutes=1))
    tick(runtime, T0 + dt.timedelta(minutes=2))
    assert only_inbound(session).outcome == inbound.FAILED
    failure.remove()
    tick(runtime, T0 + dt.timedelta(minutes=3))
    assert only_inbound(session).outcome == "done"


def test_one_tick_drains_more_than_a_batch_of_kept_stops_before_any_nudge_goes(
    client: Any,
    runtime: Runtime,
    session: Session,
    fault: Callable[..., Fault],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the proof's database-faults scenario: the tick recovered one batch of kept
    texts, so with a longer backlog a STOP kept whole (even its fallback failed) waited
    while that same tick sent the patient a nudge."""
    monkeypatch.setattr("coachbot.services.inbound.recovery.BATCH", 2)
    due = T0 + dt.timedelta(minutes=5)
    patients = [make_patient(session, phone=f"+1617555{n:04d}") for n in range(5)]
    for patient in patients:
        planned_nudge(session, patient, due)
        # Three attempts and the protected fallback fail; the bare row is kept.
        failure = fault("INSERT INTO inbound_messages", times=4)
        post(client, patient.phone_e164, "STOP", T0)
        failure.remove()
    assert count(session, InboundMessage, InboundMessage.outcome == inbound.FAILED) == 5
    tick(runtime, due)
    assert count(session, InboundMessage, InboundMessage.outcome == inbound.FAILED) == 0
    assert count(session, Patient, Patient.status == PatientStatus.OPTED_OUT) == 5
    assert count(session, Nudge, Nudge.state.in_((NudgeState.SENT, NudgeState.SENDING))) == 0


# --- YES from a paused patient ------------------------------------------------------------


def test_a_paused_patients_yes_to_the_checkin_escalates_and_does_not_resume(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, tracks={"checkin": "08:30"}, status=PatientStatus.PAUSED)
    sent_nudge(session, patient, "checkin", T0)
    answer = post(client, patient.phone_e164, "yes", T0 + dt.timedelta(minutes=10))
    assert "Welcome back" not in answer
    assert "+16175550199" in answer  # the fixed safety text names the care team's number
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.PAUSED
    assert count(session, Alert, Alert.kind == AlertKind.RED_FLAG) == 1
    assert only_inbound(session).outcome == "red_flag"


@pytest.mark.parametrize("word", ["Yes", "sí", " YES! "])
def test_yes_does_not_resume_a_paused_patient(client: Any, session: Session, word: str) -> None:
    patient = make_patient(session, status=PatientStatus.PAUSED)
    assert post(client, patient.phone_e164, word, T0) == EMPTY
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.PAUSED


@pytest.mark.parametrize("word", ["START", "unstop"])
def test_start_and_unstop_resume_a_paused_patient(client: Any, session: Session, word: str) -> None:
    patient = make_patient(session, status=PatientStatus.PAUSED)
    assert "back on" in post(client, patient.phone_e164, word, T0)
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE


def test_an_opted_out_patients_yes_to_an_open_checkin_is_a_red_flag_first(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, tracks={"checkin": "08:30"}, status=PatientStatus.OPTED_OUT)
    sent_nudge(session, patient, "checkin", T0)
    answer = post(client, patient.phone_e164, "yes", T0 + dt.timedelta(minutes=10))
    assert "911" in answer  # the safety text, not the opt-in confirmation
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert count(session, Alert, Alert.kind == AlertKind.RED_FLAG) == 1


# --- a caregiver's STOP -------------------------------------------------------------------


def test_a_caregivers_stop_opts_out_only_the_caregiver_of_every_patient_then_silence(
    client: Any, session: Session
) -> None:
    maya = make_patient(session, first_name="Maya")
    tom = make_patient(session, first_name="Tom")
    caregiver = make_caregiver(session, maya, phone=CAREGIVER)
    make_caregiver(session, tom, phone=CAREGIVER)
    assert "unsubscribed" in post(client, CAREGIVER, "STOP", T0)
    session.expire_all()
    assert session.get_one(Caregiver, caregiver.id).status == PatientStatus.OPTED_OUT
    for patient in (maya, tom):
        assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE
    audited = session.scalars(
        select(AuditEntry.patient_id).where(AuditEntry.action == "caregiver.opt_out")
    ).all()
    assert set(audited) == {maya.id, tom.id}
    assert len(audited) == 2
    # Nothing more to that number: not to a second STOP, not to anything else.
    for later in ("STOP", "thanks, how is it going", "done"):
        assert post(client, CAREGIVER, later, T0 + dt.timedelta(minutes=1)) == EMPTY
    # HELP alone is always answered.
    assert "START" in post(client, CAREGIVER, "HELP", T0 + dt.timedelta(minutes=1))
    assert len(texts_to(session, CAREGIVER)) == 2
    # START from the number is answered again.
    assert "<Message>" in post(client, CAREGIVER, "START", T0 + dt.timedelta(minutes=2))


def test_a_caregivers_stop_that_keeps_failing_still_opts_them_out_and_is_confirmed_once(
    client: Any, runtime: Runtime, session: Session, fault: Callable[..., Fault]
) -> None:
    maya = make_patient(session, first_name="Maya")
    tom = make_patient(session, first_name="Tom")
    caregiver = make_caregiver(session, maya, phone=CAREGIVER)
    make_caregiver(session, tom, phone=CAREGIVER)
    failure = fault("INSERT INTO outbound_messages", times=inbound.ATTEMPTS)  # the reply's row
    assert post(client, CAREGIVER, "STOP", T0) == EMPTY
    assert failure.hits == inbound.ATTEMPTS
    row = only_inbound(session)
    assert (row.outcome, row.caregiver_id, row.patient_id) == (inbound.FAILED, caregiver.id, None)
    session.expire_all()
    # Applied by the fallback: the tick must not text them their check meanwhile.
    assert session.get_one(Caregiver, caregiver.id).status == PatientStatus.OPTED_OUT
    assert count(session, Alert, Alert.kind == AlertKind.OPT_OUT) == 2  # one per patient

    tick(runtime, T0 + dt.timedelta(minutes=5))
    tick(runtime, T0 + dt.timedelta(minutes=6))
    (confirmation,) = texts_to(session, CAREGIVER)
    assert confirmation.template_id == "stop_confirmation"
    assert count(session, Alert, Alert.kind == AlertKind.OPT_OUT) == 2


@pytest.mark.parametrize("word", ["STOP", "unsubscribe", " Cancel. ", "QUIT"])
def test_a_stop_from_an_unknown_number_gets_no_answer(
    client: Any, session: Session, word: str
) -> None:
    make_patient(session)
    assert post(client, "+16175559999", word, T0) == EMPTY
    assert only_inbound(session).outcome == "unknown_sender_opt_out"
    assert count(session, OutboundMessage) == 0
