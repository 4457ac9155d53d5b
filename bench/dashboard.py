"""Dashboard read paths at scale: the patients list (one clinician's 200 patients, and the
whole cohort), the patient page and the patient CSV export, server time p50 / p95, against a
naive version (load the rows, aggregate in Python) in the same run.

    .venv/bin/python -m bench.dashboard            # 10,000 patients x 90 days, SQLite + PostgreSQL
    .venv/bin/python -m bench.dashboard --quick    # 1,000 patients x 90 days
    BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test  (default shown)

Rows are bulk-loaded (executemany on SQLite, COPY on PostgreSQL) after the real migrations.
"""

from __future__ import annotations

import argparse
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

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from bench.report import machine_line, write_section
from coachbot.db import make_engine
from coachbot.migrate import upgrade
from coachbot.models import AdherenceRecord, Nudge, Patient
from coachbot.queries.dashboard import ListFilter, patient_detail, patients_page
from coachbot.services.exports import patient_csv

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
DAYS = 90
TRACKS = ("sleep", "exercise", "rehab")
PER_CLINICIAN = 200
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _rows(patients: int) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(7)
    staff = [
        (c + 1, f"c{c}@bench.test", f"Clinician {c}", "clinician", "x", True, NOW)
        for c in range(patients // PER_CLINICIAN + 1)
    ]
    pats, scheds, nudges, records, inbound = [], [], [], [], []
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
    engine = create_engine(url)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    for table, rows in data.items():
        cols = COLUMNS[table]
        marks = ", ".join("?" * len(cols.split(",")))
        cursor.executemany(
            f"INSERT INTO {table} ({cols}) VALUES ({marks})",
            ([_sqlite_value(v) for v in row] for row in rows),
        )
    raw.commit()
    cursor.execute("ANALYZE")
    raw.close()
    engine.dispose()


def _load_postgres(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
    engine = create_engine(url)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    for table, rows in data.items():
        with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
    raw.commit()
    cursor.execute("ANALYZE")
    raw.commit()
    raw.close()
    engine.dispose()


def _time(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    fn()  # warm caches and the statement cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def _naive_list(session: Session, clinician_id: int | None) -> list[tuple[int, str]]:
    """Load every patient and every nudge/answer of the last 30 days, aggregate in Python."""
    query = select(Patient)
    if clinician_id is not None:
        query = query.where(Patient.clinician_id == clinician_id)
    patients = list(session.scalars(query))
    ids = [p.id for p in patients]
    since = NOW - dt.timedelta(days=30)
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    answered = {
        nudge_id
        for (nudge_id,) in session.execute(
            select(AdherenceRecord.nudge_id).where(
                AdherenceRecord.patient_id.in_(ids), AdherenceRecord.recorded_at >= since
            )
        )
    }
    for nudge in session.scalars(
        select(Nudge).where(Nudge.patient_id.in_(ids), Nudge.due_at >= since)
    ):
        c = counts[(nudge.patient_id, nudge.track)]
        recent = nudge.due_at >= NOW - dt.timedelta(days=7)
        c[2] += 1
        c[3] += nudge.id in answered
        if recent:
            c[0] += 1
            c[1] += nudge.id in answered
    patients.sort(key=lambda p: (p.first_name.lower(), p.id))
    return [(p.id, p.first_name) for p in patients[:50]]


def _naive_patient(session: Session, patient_id: int) -> int:
    nudges = list(session.scalars(select(Nudge).where(Nudge.patient_id == patient_id)))
    records = list(
        session.scalars(select(AdherenceRecord).where(AdherenceRecord.patient_id == patient_id))
    )
    by_nudge = {r.nudge_id: r for r in records}
    return sum(1 for n in nudges if n.id in by_nudge)


def _measure(url: str, runs: int) -> list[tuple[str, float, float, float, float]]:
    engine = make_engine(url)
    results = []
    with Session(engine) as session:
        target = session.get_one(Patient, 1)

        def page(cid: int | None) -> Callable[[], Any]:
            return lambda: patients_page(session, clinician_id=cid, now=NOW, f=ListFilter())

        cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
            ("patients list, 200 patients (page of 50)", page(1), lambda: _naive_list(session, 1)),
            (
                "patients list, whole cohort (page of 50)",
                page(None),
                lambda: _naive_list(session, None),
            ),
            (
                "patient page",
                lambda: patient_detail(session, target, NOW),
                lambda: _naive_patient(session, 1),
            ),
            (
                "patient CSV export",
                lambda: sum(len(line) for line in patient_csv(session, target)),
                lambda: _naive_patient(session, 1),
            ),
        ]
        for name, fast, naive in cases:
            p50, p95 = _time(fast, runs)
            n50, n95 = _time(naive, max(3, runs // 5))
            results.append((name, p50, p95, n50, n95))
            session.rollback()
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 patients instead of 10,000")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-postgres", action="store_true")
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
        f" ({len(data['nudges']):,} nudges, {len(data['inbound_messages']):,} replies)."
        f" Server time in ms over {args.runs} runs; naive = load rows, aggregate in Python.\n"
        f"Targets: list page p95 <= 50 ms, patient page <= 50 ms, >= 10x the naive version.\n\n"
    )
    out.write(
        "| database | path | p50 ms | p95 ms | naive p50 ms | naive p95 ms | speed-up (p50) |\n"
    )
    out.write("|---|---|---:|---:|---:|---:|---:|\n")
    for db_name, rows in sections:
        for name, p50, p95, n50, n95 in rows:
            out.write(
                f"| {db_name} | {name} | {p50:.1f} | {p95:.1f} | {n50:.1f} | {n95:.1f}"
                f" | {n50 / p50:.1f}x |\n"
            )
    out.write(f"\n{machine_line()}\n")
    report = out.getvalue()
    print(report)
    title = (
        "## Dashboard (`bench/dashboard.py`" + (" --quick" if patients < 10_000 else "") + ")\n\n"
    )
    write_section("dashboard", title + report)


if __name__ == "__main__":
    main()
