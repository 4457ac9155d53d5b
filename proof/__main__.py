"""`python -m proof [--quick] [--db sqlite|postgresql|both]`: runs every scenario on a fresh
database per scenario, prints the table and writes docs/reliability.md. Exit status 1 when
anything did not hold."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from coachbot.migrate import upgrade
from proof import (
    caregivers,
    db_faults_scenario,
    fuzz_scenarios,
    load_scenario,
    paging_scenario,
    scenarios,
)
from proof.scenarios import Result

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


@contextmanager
def fresh_database(kind: str, base: str) -> Iterator[str]:
    """A migrated, empty database: a temp SQLite file or a new PostgreSQL schema, dropped
    afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="proof-") as tmp:
            url = f"sqlite:///{tmp}/coachbot.db"
            upgrade(url)
            yield url
        return
    schema = f"proof_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        upgrade(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def plan(quick: bool, seed: int) -> list[tuple[str, Callable[[str], Result]]]:
    if quick:
        return [
            ("crash", lambda u: scenarios.crash(u, nudges=1000, kills=5, seed=seed)),
            ("faults", lambda u: scenarios.faults(u, nudges=300, seed=seed)),
            (
                "load",
                lambda u: load_scenario.load(u, nudges=1000, rate=100, seconds=5, seed=seed),
            ),
            ("consent", lambda u: scenarios.consent(u, nudges=1000, stops=10, seed=seed)),
            (
                "db_faults",
                lambda u: db_faults_scenario.db_faults(u, patients=300, posts=90, seed=seed),
            ),
            ("fuzz", lambda u: fuzz_scenarios.fuzz(u, examples=150, seed=seed)),
            ("forms", lambda u: fuzz_scenarios.forms(u, examples=250, seed=seed)),
            (
                "paging",
                lambda u: paging_scenario.paging(
                    u, nudges=1000, rate=200, seconds=5, red_flags=40, seed=seed
                ),
            ),
            (
                "suppression",
                lambda u: scenarios.suppression(u, nudges=1000, suppressed=10, seed=seed),
            ),
            ("close_watch", lambda u: caregivers.close_watch_checks(u, patients=200, seed=seed)),
        ]
    return [
        ("crash", lambda u: scenarios.crash(u, nudges=10_000, kills=20, seed=seed)),
        ("faults", lambda u: scenarios.faults(u, nudges=2000, seed=seed)),
        (
            "load",
            lambda u: load_scenario.load(u, nudges=10_000, rate=200, seconds=120, seed=seed),
        ),
        ("consent", lambda u: scenarios.consent(u, nudges=5000, stops=50, seed=seed)),
        (
            "db_faults",
            lambda u: db_faults_scenario.db_faults(u, patients=2000, posts=400, seed=seed),
        ),
        ("fuzz", lambda u: fuzz_scenarios.fuzz(u, examples=1000, seed=seed)),
        ("forms", lambda u: fuzz_scenarios.forms(u, examples=2000, seed=seed)),
        (
            "suppression",
            lambda u: scenarios.suppression(u, nudges=5000, suppressed=50, seed=seed),
        ),
        (
            "paging",
            lambda u: paging_scenario.paging(
                u, nudges=5000, rate=200, seconds=30, red_flags=200, seed=seed
            ),
        ),
        ("close_watch", lambda u: caregivers.close_watch_checks(u, patients=1000, seed=seed)),
    ]


def _fmt(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def table(rows: list[tuple[str, Result]]) -> str:
    lines = [
        "| db | scenario | tried | held | checks | numbers | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for db, r in rows:
        checks = "; ".join(f"{'ok' if ok else 'FAILED'}: {name}" for name, ok in r.checks.items())
        if r.error:
            checks = f"ERROR: {r.error}" + (f"; {checks}" if checks else "")
        numbers = "; ".join(f"{k}={_fmt(v)}" for k, v in r.numbers.items())
        held = "held" if r.held else "**BROKEN**"
        lines.append(
            f"| {db} | {r.scenario} | {r.tried} | {held} | {checks} | {numbers} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proof", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short CI version")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--only", action="append", help="run only these scenarios")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/reliability.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    # The loopback server reports every connection a killed dispatcher or a reset fault
    # dropped on stderr; that noise goes to a file, named when something broke.
    noise = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept for the whole run
        "w", prefix="proof-stderr-", suffix=".log", delete=False
    )
    real_stderr, sys.stderr = sys.stderr, noise
    started = time.monotonic()
    rows: list[tuple[str, Result]] = []
    for kind in kinds:
        for name, run in plan(args.quick, args.seed):
            if args.only and name not in args.only:
                continue
            t0 = time.monotonic()
            try:
                with fresh_database(kind, args.postgres_url) as url:
                    result = run(url)
            except Exception as exc:
                traceback.print_exc()
                result = Result(name, "(did not complete)", error=f"{type(exc).__name__}: {exc}")
            result.seconds = time.monotonic() - t0
            rows.append((kind, result))
            sys.stdout.write(f"{kind} {name}: {'held' if result.held else 'BROKEN'}\n")
            sys.stdout.flush()
    elapsed = time.monotonic() - started
    sys.stderr = real_stderr
    noise.close()
    rendered = table(rows)
    ok = all(r.held for _, r in rows)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"`python -m proof{' --quick' if args.quick else ''} --db {args.db} --seed {args.seed}`"
        f" on {platform.node()} ({platform.machine()}, Python {platform.python_version()}),"
        f" {stamp}, {elapsed:.0f} s: {'everything held' if ok else 'SOMETHING BROKE'}"
    )
    sys.stdout.write(f"\n{header}\n\n{rendered}\n")
    if not args.no_doc:
        DOC.write_text(
            "# Reliability\n\n"
            "Produced by `python -m proof` (see proof/): real dispatcher processes, the real"
            " web app and the twilio SDK against the loopback Twilio server, on a fresh SQLite"
            " file and PostgreSQL schema per scenario. Rerun it; do not edit this table.\n\n"
            f"{header}\n\n{rendered}\n",
            encoding="utf-8",
        )
    if not ok:
        sys.stdout.write(f"\ntracebacks and server noise: {noise.name}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
