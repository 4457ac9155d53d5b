"""The caregiver's daily observation check in the close-watch weeks, run by every tick.

1. Planning: for each patient in close watch today (the patient's local date, the length
   from the patient or their programme, `domain.close_watch`) and each caregiver linked to
   them, the day's `caregiver_checks` row (kind "observation") is inserted once its local
   check time (in the caregiver's zone) has come, ignoring duplicates: the unique key
   (patient, caregiver, kind, local date) makes a replayed or concurrent tick add nothing.
   "Have you seen <name> today?" (kind "seen_today") is planned the same way at the
   programme's seen-today time when the patient is silent on their own check-in that day:
   their check-in nudge's reply window closed unanswered, which `services.followups` records
   as a "missed" check-in (the rule that raises its silence alert). A patient without the
   check-in track is never "silent" this way.
2. Sending (`check_sends`): due rows are claimed (skip locked, due -> sending), pass the one
   sendability check for the caregiver, and are texted once; the rest are skipped. A row
   left "sending" by a dispatcher that died is counted as sent, never resent.
3. No answer: one follow-up after the programme's `followup_after_hours`, then, after as
   long again, state "missed" and a HIGH "caregiver_no_answer" alert (paged by the tick's
   paging step). "Have you seen ...?" gets no follow-up: unanswered for the same time, it
   raises the alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain import close_watch
from coachbot.domain.states import AdherenceOutcome, AlertKind, AlertSeverity, PatientStatus
from coachbot.models import AdherenceRecord, Caregiver, CaregiverCheck, CaregiverLink, Patient
from coachbot.services.alerts import raise_alert
from coachbot.services.caregivers import check_sends
from coachbot.services.caregivers.check_sends import (
    MISSED,
    OBSERVATION,
    SEEN_TODAY,
    SENT,
)
from coachbot.services.programs import CloseWatchBook, load_close_watch_book
from coachbot.services.tick import TickSummary
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from coachbot.store.dialect import insert_ignoring_duplicates

log = logging.getLogger(__name__)

# Patients whose texts have ended get no check about them: care ended, or consent withdrawn.
_ENDED = (PatientStatus.DISCHARGED, PatientStatus.OPTED_OUT)
NO_ANSWER_DETAIL = {OBSERVATION: "caregiver_check_missed", SEEN_TODAY: "caregiver_seen_missed"}
BATCH = 500


def run_caregiver_checks(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> TickSummary:
    """The tick's caregiver step: plan, send, follow up, and raise no-answer alerts."""
    summary = TickSummary()
    check_sends.recover_stuck(session_factory, now)
    plan_checks(session_factory, now)
    check_sends.send_due_checks(session_factory, gateway, library, settings, now, summary)
    check_sends.send_followups(session_factory, gateway, library, settings, now, summary)
    summary.caregiver_no_answer += raise_no_answer_alerts(session_factory, now)
    return summary


@dataclass(frozen=True)
class _Link:
    patient_id: int
    caregiver_id: int
    patient_zone: ZoneInfo
    caregiver_zone: ZoneInfo
    close_watch_from: dt.date
    close_watch_days: int | None


