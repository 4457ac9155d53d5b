"""What a dispatch benchmark run measures besides itself: CPU seconds from /proc (one
process, every process of a name, the whole box), the loopback Twilio servers it sends
to, and what their record says (`tally`, `pacing_accuracy`)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "d4" * 16
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105  (loopback fake only)


def _ticks_to_seconds(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of one process, from /proc (0 once it is gone); with
    `reaped_children`, plus that of its children that have exited (PostgreSQL backends
    end with their connections, and their time then shows only in the postmaster's)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return _ticks_to_seconds(ticks)


def cpu_of_command(name: str) -> float:
    """CPU seconds used so far by every live process called `name` (PostgreSQL's backends)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() != name:
                    continue
        except OSError:
            continue
        total += process_cpu(int(entry), reaped_children=True)
    return total


def box_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every core summed."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return _ticks_to_seconds(sum(values) - idle), _ticks_to_seconds(sum(values))


class Servers:
    """Loopback Twilio server processes sharing one port; their records on stop.

    `node`: one bench/fake_twilio_server.mjs process (an event loop, keep-alive, ~tens of µs
    per request). `python`: tests.support.fake_twilio processes (a thread per connection),
    the test suite's server, kept for comparison. Either way the server, not the
    dispatcher, says what was accepted."""

    def __init__(
        self, count: int, workdir: Path, kind: str = "node", latency_ms: float = 0.0
    ) -> None:
        if latency_ms and kind != "node":
            raise ValueError("injected latency needs the node server")
        self.count = 1 if kind == "node" else count
        self.kind = kind
        self.latency_ms = latency_ms
        self.workdir = workdir
        self.procs: list[subprocess.Popen[str]] = []
        self.records: list[Path] = []
        self.port = 0
        self.url = ""

    def _command(self, index: int) -> list[str]:
        if self.kind == "node":
            return [
                "node",
                str(ROOT / "bench" / "fake_twilio_server.mjs"),
                "--port",
                "0",
                "--account-sid",
                ACCOUNT_SID,
                "--auth-token",
                AUTH_TOKEN,
                "--latency-ms",
                f"{self.latency_ms:g}",
            ]
        record = self.workdir / f"server-{uuid.uuid4().hex[:6]}-{index}.jsonl"
        self.records.append(record)
        return [
            sys.executable,
            "-m",
            "tests.support.fake_twilio",
            "--port",
            str(self.port),
            "--account-sid",
            ACCOUNT_SID,
            "--auth-token",
            AUTH_TOKEN,
            "--reuse-port",
            "--record",
            str(record),
        ]

    def start(self) -> str:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        for index in range(self.count):
            proc = subprocess.Popen(
                self._command(index), cwd=ROOT, stdout=subprocess.PIPE, text=True
            )
            assert proc.stdout is not None
            # The server prints its URL once it listens.
            self.url = proc.stdout.readline().strip()
            self.procs.append(proc)
        return self.url

    def stop(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if self.kind == "node":
            import http.client

            conn = http.client.HTTPConnection(
                "127.0.0.1", int(self.url.rsplit(":", 1)[1]), timeout=60
            )
            try:
                conn.request("GET", "/__records")
                rows = json.loads(conn.getresponse().read())
            finally:
                conn.close()
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=60)
        for record in self.records:
            if record.exists():
                rows.extend(json.loads(line) for line in record.read_text().splitlines())
        return rows

    def kill(self) -> None:
        """Kills any server still running: a failed run must not leave its server behind."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def make_servers(kind: str, count: int, workdir: Path) -> Servers:
    return Servers(count, workdir, kind)


@dataclasses.dataclass
class Tally:
    """What the server's record says of a run: each nudge is identified by the nudge id in
    its StatusCallback, lateness is the server's accept time minus the due instant."""

    reached: int
    rate: float
    p50: float
    p99: float
    duplicates: int
    missed: int


def tally(rows: list[dict[str, Any]], ids: list[int], due_ts: float) -> Tally:
    per_nudge = Counter(r["nudge"] for r in rows)
    lateness = sorted(r["at"] - due_ts for r in rows)
    last = max(lateness) if lateness else 0.0
    return Tally(
        reached=len(per_nudge),
        # Nudges over the last accept: the rate at which the whole cohort went out.
        rate=len(per_nudge) / last if last > 0 else 0.0,
        p50=statistics.median(lateness) if lateness else 0.0,
        p99=lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))] if lateness else 0.0,
        duplicates=sum(n - 1 for n in per_nudge.values() if n > 1),
        missed=sum(1 for i in ids if str(i) not in per_nudge),
    )


def pacing_accuracy(rows: list[dict[str, Any]], configured: float) -> tuple[float, float]:
    """Segments per second the server saw, over the steady part (after the one-second
    burst the bucket allows), and its error against the configured cap."""
    times = sorted((r["at"], r["segments"]) for r in rows)
    start = times[0][0] + 1.0
    steady = [(t, s) for t, s in times if t >= start]
    span = steady[-1][0] - start
    measured = sum(s for _, s in steady) / span if span > 0 else 0.0
    return measured, (measured - configured) / configured * 100
