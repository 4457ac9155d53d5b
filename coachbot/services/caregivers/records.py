"""A patient's caregiver and close-watch weeks as a clinician enters them: on the enrol and
edit forms, in the bulk CSV and on the command line.

Checking adds one message per bad field to the caller's `errors` (the form shows it on the
field); writing works inside the caller's transaction (enrolment's or the edit's: one
transaction per use case) and never commits. Adding a caregiver only writes
`invite_due_at`: the clock tick sends the invitation at the caregiver's first permitted
instant (`services.caregivers.invitations`), so no network call runs in these transactions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from coachbot.domain.close_watch import MAX_DAYS, MIN_DAYS
from coachbot.domain.phones import InvalidPhoneNumber, mask_phone, parse_mobile
from coachbot.domain.program import LANGUAGES
from coachbot.domain.states import PatientStatus
from coachbot.models import Caregiver, CaregiverCheck, CaregiverLink, MediaSample, Patient
from coachbot.services import audit, consent

MAX_NAME = 40  # a first name goes into every caregiver text, as a patient's does

# Consent-ledger events of a caregiver's number (their YES and STOP are the inbound
# pipeline's OPT_IN and OPT_OUT, as for a patient).
CAREGIVER_ADDED = "caregiver_added"  # a clinician added the number; the invitation will ask YES
CAREGIVER_NUMBER_CHANGED = "caregiver_number_changed"  # a new number asks YES again
# A caregiver never invited (a number given before caregivers could be texted, migration
# 0013) invited by a clinician.
CAREGIVER_INVITED = "caregiver_invited"


@dataclass(frozen=True)
class CaregiverEntry:
    """What the clinician typed; a blank phone means "no caregiver"."""

    phone: str | None = None
    name: str | None = None
    language: str | None = None  # None or blank: the patient's language


@dataclass(frozen=True)
class ValidCaregiver:
    phone: str  # E.164
    name: str
    language: str


@dataclass(frozen=True)
class CloseWatch:
    starts: dt.date | None
    days: int | None  # None: the programme's default length


def check_caregiver(
    session: Session,
    settings_region: str,
    errors: dict[str, str],
    entry: CaregiverEntry,
    *,
    patient_phone: str,
    patient_language: str,
) -> ValidCaregiver | None:
    """The entry parsed, or None for no caregiver (or a bad entry, whose reasons are in
    `errors` under caregiver_phone, caregiver_name and caregiver_language). A caregiver's
    number may be no patient's own number: a text from it must be readable as one person's."""
    raw_phone = (entry.phone or "").strip()
    name = (entry.name or "").strip()
    language = (entry.language or "").strip().lower() or patient_language
    if not raw_phone:
        if name:
            errors["caregiver_phone"] = (
                "give the caregiver's mobile number, or leave the name empty"
            )
        return None
    phone = ""
    try:
        phone = parse_mobile(raw_phone, settings_region)
    except InvalidPhoneNumber as exc:
        errors["caregiver_phone"] = str(exc)
    else:
        if phone == patient_phone:
            errors["caregiver_phone"] = "the caregiver number must differ from the patient's"
        elif session.scalar(select(Patient.id).where(Patient.phone_e164 == phone)) is not None:
            errors["caregiver_phone"] = "this number is a patient's own number"
    if not name:
        errors["caregiver_name"] = "the caregiver's first name is required with their number"
    elif len(name) > MAX_NAME:
        errors["caregiver_name"] = f"at most {MAX_NAME} characters (it goes into their texts)"
    if language not in LANGUAGES:
        errors["caregiver_language"] = (
            f"{entry.language!r} is not supported; choose {' or '.join(LANGUAGES)}"
        )
    if any(k in errors for k in ("caregiver_phone", "caregiver_name", "caregiver_language")):
        return None
    return ValidCaregiver(phone, name, language)


def is_caregiver_number(session: Session, phone: str) -> bool:
    """A patient's own number may not be a caregiver's (see `check_caregiver`)."""
    return bool(session.scalar(select(exists().where(Caregiver.phone_e164 == phone))))


def parse_close_watch(
    errors: dict[str, str], starts: dt.date | str | None, days: int | str | None
) -> CloseWatch:
    """The close-watch weeks from a form, a CSV cell or a CLI option: the first day (a real
    date, YYYY-MM-DD when typed) and a length within domain.close_watch's bounds (1 to 90
    days), blank for the programme's. Field errors go under close_watch_from and
    close_watch_days."""
    first: dt.date | None = None
    if isinstance(starts, dt.date):
        first = starts
    elif starts is not None and starts.strip():
        try:
            first = dt.date.fromisoformat(starts.strip())
        except ValueError:
            errors["close_watch_from"] = f"{starts.strip()!r} is not a date such as 2026-12-01"
    length: int | None = None
    if isinstance(days, int) or (days is not None and days.strip()):
        try:
            length = int(days)
        except ValueError:
            errors["close_watch_days"] = "a whole number of days"
        else:
            if not MIN_DAYS <= length <= MAX_DAYS:
                errors["close_watch_days"] = f"from {MIN_DAYS} to {MAX_DAYS} days"
        if first is None and "close_watch_from" not in errors and "close_watch_days" not in errors:
            errors["close_watch_from"] = "the first close-watch day is required with a length"
    return CloseWatch(first, length)


def apply_close_watch(patient: Patient, watch: CloseWatch) -> list[str]:
    """Sets the patient's close-watch columns; returns the names of those that changed."""
    changed = []
    for name, value in (("close_watch_from", watch.starts), ("close_watch_days", watch.days)):
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            changed.append(name)
    return changed


