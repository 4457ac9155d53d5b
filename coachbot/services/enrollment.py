"""Enrolling a patient: validate everything first, write once, then ask for the opt-in YES.

The welcome obeys the same clock as every nudge: it goes at once only when the patient's
local time is inside the programme's send window and outside their quiet hours. Otherwise
its first permitted instant is stored (`Patient.welcome_due_at`) and the clock tick sends it
then (`send_due_welcomes`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.content.lint import clinician_text_problem
from coachbot.domain import schedule as sched
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.domain.program import LANGUAGES, parse_tracks
from coachbot.domain.schedule import MAX_TIMES_PER_TRACK as MAX_TIMES_PER_TRACK  # re-exported
from coachbot.domain.schedule import parse_hhmm
from coachbot.domain.states import PatientStatus, Role
from coachbot.models import HomeworkItem, Patient, StaffUser, TrackSchedule
from coachbot.services import audit, consent
from coachbot.services.errors import ValidationFailed
from coachbot.services.messaging import send_to_patient, status_callback_url
from coachbot.services.schedules import dispatch_settings, program_default
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from coachbot.store.dialect import skip_locked

log = logging.getLogger(__name__)

MAX_HOMEWORK = 20
# How far ahead a held welcome looks for a permitted instant: any daily send window is
# reached within two days, daylight-saving changes included.
WELCOME_MAX_DEFER = dt.timedelta(days=2)
# When quiet hours cover the whole send window there is no permitted instant at all; the
# welcome stays pending and is looked at again this often, so it goes once an edit of the
# quiet hours or the window lets it.
WELCOME_RECHECK = dt.timedelta(hours=1)
WELCOME_BATCH = 200


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
    caregiver: str | None


@dataclass(frozen=True)
class ContactFields:
    """The person-level fields that enrolment and a later edit both check the same way."""

    first_name: str
    phone: str
    timezone: str
    language: str
    quiet: tuple[dt.time, dt.time] | None
    caregiver: str | None


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
    caregiver_phone: str | None,
    patient_id: int | None = None,
) -> ContactFields:
    """Adds a message per bad field to `errors` and returns what could be parsed.
    `patient_id` is the patient being edited, whose own number is not a clash."""
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

    caregiver = None
    if caregiver_phone and caregiver_phone.strip():
        try:
            caregiver = parse_mobile(caregiver_phone, settings.default_region)
        except InvalidPhoneNumber as exc:
            errors["caregiver_phone"] = str(exc)
        else:
            if caregiver == e164:
                errors["caregiver_phone"] = "the caregiver number must differ from the patient's"
    return ContactFields(name, e164, timezone.strip(), lang, quiet, caregiver)


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
        caregiver_phone=req.caregiver_phone,
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
    )


def enroll_patient(
    session: Session,
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
    """
    patient = add_patient(session, req, settings, now=now, actor=actor)
    # The enrolment is committed before the network call, so a slow provider never holds
    # the write lock and a failed welcome leaves a visible pending patient, not nothing.
    session.commit()
    send_welcome(session, gateway, library, settings, patient, now=now)
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
        caregiver_phone_e164=v.caregiver,
        checkin_enabled=req.checkin,
        consent_at=consent_at,
        consent_method=req.consent.strip()[:200],
        consent_recorded_by_id=v.clinician.id if v.clinician else None,
        enrolled_at=now,
        updated_at=now,
    )
    tracks = v.tracks + (("checkin",) if req.checkin else ())
    for track in tracks:
        if v.times and track not in v.track_times:
            # Explicit times make this patient's schedule their own: a later change to
            # the programme default does not move it.
            patient.schedules.append(
                TrackSchedule(
                    track=track,
                    local_times=v.times,
                    days_of_week="0123456",
                    is_custom=True,
                    updated_at=now,
                )
            )
        else:
            # The programme's days and phases; times of the track's own, if given and
            # not the programme's, make the schedule the patient's own.
            default = program_default(session, track)
            times = v.track_times.get(track, default.local_times)
            patient.schedules.append(
                TrackSchedule(
                    track=track,
                    local_times=times,
                    days_of_week=default.days_of_week,
                    phases=default.phases,
                    is_custom=times != default.local_times,
                    updated_at=now,
                )
            )
    for text in req.homework:
        if text.strip():
            patient.homework.append(HomeworkItem(description=text.strip()[:200], created_at=now))
    session.add(patient)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="patient.enroll",
        patient_id=patient.id,
        now=now,
        detail=f"consent given {consent_at.isoformat()}",
    )
    # The consent the clinician attests, in their words; the patient's own YES follows.
    consent.record_event(
        session,
        number=patient.phone_e164,
        patient_id=patient.id,
        event=consent.ENROLLED,
        text=f"{patient.consent_method} (given {consent_at.isoformat()})",
        now=now,
        actor=actor,
        source="clinician_attested",
    )
    return patient


