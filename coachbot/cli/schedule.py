"""`coachbot schedule ...` and `coachbot reconcile`: operator commands for when nudges go out.

Thin: parse, call a service in coachbot.services.schedules / reconcile, print. Every change
is audited by the service and takes effect at the next tick without a restart.
"""

from __future__ import annotations

import datetime as dt

import click

from coachbot.cli.common import NOW_OPTION, fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.schedule import parse_hhmm

ACTOR = "cli"


def _date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"{name}: expected YYYY-MM-DD, got {text!r}")


@click.group("schedule")
def schedule() -> None:
    """Programme defaults, patient schedules, the send window, the cap and pacing."""


@schedule.command("show")
@click.option("--patient", "patient_id", type=int, default=None)
@click.pass_context
@friendly_errors
def show(ctx: click.Context, patient_id: int | None) -> None:
    """Print the programme defaults and dispatch settings, or one patient's schedules."""
    from coachbot.services.reports import patient_schedules
    from coachbot.services.schedules import dispatch_settings, program_default

    runtime = runtime_of(ctx)
    if patient_id is not None:
        found = patient_schedules(
            runtime.session_factory,
            patient_id,
            actor="cli",
            action="cli.schedule_show",
            now=utcnow(),
        )
        if found is None:
            fail(f"--patient: no patient with id {patient_id}")
        patient, rows = found
        click.echo(f"patient {patient.id} ({patient.timezone}, {patient.status})")
        for row in rows:
            click.echo(
                f"  {row.track:<12} times={row.local_times} days={row.days_of_week}"
                f" phases={row.phases or '-'} start={row.start_date or '-'}"
                f" end={row.end_date or '-'} {'custom' if row.is_custom else 'default'}"
            )
        return
    with runtime.session_factory() as session:
        config = dispatch_settings(session)
        click.echo(
            f"window {config.window.start:%H:%M}-{config.window.end:%H:%M} local,"
            f" daily cap {config.daily_cap}, max concurrency {config.max_concurrency}"
        )
        for sender, pace in sorted(config.paces.items()):
            click.echo(f"pace {sender}: {pace:g} segments/s")
        for track, policy in TRACK_POLICIES.items():
            spec = program_default(session, track)
            click.echo(
                f"{track:<12} times={spec.local_times} days={spec.days_of_week}"
                f" phases={spec.phases or '-'} quiet-policy={policy.quiet_policy}"
                f" stale-limit={policy.stale_limit}"
            )


_TIMES = click.option("--times", required=True, help="Local times, e.g. 08:30,19:00.")
_DAYS = click.option("--days", default="daily", show_default=True, help="e.g. mon-fri.")
_PHASES = click.option(
    "--phases",
    default=None,
    help="Days since enrolment (end exclusive) and their days, e.g. '0-28:daily;28-:mon,wed,fri'.",
)


@schedule.command("set-default")
@click.option("--track", required=True)
@_TIMES
@_DAYS
@_PHASES
@click.pass_context
@friendly_errors
def set_default(ctx: click.Context, track: str, times: str, days: str, phases: str | None) -> None:
    """Change a track's default in programme "standard" (a new version, like `program edit`;
    patients on the default follow it at the next tick)."""
    from coachbot.services.program_edits import propose_track, save_track
    from coachbot.services.programs import STANDARD, show_program

    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:
        # A write session: reading "standard" recreates it if the database lost it.
        version = show_program(session, STANDARD).version
        proposed = propose_track(session, STANDARD, track, times=times, days=days, phases=phases)
    result = save_track(
        runtime.session_factory,
        STANDARD,
        proposed,
        base_version=version,
        actor=ACTOR,
        now=utcnow(),
    )
    click.echo(
        f"default for {proposed.track} set (standard v{result.version});"
        f" {result.schedules_changed} patient schedules follow it"
    )


@schedule.command("set")
@click.option("--patient", "patient_id", type=int, required=True)
@click.option("--track", required=True)
@_TIMES
@_DAYS
@_PHASES
@click.option("--start", "start_text", default=None, help="First local date, YYYY-MM-DD.")
@click.option("--end", "end_text", default=None, help="Last local date, YYYY-MM-DD.")
@click.pass_context
@friendly_errors
def set_patient(
    ctx: click.Context,
    patient_id: int,
    track: str,
    times: str,
    days: str,
    phases: str | None,
    start_text: str | None,
    end_text: str | None,
) -> None:
    """Give one patient their own schedule for a track."""
    from coachbot.services.schedules import set_patient_schedule, validate_schedule

    runtime = runtime_of(ctx)
    spec = validate_schedule(
        track,
        times,
        days,
        phases,
        _date(start_text, "--start"),
        _date(end_text, "--end"),
    )
    cancelled = set_patient_schedule(
        runtime.session_factory, patient_id, spec, actor=ACTOR, now=utcnow()
    )
    click.echo(
        f"patient {patient_id} {spec.track} schedule set; {cancelled} future nudges replaced"
    )


@schedule.command("set-window")
@click.option("--start", "start_text", default=None, help="Local HH:MM, e.g. 08:00.")
@click.option("--end", "end_text", default=None, help="Local HH:MM, e.g. 20:00.")
@click.option("--daily-cap", type=int, default=None)
@click.option("--max-concurrency", type=int, default=None)
@click.pass_context
@friendly_errors
def set_window_command(
    ctx: click.Context,
    start_text: str | None,
    end_text: str | None,
    daily_cap: int | None,
    max_concurrency: int | None,
) -> None:
    """The global allowed window, the per-patient daily cap and concurrent API calls."""
    from coachbot.services.schedules import set_window

    runtime = runtime_of(ctx)
    try:
        start = parse_hhmm(start_text) if start_text else None
        end = parse_hhmm(end_text) if end_text else None
    except ValueError as exc:
        fail(str(exc))
    config = set_window(
        runtime.session_factory,
        start=start,
        end=end,
        daily_cap=daily_cap,
        max_concurrency=max_concurrency,
        actor=ACTOR,
        now=utcnow(),
    )
    click.echo(
        f"window {config.window.start:%H:%M}-{config.window.end:%H:%M},"
        f" daily cap {config.daily_cap}, max concurrency {config.max_concurrency}"
    )


@schedule.command("set-pace")
@click.option("--sender", required=True, help="The From number or Messaging Service SID.")
@click.option("--segments-per-second", type=float, default=None, help="Omit to remove the cap.")
@click.pass_context
@friendly_errors
def set_pace_command(ctx: click.Context, sender: str, segments_per_second: float | None) -> None:
    """Cap how many SMS segments per second one sender hands to Twilio."""
    from coachbot.services.schedules import set_pace

    set_pace(
        runtime_of(ctx).session_factory, sender, segments_per_second, actor=ACTOR, now=utcnow()
    )
    click.echo(f"pace {sender}: {segments_per_second or 'uncapped'}")


@click.command("reconcile")
@NOW_OPTION
@click.option("--limit", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.pass_context
@friendly_errors
def reconcile(ctx: click.Context, now: dt.datetime | None, limit: int) -> None:
    """Settle ambiguous sends by asking Twilio what it has (the tick also does this)."""
    from coachbot.services.reconcile import reconcile_ambiguous

    runtime = runtime_of(ctx)
    summary = reconcile_ambiguous(
        runtime.session_factory, runtime.gateway, now or utcnow(), limit=limit
    )
    click.echo(summary.as_text())