def caregiver_of(session: Session, patient_id: int) -> Caregiver | None:
    """The caregiver the forms show and edit: the first one linked (the data model allows
    several; the forms keep one)."""
    return session.scalar(
        select(Caregiver)
        .join(CaregiverLink, CaregiverLink.caregiver_id == Caregiver.id)
        .where(CaregiverLink.patient_id == patient_id)
        .order_by(CaregiverLink.linked_at, Caregiver.id)
        .limit(1)
    )


def link_caregiver(
    session: Session, patient: Patient, valid: ValidCaregiver, *, now: dt.datetime, actor: str
) -> Caregiver:
    """Links the caregiver on `valid.phone` to the patient. A new number becomes a caregiver
    pending consent whose invitation is due now. A number that is already a caregiver is
    linked only: no second invitation, and their consent (a YES, or a STOP) stands."""
    caregiver = session.scalar(select(Caregiver).where(Caregiver.phone_e164 == valid.phone))
    if caregiver is None:
        caregiver = Caregiver(
            first_name=valid.name,
            phone_e164=valid.phone,
            language=valid.language,
            timezone=patient.timezone,
            quiet_start=patient.quiet_start,
            quiet_end=patient.quiet_end,
            status=PatientStatus.PENDING_CONSENT,
            invite_due_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(caregiver)
        session.flush()
        consent.record_event(
            session,
            number=valid.phone,
            patient_id=patient.id,
            event=CAREGIVER_ADDED,
            text=None,
            now=now,
            actor=actor,
            source="clinician",
        )
        detail = f"new caregiver {caregiver.id}, invitation due"
    else:
        detail = f"existing caregiver {caregiver.id} ({caregiver.status})"
    linked = session.get(CaregiverLink, (patient.id, caregiver.id))
    if linked is None:
        session.add(
            CaregiverLink(
                patient_id=patient.id, caregiver_id=caregiver.id, linked_at=now, linked_by=actor
            )
        )
        session.flush()
    audit.record(
        session, actor=actor, action="caregiver.link", patient_id=patient.id, now=now, detail=detail
    )
    return caregiver


def unlink_caregiver(
    session: Session, patient: Patient, caregiver: Caregiver, *, now: dt.datetime, actor: str
) -> None:
    """Takes the caregiver off this patient. Their record stays while they watch another
    patient, or while checks or samples they sent are part of a record (their history is
    the patient's too); otherwise it goes. Their consent history stays in the ledger."""
    link = session.get(CaregiverLink, (patient.id, caregiver.id))
    if link is not None:
        session.delete(link)
        session.flush()
    others = session.scalar(select(func.count()).where(CaregiverLink.caregiver_id == caregiver.id))
    history = session.scalar(
        select(
            exists().where(CaregiverCheck.caregiver_id == caregiver.id)
            | exists().where(MediaSample.caregiver_id == caregiver.id)
        )
    )
    kept = bool(others or history)
    if not kept:
        session.delete(caregiver)
    audit.record(
        session,
        actor=actor,
        action="caregiver.unlink",
        patient_id=patient.id,
        now=now,
        detail=f"caregiver {caregiver.id} {'kept' if kept else 'removed'}",
    )


def update_caregiver(
    session: Session,
    patient: Patient,
    valid: ValidCaregiver,
    *,
    now: dt.datetime,
    actor: str,
    invite: bool = False,
) -> list[str]:
    """The edit form's caregiver, applied: returns what changed ("caregiver_added",
    "caregiver_name", "caregiver_language", "caregiver_phone", "caregiver_invited").
    `invite` asks a caregiver who was never invited (see `never_invited`) for their YES.

    A new number is a new consent. When the current caregiver watches only this patient,
    their record takes the number and goes back to pending consent with an invitation due.
    When they also watch others, changing the number here must not change it for patients
    this clinician may not see: this patient is linked to the caregiver on the new number
    instead (a new one, or an existing one whose consent stands)."""
    current = caregiver_of(session, patient.id)
    if current is None:
        link_caregiver(session, patient, valid, now=now, actor=actor)
        return ["caregiver_added"]
    changed = []
    if valid.phone != current.phone_e164:
        shared = session.scalar(
            select(func.count()).where(
                CaregiverLink.caregiver_id == current.id, CaregiverLink.patient_id != patient.id
            )
        )
        taken = session.scalar(select(Caregiver.id).where(Caregiver.phone_e164 == valid.phone))
        if shared or taken is not None:
            unlink_caregiver(session, patient, current, now=now, actor=actor)
            link_caregiver(session, patient, valid, now=now, actor=actor)
            return ["caregiver_phone"]
        _renumber(session, patient, current, valid.phone, now=now, actor=actor)
        changed.append("caregiver_phone")
    for column, value, label in (
        ("first_name", valid.name, "caregiver_name"),
        ("language", valid.language, "caregiver_language"),
    ):
        if getattr(current, column) != value:
            setattr(current, column, value)
            changed.append(label)
    if invite and never_invited(current):
        current.invite_due_at = now
        consent.record_event(
            session,
            number=current.phone_e164,
            patient_id=patient.id,
            event=CAREGIVER_INVITED,
            text=None,
            now=now,
            actor=actor,
            source="clinician",
        )
        changed.append("caregiver_invited")
    if changed:
        current.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="caregiver.edit",
            patient_id=patient.id,
            now=now,
            detail=f"caregiver {current.id}: {','.join(changed)}",
        )
    return changed


