"""The webhook benchmark's two load generators: `wrk` in a closed loop for throughput (its
Lua script, built here from the pre-signed requests, and its output parsed), and an open
loop at a fixed rate for latency, which times each request from its scheduled send so a
stalled server cannot hide behind a waiting generator (no coordinated omission)."""

from __future__ import annotations

import http.client
import multiprocessing as mp
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.webhook_cohort import PATH


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
