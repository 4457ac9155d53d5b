"""Non-response: what happens when a nudge's reply window closes without an answer.

Called from each clock tick. Every step is keyed on a unique row, so replays and overlapping
ticks add nothing: the "missed" record is unique per nudge, the follow-up is unique per
occurrence key, and each alert is raised only by the run that inserted the record behind it.

* The nudge gets an adherence record with outcome "missed" (a later answer to its follow-up
  replaces it; see `coachbot.services.inbound`).
* A coaching track gets at most one gentle follow-up, planned as a nudge row with template
  `followup.<track>`; the dispatcher renders it and applies consent, quiet hours and the cap.
  No follow-up when the next permitted instant is further away than the track's stale limit:
  a reminder about yesterday's walk the next morning helps no one.
* `MISSES_IN_A_ROW` misses since the patient last answered raise one alert for the clinician.
* The daily symptom check-in gets no follow-up: its silence is itself a high-severity alert,
  because not replying can be a symptom.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain import coaching, sendability
from coachbot.domain import schedule as sched
from coachbot.domain.states import (
    AdherenceOutcome,
    AlertKind,
    AlertSeverity,
    NudgeState,
    PatientStatus,
)
from coachbot.models import AdherenceRecord, Alert, Nudge, Patient
from coachbot.services.alerts import raise_alert
from coachbot.services.programs import PolicyBook, load_policy_book
from coachbot.services.schedules import dispatch_settings
from coachbot.services.tick import TickSummary
from coachbot.settings import Settings
from coachbot.store import nudges as nudge_store
from coachbot.store.dialect import insert_ignoring_duplicates

log = logging.getLogger(__name__)

BATCH = 500
# After downtime, windows that closed longer ago than this are recorded but raise no alert.
ALERT_LOOKBACK = dt.timedelta(hours=24)
CHECKIN_SILENCE = "checkin_no_reply"
MISSED_IN_A_ROW = "missed_in_a_row"


def process_reply_windows(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> TickSummary:
    del settings  # part of the tick's common signature; nothing here depends on it yet
    summary = TickSummary()
    while True:
        with session_factory() as session, session.begin():
            # The operator's live window and each patient's programme rules, read once.
            rules = _Rules(dispatch_settings(session).window, load_policy_book(session))
            closed = _closed_unanswered(session, now)
            patients: set[int] = set()
            for nudge in closed:
                if not _record_missed(session, nudge, now):
                    continue
                summary.missed += 1
                patients.add(nudge.patient_id)
                _after_miss(session, library, rules, nudge, now, summary)
            for patient_id in sorted(patients):
                if _alert_on_misses_in_a_row(session, patient_id, now):
                    summary.silence_alerts += 1
        if len(closed) < BATCH:
            return summary


def _closed_unanswered(session: Session, now: dt.datetime) -> list[Nudge]:
    return list(
        session.scalars(
            select(Nudge)
            .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
            .where(
                Nudge.state.in_((NudgeState.SENT, NudgeState.DELIVERED)),
                Nudge.reply_window_ends_at <= now,
                AdherenceRecord.id.is_(None),
                # A follow-up's silence is already counted on the nudge it follows up.
                Nudge.occurrence_key.not_like(f"%{coaching.FOLLOWUP_SUFFIX}"),
            )
            .order_by(Nudge.reply_window_ends_at, Nudge.id)
            .limit(BATCH)
        )
    )


def _record_missed(session: Session, nudge: Nudge, now: dt.datetime) -> bool:
    """True when this run recorded the miss (another run or an answer may have won)."""
    return bool(
        insert_ignoring_duplicates(
            session,
            AdherenceRecord,
            {
                "patient_id": nudge.patient_id,
                "nudge_id": nudge.id,
                "track": nudge.track,
                "outcome": AdherenceOutcome.MISSED,
                "is_proxy": False,
                "recorded_at": nudge.reply_window_ends_at or now,
            },
            ["nudge_id"],
            [AdherenceRecord.id],
        )
    )


@dataclass(frozen=True)
class _Rules:
    window: sched.LocalWindow
    book: PolicyBook


def _after_miss(
    session: Session,
    library: MessageLibrary,
    rules: _Rules,
    nudge: Nudge,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    patient = session.get_one(Patient, nudge.patient_id)
    closed_at = nudge.reply_window_ends_at or now
    if nudge.track == "checkin":
        if patient.checkin_enabled and now - closed_at <= ALERT_LOOKBACK:
            raise_alert(
                session,
                patient_id=patient.id,
                kind=AlertKind.SILENCE,
                severity=AlertSeverity.HIGH,
                detail=CHECKIN_SILENCE,
                now=now,
            )
            summary.checkin_alerts += 1
        return
    if nudge.track not in coaching.FOLLOWUP_TRACKS or patient.status != PatientStatus.ACTIVE:
        return
    template_id = f"followup.{nudge.track}"
    if not library.has_template(template_id, "en"):
        return
    policy = rules.book.rules(patient.id, nudge.track)
    if not policy.followup:
        return  # the programme asks for no follow-up on this track
    decision = sendability.check(
        sendability.Recipient(
            patient.status, ZoneInfo(patient.timezone), patient.quiet_start, patient.quiet_end
        ),
        now,
        sendability.Rules(rules.window, quiet_policy=policy.quiet_policy),
    )
    if decision.send_at is None or decision.send_at - now > policy.stale_limit:
        return
    if now - closed_at > policy.stale_limit:
        return  # a backlog after downtime: too late for a gentle reminder
    planned = nudge_store.insert_one_planned(
        session,
        {
            "patient_id": patient.id,
            "track": nudge.track,
            "occurrence_key": coaching.followup_key(nudge.occurrence_key),
            # Due now, not at the original's time, so the dispatcher's lateness check holds.
            "due_at": now,
            "send_at": decision.send_at,
            "state": NudgeState.PLANNED,
            "attempts": 0,
            "template_id": template_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if planned:
        summary.followups += 1


def _alert_on_misses_in_a_row(session: Session, patient_id: int, now: dt.datetime) -> bool:
    """One alert per run of misses: raised when the run reaches MISSES_IN_A_ROW, and not
    again until the patient answers something and falls silent once more."""
    coaching_track = AdherenceRecord.track != "checkin"
    raw: object = session.scalar(
        select(func.max(AdherenceRecord.recorded_at)).where(
            AdherenceRecord.patient_id == patient_id,
            coaching_track,
            AdherenceRecord.outcome != AdherenceOutcome.MISSED,
        )
    )
    # Aggregates bypass the column type: SQLite hands back the stored UTC text.
    last_answer = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    if isinstance(last_answer, dt.datetime) and last_answer.tzinfo is None:
        last_answer = last_answer.replace(tzinfo=dt.UTC)
    misses = select(func.count(AdherenceRecord.id)).where(
        AdherenceRecord.patient_id == patient_id,
        coaching_track,
        AdherenceRecord.outcome == AdherenceOutcome.MISSED,
    )
    alerted = select(func.count(Alert.id)).where(
        Alert.patient_id == patient_id,
        Alert.kind == AlertKind.SILENCE,
        Alert.detail == MISSED_IN_A_ROW,
    )
    if last_answer is not None:
        misses = misses.where(AdherenceRecord.recorded_at > last_answer)
        alerted = alerted.where(Alert.created_at > last_answer)
    if (session.scalar(misses) or 0) < coaching.MISSES_IN_A_ROW or session.scalar(alerted):
        return False
    raise_alert(
        session,
        patient_id=patient_id,
        kind=AlertKind.SILENCE,
        severity=AlertSeverity.NORMAL,
        detail=MISSED_IN_A_ROW,
        now=now,
    )
    return True
