"""`coachbot serve` (what `make run` ends with): once it listens, its last lines are the URL
and the demo logins, with no server banner after them."""

from __future__ import annotations

import datetime as dt
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from coachbot.runtime import build_runtime
from coachbot.services.demo import DEMO_LOGINS, seed_demo
from coachbot.services.demo_cast import CAST
from coachbot.settings import Settings

READY = "coachbot is running at "


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_serve_prints_the_url_and_the_three_logins_last(settings: Settings) -> None:
    runtime = build_runtime(settings)
    pending_only = tuple(p for p in CAST if p.first_name == "Iris")  # logins without 90 days
    now = dt.datetime.now(dt.UTC)
    seed_demo(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        now,
        pending_only,
    )
    runtime.close()
    script = Path(sys.executable).with_name("coachbot")
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TICK_SECONDS": "300",  # no clock tick of its own while the test reads the output
        "PAGER_ENABLED": "0",
    }
    process = subprocess.Popen(
        [str(script), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = _lines(process)
    try:
        seen: list[str] = []
        while not seen or not seen[-1].endswith(DEMO_LOGINS[-1].password):
            line = lines.get(timeout=120)
            assert line is not None, "serve ended early:\n" + "\n".join(seen)
            seen.append(line)
        ready = next(i for i, line in enumerate(seen) if line.startswith(READY))
        url = seen[ready].removeprefix(READY).split()[0]
        with urllib.request.urlopen(f"{url}healthz", timeout=30) as response:  # noqa: S310
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    rest: list[str] = []
    while (line := lines.get(timeout=60)) is not None:
        rest.append(line)
    assert process.stdout is not None
    process.stdout.close()
    after = [line for line in rest if "GET /healthz" not in line]
    assert process.returncode == 0, rest
    assert seen[ready:] == [
        seen[ready],
        "sign in as:",
        *(f"  {login.role:<9}  {login.email} / {login.password}" for login in DEMO_LOGINS),
    ]
    assert after == []  # nothing after the logins but the request it answered
    assert not [line for line in seen if "Running on" in line or "Serving Flask" in line]
