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
import io
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session

from bench.dashboard_data import DAYS, DEFAULT_PG, NOW, generate_rows, load_postgres, load_sqlite
from bench.dashboard_naive import fast_patient, naive_csv, naive_list, naive_patient
from bench.report import machine_line, write_section
from coachbot.db import make_engine
from coachbot.migrate import upgrade
from coachbot.models import (
    Patient,
)
from coachbot.queries.dashboard import ListFilter, patients_page
from coachbot.queries.exports import patient_csv
from coachbot.queries.patient_page import patient_detail


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
# (whose list, name order p50, p95, need order p50, p95)
OrderResult = tuple[str, float, float, float, float]


def _need_order(session: Session, runs: int) -> list[OrderResult]:
    """The patients list in need order (the page's default) against name order, on the same
    data in the same run: what ranking by need costs. Checked before timing: the need page
    comes in the order its own rows' need facts give (rank, then name, then id)."""
    results = []
    for who, clinician_id in (("200 patients", 1), ("whole cohort", None)):

        def page(sort: str, cid: int | None = clinician_id) -> Callable[[], Any]:
            return lambda: (
                patients_page(session, clinician_id=cid, now=NOW, f=ListFilter(sort=sort)).rows
            )

        keys = [
            (r.need.rank if r.need else None, r.first_name.lower(), r.id) for r in page("need")()
        ]
        if None in (k[0] for k in keys) or keys != sorted(keys):
            raise SystemExit(f"patients list, {who}: need order disagrees with its need facts")
        name50, name95 = _time(page("name"), runs)
        need50, need95 = _time(page("need"), runs)
        results.append((who, name50, name95, need50, need95))
        print(
            f"  patients list, {who}: name order p50 {name50:.2f}, need order p50 {need50:.2f} ms",
            flush=True,
        )
        session.rollback()
        session.expunge_all()
    return results


def _measure(url: str, runs: int) -> tuple[list[Result], list[OrderResult]]:
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
                lambda: naive_list(session, 1),
            ),
            (
                "patients list, whole cohort (page of 50)",
                page(None),
                comparable_page(None),
                lambda: naive_list(session, None),
            ),
            (
                "patient page",
                lambda: patient_detail(session, target, NOW),
                lambda: fast_patient(session, target),
                lambda: naive_patient(session, 1),
            ),
            (
                "patient CSV export",
                lambda: "".join(patient_csv(session, target)),
                lambda: "".join(patient_csv(session, target)),
                lambda: naive_csv(session, target),
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
        orders = _need_order(session, runs)
    engine.dispose()
    return results, orders


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
    data = generate_rows(patients)
    total = sum(len(rows) for rows in data.values())
    elapsed = time.perf_counter() - started
    print(f"generated {total:,} rows for {patients:,} patients in {elapsed:.1f}s")

    sections: list[tuple[str, tuple[list[Result], list[OrderResult]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        t0 = time.perf_counter()
        load_sqlite(url, data)
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
            load_postgres(url, data)
            print(f"PostgreSQL: loaded in {time.perf_counter() - t0:.1f}s")
            sections.append(("PostgreSQL", _measure(url, args.runs)))
        except Exception as exc:
            print(f"PostgreSQL skipped: {exc}".splitlines()[0])
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    report = _report(sections, patients, total, data, args.runs)
    print(report)
    title = (
        "## Dashboard (`bench/dashboard.py`" + (" --quick" if patients < 10_000 else "") + ")\n\n"
    )
    if not args.no_write:
        write_section("dashboard", title + report)


def _report(
    sections: list[tuple[str, tuple[list[Result], list[OrderResult]]]],
    patients: int,
    total: int,
    data: dict[str, list[tuple[Any, ...]]],
    runs: int,
) -> str:
    """The tables docs/performance.md keeps: each path against its naive version, then the
    list's need order against its name order."""
    out = io.StringIO()
    out.write(
        f"{patients:,} patients, {DAYS} days of history, {total:,} rows"
        f" ({len(data['nudges']):,} nudges, {len(data['outbound_messages']):,} texts sent,"
        f" {len(data['inbound_messages']):,} replies)."
        f" Server time in ms over {runs} runs; naive = load rows, aggregate in Python;"
        f" its rows alone = the path's own SQL run on the driver and its rows fetched, no"
        f" Python work.\n"
        f"Targets: list page p95 <= 50 ms, patient page <= 50 ms, >= 10x the naive version.\n\n"
    )
    out.write(
        "| database | path | p50 ms | p95 ms | naive p50 ms | naive p95 ms | speed-up (p50)"
        " | its rows alone p50 ms | most possible (naive / rows alone) |\n"
    )
    out.write("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for db_name, (rows, _orders) in sections:
        for name, p50, p95, n50, n95, floor50 in rows:
            out.write(
                f"| {db_name} | {name} | {p50:.2f} | {p95:.2f} | {n50:.1f} | {n95:.1f}"
                f" | {n50 / p50:.1f}x | {floor50:.2f} | {n50 / floor50:.1f}x |\n"
            )
    out.write(
        "\nThe patients list in need order (the page's default: who needs the team first)"
        " against name order, page of 50, same data, same run:\n\n"
        "| database | list | name order p50 ms | p95 ms | need order p50 ms | p95 ms"
        " | need / name (p50) |\n|---|---|---:|---:|---:|---:|---:|\n"
    )
    for db_name, (_rows, orders) in sections:
        for who, name50, name95, need50, need95 in orders:
            out.write(
                f"| {db_name} | {who} | {name50:.2f} | {name95:.2f} | {need50:.2f}"
                f" | {need95:.2f} | {need50 / name50:.1f}x |\n"
            )
    out.write(f"\n{machine_line()}\n")
    return out.getvalue()


if __name__ == "__main__":
    main()
