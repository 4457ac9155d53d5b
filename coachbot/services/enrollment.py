"""Enrolling a patient: validate everything first, write once, then ask for the opt-in YES
(the welcome, `coachbot.services.welcomes`)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.content.lint import clinician_text_problem
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.domain.program import LANGUAGES, parse_tracks
from coachbot.domain.schedule import MAX_TIMES_PER_TRACK as MAX_TIMES_PER_TRACK  # re-exported
from coachbot.domain.schedule import parse_hhmm
from coachbot.domain.states import PatientStatus, Role
from coachbot.models import HomeworkItem, Patient, StaffUser, TrackSchedule
from coachbot.services import consent
from coachbot.services.caregivers.records import (
    CaregiverEntry,
    CloseWatch,
    ValidCaregiver,
    apply_close_watch,
    caregiver_numbers,
    check_caregiver,
    is_caregiver_number,
    link_caregiver,
    parse_close_watch,
)
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import program_default
from coachbot.services.welcomes import send_welcome
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway

log = logging.getLogger(__name__)

MAX_HOMEWORK = 20


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone `name` (surrounding space ignored), or None when there is none. A name
    that is no zone file at all (a directory such as "America", a name longer than the file
    system allows) fails with OSError rather than ZoneInfoNotFoundError."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def homework_problem(items: tuple[str, ...]) -> str | None:
    """Homework goes into the rehab texts word for word: each item passes the privacy lint."""
    for item in items:
        if problem := clinician_text_problem(item):
            return problem
    return None


def parse_times(text: str) -> str:
    """'8:30, 20:00' -> '08:30,20:00' (sorted, unique, one to MAX_TIMES_PER_TRACK);
    raises ValueError with the reason."""
    times = sorted({parse_hhmm(t) for t in text.split(",") if t.strip()})
    if not times:
        raise ValueError("at least one time is required, e.g. 08:30")
    if len(times) > MAX_TIMES_PER_TRACK:
        raise ValueError(f"at most {MAX_TIMES_PER_TRACK} times a day")
    return ",".join(t.strftime("%H:%M") for t in times)


@dataclass(frozen=True)
class EnrollmentRequest:
    first_name: str
    phone: str
    timezone: str
    language: str = "en"
    tracks: str = "sleep,exercise,diet,mindfulness,rehab"
    times: str | None = None  # applies to every chosen track; None = each track's default
    # Times for some of the chosen tracks, (track, "HH:MM,HH:MM"): they win over `times`.
    track_times: tuple[tuple[str, str], ...] = ()
    quiet_hours: str | None = None  # "21:00-07:30"
    clinician_email: str | None = None
    consent: str = "verbal consent in clinic"
    # When the patient gave that consent, as the clinician attests it; None means at
    # enrolment. Never later than the enrolment itself.
    consent_at: dt.datetime | None = None
    caregiver_phone: str | None = None
    caregiver_name: str | None = None
    caregiver_language: str | None = None  # None: the patient's language
    # The close-watch weeks: the first day (a date, or YYYY-MM-DD) and the length in days
    # (None: the programme's default).
    close_watch_from: dt.date | str | None = None
    close_watch_days: int | str | None = None
    checkin: bool = False
    homework: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Validated:
    first_name: str
    phone: str
    timezone: str
    language: str
    tracks: tuple[str, ...]
    times: str | None  # canonical, as parse_times returns it
    track_times: dict[str, str]  # canonical
    quiet: tuple[dt.time, dt.time] | None
    clinician: StaffUser | None
    caregiver: ValidCaregiver | None
    close_watch: CloseWatch


@dataclass(frozen=True)
class ContactFields:
    """The person-level fields that enrolment and a later edit both check the same way."""

    first_name: str
    phone: str
    timezone: str
    language: str
    quiet: tuple[dt.time, dt.time] | None
    caregiver: ValidCaregiver | None
    close_watch: CloseWatch


def check_contact_fields(
    session: Session,
    settings: Settings,
    errors: dict[str, str],
    *,
    first_name: str,
    phone: str,
    timezone: str,
    language: str,
    quiet_hours: str | None,
    caregiver: CaregiverEntry,
    close_watch_from: dt.date | str | None,
    close_watch_days: int | str | None,
    patient_id: int | None = None,
) -> ContactFields:
    """Adds a message per bad field to `errors` and returns what could be parsed.
    `patient_id` is the patient being edited, whose own number is not a clash. A patient's
    number may not be a caregiver's: a text from it must be readable as one person's."""
    name = first_name.strip()
    if not name:
        errors["first_name"] = "a first name is required"
    elif len(name) > 40:
        errors["first_name"] = "at most 40 characters (it goes into every text)"

    e164 = ""
    try:
        e164 = parse_mobile(phone, settings.default_region)
    except InvalidPhoneNumber as exc:
        errors["phone"] = str(exc)
    else:
        clash = select(Patient.id).where(Patient.phone_e164 == e164)
        if patient_id is not None:
            clash = clash.where(Patient.id != patient_id)
        if session.scalar(clash) is not None:
            errors["phone"] = "this number is already enrolled"
        elif is_caregiver_number(session, e164) and not _own_number(session, patient_id, e164):
            errors["phone"] = "this number is a caregiver's"

    if zone_named(timezone) is None:
        errors["timezone"] = f"{timezone!r} is not an IANA time zone such as America/New_York"

    lang = language.strip().lower()
    if lang not in LANGUAGES:
        errors["language"] = f"{language!r} is not supported; choose {' or '.join(LANGUAGES)}"

    quiet: tuple[dt.time, dt.time] | None = None
    if quiet_hours and quiet_hours.strip():
        start, sep, end = quiet_hours.partition("-")
        try:
            if not sep:
                raise ValueError(f"{quiet_hours!r} should look like 21:00-07:30")
            quiet = (parse_hhmm(start), parse_hhmm(end))
        except ValueError as exc:
            errors["quiet_hours"] = str(exc)

    valid_caregiver = check_caregiver(
        session,
        settings.default_region,
        errors,
        caregiver,
        patient_phone=e164,
        patient_language=lang if lang in LANGUAGES else "en",
    )
    watch = parse_close_watch(errors, close_watch_from, close_watch_days)
    return ContactFields(name, e164, timezone.strip(), lang, quiet, valid_caregiver, watch)


def _own_number(session: Session, patient_id: int | None, phone: str) -> bool:
    """The edited patient keeps the number they have (a record from before the rule)."""
    if patient_id is None:
        return False
    return session.scalar(select(Patient.phone_e164).where(Patient.id == patient_id)) == phone


def validate_enrollment(session: Session, req: EnrollmentRequest, settings: Settings) -> _Validated:
    errors: dict[str, str] = {}
    contact = check_contact_fields(
        session,
        settings,
        errors,
        first_name=req.first_name,
        phone=req.phone,
        timezone=req.timezone,
        language=req.language,
        quiet_hours=req.quiet_hours,
        caregiver=CaregiverEntry(req.caregiver_phone, req.caregiver_name, req.caregiver_language),
        close_watch_from=req.close_watch_from,
        close_watch_days=req.close_watch_days,
    )

    tracks: tuple[str, ...] = ()
    try:
        tracks = parse_tracks(req.tracks)
    except ValueError as exc:
        errors["tracks"] = str(exc)

    times: str | None = None
    if req.times:
        try:
            times = parse_times(req.times)
        except ValueError as exc:
            errors["times"] = str(exc)
    track_times: dict[str, str] = {}
    for track, text in req.track_times:
        if track not in tracks:
            errors["tracks"] = errors.get("tracks") or f"times given for {track!r}, not chosen"
            continue
        try:
            track_times[track] = parse_times(text)
        except ValueError as exc:
            errors[f"times_{track}"] = str(exc)

    if len([h for h in req.homework if h.strip()]) > MAX_HOMEWORK:
        errors["homework"] = f"at most {MAX_HOMEWORK} homework items"
    elif problem := homework_problem(req.homework):
        errors["homework"] = problem

    clinician = None
    if req.clinician_email:
        clinician = session.scalar(
            select(StaffUser).where(StaffUser.email == req.clinician_email.strip().lower())
        )
        if clinician is None or clinician.role != Role.CLINICIAN:
            errors["clinician"] = f"no clinician account {req.clinician_email!r}"

    if not req.consent.strip():
        errors["consent"] = "record how and when consent was given"

    if errors:
        raise ValidationFailed(errors)
    return _Validated(
        contact.first_name,
        contact.phone,
        contact.timezone,
        contact.language,
        tracks,
        times,
        track_times,
        contact.quiet,
        clinician,
        contact.caregiver,
        contact.close_watch,
    )


def enroll_patient(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    req: EnrollmentRequest,
    *,
    now: dt.datetime,
    actor: str,
) -> Patient:
    """Creates the patient as pending-consent and texts the welcome asking for YES.

    Nothing else is sent to a pending patient: dispatch only plans for active patients.
    The enrolment commits in its own transaction before the welcome's (`send_welcome`), so
    a slow provider never holds the write lock and a failed welcome leaves a visible
    pending patient, not nothing.
    """
    with sessions.begin() as session:
        patient = add_patient(session, req, settings, now=now, actor=actor)
    patient.welcome_due_at = send_welcome(sessions, gateway, library, settings, patient.id, now=now)
    return patient


def add_patient(
    session: Session,
    req: EnrollmentRequest,
    settings: Settings,
    *,
    now: dt.datetime,
    actor: str,
) -> Patient:
    """Validates and adds the patient (flushed, audited) without committing, so a caller can
    enrol several in one transaction; `send_welcome` after the commit."""
    v = validate_enrollment(session, req, settings)
    consent_at = req.consent_at or now
    if consent_at.tzinfo is None or consent_at > now:
        raise ValidationFailed({"consent_at": "consent must be given before enrolment"})
    patient = Patient(
        first_name=v.first_name,
        phone_e164=v.phone,
        timezone=v.timezone,
        language=v.language,
        quiet_start=v.quiet[0] if v.quiet else None,
        quiet_end=v.quiet[1] if v.quiet else None,
        status=PatientStatus.PENDING_CONSENT,
        clinician_id=v.clinician.id if v.clinician else None,
        checkin_enabled=req.checkin,
        consent_at=consent_at,
        consent_method=req.consent.strip()[:200],
        consent_recorded_by_id=v.clinician.id if v.clinician else None,
        enrolled_at=now,
        updated_at=now,
    )
    patient.schedules.extend(_schedules(session, v, req.checkin, now))
    for text in req.homework:
        if text.strip():
            patient.homework.append(HomeworkItem(description=text.strip()[:200], created_at=now))
    apply_close_watch(patient, v.close_watch)
    session.add(patient)
    session.flush()
    # The consent the clinician attests, in their words; the patient's own YES follows.
    consent.record_audited(
        session,
        patient_id=patient.id,
        number=patient.phone_e164,
        event=consent.ENROLLED,
        action="patient.enroll",
        detail=f"consent given {consent_at.isoformat()}",
        text=f"{patient.consent_method} (given {consent_at.isoformat()})",
        source="clinician_attested",
        now=now,
        actor=actor,
    )
    if v.caregiver is not None:
        link_caregiver(session, patient, v.caregiver, now=now, actor=actor)
    return patient


def _schedules(
    session: Session, v: _Validated, checkin: bool, now: dt.datetime
) -> list[TrackSchedule]:
    schedules: list[TrackSchedule] = []
    for track in v.tracks + (("checkin",) if checkin else ()):
        if v.times and track not in v.track_times:
            # Explicit times make this patient's schedule their own: a later change to
            # the programme default does not move it.
            schedules.append(
                TrackSchedule(
                    track=track,
                    local_times=v.times,
                    days_of_week="0123456",
                    is_custom=True,
                    updated_at=now,
                )
            )
            continue
        # The programme's days and phases; times of the track's own, if given and not
        # the programme's, make the schedule the patient's own.
        default = program_default(session, track)
        times = v.track_times.get(track, default.local_times)
        schedules.append(
            TrackSchedule(
                track=track,
                local_times=times,
                days_of_week=default.days_of_week,
                phases=default.phases,
                is_custom=times != default.local_times,
                updated_at=now,
            )
        )
    return schedules


def opted_out_notes(session: Session, settings: Settings, patient: Patient) -> list[str]:
    """For the clinician after an enrolment or an edit: the patient's or caregiver's number
    is on the suppression list, so nothing is sent to it until it texts START. Only reads."""
    numbers = [("The patient's number", patient.phone_e164)] + [
        ("The caregiver's number", phone)
        for phone in caregiver_numbers(session, [patient.id]).get(patient.id, [])
    ]
    stopped = consent.suppressed_among(session, [number for _, number in numbers])
    notice = consent.opted_out_notice(settings)
    return [f"{whose}: {notice}." for whose, number in numbers if number in stopped]
