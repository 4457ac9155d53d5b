"""Where a dispatcher's CPU goes: one tick over N due nudges, in-process, under a profiler.

Seeds a fresh database as bench.dispatch does, starts the loopback Twilio server in its own
process(es), then runs `dispatch_due` here under pyinstrument (or cProfile) and prints the
profile plus CPU microseconds per nudge. A diagnostic, not a figure for performance.md.

    .venv/bin/pip install pyinstrument        # not a project dependency
    .venv/bin/python -m bench.dispatch_profile --count 3000 [--postgres] [--cprofile]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from bench.dispatch import DEFAULT_PG, fresh_database, seed, settings_for
from bench.dispatch_processes import make_servers
from coachbot.runtime import build_runtime
from coachbot.services import dispatch, tick
from coachbot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--bare", action="store_true", help="no profiler: plain CPU per nudge")
    parser.add_argument("--server", default="node", choices=("node", "python"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, cleanup = fresh_database(
            "postgresql" if args.postgres else "sqlite", workdir, args.pg_url
        )
        try:
            due = dt.datetime.now(dt.UTC).replace(microsecond=0)
            seed(url, args.count, due, None)
            servers = make_servers(args.server, 1, workdir)
            api = servers.start()
            runtime = build_runtime(Settings(**settings_for(url, api)))
            summary = tick.TickSummary()
            if args.bare:
                cpu0, t0 = time.process_time(), time.perf_counter()
                dispatch.dispatch_due(
                    runtime.session_factory,
                    runtime.gateway,
                    runtime.library,
                    runtime.settings,
                    due,
                    summary,
                )
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            elif args.cprofile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                cpu0, t0 = time.process_time(), time.perf_counter()
                prof.enable()
                dispatch.dispatch_due(
                    runtime.session_factory,
                    runtime.gateway,
                    runtime.library,
                    runtime.settings,
                    due,
                    summary,
                )
                prof.disable()
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
                pstats.Stats(prof).sort_stats("tottime").print_stats(40)
            else:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                cpu0, t0 = time.process_time(), time.perf_counter()
                profiler.start()
                dispatch.dispatch_due(
                    runtime.session_factory,
                    runtime.gateway,
                    runtime.library,
                    runtime.settings,
                    due,
                    summary,
                )
                profiler.stop()
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
                print(profiler.output_text(unicode=True, color=False, show_all=False))
            rows = servers.stop()
            runtime.close()
        finally:
            if cleanup is not None:
                cleanup()
    print(summary.as_text())
    print(
        f"{args.count} nudges, server recorded {len(rows)}; wall {wall:.2f} s"
        f" ({args.count / wall:,.0f}/s under the profiler); CPU {cpu / args.count * 1e6:,.0f}"
        " µs/nudge (profiler overhead included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