def plan_checks(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Inserts the checks whose time has come today; returns how many this run added."""
    with session_factory.begin() as session:
        links = _links_in_close_watch(session, now)
        if not links:
            return 0
        book = load_close_watch_book(session)
        silent = _silent_today(session, [link.patient_id for link in links], now)
        rows = [
            row for link in links for row in _rows_for(link, book, silent, now) if row is not None
        ]
        if not rows:
            return 0
        rows = _not_yet_planned(session, rows)
        added = 0
        for start in range(0, len(rows), BATCH):
            added += len(
                insert_ignoring_duplicates(
                    session,
                    CaregiverCheck,
                    rows[start : start + BATCH],
                    ["patient_id", "caregiver_id", "kind", "local_date"],
                    [CaregiverCheck.id],
                )
            )
        return added


def _links_in_close_watch(session: Session, now: dt.datetime) -> list[_Link]:
    # Narrowed in SQL by the start date (a day of margin for the zones); the exact rule is
    # the domain's, per patient, below.
    latest_start = now.date() + dt.timedelta(days=1)
    found = session.execute(
        select(
            CaregiverLink.patient_id,
            CaregiverLink.caregiver_id,
            Patient.timezone,
            Caregiver.timezone.label("caregiver_timezone"),
            Patient.close_watch_from,
            Patient.close_watch_days,
        )
        .join(Patient, Patient.id == CaregiverLink.patient_id)
        .join(Caregiver, Caregiver.id == CaregiverLink.caregiver_id)
        .where(
            Patient.close_watch_from.is_not(None),
            Patient.close_watch_from <= latest_start,
            Patient.status.not_in(_ENDED),
        )
        # One order for every dispatcher: concurrent inserts of the same keys then wait on
        # each other in the same order instead of deadlocking on PostgreSQL.
        .order_by(CaregiverLink.patient_id, CaregiverLink.caregiver_id)
    ).all()
    return [_link(row) for row in found]


def _link(row: Row[int, int, str, str, dt.date | None, int | None]) -> _Link:
    assert row.close_watch_from is not None  # the query's condition
    return _Link(
        row.patient_id,
        row.caregiver_id,
        ZoneInfo(row.timezone),
        ZoneInfo(row.caregiver_timezone),
        row.close_watch_from,
        row.close_watch_days,
    )


def _rows_for(
    link: _Link, book: CloseWatchBook, silent: set[tuple[int, dt.date]], now: dt.datetime
) -> list[dict[str, object] | None]:
    version, rules = book.for_patient(link.patient_id)
    today = now.astimezone(link.patient_zone).date()
    days = close_watch.effective_days(link.close_watch_days, rules)
    if not close_watch.in_close_watch(link.close_watch_from, days, today):
        return []
    check_at = close_watch.local_instant(today, rules.check_time, link.caregiver_zone)
    seen_at = close_watch.local_instant(today, rules.seen_today_time, link.caregiver_zone)
    return [
        _row(link, OBSERVATION, today, check_at, version, now) if check_at <= now else None,
        # Due when asked: a check-in whose window closed after the seen-today time still
        # asks, and is not skipped as stale for the lateness of the silence.
        _row(link, SEEN_TODAY, today, max(seen_at, now), version, now)
        if seen_at <= now and (link.patient_id, today) in silent
        else None,
    ]


def _row(
    link: _Link,
    kind: str,
    local_date: dt.date,
    due_at: dt.datetime,
    version: int | None,
    now: dt.datetime,
) -> dict[str, object]:
    return {
        "patient_id": link.patient_id,
        "caregiver_id": link.caregiver_id,
        "kind": kind,
        "local_date": local_date,
        "program_version": version,
        "items": 0,
        "due_at": due_at,
        "state": check_sends.DUE,
        "created_at": now,
    }


def _not_yet_planned(session: Session, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows without a check yet: a tick every minute finds its thousand checks in one
    read instead of offering them all to the INSERT again (which would ignore them)."""
    dates = {row["local_date"] for row in rows}
    existing = {
        (r.patient_id, r.caregiver_id, r.kind, r.local_date)
        for r in session.execute(
            select(
                CaregiverCheck.patient_id,
                CaregiverCheck.caregiver_id,
                CaregiverCheck.kind,
                CaregiverCheck.local_date,
            ).where(CaregiverCheck.local_date.in_(dates))
        )
    }
    return [
        row
        for row in rows
        if (row["patient_id"], row["caregiver_id"], row["kind"], row["local_date"]) not in existing
    ]


def _silent_today(
    session: Session, patient_ids: list[int], now: dt.datetime
) -> set[tuple[int, dt.date]]:
    """(patient, local date) of the check-ins recorded missed in the last day and a half,
    by the patient's local date of the window's close."""
    found = session.execute(
        select(AdherenceRecord.patient_id, AdherenceRecord.recorded_at, Patient.timezone)
        .join(Patient, Patient.id == AdherenceRecord.patient_id)
        .where(
            AdherenceRecord.track == "checkin",
            AdherenceRecord.outcome == AdherenceOutcome.MISSED,
            AdherenceRecord.recorded_at >= now - dt.timedelta(hours=36),
            AdherenceRecord.patient_id.in_(sorted(set(patient_ids))),
        )
    ).all()
    return {(r.patient_id, r.recorded_at.astimezone(ZoneInfo(r.timezone)).date()) for r in found}


def raise_no_answer_alerts(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Checks still unanswered a full window after their follow-up (a seen-today question:
    after it was sent) become "missed" with a HIGH alert; returns how many. The conditional
    UPDATE sent -> missed is the claim, so of concurrent ticks only one raises each alert.
    A caregiver who has stopped their texts since is not waited for: missed, no alert."""
    with session_factory.begin() as session:
        book = load_close_watch_book(session)
        earliest = now - dt.timedelta(hours=close_watch.MIN_FOLLOWUP_HOURS)
        candidates = session.execute(
            select(CaregiverCheck, Caregiver.status)
            .join(Caregiver, Caregiver.id == CaregiverCheck.caregiver_id)
            .where(
                CaregiverCheck.state == SENT,
                CaregiverCheck.answered_at.is_(None),
                (
                    (CaregiverCheck.kind == OBSERVATION)
                    & (CaregiverCheck.followup_sent_at <= earliest)
                )
                | ((CaregiverCheck.kind == SEEN_TODAY) & (CaregiverCheck.sent_at <= earliest)),
            )
            .order_by(CaregiverCheck.id)
            .limit(BATCH)
        ).all()
        raised = 0
        for check, caregiver_status in candidates:
            _, rules = book.for_patient(check.patient_id)
            started = check.followup_sent_at if check.kind == OBSERVATION else check.sent_at
            if started is None or now - started < rules.followup_after:
                continue
            won = session.scalar(
                update(CaregiverCheck)
                .where(CaregiverCheck.id == check.id, CaregiverCheck.state == SENT)
                .values(state=MISSED)
                .returning(CaregiverCheck.id)
            )
            if won is None or caregiver_status != PatientStatus.ACTIVE:
                continue
            alert = raise_alert(
                session,
                patient_id=check.patient_id,
                kind=AlertKind.CAREGIVER_NO_ANSWER,
                severity=AlertSeverity.HIGH,
                detail=NO_ANSWER_DETAIL[check.kind],
                now=now,
            )
            session.flush()
            session.execute(
                update(CaregiverCheck)
                .where(CaregiverCheck.id == check.id)
                .values(alert_id=alert.id)
            )
            raised += 1
        return raised
