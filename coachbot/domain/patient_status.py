"""Every change of a patient's status, in one table: what the patient texts (STOP, START or
YES, "please stop texting me"), what a clinician does (pause, resume, discharge) and what
the provider says about the number (it cannot receive SMS, or it unsubscribed at the
carrier), and a new number, which needs its own opt-in. Pure: the caller reads the facts,
asks `transition`, and writes what it answers.

    >>> now = PatientState(PatientStatus.PAUSED, paused_by=PausedBy.PATIENT, opted_in=True)
    >>> refused = transition(now, Event.RESUME)
    >>> refused.allowed, refused.refusal, refused.patient_owned
    (False, <Refusal.PATIENT_PAUSED: 'patient_paused'>, True)
    >>> done = transition(now, Event.OPT_IN)
    >>> done.allowed, done.status, done.paused_by, done.changed
    (True, <PatientStatus.ACTIVE: 'active'>, None, True)

Consent belongs to the patient (the FCC's 2024 revocation rule): texts the patient stopped
themselves restart only when they text START or YES, never by a clinician's resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from coachbot.domain.states import PatientStatus

_PENDING = PatientStatus.PENDING_CONSENT
_ACTIVE = PatientStatus.ACTIVE
_PAUSED = PatientStatus.PAUSED
_OPTED_OUT = PatientStatus.OPTED_OUT
_DISCHARGED = PatientStatus.DISCHARGED


class Event(StrEnum):
    OPT_OUT = "opt_out"  # a STOP keyword, any language, from the patient's own number
    OPT_IN = "opt_in"  # YES to the welcome, or START / UNSTOP / YES to restart
    REVOCATION = "revocation"  # "please stop texting me" in the patient's own words
    PAUSE = "pause"  # by a clinician
    RESUME = "resume"  # by a clinician
    DISCHARGE = "discharge"  # by a clinician
    NUMBER_CHANGED = "number_changed"  # by a clinician: a new number is a new person
    INVALID_NUMBER = "invalid_number"  # the provider: the number cannot receive SMS
    CARRIER_OPT_OUT = "carrier_opt_out"  # the provider: unsubscribed at the carrier (21610)


class PausedBy(StrEnum):
    """Who paused a patient (Patient.paused_by): it decides who may restart the texts."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    SYSTEM = "system"  # the number could not receive texts; a clinician resumes once fixed


class Refusal(StrEnum):
    NOT_FROM_STATUS = "not_from_status"  # the event does not apply to the current status
    ALREADY = "already"  # the patient is already where the event leads: nothing changes
    PATIENT_OPTED_OUT = "patient_opted_out"  # they texted STOP: only their START restarts
    PATIENT_PAUSED = "patient_paused"  # they asked to stop: only their START or YES restarts
    NUMBER_SUPPRESSED = "number_suppressed"  # the number texted STOP: only its START restarts
    NEVER_OPTED_IN = "never_opted_in"  # a resume never stands in for the patient's own YES
    DISCHARGED = "discharged"  # the number may restart; a discharged programme does not


#: Refusals that protect the patient's own consent decision (audited, kept in the ledger).
PATIENT_OWNED = frozenset(
    {Refusal.PATIENT_OPTED_OUT, Refusal.PATIENT_PAUSED, Refusal.NUMBER_SUPPRESSED}
)


@dataclass(frozen=True, slots=True)
class PatientState:
    """What a transition depends on. `number_suppressed`: the patient's number is on the
    suppression list (it texted STOP and has not texted START since)."""

    status: PatientStatus
    paused_by: PausedBy | None = None
    opted_in: bool = False
    number_suppressed: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """The status and pauser after the event; when refused, the unchanged ones and why."""

    status: PatientStatus
    paused_by: PausedBy | None
    changed: bool
    refusal: Refusal | None = None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def patient_owned(self) -> bool:
        return self.refusal in PATIENT_OWNED


_ANY_BUT_OPTED_OUT = dict.fromkeys((_PENDING, _ACTIVE, _PAUSED, _DISCHARGED), _OPTED_OUT)

