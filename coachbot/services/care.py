"""Changing an enrolled patient's care: details, pause, resume, discharge, a new number
(which needs a fresh opt-in), and bulk enrolment that writes nothing unless every row is good."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.content import MessageLibrary
from coachbot.domain.patient_status import Event, transition
from coachbot.domain.phones import InvalidPhoneNumber, parse_mobile
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import HomeworkItem, Nudge, Patient, TrackSchedule
from coachbot.services import audit, consent
from coachbot.services.enrollment import (
    MAX_HOMEWORK,
    EnrollmentRequest,
    add_patient,
    check_contact_fields,
    homework_problem,
    parse_times,
    send_welcome,
    validate_enrollment,
)
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import program_default
from coachbot.services.status_changes import patient_state
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway


def set_track_times(
    session: Session, patient: Patient, times: dict[str, str], *, now: dt.datetime, actor: str
) -> None:
    """Per-track local times (already parsed with enrollment.parse_times)."""
    update_care_plan(
        session,
        patient,
        CarePlan(
            tracks={
                s.track: times.get(s.track) or s.local_times
                for s in patient.schedules
                if s.track != "checkin"
            },
            homework=tuple(h.description for h in patient.homework if h.active),
        ),
        now=now,
        actor=actor,
    )


@dataclass(frozen=True)
class CarePlan:
    """What the clinician prescribes: coaching tracks with their local times (parsed with
    enrollment.parse_times; a track left out is stopped) and the homework items. The check-in
    track is switched by the patient's details, not here."""

    tracks: dict[str, str]
    homework: tuple[str, ...]


def _cancel_planned(
    session: Session, patient_id: int, track: str, now: dt.datetime, *, reason: str, all_: bool
) -> int:
    """Cancels the track's unsent planned nudges and frees their occurrence keys so the
    planner may use the slots again. On a time change the conversation engine's follow-ups
    (rows with a preset template) stay; a stopped track loses them too."""
    query = select(Nudge).where(
        Nudge.patient_id == patient_id, Nudge.track == track, Nudge.state == NudgeState.PLANNED
    )
    if not all_:
        query = query.where(Nudge.template_id.is_(None))
    rows = session.scalars(query).all()
    for nudge in rows:
        nudge.state = NudgeState.CANCELLED
        nudge.state_reason = reason
        nudge.occurrence_key = f"{nudge.occurrence_key[:40]}~x{nudge.id}"
        nudge.updated_at = now
    return len(rows)


def _stop_track(
    session: Session, patient: Patient, schedule: TrackSchedule, now: dt.datetime
) -> None:
    """A track taken off the plan: the schedule goes, and so does everything planned for it."""
    patient.schedules.remove(schedule)
    _cancel_planned(session, patient.id, schedule.track, now, reason="track_stopped", all_=True)


def _replan_from_now(
    session: Session, patient: Patient, schedule: TrackSchedule, now: dt.datetime, reason: str
) -> None:
    """A schedule whose times or time zone changed: what was planned under the old ones is
    cancelled (follow-ups stay) and planning restarts from now, so nothing in the past is
    planned again. A schedule not yet planned (pending consent) is left to the planner."""
    if schedule.planned_through is not None:
        schedule.planned_through = now
    schedule.updated_at = now
    _cancel_planned(session, patient.id, schedule.track, now, reason=reason, all_=False)


def check_care_plan(plan: CarePlan) -> dict[str, str]:
    """Field errors for a care plan, empty when it can be applied."""
    errors: dict[str, str] = {}
    if not plan.tracks:
        errors["tracks"] = "choose at least one track"
    for track, times in plan.tracks.items():
        if track not in TRACK_POLICIES or track == "checkin":
            errors["tracks"] = f"unknown track {track!r}"
        else:
            try:
                if parse_times(times) != times:
                    raise ValueError(f"{times!r} should look like 08:30,20:00")
            except ValueError as exc:
                errors[f"times_{track}"] = str(exc)
    if len([h for h in plan.homework if h.strip()]) > MAX_HOMEWORK:
        errors["homework"] = f"at most {MAX_HOMEWORK} homework items"
    elif problem := homework_problem(plan.homework):
        errors["homework"] = problem
    return errors


