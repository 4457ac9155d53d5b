"""Dashboard read paths at scale: the patients list (one clinician's 200 patients, and the
whole cohort), the patient page and the patient CSV export, server time p50 / p95, against a
naive version (load the rows, aggregate in Python) in the same run.

    .venv/bin/python -m bench.dashboard            # 10,000 patients x 90 days, SQLite + PostgreSQL
    .venv/bin/python -m bench.dashboard --quick    # 1,000 patients x 90 days
    .venv/bin/python -m bench.dashboard --quick --no-write   # print only, docs untouched
    BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test  (default shown)

Rows are bulk-loaded (executemany on SQLite, COPY on PostgreSQL) after the real migrations.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import Engine, create_engine, event, select, text, true
from sqlalchemy.orm import Session

from bench.report import machine_line, write_section
from coachbot.db import make_engine
from coachbot.domain.adherence import STREAK_LIMIT_DAYS, streak_from_instants
from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.migrate import upgrade
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
    TrackSchedule,
)
from coachbot.queries.dashboard import PER_PAGE, ListFilter, PatientRow, TrackSummary, patients_page
from coachbot.queries.exports import PATIENT_CSV_COLUMNS, csv_text, patient_csv
from coachbot.queries.patient_page import HEATMAP_DAYS, TIMELINE_PAGE, patient_detail

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
DAYS = 90
TRACKS = ("sleep", "exercise", "rehab")
PER_CLINICIAN = 200
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WELCOME = "Welcome to Riverside Recovery's coaching texts. Reply YES to start, STOP to end."
NUDGE_TEXTS = {
    "sleep": "Good morning! How many hours did you sleep last night? Reply with a number.",
    "exercise": "Time to move: did you do your exercise today? Reply DONE or SKIP.",
    "rehab": "Rehab check: did you do today's exercises? Reply DONE or SKIP.",
}


def _rows(patients: int) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(7)
    staff = [
        (c + 1, f"c{c}@bench.test", f"Clinician {c}", "clinician", "x", True, NOW)
        for c in range(patients // PER_CLINICIAN + 1)
    ]
    pats: list[tuple[Any, ...]] = []
    scheds: list[tuple[Any, ...]] = []
    nudges: list[tuple[Any, ...]] = []
    records: list[tuple[Any, ...]] = []
    inbound: list[tuple[Any, ...]] = []
    outbound: list[tuple[Any, ...]] = []
    nid = rid = 0
    for p in range(1, patients + 1):
        enrolled = NOW - dt.timedelta(days=DAYS + 1)
        pats.append(
            (
                p,
                f"P{p:05d}",
                f"+1617{p:07d}",
                "America/New_York",
                "en",
                "active",
                (p - 1) // PER_CLINICIAN + 1,
                False,
                enrolled,
                "bench",
                enrolled,
                enrolled,
                enrolled,
            )
        )
        phone = f"+1617{p:07d}"
        outbound.append(
            (
                len(outbound) + 1,
                p,
                phone,
                WELCOME,
                "welcome",
                None,
                "console",
                "delivered",
                1,
                enrolled,
            )
        )
        skill = rng.random()
        for t_index, track in enumerate(TRACKS[: 2 + (p % 2)]):
            scheds.append((len(scheds) + 1, p, track, "08:30", "0123456", NOW))
            for day in range(DAYS):
                due = NOW - dt.timedelta(days=day, hours=5 + t_index)
                nid += 1
                nudges.append(
                    (
                        nid,
                        p,
                        track,
                        f"{track}:{day}",
                        due,
                        due,
                        "delivered",
                        1,
                        due,
                        due + dt.timedelta(hours=10),
                        due,
                        due,
                    )
                )
                # The nudge as sent: the timeline's other half, and the CSV's delivery status.
                outbound.append(
                    (
                        len(outbound) + 1,
                        p,
                        phone,
                        NUDGE_TEXTS[track],
                        "nudge",
                        nid,
                        "console",
                        "delivered",
                        1,
                        due,
                    )
                )
                if rng.random() < skill:
                    rid += 1
                    at = due + dt.timedelta(minutes=rng.randint(1, 300))
                    inbound.append(
                        (
                            rid,
                            f"SMb{rid:030d}",
                            f"+1617{p:07d}",
                            "+16175550100",
                            "7",
                            0,
                            p,
                            False,
                            nid,
                            "adherence",
                            at,
                        )
                    )
                    records.append(
                        (
                            rid,
                            p,
                            nid,
                            track,
                            "done",
                            7.0 if track == "sleep" else None,
                            "hours" if track == "sleep" else None,
                            False,
                            rid,
                            at,
                        )
                    )
    return {
        "staff_users": staff,
        "patients": pats,
        "track_schedules": scheds,
        "nudges": nudges,
        "outbound_messages": outbound,
        "inbound_messages": inbound,
        "adherence_records": records,
    }


COLUMNS = {
    "staff_users": "id, email, display_name, role, password_hash, is_active, created_at",
    "patients": "id, first_name, phone_e164, timezone, language, status, clinician_id,"
    " checkin_enabled, consent_at, consent_method, enrolled_at, updated_at, opted_in_at",
    "track_schedules": "id, patient_id, track, local_times, days_of_week, updated_at",
    "nudges": "id, patient_id, track, occurrence_key, due_at, send_at, state, attempts, sent_at,"
    " reply_window_ends_at, created_at, updated_at",
    "outbound_messages": "id, patient_id, to_e164, body, kind, nudge_id, backend,"
    " delivery_status, segments, created_at",
    "inbound_messages": "id, provider_sid, from_e164, to_e164, body, num_media, patient_id,"
    " is_proxy, nudge_id, outcome, received_at",
    "adherence_records": "id, patient_id, nudge_id, track, outcome, value, unit, is_proxy,"
    " inbound_message_id, recorded_at",
}


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def _load_sqlite(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
    """Secondary indexes are dropped for the load and rebuilt after: building an index once
    over sorted input is far cheaper than updating it 4.5 million times."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    tables = tuple(data)
    indexes = cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({', '.join('?' * len(tables))})",
        tables,
    ).fetchall()
    for name, _sql in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute("PRAGMA foreign_keys=OFF")
    for table, rows in data.items():
        cols = COLUMNS[table]
        marks = ", ".join("?" * len(cols.split(",")))
        cursor.executemany(
            f"INSERT INTO {table} ({cols}) VALUES ({marks})",
            [[_sqlite_value(v) for v in row] for row in rows],
        )
    for _name, sql in indexes:
        cursor.execute(sql)
    raw.commit()
    cursor.execute("ANALYZE")
    raw.close()
    engine.dispose()


