"""`coachbot program ...` and `coachbot settings ...`: the operator console from a terminal, so
programme and settings changes can be scripted and reviewed. Thin: parse, call
services.programs / services.operations, print. Every change is audited as actor "cli"."""

from __future__ import annotations

import click

from coachbot.cli.common import NOW_OPTION, fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow

ACTOR = "cli"


@click.group("program")
def program() -> None:
    """Programmes: per-track defaults with every version kept."""


def _print_tracks(tracks: dict[str, object]) -> None:
    from coachbot.services.programs import TrackSettings, day_names

    for settings in tracks.values():
        assert isinstance(settings, TrackSettings)
        click.echo(
            f"  {settings.track:<12} times={settings.times} days={day_names(settings.days)}"
            f" phases={settings.phases or '-'} reply={settings.reply_window_minutes}m"
            f" followup={settings.followup} quiet={settings.quiet_policy}"
        )


@program.command("list")
@click.pass_context
@friendly_errors
def list_command(ctx: click.Context) -> None:
    """Every programme with its current version and patient count."""
    from coachbot.services.programs import list_programs

    with runtime_of(ctx).session_factory() as session:
        for view in list_programs(session):
            click.echo(f"{view.name} v{view.version} patients={view.patients} {view.description}")


@program.command("show")
@click.argument("name")
@click.option("--version", type=int, default=None, help="An earlier version (default: current).")
@click.pass_context
@friendly_errors
def show_command(ctx: click.Context, name: str, version: int | None) -> None:
    """A programme's tracks (current or a given version)."""
    from coachbot.services.programs import (
        get_program,
        show_program,
        version_close_watch,
        version_settings,
    )

    with runtime_of(ctx).session_factory() as session:
        view = show_program(session, name)
        shown = version or view.version
        tracks = version_settings(session, get_program(session, name), shown)
        click.echo(f"{view.name} v{shown} (current v{view.version}) patients={view.patients}")
        _print_tracks(dict(tracks))
        watch = version_close_watch(session, get_program(session, name), shown).as_json()
        click.echo(
            f"  close watch  days={watch['days']} check={watch['check_time']}"
            f" followup={watch['followup_after_hours']}h seen_today={watch['seen_today_time']}"
            f" items_en={len(watch['items'].get('en', []))}"
        )


@program.command("history")
@click.argument("name")
@click.pass_context
@friendly_errors
def history_command(ctx: click.Context, name: str) -> None:
    """Every version: when, who, what changed."""
    from coachbot.services.programs import history

    with runtime_of(ctx).session_factory() as session:
        for v in history(session, name):
            click.echo(
                f"v{v.version} {v.created_at:%Y-%m-%dT%H:%MZ} {v.created_by}: {v.change_summary}"
            )


def _track_options(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("--track", required=True),
            click.option("--times", default=None, help="Local times, e.g. 08:30,19:00."),
            click.option("--days", default=None, help="e.g. daily, mon-fri."),
            click.option("--phases", default=None, help="e.g. '0-28:daily;28-:mon,wed,fri'."),
            click.option("--reply-window", "reply_window", type=int, default=None, help="Minutes."),
            click.option("--followup", type=click.Choice(["once", "none"]), default=None),
            click.option("--quiet-policy", type=click.Choice(["defer", "skip"]), default=None),
        ]
    ):
        func = option(func)
    return func


def _proposed(session: object, name: str, **given: object) -> object:
    """The current track settings with only the options given replaced, then validated."""
    from sqlalchemy.orm import Session

    from coachbot.services.program_edits import propose_track

    assert isinstance(session, Session)
    track = str(given.pop("track"))
    return propose_track(session, name, track, **given)


@program.command("preview")
@click.argument("name")
@_track_options
@NOW_OPTION
@click.pass_context
@friendly_errors
def preview_command(ctx: click.Context, /, name: str, now: object, **given: object) -> None:
    """Who a change reaches and their next nudges under it; saves nothing."""
    import datetime as dt

    from coachbot.services.programs import TrackSettings, preview_track

    with runtime_of(ctx).session_factory() as session:
        proposed = _proposed(session, name, **given)
        assert isinstance(proposed, TrackSettings)
        at = now if isinstance(now, dt.datetime) else utcnow()
        preview = preview_track(session, name, proposed, now=at)
        click.echo(f"{preview.program} v{preview.base_version} {preview.track}:")
        for change in preview.changes or ["no change"]:
            click.echo(f"  {change}")
        click.echo(f"{preview.affected} patients follow it; {preview.custom} keep their own")
        for p in preview.patients:
            before = ", ".join(f"{t:%a %H:%M}" for t in p.before) or "none"
            after = ", ".join(f"{t:%a %H:%M}" for t in p.after) or "none"
            click.echo(f"  patient {p.patient_id} ({p.timezone}): {before} -> {after}")


