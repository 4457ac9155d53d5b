"""Sending one non-nudge message (welcome, confirmations) and recording it, whatever the backend."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from coachbot.content import RenderedMessage
from coachbot.domain.phones import mask_phone
from coachbot.domain.provider_errors import Outcome
from coachbot.models import OutboundMessage, Patient
from coachbot.services import consent
from coachbot.sms.gateway import OutgoingSms, SendFailure, SmsGateway
from coachbot.sms.suppression import COMPLIANCE_TEMPLATES, SUPPRESSED, is_suppression_refusal
from coachbot.store import outbound as outbound_store

log = logging.getLogger(__name__)


def status_callback_url(public_base_url: str, nudge_id: int | None = None) -> str:
    # The nudge id in the query lets a callback that outruns our own commit still be
    # matched to its nudge (see services.delivery).
    base = f"{public_base_url}/sms/status"
    return f"{base}?nudge={nudge_id}" if nudge_id is not None else base


def send_to_patient(
    session: Session,
    gateway: SmsGateway,
    patient: Patient,
    message: RenderedMessage,
    *,
    kind: str,
    now: dt.datetime,
    status_callback: str | None,
) -> OutboundMessage:
    """Sends and adds the outbound row to the session; the caller commits."""
    return send_text(
        session,
        gateway,
        patient_id=patient.id,
        to_e164=patient.phone_e164,
        message=message,
        kind=kind,
        now=now,
        status_callback=status_callback,
    )


def send_text(
    session: Session,
    gateway: SmsGateway,
    *,
    patient_id: int | None,
    to_e164: str,
    message: RenderedMessage,
    kind: str,
    now: dt.datetime,
    status_callback: str | None,
) -> OutboundMessage:
    """Sends to `to_e164` (the patient's number or their caregiver's) and writes the
    outbound row in the session's transaction; the caller commits."""
    provider_sid: str | None = None
    error_code: str | None = None
    try:
        receipt = gateway.send(
            OutgoingSms(
                to=to_e164,
                body=message.body,
                status_callback=status_callback,
                compliance=message.template_id in COMPLIANCE_TEMPLATES,
            )
        )
    except SendFailure as exc:
        log.warning("%s to %s not sent: %s", kind, mask_phone(to_e164), exc.outcome)
        delivery_status = "failed"
        if is_suppression_refusal(exc):
            error_code = SUPPRESSED  # refused by the suppression list, never sent
        else:
            error_code = str(exc.code) if exc.code is not None else exc.outcome.value
            if exc.outcome is Outcome.OPTED_OUT:
                # The carrier's 21610 at send time: the number is suppressed like a STOP.
                consent.carrier_opt_out(session, to_e164, patient_id, error_code, now)
    else:
        provider_sid = receipt.provider_sid
        delivery_status = receipt.status
    row_id = outbound_store.insert_one(
        session.connection(),
        outbound_store.Outbound(
            patient_id=patient_id,
            to_e164=to_e164,
            body=message.body,
            kind=kind,
            template_id=message.template_id,
            variant_id=message.variant_id,
            backend=gateway.name,
            segments=message.segments.segments,
            created_at=now,
            provider_sid=provider_sid,
            delivery_status=delivery_status,
            error_code=error_code,
        ),
    )
    return session.get_one(OutboundMessage, row_id)
