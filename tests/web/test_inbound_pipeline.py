"""Every branch of the inbound pipeline, through signed webhook posts against a real database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
)
from coachbot.services import program_edits, programs
from coachbot.services.inbound import context as inbound_context
from tests.support.builders import MONDAY_0830_NEW_YORK, make_caregiver, make_patient
from tests.support.builders import make_nudge as build_nudge
from tests.support.twilio_signing import inbound_params, new_message_sid, post_signed

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
CLINIC_PHONE = "+16175550199"
T0 = MONDAY_0830_NEW_YORK  # a sleep nudge goes out now


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """The test's own view of the database. A plain engine, without the app's BEGIN IMMEDIATE,
    so reading between two posts never holds SQLite's write lock against the webhook."""
    engine = create_engine(database_url)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def make_nudge(
    session: Session,
    patient: Patient,
    track: str = "sleep",
    *,
    sent_at: dt.datetime = T0,
    window: dt.timedelta = dt.timedelta(hours=10),
    state: NudgeState = NudgeState.SENT,
    key: str | None = None,
) -> Nudge:
    sent = state in (NudgeState.SENT, NudgeState.DELIVERED)
    nudge = build_nudge(
        session,
        patient,
        due=sent_at,
        track=track,
        state=state,
        sent_at=sent_at if sent else None,
        reply_window_ends_at=sent_at + window if sent else None,
        key=key,
    )
    session.commit()
    return nudge


def post(client: Any, sender: str, body: str, at: dt.datetime, **extra: str) -> Any:
    params = inbound_params(sender, body) | extra
    with freeze_time(at):
        response = post_signed(client, "/sms/inbound", params)
    assert response.status_code == 200
    return response


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def count(session: Session, model: type[Any], *where: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def last_inbound(session: Session) -> InboundMessage:
    session.expire_all()
    return session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()  # type: ignore[return-value]


def alerts(session: Session, kind: AlertKind) -> list[Alert]:
    session.expire_all()
    return list(session.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.id)))


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


# --- answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("track", "body", "outcome", "value", "unit", "template"),
    [
        ("diet", "done", "done", None, None, "ack.done"),
        ("diet", "👍", "done", None, None, "ack.done"),
        ("diet", "Skip", "skipped", None, None, "ack.skip"),
        ("diet", "hoy no", "skipped", None, None, "ack.skip"),
        ("sleep", "7.5h", "done", 7.5, "hours", "ack.value"),
        ("sleep", "about 6", "done", 6, "hours", "ack.value"),
        ("exercise", "about 20 minutes", "done", 20, "minutes", "ack.value"),
        ("mindfulness", "3", "done", 3, "rating", "ack.value"),
        ("diet", "dnoe", "done", None, None, "ack.typo_done"),
    ],
)
def test_answers_are_recorded_against_the_open_nudge_and_acknowledged(
    client: Any,
    session: Session,
    track: str,
    body: str,
    outcome: str,
    value: float | None,
    unit: str | None,
    template: str,
) -> None:
    patient = make_patient(session)
    nudge = make_nudge(session, patient, track, window=dt.timedelta(hours=4))
    answer = text_of(post(client, patient.phone_e164, body, T0 + dt.timedelta(minutes=20)))
    record = session.scalars(select(AdherenceRecord)).one()
    assert (record.nudge_id, record.outcome, record.value, record.unit) == (
        nudge.id,
        outcome,
        value,
        unit,
    )
    assert not record.is_proxy
    reply = session.scalars(select(OutboundMessage)).one()
    assert reply.template_id == template
    assert reply.body in answer.replace("&amp;", "&")
    row = last_inbound(session)
    assert row.nudge_id == nudge.id


def test_a_typo_is_echoed_as_what_was_logged(client: Any, session: Session) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    answer = text_of(post(client, patient.phone_e164, "DOEN", T0 + dt.timedelta(minutes=1)))
    assert "logged as done" in answer or "as DONE" in answer


def test_a_caregivers_text_is_theirs_not_an_answer_to_the_patients_nudge(
    client: Any, session: Session
) -> None:
    """A caregiver answers their own checks: their words never log the patient's nudge."""
    patient = make_patient(session)
    caregiver = make_caregiver(session, patient, phone="+16175550777")
    make_nudge(session, patient, "exercise")
    post(client, "+16175550777", "she walked 20 min", T0 + dt.timedelta(minutes=30))
    assert session.scalars(select(AdherenceRecord)).all() == []
    row = last_inbound(session)
    assert (row.patient_id, row.caregiver_id, row.is_proxy) == (patient.id, caregiver.id, True)
    assert row.nudge_id is None


