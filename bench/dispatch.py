"""Dispatch benchmark: a whole cohort due at the same instant, through the real gateway.

10,000 patients in mixed time zones, one nudge each, all due at the same instant, sent by
real dispatcher processes through the real `twilio` SDK to a loopback Twilio-compatible
server (bench/fake_twilio_server.mjs under node, which shares the box's two cores with what
it measures and so must cost little; `--server python` uses tests.support.fake_twilio
processes instead), which records what it accepted. Compared, in the same run and on the
same data, with the naive design: one APScheduler 3 job per nudge in its SQLAlchemy job
store.

    .venv/bin/python -m bench.dispatch            # 10,000 nudges
    .venv/bin/python -m bench.dispatch --quick    # 2,000 nudges

Figures come from the server's record (duplicates, missed, lateness = accepted minus due),
each dispatcher's own rusage (CPU, peak RSS) and /proc (the fake's and PostgreSQL's CPU,
the whole box's busy share). Writes the `dispatch` section of docs/performance.md, with
each target's verdict and, for a rate target, its CPU budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, create_engine, insert, select, text

from bench.dispatch_processes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ROOT,
    Servers,
    Tally,
    box_cpu,
    cpu_of_command,
    pacing_accuracy,
    process_cpu,
    tally,
)
from bench.dispatch_report import section, verdicts_for
from bench.dispatch_scripts import DISPATCHER, NAIVE
from bench.report import write_section
from coachbot.db import make_engine, make_session_factory
from coachbot.migrate import upgrade
from coachbot.models import Nudge, Patient
from coachbot.services.schedules import set_pace, set_window
from coachbot.settings import Settings

FROM_NUMBER = "+16175550100"
ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Madrid",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Pacific/Honolulu",
)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclasses.dataclass
class Result:
    label: str
    nudges: int
    rate: float
    p50: float
    p99: float
    cpu_us: float
    rss_mib: float
    duplicates: int
    missed: int
    server_us: float = 0.0
    database_us: float | None = None
    box_busy: float = 0.0
    other_cores: float = 0.0
    note: str = ""
    # Distinct nudges the server accepted; fewer than `nudges` when a budget cut the run.
    reached: int = 0
    # Seconds after the due instant at which a time budget stopped the run, if it did.
    cut_at: float | None = None
    # The design's CPU from the due instant on (the naive design's job adding excluded).
    send_cpu_us: float = 0.0
    # Seconds between the moment every job/task was in place and the due instant
    # (negative: some were still being added when they fell due); None for coachbot.
    ready_margin: float | None = None

    def row(self, baseline: float | None) -> str:
        ratio = f"{self.rate / baseline:.1f}x" if baseline else "-"
        database = "in-process" if self.database_us is None else f"{self.database_us:,.0f}"
        return (
            f"| {self.label} | {self.nudges} | {self.rate:,.0f} | {self.p50:.2f} | {self.p99:.2f}"
            f" | {self.cpu_us:,.0f} | {self.server_us:,.0f} | {database}"
            f" | {self.box_busy:.0f}% | {self.other_cores:.2f} | {self.rss_mib:.0f}"
            f" | {self.duplicates} | {self.missed}"
            f" | {ratio} |"
        )


HEADER = (
    "| run | nudges | nudges/s | lateness p50 (s) | lateness p99 (s) | dispatcher CPU µs/nudge"
    " | Twilio fake CPU µs/nudge | PostgreSQL CPU µs/nudge | box CPU busy"
    " | other load (cores) | peak RSS (MiB) | duplicates | missed | vs naive |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def seed(
    url: str, count: int, due: dt.datetime, pace: float | None, max_concurrency: int = 64
) -> list[int]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    enrolled = due - dt.timedelta(days=10)
    with factory() as session, session.begin():
        session.execute(
            insert(Patient),
            [
                {
                    "first_name": f"Pat{i}",
                    "phone_e164": f"+1617{2000000 + i:07d}",
                    "timezone": ZONES[i % len(ZONES)],
                    "language": "en" if i % 5 else "es",
                    "status": "active",
                    "consent_at": enrolled,
                    "consent_method": "bench",
                    "opted_in_at": enrolled,
                    "enrolled_at": enrolled,
                    "updated_at": enrolled,
                }
                for i in range(count)
            ],
        )
        ids = list(session.scalars(select(Patient.id).order_by(Patient.id)))
        tracks = ("sleep", "exercise", "diet", "mindfulness")
        session.execute(
            insert(Nudge),
            [
                {
                    "patient_id": pid,
                    "track": tracks[pid % len(tracks)],
                    "occurrence_key": f"bench:{due:%Y-%m-%dT%H:%M:%S}",
                    "due_at": due,
                    "send_at": due,
                    "state": "planned",
                    "attempts": 0,
                    "created_at": enrolled,
                    "updated_at": enrolled,
                }
                for pid in ids
            ],
        )
    # Mixed zones put some patients in their night at any instant; the benchmark is
    # about throughput, so the window is opened to the whole day for it.
    set_window(
        factory,
        start=dt.time(0, 0),
        end=dt.time(23, 59),
        daily_cap=None,
        max_concurrency=max_concurrency,
        actor="bench",
        now=enrolled,
    )
    set_pace(factory, FROM_NUMBER, pace, actor="bench", now=enrolled)
    with factory() as session:
        nudge_ids = list(session.scalars(select(Nudge.id).order_by(Nudge.id)))
    engine.dispose()
    return nudge_ids


def settings_for(url: str, api: str) -> dict[str, Any]:
    settings = Settings(
        database_url=url,
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_base_url=api,
        twilio_timeout_seconds=10.0,
        public_base_url="http://127.0.0.1:5000",
    )
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def fresh_database(kind: str, workdir: Path, pg_url: str) -> tuple[str, Any]:
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:6]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return url, None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    upgrade(url)

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url, drop


# Time the naive design gets to import and add its jobs before they fall due: its imports
# take 1-2 s and a job ~1.4 ms to add to the SQLite job store on this box when quiet (but
# ~14 s for 10,000 when busy); the margin is for a busy box. Without it the baseline's
# lateness would include its own set-up. Each row says whether it was enough.
NAIVE_LEAD_SECONDS = 4.0
NAIVE_ADD_SECONDS = 0.0025


def naive_lead_seconds(count: int) -> float:
    return NAIVE_LEAD_SECONDS + count * NAIVE_ADD_SECONDS


@dataclasses.dataclass
class Meters:
    """CPU readings taken at a run's start; `since` turns them into what the run used.
    `command` names the store's processes whose CPU counts (PostgreSQL's here, Redis's for
    bench.celery_baseline's broker)."""

    fake: Servers
    command: str = "postgres"
    server: float = 0.0
    database: float = 0.0
    busy: float = 0.0
    total: float = 0.0
    wall: float = 0.0

    def start(self) -> Meters:
        self.server = sum(process_cpu(p.pid) for p in self.fake.procs)
        self.database = cpu_of_command(self.command)
        self.busy, self.total = box_cpu()
        self.wall = time.monotonic()
        return self

    def since(self) -> tuple[float, float, float, float, float]:
        """(server CPU, database CPU, box busy, box total, wall) seconds since `start`."""
        busy, total = box_cpu()
        return (
            sum(process_cpu(p.pid) for p in self.fake.procs) - self.server,
            cpu_of_command(self.command) - self.database,
            busy - self.busy,
            total - self.total,
            time.monotonic() - self.wall,
        )


