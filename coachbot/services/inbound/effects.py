"""What a text changes about consent and status: the patient's STOP, START and revocation,
a caregiver's STOP, each written to the consent ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update

from coachbot.domain.states import (
    PatientStatus,
)
from coachbot.domain.triage import (
    Decision,
    Effect,
    MessageClass,
)
from coachbot.models import (
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
    applied = True
    if effect is Effect.OPT_OUT:
        suppress_number(ctx, decision)
        if own is not None:
            apply_opt_out(ctx, own)
    elif effect is Effect.CAREGIVER_REMOVED:
        suppress_number(ctx, decision)
        _remove_caregiver(ctx)
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
    elif effect is Effect.PATIENT_PAUSE and own is not None:
        _update_patient(ctx, own, status=PatientStatus.PAUSED, paused_by=consent.PAUSED_BY_PATIENT)
        audit.record(
            ctx.session,
            actor="patient",
            action="consent.revocation_pause",
            patient_id=own.id,
            now=ctx.now,
        )
    _record_consent(ctx, own, decision, applied)
    return applied


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
    ctx: Context, own: SenderRecord | None, decision: Decision, applied: bool
) -> None:
    if decision.message_class not in _CONSENT_CLASSES and decision.effect is None:
        return
    event = consent.KEYWORD
    if decision.effect is not None and applied:
        event = _LEDGER_EVENTS[decision.effect]
        if decision.outcome == "opt_in":
            event = consent.OPT_IN  # the first YES to the welcome
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


_REMOVE_CAREGIVER = (
    update(Patient)
    .where(Patient.caregiver_phone_e164 == bindparam("number"))
    .values(caregiver_phone_e164=None, updated_at=bindparam("now"))
    .returning(Patient.id)
)


def _remove_caregiver(ctx: Context) -> None:
    """A caregiver's STOP or revocation ends texts to that number, for every patient it is
    caregiver of, not any patient's own programme."""
    removed = (
        ctx.connection.execute(_REMOVE_CAREGIVER, {"number": ctx.row.from_e164, "now": ctx.now})
        .scalars()
        .all()
    )
    if ctx.patient is not None:
        ctx.patient.caregiver_phone_e164 = None
    for patient_id in sorted(removed):
        audit.record(
            ctx.session,
            actor="caregiver",
            action="caregiver.opt_out",
            patient_id=patient_id,
            now=ctx.now,
        )


def apply_opt_out(ctx: Context, patient: SenderRecord) -> None:
    """The patient's STOP: opted out, unsent nudges skipped (the decision's alert tells the
    clinician)."""
    _update_patient(ctx, patient, status=PatientStatus.OPTED_OUT, opted_out_at=ctx.now)
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
    if patient.status == PatientStatus.DISCHARGED:
        return  # the number may restart; a discharged programme does not
    action = (
        "consent.opt_in" if patient.status == PatientStatus.PENDING_CONSENT else "consent.resume"
    )
    _update_patient(
        ctx,
        patient,
        status=PatientStatus.ACTIVE,
        opted_in_at=patient.opted_in_at or ctx.now,
        opted_out_at=None,
        paused_by=None,
    )
    audit.record(ctx.session, actor="patient", action=action, patient_id=patient.id, now=ctx.now)