def test_several_open_nudges_take_the_most_recent_unless_a_track_is_named(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    sleep = make_nudge(session, patient, "sleep", sent_at=T0)
    exercise = make_nudge(session, patient, "exercise", sent_at=T0 + dt.timedelta(hours=1))
    diet = make_nudge(session, patient, "diet", sent_at=T0 + dt.timedelta(hours=2))
    later = T0 + dt.timedelta(hours=3)
    post(client, patient.phone_e164, "done", later)
    post(client, patient.phone_e164, "slept 7 hours", later + dt.timedelta(minutes=1))
    post(client, patient.phone_e164, "walked 25 min", later + dt.timedelta(minutes=2))
    records = {r.nudge_id: r for r in session.scalars(select(AdherenceRecord))}
    assert set(records) == {sleep.id, exercise.id, diet.id}
    assert (records[sleep.id].value, records[sleep.id].unit) == (7, "hours")
    assert (records[exercise.id].value, records[exercise.id].unit) == (25, "minutes")
    assert records[diet.id].outcome == "done"


def test_a_late_reply_within_the_window_counts_and_after_it_is_free_text(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    nudge = make_nudge(session, patient, "diet", window=dt.timedelta(hours=8))
    post(client, patient.phone_e164, "skip", T0 + dt.timedelta(hours=7, minutes=59))
    assert session.scalars(select(AdherenceRecord)).one().nudge_id == nudge.id
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(hours=8, minutes=1))
    assert session.scalars(select(AdherenceRecord)).one().outcome == "skipped"
    assert last_inbound(session).outcome == "free_text"


def test_the_latest_answer_to_a_nudge_wins(client: Any, session: Session) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    post(client, patient.phone_e164, "skip", T0 + dt.timedelta(minutes=1))
    post(client, patient.phone_e164, "did it after all", T0 + dt.timedelta(hours=2))
    assert session.scalars(select(AdherenceRecord)).one().outcome == "done"


def test_a_reply_without_an_open_nudge_is_kept_as_free_text(client: Any, session: Session) -> None:
    patient = make_patient(session)
    answer = text_of(post(client, patient.phone_e164, "done", T0))
    assert "care team" in answer
    row = last_inbound(session)
    assert (row.outcome, row.nudge_id, row.body) == ("free_text", None, "done")
    assert count(session, AdherenceRecord) == 0


def test_a_reply_to_a_nudge_in_an_ambiguous_state_still_counts(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    nudge = make_nudge(session, patient, "diet", state=NudgeState.AMBIGUOUS)
    nudge.sent_at = T0
    session.commit()
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(minutes=5))
    assert session.scalars(select(AdherenceRecord)).one().nudge_id == nudge.id


def _set_reply_window(session: Session, track: str, minutes: int) -> None:
    view = programs.show_program(session, "standard")
    changed = program_edits.with_changes(view.tracks[track], reply_window_minutes=minutes)
    session.commit()  # the read ends before the save's own transaction
    program_edits.save_track(
        sessionmaker(session.get_bind()),
        "standard",
        changed,
        base_version=view.version,
        actor="test",
        now=T0,
    )
    session.expire_all()


def test_an_ambiguous_nudge_stays_open_for_its_programmes_longer_reply_window(
    client: Any, session: Session
) -> None:
    """No reply window is set on a send whose outcome is unknown: the programme in force
    says how long it waits for an answer, even past every built-in window (diet's is 8 h,
    the longest 10 h)."""
    patient = make_patient(session)
    _set_reply_window(session, "diet", 20 * 60)
    nudge = make_nudge(session, patient, "diet", state=NudgeState.AMBIGUOUS)
    nudge.sent_at = T0
    session.commit()
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(hours=12))
    assert session.scalars(select(AdherenceRecord)).one().nudge_id == nudge.id


