"""The inbound pipeline's safety rails, through signed webhook posts against a real database:
the loop guard, odd bodies and media counts, pictures, an internal failure, Twilio's retries and
a post with no message SID or sender."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind
from coachbot.models import (
    AdherenceRecord,
    InboundMessage,
    OutboundMessage,
)
from coachbot.services.inbound import context as inbound_context
from tests.support import inbound_webhook
from tests.support.builders import make_patient
from tests.support.inbound_webhook import (
    EMPTY,
    T0,
    alerts,
    count,
    last_inbound,
    make_nudge,
    post,
    text_of,
)
from tests.support.twilio_signing import inbound_params, new_message_sid, post_signed

# A plain engine, so reading between two posts never holds SQLite's write lock against the
# webhook (tests/support/inbound_webhook.py).
session = inbound_webhook.session


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