def update_care_plan(
    session: Session, patient: Patient, plan: CarePlan, *, now: dt.datetime, actor: str
) -> list[str]:
    """Applies tracks, times and homework and commits; returns what changed, e.g.
    ["rehab:times"]. See `_apply_care_plan`."""
    changed = _apply_care_plan(session, patient, plan, now=now, actor=actor)
    session.commit()
    return changed


def _apply_care_plan(
    session: Session, patient: Patient, plan: CarePlan, *, now: dt.datetime, actor: str
) -> list[str]:
    """Changed or new schedules become the patient's own (a later programme change leaves
    them alone) and are planned from now on: nothing in the past is planned again. Homework
    keeps its history: an unchanged line stays the same item, a removed line is retired
    (so past completion still reads against it) and a new line is a new item. Raises
    ValidationFailed before changing anything; the caller commits."""
    errors = check_care_plan(plan)
    if errors:
        raise ValidationFailed(errors)
    lines = [h.strip()[:200] for h in plan.homework if h.strip()]

    changed: list[str] = []
    current = {s.track: s for s in patient.schedules}
    # A patient already being planned is planned from now on; one not yet planned (pending
    # consent) is left to the planner, which starts from the opt-in.
    resume_from = now if any(s.planned_through for s in current.values()) else None
    for track, existing in current.items():
        if track != "checkin" and track not in plan.tracks:
            _stop_track(session, patient, existing, now)
            changed.append(f"{track}:stopped")
    for track, times in plan.tracks.items():
        schedule = current.get(track)
        if schedule is None:
            patient.schedules.append(
                TrackSchedule(
                    track=track,
                    local_times=times,
                    days_of_week="0123456",
                    is_custom=True,
                    planned_through=resume_from,
                    updated_at=now,
                )
            )
            changed.append(f"{track}:started")
        elif schedule.local_times != times:
            schedule.local_times = times
            schedule.is_custom = True
            _replan_from_now(session, patient, schedule, now, "schedule_changed")
            changed.append(f"{track}:times")

    active = {h.description: h for h in patient.homework if h.active}
    for description, item in active.items():
        if description not in lines:
            item.active = False
            changed.append("homework:retired")
    for line in dict.fromkeys(lines):
        if line not in active:
            patient.homework.append(
                HomeworkItem(
                    description=line,
                    active=True,
                    assigned_by_id=_staff_id(actor),
                    created_at=now,
                )
            )
            changed.append("homework:added")
    if changed:
        patient.updated_at = now
    audit.record(
        session,
        actor=actor,
        action="patient.care_plan",
        patient_id=patient.id,
        now=now,
        detail=",".join(changed) or "no change",
    )
    return changed


def _staff_id(actor: str) -> int | None:
    kind, _, number = actor.partition(":")
    return int(number) if kind == "staff" and number.isdigit() else None


@dataclass(frozen=True)
class PatientChanges:
    first_name: str
    phone: str
    timezone: str
    language: str
    quiet_hours: str | None
    caregiver_phone: str | None
    checkin: bool


