"""One dispatcher process for the crash scenario: `python -m proof._worker JSON`.

The kill point comes from the arguments and is installed through dispatch.crash_hook,
which nothing in the package sets."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys

from coachbot.runtime import build_runtime
from coachbot.services import dispatch
from coachbot.settings import Settings


def main() -> None:
    args = json.loads(sys.argv[1])
    runtime = build_runtime(Settings(**args["settings"]))
    kill_at, kill_after = args.get("kill_at"), int(args.get("kill_after", 1))
    seen = 0

    def crash(point: str, nudge_id: int) -> None:
        nonlocal seen
        if point == kill_at:
            seen += 1
            if seen >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    if kill_at:
        dispatch.crash_hook = crash
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    now = dt.datetime.fromisoformat(args["now"])
    summary = dispatch.run_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
    )
    sys.stdout.write(summary.as_text() + "\n")


if __name__ == "__main__":
    main()
