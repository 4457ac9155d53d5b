"""One real dispatcher process, shared by the proof scenarios and the e2e tests:
`start_dispatcher(settings, now, ...)` runs `python -m tests.support.dispatcher_process JSON`.

The process prints "ready" once its imports are done and its runtime is built (a caller that
kills it at a random instant waits for that line first), then the tick's summary. Options:
`kill_at` / `kill_after` SIGKILL it at a crash point found from outside the package
(tests/support/crash_points.py: a gateway wrapper and a commit event, so production code has
no failpoint to leave on by mistake); `dispatch_only` sends what is due without planning."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from coachbot.runtime import build_runtime
from coachbot.services import dispatch, tick
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from tests.support.crash_points import crash_points, kill_at

ROOT = Path(__file__).resolve().parents[2]


def start_dispatcher(
    settings: Settings, now: dt.datetime, *, stderr: int = subprocess.PIPE, **options: object
) -> subprocess.Popen[str]:
    """The process, started; its stdout is a pipe ("ready", then the summary)."""
    payload = {
        "settings": {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)},
        "now": now.isoformat(),
        **options,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.dispatcher_process", json.dumps(payload)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def main() -> None:
    args = json.loads(sys.argv[1])
    runtime = build_runtime(Settings(**args["settings"]))
    points: AbstractContextManager[SmsGateway] = nullcontext(runtime.gateway)
    if args.get("kill_at"):
        crash = kill_at(args["kill_at"], int(args.get("kill_after", 1)))
        points = crash_points(runtime.session_factory, runtime.gateway, crash)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    now = dt.datetime.fromisoformat(args["now"])
    with points as gateway:
        if args.get("dispatch_only"):
            summary = tick.TickSummary()
            dispatch.dispatch_due(
                runtime.session_factory, gateway, runtime.library, runtime.settings, now, summary
            )
        else:
            summary = tick.run_tick(
                runtime.session_factory, gateway, runtime.library, runtime.settings, now
            )
    sys.stdout.write(summary.as_text() + "\n")


if __name__ == "__main__":
    main()