def edit_patient(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    changes: PatientChanges,
    plan: CarePlan,
    *,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """The edit page's save: details and care plan in one transaction, so a failure part-way
    (a bad field, a number taken meanwhile, a crash) leaves the record as it was. Raises
    ValidationFailed with every field error it can find and nothing written."""
    errors = check_care_plan(plan)
    if errors:
        raise ValidationFailed(errors)
    try:
        changed = _apply_details(session, settings, patient, changes, now=now, actor=actor)
        changed += _apply_care_plan(session, patient, plan, now=now, actor=actor)
        session.commit()
    except Exception:
        session.rollback()
        raise
    # After the commit: a text is never sent for an edit that did not happen.
    _welcome_new_number(session, gateway, library, settings, patient, changed, now)
    return changed


def _apply_details(
    session: Session,
    settings: Settings,
    patient: Patient,
    changes: PatientChanges,
    *,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """A new number is treated as a new person until they answer YES: the patient goes back
    to pending consent (the caller sends the welcome after its commit). Raises
    ValidationFailed before changing anything; the caller commits."""
    errors: dict[str, str] = {}
    contact = check_contact_fields(
        session,
        settings,
        errors,
        first_name=changes.first_name,
        phone=changes.phone,
        timezone=changes.timezone,
        language=changes.language,
        quiet_hours=changes.quiet_hours,
        caregiver_phone=changes.caregiver_phone,
        patient_id=patient.id,
    )
    first_name, phone, language = contact.first_name, contact.phone, contact.language
    quiet, caregiver = contact.quiet, contact.caregiver
    if errors:
        raise ValidationFailed(errors)

    changed = []
    new_values = {
        "first_name": first_name,
        "timezone": contact.timezone,
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
    checkin = next((s for s in patient.schedules if s.track == "checkin"), None)
    if changes.checkin and checkin is None:
        # The programme's check-in (its phases too), as at enrolment: an operator's change
        # to the default applies to patients who join the check-in later.
        default = program_default(session, "checkin")
        patient.schedules.append(
            TrackSchedule(
                track="checkin",
                local_times=default.local_times,
                days_of_week=default.days_of_week,
                phases=default.phases,
                updated_at=now,
            )
        )
    elif not changes.checkin and checkin is not None:
        _stop_track(session, patient, checkin, now)
    if "timezone" in changed:
        # The same wall times fall at other instants now.
        for schedule in patient.schedules:
            _replan_from_now(session, patient, schedule, now, "timezone_changed")
    if phone != patient.phone_e164:
        patient.phone_e164 = phone
        changed.append("phone")
        outcome = transition(patient_state(session, patient), Event.NUMBER_CHANGED)
        if outcome.allowed:
            patient.status = outcome.status
        patient.opted_in_at = None
        audit.record(
            session,
            actor=actor,
            action="consent.number_changed",
            patient_id=patient.id,
            now=now,
            detail="fresh opt-in requested",
        )
        consent.record_event(
            session,
            number=phone,
            patient_id=patient.id,
            event=consent.NUMBER_CHANGED,
            text=None,
            now=now,
            actor=actor,
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
    return changed


def _welcome_new_number(
    session: Session,
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient: Patient,
    changed: list[str],
    now: dt.datetime,
) -> None:
    if "phone" in changed and patient.status == PatientStatus.PENDING_CONSENT:
        send_welcome(session, gateway, library, settings, patient, now=now)


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
    """The rows as enrolment requests, and what is wrong with the file or a row. A file the
    csv module cannot read on (a cell past its field size limit, say) is a file error at
    the line where reading stopped, not an exception; any error means nothing is written."""
    # newline="": the csv module reads line ends itself, a bare CR included, and keeps a
    # line break inside a quoted cell.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    requests: list[EnrollmentRequest] = []
    errors: list[RowError] = []
    try:
        fieldnames = reader.fieldnames or []
        missing = [c for c in ("first_name", "phone", "timezone") if c not in fieldnames]
        if missing:
            return [], [RowError(1, "header", f"missing column(s): {', '.join(missing)}")]
        for index, row in enumerate(reader, start=2):
            if index - 1 > MAX_BULK_ROWS:
                errors.append(RowError(index, "file", f"at most {MAX_BULK_ROWS} rows per file"))
                break
            requests.append(_bulk_row(row, index, clinician_email, errors))
    except csv.Error as exc:
        # The reader cannot go on past a line it could not read; the rows before it are
        # still checked, so the report is as complete as it can be. The line is the csv
        # reader's own: DictReader counts only the lines it returned.
        line = max(reader.reader.line_num, 1)
        errors.append(RowError(line, "file", f"not a readable CSV ({exc})"))
    return requests, errors


def _bulk_row(
    row: dict[str, str | None], line: int, clinician_email: str, errors: list[RowError]
) -> EnrollmentRequest:
    def value(name: str) -> str:
        return (row.get(name) or "").strip()

    checkin = value("checkin").lower()
    if checkin not in ("", "yes", "no", "true", "false", "1", "0"):
        errors.append(RowError(line, "checkin", "use yes or no"))
    return EnrollmentRequest(
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
    # Every row in one transaction: a failure part-way (a crash, a number enrolled by
    # someone else meanwhile) leaves nothing enrolled. The welcomes go after the commit.
    patients: list[Patient] = []
    try:
        for line, req in enumerate(requests, start=2):
            try:
                patients.append(add_patient(session, req, settings, now=now, actor=actor))
            except ValidationFailed as exc:
                session.rollback()
                return [], [RowError(line, f, m) for f, m in exc.errors.items()]
        session.commit()
    except Exception:
        session.rollback()
        raise
    for patient in patients:
        send_welcome(session, gateway, library, settings, patient, now=now)
    return patients, []
