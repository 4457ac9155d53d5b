"""`coachbot serve`, `coachbot clock` and `coachbot tick`: the processes that run the service,
and one tick run by hand."""

from __future__ import annotations

import datetime as dt
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
    """Development server with the clock running in-process."""
    from coachbot.app import create_app
    from coachbot.clock import start_background_clock

    runtime = runtime_of(ctx)
    app = create_app(runtime=runtime)
    scheduler = start_background_clock(runtime)
    try:
        # No reloader: it would fork a second process and a second clock.
        app.run(host=host, port=port, use_reloader=False, threaded=True)
    finally:
        scheduler.shutdown(wait=False)


@click.command()
@click.pass_context
def clock(ctx: click.Context) -> None:
    """The clock process: one interval job that runs the tick."""
    from coachbot.clock import run_blocking_clock

    run_blocking_clock(runtime_of(ctx))