def run_case(
    label: str,
    kind: str,
    processes: int,
    count: int,
    workdir: Path,
    pg_url: str,
    servers: int,
    *,
    server_kind: str = "node",
    naive: bool = False,
    pace: float | None = None,
    latency_ms: float = 0.0,
    max_concurrency: int = 64,
    lead_seconds: float = 2.5,
    budget_seconds: float | None = None,
) -> tuple[Result, list[dict[str, Any]], float]:
    """One run: seed, start the server, start the dispatchers (or the naive scheduler),
    wait for them. `lead_seconds` is the time between their start and the due instant
    (imports; for the naive design also adding its jobs). With `budget_seconds`, a run
    still going that long after the due instant is stopped (SIGTERM; the naive script
    reports and exits) and only what the server accepted by then counts."""
    url, cleanup = fresh_database(kind, workdir, pg_url)
    fake = Servers(servers, workdir, server_kind, latency_ms)
    try:
        due = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=4)
        ids = seed(url, count, due, pace, max_concurrency)
        api = fake.start()
        payload: dict[str, Any] = {"settings": settings_for(url, api)}
        if naive:
            jobstore = workdir / f"jobs-{uuid.uuid4().hex[:6]}.db"
            payload |= {"ids": ids, "jobstore_url": f"sqlite:///{jobstore}"}
            if kind == "postgresql":
                payload["jobstore_url"] = url
        # Give the dispatchers time to import before the due instant.
        due_ts = max(due.timestamp(), time.time() + lead_seconds)
        payload["due"] = due_ts
        move_due(url, due_ts)
        meters = Meters(fake).start()
        procs = _start(NAIVE if naive else DISPATCHER, payload, 1 if naive else processes)
        deadline = None if budget_seconds is None else due_ts + budget_seconds
        stats, cut = _wait(label, procs, deadline)
        used = meters.since()
        rows = fake.stop()
    finally:
        fake.kill()
        if cleanup is not None:
            cleanup()
    if cut and deadline is not None:
        # What was in flight when the budget ran out does not count.
        rows = [r for r in rows if r["at"] <= deadline]
    counted = tally(rows, ids, due_ts)
    result = _result(label, kind, count, counted, stats, used, naive=naive, due_ts=due_ts)
    result.cut_at = budget_seconds if cut else None
    return result, rows, due_ts


def move_due(url: str, due_ts: float) -> None:
    """The nudges were seeded for a first guess at `due`; move them to the instant the run
    actually uses."""
    engine = make_engine(url)
    with engine.begin() as conn:
        new_due = dt.datetime.fromtimestamp(due_ts, dt.UTC)
        conn.execute(cast(Table, Nudge.__table__).update().values(due_at=new_due, send_at=new_due))
    engine.dispose()


