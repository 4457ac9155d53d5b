"""The dashboard benchmark's cohort: every row generated (patients, schedules, 90 days of
nudges, texts, answers and alerts) and bulk-loaded (executemany on SQLite, COPY on
PostgreSQL) after the real migrations."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import create_engine

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


@dataclass
class _Cohort:
    """The rows generated so far, table by table (the COLUMNS order), and the last ids."""

    staff: list[tuple[Any, ...]]
    patients: list[tuple[Any, ...]] = field(default_factory=list)
    schedules: list[tuple[Any, ...]] = field(default_factory=list)
    nudges: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    inbound: list[tuple[Any, ...]] = field(default_factory=list)
    outbound: list[tuple[Any, ...]] = field(default_factory=list)
    nid: int = 0
    rid: int = 0

    def text_out(self, p: int, body: str, kind: str, nudge_id: int | None, at: Any) -> None:
        phone = f"+1617{p:07d}"
        row = (len(self.outbound) + 1, p, phone, body, kind, nudge_id, "console", "delivered")
        self.outbound.append((*row, 1, at))


def generate_rows(patients: int) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(7)
    cohort = _Cohort(
        staff=[
            (c + 1, f"c{c}@bench.test", f"Clinician {c}", "clinician", "x", True, NOW)
            for c in range(patients // PER_CLINICIAN + 1)
        ]
    )
    for p in range(1, patients + 1):
        enrolled = NOW - dt.timedelta(days=DAYS + 1)
        clinician = (p - 1) // PER_CLINICIAN + 1
        cohort.patients.append(
            (
                p,
                f"P{p:05d}",
                f"+1617{p:07d}",
                "America/New_York",
                "en",
                "active",
                clinician,
                False,
                enrolled,
                "bench",
                enrolled,
                enrolled,
                enrolled,
            )
        )
        cohort.text_out(p, WELCOME, "welcome", None, enrolled)
        skill = rng.random()
        for t_index, track in enumerate(TRACKS[: 2 + (p % 2)]):
            cohort.schedules.append((len(cohort.schedules) + 1, p, track, "08:30", "0123456", NOW))
            _track_history(cohort, rng, p, t_index, track, skill)
    return {
        "staff_users": cohort.staff,
        "patients": cohort.patients,
        "track_schedules": cohort.schedules,
        "nudges": cohort.nudges,
        "outbound_messages": cohort.outbound,
        "inbound_messages": cohort.inbound,
        "adherence_records": cohort.records,
    }


def _track_history(
    cohort: _Cohort, rng: random.Random, p: int, t_index: int, track: str, skill: float
) -> None:
    """Every day's nudge on one track, the text as sent, and (as often as the patient's
    `skill`) their answer and its adherence record."""
    for day in range(DAYS):
        due = NOW - dt.timedelta(days=day, hours=5 + t_index)
        cohort.nid += 1
        nid = cohort.nid
        cohort.nudges.append(
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
        cohort.text_out(p, NUDGE_TEXTS[track], "nudge", nid, due)
        if rng.random() < skill:
            cohort.rid += 1
            rid = cohort.rid
            at = due + dt.timedelta(minutes=rng.randint(1, 300))
            cohort.inbound.append(
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
            sleep = track == "sleep"
            cohort.records.append(
                (
                    rid,
                    p,
                    nid,
                    track,
                    "done",
                    7.0 if sleep else None,
                    "hours" if sleep else None,
                    False,
                    rid,
                    at,
                )
            )


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


def load_sqlite(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
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


def load_postgres(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
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
