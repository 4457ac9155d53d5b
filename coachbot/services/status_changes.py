"""A clinician's pause, resume and discharge of one patient, by the rules of
`coachbot.domain.patient_status`: the transition is decided there, and recorded here (the
status, the consent ledger, the audit log, planning restarting from now)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.patient_status import Event, PatientState, PausedBy, Refusal, transition
from coachbot.domain.states import PatientStatus
from coachbot.models import Patient
from coachbot.services import consent
from coachbot.settings import Settings


class TransitionRefused(ValueError):
    pass


class ResumeRefused(TransitionRefused):
    """A clinician asked to restart texts that only the patient may restart."""


_LEDGER_EVENT = {
    Event.PAUSE: consent.CLINICIAN_PAUSE,
    Event.RESUME: consent.CLINICIAN_RESUME,
    Event.DISCHARGE: consent.DISCHARGE,
}


def patient_state(session: Session, patient: Patient) -> PatientState:
    """The facts a transition depends on. The suppression list is read only where it can
    decide something: a pause the patient did not make themselves."""
    paused_by = PausedBy(patient.paused_by) if patient.paused_by else None
    suppressed = (
        patient.status == PatientStatus.PAUSED
        and paused_by != PausedBy.PATIENT
        and consent.is_suppressed(session, patient.phone_e164)
    )
    return PatientState(
        status=PatientStatus(patient.status),
        paused_by=paused_by,
        opted_in=patient.opted_in_at is not None,
        number_suppressed=suppressed,
    )


def _refusal_text(patient: Patient, refusal: Refusal | None, settings: Settings | None) -> str:
    """What the clinician is told, naming the number the patient texts to restart."""
    number = consent.start_number(settings) if settings else "the clinic's texting number"
    name = patient.first_name
    if refusal is Refusal.PATIENT_OPTED_OUT:
        return (
            f"{name} opted out by text. Only {name} can restart the texts, by texting START"
            f" to {number}."
        )
    if refusal is Refusal.PATIENT_PAUSED:
        return (
            f"{name} asked to stop the texts. Only {name} can restart them, by texting START"
            f" or YES to {number}."
        )
    return f"This number has opted out. Ask {name} to text START to {number}."


def resume_block(session: Session, patient: Patient, settings: Settings | None) -> str | None:
    """Why a clinician may not restart this patient's texts, or None. Consent belongs to
    the patient (the FCC's 2024 revocation rule): texts they stopped themselves, by STOP or
    in their own words, restart only when they text START or YES; a number on the
    suppression list only when that number texts START."""
    outcome = transition(patient_state(session, patient), Event.RESUME)
    return _refusal_text(patient, outcome.refusal, settings) if outcome.patient_owned else None


def change_status(
    sessions: sessionmaker[Session],
    patient_id: int,
    action: str,
    *,
    now: dt.datetime,
    actor: str,
    settings: Settings | None = None,
) -> Patient:
    """pause / resume / discharge, in one transaction; the patient as it now is. Resume only
    returns a paused patient who had opted in: it never stands in for the patient's own
    YES, and never restarts texts the patient stopped themselves (`resume_block`); that
    refusal is audited and kept in the consent ledger (committed) before ResumeRefused is
    raised. LookupError when there is no such patient."""
    event = Event(action)
    refused: str | None = None
    with sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise LookupError(f"no patient with id {patient_id}")
        outcome = transition(patient_state(session, patient), event)
        if outcome.patient_owned:
            _record_refusal(session, patient, now=now, actor=actor)
            refused = _refusal_text(patient, outcome.refusal, settings)
        elif not outcome.allowed:
            raise TransitionRefused(f"cannot {action} a patient who is {patient.status}")
        else:
            patient.status = outcome.status
            patient.paused_by = outcome.paused_by
            patient.updated_at = now
            consent.record_audited(
                session,
                patient_id=patient.id,
                number=patient.phone_e164,
                event=_LEDGER_EVENT[event],
                action=f"patient.{action}",
                detail=f"status={outcome.status}",
                now=now,
                actor=actor,
            )
            # Planning resumes from now: nothing is planned for a paused week and then replayed.
            for schedule in patient.schedules:
                schedule.planned_through = None
    if refused is not None:
        raise ResumeRefused(refused)
    return patient


def _record_refusal(session: Session, patient: Patient, *, now: dt.datetime, actor: str) -> None:
    consent.record_audited(
        session,
        patient_id=patient.id,
        number=patient.phone_e164,
        event=consent.RESUME_REFUSED,
        action="patient.resume",
        detail=f"paused_by={patient.paused_by or patient.status}",
        outcome="refused",
        now=now,
        actor=actor,
    )
