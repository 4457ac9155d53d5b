"""Rules of the inbound decision (`coachbot.domain.triage.decide`) that hold whoever sends
the text, with no database: red flags and crises for every sender, nothing in the STOP family
is an answer, a check-in's YES, revocations with danger in them, odd bodies, pictures, replies
that name another track and phrasings found while writing the table of decisions
(tests/unit/test_triage.py)."""

from __future__ import annotations

import pytest

from coachbot.domain.red_flags import RedFlag
from coachbot.domain.states import AdherenceOutcome, AlertKind, AlertSeverity
from coachbot.domain.triage import Effect, MessageClass, OpenPrompt, SenderContext, decide
from tests.support.triage_cases import (
    ACTIVE,
    ACTIVE_SUPPRESSED,
    CAREGIVER,
    CAREGIVER_SUPPRESSED,
    CHECKIN,
    CLINICIAN_PAUSED,
    DIET,
    EXERCISE,
    OPTED_OUT,
    REHAB,
    SENDERS,
    SLEEP,
    UNKNOWN,
    UNKNOWN_SUPPRESSED,
    alerts_of,
    answer_of,
)

A = AlertKind
S = AlertSeverity


# --- rules that hold for every sender ----------------------------------------------------------


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
@pytest.mark.parametrize(
    ("body", "flag"),
    [
        ("I fell in the bathroom", RedFlag.FALL),
        ("she had a seizure", RedFlag.SEIZURE),
        ("fever 38.9", RedFlag.FEVER),
        ("can't breathe", RedFlag.BREATHING),
        ("tengo convulsiones", RedFlag.SEIZURE),
    ],
)
def test_a_red_flag_gets_the_safety_reply_and_an_alert_whoever_sends_it(
    sender: SenderContext, body: str, flag: RedFlag
) -> None:
    decision = decide(body, sender, (DIET,))
    assert decision.message_class is MessageClass.RED_FLAG
    assert flag in decision.flags
    assert decision.reply == "red_flag"
    assert decision.alerts[0].kind is AlertKind.RED_FLAG
    assert decision.alerts[0].severity in (AlertSeverity.URGENT, AlertSeverity.HIGH)
    assert flag.name.lower() in decision.alerts[0].detail
    assert (decision.answer, decision.coach) == (None, False)


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
@pytest.mark.parametrize(
    "body", ["I want to end my life", "quiero morirme", "I've been cutting myself again"]
)
def test_a_crisis_text_gets_the_crisis_reply_and_an_urgent_alert_whoever_sends_it(
    sender: SenderContext, body: str
) -> None:
    decision = decide(body, sender, (DIET,))
    assert decision.message_class is MessageClass.CRISIS
    assert decision.reply == "crisis"
    assert alerts_of(decision)[0] == (AlertKind.CRISIS, AlertSeverity.URGENT)
    assert (decision.answer, decision.coach) == (None, False)


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
@pytest.mark.parametrize(
    "body", ["STOP", "stop", "S.T.O.P", "ＳＴＯＰ", "Stop 🛑", "end", "PARAR", "cancelar", "optout"]
)
def test_nothing_in_the_stop_family_is_ever_an_answer(sender: SenderContext, body: str) -> None:
    for prompt in (DIET, SLEEP, REHAB, EXERCISE, CHECKIN):
        decision = decide(body, sender, (prompt,))
        assert decision.message_class is MessageClass.OPT_OUT
        assert (decision.answer, decision.coach, decision.alerts[1:]) == (None, False, ())


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
@pytest.mark.parametrize("body", ["yes", "Yes!", "sí", "YES"])
def test_yes_to_an_open_checkin_is_an_unspecified_red_flag_whatever_the_status(
    sender: SenderContext, body: str
) -> None:
    decision = decide(body, sender, (CHECKIN,))
    assert decision.message_class is MessageClass.RED_FLAG
    assert decision.effect is None  # not a resume: the check-in asked about symptoms
    assert decision.reply == "red_flag"
    assert [(a.kind, a.severity, a.detail) for a in decision.alerts] == [
        (AlertKind.RED_FLAG, AlertSeverity.HIGH, "unspecified_symptom")
    ]


def test_a_yes_to_the_checkin_records_the_checkin_as_answered() -> None:
    decision = decide("yes", ACTIVE, (CHECKIN,))
    assert answer_of(decision) == (CHECKIN.nudge_id, AdherenceOutcome.DONE, None, None)


@pytest.mark.parametrize(
    ("sender", "effect", "alerts"),
    [
        (ACTIVE, Effect.PATIENT_PAUSE, [(A.RED_FLAG, S.URGENT), (A.REVOCATION, S.HIGH)]),
        (CLINICIAN_PAUSED, Effect.PATIENT_PAUSE, [(A.RED_FLAG, S.URGENT), (A.REVOCATION, S.HIGH)]),
        (CAREGIVER, Effect.CAREGIVER_REMOVED, [(A.RED_FLAG, S.URGENT), (A.REVOCATION, S.NORMAL)]),
    ],
    ids=["active", "clinician_paused", "caregiver"],
)
def test_a_revocation_with_a_red_flag_pauses_sends_the_safety_reply_and_raises_both_alerts(
    sender: SenderContext, effect: Effect, alerts: list[tuple[AlertKind, AlertSeverity]]
) -> None:
    decision = decide("stop texting me, I fell", sender, (DIET,))
    assert decision.message_class is MessageClass.RED_FLAG
    assert decision.effect is effect
    assert decision.reply == "red_flag"
    assert list(alerts_of(decision)) == alerts


