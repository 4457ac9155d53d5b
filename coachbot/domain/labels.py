"""Plain-language labels for the codes the database stores: one table per vocabulary, used by
every page that shows one, so a clinician never reads `red_flag` or
`plain_language_revocation`. A code with no label yet falls back to its words with the
underscores taken out, never to an empty cell."""

from __future__ import annotations

from coachbot.domain.red_flags import RedFlag
from coachbot.domain.states import AlertKind, AlertSeverity, AlertStatus, PatientStatus

ALERT_KINDS: dict[str, str] = {
    AlertKind.RED_FLAG: "Red flag",
    AlertKind.CRISIS: "Crisis: self-harm risk",
    AlertKind.SILENCE: "No reply",
    AlertKind.INVALID_NUMBER: "Number cannot get texts",
    AlertKind.OPT_OUT: "Texted STOP",
    AlertKind.REVOCATION: "Asked to stop the texts",
    AlertKind.REPLY_LOOP: "Automatic replies looping",
    AlertKind.CAREGIVER_CONCERN: "Caregiver concerned",
    AlertKind.CAREGIVER_NO_ANSWER: "Caregiver did not answer",
}

# What raised an alert (`alerts.detail`), beyond the red-flag names below.
ALERT_DETAILS: dict[str, str] = {
    "plain_language_revocation": "asked in their own words to stop",
    "caregiver_revocation": "the caregiver asked to stop their texts",
    "caregiver_stop": "the caregiver texted STOP",
    "stop_keyword": "texted STOP",
    "unspecified_symptom": "reported a symptom on the check-in",
    "reply_cap_reached": "the hour's reply limit was reached",
    "checkin_no_reply": "no answer to the daily check-in",
    "missed_in_a_row": "several texts in a row without an answer",
    "caregiver_worse": "the caregiver says worse",
    "caregiver_worried": "the caregiver is worried",
    "below_baseline": "fewer items as usual than the caregiver's first answer",
    "seen_today_worried": 'the caregiver answered 2 (worried) to "Have you seen them today?"',
    "caregiver_check_missed": "no answer to the caregiver's daily check, nor its reminder",
    "caregiver_seen_missed": 'no answer from the caregiver to "Have you seen them today?"',
}

RED_FLAGS: dict[str, str] = {
    "word_finding": "trouble finding words",
    "handwriting": "handwriting change",
    "severe_headache": "severe headache",
    "heart_rhythm": "heart rhythm",
    "head_injury": "head injury",
    "self_harm": "self-harm",
    "suicidal": "suicidal thoughts",
    "vomiting_diarrhoea": "vomiting or diarrhoea",
    "not_eating_drinking": "not eating or drinking",
    "severe_pain": "severe pain",
    "chest_pain": "chest pain",
    "breathing": "trouble breathing",
    "vision": "vision change",
}

SEVERITIES: dict[str, str] = {
    AlertSeverity.URGENT: "Urgent",
    AlertSeverity.HIGH: "High",
    AlertSeverity.NORMAL: "Normal",
}

ALERT_STATUSES: dict[str, str] = {
    AlertStatus.OPEN: "Waiting for someone",
    AlertStatus.ACKNOWLEDGED: "Acknowledged",
    AlertStatus.RESOLVED: "Resolved",
}

PATIENT_STATUSES: dict[str, str] = {
    PatientStatus.PENDING_CONSENT: "Waiting for YES",
    PatientStatus.ACTIVE: "Active",
    PatientStatus.PAUSED: "Paused",
    PatientStatus.OPTED_OUT: "Opted out",
    PatientStatus.DISCHARGED: "Discharged",
}

LANGUAGES: dict[str, str] = {"en": "English", "es": "Spanish"}

# Rows of the thread that carry no words of their own, said in words.
MUTED_REPLY = "No reply sent: the hour's limit of automatic replies was reached."
MUTED_INBOUND = "The bot did not answer this text (too many automatic replies this hour)."
NO_WORDS = "No words: an empty text or a picture only."

# What a row of the thread is (outbound_messages.kind; for texts received, who wrote).
MESSAGE_KINDS: dict[str, str] = {
    "welcome": "Welcome text",
    "nudge": "Coaching text",
    "reply": "Answer",
    "system": "Service message",
    "caregiver": "From the caregiver",
    # Texts to a caregiver (issue #16): the thread names the caregiver after "to".
    "caregiver_invite": "Invitation",
    "caregiver_check": "Daily observation check",
    "caregiver_seen": "Have you seen them today?",
    "caregiver_followup": "Check reminder",
}

