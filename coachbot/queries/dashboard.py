"""Read side for the dashboard: the patients list and the patient page.

The list is filtered, sorted and paged in SQL; the per-track figures are then aggregated in
SQL for the page's patients only, so a page costs the same with 200 patients or 10,000.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.domain.states import AdherenceOutcome, AlertStatus, NudgeState
from coachbot.models import (
    AdherenceRecord,
    Alert,
    AuditEntry,
    HomeworkItem,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
    TrackSchedule,
)

PER_PAGE = 50
SORTS = ("name", "enrolled", "last_reply", "alerts", "adherence")
_SENT_STATES = (NudgeState.SENT, NudgeState.DELIVERED)
_OPEN_ALERTS = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
STREAK_LIMIT_DAYS = 30


def aware(value: Any) -> dt.datetime | None:
    """Aggregates bypass the column type on SQLite and come back naive or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TrackSummary:
    track: str
    sent_7: int
    done_7: int
    sent_30: int
    done_30: int
    streak: int

    @staticmethod
    def _pct(done: int, sent: int) -> int | None:
        return round(100 * done / sent) if sent else None

    @property
    def pct_7(self) -> int | None:
        return self._pct(self.done_7, self.sent_7)

    @property
    def pct_30(self) -> int | None:
        return self._pct(self.done_30, self.sent_30)


@dataclass
class PatientRow:
    id: int
    first_name: str
    phone_last4: str
    status: str
    timezone: str
    last_reply_at: dt.datetime | None = None
    open_alerts: int = 0
    tracks: list[TrackSummary] = field(default_factory=list)


@dataclass(frozen=True)
class PatientListPage:
    rows: list[PatientRow]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class ListFilter:
    q: str = ""
    status: str = ""
    track: str = ""
    sort: str = "name"
    page: int = 1


