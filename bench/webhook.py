"""Benchmark: the signed inbound webhook under gunicorn against a bare Flask endpoint.

Both apps run under the same gunicorn settings (2 sync workers, loopback). For each database
(SQLite file, and PostgreSQL when BENCH_POSTGRES_URL or TEST_DATABASE_URL is set):

1. throughput: `wrk` (C, closed loop) posts pre-signed inbound replies, each with its own
   MessageSid, as fast as the server answers; the same run against the bare endpoint is the
   ceiling.
2. latency: an open-loop generator offers a fixed 500 requests/s for a few seconds; latency is
   measured from each request's scheduled send time, so a stall is not hidden by the
   generator waiting for it (no coordinated omission).
3. accounting: every request that left the generator must be a stored inbound row
   (0 lost), and every answer must be a 200 (0 errors).

Run: .venv/bin/python -m bench.webhook [--quick]. Prints the figures and writes section
`webhook` of docs/performance.md.

Its pieces: bench/webhook_cohort.py (the database, the seeded patients, the signed
requests), bench/webhook_load.py (wrk and the open loop), bench/webhook_ceilings.py (the two
ceiling apps gunicorn loads).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.report import machine_line, write_section
from bench.webhook_cohort import (
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    database,
    forget_inbound,
    seed,
    signed_request,
    stored_rows,
)
from bench.webhook_load import OpenLoopResult, WrkResult, run_open_loop, run_wrk, wrk_script

ROOT = Path(__file__).resolve().parent.parent
RATE = 500


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app_spec,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn {app_spec} did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the run --------------------------------------------------------------------------------


@dataclass
class DbFigures:
    name: str
    bare: WrkResult
    hook: WrkResult
    bare_latency: OpenLoopResult
    insert: WrkResult
    insert_latency: OpenLoopResult
    hook_latency: OpenLoopResult
    stored: int
    expected: int


def measure(kind: str, url: str, seconds: int, latency_seconds: int) -> DbFigures:
    seed(url)
    rng = random.Random(4)
    pool = [signed_request(rng) for _ in range(60_000 if seconds > 5 else 20_000)]
    workdir = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    script = workdir / "inbound.lua"
    wrk_script(script, pool)
    env = {
        "DATABASE_URL": url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SMS_BACKEND": "console",
    }
    open_loop = [signed_request(rng) for _ in range(RATE * latency_seconds)]
    try:
        with gunicorn("bench.webhook_ceilings:bare_app()", env) as port:
            run_wrk(port, script, 2, 1, 4)  # warm-up
            bare = run_wrk(port, script, seconds, 2, 8)
            bare_latency = run_open_loop(port, open_loop, RATE)
        with gunicorn("bench.webhook_ceilings:signed_insert_app()", env) as port:
            # No warm-up, as for the webhook: a repeated MessageSid would be a duplicate.
            insert_ceiling = run_wrk(port, script, seconds, 2, 8)
            insert_latency = run_open_loop(port, open_loop, RATE)
        forget_inbound(url)
        with gunicorn("coachbot.app:create_app()", env) as port:
            hook = run_wrk(port, script, seconds, 2, 8)
            hook_latency = run_open_loop(port, open_loop, RATE)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Rows that must exist: every request answered 200. wrk may cut up to one in-flight
    # request per connection at the end; those can be stored without being counted.
    expected = hook.ok + hook_latency.sent - hook_latency.non200 - hook_latency.errors
    if max(hook.sent, insert_ceiling.sent) > len(pool):
        raise RuntimeError("the request pool wrapped: MessageSids repeated; enlarge it")
    return DbFigures(
        kind,
        bare,
        hook,
        bare_latency,
        insert_ceiling,
        insert_latency,
        hook_latency,
        stored_rows(url),
        expected,
    )


def errors_of(wrk: WrkResult, latency: OpenLoopResult) -> int:
    return wrk.non2xx + wrk.errors + latency.non200 + latency.errors


def summary_line(f: DbFigures) -> str:
    return (
        f"{f.name}: bare {f.bare.rps:.0f} req/s, signed+INSERT {f.insert.rps:.0f} req/s,"
        f" webhook {f.hook.rps:.0f} req/s (ratio to bare {f.hook.rps / f.bare.rps:.2f},"
        f" to signed+INSERT {f.hook.rps / f.insert.rps:.2f}); at {RATE} req/s p50/p99/max:"
        f" webhook {f.hook_latency.p50_ms:.1f}/{f.hook_latency.p99_ms:.1f}/"
        f"{f.hook_latency.max_ms:.0f} ms, signed+INSERT {f.insert_latency.p50_ms:.1f}/"
        f"{f.insert_latency.p99_ms:.1f}/{f.insert_latency.max_ms:.0f} ms, bare"
        f" {f.bare_latency.p50_ms:.1f}/{f.bare_latency.p99_ms:.1f}/{f.bare_latency.max_ms:.0f} ms;"
        f" webhook wrk non-2xx {f.hook.non2xx} socket errors {f.hook.errors},"
        f" open-loop non-200 {f.hook_latency.non200} errors {f.hook_latency.errors};"
        f" signed+INSERT errors {errors_of(f.insert, f.insert_latency)};"
        f" answered 200 {f.expected} stored {f.stored}"
    )


def report(figures: list[DbFigures], quick: bool) -> str:
    lines = [
        machine_line(),
        "",
        "gunicorn, 2 sync workers, loopback, the same settings for all three apps. Throughput:"
        f" `wrk -t2 -c8` for {'5' if quick else '15'} s, pre-signed inbound replies with unique"
        " MessageSids from 3,000 patients with open nudges. Latency: open loop at"
        f" {RATE} req/s for {'4' if quick else '10'} s, measured from each request's scheduled"
        " time. Ceilings: *bare* parses the form and answers empty TwiML (the issue's ceiling);"
        " *signed+INSERT* checks the Twilio signature and INSERTs the inbound row in its own"
        " transaction (what any inbound must cost)." + (" (--quick run)" if quick else ""),
        "",
        "| database | bare req/s | signed+INSERT req/s | webhook req/s |"
        " ratio to bare (target >= 0.75) | ratio to signed+INSERT |"
        " webhook p50 / p99 / max at 500 req/s (target p99 <= 10 ms) |"
        " signed+INSERT p99 | bare p99 | errors | answered 200 | stored | lost |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.name} | {f.bare.rps:.0f} | {f.insert.rps:.0f} | {f.hook.rps:.0f} |"
            f" {f.hook.rps / f.bare.rps:.2f} | {f.hook.rps / f.insert.rps:.2f} |"
            f" {f.hook_latency.p50_ms:.1f} / {f.hook_latency.p99_ms:.1f} /"
            f" {f.hook_latency.max_ms:.0f} ms | {f.insert_latency.p99_ms:.1f} ms |"
            f" {f.bare_latency.p99_ms:.1f} ms | {errors_of(f.hook, f.hook_latency)} |"
            f" {f.expected} | {f.stored} | {max(f.expected - f.stored, 0)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--notes", metavar="PATH", help="markdown appended to the section (method, analysis)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install -y wrk")
    seconds, latency_seconds = (5, 4) if args.quick else (15, 10)
    pg_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_DATABASE_URL")
    kinds = ["sqlite"] + (["postgresql"] if pg_url else [])
    figures = []
    for kind in kinds:
        with database(kind, pg_url) as url:
            figures.append(measure(kind, url, seconds, latency_seconds))
            print(summary_line(figures[-1]), flush=True)
    markdown = report(figures, args.quick)
    print(markdown)
    if args.no_write:
        return
    notes = Path(args.notes).read_text() if args.notes else ""
    write_section(
        "webhook",
        "## Webhook\n\n"
        + markdown
        + "\n\nRaw output:\n\n```\n"
        + "\n".join(summary_line(f) for f in figures)
        + "\n```\n"
        + (f"\n{notes.strip()}\n" if notes else ""),
    )


if __name__ == "__main__":
    main()
