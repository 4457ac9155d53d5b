"""A caregiver's texts through the signed webhook, on a real database: their own YES and STOP,
answers to their checks (baseline, concerns paged), red flags on every patient they watch,
"Which person?", and retried webhooks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import (
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    InboundMessage,
    Nudge,
    Patient,
)
from coachbot.runtime import Runtime
from coachbot.services.dispatch import dispatch_due, plan_nudges
from coachbot.services.inbound import InboundSms, handle_inbound
from coachbot.services.tick import TickSummary
from tests.support import inbound_webhook
from tests.support.builders import make_caregiver, make_patient, make_sent_caregiver_check
from tests.support.inbound_webhook import (
    CAREGIVER,
    EMPTY,
    MINUTE,
    T0,
    alerts,
    count,
    last_inbound,
    ledger,
    outbound_to,
    post,
    suppressed,
    text_of,
)
from tests.support.twilio_signing import inbound_params, new_message_sid, post_signed
from tests.web.test_dashboard_support import recorded_statements

# The pipeline tests' own view of the database: a plain engine, so reading between two posts
# never holds SQLite's write lock against the webhook (nor an old snapshot).
session = inbound_webhook.session

CHECK_AT = T0 - dt.timedelta(hours=2)  # today's check went out before the tests' texts


def say(client: Any, body: str, at: dt.datetime = T0, number: str = CAREGIVER) -> str:
    return text_of(post(client, number, body, at))


def check_of(session: Session, check_id: int) -> CaregiverCheck:
    session.expire_all()
    return session.get_one(CaregiverCheck, check_id)


def baseline_of(session: Session, patient: Patient) -> int | None:
    session.expire_all()
    return session.scalars(
        select(CaregiverLink.baseline_score).where(CaregiverLink.patient_id == patient.id)
    ).one()


def ana_and_bo(session: Session) -> tuple[Patient, Patient, Caregiver]:
    """Two patients, Ana and Bo, watched by one caregiver."""
    ana = make_patient(session, first_name="Ana")
    bo = make_patient(session, first_name="Bo")
    caregiver = make_caregiver(session, ana, phone=CAREGIVER)
    make_caregiver(session, bo, phone=CAREGIVER)
    return ana, bo, caregiver


# --- consent ------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["YES", "si", "Sí", "START"])
def test_a_pending_caregivers_yes_makes_them_active_and_is_confirmed(
    client: Any, session: Session, word: str
) -> None:
    patient = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(
        session, patient, phone=CAREGIVER, status=PatientStatus.PENDING_CONSENT
    )
    answer = say(client, word)
    assert "Thank you!" in answer
    assert "Ana" in answer
    session.expire_all()
    joined = session.get_one(Caregiver, caregiver.id)
    assert (joined.status, joined.opted_in_at) == (PatientStatus.ACTIVE, T0)
    assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE
    assert ("opt_in", word) in ledger(session, CAREGIVER)
    row = last_inbound(session)
    assert (row.caregiver_id, row.is_proxy, row.outcome) == (
        caregiver.id,
        True,
        "caregiver_opt_in",
    )


def test_a_spanish_caregiver_is_answered_in_spanish(client: Any, session: Session) -> None:
    patient = make_patient(session, first_name="Ana")
    make_caregiver(
        session, patient, phone=CAREGIVER, language="es", status=PatientStatus.PENDING_CONSENT
    )
    assert "Gracias" in say(client, "SI")


def test_a_pending_caregivers_other_text_gets_the_yes_request_once(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, first_name="Ana")
    make_caregiver(session, patient, phone=CAREGIVER, status=PatientStatus.PENDING_CONSENT)
    first = say(client, "who is this?")
    assert "Reply YES" in first
    assert "Ana" in first
    assert say(client, "hello??", T0 + MINUTE) == EMPTY
    assert last_inbound(session).needs_reading is True
    assert count(session, CaregiverCheck) == 0


def test_a_caregivers_stop_ends_only_their_texts_and_the_patient_still_gets_nudges(
    client: Any, session: Session, runtime: Runtime
) -> None:
    patient = make_patient(session, first_name="Ana", tracks={"sleep": "08:35"})
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    assert "unsubscribed" in say(client, "Stop")
    session.expire_all()
    assert session.get_one(Caregiver, caregiver.id).status == PatientStatus.OPTED_OUT
    assert suppressed(session, CAREGIVER)
    assert not suppressed(session, patient.phone_e164)
    assert [e for e, _ in ledger(session, CAREGIVER)] == ["suppression_added", "opt_out"]
    # Nothing more to the caregiver: not a second STOP, not an answer.
    assert say(client, "STOP", T0 + MINUTE) == EMPTY
    assert say(client, "3", T0 + MINUTE) == EMPTY
    # The patient's own nudge still goes out at 08:35.
    plan_nudges(runtime.session_factory, T0)
    at = T0 + 5 * MINUTE
    dispatch_due(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, at,
        TickSummary(),
    )  # fmt: skip
    session.expire_all()
    states = session.scalars(select(Nudge.state).where(Nudge.patient_id == patient.id)).all()
    assert NudgeState.SENT in states
    assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE


@pytest.mark.parametrize("word", ["STOP", "stpo", "Cancelar", "BASTA", "unsubscribe"])
def test_every_stop_word_opts_the_caregiver_out(client: Any, session: Session, word: str) -> None:
    patient = make_patient(session)
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    say(client, word)
    session.expire_all()
    assert session.get_one(Caregiver, caregiver.id).status == PatientStatus.OPTED_OUT
    assert suppressed(session, CAREGIVER)


def test_help_from_a_caregiver_gets_the_help_text(client: Any, session: Session) -> None:
    patient = make_patient(session)
    make_caregiver(session, patient, phone=CAREGIVER, status=PatientStatus.PENDING_CONSENT)
    assert "STOP" in say(client, "HELP")


# --- answers ------------------------------------------------------------------------------


def test_the_first_count_is_the_baseline_and_a_lower_one_is_urgent_and_paged_once(
    client: Any, session: Session, runtime: Runtime
) -> None:
    patient = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    first = make_sent_caregiver_check(session, patient, caregiver, sent_at=CHECK_AT)
    assert "Noted for Ana" in say(client, "4")
    assert baseline_of(session, patient) == 4
    answered = check_of(session, first.id)
    assert (answered.state, answered.score, answered.alert_id) == ("answered", 4, None)
    assert answered.inbound_message_id == last_inbound(session).id

    next_day = CHECK_AT + dt.timedelta(days=1)
    second = make_sent_caregiver_check(session, patient, caregiver, sent_at=next_day)
    sms = InboundSms(new_message_sid(), CAREGIVER, "+16175550100", "only 2 today")
    woken: list[str] = []
    for _ in range(2):  # Twilio retries the same MessageSid: nothing happens twice
        with freeze_time(next_day + MINUTE):
            twiml = handle_inbound(
                runtime.session_factory,
                runtime.library,
                runtime.settings,
                sms,
                next_day + MINUTE,
                after_commit=lambda: woken.append("pager"),
            )
        assert "let Riverside Recovery Clinic know" in twiml
    assert woken == ["pager"]
    (alert,) = alerts(session, AlertKind.CAREGIVER_CONCERN)
    assert (alert.patient_id, alert.severity, alert.detail) == (
        patient.id,
        "urgent",
        "below_baseline",
    )
    answered = check_of(session, second.id)
    assert (answered.score, answered.alert_id) == (2, alert.id)
    assert baseline_of(session, patient) == 4  # set once, by the first count


def test_worse_in_spanish_with_a_typo_is_a_concern_even_with_no_check_open(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, first_name="Ana")
    make_caregiver(session, patient, phone=CAREGIVER, language="es")
    answer = say(client, "esta peor hoy, muy preocupda")
    assert "Gracias por avisarnos" in answer
    (alert,) = alerts(session, AlertKind.CAREGIVER_CONCERN)
    assert alert.patient_id == patient.id
    assert "caregiver_worried" in (alert.detail or "")


def test_not_worse_is_no_concern(client: Any, session: Session) -> None:
    patient = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    check = make_sent_caregiver_check(session, patient, caregiver, sent_at=CHECK_AT)
    assert "Noted for Ana" in say(client, "not worse, 4 of 4")
    assert alerts(session, AlertKind.CAREGIVER_CONCERN) == []
    assert check_of(session, check.id).concern == "ok"


def test_a_2_to_have_you_seen_is_a_concern_and_a_1_is_fine(client: Any, session: Session) -> None:
    ana = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(session, ana, phone=CAREGIVER)
    seen = make_sent_caregiver_check(session, ana, caregiver, sent_at=CHECK_AT, kind="seen_today")
    assert "let Riverside" in say(client, "2")
    (alert,) = alerts(session, AlertKind.CAREGIVER_CONCERN)
    assert (alert.detail, check_of(session, seen.id).concern) == ("seen_today_worried", "worried")
    later = make_sent_caregiver_check(
        session, ana, caregiver, sent_at=CHECK_AT + dt.timedelta(days=1), kind="seen_today"
    )
    # Not a 1 or a 2: the question again, not the daily check's 0-4.
    assert "Have you seen Ana today?" in say(client, "lunch", T0 + dt.timedelta(days=1))
    assert "Noted" in say(client, "1", T0 + dt.timedelta(days=1, minutes=1))
    assert check_of(session, later.id).concern == "ok"
    assert len(alerts(session, AlertKind.CAREGIVER_CONCERN)) == 1


def test_an_answer_we_cannot_read_is_not_understood_and_a_person_reads_it(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    check = make_sent_caregiver_check(session, patient, caregiver, sent_at=CHECK_AT)
    assert "did not understand" in say(client, "we went to the park")
    row = last_inbound(session)
    assert (row.outcome, row.needs_reading) == ("caregiver_not_understood", True)
    assert check_of(session, check.id).state == "sent"


def test_the_not_understood_help_names_the_range_the_programme_asked_for(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    make_sent_caregiver_check(session, patient, caregiver, sent_at=CHECK_AT, items=3)
    reply = say(client, "we went to the park")
    assert "reply 0-3," in reply
    assert "0-4" not in reply


# --- several patients ---------------------------------------------------------------------


def test_a_red_flag_from_a_caregiver_of_two_alerts_on_both_at_once(
    client: Any, session: Session
) -> None:
    ana, bo, _ = ana_and_bo(session)
    assert "911" in say(client, "she had a seizure")
    assert sorted(a.patient_id or 0 for a in alerts(session, AlertKind.RED_FLAG)) == [ana.id, bo.id]
    assert {a.severity for a in alerts(session, AlertKind.RED_FLAG)} == {"urgent"}


def test_which_person_round_trip_applies_the_held_answer(client: Any, session: Session) -> None:
    ana, bo, caregiver = ana_and_bo(session)
    make_sent_caregiver_check(session, ana, caregiver, sent_at=CHECK_AT)
    bo_check = make_sent_caregiver_check(session, bo, caregiver, sent_at=CHECK_AT)
    assert say(client, "worse") == text_of_which("Which person? Reply 1 for Ana, 2 for Bo.")
    held = last_inbound(session)
    assert (held.outcome, held.patient_id, held.needs_reading) == ("awaiting_choice", None, True)
    assert alerts(session, AlertKind.CAREGIVER_CONCERN) == []

    assert "let Riverside" in say(client, "2", T0 + MINUTE)
    (alert,) = alerts(session, AlertKind.CAREGIVER_CONCERN)
    assert (alert.patient_id, alert.inbound_message_id) == (bo.id, held.id)
    session.expire_all()
    settled = session.get_one(InboundMessage, held.id)
    assert (settled.outcome, settled.patient_id, settled.needs_reading) == (
        "choice_applied",
        bo.id,
        False,
    )
    assert check_of(session, bo_check.id).concern == "worse"
    assert last_inbound(session).patient_id == bo.id
    # The choice is spent: a further "2" is no second concern.
    say(client, "2", T0 + 2 * MINUTE)
    assert len(alerts(session, AlertKind.CAREGIVER_CONCERN)) == 1


def test_an_open_check_for_one_of_two_patients_says_whom_it_is_about(
    client: Any, session: Session
) -> None:
    _, bo, caregiver = ana_and_bo(session)
    check = make_sent_caregiver_check(session, bo, caregiver, sent_at=CHECK_AT)
    assert "Noted for Bo" in say(client, "3")
    assert (check_of(session, check.id).score, baseline_of(session, bo)) == (3, 3)
    assert outbound_to(session, CAREGIVER)[-1].patient_id == bo.id


def text_of_which(expected: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{expected}</Message></Response>'
    )


def test_a_retried_webhook_through_the_signed_route_does_nothing_twice(
    client: Any, session: Session
) -> None:
    patient = make_patient(session, first_name="Ana")
    caregiver = make_caregiver(session, patient, phone=CAREGIVER)
    make_sent_caregiver_check(session, patient, caregiver, sent_at=CHECK_AT)
    params = inbound_params(CAREGIVER, "WORRIED")
    answers = []
    for _ in range(2):
        with freeze_time(T0):
            response = post_signed(client, "/sms/inbound", params)
        answers.append(response.get_data(as_text=True))
    assert answers[0] == answers[1]
    assert len(alerts(session, AlertKind.CAREGIVER_CONCERN)) == 1
    assert count(session, InboundMessage) == 1


# --- cost ---------------------------------------------------------------------------------


def _handled(runtime: Runtime, number: str, body: str) -> list[str]:
    sms = InboundSms(new_message_sid(), number, "+16175550100", body)
    with recorded_statements(runtime.engine) as seen, freeze_time(T0):
        handle_inbound(runtime.session_factory, runtime.library, runtime.settings, sms, T0)
    return seen


def test_the_sender_is_one_statement_for_a_patient_and_for_a_caregiver(
    runtime: Runtime, session: Session
) -> None:
    ana, bo, caregiver = ana_and_bo(session)
    make_sent_caregiver_check(session, bo, caregiver, sent_at=CHECK_AT)
    patient_text = _handled(runtime, ana.phone_e164, "hello")
    caregiver_text = _handled(runtime, CAREGIVER, "3")
    for seen in (patient_text, caregiver_text):
        lookups = [s for s in seen if s.startswith("SELECT") and "FROM patients" in s]
        assert len(lookups) == 1
    # A patient's own text never reads caregiver checks; a caregiver's reads them once.
    assert not any("FROM caregiver_checks" in s for s in patient_text)
    checks = [s for s in caregiver_text if s.startswith("SELECT") and "FROM caregiver_checks" in s]
    assert len(checks) == 1


def test_a_red_flag_for_two_patients_wakes_the_pager_once_for_both_alerts(
    runtime: Runtime, session: Session
) -> None:
    ana_and_bo(session)
    woken: list[int] = []
    sms = InboundSms(new_message_sid(), CAREGIVER, "+16175550100", "he can't find his words")
    with freeze_time(T0):
        handle_inbound(
            runtime.session_factory,
            runtime.library,
            runtime.settings,
            sms,
            T0,
            after_commit=lambda: woken.append(len(alerts(session, AlertKind.RED_FLAG))),
        )
    assert woken == [2]  # both alerts committed before the one wake-up
