"""Read side for the dashboard: the patients list and the patient page.

The list is filtered, sorted and paged in SQL; the per-track figures are then aggregated in
SQL for the page's patients only, so a page costs the same with 200 patients or 10,000.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    TextualSelect,
    and_,
    bindparam,
    case,
    column,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from coachbot.db import UTCDateTime
from coachbot.domain.clock import utc_offset_at
from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.domain.states import AdherenceOutcome, AlertStatus, NudgeState
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    Patient,
    TrackSchedule,
)
from coachbot.queries.adherence import FRACTION_UNIT, PARTIAL_CREDIT, adherence_pct

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
    """Sent and answered nudges of one track over 7 and 30 days. The adherence rate counts a
    partial answer ("2 of 3", "half") as half a done (see `adherence_rate`)."""

    track: str
    sent_7: int
    done_7: int
    sent_30: int
    done_30: int
    streak: int
    partial_7: int = 0
    partial_30: int = 0

    @property
    def pct_7(self) -> int | None:
        return adherence_pct(self.done_7, self.partial_7, self.sent_7)

    @property
    def pct_30(self) -> int | None:
        return adherence_pct(self.done_30, self.partial_30, self.sent_30)


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
    partial = func.count(AdherenceRecord.id).filter(
        AdherenceRecord.outcome == AdherenceOutcome.PARTIAL
    )
    sent = func.count(Nudge.id).filter(Nudge.state.in_(_SENT_STATES))
    return (
        select(case((sent == 0, None), else_=(1.0 * done + PARTIAL_CREDIT * partial) / sent))
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
            sent_7, done_7, sent_30, done_30, partial_7, partial_30 = counts.get(
                (pid, name), (0, 0, 0, 0, 0, 0)
            )
            rows[pid].tracks.append(
                TrackSummary(
                    name,
                    sent_7,
                    done_7,
                    sent_30,
                    done_30,
                    streaks.get((pid, name), 0),
                    partial_7,
                    partial_30,
                )
            )
    return [rows[i] for i in ids if i in rows]


def _track_counts(
    session: Session, ids: list[int], now: dt.datetime
) -> dict[tuple[int, str], tuple[int, int, int, int, int, int]]:
    """Sent, done and partial over 7 and 30 days per (patient, track) in one pass over the
    30-day rows, with the same rules as `adherence_by_track` (follow-ups are not counted):
    (sent 7, done 7, sent 30, done 30, partial 7, partial 30), TrackSummary's order."""
    week = Nudge.due_at >= now - dt.timedelta(days=7)
    sent = Nudge.state.in_(_SENT_STATES)
    done = AdherenceRecord.outcome == AdherenceOutcome.DONE
    partial = AdherenceRecord.outcome == AdherenceOutcome.PARTIAL
    query = (
        select(
            Nudge.patient_id,
            Nudge.track,
            func.count(Nudge.id).filter(sent, week),
            func.count(AdherenceRecord.id).filter(done, week),
            func.count(Nudge.id).filter(sent),
            func.count(AdherenceRecord.id).filter(done),
            func.count(AdherenceRecord.id).filter(partial, week),
            func.count(AdherenceRecord.id).filter(partial),
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
        (pid, track): (int(s7), int(d7), int(s30), int(d30), int(p7), int(p30))
        for pid, track, s7, d7, s30, d30, p7, p30 in session.connection().execute(query)
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
#
# One patient's record is a few hundred rows, so the page's cost is not reading them but the
# round trips and the Python around them. The whole page is one statement (its parts joined
# with UNION ALL into one row shape, written once per dialect and kept), and each part comes
# back already aggregated: one row per track for the heatmap and the 7- and 30-day counts,
# one per track for the streak's days, and only the rows the page shows for the timeline,
# trends, homework, alerts and audit trail. Local days are computed in SQL from the zone's
# UTC offsets over the last 90 days (a handful of DST transitions at most, cached per zone
# and day), so no timestamp is converted in Python to place it on the calendar.

TIMELINE_PAGE = 50  # messages per page; "Older messages" pages back to the very first one
HEATMAP_DAYS = 90
HOMEWORK_DAYS = 7
AUDIT_ROWS = 100
# A day's cell shows the best thing that happened: index = rank.
HEAT_STATES = ("none", "waiting", "missed", "skipped", "partial", "done")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class TimelineItem(NamedTuple):
    at: dt.datetime
    direction: str  # "out" | "in"
    kind: str
    body: str
    status: str  # delivery status for texts we sent, the pipeline's outcome for replies
    id: int


class TimelineCursor(NamedTuple):
    """The last message of a timeline page: the next (older) page starts after it, in the
    page's order (newest first; at the same instant replies first, then by id, newest first)."""

    at: dt.datetime
    inbound: bool
    id: int

    def token(self) -> str:
        micros = (self.at - _EPOCH) // dt.timedelta(microseconds=1)
        return f"{micros}.{int(self.inbound)}.{self.id}"

    @classmethod
    def parse(cls, token: str) -> TimelineCursor | None:
        """The cursor in a link, or None for anything that is not one."""
        try:
            micros, inbound, message_id = (int(part) for part in token.split("."))
            at = _EPOCH + dt.timedelta(microseconds=micros)
        except (ValueError, OverflowError):
            return None
        if inbound not in (0, 1) or message_id < 0:
            return None
        return cls(at, bool(inbound), message_id)


class HeatCell(NamedTuple):
    day: dt.date
    state: str  # one of HEAT_STATES


class TrendPoint(NamedTuple):
    at: dt.datetime
    value: float


class HomeworkLine(NamedTuple):
    id: int
    description: str
    active: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class HomeworkCompletion:
    item: HomeworkLine
    prompted_7: int  # rehab nudges sent in the last 7 days that asked for this item
    done_7: int  # of those, answered done

    @property
    def pct_7(self) -> int | None:
        return round(100 * self.done_7 / self.prompted_7) if self.prompted_7 else None


class AlertLine(NamedTuple):
    id: int
    created_at: dt.datetime
    kind: str
    severity: str
    status: str
    resolution_note: str | None


class AuditLine(NamedTuple):
    id: int
    at: dt.datetime
    actor: str
    action: str
    outcome: str
    detail: str | None


@dataclass
class PatientDetail:
    patient: Patient
    timeline: list[TimelineItem]
    older: TimelineCursor | None  # where the next page of older messages starts, if any
    heatmap: dict[str, list[HeatCell]]
    trends: dict[str, list[TrendPoint]]
    units: dict[str, str]
    homework: list[HomeworkCompletion]
    alerts: list[AlertLine]
    audit: list[AuditLine]
    summaries: list[TrackSummary]


@dataclass(frozen=True)
class _Calendar:
    """A zone's recent days as the page's SQL needs them; the same for every patient in
    the zone for a whole local day, so it is computed once per zone and day."""

    day_number: int  # today's local date, in days since 1970-01-01
    base_offset: int  # the UTC offset (seconds) before the oldest transition
    transitions: tuple[tuple[dt.datetime, int], ...]  # (instant, offset from then), newest first
    cells: tuple[tuple[HeatCell, ...], ...]  # cells[i][rank]: day i of the heatmap (oldest first)


def _offset(instant: dt.datetime, zone: ZoneInfo) -> int:
    return int(utc_offset_at(instant, zone).total_seconds())


@functools.lru_cache(maxsize=1024)
def _calendar(zone_name: str, today: dt.date) -> _Calendar:
    zone = ZoneInfo(zone_name)
    # A little wider than the heatmap and the streak reach, so every row they read is covered.
    start = dt.datetime.combine(today - dt.timedelta(days=HEATMAP_DAYS + 3), dt.time(), dt.UTC)
    samples = [start + dt.timedelta(days=n) for n in range(HEATMAP_DAYS + 6)]
    offsets = [_offset(t, zone) for t in samples]
    transitions = []
    for (lo, before), (hi, after) in itertools.pairwise(zip(samples, offsets, strict=True)):
        if before == after:
            continue
        # Zones change offset at most once a day, on a whole second: halve the day down to
        # the first second of the new offset.
        low, high = int(lo.timestamp()), int(hi.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            at = dt.datetime.fromtimestamp(middle, dt.UTC)
            low, high = (middle, high) if _offset(at, zone) == before else (low, middle)
        transitions.append((dt.datetime.fromtimestamp(high, dt.UTC), after))
    days = [today - dt.timedelta(days=n) for n in range(HEATMAP_DAYS - 1, -1, -1)]
    return _Calendar(
        day_number=(today - _EPOCH.date()).days,
        base_offset=offsets[0],
        transitions=tuple(reversed(transitions)),
        cells=tuple(tuple(HeatCell(day, state) for state in HEAT_STATES) for day in days),
    )


_SQL_DIALECTS = {
    "sqlite": {
        # unixepoch() (SQLite 3.38+) parses the stored text a third faster than strftime.
        "epoch": "unixepoch({})"
        if sqlite3.sqlite_version_info >= (3, 38)
        else "CAST(strftime('%s', {}) AS INTEGER)",
        "agg": "group_concat({})",
        "find": "instr({}, {})",
        "ts": "TIMESTAMP",
        # SQLite answers the join from the covering (nudge_id, outcome, ...) index.
        "answers_of_patient": "",
    },
    "postgresql": {
        "epoch": "CAST(floor(extract(epoch FROM {})) AS BIGINT)",
        "agg": "string_agg({}, ',')",
        "find": "strpos({}, {})",
        "ts": "TIMESTAMPTZ",
        # PostgreSQL then hashes this patient's answers instead of probing once per nudge.
        "answers_of_patient": " AND a.patient_id = :pid",
    },
}
# The grid counts done and partial answers in one sum, a partial as this many dones (a
# track has far fewer than this many nudges in 30 days): done = sum % pack, partial = sum //
# pack. Two more columns would push the statement past psycopg's 4,096-character parse cache.
_PARTIAL_PACK = 4096
# Sections of the page's one statement, in the `sec` column.
_GRID, _STREAK, _TRACKS, _TIMELINE, _TRENDS, _HOMEWORK, _ALERTS, _AUDIT = range(1, 9)

_PATIENT_PAGE_SQL = """
SELECT {GRID} AS sec, g.track AS tag, SUM(g.c * g.w) AS i1, SUM(g.c * g.w * g.ok) AS i2,
  SUM(g.c) AS i3, SUM(g.c * g.ok) AS i4, CAST(NULL AS {ts}) AS at, {agg_grid} AS s1,
  NULL AS s2, NULL AS s3, CAST(NULL AS FLOAT) AS f
FROM (
  SELECT n.track AS track, {due_day} * 8 + {cell} AS v,
    CASE WHEN n.due_at >= :since30 AND n.state IN ('sent', 'delivered')
      AND n.occurrence_key NOT LIKE :followup THEN 1 ELSE 0 END AS c,
    CASE WHEN n.due_at >= :since7 THEN 1 ELSE 0 END AS w,
    CASE a.outcome WHEN 'done' THEN 1 WHEN 'partial' THEN {partial} ELSE 0 END AS ok
  FROM nudges n LEFT JOIN adherence_records a ON a.nudge_id = n.id{answers_of_patient}
  WHERE n.patient_id = :pid AND n.due_at >= :since90 AND n.due_at <= :now
) g
GROUP BY g.track
UNION ALL
SELECT {STREAK}, s.track, NULL, NULL, NULL, NULL, NULL, {agg_streak}, NULL, NULL, NULL
FROM (
  SELECT DISTINCT track, {record_day} AS d FROM adherence_records
  WHERE patient_id = :pid AND outcome = 'done' AND recorded_at >= :streak_since
    AND recorded_at <= :now
) s
GROUP BY s.track
UNION ALL
SELECT {TRACKS}, track, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM track_schedules WHERE patient_id = :pid
UNION ALL
SELECT {TIMELINE}, t.kind, t.inbound, t.id, NULL, NULL, t.at, t.body, t.status, NULL, NULL
FROM (
  SELECT * FROM (
    SELECT created_at AS at, 0 AS inbound, id, kind, body,
      COALESCE(delivery_status, '-') AS status
    FROM outbound_messages
    WHERE patient_id = :pid AND created_at <= :c_at
      AND (created_at < :c_at OR :c_in = 1 OR id < :c_id)
    ORDER BY created_at DESC, id DESC LIMIT :lim
  ) o
  UNION ALL
  SELECT * FROM (
    SELECT received_at, 1, id, CASE WHEN is_proxy THEN 'caregiver' ELSE 'reply' END, body,
      COALESCE(outcome, 'received')
    FROM inbound_messages
    WHERE patient_id = :pid AND received_at <= :c_at
      AND (received_at < :c_at OR (:c_in = 1 AND id < :c_id))
    ORDER BY received_at DESC, id DESC LIMIT :lim
  ) i
  ORDER BY at DESC, inbound DESC, id DESC LIMIT :lim
) t
UNION ALL
SELECT {TRENDS}, track, id, NULL, NULL, NULL, recorded_at, unit, NULL, NULL, value
FROM adherence_records
WHERE patient_id = :pid AND value IS NOT NULL AND recorded_at >= :since90
UNION ALL
SELECT {HOMEWORK}, NULL, x.id, x.active, SUM(x.asked), SUM(x.asked * x.ok), x.created_at,
  x.description, NULL, NULL, NULL
FROM (
  SELECT h.id, CASE WHEN h.active THEN 1 ELSE 0 END AS active, h.created_at, h.description,
    CASE WHEN {asked} THEN 1 ELSE 0 END AS asked, COALESCE(r.ok, 0) AS ok
  FROM homework_items h LEFT JOIN (
    SELECT n.due_at, n.rendered_body AS body, CASE WHEN a.outcome = 'done' THEN 1 ELSE 0 END AS ok
    FROM nudges n LEFT JOIN adherence_records a ON a.nudge_id = n.id
    WHERE n.patient_id = :pid AND n.track = 'rehab' AND n.state IN ('sent', 'delivered')
      AND n.due_at >= :since_homework AND n.due_at <= :now
      AND n.occurrence_key NOT LIKE :followup
  ) r ON 1 = 1
  WHERE h.patient_id = :pid
) x
GROUP BY x.id, x.active, x.created_at, x.description
UNION ALL
SELECT {ALERTS}, kind, id, NULL, NULL, NULL, created_at, severity, status, resolution_note, NULL
FROM alerts WHERE patient_id = :pid
UNION ALL
SELECT {AUDIT}, e.actor, e.id, NULL, NULL, NULL, e.at, e.action, e.outcome, e.detail, NULL
FROM (
  SELECT * FROM audit_log WHERE patient_id = :pid ORDER BY at DESC, id DESC LIMIT :audit_rows
) e
"""


@functools.cache
def _patient_page_statement(dialect: str, transitions: int) -> TextualSelect:
    """The page's statement for a dialect and a number of DST transitions in the window."""
    sql = _SQL_DIALECTS[dialect]

    def local_day(column: str) -> str:
        # Days before today in the patient's zone: the local date is the UTC instant plus
        # the offset in force at that instant, whole days since the epoch.
        offset = "".join(f"WHEN {column} >= :tr{n} THEN :of{n} " for n in range(transitions))
        offset = f"(CASE {offset}ELSE :of_base END)" if transitions else ":of_base"
        return f"(:today - ({sql['epoch'].format(column)} + {offset}) / 86400)"

    # A reply says "done" for a whole rehab nudge: a homework item counts as asked by each
    # one whose text named it (or, for texts sent before the text was kept, each one due
    # after the item was assigned).
    asked = (
        f"(CASE WHEN r.body IS NOT NULL AND r.body <> ''"
        f" THEN {sql['find'].format('r.body', 'h.description')} > 0"
        f" ELSE r.due_at >= h.created_at END)"
    )
    text_of = "CAST({} AS TEXT)".format
    # Each nudge's heatmap cell as its rank in HEAT_STATES (NULL: nothing to show, such as
    # a text not sent yet); the day shows the best of its nudges.
    cell = (
        "(CASE WHEN a.outcome IS NOT NULL"
        " THEN (CASE a.outcome WHEN 'done' THEN 5 WHEN 'partial' THEN 4 WHEN 'skipped' THEN 3"
        " ELSE 2 END)"
        " WHEN n.state IN ('sent', 'delivered')"
        " THEN (CASE WHEN n.reply_window_ends_at <= :now THEN 2 ELSE 1 END)"
        " WHEN n.state IN ('missed', 'failed') THEN 2 END)"
    )
    statement = _PATIENT_PAGE_SQL.format(
        GRID=_GRID,
        STREAK=_STREAK,
        TRACKS=_TRACKS,
        TIMELINE=_TIMELINE,
        TRENDS=_TRENDS,
        HOMEWORK=_HOMEWORK,
        ALERTS=_ALERTS,
        AUDIT=_AUDIT,
        ts=sql["ts"],
        answers_of_patient=sql["answers_of_patient"],
        record_day=local_day("recorded_at"),
        due_day=local_day("n.due_at"),
        cell=cell,
        partial=_PARTIAL_PACK,
        agg_grid=sql["agg"].format(text_of("g.v")),
        agg_streak=sql["agg"].format(text_of("s.d")),
        asked=asked,
    )
    # SQLite needs the column type's text form of an instant; psycopg sends an aware
    # datetime as timestamptz itself, and an untyped parameter spares SQLAlchemy's cast.
    instant = UTCDateTime() if dialect == "sqlite" else None
    return (
        # One line: psycopg caches its parse of a statement only up to 4,096 characters.
        text(" ".join(statement.split()))
        .bindparams(
            *(
                bindparam(name, type_=instant)
                for name in (
                    "now",
                    "since7",
                    "since30",
                    "since90",
                    "streak_since",
                    "since_homework",
                    "c_at",
                    *(f"tr{n}" for n in range(transitions)),
                )
            )
        )
        .columns(
            column("sec", Integer),
            column("tag", String),
            column("i1", Integer),
            column("i2", Integer),
            column("i3", Integer),
            column("i4", Integer),
            column("at", UTCDateTime()),
            column("s1", String),
            column("s2", String),
            column("s3", String),
            column("f", Float),
        )
    )


# The first page starts after a message later than any.
_NEWEST = TimelineCursor(dt.datetime(9999, 1, 1, tzinfo=dt.UTC), True, 0)


def patient_detail(
    session: Session,
    patient: Patient,
    now: dt.datetime,
    before: TimelineCursor | None = None,
) -> PatientDetail:
    """Everything the patient page shows, in one statement. `before` is where a page of
    older messages starts (from `PatientDetail.older`); the rest of the page is the same."""
    zone = ZoneInfo(patient.timezone)
    calendar = _calendar(patient.timezone, now.astimezone(zone).date())
    statement = _patient_page_statement(session.get_bind().dialect.name, len(calendar.transitions))
    cursor = before or _NEWEST
    params: dict[str, Any] = {
        "pid": patient.id,
        "now": now,
        "since7": now - dt.timedelta(days=7),
        "since30": now - dt.timedelta(days=30),
        "since90": now - dt.timedelta(days=HEATMAP_DAYS),
        "streak_since": now - dt.timedelta(days=STREAK_LIMIT_DAYS + 2),
        "since_homework": now - dt.timedelta(days=HOMEWORK_DAYS),
        "followup": f"%{FOLLOWUP_SUFFIX}",
        "c_at": cursor.at,
        "c_in": int(cursor.inbound),
        "c_id": cursor.id,
        "lim": TIMELINE_PAGE + 1,  # one more tells whether an older page exists
        "audit_rows": AUDIT_ROWS,
        "today": calendar.day_number,
        "of_base": calendar.base_offset,
    }
    for n, (instant, offset) in enumerate(calendar.transitions):
        params[f"tr{n}"] = instant
        params[f"of{n}"] = offset

    tracks: list[str] = []
    grid: dict[str, str] = {}
    counts: dict[str, tuple[int, int, int, int]] = {}
    partials: dict[str, tuple[int, int]] = {}
    streak_days: dict[str, str] = {}
    timeline: list[TimelineItem] = []
    trend_rows: list[tuple[dt.datetime, int, str, float, str | None]] = []
    homework: list[HomeworkCompletion] = []
    alerts: list[AlertLine] = []
    audit: list[AuditLine] = []
    # All rows in one fetch (a hundred or so), not one driver call per row.
    for sec, tag, i1, i2, i3, i4, at, s1, s2, s3, f in (
        session.connection().execute(statement, params).all()
    ):
        if sec == _TIMELINE:
            timeline.append(TimelineItem(at, "in" if i1 else "out", tag, s1, s2, i2))
        elif sec == _TRENDS:
            # A partial answer's fraction done is part of the answer, not a trend of the
            # track's numbers (filtered here: the statement has no characters to spare).
            if s1 != FRACTION_UNIT:
                trend_rows.append((at, i1, tag, f, s1))
        elif sec == _AUDIT:
            audit.append(AuditLine(i1, at, tag, s1, s2, s3))
        elif sec == _GRID:
            grid[tag] = s1 or ""
            counts[tag] = (i1, i2 % _PARTIAL_PACK, i3, i4 % _PARTIAL_PACK)
            partials[tag] = (i2 // _PARTIAL_PACK, i4 // _PARTIAL_PACK)
        elif sec == _STREAK:
            streak_days[tag] = s1 or ""
        elif sec == _TRACKS:
            tracks.append(tag)
        elif sec == _HOMEWORK:
            homework.append(HomeworkCompletion(HomeworkLine(i1, s1, bool(i2), at), i3, i4))
        elif sec == _ALERTS:
            alerts.append(AlertLine(i1, at, tag, s1, s2, s3))

    # UNION ALL keeps no order between or within its parts: each part is put in the page's
    # order here (a few hundred rows at most).
    timeline.sort(key=lambda m: (m.at, m.direction == "in", m.id), reverse=True)
    older = None
    if len(timeline) > TIMELINE_PAGE:
        del timeline[TIMELINE_PAGE:]
        last = timeline[-1]
        older = TimelineCursor(last.at, last.direction == "in", last.id)

    tracks.sort()
    heatmap = {t: _heat_row(calendar, grid.get(t, "")) for t in tracks}
    for track, cells in grid.items():
        if track not in heatmap:  # a track no longer on the plan still shows its days
            heatmap[track] = _heat_row(calendar, cells)
    trends: dict[str, list[TrendPoint]] = defaultdict(list)
    units: dict[str, str] = {}
    trend_rows.sort(key=lambda row: (row[0], row[1]))
    for at, _id, track, value, unit in trend_rows:
        trends[track].append(TrendPoint(at, value))
        if unit:
            units[track] = unit
    homework.sort(key=lambda h: h.item.id)
    alerts.sort(key=lambda a: (a.created_at, a.id), reverse=True)
    audit.sort(key=lambda e: (e.at, e.id), reverse=True)
    summaries = [
        TrackSummary(
            t,
            *counts.get(t, (0, 0, 0, 0)),
            _streak_of(streak_days.get(t, "")),
            *partials.get(t, (0, 0)),
        )
        for t in tracks
    ]
    return PatientDetail(
        patient=patient,
        timeline=timeline,
        older=older,
        heatmap=heatmap,
        trends=dict(trends),
        units=units,
        homework=homework,
        alerts=alerts,
        audit=audit,
        summaries=summaries,
    )


def _heat_row(calendar: _Calendar, cells: str) -> list[HeatCell]:
    """The track's 90 days from its nudges' cells ("days ago * 8 + rank", comma-separated):
    each day shows the best rank among its nudges."""
    # Ascending, so a day's last (kept) entry is its best rank.
    best = {value >> 3: value & 7 for value in sorted(map(int, cells.split(",")))} if cells else {}
    last = HEATMAP_DAYS - 1
    return [day[best.get(last - index, 0)] for index, day in enumerate(calendar.cells)]


def _streak_of(days: str) -> int:
    """Consecutive local days ending today from "days ago" numbers, capped."""
    done = set(days.split(",")) if days else set()
    streak = 0
    while streak < STREAK_LIMIT_DAYS and str(streak) in done:
        streak += 1
    return streak


def alerts_queue(
    session: Session, *, clinician_id: int | None, status: str, limit: int = 200
) -> list[tuple[Alert, str | None]]:
    """Alerts on the clinician's own patients, urgent first, oldest first within a severity.
    `clinician_id=None` gives the alerts no patient record holds (a red flag texted from a
    number we do not know), which admins watch."""
    severity_rank = case((Alert.severity == "urgent", 0), (Alert.severity == "high", 1), else_=2)
    query = select(Alert, Patient.first_name).outerjoin(Patient, Patient.id == Alert.patient_id)
    if clinician_id is None:
        query = query.where(Alert.patient_id.is_(None))
    else:
        query = query.where(Patient.clinician_id == clinician_id)
    if status == "active":
        query = query.where(Alert.status.in_(_OPEN_ALERTS)).order_by(
            severity_rank, Alert.created_at
        )
    else:
        query = query.where(Alert.status == status).order_by(Alert.created_at.desc())
    return [(a, name) for a, name in session.execute(query.limit(limit))]
