"""Read side for the dashboard: the patients list and the alerts queue (the patient page is
in `patient_page.py`).

The list is filtered, sorted and paged in SQL; the per-track figures are then aggregated in
SQL for the page's patients only, so a page costs the same with 200 patients or 10,000. Its
default order is need (`coachbot.domain.need`): the rank is computed in the same SQL, so the
order and the "Why" column never disagree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Select,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from coachbot.domain.adherence import (
    STREAK_LIMIT_DAYS,
    adherence_pct,
    streak_from_mask,
)
from coachbot.domain.need import Need, NeedFacts
from coachbot.models import (
    Alert,
    Patient,
    TrackSchedule,
)
from coachbot.queries import dashboard_sql as sql

PER_PAGE = 50
# "need" is the list page's default; the exports and the API page through by name.
SORTS = ("need", "name", "enrolled", "last_reply", "alerts", "adherence")


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
    language: str = "en"
    # Why the patient is where they are in the need order; the same facts whatever the sort.
    need: NeedFacts | None = None


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
    if f.sort == "need":
        order = [sql.need_rank(), func.lower(Patient.first_name), Patient.id]
    elif f.sort == "enrolled":
        order = [Patient.enrolled_at.desc(), Patient.id]
    elif f.sort == "last_reply":
        order = [sql.last_reply_sq().desc().nulls_last(), Patient.id]
    elif f.sort == "alerts":
        order = [sql.open_alerts_sq().desc(), Patient.first_name, Patient.id]
    elif f.sort == "adherence":
        # Who is slipping first: lowest 7-day adherence, patients with nothing sent last.
        order = [sql.this_week_sq().asc().nulls_last(), Patient.id]
    else:
        order = [func.lower(Patient.first_name), Patient.id]
    paged = base.order_by(*order).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
    ids = list(session.scalars(paged, sql.instants(now)))
    return PatientListPage(_rows_for(session, ids, now), total, page, pages)


def _rows_for(session: Session, ids: list[int], now: dt.datetime) -> list[PatientRow]:
    if not ids:
        return []
    rows = _base_rows(session, ids, now)
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


def _pct(rate: Any) -> int | None:
    return None if rate is None else round(100 * float(rate))


def _base_rows(session: Session, ids: list[int], now: dt.datetime) -> dict[int, PatientRow]:
    """One round trip for the page's patients with their last reply (the max of an index
    range per patient, not a scan of every reply), open-alert count, need rank and the two
    weeks' adherence; then one for the alerts the urgent and high ranks name."""
    rows = {}
    ranks: dict[int, tuple[Need, dt.datetime, int | None, int | None]] = {}
    missed: dict[int, int | None] = {}
    for (
        pid,
        first_name,
        phone,
        status,
        timezone,
        language,
        enrolled,
        last,
        alerts,
        rank,
        before,
        this_week,
        missed_on,
    ) in session.connection().execute(
        sql.base_statement(),
        {"ids": ids, **sql.instants(now)},
    ):
        row = PatientRow(pid, first_name, phone[-4:], status, timezone, language=language)
        row.last_reply_at = aware(last)
        row.open_alerts = int(alerts or 0)
        rows[pid] = row
        ranks[pid] = (Need(rank), aware(enrolled) or now, _pct(before), _pct(this_week))
        missed[pid] = _days_ago(missed_on, timezone, now)
    named = _alerts_named(session, [p for p, r in ranks.items() if r[0] <= Need.HIGH_ALERT])
    for pid, (rank, enrolled, before, this_week) in ranks.items():
        kind, detail, at = named.get(pid, (None, None, None))
        rows[pid].need = NeedFacts(
            rank,
            enrolled,
            rows[pid].last_reply_at,
            kind,
            detail,
            at,
            pct_last_week=before,
            pct_this_week=this_week,
            missed_check_days_ago=missed[pid],
        )
    return rows


def _days_ago(day: Any, zone: str, now: dt.datetime) -> int | None:
    """How many of the patient's local days ago `day` was (SQLite may give the text)."""
    if day is None:
        return None
    value = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return (now.astimezone(ZoneInfo(zone)).date() - value).days


def _alerts_named(
    session: Session, ids: list[int]
) -> dict[int, tuple[str, str | None, dt.datetime | None]]:
    """Per patient, the newest of their most severe open alerts: (kind, detail, raised)."""
    if not ids:
        return {}
    named: dict[int, tuple[str, str | None, dt.datetime | None]] = {}
    for pid, kind, detail, at in session.execute(
        select(Alert.patient_id, Alert.kind, Alert.detail, Alert.created_at)
        .where(Alert.patient_id.in_(ids), Alert.status.in_(sql.OPEN_ALERTS))
        .order_by(Alert.patient_id, sql.severity_rank(), Alert.created_at.desc(), Alert.id.desc())
    ):
        if pid is not None:
            named.setdefault(pid, (kind, detail, aware(at)))
    return named


def _track_counts(
    session: Session, ids: list[int], now: dt.datetime
) -> dict[tuple[int, str], tuple[int, int, int, int, int, int]]:
    """Sent, done and partial over 7 and 30 days per (patient, track) in one pass over the
    30-day rows, with the same rules as `adherence_by_track` (follow-ups are not counted):
    (sent 7, done 7, sent 30, done 30, partial 7, partial 30), TrackSummary's order."""
    params = {"ids": ids, "month_ago": now - dt.timedelta(days=30), **sql.instants(now)}
    # Core, not the ORM: a page is a few hundred small rows, and ORM row handling would
    # cost more than the query.
    return {
        (pid, track): (int(s7), int(d7), int(s30), int(d30), int(p7), int(p30))
        for pid, track, s7, d7, s30, d30, p7, p30 in session.connection().execute(
            sql.track_counts_statement(), params
        )
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
        bounds = {
            f"day_{n}": dt.datetime.combine(
                today - dt.timedelta(days=n), dt.time(), zone
            ).astimezone(dt.UTC)
            for n in range(STREAK_LIMIT_DAYS)
        }
        params = {"ids": pids, "now": now, **bounds}
        for pid, track, mask in session.connection().execute(sql.streaks_statement(), params):
            masks[(pid, track)] = int(mask or 0)
    return {key: streak_from_mask(mask) for key, mask in masks.items()}


def alerts_queue(
    session: Session, *, clinician_id: int | None, status: str, limit: int = 200
) -> list[tuple[Alert, str | None]]:
    """Alerts on the clinician's own patients, urgent first, oldest first within a severity.
    `clinician_id=None` gives the alerts no patient record holds (a red flag texted from a
    number we do not know), which admins watch."""
    query = select(Alert, Patient.first_name).outerjoin(Patient, Patient.id == Alert.patient_id)
    if clinician_id is None:
        query = query.where(Alert.patient_id.is_(None))
    else:
        query = query.where(Patient.clinician_id == clinician_id)
    if status == "active":
        query = query.where(Alert.status.in_(sql.OPEN_ALERTS)).order_by(
            sql.severity_rank(), Alert.created_at
        )
    else:
        query = query.where(Alert.status == status).order_by(Alert.created_at.desc())
    return [(a, name) for a, name in session.execute(query.limit(limit))]
