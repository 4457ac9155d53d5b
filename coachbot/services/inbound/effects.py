"""What a text changes about consent and status: the patient's STOP, START and revocation,
a caregiver's own YES/START and STOP, each written to the consent ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from coachbot.domain.patient_status import Event, PatientState, PausedBy, transition
from coachbot.domain.patient_status import Outcome as StatusOutcome
from coachbot.domain.states import (
    PatientStatus,
)
from coachbot.domain.triage import (
    Decision,
    Effect,
    MessageClass,
)
from coachbot.models import (
    Caregiver,
    Patient,
)
from coachbot.services import audit, consent
from coachbot.services.inbound.context import Context, SenderRecord
from coachbot.store import nudges as nudge_store


def apply_effect(ctx: Context, patient: SenderRecord | None, decision: Decision) -> bool:
    """Applies the consent or status change and writes it to the consent ledger; False when
    the reply it owes is void."""
    effect = decision.effect
    own = patient if patient is not None and not ctx.row.is_proxy else None
    first_yes = ctx.caregiver is not None and ctx.caregiver.status == PatientStatus.PENDING_CONSENT
    applied = True
    if effect is Effect.OPT_OUT:
        suppress_number(ctx, decision)
        if own is not None:
            apply_opt_out(ctx, own)
    elif effect is Effect.CAREGIVER_REMOVED:
        suppress_number(ctx, decision)
        caregiver_leaves(ctx)
    elif effect is Effect.OPT_IN and own is not None and _start_superseded(ctx, own):
        ctx.row.outcome = "opt_in_superseded"
        applied = False
    elif effect is Effect.OPT_IN:
        consent.lift(
            ctx.session,
            ctx.row.from_e164,
            source="keyword",
            text=ctx.row.body,
            now=ctx.now,
            patient_id=own.id if own is not None else None,
        )
        if own is not None:
            _opt_in(ctx, own)
        _caregiver_joins(ctx)
    elif effect is Effect.PATIENT_PAUSE and own is not None:
        applied = _pause_by_patient(ctx, own)
    _record_consent(ctx, own, decision, applied, first_yes=first_yes)
    return applied


def _status_change(patient: SenderRecord, event: Event) -> StatusOutcome | None:
    """Where `event` takes the patient by the one transition table
    (`coachbot.domain.patient_status`); None when the table refuses it. The triage's
    decision already leaves out what the table refuses (a repeated STOP, START after a
    discharge), so a refusal here changes nothing and writes nothing."""
    state = PatientState(
        PatientStatus(patient.status),
        PausedBy(patient.paused_by) if patient.paused_by else None,
        opted_in=patient.opted_in_at is not None,
        number_suppressed=patient.number_suppressed,
    )
    outcome = transition(state, event)
    return outcome if outcome.allowed else None


def _pause_by_patient(ctx: Context, patient: SenderRecord) -> bool:
    """The patient's "please stop texting me": paused by them; only their START or YES
    restarts the texts."""
    outcome = _status_change(patient, Event.REVOCATION)
    if outcome is None:
        return False
    _update_patient(ctx, patient, status=outcome.status, paused_by=outcome.paused_by)
    audit.record(
        ctx.session,
        actor="patient",
        action="consent.revocation_pause",
        patient_id=patient.id,
        now=ctx.now,
    )
    return True


# The ledger's name for what a consent message did; anything else consent-related that
# changed nothing (HELP, a repeated STOP, START while active) is a "keyword" event.
_LEDGER_EVENTS: dict[Effect, str] = {
    Effect.OPT_OUT: consent.OPT_OUT,
    Effect.CAREGIVER_REMOVED: consent.OPT_OUT,
    Effect.OPT_IN: consent.RESUME,
    Effect.PATIENT_PAUSE: consent.REVOCATION,
}
_CONSENT_CLASSES = frozenset(
    {MessageClass.OPT_OUT, MessageClass.OPT_IN, MessageClass.HELP, MessageClass.REVOCATION}
)


def _record_consent(
    ctx: Context, own: SenderRecord | None, decision: Decision, applied: bool, *, first_yes: bool
) -> None:
    if decision.message_class not in _CONSENT_CLASSES and decision.effect is None:
        return
    event = consent.KEYWORD
    if decision.effect is not None and applied:
        event = _LEDGER_EVENTS[decision.effect]
        if decision.outcome == "opt_in":
            event = consent.OPT_IN  # the first YES to the welcome
        if decision.outcome == "caregiver_opt_in" and first_yes:
            event = consent.OPT_IN  # the caregiver's first YES to their invitation
    consent.record_event(
        ctx.session,
        number=ctx.row.from_e164,
        patient_id=ctx.patient.id if ctx.patient is not None else None,
        event=event,
        text=ctx.row.body,
        now=ctx.now,
        source=decision.outcome,
        actor="caregiver" if ctx.row.is_proxy else ("patient" if own else "unknown"),
    )


def suppress_number(ctx: Context, decision: Decision) -> None:
    """The texting number's own consent ends, whichever records hold it."""
    consent.suppress(
        ctx.session,
        ctx.row.from_e164,
        source=decision.message_class.value,
        text=ctx.row.body,
        now=ctx.now,
        patient_id=ctx.patient.id if ctx.patient is not None else None,
    )


