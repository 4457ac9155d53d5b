"""The Twilio appointment-reminder sample's design, for bench.compare: one Celery task per
reminder, scheduled with an ETA (`send_sms_reminder.apply_async(args=[id], eta=...)`),
a Redis broker and result backend, a prefork worker.

Each task does what the sample's does, on coachbot's data: load its nudge from the
database, render, send with the twilio SDK's sync client, record the result; it is the
same job as the naive APScheduler design's (bench.baseline_job), so only the scheduling
differs. The worker is a real `celery worker` process, prefork pool, concurrency = the
machine's CPU count (Celery's default), log level WARNING (the sample runs INFO, whose
two log lines per task would only cost Celery more).

This module is both the Celery app the worker loads (`celery -A bench.celery_baseline`,
configured through BENCH_CELERY_* environment variables) and the harness that runs one
case (`run_celery_case`).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_process_init

from bench.baseline_job import send_one
from bench.dispatch import Meters, Result, fresh_database, move_due, seed, settings_for
from bench.dispatch_processes import ROOT, Servers, Tally, process_cpu, tally
from coachbot.runtime import Runtime, build_runtime
from coachbot.settings import Settings

# A database of its own on the box's Redis, flushed at the start of every run.
BROKER_URL = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/15")
QUEUE = "celery"

app = Celery("coachbot_bench", broker=BROKER_URL, backend=BROKER_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    enable_utc=True,
    broker_connection_retry_on_startup=True,
)

_runtime: Runtime | None = None


# celery ships no type information, so its decorators are untyped.
@worker_process_init.connect  # type: ignore[untyped-decorator]
def _build_runtime(**_kwargs: Any) -> None:
    # Each pool process opens its own engine and HTTP connection pool once, when the
    # worker starts (a forked SQLite connection or requests session must not be shared),
    # so the first due tasks do not pay for it.
    global _runtime
    settings = os.environ.get("BENCH_CELERY_SETTINGS")
    if settings:
        _runtime = build_runtime(Settings(**json.loads(settings)))


@app.task(name="bench.send_reminder")  # type: ignore[untyped-decorator]
def send_reminder(nudge_id: int) -> None:
    if _runtime is None:
        raise RuntimeError("worker started without BENCH_CELERY_SETTINGS")
    send_one(_runtime, nudge_id)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (the worker and its pool processes), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def tree_cpu(pid: int) -> float:
    return sum(process_cpu(p) for p in _tree(pid))


def tree_peak_rss_kib(pid: int) -> int:
    peak = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak


def _server_count(api: str) -> int:
    """Distinct nudges the server has accepted so far."""
    host, port = api.rsplit("/", 1)[-1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/__stats")
        return int(json.loads(conn.getresponse().read())["distinct_nudges"])
    finally:
        conn.close()


def _wait_ready(hostname: str, worker: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"celery worker exited: {worker.communicate()[1][-2000:]}")
        replies = app.control.ping(destination=[hostname], timeout=0.5)
        if any(hostname in reply for reply in replies):
            return
    raise RuntimeError("celery worker did not answer a ping within a minute")


def _stop(worker: subprocess.Popen[str]) -> str:
    """Cold shutdown (SIGQUIT): the run is measured already, and tasks still held by a
    cut run need not be handed back."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGQUIT)
    try:
        _out, err = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        _out, err = worker.communicate()
    return err


def run_celery_case(
    label: str,
    count: int,
    workdir: Path,
    *,
    latency_ms: float = 0.0,
    budget_seconds: float | None = None,
    concurrency: int | None = None,
    enqueue_us_per_task: float = 1800.0,
) -> tuple[Result, list[dict[str, Any]], float]:
    """One run of the Celery design on a fresh SQLite database: start the worker, queue
    one ETA task per nudge, all due at one instant, and wait until the server has every
    nudge or `budget_seconds` have passed since the due instant.

    The due instant leaves `enqueue_us_per_task` per task (plus two seconds) for queueing
    the tasks and the worker fetching them, as a sample's reminders are queued well before
    they are due; whether that held is reported (Result.ready_margin)."""
    concurrency = concurrency or os.cpu_count() or 1
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    url, _cleanup = fresh_database("sqlite", workdir, "")
    fake = Servers(1, workdir, "node", latency_ms)
    worker: subprocess.Popen[str] | None = None
    try:
        placeholder = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        ids = seed(url, count, placeholder, None)
        api = fake.start()
        hostname = f"bench-{uuid.uuid4().hex[:8]}@localhost"
        worker = _start_worker(url, api, hostname, concurrency)
        _wait_ready(hostname, worker)
        due_ts = time.time() + 2.0 + count * enqueue_us_per_task / 1e6
        ready_at = _queue_tasks(url, ids, due_ts, broker)
        time.sleep(max(0.0, due_ts - time.time()))
        deadline = None if budget_seconds is None else due_ts + budget_seconds
        run = _measure(label, worker, fake, api, count, deadline)
        errors = _stop(worker)
        rows = fake.stop()
    finally:
        _clean_up(worker, fake, broker)
    if run.cut and deadline is not None:
        rows = [r for r in rows if r["at"] <= deadline]
    counted = tally(rows, ids, due_ts)
    result = _result(label, count, counted, run, errors)
    result.cut_at = budget_seconds if run.cut else None
    result.ready_margin = due_ts - ready_at
    return result, rows, due_ts


