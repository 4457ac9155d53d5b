"""Changing an enrolled patient's care: details, pause, resume, discharge, a new number
(which needs a fresh opt-in), and bulk enrolment that writes nothing unless every row is good."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.content import MessageLibrary
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.domain.program import LANGUAGES, TRACK_POLICIES
from coachbot.domain.schedule import parse_hhmm
from coachbot.domain.states import PatientStatus
from coachbot.models import Patient, TrackSchedule
from coachbot.services import audit
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient, validate_enrollment
from coachbot.services.errors import ValidationFailed
from coachbot.services.messaging import send_to_patient, status_callback_url
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway


class TransitionRefused(ValueError):
    pass


def parse_track_times(text: str) -> str:
    """'8:30, 20:00' -> '08:30,20:00' (sorted, unique); raises ValueError with the reason."""
    times = sorted({parse_hhmm(t) for t in text.split(",") if t.strip()})
    if not times:
        raise ValueError("at least one time is required, e.g. 08:30")
    return ",".join(t.strftime("%H:%M") for t in times)


def set_track_times(
    session: Session, patient: Patient, times: dict[str, str], *, now: dt.datetime, actor: str
) -> None:
    """Per-track local times (already parsed with parse_track_times). Planned-but-unsent rows
    are re-planned by dispatch because planned_through is cleared."""
    for schedule in patient.schedules:
        new = times.get(schedule.track)
        if new and new != schedule.local_times:
            schedule.local_times = new
            schedule.planned_through = None
            schedule.updated_at = now
    audit.record(session, actor=actor, action="patient.schedule", patient_id=patient.id, now=now)
    session.commit()


@dataclass(frozen=True)
class PatientChanges:
    first_name: str
    phone: str
    timezone: str
    language: str
    quiet_hours: str | None
    caregiver_phone: str | None
    checkin: bool


def update_patient(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    changes: PatientChanges,
    *,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """Applies the edit and returns the names of the fields that changed. A new number is
    treated as a new person until they answer YES: the patient goes back to pending consent
    and the welcome is sent to the new number."""
    errors: dict[str, str] = {}
    first_name = changes.first_name.strip()
    if not first_name:
        errors["first_name"] = "a first name is required"
    elif len(first_name) > 40:
        errors["first_name"] = "at most 40 characters (it goes into every text)"
    phone = patient.phone_e164
    try:
        phone = parse_mobile(changes.phone, settings.default_region)
    except InvalidPhoneNumber as exc:
        errors["phone"] = str(exc)
    else:
        other = session.scalar(
            select(Patient.id).where(Patient.phone_e164 == phone, Patient.id != patient.id)
        )
        if other is not None:
            errors["phone"] = "this number is already enrolled"
    try:
        ZoneInfo(changes.timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = (
            f"{changes.timezone!r} is not an IANA time zone such as America/New_York"
        )
    language = changes.language.strip().lower()
    if language not in LANGUAGES:
        errors["language"] = f"{changes.language!r} is not supported"
    quiet: tuple[dt.time, dt.time] | None = None
    if changes.quiet_hours and changes.quiet_hours.strip():
        start, sep, end = changes.quiet_hours.partition("-")
        try:
            if not sep:
                raise ValueError(f"{changes.quiet_hours!r} should look like 21:00-07:30")
            quiet = (parse_hhmm(start), parse_hhmm(end))
        except ValueError as exc:
            errors["quiet_hours"] = str(exc)
    caregiver = None
    if changes.caregiver_phone and changes.caregiver_phone.strip():
        try:
            caregiver = parse_mobile(changes.caregiver_phone, settings.default_region)
        except InvalidPhoneNumber as exc:
            errors["caregiver_phone"] = str(exc)
        else:
            if caregiver == phone:
                errors["caregiver_phone"] = "the caregiver number must differ from the patient's"
    if errors:
        raise ValidationFailed(errors)

    changed = []
    new_values = {
        "first_name": first_name,
        "timezone": changes.timezone.strip(),
        "language": language,
        "quiet_start": quiet[0] if quiet else None,
        "quiet_end": quiet[1] if quiet else None,
        "caregiver_phone_e164": caregiver,
        "checkin_enabled": changes.checkin,
    }
    for name, value in new_values.items():
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            changed.append(name)
    if changes.checkin and not any(s.track == "checkin" for s in patient.schedules):
        times = ",".join(t.strftime("%H:%M") for t in TRACK_POLICIES["checkin"].default_times)
        patient.schedules.append(
            TrackSchedule(
                track="checkin", local_times=times, days_of_week="0123456", updated_at=now
            )
        )
    elif not changes.checkin:
        patient.schedules[:] = [s for s in patient.schedules if s.track != "checkin"]
    if "timezone" in changed:
        for schedule in patient.schedules:
            schedule.planned_through = None
    number_changed = phone != patient.phone_e164
    if number_changed:
        patient.phone_e164 = phone
        changed.append("phone")
        if patient.status in (PatientStatus.ACTIVE, PatientStatus.PAUSED):
            patient.status = PatientStatus.PENDING_CONSENT
        patient.opted_in_at = None
        audit.record(
            session,
            actor=actor,
            action="consent.number_changed",
            patient_id=patient.id,
            now=now,
            detail="fresh opt-in requested",
        )
    patient.updated_at = now
    audit.record(
        session,
        actor=actor,
        action="patient.edit",
        patient_id=patient.id,
        now=now,
        detail=",".join(changed) or "no change",
    )
    session.commit()
    if number_changed and patient.status == PatientStatus.PENDING_CONSENT:
        _send_welcome(session, gateway, library, settings, patient, now)
    return changed


def _send_welcome(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    now: dt.datetime,
) -> None:
    welcome = library.render(
        "welcome",
        patient.language,
        {"first_name": patient.first_name, "clinic_name": settings.clinic_name},
        seed=str(patient.id),
    )
    callback = status_callback_url(settings.public_base_url) if gateway.name == "twilio" else None
    send_to_patient(
        session, gateway, patient, welcome, kind="welcome", now=now, status_callback=callback
    )
    session.commit()


_TRANSITIONS: dict[str, tuple[set[str], str]] = {
    "pause": ({PatientStatus.ACTIVE}, PatientStatus.PAUSED),
    "resume": ({PatientStatus.PAUSED}, PatientStatus.ACTIVE),
    "discharge": (
        {PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.PENDING_CONSENT},
        PatientStatus.DISCHARGED,
    ),
}


def change_status(
    session: Session, patient: Patient, action: str, *, now: dt.datetime, actor: str
) -> None:
    """pause / resume / discharge. Resume only returns a paused patient who had opted in:
    it never stands in for the patient's own YES."""
    allowed, target = _TRANSITIONS[action]
    if patient.status not in allowed or (action == "resume" and patient.opted_in_at is None):
        raise TransitionRefused(f"cannot {action} a patient who is {patient.status}")
    patient.status = target
    patient.updated_at = now
    # Planning resumes from now: nothing is planned for a paused week and then replayed.
    for schedule in patient.schedules:
        schedule.planned_through = None
    audit.record(
        session,
        actor=actor,
        action=f"patient.{action}",
        patient_id=patient.id,
        now=now,
        detail=f"status={target}",
    )
    session.commit()


