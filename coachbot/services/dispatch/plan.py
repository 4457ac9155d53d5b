"""Planning: the occurrences due before now + the horizon become nudge rows, once each."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from coachbot.domain import schedule as sched
from coachbot.domain.program import PLANNING_HORIZON
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import Patient, TrackSchedule
from coachbot.services.programs import TrackRules, load_policy_book
from coachbot.services.schedules import dispatch_settings, domain_schedule
from coachbot.store import nudges as nudge_store

log = logging.getLogger(__name__)

PLANNING_LOOKBACK = dt.timedelta(hours=24)
# Rows are inserted in chunks of this many: one statement each, bounded in size.
_INSERT_CHUNK = 1000


def _quiet_window(patient: Patient) -> sched.LocalWindow | None:
    if patient.quiet_start is None or patient.quiet_end is None:
        return None
    return sched.LocalWindow(patient.quiet_start, patient.quiet_end)


def plan_nudges(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Materialises occurrences due before now + horizon as rows; idempotent under replays
    and concurrent planners thanks to the per-occurrence unique key. On PostgreSQL only the
    holder of an advisory lock plans, so several clocks do not all recompute calendars."""
    horizon_end = now + PLANNING_HORIZON
    # Re-plan a schedule only once half its horizon is used up, so most ticks skip this.
    replan_before = now + PLANNING_HORIZON / 2
    inserted = 0
    with session_factory() as session, session.begin():
        if not nudge_store.try_planner_lock(session):
            return 0
        window = dispatch_settings(session).window
        book = load_policy_book(session)
        rows = session.scalars(
            select(TrackSchedule)
            .join(Patient)
            .where(
                Patient.status == PatientStatus.ACTIVE,
                (TrackSchedule.planned_through.is_(None))
                | (TrackSchedule.planned_through < replan_before),
            )
            .options(selectinload(TrackSchedule.patient))
        ).all()
        values: list[dict[str, object]] = []
        for row in rows:
            patient = row.patient
            zone = ZoneInfo(patient.timezone)
            start = row.planned_through or max(
                now - PLANNING_LOOKBACK, patient.opted_in_at or patient.enrolled_at
            )
            try:
                schedule = domain_schedule(row)
            except ValueError:
                log.exception("schedule %s of patient %s is invalid", row.id, patient.id)
                continue
            enrolled_on = patient.enrolled_at.astimezone(zone).date()
            for occ in sched.occurrences_between(
                schedule, zone, start, horizon_end, enrolled_on=enrolled_on
            ):
                values.append(
                    _nudge_values(
                        patient, occ, zone, now, window, book.rules(patient.id, occ.track)
                    )
                )
            row.planned_through = horizon_end
            if len(values) >= _INSERT_CHUNK:
                inserted += nudge_store.insert_planned(session, values)
                values = []
        if values:
            inserted += nudge_store.insert_planned(session, values)
    return inserted


def _nudge_values(
    patient: Patient,
    occ: sched.Occurrence,
    zone: ZoneInfo,
    now: dt.datetime,
    window: sched.LocalWindow,
    rules: TrackRules,
) -> dict[str, object]:
    values: dict[str, object] = {
        "patient_id": patient.id,
        "track": occ.track,
        "occurrence_key": occ.key,
        "due_at": occ.due_at,
        "send_at": occ.due_at,
        "state": NudgeState.PLANNED,
        # Every row names every column: a multi-row INSERT needs one shape for all rows.
        "state_reason": None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    quiet = _quiet_window(patient)
    if sched.overdue(occ.due_at, now, rules.stale_limit, zone, window, quiet, rules.quiet_policy):
        values.update(state=NudgeState.MISSED, state_reason="too_late")
        return values
    decision = sched.place_in_window(occ.due_at, zone, window, quiet, rules.quiet_policy)
    if decision.action == "skip":
        values.update(state=NudgeState.SKIPPED, state_reason=decision.reason)
    elif decision.send_at is not None:
        values["send_at"] = decision.send_at
    return values