def _last_reply_sq() -> ColumnElement[Any]:
    return (
        select(func.max(InboundMessage.received_at))
        .where(InboundMessage.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )


def _open_alerts_sq() -> ColumnElement[Any]:
    return (
        select(func.count(Alert.id))
        .where(Alert.patient_id == Patient.id, Alert.status.in_(_OPEN_ALERTS))
        .correlate(Patient)
        .scalar_subquery()
    )


def _adherence_7_sq(now: dt.datetime) -> ColumnElement[Any]:
    done = func.count(AdherenceRecord.id).filter(AdherenceRecord.outcome == AdherenceOutcome.DONE)
    sent = func.count(Nudge.id).filter(Nudge.state.in_(_SENT_STATES))
    return (
        select(case((sent == 0, None), else_=1.0 * done / sent))
        .select_from(Nudge)
        .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
        .where(
            Nudge.patient_id == Patient.id,
            Nudge.due_at >= now - dt.timedelta(days=7),
            Nudge.due_at <= now,
        )
        .correlate(Patient)
        .scalar_subquery()
    )


def _filtered(clinician_id: int | None, f: ListFilter) -> Select[Any]:
    query = select(Patient.id)
    if clinician_id is not None:
        query = query.where(Patient.clinician_id == clinician_id)
    if f.status:
        query = query.where(Patient.status == f.status)
    if f.track:
        query = query.where(
            select(TrackSchedule.id)
            .where(TrackSchedule.patient_id == Patient.id, TrackSchedule.track == f.track)
            .exists()
        )
    q = f.q.strip()
    if q:
        digits = "".join(c for c in q if c.isdigit())
        conditions = [func.lower(Patient.first_name).contains(q.lower(), autoescape=True)]
        if len(digits) >= 3:
            conditions.append(Patient.phone_e164.contains(digits, autoescape=True))
        query = query.where(or_(*conditions))
    return query


def patients_page(
    session: Session, *, clinician_id: int | None, now: dt.datetime, f: ListFilter
) -> PatientListPage:
    """One page of the list. `clinician_id=None` is the whole cohort (benchmarks, reports)."""
    base = _filtered(clinician_id, f)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(1, f.page), pages)
    order: list[Any]
    if f.sort == "enrolled":
        order = [Patient.enrolled_at.desc(), Patient.id]
    elif f.sort == "last_reply":
        order = [_last_reply_sq().desc().nulls_last(), Patient.id]
    elif f.sort == "alerts":
        order = [_open_alerts_sq().desc(), Patient.first_name, Patient.id]
    elif f.sort == "adherence":
        # Who is slipping first: lowest 7-day adherence, patients with nothing sent last.
        order = [_adherence_7_sq(now).asc().nulls_last(), Patient.id]
    else:
        order = [func.lower(Patient.first_name), Patient.id]
    ids = list(session.scalars(base.order_by(*order).limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    return PatientListPage(_rows_for(session, ids, now), total, page, pages)


def _rows_for(session: Session, ids: list[int], now: dt.datetime) -> list[PatientRow]:
    if not ids:
        return []
    # One round trip for the page's patients with their last reply (the max of an index
    # range per patient, not a scan of every reply) and open-alert count.
    rows = {}
    for pid, first_name, phone, status, timezone, last, alerts in session.connection().execute(
        select(
            Patient.id,
            Patient.first_name,
            Patient.phone_e164,
            Patient.status,
            Patient.timezone,
            _last_reply_sq(),
            _open_alerts_sq(),
        ).where(Patient.id.in_(ids))
    ):
        rows[pid] = PatientRow(pid, first_name, phone[-4:], status, timezone)
        rows[pid].last_reply_at = aware(last)
        rows[pid].open_alerts = int(alerts or 0)
    tracks: dict[int, list[str]] = defaultdict(list)
    for pid, track in session.execute(
        select(TrackSchedule.patient_id, TrackSchedule.track)
        .where(TrackSchedule.patient_id.in_(ids))
        .order_by(TrackSchedule.patient_id, TrackSchedule.track)
    ):
        tracks[pid].append(track)
    counts = _track_counts(session, ids, now)
    streaks = _streaks(session, ids, {pid: row.timezone for pid, row in rows.items()}, now)
    for pid, names in tracks.items():
        for name in names:
            sent_7, done_7, sent_30, done_30 = counts.get((pid, name), (0, 0, 0, 0))
            rows[pid].tracks.append(
                TrackSummary(name, sent_7, done_7, sent_30, done_30, streaks.get((pid, name), 0))
            )
    return [rows[i] for i in ids if i in rows]


def _track_counts(
    session: Session, ids: list[int], now: dt.datetime
) -> dict[tuple[int, str], tuple[int, int, int, int]]:
    """Sent and done over 7 and 30 days per (patient, track) in one pass over the 30-day
    rows, with the same rules as `adherence_by_track` (follow-ups are not counted)."""
    week = Nudge.due_at >= now - dt.timedelta(days=7)
    sent = Nudge.state.in_(_SENT_STATES)
    done = AdherenceRecord.outcome == AdherenceOutcome.DONE
    query = (
        select(
            Nudge.patient_id,
            Nudge.track,
            func.count(Nudge.id).filter(sent, week),
            func.count(AdherenceRecord.id).filter(done, week),
            func.count(Nudge.id).filter(sent),
            func.count(AdherenceRecord.id).filter(done),
        )
        # The answers' patient filter is repeated in the join so PostgreSQL reads only
        # these patients' answers by index instead of hashing the whole table.
        .outerjoin(
            AdherenceRecord,
            and_(AdherenceRecord.nudge_id == Nudge.id, AdherenceRecord.patient_id.in_(ids)),
        )
        .where(
            Nudge.patient_id.in_(ids),
            Nudge.due_at >= now - dt.timedelta(days=30),
            Nudge.due_at <= now,
            Nudge.occurrence_key.not_like(f"%{FOLLOWUP_SUFFIX}"),
        )
        .group_by(Nudge.patient_id, Nudge.track)
    )
    # Core, not the ORM: a page is a few hundred small rows, and ORM row handling would
    # cost more than the query.
    return {
        (pid, track): (int(s7), int(d7), int(s30), int(d30))
        for pid, track, s7, d7, s30, d30 in session.connection().execute(query)
    }


def _streaks(
    session: Session, ids: list[int], zones: dict[int, str], now: dt.datetime
) -> dict[tuple[int, str], int]:
    """Consecutive local days ending today with a DONE, capped at STREAK_LIMIT_DAYS (the day
    boundary is each patient's own midnight). The database turns each answer into a bit for
    its "local days ago" (the zone's midnights are the bounds) and ORs the distinct bits per
    track, so one small integer per track comes back: one query per time zone on the page."""
    by_zone: dict[str, list[int]] = defaultdict(list)
    for pid in ids:
        by_zone[zones[pid]].append(pid)
    masks: dict[tuple[int, str], int] = {}
    for zone_name, pids in by_zone.items():
        zone = ZoneInfo(zone_name)
        today = now.astimezone(zone).date()
        # Midnight of each local day, newest first, as UTC instants (DST-correct).
        bounds = [
            dt.datetime.combine(today - dt.timedelta(days=n), dt.time(), zone).astimezone(dt.UTC)
            for n in range(STREAK_LIMIT_DAYS)
        ]
        day_bit = case(
            *((AdherenceRecord.recorded_at >= b, 1 << n) for n, b in enumerate(bounds)),
            else_=0,
        )
        query = (
            select(
                AdherenceRecord.patient_id,
                AdherenceRecord.track,
                func.sum(day_bit.distinct()),
            )
            .where(
                AdherenceRecord.patient_id.in_(pids),
                AdherenceRecord.outcome == AdherenceOutcome.DONE,
                AdherenceRecord.recorded_at >= bounds[-1],
                AdherenceRecord.recorded_at <= now,
            )
            .group_by(AdherenceRecord.patient_id, AdherenceRecord.track)
        )
        for pid, track, mask in session.connection().execute(query):
            masks[(pid, track)] = int(mask or 0)
    result = {}
    for key, mask in masks.items():
        streak = 0
        while streak < STREAK_LIMIT_DAYS and mask >> streak & 1:
            streak += 1
        result[key] = streak
    return result


# --- the patient page ------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    direction: str  # "out" | "in"
    kind: str
    body: str
    status: str  # delivery status for texts we sent, the pipeline's outcome for replies


@dataclass(frozen=True)
class HeatCell:
    day: dt.date
    state: str  # done | skipped | missed | waiting | none


@dataclass(frozen=True)
class TrendPoint:
    at: dt.datetime
    value: float


@dataclass(frozen=True)
class HomeworkCompletion:
    item: HomeworkItem
    prompted_7: int  # rehab nudges sent in the last 7 days that asked for this item
    done_7: int  # of those, answered done

    @property
    def pct_7(self) -> int | None:
        return round(100 * self.done_7 / self.prompted_7) if self.prompted_7 else None


HOMEWORK_DAYS = 7


def homework_completion(
    session: Session, patient: Patient, now: dt.datetime
) -> list[HomeworkCompletion]:
    """Per-item completion over the last 7 days. The rehab nudge carries the patient's active
    homework in its text and one DONE answers the whole nudge, so an item counts as
    prompted by each sent rehab nudge whose text named it (rows sent before the text was
    kept: each one due after the item was assigned), and as done when that nudge was."""
    items = list(patient.homework)
    if not items:
        return []
    nudges = session.execute(
        select(Nudge.due_at, Nudge.rendered_body, AdherenceRecord.outcome)
        .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
        .where(
            Nudge.patient_id == patient.id,
            Nudge.track == "rehab",
            Nudge.state.in_(_SENT_STATES),
            Nudge.due_at >= now - dt.timedelta(days=HOMEWORK_DAYS),
            Nudge.due_at <= now,
            Nudge.occurrence_key.not_like(f"%{FOLLOWUP_SUFFIX}"),
        )
    ).all()
    result = []
    for item in items:
        prompted = done = 0
        for due_at, body, outcome in nudges:
            asked = item.description in body if body else due_at >= item.created_at
            if asked:
                prompted += 1
                done += outcome == AdherenceOutcome.DONE
        result.append(HomeworkCompletion(item, prompted, done))
    return result


@dataclass
class PatientDetail:
    patient: Patient
    timeline: list[TimelineItem]
    heatmap: dict[str, list[HeatCell]]
    trends: dict[str, list[TrendPoint]]
    units: dict[str, str]
    homework: list[HomeworkCompletion]
    alerts: list[Alert]
    audit: list[AuditEntry]
    summaries: list[TrackSummary]


HEATMAP_DAYS = 90
TIMELINE_LIMIT = 200
_STATE_RANK = {"done": 4, "skipped": 3, "missed": 2, "waiting": 1, "none": 0}


def patient_detail(session: Session, patient: Patient, now: dt.datetime) -> PatientDetail:
    zone = ZoneInfo(patient.timezone)
    since = now - dt.timedelta(days=HEATMAP_DAYS)
    timeline = [
        TimelineItem(m.created_at, "out", m.kind, m.body, m.delivery_status or "-")
        for m in session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.patient_id == patient.id)
            .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
            .limit(TIMELINE_LIMIT)
        )
    ] + [
        TimelineItem(
            m.received_at,
            "in",
            "caregiver" if m.is_proxy else "reply",
            m.body,
            m.outcome or "received",
        )
        for m in session.scalars(
            select(InboundMessage)
            .where(InboundMessage.patient_id == patient.id)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(TIMELINE_LIMIT)
        )
    ]
    timeline.sort(key=lambda item: (item.at, item.direction == "in"), reverse=True)

    tracks = [s.track for s in patient.schedules]
    grid: dict[str, dict[dt.date, str]] = {t: {} for t in tracks}
    for track, due_at, state, joined_outcome, window_end in session.execute(
        select(
            Nudge.track,
            Nudge.due_at,
            Nudge.state,
            AdherenceRecord.outcome,
            Nudge.reply_window_ends_at,
        )
        .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
        .where(Nudge.patient_id == patient.id, Nudge.due_at >= since, Nudge.due_at <= now)
    ):
        # An outer join: the outcome is None when the nudge has no answer.
        outcome: str | None = joined_outcome
        if outcome is not None:
            cell = outcome
        elif state in _SENT_STATES:
            cell = "missed" if window_end is not None and window_end <= now else "waiting"
        elif state in (NudgeState.MISSED, NudgeState.FAILED):
            cell = "missed"
        else:
            continue
        day = due_at.astimezone(zone).date()
        row = grid.setdefault(track, {})
        if _STATE_RANK[cell] > _STATE_RANK.get(row.get(day, "none"), 0):
            row[day] = cell
    today = now.astimezone(zone).date()
    days = [today - dt.timedelta(days=i) for i in range(HEATMAP_DAYS - 1, -1, -1)]
    heatmap = {t: [HeatCell(d, grid[t].get(d, "none")) for d in days] for t in grid}

    trends: dict[str, list[TrendPoint]] = defaultdict(list)
    units: dict[str, str] = {}
    for track, at, value, unit in session.execute(
        select(
            AdherenceRecord.track,
            AdherenceRecord.recorded_at,
            AdherenceRecord.value,
            AdherenceRecord.unit,
        )
        .where(
            AdherenceRecord.patient_id == patient.id,
            AdherenceRecord.value.is_not(None),
            AdherenceRecord.recorded_at >= since,
        )
        .order_by(AdherenceRecord.recorded_at)
    ):
        trends[track].append(TrendPoint(at, float(value or 0.0)))
        if unit:
            units[track] = unit

    counts = _track_counts(session, [patient.id], now)
    streaks = _streaks(session, [patient.id], {patient.id: patient.timezone}, now)
    summaries = [
        TrackSummary(t, *counts.get((patient.id, t), (0, 0, 0, 0)), streaks.get((patient.id, t), 0))
        for t in tracks
    ]
    alerts = list(
        session.scalars(
            select(Alert).where(Alert.patient_id == patient.id).order_by(Alert.created_at.desc())
        )
    )
    trail = list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.patient_id == patient.id)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(100)
        )
    )
    return PatientDetail(
        patient=patient,
        timeline=timeline,
        heatmap=heatmap,
        trends=dict(trends),
        units=units,
        homework=homework_completion(session, patient, now),
        alerts=alerts,
        audit=trail,
        summaries=summaries,
    )


def alerts_queue(
    session: Session, *, clinician_id: int, status: str, limit: int = 200
) -> list[tuple[Alert, str]]:
    """Alerts on the clinician's own patients, urgent first, oldest first within a severity."""
    severity_rank = case((Alert.severity == "urgent", 0), (Alert.severity == "high", 1), else_=2)
    query = (
        select(Alert, Patient.first_name)
        .join(Patient, Patient.id == Alert.patient_id)
        .where(Patient.clinician_id == clinician_id)
    )
    if status == "active":
        query = query.where(Alert.status.in_(_OPEN_ALERTS)).order_by(
            severity_rank, Alert.created_at
        )
    else:
        query = query.where(Alert.status == status).order_by(Alert.created_at.desc())
    return [(a, name) for a, name in session.execute(query.limit(limit))]
