"""Twilio status callbacks: store each distinct event once, move statuses forward only.

A callback can arrive before dispatch has recorded the provider id (Twilio is fast, our
commit is not instant). The event row is stored regardless, and `apply_stored_events`
replays it when the send is recorded, so no callback is lost. Carrier error codes on a
final callback go through the same mapping table as API errors: 30005/30006 mark the number
invalid, 21610 opts the patient out, 30003 retries the nudge later a bounded number of times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.provider_errors import TWILIO_CODE_OUTCOMES, Outcome
from coachbot.domain.states import (
    DELIVERY_STATUS_RANK,
    AlertKind,
    AlertSeverity,
    NudgeState,
    PatientStatus,
    delivery_status_advances,
)
from coachbot.models import DeliveryEvent, Nudge, OutboundMessage, Patient
from coachbot.services import consent
from coachbot.services.alerts import raise_alert
from coachbot.services.programs import rules_for
from coachbot.store import outbound as outbound_store
from coachbot.store.dialect import insert_ignoring_duplicates

_NUDGE_STATE_FOR_STATUS = {
    "sent": NudgeState.SENT,
    "delivered": NudgeState.DELIVERED,
    "read": NudgeState.DELIVERED,
    "undelivered": NudgeState.FAILED,
    "failed": NudgeState.FAILED,
}
# A nudge in one of these states may still learn its fate from a callback.
_OPEN_NUDGE_STATES = (NudgeState.SENDING, NudgeState.SENT, NudgeState.AMBIGUOUS)
# Only a nudge whose send is unaccounted for may adopt a provider id from a callback.
_ADOPTING_STATES = (NudgeState.SENDING, NudgeState.AMBIGUOUS)
RETRY_LATER_DELAY = dt.timedelta(minutes=30)
RETRY_LATER_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class StatusCallback:
    provider_sid: str
    status: str
    error_code: str | None = None
    nudge_id: int | None = None


def handle_status(
    session_factory: sessionmaker[Session], callback: StatusCallback, now: dt.datetime
) -> bool:
    """Returns False for a status we do not know (still acknowledged to Twilio)."""
    status = callback.status.strip().lower()
    if status not in DELIVERY_STATUS_RANK:
        return False
    with session_factory() as session, session.begin():
        if not _store_event(session, callback.provider_sid, status, callback.error_code, now):
            # Twilio redelivers callbacks; an event already stored was already applied.
            return True
        message = session.scalar(
            select(OutboundMessage).where(OutboundMessage.provider_sid == callback.provider_sid)
        )
        nudge = session.scalar(select(Nudge).where(Nudge.provider_sid == callback.provider_sid))
        if nudge is None and callback.nudge_id is not None:
            candidate = session.get(Nudge, callback.nudge_id)
            # Only adopt the id for a nudge whose send is unaccounted for: a forged or stale
            # nudge number must not let one message's callback rewrite another's state.
            if (
                candidate is not None
                and candidate.provider_sid is None
                and candidate.state in _ADOPTING_STATES
            ):
                candidate.provider_sid = callback.provider_sid
                nudge = candidate
                if candidate.state == NudgeState.AMBIGUOUS and message is None:
                    message = record_outbound(session, candidate, callback.provider_sid, now)
        _apply(session, message, nudge, status, callback.error_code, now)
    return True


def record_outbound(
    session: Session, nudge: Nudge, provider_sid: str, now: dt.datetime
) -> OutboundMessage:
    """The timeline row for a nudge whose send was confirmed after the fact (a callback or
    reconciliation settled an ambiguous send)."""
    patient = session.get_one(Patient, nudge.patient_id)
    nudge.reply_window_ends_at = (
        now + rules_for(session, nudge.patient_id, nudge.track).reply_window
    )
    message_id = outbound_store.insert_one(
        session.connection(),
        outbound_store.Outbound(
            patient_id=nudge.patient_id,
            to_e164=patient.phone_e164,
            body=nudge.rendered_body or "",
            kind="nudge",
            template_id=nudge.template_id,
            variant_id=nudge.variant_id,
            backend="twilio",
            segments=nudge.segments or 1,
            created_at=now,
            nudge_id=nudge.id,
            provider_sid=provider_sid,
            delivery_status="sent",
        ),
    )
    return session.get_one(OutboundMessage, message_id)


def apply_stored_events(
    session: Session,
    provider_sid: str,
    message: OutboundMessage | None,
    nudge: Nudge | None,
    now: dt.datetime,
) -> None:
    events = session.execute(
        select(DeliveryEvent.status, DeliveryEvent.error_code).where(
            DeliveryEvent.provider_sid == provider_sid
        )
    ).all()
    for status, error_code in sorted(events, key=lambda e: DELIVERY_STATUS_RANK.get(e[0], -1)):
        _apply(session, message, nudge, status, error_code, now)


def apply_number_outcome(
    session: Session, patient_id: int, outcome: Outcome, code: str | None, now: dt.datetime
) -> None:
    """What a provider code says about the patient's number: opted out at the carrier, or a
    number that cannot receive SMS (texting stops until a clinician fixes it)."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return
    if outcome is Outcome.OPTED_OUT:
        consent.carrier_opt_out(session, patient.phone_e164, patient_id, code, now)
    if outcome is Outcome.OPTED_OUT and patient.status != PatientStatus.OPTED_OUT:
        patient.status = PatientStatus.OPTED_OUT
        patient.opted_out_at = now
        patient.updated_at = now
        raise_alert(
            session,
            patient_id=patient_id,
            kind=AlertKind.OPT_OUT,
            severity=AlertSeverity.NORMAL,
            detail=f"carrier_{code}",
            now=now,
        )
    elif outcome is Outcome.INVALID_NUMBER and patient.status == PatientStatus.ACTIVE:
        patient.status = PatientStatus.PAUSED
        # A system pause: the clinician may resume it once the number is fixed.
        patient.paused_by = consent.PAUSED_BY_SYSTEM
        patient.updated_at = now
        consent.record_event(
            session,
            number=patient.phone_e164,
            patient_id=patient_id,
            event=consent.SYSTEM_PAUSE,
            text=None,
            now=now,
            source=f"code_{code}",
            actor="system",
        )
        raise_alert(
            session,
            patient_id=patient_id,
            kind=AlertKind.INVALID_NUMBER,
            severity=AlertSeverity.HIGH,
            detail=f"code_{code}",
            now=now,
        )