def test_an_ambiguous_nudge_closes_with_its_programmes_shorter_reply_window(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    _set_reply_window(session, "diet", 60)
    nudge = make_nudge(session, patient, "diet", state=NudgeState.AMBIGUOUS)
    nudge.sent_at = T0
    session.commit()
    post(client, patient.phone_e164, "done", T0 + dt.timedelta(hours=2))
    row = last_inbound(session)
    assert (row.outcome, row.nudge_id) == ("free_text", None)
    assert count(session, AdherenceRecord) == 0


# --- safety rails -------------------------------------------------------------------------


def test_the_loop_guard_allows_three_replies_an_hour_then_silence_and_one_alert(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    answers = [
        text_of(
            post(client, patient.phone_e164, "Auto-reply: I am away", T0 + dt.timedelta(minutes=m))
        )
        for m in range(7)
    ]
    assert [a != EMPTY for a in answers] == [True, True, True, False, False, False, False]
    assert len(alerts(session, AlertKind.REPLY_LOOP)) == 1
    # An hour after the first replies the number may be answered again.
    later = text_of(post(client, patient.phone_e164, "hello", T0 + dt.timedelta(minutes=75)))
    assert later != EMPTY


def test_an_unknown_sender_gets_no_automatic_replies_so_no_loop_can_start(
    client: Any, session: Session
) -> None:
    answers = [
        text_of(post(client, "+16175559999", "ping", T0 + dt.timedelta(minutes=m)))
        for m in range(5)
    ]
    assert answers == [EMPTY] * 5
    assert count(session, OutboundMessage) == 0


ODD_BODIES = [
    "",
    "   \n\t ",
    "🙂",
    "👍🏽👍🏽",
    "🛑" * 10,
    "x" * 1600,
    "done " * 320,
    "\u202edone\u202c",
    "\u200b\u200d\ufeff",
    "a\x00b",
    "Ｄｏｎｅ",
    "z\u0301\u0302\u0303\u0304" * 100,
    "\ud800 lone surrogate",
]


@pytest.mark.parametrize("body", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_bodies_are_handled_and_recorded(client: Any, session: Session, body: str) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    sid = new_message_sid()
    params = inbound_params(patient.phone_e164, body, sid)
    params["Body"] = body.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    with freeze_time(T0 + dt.timedelta(minutes=1)):
        response = post_signed(client, "/sms/inbound", params)
    assert response.status_code == 200
    row = session.scalars(select(InboundMessage).where(InboundMessage.provider_sid == sid)).one()
    assert row.outcome not in (None, "error")
    assert row.patient_id == patient.id


def test_an_mms_with_media_only_is_recorded_and_answered(client: Any, session: Session) -> None:
    patient = make_patient(session)
    response = post(
        client,
        patient.phone_e164,
        "",
        T0,
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME2",
        MediaContentType1="image/png",
    )
    # A picture without words is a handwriting sample (tests/services/test_media_samples.py):
    # thanked, not told "we didn't catch that".
    assert "your photo reached" in text_of(response)
    row = last_inbound(session)
    assert (row.num_media, row.outcome) == (2, "media_only")


def test_an_mms_with_text_is_parsed_like_any_reply(client: Any, session: Session) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    post(client, patient.phone_e164, "done", T0, NumMedia="1", MediaUrl0="https://x.test/1")
    assert session.scalars(select(AdherenceRecord)).one().outcome == "done"


@pytest.mark.parametrize("num_media", ["abc", "-3", "99999999999999999999", ""])
def test_a_nonsense_media_count_is_tolerated(client: Any, session: Session, num_media: str) -> None:
    patient = make_patient(session)
    post(client, patient.phone_e164, "hi", T0, NumMedia=num_media)
    assert 0 <= last_inbound(session).num_media <= 10


def test_an_internal_failure_answers_empty_twiml_and_keeps_the_row(
    client: Any, session: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")

    def broken(*_args: object) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(inbound_context, "decide_text", broken)
    response = post(client, patient.phone_e164, "done", T0)
    assert text_of(response) == EMPTY
    row = last_inbound(session)
    assert (row.outcome, row.body, row.patient_id) == ("error", "done", None)
    assert count(session, AdherenceRecord) == 0
    assert "failed" in caplog.text
    assert "done" not in caplog.text  # message bodies never reach a log line
    assert patient.phone_e164 not in caplog.text
    # Twilio's retry of the same message gets the same (empty) answer, not a second run.
    monkeypatch.undo()
    params = inbound_params(patient.phone_e164, "done", row.provider_sid)
    with freeze_time(T0):
        retry = post_signed(client, "/sms/inbound", params)
    assert text_of(retry) == EMPTY
    assert count(session, InboundMessage) == 1


def test_a_retried_message_gets_the_same_answer_and_one_record(
    client: Any, session: Session
) -> None:
    patient = make_patient(session)
    make_nudge(session, patient, "diet")
    params = inbound_params(patient.phone_e164, "done")
    with freeze_time(T0 + dt.timedelta(minutes=1)):
        first = post_signed(client, "/sms/inbound", params)
    with freeze_time(T0 + dt.timedelta(minutes=9)):
        second = post_signed(client, "/sms/inbound", params)
    assert text_of(first) == text_of(second) != EMPTY
    assert count(session, InboundMessage) == 1
    assert count(session, OutboundMessage) == 1
    assert count(session, AdherenceRecord) == 1


def test_a_signed_post_without_message_sid_or_sender_stores_nothing(
    client: Any, session: Session
) -> None:
    with freeze_time(T0):
        response = post_signed(client, "/sms/inbound", {"Body": "done", "From": ""})
    assert (response.status_code, text_of(response)) == (200, EMPTY)
    assert count(session, InboundMessage) == 0