@program.command("edit")
@click.argument("name")
@_track_options
@click.option(
    "--base-version",
    type=int,
    required=True,
    help="The version you reviewed; refused if the programme moved on since.",
)
@click.pass_context
@friendly_errors
def edit_command(ctx: click.Context, /, name: str, base_version: int, **given: object) -> None:
    """Save a change to one track as a new version (applied at the next tick)."""
    from coachbot.services.program_edits import save_track
    from coachbot.services.programs import TrackSettings

    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:  # reading "standard" may recreate it
        proposed = _proposed(session, name, **given)
    assert isinstance(proposed, TrackSettings)
    result = save_track(
        runtime.session_factory,
        name,
        proposed,
        base_version=base_version,
        actor=ACTOR,
        now=utcnow(),
    )
    click.echo(
        f"{result.program} v{result.version} saved; {result.schedules_changed} schedules follow"
        f" it, {result.nudges_replaced} planned nudges replaced"
    )


@program.command("close-watch")
@click.argument("name")
@click.option("--base-version", type=int, required=True, help="The version you reviewed.")
@click.option("--days", default=None, help="Default length, 1-90 days.")
@click.option("--check-time", default=None, help="The daily check's local time, HH:MM.")
@click.option("--followup-hours", default=None, help="1-12 h before the follow-up and alert.")
@click.option("--seen-today-time", default=None, help='"Have you seen ...?" local time, HH:MM.')
@click.option(
    "--item-en", "items_en", multiple=True, help="An English item (repeat; replaces all)."
)
@click.option("--item-es", "items_es", multiple=True, help="A Spanish item (repeat; replaces all).")
@click.pass_context
@friendly_errors
def close_watch_command(
    ctx: click.Context,
    /,
    name: str,
    base_version: int,
    items_en: tuple[str, ...],
    items_es: tuple[str, ...],
    **given: str | None,
) -> None:
    """Save the programme's close-watch settings (options not given are kept) as a new
    version; refused, naming the option, when a value is wrong or the check would not fit
    two texts."""
    from coachbot.services.program_edits import save_close_watch
    from coachbot.services.programs import show_program
    from coachbot.services.track_settings import validate_close_watch

    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:
        current = show_program(session, name).close_watch.as_json()
    form = {
        "days": given["days"] or str(current["days"]),
        "check_time": given["check_time"] or current["check_time"],
        "followup_after_hours": given["followup_hours"] or str(current["followup_after_hours"]),
        "seen_today_time": given["seen_today_time"] or current["seen_today_time"],
        "items_en": "\n".join(items_en or current["items"]["en"]),
        "items_es": "\n".join(items_es or current["items"]["es"]),
    }
    proposed = validate_close_watch(runtime.library, **form)
    result = save_close_watch(
        runtime.session_factory,
        name,
        proposed,
        base_version=base_version,
        actor=ACTOR,
        now=utcnow(),
    )
    click.echo(f"{result.program} v{result.version} saved: close watch")


@program.command("restore")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--base-version", type=int, required=True, help="The current version you saw.")
@click.pass_context
@friendly_errors
def restore_command(ctx: click.Context, name: str, version: int, base_version: int) -> None:
    """Make an earlier version current again (as a new version)."""
    from coachbot.services.program_edits import restore_version

    result = restore_version(
        runtime_of(ctx).session_factory,
        name,
        version,
        base_version=base_version,
        actor=ACTOR,
        now=utcnow(),
    )
    click.echo(f"{result.program} v{version} restored as v{result.version}")


