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
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlencode

from sqlalchemy import Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from bench.report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105  (a local throwaway token)
PUBLIC_BASE_URL = "https://coach.bench.test"
PATH = "/sms/inbound"
PATIENTS = 3000
BODIES = ["done", "skip", "7", "7.5h", "25 min", "about 20 minutes", "👍", "listo", "Done!", "3"]
RATE = 500


def bare_app():  # type: ignore[no-untyped-def]
    """The ceiling: Flask parses the form and answers empty TwiML, nothing else."""
    from flask import Flask, Response, request

    app = Flask("bare")

    @app.post(PATH)
    def inbound() -> Response:
        request.form.get("MessageSid")
        return Response(
            '<?xml version="1.0" encoding="UTF-8"?><Response />', mimetype="application/xml"
        )

    return app


def signed_insert_app():  # type: ignore[no-untyped-def]
    """A fairer ceiling: what every inbound must cost whatever the pipeline does. The real
    signature check, then one INSERT of the inbound row in its own transaction, through the
    project's engine set-up (WAL and BEGIN IMMEDIATE on SQLite, the pool on PostgreSQL)."""
    from flask import Flask, Response, request
    from sqlalchemy import insert

    from coachbot.db import make_engine
    from coachbot.models import InboundMessage
    from coachbot.web.signature import is_valid_twilio_request

    app = Flask("signed_insert")
    engine = make_engine(os.environ["DATABASE_URL"])
    statement = insert(InboundMessage)
    empty = '<?xml version="1.0" encoding="UTF-8"?><Response />'

    @app.post(PATH)
    def inbound() -> Response:
        if not is_valid_twilio_request(AUTH_TOKEN, PUBLIC_BASE_URL, request):
            return Response("forbidden", status=403)
        import datetime as dt

        with engine.begin() as connection:
            connection.execute(
                statement,
                {
                    "provider_sid": request.form["MessageSid"],
                    "from_e164": request.form["From"],
                    "to_e164": request.form["To"],
                    "body": request.form["Body"],
                    "num_media": 0,
                    "is_proxy": False,
                    "received_at": dt.datetime.now(dt.UTC),
                    "response_twiml": empty,
                },
            )
        return Response(empty, mimetype="application/xml")

    return app


