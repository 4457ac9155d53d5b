"""Table tests of the inbound decision (`coachbot.domain.triage.decide`), with no database.

Each row names who sent the text (patient by status, caregiver, unknown number), the text and
the prompt it may answer, and the whole decision expected: class, outcome label, consent
effect, reply template, alerts (kind, severity), whether a person must read it, whether it is
coached, and the answer recorded. The senders and prompts are in tests/support/triage_cases.py;
the rules that hold for every sender are in tests/unit/test_triage_rules.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from coachbot.content import load_library
from coachbot.domain.states import AdherenceOutcome, AlertKind, AlertSeverity
from coachbot.domain.triage import (
    ALWAYS_SENT,
    OWED_AFTER_STOP,
    Effect,
    MessageClass,
    OpenPrompt,
    SenderContext,
    decide,
)
from tests.support.triage_cases import (
    DIET,
    EXERCISE,
    REHAB,
    SENDERS,
    SLEEP,
    alerts_of,
    answer_of,
)

# --- messages, one of each kind -----------------------------------------------------------------

STOP = "STOP"
START = "START"
YES = "yes"
HELP = "HELP"
REVOKE = "please stop texting me"
RED_FLAG = "I fell in the bathroom"
CRISIS = "I want to end my life"
DONE = "done"
NUMBER = "7 hours"
PARTIAL = "2 of 3"
FREE = "what time is my appointment"
EMPTY = ""

A = AlertKind
S = AlertSeverity
OPT_OUT_ALERT = ((A.OPT_OUT, S.NORMAL),)
REVOCATION_ALERT = ((A.REVOCATION, S.HIGH),)
URGENT_RED_FLAG = ((A.RED_FLAG, S.URGENT),)
CRISIS_ALERT = ((A.CRISIS, S.URGENT),)


@dataclass(frozen=True)
class Expect:
    cls: MessageClass
    outcome: str
    effect: Effect | None = None
    reply: str | None = None
    alerts: tuple[tuple[AlertKind, AlertSeverity], ...] = ()
    needs_reading: bool = False
    coach: bool = False
    # (nudge id, outcome, value, unit) of the answer recorded
    answer: tuple[int, AdherenceOutcome, float | None, str | None] | None = None


def _row(
    sender: str,
    body: str,
    prompt: OpenPrompt | None,
    expect: Expect,
    *,
    media: int = 0,
) -> Any:  # a pytest.param
    label = body or ("<media>" if media else "<empty>")
    return pytest.param(SENDERS[sender], body, prompt, media, expect, id=f"{sender}:{label}")


def _done(
    prompt: OpenPrompt, value: float | None = None, unit: str | None = None
) -> tuple[int, AdherenceOutcome, float | None, str | None]:
    return (prompt.nudge_id, AdherenceOutcome.DONE, value, unit)


C = MessageClass
E = Effect

TABLE = [
    # --- an active patient ---------------------------------------------------------------------
    _row("active", STOP, DIET, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT, "stop_confirmation",
                                      OPT_OUT_ALERT)),
    _row("active", "s t o p", DIET, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT, "stop_confirmation",
                                           OPT_OUT_ALERT)),
    _row("active", "Unsubscribe!", DIET, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT,
                                                "stop_confirmation", OPT_OUT_ALERT)),
    _row("active", "baja", DIET, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT, "stop_confirmation",
                                        OPT_OUT_ALERT)),
    _row("active", START, DIET, Expect(C.OPT_IN, "opt_in_repeat", reply="start_confirmation")),
    _row("active", YES, DIET, Expect(C.ADHERENCE, "done", coach=True, answer=_done(DIET))),
    _row("active", HELP, DIET, Expect(C.HELP, "help", reply="help")),
    _row("active", "ayuda", None, Expect(C.HELP, "help", reply="help")),
    _row("active", REVOKE, DIET, Expect(C.REVOCATION, "revocation_paused", E.PATIENT_PAUSE,
                                        "revocation_paused", REVOCATION_ALERT)),
    _row("active", "ya no me manden mensajes", None,
         Expect(C.REVOCATION, "revocation_paused", E.PATIENT_PAUSE, "revocation_paused",
                REVOCATION_ALERT)),
    _row("active", RED_FLAG, DIET, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                          alerts=URGENT_RED_FLAG)),
    _row("active", CRISIS, DIET, Expect(C.CRISIS, "crisis", reply="crisis",
                                        alerts=CRISIS_ALERT)),
    _row("active", "quiero morirme", None, Expect(C.CRISIS, "crisis", reply="crisis",
                                                  alerts=CRISIS_ALERT)),
    _row("active", DONE, DIET, Expect(C.ADHERENCE, "done", coach=True, answer=_done(DIET))),
    _row("active", "skip", DIET, Expect(C.ADHERENCE, "skipped", coach=True,
                                        answer=(1, AdherenceOutcome.SKIPPED, None, None))),
    _row("active", NUMBER, SLEEP, Expect(C.ADHERENCE, "value", coach=True,
                                         answer=_done(SLEEP, 7, "hours"))),
    _row("active", "7", SLEEP, Expect(C.ADHERENCE, "value", coach=True,
                                      answer=_done(SLEEP, 7, "hours"))),
    _row("active", PARTIAL, REHAB, Expect(C.ADHERENCE, "partial", coach=True,
                                          answer=(3, AdherenceOutcome.PARTIAL, 0.67, "fraction"))),
    _row("active", FREE, DIET, Expect(C.FREE_TEXT, "free_text", reply="ack.free_text",
                                      needs_reading=True)),
    _row("active", DONE, None, Expect(C.FREE_TEXT, "free_text", reply="ack.free_text",
                                      needs_reading=True)),
    _row("active", EMPTY, DIET, Expect(C.EMPTY, "empty")),
    _row("active", EMPTY, DIET, Expect(C.FREE_TEXT, "media_only", reply="not_understood",
                                       needs_reading=True), media=1),
    # Danger is read before adherence: a temperature, a one-sided numbness and a pain score are
    # never an answer, whatever number they carry.
    _row("active", "38.9", REHAB, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                         alerts=URGENT_RED_FLAG)),
    _row("active", "temp 101F", REHAB, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                              alerts=URGENT_RED_FLAG)),
    _row("active", "numbness on one side of my face", DIET,
         Expect(C.RED_FLAG, "red_flag", reply="red_flag", alerts=URGENT_RED_FLAG)),
    _row("active", "pain 7/10", EXERCISE, Expect(C.FREE_TEXT, "free_text",
                                                 reply="ack.free_text", needs_reading=True)),
    # --- before consent: only the consent words count ------------------------------------------
    _row("pending", YES, None, Expect(C.OPT_IN, "opt_in", E.OPT_IN, "optin_confirmed")),
    _row("pending", START, None, Expect(C.OPT_IN, "opt_in", E.OPT_IN, "optin_confirmed")),
    _row("pending", STOP, None, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT, "stop_confirmation",
                                       OPT_OUT_ALERT)),
    _row("pending", HELP, None, Expect(C.HELP, "help", reply="help")),
    _row("pending", DONE, None, Expect(C.FREE_TEXT, "awaiting_consent", needs_reading=True)),
    _row("pending", RED_FLAG, None, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                           alerts=URGENT_RED_FLAG)),
    # --- paused by a clinician: START restarts, YES is an answer ------------------------------
    _row("clinician_paused", START, None, Expect(C.OPT_IN, "resume", E.OPT_IN,
                                                 "start_confirmation")),
    _row("clinician_paused", YES, DIET, Expect(C.ADHERENCE, "done_paused",
                                               answer=_done(DIET))),
    _row("clinician_paused", STOP, DIET, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT,
                                                "stop_confirmation", OPT_OUT_ALERT)),
    _row("clinician_paused", HELP, None, Expect(C.HELP, "help", reply="help")),
    _row("clinician_paused", REVOKE, None, Expect(C.REVOCATION, "revocation_paused",
                                                  E.PATIENT_PAUSE, "revocation_paused",
                                                  REVOCATION_ALERT)),
    _row("clinician_paused", RED_FLAG, DIET, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                                    alerts=URGENT_RED_FLAG)),
    _row("clinician_paused", CRISIS, None, Expect(C.CRISIS, "crisis", reply="crisis",
                                                  alerts=CRISIS_ALERT)),
    _row("clinician_paused", DONE, DIET, Expect(C.ADHERENCE, "done_paused",
                                                answer=_done(DIET))),
    _row("clinician_paused", NUMBER, SLEEP, Expect(C.ADHERENCE, "value_paused",
                                                   answer=_done(SLEEP, 7, "hours"))),
    _row("clinician_paused", PARTIAL, REHAB,
         Expect(C.ADHERENCE, "partial_paused",
                answer=(3, AdherenceOutcome.PARTIAL, 0.67, "fraction"))),
    _row("clinician_paused", FREE, DIET, Expect(C.FREE_TEXT, "free_text_paused",
                                                needs_reading=True)),
    _row("clinician_paused", EMPTY, None, Expect(C.EMPTY, "empty")),
    _row("clinician_paused", EMPTY, None, Expect(C.FREE_TEXT, "media_only_paused",
                                                 needs_reading=True), media=1),
    # --- paused by the patient's own words: START or YES restart, a repeat is silent ----------
    _row("self_paused", START, None, Expect(C.OPT_IN, "resume", E.OPT_IN, "start_confirmation")),
    _row("self_paused", YES, None, Expect(C.OPT_IN, "resume", E.OPT_IN, "start_confirmation")),
    _row("self_paused", YES, DIET, Expect(C.OPT_IN, "resume", E.OPT_IN, "start_confirmation")),
    _row("self_paused", REVOKE, None, Expect(C.REVOCATION, "revocation_repeat")),
    _row("self_paused", STOP, None, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT, "stop_confirmation",
                                           OPT_OUT_ALERT)),
    _row("self_paused", HELP, None, Expect(C.HELP, "help", reply="help")),
    _row("self_paused", RED_FLAG, None, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                               alerts=URGENT_RED_FLAG)),
    _row("self_paused", DONE, DIET, Expect(C.ADHERENCE, "done_paused", answer=_done(DIET))),
    _row("self_paused", FREE, None, Expect(C.FREE_TEXT, "free_text_paused",
                                           needs_reading=True)),
    # --- opted out: one confirmation ever, HELP answered, safety answered, START/YES restart ---
    _row("opted_out", STOP, None, Expect(C.OPT_OUT, "opt_out_repeat")),
    _row("opted_out", "quit", None, Expect(C.OPT_OUT, "opt_out_repeat")),
    _row("opted_out", HELP, None, Expect(C.HELP, "help_opted_out", reply="help")),
    _row("opted_out", START, None, Expect(C.OPT_IN, "resume", E.OPT_IN, "start_confirmation")),
    _row("opted_out", "UNSTOP", None, Expect(C.OPT_IN, "resume", E.OPT_IN,
                                             "start_confirmation")),
    _row("opted_out", YES, None, Expect(C.OPT_IN, "resume", E.OPT_IN, "start_confirmation")),
    _row("opted_out", REVOKE, None, Expect(C.FREE_TEXT, "ignored_opted_out",
                                           needs_reading=True)),
    _row("opted_out", RED_FLAG, None, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                             alerts=URGENT_RED_FLAG)),
    _row("opted_out", CRISIS, None, Expect(C.CRISIS, "crisis", reply="crisis",
                                           alerts=CRISIS_ALERT)),
    _row("opted_out", DONE, DIET, Expect(C.FREE_TEXT, "ignored_opted_out", needs_reading=True)),
    _row("opted_out", NUMBER, SLEEP, Expect(C.FREE_TEXT, "ignored_opted_out",
                                            needs_reading=True)),
    _row("opted_out", FREE, None, Expect(C.FREE_TEXT, "ignored_opted_out", needs_reading=True)),
    _row("opted_out", EMPTY, None, Expect(C.EMPTY, "empty")),
    # --- an active record on a number that texted STOP before it was enrolled -----------------
    _row("active_suppressed", STOP, None, Expect(C.OPT_OUT, "opt_out_repeat")),
    _row("active_suppressed", HELP, None, Expect(C.HELP, "help_opted_out", reply="help")),
    _row("active_suppressed", START, None, Expect(C.OPT_IN, "resume", E.OPT_IN,
                                                  "start_confirmation")),
    _row("active_suppressed", DONE, DIET, Expect(C.FREE_TEXT, "ignored_opted_out",
                                                 needs_reading=True)),
    # --- discharged: the programme does not restart ---------------------------------------------
    _row("discharged", START, None, Expect(C.OPT_IN, "opt_in_ignored_discharged")),
    _row("discharged", STOP, None, Expect(C.OPT_OUT, "opt_out", E.OPT_OUT, "stop_confirmation",
                                          OPT_OUT_ALERT)),
    _row("discharged", RED_FLAG, None, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                              alerts=URGENT_RED_FLAG)),
    _row("discharged", FREE, None, Expect(C.FREE_TEXT, "free_text_discharged",
                                          needs_reading=True)),
    # --- a caregiver: their STOP or revocation removes only them ------------------------------
    _row("caregiver", STOP, DIET, Expect(C.OPT_OUT, "caregiver_opt_out", E.CAREGIVER_REMOVED,
                                         "stop_confirmation", OPT_OUT_ALERT)),
    _row("caregiver", REVOKE, DIET, Expect(C.REVOCATION, "caregiver_revocation",
                                           E.CAREGIVER_REMOVED, "stop_confirmation",
                                           ((A.REVOCATION, S.NORMAL),))),
    _row("caregiver", START, None, Expect(C.OPT_IN, "caregiver_opt_in_repeat")),
    _row("caregiver", YES, DIET, Expect(C.ADHERENCE, "done", coach=True, answer=_done(DIET))),
    _row("caregiver", HELP, None, Expect(C.HELP, "help", reply="help")),
    _row("caregiver", RED_FLAG, DIET, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                             alerts=URGENT_RED_FLAG)),
    _row("caregiver", CRISIS, None, Expect(C.CRISIS, "crisis", reply="crisis",
                                           alerts=CRISIS_ALERT)),
    _row("caregiver", DONE, DIET, Expect(C.ADHERENCE, "done", coach=True, answer=_done(DIET))),
    _row("caregiver", FREE, DIET, Expect(C.FREE_TEXT, "free_text", reply="ack.free_text",
                                         needs_reading=True)),
    _row("caregiver_suppressed", STOP, None, Expect(C.OPT_OUT, "caregiver_opt_out_repeat")),
    _row("caregiver_suppressed", START, None, Expect(C.OPT_IN, "caregiver_opt_in", E.OPT_IN,
                                                     "caregiver.optin_confirmed")),
    _row("caregiver_suppressed", YES, None, Expect(C.OPT_IN, "caregiver_opt_in", E.OPT_IN,
                                                   "caregiver.optin_confirmed")),
    # --- a caregiver's own double opt-in: their YES (SI, START) while pending ----------------
    _row("caregiver_pending", YES, None, Expect(C.OPT_IN, "caregiver_opt_in", E.OPT_IN,
                                                "caregiver.optin_confirmed")),
    _row("caregiver_pending", "Si", None, Expect(C.OPT_IN, "caregiver_opt_in", E.OPT_IN,
                                                 "caregiver.optin_confirmed")),
    _row("caregiver_pending", START, None, Expect(C.OPT_IN, "caregiver_opt_in", E.OPT_IN,
                                                  "caregiver.optin_confirmed")),
    _row("caregiver_pending", STOP, None, Expect(C.OPT_OUT, "caregiver_opt_out",
                                                 E.CAREGIVER_REMOVED, "stop_confirmation",
                                                 OPT_OUT_ALERT)),
    _row("caregiver_pending", FREE, None, Expect(C.FREE_TEXT, "awaiting_consent",
                                                 needs_reading=True)),
    _row("caregiver_opted_out", STOP, None, Expect(C.OPT_OUT, "caregiver_opt_out_repeat")),
    _row("caregiver_opted_out", "Basta", None, Expect(C.OPT_OUT, "caregiver_opt_out_repeat")),
    _row("caregiver_opted_out", YES, None, Expect(C.OPT_IN, "caregiver_opt_in", E.OPT_IN,
                                                  "caregiver.optin_confirmed")),
    _row("caregiver_opted_out", FREE, None, Expect(C.FREE_TEXT, "ignored_opted_out",
                                                   needs_reading=True)),
    # --- a number we do not know: nothing but safety and HELP ---------------------------------
    _row("unknown", STOP, None, Expect(C.OPT_OUT, "unknown_sender_opt_out", E.OPT_OUT)),
    _row("unknown", HELP, None, Expect(C.HELP, "unknown_sender_help", reply="help")),
    _row("unknown", START, None, Expect(C.OPT_IN, "unknown_opt_in_repeat")),
    _row("unknown", YES, None, Expect(C.FREE_TEXT, "unknown_sender", needs_reading=True)),
    _row("unknown", REVOKE, None, Expect(C.REVOCATION, "unknown_sender_revocation", E.OPT_OUT,
                                         needs_reading=True)),
    _row("unknown", RED_FLAG, None, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                           alerts=URGENT_RED_FLAG)),
    _row("unknown", CRISIS, None, Expect(C.CRISIS, "crisis", reply="crisis",
                                         alerts=CRISIS_ALERT)),
    _row("unknown", DONE, None, Expect(C.FREE_TEXT, "unknown_sender", needs_reading=True)),
    _row("unknown", FREE, None, Expect(C.FREE_TEXT, "unknown_sender", needs_reading=True)),
    _row("unknown", EMPTY, None, Expect(C.EMPTY, "empty")),
    _row("unknown_suppressed", STOP, None, Expect(C.OPT_OUT, "unknown_sender_opt_out_repeat")),
    _row("unknown_suppressed", HELP, None, Expect(C.HELP, "unknown_sender_help", reply="help")),
    _row("unknown_suppressed", START, None, Expect(C.OPT_IN, "unknown_opt_in", E.OPT_IN,
                                                   "start_confirmation")),
    _row("unknown_suppressed", RED_FLAG, None, Expect(C.RED_FLAG, "red_flag", reply="red_flag",
                                                      alerts=URGENT_RED_FLAG)),
    _row("unknown_suppressed", FREE, None, Expect(C.FREE_TEXT, "unknown_sender",
                                                  needs_reading=True)),
]  # fmt: skip


@pytest.mark.parametrize(("sender", "body", "prompt", "media", "expect"), TABLE)
def test_the_decision_for_each_sender_and_kind_of_message(
    sender: SenderContext, body: str, prompt: OpenPrompt | None, media: int, expect: Expect
) -> None:
    decision = decide(body, sender, (prompt,) if prompt else (), num_media=media)
    got = Expect(
        decision.message_class,
        decision.outcome,
        decision.effect,
        decision.reply,
        alerts_of(decision),
        decision.needs_reading,
        decision.coach,
        answer_of(decision),
    )
    assert got == expect


# --- the reply lists ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_template_that_is_always_sent_is_a_real_template(language: str) -> None:
    library = load_library()
    missing = sorted(t for t in ALWAYS_SENT if not library.has_template(t, language))
    assert missing == []


def test_the_replies_owed_after_stop_are_all_always_sent() -> None:
    assert OWED_AFTER_STOP <= ALWAYS_SENT
    assert {"help", "stop_confirmation", "red_flag", "crisis"} <= OWED_AFTER_STOP
    # Coaching acknowledgements stay under the loop guard.
    assert not {t for t in ALWAYS_SENT if t.startswith(("ack.", "tip.", "nudge."))}


def test_every_reply_a_decision_names_is_a_real_template() -> None:
    library = load_library()
    named = {row.values[-1].reply for row in TABLE if row.values[-1].reply}
    missing = sorted(t for t in named if not library.has_template(t, "en"))
    assert missing == []