def _update_patient(ctx: Context, patient: SenderRecord, **values: Any) -> None:
    for name, value in values.items():
        setattr(patient, name, value)
    ctx.connection.execute(
        update(Patient).where(Patient.id == patient.id).values(updated_at=ctx.now, **values)
    )


def caregiver_leaves(ctx: Context) -> None:
    """A caregiver's STOP or revocation: that caregiver is opted out (their number is
    suppressed by the caller); every patient's own programme goes on."""
    caregiver = ctx.caregiver
    if caregiver is None:
        return
    _update_caregiver(ctx, status=PatientStatus.OPTED_OUT, opted_out_at=ctx.now)
    for patient in caregiver.patients:
        audit.record(
            ctx.session,
            actor="caregiver",
            action="caregiver.opt_out",
            patient_id=patient.id,
            now=ctx.now,
        )


def _caregiver_joins(ctx: Context) -> None:
    """The caregiver's YES/START: active (their first YES completes the double opt-in)."""
    caregiver = ctx.caregiver
    if caregiver is None:
        return
    first = caregiver.status == PatientStatus.PENDING_CONSENT
    values: dict[str, Any] = {"status": PatientStatus.ACTIVE, "opted_out_at": None}
    if first:
        values["opted_in_at"] = ctx.now
    _update_caregiver(ctx, **values)
    action = "caregiver.opt_in" if first else "caregiver.resume"
    for patient in caregiver.patients:
        audit.record(
            ctx.session, actor="caregiver", action=action, patient_id=patient.id, now=ctx.now
        )


def _update_caregiver(ctx: Context, **values: Any) -> None:
    assert ctx.caregiver is not None
    if "status" in values:
        ctx.caregiver.status = values["status"]
    ctx.connection.execute(
        update(Caregiver)
        .where(Caregiver.id == ctx.caregiver.id)
        .values(updated_at=ctx.now, **values)
    )


def apply_opt_out(ctx: Context, patient: SenderRecord) -> None:
    """The patient's STOP: opted out, unsent nudges skipped (the decision's alert tells the
    clinician)."""
    outcome = _status_change(patient, Event.OPT_OUT)
    if outcome is None:
        return
    _update_patient(ctx, patient, status=outcome.status, opted_out_at=ctx.now)
    # Claimed but unsent nudges die here too; dispatch re-checks consent atomically.
    nudge_store.skip_unsent(ctx.connection, patient.id, "opted_out", ctx.now)
    audit.record(
        ctx.session, actor="patient", action="consent.opt_out", patient_id=patient.id, now=ctx.now
    )


def _start_superseded(ctx: Context, patient: SenderRecord) -> bool:
    """A START re-run by the recovery that is older than a STOP the patient sent after it:
    it must not undo that STOP."""
    if not ctx.recovering or patient.status == PatientStatus.ACTIVE:
        return False
    opted_out_at = ctx.connection.execute(
        select(Patient.opted_out_at).where(Patient.id == patient.id)
    ).scalar_one_or_none()
    return opted_out_at is not None and opted_out_at > ctx.now


def _opt_in(ctx: Context, patient: SenderRecord) -> None:
    """Pending or stopped/paused -> active."""
    outcome = _status_change(patient, Event.OPT_IN)
    if outcome is None:
        return  # the number may restart; a discharged programme does not
    action = (
        "consent.opt_in" if patient.status == PatientStatus.PENDING_CONSENT else "consent.resume"
    )
    _update_patient(
        ctx,
        patient,
        status=outcome.status,
        opted_in_at=patient.opted_in_at or ctx.now,
        opted_out_at=None,
        paused_by=outcome.paused_by,
    )
    audit.record(ctx.session, actor="patient", action=action, patient_id=patient.id, now=ctx.now)