def send_welcome(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    *,
    now: dt.datetime,
) -> None:
    """Texts the welcome asking for YES if the patient's local time allows it now (send
    window, quiet hours), else records when it may go for the clock tick; commits either
    way. Call it after the patient's row is committed: a network call never runs inside
    the enrolment's transaction. A later call (a new number) replaces an earlier hold.

    A number on the suppression list gets nothing, not even a hold: enrolling it is
    allowed, and texts start only once that number texts START (see `opted_out_notes`)."""
    if consent.is_suppressed(session, patient.phone_e164):
        patient.welcome_due_at = None
        audit.record(
            session,
            actor="system",
            action="consent.welcome_suppressed",
            patient_id=patient.id,
            now=now,
            detail="number on the suppression list: no welcome",
        )
        consent.record_event(
            session,
            number=patient.phone_e164,
            patient_id=patient.id,
            event=consent.ENROLLED_SUPPRESSED,
            text=None,
            now=now,
            actor="system",
        )
        session.commit()
        return
    window = dispatch_settings(session).window
    decision = _welcome_decision(
        window, patient.timezone, patient.quiet_start, patient.quiet_end, now
    )
    if decision.action == "send":
        patient.welcome_due_at = None
        # Ends the read (and clears any earlier hold) before the network call.
        session.commit()
        _text_welcome(session, gateway, library, settings, patient, now=now)
        return
    due = decision.send_at or now + WELCOME_RECHECK
    patient.welcome_due_at = due
    audit.record(
        session,
        actor="system",
        action="consent.welcome_held",
        patient_id=patient.id,
        now=now,
        detail=f"until {due.isoformat()} ({decision.reason})",
    )
    session.commit()


def opted_out_notes(session: Session, settings: Settings, patient: Patient) -> list[str]:
    """For the clinician after an enrolment or an edit: the patient's or caregiver's number
    is on the suppression list, so nothing is sent to it until it texts START. Only reads."""
    numbers = {"The patient's number": patient.phone_e164}
    if patient.caregiver_phone_e164:
        numbers["The caregiver's number"] = patient.caregiver_phone_e164
    stopped = consent.suppressed_among(session, list(numbers.values()))
    notice = consent.opted_out_notice(settings)
    return [f"{whose}: {notice}." for whose, number in numbers.items() if number in stopped]


def welcome_note(session: Session, patient: Patient, now: dt.datetime) -> str | None:
    """For the clinician after an enrolment or a new number: when a held welcome will go,
    in the patient's local time; None when it was texted at once. Only reads."""
    due = patient.welcome_due_at
    if due is None:
        return None
    decision = _welcome_decision(
        dispatch_settings(session).window,
        patient.timezone,
        patient.quiet_start,
        patient.quiet_end,
        now,
    )
    if decision.action == "skip":
        return "The welcome text is on hold: their quiet hours leave no time in the send window."
    why = "quiet hours" if decision.reason == "quiet_hours" else "outside the send window"
    local = due.astimezone(ZoneInfo(patient.timezone))
    return f"The welcome text will go at {local:%H:%M} their time ({why})."


def _welcome_decision(
    window: sched.LocalWindow,
    timezone: str,
    quiet_start: dt.time | None,
    quiet_end: dt.time | None,
    now: dt.datetime,
) -> sched.SendDecision:
    """The dispatcher's rule for a nudge due now, with the deferral a welcome always gets."""
    quiet = (
        sched.LocalWindow(quiet_start, quiet_end)
        if quiet_start is not None and quiet_end is not None
        else None
    )
    return sched.place_in_window(
        now,
        ZoneInfo(timezone),
        window,
        quiet,
        sched.QuietPolicy.DEFER,
        max_defer=WELCOME_MAX_DEFER,
    )


def _text_welcome(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    *,
    now: dt.datetime,
) -> None:
    """Texts the welcome and commits the message row."""
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


def send_due_welcomes(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """The clock tick's step: texts every held welcome whose instant has come, at most once
    whatever the number of clock processes. Returns how many were sent."""
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
            session.commit()  # no transaction (nor SQLite write lock) across the send
            _text_welcome(session, gateway, library, settings, patient, now=now)
            sent += 1
    if sent:
        log.info("held welcomes sent: %d", sent)
    return sent


def _claim_due_welcomes(
    session_factory: sessionmaker[Session], now: dt.datetime
) -> list[tuple[int, str]]:
    """(patient id, number) of the held welcomes that may go now, their marks cleared and
    committed before any network call. Each mark is cleared by a conditional UPDATE on the
    value this clock read, so of several clocks only one wins a welcome; a patient who is
    no longer waiting for YES (opted in, out, discharged) loses the mark without a text, and
    one whose instant is not permitted any more (quiet hours or window changed) is held
    again to the next permitted instant."""
    with session_factory() as session, session.begin():
        query = (
            select(
                Patient.id,
                Patient.welcome_due_at,
                Patient.status,
                Patient.timezone,
                Patient.quiet_start,
                Patient.quiet_end,
                Patient.phone_e164,
            )
            .where(Patient.welcome_due_at <= now)
            .order_by(Patient.welcome_due_at, Patient.id)
            .limit(WELCOME_BATCH)
        )
        # Concurrent clocks take disjoint rows instead of queueing on row locks.
        rows = session.execute(skip_locked(session, query)).all()
        if not rows:
            return []
        window = dispatch_settings(session).window
        claimed: list[tuple[int, str]] = []
        for row in rows:
            held = update(Patient).where(
                Patient.id == row.id, Patient.welcome_due_at == row.welcome_due_at
            )
            if row.status != PatientStatus.PENDING_CONSENT:
                session.execute(held.values(welcome_due_at=None))
                continue
            decision = _welcome_decision(window, row.timezone, row.quiet_start, row.quiet_end, now)
            if decision.action != "send":
                session.execute(
                    held.values(welcome_due_at=decision.send_at or now + WELCOME_RECHECK)
                )
                continue
            won = session.scalar(
                held.where(
                    Patient.status == PatientStatus.PENDING_CONSENT,
                    Patient.phone_e164 == row.phone_e164,
                )
                .values(welcome_due_at=None)
                .returning(Patient.id)
            )
            if won is not None:
                claimed.append((row.id, row.phone_e164))
        return claimed
