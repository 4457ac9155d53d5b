"""Changing an enrolled patient's care: details, tracks, times and homework, a new number
(which needs a fresh opt-in), and bulk enrolment that writes nothing unless every row is
good. Pause, resume and discharge are in `services.status_changes`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.patient_status import Event, transition
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import HomeworkItem, Nudge, Patient, TrackSchedule
from coachbot.services import audit, consent
from coachbot.services.caregivers.records import (
    CaregiverEntry,
    apply_close_watch,
    check_caregiver,
    parse_close_watch,
    remove_caregivers,
    update_caregiver,
)
from coachbot.services.enrollment import (
    MAX_HOMEWORK,
    ContactFields,
    check_contact_fields,
    homework_problem,
    parse_times,
)
from coachbot.services.errors import ValidationFailed
from coachbot.services.schedules import program_default
from coachbot.services.status_changes import patient_state
from coachbot.services.welcomes import send_welcome
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway


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
    sessions: sessionmaker[Session],
    patient_id: int,
    plan: CarePlan,
    *,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """Applies tracks, times and homework in one transaction; returns what changed, e.g.
    ["rehab:times"]. See `_apply_care_plan`."""
    with sessions.begin() as session:
        return _apply_care_plan(
            session, session.get_one(Patient, patient_id), plan, now=now, actor=actor
        )


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
    caregiver_name: str | None = None
    caregiver_language: str | None = None  # None: the patient's language
    close_watch_from: dt.date | str | None = None
    close_watch_days: int | str | None = None
    invite_caregiver: bool = False  # a caregiver never invited is asked for YES


@dataclass(frozen=True)
class Edited:
    """The patient as the edit left it, and what changed (e.g. ["phone", "sleep:times"])."""

    patient: Patient
    changed: list[str]


def edit_patient(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    patient_id: int,
    changes: PatientChanges,
    plan: CarePlan,
    *,
    now: dt.datetime,
    actor: str,
) -> Edited:
    """The edit page's save: details and care plan in one transaction, so a failure part-way
    (a bad field, a number taken meanwhile, a crash) leaves the record as it was. Raises
    ValidationFailed with every field error it can find and nothing written. A new number's
    welcome goes after that commit, in transactions of its own (`send_welcome`): a text is
    never sent for an edit that did not happen."""
    errors = check_care_plan(plan)
    if errors:
        raise ValidationFailed(errors)
    with sessions.begin() as session:
        patient = session.get_one(Patient, patient_id)
        changed = _apply_details(session, settings, patient, changes, now=now, actor=actor)
        changed += _apply_care_plan(session, patient, plan, now=now, actor=actor)
    if "phone" in changed and patient.status == PatientStatus.PENDING_CONSENT:
        patient.welcome_due_at = send_welcome(
            sessions, gateway, library, settings, patient.id, now=now
        )
    return Edited(patient, changed)


def _switch_checkin(session: Session, patient: Patient, on: bool, now: dt.datetime) -> None:
    checkin = next((s for s in patient.schedules if s.track == "checkin"), None)
    if on and checkin is None:
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
    elif not on and checkin is not None:
        _stop_track(session, patient, checkin, now)


def _new_number(
    session: Session, patient: Patient, phone: str, *, now: dt.datetime, actor: str
) -> None:
    """A new number is a new person until they answer YES (see Event.NUMBER_CHANGED)."""
    outcome = transition(patient_state(session, patient), Event.NUMBER_CHANGED)
    patient.phone_e164 = phone
    if outcome.allowed:
        patient.status = outcome.status
    patient.opted_in_at = None
    consent.record_audited(
        session,
        patient_id=patient.id,
        number=phone,
        event=consent.NUMBER_CHANGED,
        action="consent.number_changed",
        detail="fresh opt-in requested",
        now=now,
        actor=actor,
    )


def _apply_caregiver(
    session: Session,
    patient: Patient,
    contact: ContactFields,
    invite: bool,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """The form's caregiver: none (every caregiver unlinked), or the one it names."""
    if contact.caregiver is None:
        return remove_caregivers(session, patient, now=now, actor=actor)
    return update_caregiver(
        session, patient, contact.caregiver, now=now, actor=actor, invite=invite
    )


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
        caregiver=CaregiverEntry(
            changes.caregiver_phone, changes.caregiver_name, changes.caregiver_language
        ),
        close_watch_from=changes.close_watch_from,
        close_watch_days=changes.close_watch_days,
        patient_id=patient.id,
    )
    first_name, phone, language = contact.first_name, contact.phone, contact.language
    quiet = contact.quiet
    if errors:
        raise ValidationFailed(errors)

    changed = []
    new_values = {
        "first_name": first_name,
        "timezone": contact.timezone,
        "language": language,
        "quiet_start": quiet[0] if quiet else None,
        "quiet_end": quiet[1] if quiet else None,
        "checkin_enabled": changes.checkin,
    }
    for name, value in new_values.items():
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            changed.append(name)
    changed += apply_close_watch(patient, contact.close_watch)
    changed += _apply_caregiver(session, patient, contact, changes.invite_caregiver, now, actor)
    _switch_checkin(session, patient, changes.checkin, now)
    if "timezone" in changed:
        # The same wall times fall at other instants now.
        for schedule in patient.schedules:
            _replan_from_now(session, patient, schedule, now, "timezone_changed")
    if phone != patient.phone_e164:
        _new_number(session, patient, phone, now=now, actor=actor)
        changed.append("phone")
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


def change_caregiver(
    sessions: sessionmaker[Session],
    settings: Settings,
    patient_id: int,
    entry: CaregiverEntry | None,
    *,
    now: dt.datetime,
    actor: str,
    invite: bool = False,
) -> list[str]:
    """The patient's caregiver set (None: removed), as the edit form's caregiver fields do,
    in one transaction; returns what changed. Raises LookupError for no such patient and
    ValidationFailed with the field errors, nothing written."""
    with sessions.begin() as session:
        patient = _patient(session, patient_id)
        if entry is None:
            return remove_caregivers(session, patient, now=now, actor=actor)
        errors: dict[str, str] = {}
        valid = check_caregiver(
            session,
            settings.default_region,
            errors,
            entry,
            patient_phone=patient.phone_e164,
            patient_language=patient.language,
        )
        if valid is None:
            raise ValidationFailed(errors)
        return update_caregiver(session, patient, valid, now=now, actor=actor, invite=invite)


def change_close_watch(
    sessions: sessionmaker[Session],
    patient_id: int,
    starts: dt.date | str | None,
    days: int | str | None,
    *,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """The patient's close-watch weeks set (no first day: none), audited, in one
    transaction; returns what changed. LookupError, or ValidationFailed and nothing written."""
    errors: dict[str, str] = {}
    watch = parse_close_watch(errors, starts, days)
    if errors:
        raise ValidationFailed(errors)
    with sessions.begin() as session:
        patient = _patient(session, patient_id)
        changed = apply_close_watch(patient, watch)
        if changed:
            patient.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="patient.close_watch",
            patient_id=patient.id,
            now=now,
            detail=",".join(changed) or "no change",
        )
        return changed


def _patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise LookupError(patient_id)
    return patient