def test_a_crisis_in_a_revocation_pauses_and_sends_the_crisis_reply() -> None:
    decision = decide("stop texting me, I want to end my life", ACTIVE)
    assert (decision.message_class, decision.effect, decision.reply) == (
        MessageClass.CRISIS,
        Effect.PATIENT_PAUSE,
        "crisis",
    )
    assert list(alerts_of(decision)) == [(A.CRISIS, S.URGENT), (A.REVOCATION, S.HIGH)]


def test_exactly_one_stop_confirmation_then_a_repeat_is_silent() -> None:
    first = decide("STOP", ACTIVE)
    # What the service makes of it: the patient opted out, the number suppressed.
    again = decide("STOP", OPTED_OUT)
    assert (first.reply, first.effect) == ("stop_confirmation", Effect.OPT_OUT)
    assert (again.reply, again.effect, again.alerts) == (None, None, ())


def test_help_after_stop_is_answered_with_no_effect() -> None:
    decision = decide("HELP", OPTED_OUT)
    assert (decision.reply, decision.effect, decision.outcome) == ("help", None, "help_opted_out")


@pytest.mark.parametrize("body", ["", "   ", "a\x00b", "\ud800", "x" * 1600, "🙂" * 50])
@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
def test_decide_is_total_for_odd_bodies(sender: SenderContext, body: str) -> None:
    decision = decide(body, sender, (DIET, SLEEP, CHECKIN), num_media=3)
    assert isinstance(decision.message_class, MessageClass)
    assert decision.outcome


# --- pictures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [ACTIVE_SUPPRESSED, CAREGIVER_SUPPRESSED, OPTED_OUT, UNKNOWN, UNKNOWN_SUPPRESSED],
    ids=["active_suppressed", "caregiver_suppressed", "opted_out", "unknown", "unknown_suppressed"],
)
def test_a_picture_from_an_opted_out_or_unknown_number_is_read_by_a_person_and_not_answered(
    sender: SenderContext,
) -> None:
    """Nothing but safety and HELP goes to a suppressed or unknown number: a picture is no
    reason to text it."""
    decision = decide("", sender, (DIET,), num_media=1)
    assert (decision.message_class, decision.reply, decision.needs_reading) == (
        MessageClass.FREE_TEXT,
        None,
        True,
    )


def test_a_picture_from_an_unknown_number_is_labelled_as_from_an_unknown_sender() -> None:
    # The label every other text from an unknown number gets (timeline, metrics).
    assert decide("", UNKNOWN, num_media=1).outcome == "unknown_sender"


# --- a reply that names another track -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "prompt"),
    [
        ("slept 7 hours", EXERCISE),  # read today as 420 minutes of exercise
        ("slept 7h", EXERCISE),
        ("dormí 7 horas", EXERCISE),
        ("slept well", EXERCISE),
        ("walked 20 min", SLEEP),  # read today as sleep, done
        ("walked", SLEEP),
        ("meditated 10 min", EXERCISE),
    ],
)
def test_a_reply_naming_a_track_with_no_open_prompt_is_not_an_answer_to_another_track(
    body: str, prompt: OpenPrompt
) -> None:
    """It becomes an answer only when it confidently is one and a prompt is open for it:
    "slept 7 hours" does not answer the exercise nudge."""
    decision = decide(body, ACTIVE, (prompt,))
    assert (decision.message_class, decision.answer, decision.needs_reading) == (
        MessageClass.FREE_TEXT,
        None,
        True,
    )


# --- phrasings the rules miss today (found while writing these tests) ---------------------------


@pytest.mark.parametrize("sender", [ACTIVE, UNKNOWN], ids=["active", "unknown"])
@pytest.mark.parametrize(
    "body",
    [
        "I feel like hurting myself",
        "thinking about hurting myself",
        "I have thoughts of hurting myself",
        "i might hurt myself",
        "me quiero hacer daño",
        "me voy a hacer daño",
    ],
)
def test_self_harm_in_everyday_words_is_a_crisis(sender: SenderContext, body: str) -> None:
    decision = decide(body, sender, (DIET,))
    assert (decision.message_class, decision.reply) == (MessageClass.CRISIS, "crisis")
    assert alerts_of(decision)[:1] == ((AlertKind.CRISIS, AlertSeverity.URGENT),)


@pytest.mark.parametrize(
    "body",
    ["yes please stop", "no thanks, stop", "enough, stop", "please stop!! enough", "remove me"],
)
def test_a_request_to_stop_with_a_word_around_it_pauses_and_is_never_coached(body: str) -> None:
    decision = decide(body, ACTIVE, (DIET,))
    assert (decision.message_class, decision.effect, decision.reply) == (
        MessageClass.REVOCATION,
        Effect.PATIENT_PAUSE,
        "revocation_paused",
    )