def never_invited(caregiver: Caregiver) -> bool:
    """Pending consent with no invitation sent or due: a number given before caregivers
    could be texted (migration 0013). Nothing goes to them until a clinician invites them."""
    return (
        caregiver.status == PatientStatus.PENDING_CONSENT
        and caregiver.invited_at is None
        and caregiver.invite_due_at is None
    )


def remove_caregivers(
    session: Session, patient: Patient, *, now: dt.datetime, actor: str
) -> list[str]:
    """The edit form's caregiver number cleared: every caregiver is unlinked from the
    patient."""
    links = session.scalars(
        select(CaregiverLink).where(CaregiverLink.patient_id == patient.id)
    ).all()
    for link in links:
        unlink_caregiver(session, patient, link.caregiver, now=now, actor=actor)
    return ["caregiver_removed"] if links else []


def _renumber(
    session: Session,
    patient: Patient,
    caregiver: Caregiver,
    phone: str,
    *,
    now: dt.datetime,
    actor: str,
) -> None:
    """A new number is a new person until they answer YES: pending again, invited anew."""
    old = caregiver.phone_e164
    caregiver.phone_e164 = phone
    caregiver.status = PatientStatus.PENDING_CONSENT
    caregiver.opted_in_at = None
    caregiver.opted_out_at = None
    caregiver.invited_at = None
    caregiver.invite_due_at = now
    consent.record_event(
        session,
        number=phone,
        patient_id=patient.id,
        event=CAREGIVER_NUMBER_CHANGED,
        text=f"replaces {mask_phone(old)}",
        now=now,
        actor=actor,
        source="clinician",
    )


def caregiver_numbers(session: Session, patient_ids: list[int]) -> dict[int, list[str]]:
    """Each patient's caregivers' numbers, for the opted-out notices after a save."""
    rows = session.execute(
        select(CaregiverLink.patient_id, Caregiver.phone_e164)
        .join(Caregiver, Caregiver.id == CaregiverLink.caregiver_id)
        .where(CaregiverLink.patient_id.in_(patient_ids))
    )
    numbers: dict[int, list[str]] = {}
    for patient_id, phone in rows:
        numbers.setdefault(patient_id, []).append(phone)
    return numbers