# Delivery of a text we sent; "-" is a backend that reports none (the console).
DELIVERY: dict[str, str] = {
    "-": "delivery not tracked",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "read": "read",
}

# How the bot handled a text it received (inbound_messages.outcome), the common ones.
INBOUND_OUTCOMES: dict[str, str] = {
    "received": "received",
    "free_text": "for the care team to read",
    "red_flag": "red flag: care team alerted",
    "crisis": "crisis: care team alerted",
    "opt_in": "said YES to the texts",
    "opt_out": "texted STOP",
    "help": "asked for help",
    "staff_ack": "staff acknowledgement",
    "awaiting_consent": "before the patient said YES",
    "empty": "empty text",
    "caregiver_opt_in": "the caregiver said YES to the texts",
    "caregiver_opt_out": "the caregiver texted STOP",
    "caregiver_reminded": "before the caregiver said YES: asked again once",
    "caregiver_answer": "the caregiver's answer to the check",
    "caregiver_concern": "the caregiver's concern: care team alerted",
    "caregiver_answer_choice": "the caregiver said which person the answer was about",
    "caregiver_concern_choice": "the caregiver said which person: care team alerted",
    "caregiver_not_understood": "the caregiver's answer was not understood",
    "awaiting_choice": "waiting for the caregiver to say which person",
    "choice_applied": "the caregiver's answer, once they said which person",
    "caregiver_media": "a picture from the caregiver",
}

# The calendar heatmap's day states (queries.patient_page.HEAT_STATES).
HEAT_STATES: dict[str, str] = {
    "none": "nothing due",
    "waiting": "waiting for a reply",
    "missed": "missed",
    "skipped": "skipped",
    "partial": "partly done",
    "done": "done",
}


def _words(code: str) -> str:
    return code.replace("_", " ").replace("-", " ")


def alert_kind(kind: str) -> str:
    return ALERT_KINDS.get(kind, _words(kind).capitalize())


def alert_detail(detail: str | None) -> str:
    """The alert's cause in words: red flags by name ("confusion, trouble finding words"),
    carrier codes by number, anything else from the table."""
    if not detail:
        return ""
    if detail in ALERT_DETAILS:
        return ALERT_DETAILS[detail]
    if detail.startswith(("carrier_", "code_")):
        return f"carrier error {detail.rsplit('_', 1)[1]}"
    names = detail.split(",")
    flags = {f.name.lower() for f in RedFlag}
    if all(name in flags for name in names):
        return ", ".join(RED_FLAGS.get(name, _words(name)) for name in names)
    return _words(detail)


def severity(code: str) -> str:
    return SEVERITIES.get(code, _words(code).capitalize())


def alert_status(code: str) -> str:
    return ALERT_STATUSES.get(code, _words(code).capitalize())


def patient_status(code: str) -> str:
    return PATIENT_STATUSES.get(code, _words(code).capitalize())


def language(code: str) -> str:
    return LANGUAGES.get(code, code)


def message_kind(kind: str) -> str:
    return MESSAGE_KINDS.get(kind, _words(kind).capitalize())


def delivery(status: str) -> str:
    return DELIVERY.get(status, _words(status))


def inbound_outcome(outcome: str) -> str:
    """A text's handling in words; "_muted" (no answer sent) is said separately."""
    base = outcome.removesuffix("_muted")
    return INBOUND_OUTCOMES.get(base, _words(base))


def is_muted(outcome: str) -> bool:
    return outcome.endswith("_muted")


# A caregiver check that has no answer (issue #16), as the caregiver panel shows its day.
CAREGIVER_CHECK_STATES: dict[str, str] = {
    "due": "Not sent yet",
    "sending": "Sending",
    "sent": "Sent, waiting for an answer",
    "answered": "Answered",
    "missed": "Missed: no answer after the follow-up",
    "skipped": "Not sent (could not text the caregiver then)",
}


def caregiver_check_state(code: str) -> str:
    return CAREGIVER_CHECK_STATES.get(code, _words(code).capitalize())