#: event -> {status it applies to: status it leads to}. A status missing from an event's
#: row refuses it (NOT_FROM_STATUS), except where `_refusal_before_table` says otherwise.
TRANSITIONS: dict[Event, dict[PatientStatus, PatientStatus]] = {
    # A STOP ends texting from any status, a discharged patient's too (the record shows it).
    Event.OPT_OUT: _ANY_BUT_OPTED_OUT,
    Event.CARRIER_OPT_OUT: _ANY_BUT_OPTED_OUT,
    # START while active (a suppressed number restarting) confirms and keeps it active.
    Event.OPT_IN: {_PENDING: _ACTIVE, _ACTIVE: _ACTIVE, _PAUSED: _ACTIVE, _OPTED_OUT: _ACTIVE},
    # Texts stop at once, before anyone reads the words; a clinician's pause becomes theirs.
    Event.REVOCATION: dict.fromkeys((_PENDING, _ACTIVE, _PAUSED, _DISCHARGED), _PAUSED),
    Event.PAUSE: {_ACTIVE: _PAUSED},
    Event.RESUME: {_PAUSED: _ACTIVE},
    Event.DISCHARGE: {_PENDING: _DISCHARGED, _ACTIVE: _DISCHARGED, _PAUSED: _DISCHARGED},
    # Texting waits for the new number's own YES; an opt-out or a discharge stands.
    Event.NUMBER_CHANGED: {_PENDING: _PENDING, _ACTIVE: _PENDING, _PAUSED: _PENDING},
    # Only an active patient is paused for a bad number: nothing else is being sent.
    Event.INVALID_NUMBER: {_ACTIVE: _PAUSED},
}

_PAUSER: dict[Event, PausedBy] = {
    Event.REVOCATION: PausedBy.PATIENT,
    Event.PAUSE: PausedBy.CLINICIAN,
    Event.INVALID_NUMBER: PausedBy.SYSTEM,
}

_REASONS: dict[Refusal, str] = {
    Refusal.PATIENT_OPTED_OUT: "the patient opted out by text; only they can restart",
    Refusal.PATIENT_PAUSED: "the patient asked to stop; only they can restart",
    Refusal.NUMBER_SUPPRESSED: "the number opted out; only a START from it restarts",
    Refusal.NEVER_OPTED_IN: "cannot resume a patient who has not opted in yet",
    Refusal.DISCHARGED: "a discharged programme does not restart",
}


def _refusal_before_table(state: PatientState, event: Event) -> Refusal | None:
    """The refusals the table cannot say: who owns a pause, and repeats."""
    if event is Event.RESUME:
        if state.status == _OPTED_OUT:
            return Refusal.PATIENT_OPTED_OUT
        if state.status == _PAUSED and state.paused_by == PausedBy.PATIENT:
            return Refusal.PATIENT_PAUSED
        if state.status == _PAUSED and state.number_suppressed:
            return Refusal.NUMBER_SUPPRESSED
        if state.status == _PAUSED and not state.opted_in:
            return Refusal.NEVER_OPTED_IN
    if event is Event.REVOCATION and (state.status, state.paused_by) == (_PAUSED, PausedBy.PATIENT):
        return Refusal.ALREADY
    if event is Event.OPT_IN and state.status == _DISCHARGED:
        return Refusal.DISCHARGED
    if event in (Event.OPT_OUT, Event.CARRIER_OPT_OUT) and state.status == _OPTED_OUT:
        return Refusal.ALREADY
    return None


def transition(state: PatientState, event: Event) -> Outcome:
    """Where `event` takes a patient in `state`, or why it does not."""
    refusal = _refusal_before_table(state, event)
    target = TRANSITIONS[event].get(state.status)
    if refusal is None and target is None:
        refusal = Refusal.NOT_FROM_STATUS
    if refusal is not None or target is None:
        verb = event.value.replace("_", " ")
        return Outcome(
            status=state.status,
            paused_by=state.paused_by,
            changed=False,
            refusal=refusal,
            reason=_REASONS.get(refusal or Refusal.NOT_FROM_STATUS)
            or f"cannot {verb} a patient who is {state.status}",
        )
    if target == _PAUSED:
        paused_by: PausedBy | None = _PAUSER[event]
    elif target == _ACTIVE:
        paused_by = None
    else:
        paused_by = state.paused_by  # the record of who paused stays
    return Outcome(
        status=target,
        paused_by=paused_by,
        changed=(target, paused_by) != (state.status, state.paused_by),
    )
