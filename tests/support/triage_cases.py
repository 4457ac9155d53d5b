"""The senders and open prompts of the inbound decision's tests (`coachbot.domain.triage.decide`),
and what a decision's answer and alerts read as in their tables. Shared by the table of
decisions (tests/unit/test_triage.py) and the rules that hold whatever the table says
(tests/unit/test_triage_rules.py)."""

from __future__ import annotations

from coachbot.domain.replies import Expectation
from coachbot.domain.states import AdherenceOutcome, AlertKind, AlertSeverity, PatientStatus
from coachbot.domain.triage import Decision, OpenPrompt, SenderContext, SenderRole

# --- senders ----------------------------------------------------------------------------------

ACTIVE = SenderContext(SenderRole.PATIENT, PatientStatus.ACTIVE)
PENDING = SenderContext(SenderRole.PATIENT, PatientStatus.PENDING_CONSENT)
CLINICIAN_PAUSED = SenderContext(SenderRole.PATIENT, PatientStatus.PAUSED)
SELF_PAUSED = SenderContext(SenderRole.PATIENT, PatientStatus.PAUSED, paused_by_patient=True)
OPTED_OUT = SenderContext(SenderRole.PATIENT, PatientStatus.OPTED_OUT, number_suppressed=True)
DISCHARGED = SenderContext(SenderRole.PATIENT, PatientStatus.DISCHARGED)
# Enrolled anew on a number that texted STOP earlier: the record is active, the number is not.
ACTIVE_SUPPRESSED = SenderContext(SenderRole.PATIENT, PatientStatus.ACTIVE, number_suppressed=True)
CAREGIVER = SenderContext(SenderRole.CAREGIVER, PatientStatus.ACTIVE)
CAREGIVER_SUPPRESSED = SenderContext(
    SenderRole.CAREGIVER, PatientStatus.ACTIVE, number_suppressed=True
)
CAREGIVER_PENDING = SenderContext(SenderRole.CAREGIVER, PatientStatus.PENDING_CONSENT)
CAREGIVER_OPTED_OUT = SenderContext(
    SenderRole.CAREGIVER, PatientStatus.OPTED_OUT, number_suppressed=True
)
UNKNOWN = SenderContext(SenderRole.UNKNOWN)
# A former caregiver (removed by their STOP) or a stranger who texted STOP.
UNKNOWN_SUPPRESSED = SenderContext(SenderRole.UNKNOWN, number_suppressed=True)

SENDERS = {
    "active": ACTIVE,
    "pending": PENDING,
    "clinician_paused": CLINICIAN_PAUSED,
    "self_paused": SELF_PAUSED,
    "opted_out": OPTED_OUT,
    "discharged": DISCHARGED,
    "active_suppressed": ACTIVE_SUPPRESSED,
    "caregiver": CAREGIVER,
    "caregiver_suppressed": CAREGIVER_SUPPRESSED,
    "caregiver_pending": CAREGIVER_PENDING,
    "caregiver_opted_out": CAREGIVER_OPTED_OUT,
    "unknown": UNKNOWN,
    "unknown_suppressed": UNKNOWN_SUPPRESSED,
}

# --- prompts ----------------------------------------------------------------------------------

DIET = OpenPrompt(1, "diet", Expectation.DONE_SKIP)
SLEEP = OpenPrompt(2, "sleep", Expectation.SLEEP_HOURS)
REHAB = OpenPrompt(3, "rehab", Expectation.DONE_SKIP)
EXERCISE = OpenPrompt(4, "exercise", Expectation.MINUTES)
CHECKIN = OpenPrompt(5, "checkin", Expectation.CHECKIN)


def answer_of(decision: Decision) -> tuple[int, AdherenceOutcome, float | None, str | None] | None:
    a = decision.answer
    if a is None:
        return None
    return (a.prompt.nudge_id, a.outcome, a.value, a.unit)


def alerts_of(decision: Decision) -> tuple[tuple[AlertKind, AlertSeverity], ...]:
    return tuple((spec.kind, spec.severity) for spec in decision.alerts)
