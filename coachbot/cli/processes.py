"""`coachbot serve`, `coachbot clock` and `coachbot tick`: the processes that run the service,
and one tick run by hand."""

from __future__ import annotations

import datetime as dt
import logging
import os

import click

from coachbot.cli.common import NOW_OPTION, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow


@click.command()
@NOW_OPTION
@click.pass_context
@friendly_errors
def tick(ctx: click.Context, now: dt.datetime | None) -> None:
    """Run what one clock tick runs, at that instant."""
    from coachbot.services.tick import run_clock_tick

    now = now or utcnow()
    runtime = runtime_of(ctx)
    summary = run_clock_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
    )
    click.echo(summary.as_text())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Development server with the clock running in-process. Once it listens it prints the
    URL and the demo logins, and nothing after them (no server banner), so they are the last
    lines `make run` shows."""
    from werkzeug.serving import make_server

    from coachbot.app import create_app
    from coachbot.clock import start_background_clock, tick_once
    from coachbot.services.demo import DemoLogin, demo_logins_present, ready_lines

    # The scheduler's start and stop lines are noise around the lines that matter here.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)
    runtime = runtime_of(ctx)
    app = create_app(runtime=runtime)
    # Bound here, before anything is printed: the URL is only announced once it answers.
    server = make_server(host, port, app, threaded=True)
    # The catch-up tick runs before the announcement, so what it logs comes before it too;
    # the clock's own first tick right after finds nothing left to do.
    tick_once(runtime)
    scheduler = start_background_clock(runtime)
    logins: tuple[DemoLogin, ...] = ()
    if runtime.settings.env != "production":
        with runtime.read_session_factory() as session:
            logins = demo_logins_present(session)
    for line in ready_lines(f"http://{host}:{server.server_port}/", logins):
        click.echo(line)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl+C is how a developer stops it: no traceback
    finally:
        server.server_close()
        scheduler.shutdown(wait=False)


@click.command()
@click.pass_context
def clock(ctx: click.Context) -> None:
    """The clock process: one interval job that runs the tick."""
    from coachbot.clock import run_blocking_clock

    run_blocking_clock(runtime_of(ctx))
