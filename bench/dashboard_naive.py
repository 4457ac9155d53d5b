"""The naive versions of the dashboard's read paths: load the rows, aggregate in Python.
Each produces exactly what the real path produces (`bench.dashboard` checks that once per
database before timing), so the speed-up compares like with like."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from bench.dashboard_data import NOW
from coachbot.domain.adherence import STREAK_LIMIT_DAYS, streak_from_instants
from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
    TrackSchedule,
)
from coachbot.queries.dashboard import PER_PAGE, PatientRow, TrackSummary
from coachbot.queries.exports import PATIENT_CSV_COLUMNS, csv_text
from coachbot.queries.patient_page import HEATMAP_DAYS, TIMELINE_PAGE, patient_detail


def _counts(nudges: list[Any], answers: dict[int, Any], since: dt.datetime) -> tuple[int, int]:
    sent = done = 0
    for n in nudges:
        if n.due_at < since or n.due_at > NOW or n.occurrence_key.endswith(FOLLOWUP_SUFFIX):
            continue
        sent += n.state in ("sent", "delivered")
        answer = answers.get(n.id)
        done += answer is not None and answer.outcome == "done"
    return sent, done


def _streak(records: list[Any], zone: ZoneInfo) -> int:
    return min(
        STREAK_LIMIT_DAYS,
        streak_from_instants(
            [r.recorded_at for r in records if r.outcome == "done" and r.recorded_at <= NOW],
            zone,
            NOW,
        ),
    )


def naive_list(session: Session, clinician_id: int | None) -> list[PatientRow]:
    """Every patient of the list with their last 30 days of nudges, answers, replies and
    alerts, loaded as plain rows (not ORM objects, which would make the naive version
    several times slower still); figures computed per patient in Python, sorted, paged."""
    patients = session.execute(
        select(Patient.__table__).where(
            Patient.clinician_id == clinician_id if clinician_id is not None else true()
        )
    ).all()
    ids = [p.id for p in patients]

    def mine(column: Any) -> Any:
        return column.in_(ids) if clinician_id is not None else column.is_not(None)

    since = NOW - dt.timedelta(days=30)
    nudges: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for n in session.execute(
        select(Nudge.__table__).where(mine(Nudge.patient_id), Nudge.due_at >= since)
    ):
        nudges[(n.patient_id, n.track)].append(n)
    answers: dict[int, Any] = {}
    records: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for r in session.execute(
        select(AdherenceRecord.__table__).where(
            mine(AdherenceRecord.patient_id),
            AdherenceRecord.recorded_at >= since - dt.timedelta(days=2),
        )
    ):
        if r.nudge_id is not None:
            answers[r.nudge_id] = r
        records[(r.patient_id, r.track)].append(r)
    last: dict[int, dt.datetime] = {}
    for m in session.execute(
        select(InboundMessage.__table__).where(mine(InboundMessage.patient_id))
    ):
        if m.patient_id is not None and (
            m.patient_id not in last or m.received_at > last[m.patient_id]
        ):
            last[m.patient_id] = m.received_at
    alerts: dict[int, int] = defaultdict(int)
    for a in session.execute(select(Alert.__table__).where(mine(Alert.patient_id))):
        if a.patient_id is not None and a.status in ("open", "acknowledged"):
            alerts[a.patient_id] += 1
    tracks: dict[int, list[str]] = defaultdict(list)
    for s in session.execute(select(TrackSchedule.__table__).where(mine(TrackSchedule.patient_id))):
        tracks[s.patient_id].append(s.track)
    rows = []
    for p in patients:
        zone = ZoneInfo(p.timezone)
        row = PatientRow(p.id, p.first_name, p.phone_e164[-4:], p.status, p.timezone)
        row.language = p.language
        row.last_reply_at = last.get(p.id)
        row.open_alerts = alerts.get(p.id, 0)
        for track in sorted(tracks[p.id]):
            week = _counts(nudges[(p.id, track)], answers, NOW - dt.timedelta(days=7))
            month = _counts(nudges[(p.id, track)], answers, since)
            streak = _streak(records[(p.id, track)], zone)
            row.tracks.append(TrackSummary(track, *week, *month, streak))
        rows.append(row)
    rows.sort(key=lambda r: (r.first_name.lower(), r.id))
    return rows[:PER_PAGE]


def naive_patient(session: Session, patient_id: int) -> tuple[Any, ...]:
    """The patient page from every row of the record: messages, nudges, answers."""
    patient = session.execute(select(Patient.__table__).where(Patient.id == patient_id)).one()
    zone = ZoneInfo(patient.timezone)
    outbound = session.execute(
        select(OutboundMessage.__table__).where(OutboundMessage.patient_id == patient_id)
    ).all()
    inbound = session.execute(
        select(InboundMessage.__table__).where(InboundMessage.patient_id == patient_id)
    ).all()
    # Newest first; at the same instant the text sent first (a bot reply is written at the
    # instant of the text it answers), then the newer id: the paging order.
    messages = [
        (m.created_at, False, m.id, m.kind, m.body, m.delivery_status or "-") for m in outbound
    ] + [
        (
            m.received_at,
            True,
            m.id,
            "caregiver" if m.is_proxy else "reply",
            m.body,
            m.outcome or "received",
        )
        for m in inbound
    ]
    messages.sort(key=lambda m: (m[0], not m[1], m[2]), reverse=True)
    page = messages[:TIMELINE_PAGE]
    # Shown oldest first, as a conversation reads.
    timeline = [
        (at, "in" if is_reply else "out", kind, body, status)
        for at, is_reply, _id, kind, body, status in reversed(page)
    ]
    older = page[-1][:3] if len(messages) > TIMELINE_PAGE else None
    nudges = session.execute(select(Nudge.__table__).where(Nudge.patient_id == patient_id)).all()
    records = session.execute(
        select(AdherenceRecord.__table__).where(AdherenceRecord.patient_id == patient_id)
    ).all()
    answers = {r.nudge_id: r for r in records if r.nudge_id is not None}
    since = NOW - dt.timedelta(days=HEATMAP_DAYS)
    rank = {"done": 4, "skipped": 3, "missed": 2, "waiting": 1, "none": 0}
    tracks = sorted(
        session.scalars(select(TrackSchedule.track).where(TrackSchedule.patient_id == patient_id))
    )
    grid: dict[str, dict[dt.date, str]] = {t: {} for t in tracks}
    for n in nudges:
        if not since <= n.due_at <= NOW:
            continue
        answer = answers.get(n.id)
        if answer is not None:
            cell = answer.outcome
        elif n.state in ("sent", "delivered"):
            ends = n.reply_window_ends_at
            cell = "missed" if ends is not None and ends <= NOW else "waiting"
        elif n.state in ("missed", "failed"):
            cell = "missed"
        else:
            continue
        day = n.due_at.astimezone(zone).date()
        row = grid.setdefault(n.track, {})
        if rank[cell] > rank.get(row.get(day, "none"), 0):
            row[day] = cell
    today = NOW.astimezone(zone).date()
    days = [today - dt.timedelta(days=i) for i in range(HEATMAP_DAYS - 1, -1, -1)]
    heatmap = {t: [(d, grid[t].get(d, "none")) for d in days] for t in grid}
    trends: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.recorded_at, r.id)):
        if r.value is not None and r.recorded_at >= since:
            trends[r.track].append((r.recorded_at, float(r.value)))
    summaries = []
    for t in tracks:
        mine = [n for n in nudges if n.track == t]
        week = _counts(mine, answers, NOW - dt.timedelta(days=7))
        month = _counts(mine, answers, NOW - dt.timedelta(days=30))
        streak = _streak([r for r in records if r.track == t], zone)
        summaries.append(TrackSummary(t, *week, *month, streak))
    return timeline, older, heatmap, dict(trends), summaries


def fast_patient(session: Session, patient: Patient) -> tuple[Any, ...]:
    d = patient_detail(session, patient, NOW)
    return (
        [(i.at, i.direction, i.kind, i.body, i.status) for i in d.timeline],
        tuple(d.older) if d.older else None,
        {t: [(c.day, c.state) for c in cells] for t, cells in d.heatmap.items()},
        {t: [(p.at, p.value) for p in points] for t, points in d.trends.items()},
        d.summaries,
    )


def naive_csv(session: Session, patient: Patient) -> str:
    """The patient CSV from the nudges, answers and sent messages loaded whole, written
    with the same CSV writer as the real export (only the reading differs)."""
    nudges = sorted(
        session.execute(select(Nudge.__table__).where(Nudge.patient_id == patient.id)),
        key=lambda n: (n.due_at, n.id),
    )
    answers = {
        r.nudge_id: r
        for r in session.execute(
            select(AdherenceRecord.__table__).where(AdherenceRecord.patient_id == patient.id)
        )
    }
    delivery: dict[int, tuple[int, str | None]] = {}
    for m in session.execute(
        select(OutboundMessage.__table__).where(OutboundMessage.patient_id == patient.id)
    ):
        if m.nudge_id is not None and (
            m.nudge_id not in delivery or m.id > delivery[m.nudge_id][0]
        ):
            delivery[m.nudge_id] = (m.id, m.delivery_status)
    rows = []
    for n in nudges:
        a = answers.get(n.id)
        rows.append(
            [
                patient.id,
                n.track,
                n.due_at.isoformat(),
                n.state,
                delivery.get(n.id, (0, None))[1],
                a.outcome if a else None,
                a.value if a else None,
                a.unit if a else None,
                a.recorded_at.isoformat() if a else None,
                "yes" if a and a.is_proxy else ("no" if a and a.outcome else None),
                None,  # the caregiver column: only caregiver check rows name one
            ]
        )
    # The benchmark's cohort has no caregivers, so the export has no caregiver check rows.
    return "".join(csv_text([list(PATIENT_CSV_COLUMNS), *rows]))