# --- bulk enrolment -------------------------------------------------------------------

BULK_COLUMNS = (
    "first_name",
    "phone",
    "timezone",
    "language",
    "tracks",
    "times",
    "quiet_hours",
    "caregiver_phone",
    "checkin",
    "homework",
    "consent",
)
MAX_BULK_ROWS = 500


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str


def parse_bulk_csv(
    text: str, clinician_email: str
) -> tuple[list[EnrollmentRequest], list[RowError]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("first_name", "phone", "timezone") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(1, "header", f"missing column(s): {', '.join(missing)}")]
    requests: list[EnrollmentRequest] = []
    errors: list[RowError] = []
    for index, row in enumerate(reader, start=2):
        if index - 1 > MAX_BULK_ROWS:
            errors.append(RowError(index, "file", f"at most {MAX_BULK_ROWS} rows per file"))
            break

        def value(name: str, row: dict[str, str | None] = row) -> str:
            return (row.get(name) or "").strip()

        checkin = value("checkin").lower()
        if checkin not in ("", "yes", "no", "true", "false", "1", "0"):
            errors.append(RowError(index, "checkin", "use yes or no"))
        requests.append(
            EnrollmentRequest(
                first_name=value("first_name"),
                phone=value("phone"),
                timezone=value("timezone"),
                language=value("language") or "en",
                tracks=value("tracks") or "sleep,exercise,diet,mindfulness,rehab",
                times=value("times") or None,
                quiet_hours=value("quiet_hours") or None,
                clinician_email=clinician_email,
                consent=value("consent") or "verbal consent in clinic",
                caregiver_phone=value("caregiver_phone") or None,
                checkin=checkin in ("yes", "true", "1"),
                homework=tuple(h for h in value("homework").split("|") if h.strip()),
            )
        )
    return requests, errors


def bulk_enroll(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    csv_text: str,
    *,
    clinician_email: str,
    now: dt.datetime,
    actor: str,
) -> tuple[list[Patient], list[RowError]]:
    """Every row is checked first (including duplicates within the file); one bad row means
    nothing is written and the whole error report comes back."""
    requests, errors = parse_bulk_csv(csv_text, clinician_email)
    seen: dict[str, int] = {}
    for line, req in enumerate(requests, start=2):
        try:
            validate_enrollment(session, req, settings)
        except ValidationFailed as exc:
            errors.extend(RowError(line, f, m) for f, m in exc.errors.items())
        try:
            phone = parse_mobile(req.phone, settings.default_region)
        except InvalidPhoneNumber:
            continue
        if phone in seen:
            errors.append(RowError(line, "phone", f"same number as line {seen[phone]}"))
        else:
            seen[phone] = line
    if not requests and not errors:
        errors.append(RowError(1, "file", "no rows"))
    if errors:
        session.rollback()
        return [], sorted(errors, key=lambda e: (e.line, e.field))
    patients = [
        enroll_patient(session, gateway, library, settings, req, now=now, actor=actor)
        for req in requests
    ]
    return patients, []
