"""Every branch of the inbound pipeline, through signed webhook posts against a real database:
the sender, the compliance keywords and the red flags. The answers to nudges are in
test_inbound_pipeline_answers.py, the safety rails (loop guard, odd input, failures and retries)
in test_inbound_pipeline_rails.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import (
    AdherenceRecord,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
)
from tests.support import inbound_webhook
from tests.support.builders import make_caregiver, make_patient
from tests.support.inbound_webhook import (
    CLINIC_PHONE,
    EMPTY,
    T0,
    alerts,
    count,
    last_inbound,
    make_nudge,
    post,
    text_of,
)

# A plain engine, so reading between two posts never holds SQLite's write lock against the
# webhook (tests/support/inbound_webhook.py).
session = inbound_webhook.session


# --- sender -------------------------------------------------------------------------------


def test_unknown_sender_gets_no_reply_and_a_person_reads_the_text(
    client: Any, session: Session
) -> None:
    make_patient(session, first_name="Maya", phone="+16175550142")
    assert text_of(post(client, "+16175559999", "hello who is this", T0)) == EMPTY
    row = last_inbound(session)
    assert (row.patient_id, row.outcome, row.body) == (None, "unknown_sender", "hello who is this")
    assert row.needs_reading is True


# --- compliance keywords ------------------------------------------------------------------

STOP_VARIANTS = [
    "STOP", "stop", "  Stop. ", "STOPALL", "Unsubscribe", "CANCEL", "end", "quit!", "REVOKE",
    "optout", "Stop 🛑", "ＳＴＯＰ",
]  # fmt: skip


@pytest.mark.parametrize("word", STOP_VARIANTS)
def test_stop_family_confirms_once_then_silence_and_skips_unsent_nudges(
    client: Any, session: Session, word: str
) -> None:
    patient = make_patient(session, phone="+16175550142")
    open_nudge = make_nudge(session, patient)
    planned = make_nudge(
        session, patient, "exercise", sent_at=T0 + dt.timedelta(hours=1), state=NudgeState.PLANNED
    )
    claimed = make_nudge(
        session, patient, "diet", sent_at=T0 + dt.timedelta(hours=2), state=NudgeState.CLAIMED
    )

    first = text_of(post(client, patient.phone_e164, word, T0 + dt.timedelta(minutes=5)))
    assert "unsubscribed" in first
    assert "START" in first
    for later in ("STOP", "done", "please call me", "7"):
        assert text_of(post(client, patient.phone_e164, later, T0 + dt.timedelta(minutes=6))) == (
            EMPTY
        )
    # HELP is always answered, and answering it restarts nothing.
    help_text = text_of(post(client, patient.phone_e164, "HELP", T0 + dt.timedelta(minutes=7)))
    assert "STOP" in help_text
    assert "START" in help_text

    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert session.get_one(Nudge, planned.id).state == NudgeState.SKIPPED
    assert session.get_one(Nudge, claimed.id).state == NudgeState.SKIPPED
    assert session.get_one(Nudge, open_nudge.id).state == NudgeState.SENT
    assert count(session, OutboundMessage, OutboundMessage.kind == "reply") == 2
    assert count(session, AdherenceRecord) == 0
    assert count(session, InboundMessage) == 6
    assert len(alerts(session, AlertKind.OPT_OUT)) == 1


@pytest.mark.parametrize("word", ["START", "unstop", "Yes", "sí", " start! "])
def test_start_unstop_and_yes_resume_an_opted_out_patient(
    client: Any, session: Session, word: str
) -> None:
    patient = make_patient(session, status=PatientStatus.OPTED_OUT)
    answer = text_of(post(client, patient.phone_e164, word, T0))
    assert "back on" in answer
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.ACTIVE
    assert last_inbound(session).outcome == "resume"


def test_yes_while_pending_consent_opts_in(client: Any, session: Session) -> None:
    patient = make_patient(session, status=PatientStatus.PENDING_CONSENT)
    assert "signed up" in text_of(post(client, patient.phone_e164, "YES", T0))
    session.expire_all()
    refreshed = session.get_one(Patient, patient.id)
    assert refreshed.status == PatientStatus.ACTIVE
    assert refreshed.opted_in_at == T0


def test_nothing_but_keywords_is_answered_before_consent(client: Any, session: Session) -> None:
    patient = make_patient(session, status=PatientStatus.PENDING_CONSENT)
    assert text_of(post(client, patient.phone_e164, "done", T0)) == EMPTY
    assert last_inbound(session).outcome == "awaiting_consent"


def test_start_from_an_active_patient_confirms_and_changes_nothing(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    assert "back on" in text_of(post(client, patient.phone_e164, "START", T0))
    assert last_inbound(session).outcome == "opt_in_repeat"


def test_a_caregiver_cannot_opt_the_patient_back_in(client: Any, session: Session) -> None:
    patient = make_patient(session, status=PatientStatus.OPTED_OUT)
    make_caregiver(session, patient, phone="+16175550777")
    assert text_of(post(client, "+16175550777", "START", T0)) == EMPTY
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT


@pytest.mark.parametrize("word", ["HELP", "info", " Help? ", "ayuda"])
def test_help_and_info_name_the_program_a_person_and_how_to_stop(
    client: Any, session: Session, word: str
) -> None:
    patient = make_patient(session)
    answer = text_of(post(client, patient.phone_e164, word, T0))
    assert "coachbot" in answer
    assert CLINIC_PHONE in answer
    assert "STOP" in answer
    assert "msgs/day" in answer
    assert last_inbound(session).outcome == "help"


@pytest.mark.parametrize(
    "body", ["please stop texting me", "No more messages!", "ya basta", "No más", "wrong number"]
)
def test_plain_language_revocation_pauses_and_alerts(
    client: Any, session: Session, body: str
) -> None:
    patient = make_patient(session)
    answer = text_of(post(client, patient.phone_e164, body, T0))
    assert "paused" in answer or "pausado" in answer
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.PAUSED
    (alert,) = alerts(session, AlertKind.REVOCATION)
    assert (alert.patient_id, alert.severity, alert.status) == (patient.id, "high", "open")


def test_a_paused_patient_is_recorded_but_not_coached(client: Any, session: Session) -> None:
    patient = make_patient(session, status=PatientStatus.PAUSED)
    nudge = make_nudge(session, patient)
    assert text_of(post(client, patient.phone_e164, "7 hours", T0 + dt.timedelta(hours=1))) == (
        EMPTY
    )
    record = session.scalars(select(AdherenceRecord)).one()
    assert (record.nudge_id, record.value) == (nudge.id, 7)


# --- red flags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "language", "severity"),
    [
        ("I fell in the bathroom this morning", "en", "urgent"),
        ("mom seems confused today", "en", "urgent"),
        ("done but she had a seizure", "en", "urgent"),
        ("me caí en la cocina", "es", "urgent"),
        ("tengo convulsiones", "es", "urgent"),
        ("her handwriting has changed a lot", "en", "high"),
    ],
)
def test_red_flag_words_get_the_fixed_reply_and_an_alert_and_no_coaching(
    client: Any, session: Session, body: str, language: str, severity: str
) -> None:
    patient = make_patient(session, language=language)
    make_nudge(session, patient, "exercise")
    answer = text_of(post(client, patient.phone_e164, body, T0 + dt.timedelta(minutes=10)))
    assert CLINIC_PHONE in answer
    assert "911" in answer
    (alert,) = alerts(session, AlertKind.RED_FLAG)
    assert (alert.severity, alert.status, alert.patient_id) == (severity, "open", patient.id)
    assert alert.inbound_message_id == last_inbound(session).id
    assert count(session, AdherenceRecord) == 0
    (reply,) = session.scalars(select(OutboundMessage)).all()
    assert reply.template_id == "red_flag"


@pytest.mark.parametrize(
    ("body", "severity", "detail"),
    [
        ("2 5", "urgent", "word_finding,severe_headache"),
        ("3", "high", "handwriting"),
        ("6", "urgent", "weakness"),
        ("1,4", "urgent", "confusion,seizure"),
        ("yes", "high", "unspecified_symptom"),
        ("sí, dolor de cabeza muy fuerte", "urgent", "severe_headache"),
    ],
)
def test_checkin_numbers_and_words_raise_a_red_flag_and_record_the_checkin(
    client: Any, session: Session, body: str, severity: str, detail: str
) -> None:
    patient = make_patient(session, tracks={"checkin": "09:00"})
    checkin = make_nudge(session, patient, "checkin", window=dt.timedelta(hours=6))
    answer = text_of(post(client, patient.phone_e164, body, T0 + dt.timedelta(minutes=3)))
    assert CLINIC_PHONE in answer
    (alert,) = alerts(session, AlertKind.RED_FLAG)
    assert (alert.severity, alert.detail) == (severity, detail)
    record = session.scalars(select(AdherenceRecord)).one()
    assert (record.nudge_id, record.outcome) == (checkin.id, "done")


def test_a_clear_checkin_is_recorded_without_an_alert(client: Any, session: Session) -> None:
    patient = make_patient(session, tracks={"checkin": "09:00"})
    make_nudge(session, patient, "checkin", window=dt.timedelta(hours=6))
    answer = text_of(post(client, patient.phone_e164, "0", T0 + dt.timedelta(minutes=3)))
    assert "<Message>" in answer
    assert "911" not in answer
    assert alerts(session, AlertKind.RED_FLAG) == []
    assert session.scalars(select(AdherenceRecord)).one().outcome == "done"


def test_safety_replies_do_not_use_up_the_coaching_replies_of_the_hour(
    client: Any, session: Session
) -> None:
    """The loop guard counts only what it may mute: after three safety replies, a question
    still gets its "your care team will read this"."""
    patient = make_patient(session)
    for minute, body in enumerate(("I fell", "I want to die", "chest pain")):
        answer = text_of(post(client, patient.phone_e164, body, T0 + dt.timedelta(minutes=minute)))
        assert "911" in answer
    answer = text_of(
        post(client, patient.phone_e164, "when is my visit?", T0 + dt.timedelta(minutes=4))
    )
    assert "read this" in answer
    assert alerts(session, AlertKind.REPLY_LOOP) == []


def test_a_red_flag_is_answered_even_after_the_loop_guard_muted_replies(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    for minute in range(4):
        post(client, patient.phone_e164, "what is this?", T0 + dt.timedelta(minutes=minute))
    answer = text_of(post(client, patient.phone_e164, "I fell", T0 + dt.timedelta(minutes=5)))
    assert "911" in answer


def test_a_red_flag_from_an_opted_out_patient_alerts_and_gets_the_safety_reply(
    client: Any, session: Session
) -> None:
    """Someone in danger started this conversation: the safety text goes even after STOP."""
    patient = make_patient(session, status=PatientStatus.OPTED_OUT)
    answer = text_of(post(client, patient.phone_e164, "she fell and hit her head", T0))
    assert "911" in answer
    assert [a.severity for a in alerts(session, AlertKind.RED_FLAG)] == ["urgent"]
    assert count(session, OutboundMessage) == 1
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT


def test_a_revocation_with_a_red_flag_pauses_and_answers_with_the_safety_text(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    answer = text_of(post(client, patient.phone_e164, "stop texting me, I fell", T0))
    assert "911" in answer
    assert len(alerts(session, AlertKind.REVOCATION)) == 1
    assert len(alerts(session, AlertKind.RED_FLAG)) == 1
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.PAUSED
