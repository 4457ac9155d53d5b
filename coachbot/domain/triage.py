"""What one inbound text means and what must happen because of it: one pure decision.

``decide`` takes the message, who sent it (a patient, their caregiver, a number we do not know)
and the prompts still open for an answer, and returns a ``Decision``: the message's class, the
red-flag categories, the adherence answer if there is one, the reply to send and the alerts to
raise. It does no I/O: the inbound service reads the sender and their open nudges, calls it, and
carries the decision out in one transaction (``coachbot.services.inbound``).

The rule, in order
------------------
1. Consent keywords are exact words (``keywords.classify_compliance``): an opt-out is honoured
   before anything else, HELP is always answered, START/UNSTOP (and YES where it means consent)
   restart texting.
2. Danger next: every message is checked for red flags and crisis words
   (``red_flags.find_red_flags``; on an open symptom check-in also ``parse_checkin``) before it
   can mean anything else. A red flag or a crisis raises an alert for a person and gets the fixed
   safety reply, whoever sent it and whatever their consent state: answering a message is allowed,
   and someone in danger started that conversation.
3. A plain-language request to stop ("please stop texting me") pauses the sender's texts.
4. A message becomes an adherence answer only when it confidently is one
   (``replies.parse_reply``) and a prompt is open for it. A number counts only when the message is
   essentially a number answer to an open numeric prompt ("7", "7 hours", "slept 7h"), never when
   other content words come with it (a temperature, a pain score, a count, a symptom); number
   words inside prose are not answers.
5. Anything uncertain is free text for a person: it goes to the "To read" inbox, and the patient
   is told only what will happen.

Decisions
---------
* Replies that protect the patient or the law (``ALWAYS_SENT``: HELP, opt-out and pause
  confirmations, opt-in confirmations, red-flag and crisis replies) are never muted by the
  reply-loop guard; it limits coaching acknowledgements only.
* A patient who paused themselves in their own words restarts with START or YES; a pause made by
  a clinician or by the system is lifted by START or the clinician, and there YES is an ordinary
  answer (so "yes" to an open check-in is a symptom).
* A caregiver has their own consent: their YES/SI/START while pending (or after their STOP) makes
  them active. Their STOP or revocation ends only that caregiver's texts (they are opted out and
  their number suppressed); the patient goes on, and the clinician gets a normal alert.
* A number we do not know gets nothing but the safety reply to a red flag or crisis, and the HELP
  text (carriers expect HELP answered). Its STOP suppresses the number without a reply (carriers
  confirm STOP themselves); its red flag raises an alert with no patient attached.
* An opted-out number gets exactly one STOP confirmation, ever: a repeated STOP is silent.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from coachbot.domain.keywords import ComplianceKeyword, classify_compliance, is_revocation
from coachbot.domain.red_flags import RedFlag, Severity, find_red_flags, is_crisis, severity
from coachbot.domain.replies import Expectation, ParsedReply, ReplyKind, parse_reply
from coachbot.domain.states import AdherenceOutcome, AlertKind, AlertSeverity, PatientStatus

__all__ = [
    "ALWAYS_SENT",
    "OWED_AFTER_STOP",
    "AlertSpec",
    "Answer",
    "Decision",
    "Effect",
    "MessageClass",
    "OpenPrompt",
    "SenderContext",
    "SenderRole",
    "decide",
]


class SenderRole(enum.Enum):
    PATIENT = "patient"
    CAREGIVER = "caregiver"
    UNKNOWN = "unknown"  # no record has this number (a former caregiver included)


class MessageClass(enum.Enum):
    OPT_OUT = "opt_out"  # a carrier opt-out keyword, in either language
    OPT_IN = "opt_in"  # START / UNSTOP, or YES where it means consent
    HELP = "help"
    REVOCATION = "revocation"  # a plain-language request to stop
    CRISIS = "crisis"  # suicidal thoughts or self-harm
    RED_FLAG = "red_flag"
    ADHERENCE = "adherence"
    FREE_TEXT = "free_text"
    EMPTY = "empty"


class Effect(enum.Enum):
    """The consent or status change the message asks for; the service applies it."""

    OPT_OUT = "opt_out"  # suppress the number; a patient's own number: status opted-out
    OPT_IN = "opt_in"  # lift the suppression; pending or stopped/paused patient: active
    PATIENT_PAUSE = "patient_pause"  # the patient paused themselves, in their own words
    CAREGIVER_REMOVED = "caregiver_removed"  # the caregiver's number leaves every patient


@dataclass(frozen=True, slots=True)
class SenderContext:
    role: SenderRole
    status: PatientStatus | None = None  # the patient's (also for their caregiver)
    paused_by_patient: bool = False  # a PAUSED patient paused themselves
    number_suppressed: bool = False  # this very number texted STOP and has not restarted


@dataclass(frozen=True, slots=True)
class OpenPrompt:
    """A nudge that was sent and still takes an answer."""

    nudge_id: int
    track: str
    expectation: Expectation


@dataclass(frozen=True, slots=True)
class Answer:
    """An adherence answer to ``prompt``: what to record."""

    prompt: OpenPrompt
    outcome: AdherenceOutcome
    value: float | None = None
    unit: str | None = None
    typo_corrected: bool = False


@dataclass(frozen=True, slots=True)
class AlertSpec:
    kind: AlertKind
    severity: AlertSeverity
    detail: str  # codes only, never message text


@dataclass(frozen=True, slots=True)
class Decision:
    message_class: MessageClass
    outcome: str  # the inbound row's outcome label (timeline, metrics)
    flags: tuple[RedFlag, ...] = ()
    severity: Severity = Severity.NONE
    answer: Answer | None = None
    effect: Effect | None = None
    reply: str | None = None  # a fixed template id; see ``coach`` for acknowledgements
    coach: bool = False  # acknowledge the answer with a coaching reply (streak, tip)
    alerts: tuple[AlertSpec, ...] = ()
    needs_reading: bool = False  # a person must read it (the "To read" inbox)
    prompt: OpenPrompt | None = None  # the prompt the message was read against

    @property
    def is_danger(self) -> bool:
        return self.message_class in (MessageClass.RED_FLAG, MessageClass.CRISIS)


# Replies owed to whoever texted us even after their number opted out: HELP, the one STOP
# or pause confirmation, and the safety texts (the SMS gateway's suppression guard lets
# exactly these through).
OWED_AFTER_STOP: frozenset[str] = frozenset(
    {"help", "stop_confirmation", "revocation_paused", "red_flag", "crisis", "crisis_no_line"}
)
# Replies no cap may mute: safety and compliance (the opt-in confirmations go only once the
# number has restarted).
ALWAYS_SENT: frozenset[str] = OWED_AFTER_STOP | {
    "start_confirmation",
    "optin_confirmed",
    "caregiver.optin_confirmed",
    # A caregiver told "we have let the clinic know" must not be left wondering.
    "caregiver.ack_concern",
}

_ANSWER_KINDS: dict[ReplyKind, AdherenceOutcome] = {
    ReplyKind.DONE: AdherenceOutcome.DONE,
    ReplyKind.NUMBER: AdherenceOutcome.DONE,
    ReplyKind.CHECKIN_CLEAR: AdherenceOutcome.DONE,
    ReplyKind.SKIP: AdherenceOutcome.SKIPPED,
    ReplyKind.PARTIAL: AdherenceOutcome.PARTIAL,
}


def decide(
    body: str,
    sender: SenderContext,
    prompts: Sequence[OpenPrompt] = (),
    *,
    num_media: int = 0,
) -> Decision:
    """The decision for one text; ``prompts`` are the sender's open prompts, newest first.
    Pure and total: never raises, whatever the text."""
    keyword = classify_compliance(body)
    if keyword is ComplianceKeyword.OPT_OUT:
        return _opt_out(sender)
    if keyword is ComplianceKeyword.HELP:
        return Decision(MessageClass.HELP, _help_outcome(sender), reply="help")

    parsed, prompt = _read(body, prompts)
    danger = _danger(body, parsed, prompt)
    if keyword is not None and danger is None:
        consent = _consent(keyword, sender)
        if consent is not None:
            return consent
    revoked = keyword is None and _may_revoke(sender) and is_revocation(body)
    if danger is not None:
        return _with_revocation(danger, sender) if revoked else danger
    if revoked:
        return _revocation(sender)
    return _answer_or_free_text(parsed, prompt, sender, num_media)


# --- reading ----------------------------------------------------------------------------------


def _read(body: str, prompts: Sequence[OpenPrompt]) -> tuple[ParsedReply, OpenPrompt | None]:
    """The reply read against the newest open prompt, or against the one whose track it names
    ("slept 7h" answers the sleep nudge even when the exercise nudge went out later). A reply
    that names a track with no open prompt answers nothing: "slept 7 hours" while only the
    exercise nudge is open is not 420 minutes of exercise, so a person reads it."""
    prompt = prompts[0] if prompts else None
    parsed = parse_reply(body, prompt.expectation if prompt else Expectation.NONE)
    named = parsed.named_track
    if named is not None and prompt is not None and prompt.track != named:
        other = next((p for p in prompts if p.track == named), None)
        if other is None:
            return parse_reply(body, Expectation.NONE), None
        prompt = other
        parsed = parse_reply(body, other.expectation)
    return parsed, prompt


def _danger(body: str, parsed: ParsedReply, prompt: OpenPrompt | None) -> Decision | None:
    # Read from the text itself, not only through parse_reply: whatever else the text is (a
    # request to stop, an answer), danger is looked for first.
    flags = find_red_flags(body) or parsed.red_flags
    if parsed.kind is not ReplyKind.RED_FLAG and not flags:
        return None
    # A check-in answered "yes" (symptoms, unspecified) arrives as RED_FLAG with no flag.
    level = severity(flags) if flags else Severity.HIGH
    detail = ",".join(f.name.lower() for f in flags) or "unspecified_symptom"
    answer = None
    if prompt is not None and prompt.expectation is Expectation.CHECKIN:
        # The check-in was answered (with a symptom): it is not silence.
        answer = Answer(prompt, AdherenceOutcome.DONE)
    if is_crisis(flags):
        return Decision(
            MessageClass.CRISIS,
            "crisis",
            flags=flags,
            severity=Severity.URGENT,
            answer=answer,
            reply="crisis",
            alerts=(AlertSpec(AlertKind.CRISIS, AlertSeverity.URGENT, detail),),
            prompt=prompt,
        )
    alert_severity = AlertSeverity.URGENT if level is Severity.URGENT else AlertSeverity.HIGH
    return Decision(
        MessageClass.RED_FLAG,
        "red_flag",
        flags=flags,
        severity=level,
        answer=answer,
        reply="red_flag",
        alerts=(AlertSpec(AlertKind.RED_FLAG, alert_severity, detail),),
        prompt=prompt,
    )


# --- consent ----------------------------------------------------------------------------------


def _opt_out(sender: SenderContext) -> Decision:
    if sender.role is SenderRole.CAREGIVER:
        if sender.number_suppressed or sender.status == PatientStatus.OPTED_OUT:
            return Decision(MessageClass.OPT_OUT, "caregiver_opt_out_repeat")
        return _caregiver_leaves(MessageClass.OPT_OUT, AlertKind.OPT_OUT, "caregiver_stop")
    if sender.role is SenderRole.UNKNOWN:
        # Carriers confirm STOP themselves; a number we do not know gets no answer, and a
        # former caregiver's repeated STOP no second confirmation.
        if sender.number_suppressed:
            return Decision(MessageClass.OPT_OUT, "unknown_sender_opt_out_repeat")
        return Decision(MessageClass.OPT_OUT, "unknown_sender_opt_out", effect=Effect.OPT_OUT)
    if sender.status == PatientStatus.OPTED_OUT or sender.number_suppressed:
        return Decision(MessageClass.OPT_OUT, "opt_out_repeat")  # one confirmation, ever
    return Decision(
        MessageClass.OPT_OUT,
        "opt_out",
        effect=Effect.OPT_OUT,
        reply="stop_confirmation",
        alerts=(AlertSpec(AlertKind.OPT_OUT, AlertSeverity.NORMAL, "stop_keyword"),),
    )


def _caregiver_leaves(message_class: MessageClass, kind: AlertKind, detail: str) -> Decision:
    """A caregiver's STOP or revocation: only that number leaves, with one confirmation, and
    the clinician is told (normal severity: the patient's own texts go on)."""
    return Decision(
        message_class,
        "caregiver_opt_out" if message_class is MessageClass.OPT_OUT else "caregiver_revocation",
        effect=Effect.CAREGIVER_REMOVED,
        reply="stop_confirmation",
        alerts=(AlertSpec(kind, AlertSeverity.NORMAL, detail),),
    )


def _help_outcome(sender: SenderContext) -> str:
    if sender.role is SenderRole.UNKNOWN:
        return "unknown_sender_help"
    if sender.status == PatientStatus.OPTED_OUT or sender.number_suppressed:
        return "help_opted_out"  # answered all the same; texting does not restart
    return "help"


def _consent(keyword: ComplianceKeyword, sender: SenderContext) -> Decision | None:
    """START / UNSTOP / YES; None when the word is an ordinary answer here."""
    if sender.role is SenderRole.CAREGIVER:
        return _caregiver_consent(keyword, sender)
    if sender.role is not SenderRole.PATIENT:
        if not sender.number_suppressed:
            if keyword is ComplianceKeyword.YES:
                return None  # a caregiver's "yes" answers the nudge like the patient's would
            return Decision(MessageClass.OPT_IN, f"{sender.role.value}_opt_in_repeat")
        # The number restarts: only its own suppression is lifted, no patient changes. The
        # confirmation carriers expect names no patient (see the template).
        return Decision(
            MessageClass.OPT_IN,
            f"{sender.role.value}_opt_in",
            effect=Effect.OPT_IN,
            reply="start_confirmation",
        )
    status = sender.status
    if status == PatientStatus.PENDING_CONSENT:
        return Decision(
            MessageClass.OPT_IN, "opt_in", effect=Effect.OPT_IN, reply="optin_confirmed"
        )
    restartable = status == PatientStatus.OPTED_OUT or (
        status == PatientStatus.PAUSED
        and (keyword is ComplianceKeyword.OPT_IN or sender.paused_by_patient)
    )
    if restartable or (sender.number_suppressed and status != PatientStatus.DISCHARGED):
        return Decision(
            MessageClass.OPT_IN, "resume", effect=Effect.OPT_IN, reply="start_confirmation"
        )
    if keyword is ComplianceKeyword.OPT_IN and status == PatientStatus.ACTIVE:
        # START while active: confirm, change nothing.
        return Decision(MessageClass.OPT_IN, "opt_in_repeat", reply="start_confirmation")
    if keyword is ComplianceKeyword.OPT_IN:
        return Decision(MessageClass.OPT_IN, f"opt_in_ignored_{status}")  # discharged
    return None  # "yes" from an active or clinician-paused patient is an ordinary answer


def _caregiver_consent(keyword: ComplianceKeyword, sender: SenderContext) -> Decision | None:
    """The caregiver's own double opt-in: YES, SI or START from a caregiver not yet active
    (pending, or opted out) makes them active, lifting their number's suppression. An active
    caregiver's START is confirmed by nothing; their YES is no keyword (None)."""
    waiting = sender.status != PatientStatus.ACTIVE or sender.number_suppressed
    if waiting:
        return Decision(
            MessageClass.OPT_IN,
            "caregiver_opt_in",
            effect=Effect.OPT_IN,
            reply="caregiver.optin_confirmed",
        )
    if keyword is ComplianceKeyword.YES:
        return None
    return Decision(MessageClass.OPT_IN, "caregiver_opt_in_repeat")


def _may_revoke(sender: SenderContext) -> bool:
    # An opted-out number has nothing left to revoke.
    return sender.status != PatientStatus.OPTED_OUT and not sender.number_suppressed


def _revocation(sender: SenderContext) -> Decision:
    if sender.role is SenderRole.CAREGIVER:
        return _caregiver_leaves(
            MessageClass.REVOCATION, AlertKind.REVOCATION, "caregiver_revocation"
        )
    if sender.role is SenderRole.UNKNOWN:
        # "wrong number": nothing goes to this number again until it texts START.
        return Decision(
            MessageClass.REVOCATION,
            "unknown_sender_revocation",
            effect=Effect.OPT_OUT,
            needs_reading=True,
        )
    if sender.status == PatientStatus.PAUSED and sender.paused_by_patient:
        return Decision(MessageClass.REVOCATION, "revocation_repeat")  # confirmed once already
    return Decision(
        MessageClass.REVOCATION,
        "revocation_paused",
        effect=Effect.PATIENT_PAUSE,
        reply="revocation_paused",
        alerts=(AlertSpec(AlertKind.REVOCATION, AlertSeverity.HIGH, "plain_language_revocation"),),
    )


def _with_revocation(danger: Decision, sender: SenderContext) -> Decision:
    """A revocation that also reports danger: the pause and both alerts, and the safety reply,
    which matters more than the pause notice."""
    pause = _revocation(sender)
    return Decision(
        danger.message_class,
        danger.outcome,
        flags=danger.flags,
        severity=danger.severity,
        answer=danger.answer,
        effect=pause.effect,
        reply=danger.reply,
        alerts=danger.alerts + pause.alerts,
        prompt=danger.prompt,
    )


# --- answers ----------------------------------------------------------------------------------


def _answer_or_free_text(
    parsed: ParsedReply,
    prompt: OpenPrompt | None,
    sender: SenderContext,
    num_media: int,
) -> Decision:
    role, status = sender.role, sender.status
    if parsed.kind is ReplyKind.EMPTY and num_media == 0:
        return Decision(MessageClass.EMPTY, "empty", prompt=prompt)
    if role is SenderRole.UNKNOWN:
        return Decision(MessageClass.FREE_TEXT, "unknown_sender", needs_reading=True)
    if status == PatientStatus.OPTED_OUT or sender.number_suppressed:
        # Nothing but safety and HELP goes to an opted-out number; a person still reads it.
        return Decision(MessageClass.FREE_TEXT, "ignored_opted_out", needs_reading=True)
    if status == PatientStatus.PENDING_CONSENT:
        return Decision(MessageClass.FREE_TEXT, "awaiting_consent", needs_reading=True)
    if parsed.kind is ReplyKind.EMPTY:
        # A picture we cannot read: a person looks at it, and the patient is told so.
        return _free_text(sender, prompt, "media_only", "not_understood")
    outcome = _ANSWER_KINDS.get(parsed.kind)
    if prompt is None or outcome is None:
        return _free_text(sender, prompt, "free_text", "ack.free_text")
    answer = Answer(prompt, outcome, parsed.value, parsed.unit, parsed.typo_corrected)
    label = {
        AdherenceOutcome.SKIPPED: "skipped",
        AdherenceOutcome.PARTIAL: "partial",
    }.get(outcome, "done" if parsed.value is None else "value")
    active = status == PatientStatus.ACTIVE
    return Decision(
        MessageClass.ADHERENCE,
        label if active else f"{label}_{status}",
        answer=answer,
        coach=active,
        prompt=prompt,
    )


def _free_text(
    sender: SenderContext, prompt: OpenPrompt | None, label: str, template: str
) -> Decision:
    active = sender.status == PatientStatus.ACTIVE
    return Decision(
        MessageClass.FREE_TEXT,
        label if active else f"{label}_{sender.status}",
        reply=template if active else None,
        needs_reading=True,
        prompt=prompt,
    )