def _code_outcome(error_code: str | None) -> Outcome | None:
    if error_code is None or not error_code.isdigit():
        return None
    return TWILIO_CODE_OUTCOMES.get(int(error_code))


def _apply(
    session: Session,
    message: OutboundMessage | None,
    nudge: Nudge | None,
    status: str,
    error_code: str | None,
    now: dt.datetime,
) -> None:
    if message is not None and delivery_status_advances(message.delivery_status, status):
        message.delivery_status = status
        if error_code:
            message.error_code = error_code
        if message.nudge_id is None and _code_outcome(error_code) is Outcome.OPTED_OUT:
            # Not a nudge (those go through apply_number_outcome below): a welcome, a
            # reply or a caregiver's text; the number it went to is the one suppressed.
            consent.carrier_opt_out(session, message.to_e164, message.patient_id, error_code, now)
    if nudge is None or nudge.state not in _OPEN_NUDGE_STATES:
        return
    target = _NUDGE_STATE_FOR_STATUS.get(status)
    if target is None or target == nudge.state:
        return
    if target is NudgeState.FAILED:
        outcome = _code_outcome(error_code)
        if outcome is Outcome.RETRY_LATER and nudge.attempts < RETRY_LATER_MAX_ATTEMPTS:
            # The handset was unreachable: try this nudge again later with a fresh send.
            nudge.state = NudgeState.PLANNED
            nudge.state_reason = error_code
            nudge.provider_sid = None
            nudge.send_at = now + RETRY_LATER_DELAY
            nudge.sent_at = None
            nudge.lease_expires_at = None
            nudge.updated_at = now
            return
        if outcome is not None:
            apply_number_outcome(session, nudge.patient_id, outcome, error_code, now)
    nudge.state = target
    nudge.state_reason = (error_code or status) if target is NudgeState.FAILED else None
    nudge.lease_expires_at = None
    nudge.updated_at = now


def _store_event(
    session: Session, sid: str, status: str, error_code: str | None, now: dt.datetime
) -> bool:
    """True when this (message, status) event is new."""
    added = insert_ignoring_duplicates(
        session,
        DeliveryEvent,
        {"provider_sid": sid, "status": status, "error_code": error_code, "received_at": now},
        ["provider_sid", "status"],
        [DeliveryEvent.id],
    )
    return bool(added)