def _copy_text(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return str(v)  # the generated strings hold no tab, newline or backslash


def _load_postgres(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
    """COPY in text format from large pre-formatted chunks (psycopg's per-row adaptation
    was the slow part: 264 s for 450k rows before), with foreign-key triggers off for the
    session and the secondary indexes dropped for the load and rebuilt after."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.Connection)
    cursor = driver.cursor()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = ANY(%s) AND indexname NOT IN"
        " (SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)",
        (list(data),),
    )
    indexes = cursor.fetchall()
    for name, _sql in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute("SET session_replication_role = replica")
    for table, rows in data.items():
        with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
            for start in range(0, len(rows), 50_000):
                copy.write(
                    "".join(
                        "\t".join(_copy_text(v) for v in row) + "\n"
                        for row in rows[start : start + 50_000]
                    )
                )
    cursor.execute("SET session_replication_role = DEFAULT")
    cursor.execute("SET maintenance_work_mem = '256MB'")
    for _name, sql in indexes:
        cursor.execute(sql)
    raw.commit()
    # VACUUM as autovacuum would soon after a load: it sets the visibility map, without
    # which PostgreSQL cannot answer from the covering indexes alone (index-only scans).
    driver.autocommit = True
    cursor.execute("VACUUM ANALYZE")
    raw.close()
    engine.dispose()


def _time(fn: Callable[[], Any], runs: int, *, warm: bool = True) -> tuple[float, float]:
    if warm:
        fn()  # warm caches and the statement cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


# --- the naive versions: load the rows with the ORM, aggregate in Python -----------------
# Each produces exactly what the real path produces (checked once per database before
# timing), so the speed-up compares like with like.


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


def _naive_list(session: Session, clinician_id: int | None) -> list[PatientRow]:
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


def _naive_patient(session: Session, patient_id: int) -> tuple[Any, ...]:
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


def _fast_patient(session: Session, patient: Patient) -> tuple[Any, ...]:
    d = patient_detail(session, patient, NOW)
    return (
        [(i.at, i.direction, i.kind, i.body, i.status) for i in d.timeline],
        tuple(d.older) if d.older else None,
        {t: [(c.day, c.state) for c in cells] for t, cells in d.heatmap.items()},
        {t: [(p.at, p.value) for p in points] for t, points in d.trends.items()},
        d.summaries,
    )


def _naive_csv(session: Session, patient: Patient) -> str:
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
            ]
        )
    return "".join(csv_text([list(PATIENT_CSV_COLUMNS), *rows]))


def _statements_of(engine: Engine, fn: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SQL `fn` sends, with its parameters as the driver receives them."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def _rows_alone(session: Session, statements: list[tuple[str, Any]]) -> Callable[[], Any]:
    """The real path's own statements run on the driver's connection and their rows fetched,
    with nothing else: no SQLAlchemy, no Python assembly. What any version of the path that
    reads these rows must pay at least, so naive / this is the most the path could beat the
    naive version by without reading fewer rows."""
    driver = session.connection().connection.dbapi_connection
    assert driver is not None

    def run() -> None:
        cursor = driver.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        cursor.close()

    return run


Result = tuple[str, float, float, float, float, float]


def _measure(url: str, runs: int) -> list[Result]:
    engine = make_engine(url)
    results = []
    with Session(engine) as session:
        target = session.get_one(Patient, 1)

        def page(cid: int | None) -> Callable[[], Any]:
            return lambda: patients_page(session, clinician_id=cid, now=NOW, f=ListFilter()).rows

        def comparable_page(cid: int | None) -> Callable[[], Any]:
            # The naive version computes the list's figures, not the need facts behind the
            # "Why" column: compare everything else.
            return lambda: [dataclasses.replace(r, need=None) for r in page(cid)()]

        # (name, the real path as the page calls it, its output in a comparable shape, naive)
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], Any]]] = [
            (
                "patients list, 200 patients (page of 50)",
                page(1),
                comparable_page(1),
                lambda: _naive_list(session, 1),
            ),
            (
                "patients list, whole cohort (page of 50)",
                page(None),
                comparable_page(None),
                lambda: _naive_list(session, None),
            ),
            (
                "patient page",
                lambda: patient_detail(session, target, NOW),
                lambda: _fast_patient(session, target),
                lambda: _naive_patient(session, 1),
            ),
            (
                "patient CSV export",
                lambda: "".join(patient_csv(session, target)),
                lambda: "".join(patient_csv(session, target)),
                lambda: _naive_csv(session, target),
            ),
        ]
        for name, fast, comparable, naive in cases:
            if comparable() != naive():
                raise SystemExit(f"{name}: the naive version disagrees with the real one")
            session.expunge_all()
            p50, p95 = _time(fast, runs)
            statements = _statements_of(engine, fast)
            floor50, _floor95 = _time(_rows_alone(session, statements), runs)
            # The agreement check above already warmed the naive path.
            n50, n95 = _time(naive, max(3, runs // 10), warm=False)
            results.append((name, p50, p95, n50, n95, floor50))
            print(
                f"  {name}: p50 {p50:.2f}, p95 {p95:.2f}, naive p50 {n50:.2f},"
                f" its rows alone p50 {floor50:.2f} ms",
                flush=True,
            )
            session.rollback()
            session.expunge_all()
            target = session.get_one(Patient, 1)
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 patients instead of 10,000")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--no-write", action="store_true", help="print the figures, leave docs/performance.md"
    )
    args = parser.parse_args()
    patients = args.patients or (1_000 if args.quick else 10_000)
    started = time.perf_counter()
    data = _rows(patients)
    total = sum(len(rows) for rows in data.values())
    elapsed = time.perf_counter() - started
    print(f"generated {total:,} rows for {patients:,} patients in {elapsed:.1f}s")

    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        t0 = time.perf_counter()
        _load_sqlite(url, data)
        print(f"SQLite: loaded in {time.perf_counter() - t0:.1f}s")
        sections.append(("SQLite", _measure(url, args.runs)))

    pg = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG)
    if not args.no_postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg)
        try:
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            from tests.conftest import _schema_url

            url = _schema_url(pg, schema)
            upgrade(url)
            t0 = time.perf_counter()
            _load_postgres(url, data)
            print(f"PostgreSQL: loaded in {time.perf_counter() - t0:.1f}s")
            sections.append(("PostgreSQL", _measure(url, args.runs)))
        except Exception as exc:
            print(f"PostgreSQL skipped: {exc}".splitlines()[0])
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    out = io.StringIO()
    out.write(
        f"{patients:,} patients, {DAYS} days of history, {total:,} rows"
        f" ({len(data['nudges']):,} nudges, {len(data['outbound_messages']):,} texts sent,"
        f" {len(data['inbound_messages']):,} replies)."
        f" Server time in ms over {args.runs} runs; naive = load rows, aggregate in Python;"
        f" its rows alone = the path's own SQL run on the driver and its rows fetched, no"
        f" Python work.\n"
        f"Targets: list page p95 <= 50 ms, patient page <= 50 ms, >= 10x the naive version.\n\n"
    )
    out.write(
        "| database | path | p50 ms | p95 ms | naive p50 ms | naive p95 ms | speed-up (p50)"
        " | its rows alone p50 ms | most possible (naive / rows alone) |\n"
    )
    out.write("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for db_name, rows in sections:
        for name, p50, p95, n50, n95, floor50 in rows:
            out.write(
                f"| {db_name} | {name} | {p50:.2f} | {p95:.2f} | {n50:.1f} | {n95:.1f}"
                f" | {n50 / p50:.1f}x | {floor50:.2f} | {n50 / floor50:.1f}x |\n"
            )
    out.write(f"\n{machine_line()}\n")
    report = out.getvalue()
    print(report)
    title = (
        "## Dashboard (`bench/dashboard.py`" + (" --quick" if patients < 10_000 else "") + ")\n\n"
    )
    if not args.no_write:
        write_section("dashboard", title + report)


if __name__ == "__main__":
    main()
