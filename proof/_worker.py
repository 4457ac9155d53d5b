"""One dispatcher process for the crash scenario: `python -m proof._worker JSON`.

The kill point comes from the arguments and is found from outside the package
(tests/support/crash_points.py: a gateway wrapper and a commit event), so production code
has no failpoint to leave on by mistake."""

from __future__ import annotations

import datetime as dt
import json
import sys
from contextlib import AbstractContextManager, nullcontext

from coachbot.runtime import build_runtime
from coachbot.services import tick
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from tests.support.crash_points import crash_points, kill_at


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
        summary = tick.run_tick(
            runtime.session_factory, gateway, runtime.library, runtime.settings, now
        )
    sys.stdout.write(summary.as_text() + "\n")


if __name__ == "__main__":
    main()
