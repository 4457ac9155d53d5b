"""The welcome that asks a newly enrolled patient (or a new number) for YES.

It obeys the same rules as every text (`coachbot.domain.sendability`): it goes at once only
when the patient's local time is inside the programme's send window and outside their
quiet hours. Otherwise its first permitted instant is stored (`Patient.welcome_due_at`) and
the clock tick sends it then (`send_due_welcomes`). A number on the suppression list gets
nothing, not even a hold.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain import schedule as sched
from coachbot.domain import sendability
from coachbot.domain.states import PatientStatus
from coachbot.models import Caregiver, Patient
from coachbot.services import audit, consent
from coachbot.services.messaging import send_to_patient, status_callback_url
from coachbot.services.schedules import dispatch_settings
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from coachbot.store.dialect import skip_locked

log = logging.getLogger(__name__)

# How far ahead a held welcome looks for a permitted instant: any daily send window is
# reached within two days, daylight-saving changes included.
WELCOME_MAX_DEFER = dt.timedelta(days=2)
# When quiet hours cover the whole send window there is no permitted instant at all; the
# welcome stays pending and is looked at again this often, so it goes once an edit of the
# quiet hours or the window lets it.
WELCOME_RECHECK = dt.timedelta(hours=1)
WELCOME_BATCH = 200


def _verdict(
    window: sched.LocalWindow,
    status: str,
    timezone: str,
    quiet_start: dt.time | None,
    quiet_end: dt.time | None,
    now: dt.datetime,
    *,
    suppressed: bool | None = None,
) -> sendability.Verdict:
    """The one sendability check, with a welcome's answers: it goes to a patient pending
    consent, and quiet hours defer it (as far as `WELCOME_MAX_DEFER`) rather than skip it."""
    return sendability.check(
        sendability.Recipient(
            status=status,
            zone=ZoneInfo(timezone),
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            suppressed=suppressed,
        ),
        now,
        sendability.Rules(
            window=window,
            quiet_policy=sched.QuietPolicy.DEFER,
            required_status=PatientStatus.PENDING_CONSENT,
            max_defer=WELCOME_MAX_DEFER,
        ),
    )


def _patient_verdict(
    session: Session, patient: Patient, now: dt.datetime, *, suppressed: bool | None = None
) -> sendability.Verdict:
    return _verdict(
        dispatch_settings(session).window,
        patient.status,
        patient.timezone,
        patient.quiet_start,
        patient.quiet_end,
        now,
        suppressed=suppressed,
    )


def send_welcome(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient_id: int,
    *,
    now: dt.datetime,
) -> dt.datetime | None:
    """Texts the welcome asking for YES if the patient's local time allows it now (send
    window, quiet hours), else records when it may go for the clock tick. Call it after the
    patient's row is committed. A later call (a new number) replaces an earlier hold.

    Two transactions when it texts: the decision (and clearing an earlier hold) commits
    before the network call, and the message row after it, so no transaction (nor SQLite's
    write lock) is held across the send.

    A number on the suppression list gets nothing, not even a hold: enrolling it is
    allowed, and texts start only once that number texts START (see `opted_out_notes`).

    Returns the instant a held welcome will go (`Patient.welcome_due_at`), else None."""
    with sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            return None
        suppressed = consent.is_suppressed(session, patient.phone_e164)
        verdict = _patient_verdict(session, patient, now, suppressed=suppressed)
        if verdict.reason == sendability.SUPPRESSED:
            _record_suppressed(session, patient, now)
            return None
        if not verdict.may_send_now:
            return _hold(session, patient, verdict, now)
        patient.welcome_due_at = None
    _text_welcome(sessions, gateway, library, settings, patient, now=now)
    return None


def _record_suppressed(session: Session, patient: Patient, now: dt.datetime) -> None:
    patient.welcome_due_at = None
    consent.record_audited(
        session,
        patient_id=patient.id,
        number=patient.phone_e164,
        event=consent.ENROLLED_SUPPRESSED,
        action="consent.welcome_suppressed",
        detail="number on the suppression list: no welcome",
        now=now,
        actor="system",
    )


def _hold(
    session: Session, patient: Patient, verdict: sendability.Verdict, now: dt.datetime
) -> dt.datetime:
    due = verdict.send_at or now + WELCOME_RECHECK
    patient.welcome_due_at = due
    audit.record(
        session,
        actor="system",
        action="consent.welcome_held",
        patient_id=patient.id,
        now=now,
        detail=f"until {due.isoformat()} ({verdict.reason})",
    )
    return due


def welcome_note(session: Session, patient: Patient, now: dt.datetime) -> str | None:
    """For the clinician after an enrolment or a new number: when a held welcome will go,
    in the patient's local time; None when it was texted at once. Only reads."""
    due = patient.welcome_due_at
    if due is None:
        return None
    verdict = _patient_verdict(session, patient, now)
    if verdict.action == "skip":
        return "The welcome text is on hold: their quiet hours leave no time in the send window."
    why = "quiet hours" if verdict.reason == "quiet_hours" else "outside the send window"
    local = due.astimezone(ZoneInfo(patient.timezone))
    return f"The welcome text will go at {local:%H:%M} their time ({why})."