def _start(script: str, payload: dict[str, Any], count: int) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(payload)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def _wait(
    label: str, procs: list[subprocess.Popen[str]], deadline: float | None
) -> tuple[list[dict[str, Any]], bool]:
    """Each process's closing report, and whether the budget cut the run (SIGTERM)."""
    outs = []
    cut = False
    for proc in procs:
        try:
            wait = 900.0 if deadline is None else max(0.1, deadline - time.time())
            outs.append(proc.communicate(timeout=wait))
        except subprocess.TimeoutExpired:
            cut = True
            proc.send_signal(signal.SIGTERM)
            outs.append(proc.communicate(timeout=60))
    for proc, (_out, err) in zip(procs, outs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"{label}: dispatcher failed: {err[-2000:]}")
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs], cut


def _result(
    label: str,
    kind: str,
    count: int,
    counted: Tally,
    stats: list[dict[str, Any]],
    used: tuple[float, float, float, float, float],
    *,
    naive: bool,
    due_ts: float,
) -> Result:
    server_cpu, database_cpu, busy, total, wall = used
    cpu = sum(s["cpu"] for s in stats)
    return Result(
        label=label,
        nudges=count,
        rate=counted.rate,
        p50=counted.p50,
        p99=counted.p99,
        cpu_us=cpu / count * 1e6,
        rss_mib=max(s["rss_kib"] for s in stats) / 1024,
        duplicates=counted.duplicates,
        missed=counted.missed,
        server_us=server_cpu / count * 1e6,
        # PostgreSQL's own CPU over the run (every backend, including other sessions' on
        # a shared box); SQLite runs inside the dispatcher and is part of its CPU.
        database_us=database_cpu / count * 1e6 if kind == "postgresql" else None,
        box_busy=busy / total * 100 if total > 0 else 0.0,
        # Whatever else ran on the box meanwhile (other sessions' tests, say), in cores.
        other_cores=max(
            0.0,
            busy
            - sum(s["cpu_total"] for s in stats)
            - server_cpu
            - (database_cpu if kind == "postgresql" else 0.0),
        )
        / wall,
        reached=counted.reached,
        cut_at=None,
        # The naive script's CPU includes adding its jobs (before the due instant).
        send_cpu_us=(cpu - sum(s.get("cpu_add", 0.0) for s in stats))
        / max(counted.reached, 1)
        * 1e6,
        ready_margin=due_ts - stats[0]["added_at"] if naive else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 nudges instead of 10,000")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument(
        "--server",
        choices=("node", "python"),
        default="node",
        help="node: bench/fake_twilio_server.mjs; python: tests.support.fake_twilio processes",
    )
    parser.add_argument("--servers", type=int, default=2, help="python fake processes")
    parser.add_argument("--pace", type=float, default=100.0, help="segments/s for the cap run")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--no-write", action="store_true", help="do not touch performance.md")
    args = parser.parse_args(argv)
    count = args.count or (2000 if args.quick else 10_000)
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cases = [
            ("SQLite, 1 process", "sqlite", 1, False),
            ("PostgreSQL, 1 process", "postgresql", 1, False),
            ("PostgreSQL, 2 processes", "postgresql", 2, False),
            ("naive: APScheduler job per nudge (SQLite job store)", "sqlite", 1, True),
        ]
        results: list[Result] = []
        print(HEADER, flush=True)
        for label, kind, procs, naive in cases:
            result, _, _ = run_case(
                label,
                kind,
                procs,
                count,
                workdir,
                args.postgres,
                args.servers,
                server_kind=args.server,
                naive=naive,
                lead_seconds=naive_lead_seconds(count) if naive else 2.5,
            )
            if result.ready_margin is not None:
                # Negative: jobs were still being added when they fell due (see the lead).
                result.label += f" (jobs in place {result.ready_margin:.1f} s before due)"
            results.append(result)
            print(result.row(None), flush=True)
        # About eight seconds of sending at the cap: long enough to measure the rate.
        pace_count = int(args.pace * 6)
        paced, rows, _ = run_case(
            f"SQLite, 1 process, capped at {args.pace:g} segments/s",
            "sqlite",
            1,
            pace_count,
            workdir,
            args.postgres,
            args.servers,
            server_kind=args.server,
            pace=args.pace,
        )
        measured, error = pacing_accuracy(rows, args.pace)
    baseline = results[-1].rate
    lines = [HEADER, *(r.row(baseline) for r in results), paced.row(baseline)]
    pacing_line = (
        f"Pacing: configured {args.pace:g} segments/s, measured at the server"
        f" {measured:.1f} segments/s ({error:+.2f}%)."
    )
    output = "\n".join([*lines, "", pacing_line])
    print()
    print(output)
    verdicts = verdicts_for(results, paced, error, cores)
    print()
    print("\n".join(verdicts))
    if not args.no_write:
        write_section(
            "dispatch", section(args.server, args.servers, args.quick, count, output, verdicts)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