@program.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.option("--from", "copy_from", default="standard", show_default=True)
@click.pass_context
@friendly_errors
def create_command(ctx: click.Context, name: str, description: str, copy_from: str) -> None:
    """A new programme, starting as a copy of another."""
    from coachbot.services.program_edits import create_program

    created = create_program(
        runtime_of(ctx).session_factory,
        name,
        description=description,
        copy_from=copy_from,
        actor=ACTOR,
        now=utcnow(),
    )
    click.echo(f"{created.name} v1 created from {copy_from}")


@program.command("assign")
@click.argument("name")
@click.option("--patient", "patient_id", type=int, required=True)
@click.pass_context
@friendly_errors
def assign_command(ctx: click.Context, name: str, patient_id: int) -> None:
    """Move a patient onto a programme (their own custom schedules are kept)."""
    from coachbot.services.program_edits import assign_patient

    replaced = assign_patient(
        runtime_of(ctx).session_factory, patient_id, name, actor=ACTOR, now=utcnow()
    )
    click.echo(f"patient {patient_id} follows {name}; {replaced} planned nudges replaced")


@click.group("settings")
def settings() -> None:
    """Global dispatch settings: send window, daily cap, pacing, concurrency, staleness."""


def _sender(ctx: click.Context, sender: str | None) -> str:
    gateway = runtime_of(ctx).gateway
    return sender or str(getattr(gateway, "sender", gateway.name))


def _echo_settings(current: object) -> None:
    from coachbot.services.operations import GlobalSettings

    assert isinstance(current, GlobalSettings)
    pace = current.segments_per_second
    stale = current.stale_limit_minutes
    click.echo(f"window_start={current.window_start:%H:%M}")
    click.echo(f"window_end={current.window_end:%H:%M}")
    click.echo(f"daily_cap={current.daily_cap}")
    click.echo(f"max_concurrency={current.max_concurrency}")
    click.echo(f"segments_per_second={'uncapped' if pace is None else f'{pace:g}'}")
    click.echo(f"stale_limit_minutes={'per-track' if stale is None else stale}")
    click.echo(f"sender={current.sender}")


@settings.command("show")
@click.option("--sender", default=None, help="Whose pace to show (default: this backend's).")
@click.pass_context
@friendly_errors
def settings_show(ctx: click.Context, sender: str | None) -> None:
    """Print the settings the next tick will use."""
    from coachbot.services.operations import global_settings

    with runtime_of(ctx).session_factory() as session:
        _echo_settings(global_settings(session, _sender(ctx, sender)))


@settings.command("set")
@click.option("--window-start", default=None, help="Local HH:MM.")
@click.option("--window-end", default=None, help="Local HH:MM.")
@click.option("--daily-cap", default=None)
@click.option("--max-concurrency", default=None)
@click.option("--segments-per-second", default=None, help="'none' removes the cap.")
@click.option("--stale-limit", default=None, help="Minutes; 'none' returns to per-track limits.")
@click.option("--sender", default=None, help="Whose pace to set (default: this backend's).")
@click.pass_context
@friendly_errors
def settings_set(
    ctx: click.Context,
    window_start: str | None,
    window_end: str | None,
    daily_cap: str | None,
    max_concurrency: str | None,
    segments_per_second: str | None,
    stale_limit: str | None,
    sender: str | None,
) -> None:
    """Change any of the settings; all are validated together and saved together."""
    from coachbot.services.operations import global_settings, update_global_settings

    given = (window_start, window_end, daily_cap, max_concurrency, segments_per_second, stale_limit)
    if all(v is None for v in given):
        fail("nothing to change; pass at least one option")
    who = _sender(ctx, sender)
    runtime = runtime_of(ctx)
    with runtime.read_session_factory() as session:
        current = global_settings(session, who)

    def keep(value: str | None, now_value: object) -> str:
        if value is None:
            return "" if now_value is None else str(now_value)
        return "" if value.strip().lower() == "none" else value

    updated = update_global_settings(
        runtime.session_factory,
        sender=who,
        window_start=keep(window_start, f"{current.window_start:%H:%M}"),
        window_end=keep(window_end, f"{current.window_end:%H:%M}"),
        daily_cap=keep(daily_cap, current.daily_cap),
        max_concurrency=keep(max_concurrency, current.max_concurrency),
        segments_per_second=keep(segments_per_second, current.segments_per_second),
        stale_limit_minutes=keep(stale_limit, current.stale_limit_minutes),
        actor=ACTOR,
        now=utcnow(),
    )
    _echo_settings(updated)