def _text_welcome(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    *,
    now: dt.datetime,
) -> None:
    """Texts the welcome and records the message row, in a transaction that begins after
    the send (a session touches the database only at its first statement)."""
    welcome = library.render(
        "welcome",
        patient.language,
        {"first_name": patient.first_name, "clinic_name": settings.clinic_name},
        seed=str(patient.id),
    )
    callback = status_callback_url(settings.public_base_url) if gateway.name == "twilio" else None
    with sessions.begin() as session:
        send_to_patient(
            session, gateway, patient, welcome, kind="welcome", now=now, status_callback=callback
        )


def send_due_welcomes(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """The clock tick's step: texts every held welcome whose instant has come, at most once
    whatever the number of clock processes. Returns how many were sent. One transaction
    claims the batch; each welcome sent records its row in its own, after its send."""
    sent = 0
    for patient_id, phone in _claim_due_welcomes(session_factory, now):
        with session_factory() as session:
            patient = session.get(Patient, patient_id)
        # A discharge, an opt-in or a new number committed since the claim wins.
        if (
            patient is None
            or patient.status != PatientStatus.PENDING_CONSENT
            or patient.phone_e164 != phone
        ):
            continue
        _text_welcome(session_factory, gateway, library, settings, patient, now=now)
        sent += 1
    if sent:
        log.info("held welcomes sent: %d", sent)
    return sent


def _claim_due_welcomes(
    session_factory: sessionmaker[Session], now: dt.datetime
) -> list[tuple[int, str]]:
    return claim_held(session_factory, now, Patient, "welcome_due_at")


def claim_held(
    session_factory: sessionmaker[Session],
    now: dt.datetime,
    model: type[Patient] | type[Caregiver],
    due_field: str,
) -> list[tuple[int, str]]:
    """(id, number) of the held opt-in requests (a patient's welcome, a caregiver's
    invitation: `model` and its `due_field`) that may go now, their marks cleared and
    committed before any network call. Each mark is cleared by a conditional UPDATE on the
    value this clock read, so of several clocks only one wins a request; someone no longer
    waiting for YES (opted in, out, discharged) loses the mark without a text, and one whose
    instant is not permitted any more (quiet hours or window changed) is held again to the
    next permitted instant."""
    due: Any = getattr(model, due_field)
    with session_factory.begin() as session:
        query = (
            select(
                model.id,
                due.label("due_at"),
                model.status,
                model.timezone,
                model.quiet_start,
                model.quiet_end,
                model.phone_e164,
            )
            .where(due <= now)
            .order_by(due, model.id)
            .limit(WELCOME_BATCH)
        )
        # Concurrent clocks take disjoint rows instead of queueing on row locks.
        rows = session.execute(skip_locked(session, query)).all()
        if not rows:
            return []
        window = dispatch_settings(session).window
        claimed: list[tuple[int, str]] = []
        for row in rows:
            held = update(model).where(model.id == row.id, due == row.due_at)
            verdict = _verdict(
                window, row.status, row.timezone, row.quiet_start, row.quiet_end, now
            )
            if verdict.reason == sendability.refused_status(row.status):
                session.execute(held.values({due_field: None}))
                continue
            if not verdict.may_send_now:
                session.execute(held.values({due_field: verdict.send_at or now + WELCOME_RECHECK}))
                continue
            won = session.scalar(
                held.where(
                    model.status == PatientStatus.PENDING_CONSENT,
                    model.phone_e164 == row.phone_e164,
                )
                .values({due_field: None})
                .returning(model.id)
            )
            if won is not None:
                claimed.append((row.id, row.phone_e164))
        return claimed