def _start_worker(url: str, api: str, hostname: str, concurrency: int) -> subprocess.Popen[str]:
    """A real `celery worker` on this module's app, its pool processes given the run's
    settings (database, loopback API) through BENCH_CELERY_SETTINGS."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_CELERY_BROKER": BROKER_URL,
        "BENCH_CELERY_SETTINGS": json.dumps(settings_for(url, api)),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_baseline",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--hostname",
            hostname,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _queue_tasks(url: str, ids: list[int], due_ts: float, broker: redis.Redis) -> float:
    """Moves the nudges to the due instant, queues one ETA task each and waits until the
    worker has fetched them all; returns when that was (time.time())."""
    move_due(url, due_ts)
    due = dt.datetime.fromtimestamp(due_ts, dt.UTC)
    for nudge_id in ids:
        send_reminder.apply_async(args=[nudge_id], eta=due)
    # The worker has every task once the queue is empty (the Redis transport moves a
    # fetched message to its unacked hash; an ETA task waits in the worker's timer).
    while broker.llen(QUEUE) and time.time() < due_ts + 60:
        time.sleep(0.05)
    return time.time()


@dataclass
class _WorkerRun:
    """What one run used from the due instant on, in seconds, and whether the budget cut
    it."""

    worker_cpu: float
    server_cpu: float
    broker_cpu: float
    busy: float
    total: float
    wall: float
    rss_kib: int
    cut: bool


def _measure(
    label: str,
    worker: subprocess.Popen[str],
    fake: Servers,
    api: str,
    count: int,
    deadline: float | None,
) -> _WorkerRun:
    """From the due instant: waits until the server has every nudge (or `deadline`), and
    reads the CPU the worker's process tree, the server, Redis and the box used meanwhile."""
    cpu0 = tree_cpu(worker.pid)
    meters = Meters(fake, "redis-server").start()
    cut = False
    while _server_count(api) < count:
        if worker.poll() is not None:
            raise RuntimeError(f"{label}: celery worker died: {_stop(worker)[-2000:]}")
        if deadline is not None and time.time() >= deadline:
            cut = True
            break
        time.sleep(0.25)
    worker_cpu = tree_cpu(worker.pid) - cpu0
    server_cpu, broker_cpu, busy, total, wall = meters.since()
    return _WorkerRun(
        worker_cpu, server_cpu, broker_cpu, busy, total, wall, tree_peak_rss_kib(worker.pid), cut
    )


def _clean_up(worker: subprocess.Popen[str] | None, fake: Servers, broker: redis.Redis) -> None:
    """Whatever happened: no worker or server left behind, and the broker's database empty."""
    if worker is not None and worker.poll() is None:
        worker.kill()
        worker.wait()
    fake.kill()
    broker.flushdb()
    broker.close()


def _result(label: str, count: int, counted: Tally, run: _WorkerRun, errors: str) -> Result:
    failures = errors.count("Task bench.send_reminder[")
    reached = max(counted.reached, 1)
    notes = [f"Redis {run.broker_cpu / reached * 1e6:,.0f} µs/nudge"]
    if failures:
        notes.append(f"{failures} task failures logged")
    return Result(
        label=label,
        nudges=count,
        rate=counted.rate,
        p50=counted.p50,
        p99=counted.p99,
        cpu_us=run.worker_cpu / reached * 1e6,
        rss_mib=run.rss_kib / 1024,
        duplicates=counted.duplicates,
        missed=counted.missed,
        server_us=run.server_cpu / reached * 1e6,
        box_busy=run.busy / run.total * 100 if run.total > 0 else 0.0,
        # Whatever else ran on the box meanwhile (other sessions' work), in cores.
        other_cores=max(0.0, run.busy - run.worker_cpu - run.server_cpu - run.broker_cpu)
        / run.wall,
        note="; ".join(notes),
        reached=counted.reached,
        send_cpu_us=run.worker_cpu / reached * 1e6,
    )
