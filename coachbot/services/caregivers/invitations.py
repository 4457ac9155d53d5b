"""The caregiver's invitation: "Reply YES to get short texts helping <first name>'s recovery."

Adding a caregiver sets `Caregiver.invite_due_at` (services.caregivers.records); the clock
tick sends the invitation at the caregiver's first permitted instant with the patient
welcome's machinery (`welcomes.claim_held`: the send window, the caregiver's own quiet hours
and zone, a conditional claim so several clocks send it once), then sets `invited_at`.
A suppressed number gets nothing: the mark is cleared and the refusal audited.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain.phones import mask_phone
from coachbot.domain.states import PatientStatus
from coachbot.models import Caregiver, CaregiverLink, Patient
from coachbot.services import audit, consent
from coachbot.services.messaging import send_text, status_callback_url
from coachbot.services.welcomes import claim_held
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway

log = logging.getLogger(__name__)

KIND = "caregiver_invite"


def first_patient(session: Session, caregiver_id: int) -> Patient | None:
    """The patient an invitation names: the first one linked (lowest id), so a caregiver of
    several patients gets one invitation, not one per patient."""
    return session.scalar(
        select(Patient)
        .join(CaregiverLink, CaregiverLink.patient_id == Patient.id)
        .where(CaregiverLink.caregiver_id == caregiver_id)
        .order_by(Patient.id)
        .limit(1)
    )


def send_due_invitations(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """The clock tick's step: every invitation whose instant has come, sent at most once.
    Returns how many were sent."""
    sent = 0
    for caregiver_id, phone in claim_held(session_factory, now, Caregiver, "invite_due_at"):
        # Read and decide first, send with no transaction open, then record: neither a
        # row lock nor SQLite's write lock is held across the network call.
        with session_factory.begin() as session:
            invitation = _prepare(session, library, settings, caregiver_id, phone, now)
        if invitation is None:
            continue
        patient_id, message = invitation
        callback = (
            status_callback_url(settings.public_base_url) if gateway.name == "twilio" else None
        )
        with session_factory.begin() as session:
            send_text(
                session,
                gateway,
                patient_id=patient_id,
                to_e164=phone,
                message=message,
                kind=KIND,
                now=now,
                status_callback=callback,
            )
            session.get_one(Caregiver, caregiver_id).invited_at = now
            audit.record(
                session,
                actor="system",
                action="caregiver.invited",
                patient_id=patient_id,
                now=now,
                detail=f"caregiver={caregiver_id}",
            )
        log.info("caregiver invitation sent to %s", mask_phone(phone))
        sent += 1
    if sent:
        log.info("caregiver invitations sent: %d", sent)
    return sent


def _prepare(
    session: Session,
    library: MessageLibrary,
    settings: Settings,
    caregiver_id: int,
    phone: str,
    now: dt.datetime,
) -> tuple[int, RenderedMessage] | None:
    """(patient named, the text) when the invitation should go; None, audited when the
    number is suppressed, when it should not."""
    caregiver = session.get(Caregiver, caregiver_id)
    # An opt-in, a STOP or a new number committed since the claim wins.
    if (
        caregiver is None
        or caregiver.status != PatientStatus.PENDING_CONSENT
        or caregiver.phone_e164 != phone
    ):
        return None
    patient = first_patient(session, caregiver.id)
    if patient is None:
        log.info("caregiver %d has no patient linked: no invitation", caregiver.id)
        return None
    if consent.is_suppressed(session, phone):
        audit.record(
            session,
            actor="system",
            action="caregiver.invite_suppressed",
            patient_id=patient.id,
            now=now,
            detail=f"caregiver={caregiver.id} number on the suppression list: no invitation",
        )
        return None
    message = library.render(
        "caregiver.welcome",
        caregiver.language,
        {"first_name": patient.first_name, "clinic_name": settings.clinic_name},
        seed=f"caregiver:{caregiver.id}",
    )
    return patient.id, message