# --- database -------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, pg_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
        try:
            yield f"sqlite:///{directory}/coachbot.db"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    assert pg_url is not None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = (
        make_url(pg_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def phone(i: int) -> str:
    return f"+1617{5550000 + i:07d}"


def seed(url: str) -> None:
    import datetime as dt

    from coachbot.migrate import upgrade
    from coachbot.models import Nudge, Patient

    upgrade(url)
    engine = create_engine(url)
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        for i in range(PATIENTS):
            patient = Patient(
                first_name="Bench",
                phone_e164=phone(i),
                timezone="America/New_York",
                language="en",
                status="active",
                consent_at=now,
                consent_method="bench",
                opted_in_at=now,
                enrolled_at=now,
                updated_at=now,
            )
            session.add(patient)
            session.flush()
            for track in ("sleep", "exercise", "diet"):
                session.add(
                    Nudge(
                        patient_id=patient.id,
                        track=track,
                        occurrence_key=f"{track}:bench",
                        due_at=now,
                        send_at=now,
                        state="sent",
                        sent_at=now - dt.timedelta(minutes=1),
                        reply_window_ends_at=now + dt.timedelta(hours=6),
                        created_at=now,
                        updated_at=now,
                    )
                )
        session.commit()
    engine.dispose()


def forget_inbound(url: str) -> None:
    """The ceiling runs posted the same MessageSids the webhook will: start it afresh."""
    from coachbot.models import InboundMessage

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(cast(Table, InboundMessage.__table__).delete())
    engine.dispose()


def stored_rows(url: str) -> int:
    from coachbot.models import InboundMessage

    engine = create_engine(url)
    with Session(engine) as session:
        count = int(session.scalar(select(func.count()).select_from(InboundMessage)) or 0)
    engine.dispose()
    return count


# --- requests -------------------------------------------------------------------------------


def signed_request(rng: random.Random) -> tuple[str, str]:
    """(form body, signature) for one inbound reply with a fresh MessageSid."""
    sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": phone(rng.randrange(PATIENTS)),
        "To": "+16175550100",
        "Body": rng.choice(BODIES),
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + PATH, params)
    return urlencode(params), str(signature)


def wrk_script(path: Path, requests: list[tuple[str, str]]) -> None:
    def lua(s: str) -> str:
        return "[==[" + s + "]==]"

    lines = ["local reqs = {"]
    lines += [f"  {{{lua(body)}, {lua(sig)}}}," for body, sig in requests]
    lines.append("}")
    lines.append(
        f"""
local count = #reqs
local threads = {{}}
-- Globals, not locals: thread:set and thread:get reach only a thread's globals.
id, n, nthreads = 0, 0, 1
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads - 1)
end
function init(args)
  nthreads = tonumber(args[1])
end
function request()
  local index = (n * nthreads + id) % count + 1
  n = n + 1
  local r = reqs[index]
  return wrk.format("POST", "{PATH}", {{
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = r[2],
  }}, r[1])
end
function response(status, headers, body)
  if status == 200 then ok = (ok or 0) + 1 end
end
function done(summary, latency, requests)
  local sent, answered = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("n")
    answered = answered + (t:get("ok") or 0)
  end
  io.write(string.format("BENCH sent=%d completed=%d ok=%d non2xx=%d errors=%d\\n",
    sent, summary.requests, answered, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""
    )
    path.write_text("\n".join(lines))


@dataclass
class WrkResult:
    rps: float
    sent: int
    completed: int
    ok: int
    non2xx: int
    errors: int


def run_wrk(port: int, script: Path, seconds: int, threads: int, connections: int) -> WrkResult:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{PATH}",
            "--",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = next(float(line.split()[1]) for line in out.splitlines() if "Requests/sec" in line)
    bench_line = next(line for line in out.splitlines() if line.startswith("BENCH"))
    fields = dict(part.split("=") for part in bench_line.split()[1:])
    return WrkResult(
        rps,
        int(fields["sent"]),
        int(fields["completed"]),
        int(fields["ok"]),
        int(fields["non2xx"]),
        int(fields["errors"]),
    )


def _open_loop_worker(
    port: int,
    requests: list[tuple[str, str]],
    start: float,
    interval: float,
    offset: int,
    stride: int,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for k in range(offset, len(requests), stride):
        scheduled = start + k * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        body, signature = requests[k]
        try:
            connection.request(
                "POST",
                PATH,
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            )
            response = connection.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies.append(time.perf_counter() - scheduled)
    out.put((latencies, statuses, errors))


@dataclass
class OpenLoopResult:
    offered: float
    sent: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    non200: int
    errors: int


def run_open_loop(port: int, requests: list[tuple[str, str]], rate: int) -> OpenLoopResult:
    """`rate` requests/s from 2 processes x 12 threads, each request at its scheduled time."""
    processes, threads = 2, 12
    stride = processes * threads
    start = time.perf_counter() + 0.5
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    ctx = mp.get_context("fork")

    def process_main(first: int) -> None:
        workers = [
            threading.Thread(
                target=_open_loop_worker,
                args=(port, requests, start, 1 / rate, first + t, stride, queue),
            )
            for t in range(0, threads * processes, processes)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    procs = [ctx.Process(target=process_main, args=(p,)) for p in range(processes)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    for _ in range(stride):
        lat, st, err = queue.get(timeout=120)
        latencies += lat
        for code, n in st.items():
            statuses[code] = statuses.get(code, 0) + n
        errors += err
    for p in procs:
        p.join()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return OpenLoopResult(
        offered=rate,
        sent=len(latencies),
        p50_ms=q[49] * 1000,
        p99_ms=q[98] * 1000,
        max_ms=latencies[-1] * 1000,
        non200=sum(n for code, n in statuses.items() if code != 200),
        errors=errors,
    )


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
        with gunicorn("bench.webhook:bare_app()", env) as port:
            run_wrk(port, script, 2, 1, 4)  # warm-up
            bare = run_wrk(port, script, seconds, 2, 8)
            bare_latency = run_open_loop(port, open_loop, RATE)
        with gunicorn("bench.webhook:signed_insert_app()", env) as port:
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
