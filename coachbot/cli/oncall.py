"""`coachbot oncall set|show|shift-add|shift-delete` and `coachbot alerts`: the on-call rota and
the alerts with their pages, from the command line."""

from __future__ import annotations

import datetime as dt
import json

import click
from sqlalchemy.orm import Session

from coachbot.cli.common import NOW_OPTION, fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow
from coachbot.settings import Settings


@click.group()
def oncall() -> None:
    """Who is paged when an urgent alert comes in."""


@oncall.command("set")
@click.option("--email", default=None, help="The primary on-call (a clinician).")
@click.option("--backup-email", default=None, help="Also paged from PAGING_BACKUP_MINUTES on.")
@click.option("--clear", is_flag=True, help="Remove the override: the weekly shifts decide.")
@click.pass_context
@friendly_errors
def oncall_set(
    ctx: click.Context, email: str | None, backup_email: str | None, clear: bool
) -> None:
    """Who is on call from now until changed; beats the weekly shifts."""
    from coachbot.services import oncall as rota

    if clear == (email is not None):
        fail("give --email (and optionally --backup-email), or --clear")
    if clear and backup_email:
        fail("--backup-email cannot go with --clear")
    runtime = runtime_of(ctx)
    if clear:
        cleared = rota.clear_override(runtime.session_factory, now=utcnow(), actor="cli")
        click.echo("override cleared" if cleared else "no override was set")
    else:
        assert email is not None
        rota.set_override(
            runtime.session_factory,
            primary_email=email,
            backup_email=backup_email,
            now=utcnow(),
            actor="cli",
        )
        click.echo(
            f"on call now: {email.strip().lower()}"
            + (f" (backup {backup_email.strip().lower()})" if backup_email else "")
        )
    with runtime.read_session_factory() as session:
        _warn_if_nobody(session, runtime.settings)


def _warn_if_nobody(session: Session, settings: Settings) -> None:
    from coachbot.services.oncall import nobody_on_call

    if nobody_on_call(session, settings, utcnow()):
        click.echo("WARNING: nobody is on call now; urgent alerts page no one", err=True)


@oncall.command("show")
@NOW_OPTION
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def oncall_show(ctx: click.Context, now: dt.datetime | None, as_json: bool) -> None:
    """Who is on call now, and the weekly shifts."""
    from coachbot.queries.staff import staff_emails
    from coachbot.services.oncall import WEEKDAYS, rota

    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:
        view = rota(session, runtime.settings, now or utcnow())
        emails = staff_emails(
            session,
            [s.primary_id for s in view.shifts] + [s.backup_id for s in view.shifts if s.backup_id],
        )
    if as_json:
        click.echo(json.dumps(view.as_json()))
        return
    if view.primary is None:
        click.echo("NOBODY IS ON CALL: urgent alerts page no one")
    else:
        source = (
            "set now"
            if view.now_on_call and view.now_on_call.source == "override"
            else ("weekly shift")
        )
        click.echo(
            f"on call: {view.primary.email} ({source})"
            + ("" if view.primary.has_phone else " - no mobile number: e-mail pages only")
        )
        click.echo(f"backup: {view.backup.email if view.backup else '-'}")
    click.echo(f"weekly shifts ({view.timezone}):" if view.shifts else "no weekly shifts")
    for s in view.shifts:
        backup = f", backup {emails.get(s.backup_id or 0, '?')}" if s.backup_id else ""
        click.echo(
            f"  #{s.id} {WEEKDAYS[s.weekday]} {s.start_time:%H:%M}-{s.end_time:%H:%M}"
            f" {emails.get(s.primary_id, '?')}{backup}"
        )


@oncall.command("shift-add")
@click.option("--day", "weekday", required=True, type=click.IntRange(0, 6), help="0=Monday.")
@click.option("--start", required=True, help="Local HH:MM in CLINIC_TIMEZONE.")
@click.option("--end", required=True, help="Local HH:MM; at or before --start runs overnight.")
@click.option("--email", required=True)
@click.option("--backup-email", default=None)
@click.pass_context
@friendly_errors
def shift_add(
    ctx: click.Context, weekday: int, start: str, end: str, email: str, backup_email: str | None
) -> None:
    """Add a weekly shift."""
    from coachbot.services.oncall import add_shift

    shift = add_shift(
        runtime_of(ctx).session_factory,
        weekday=weekday,
        start=start,
        end=end,
        primary_email=email,
        backup_email=backup_email,
        now=utcnow(),
        actor="cli",
    )
    click.echo(f"shift #{shift.id} added")


@oncall.command("shift-delete")
@click.argument("shift_id", type=int)
@click.pass_context
@friendly_errors
def shift_delete(ctx: click.Context, shift_id: int) -> None:
    """Delete a weekly shift by its number (see `oncall show`)."""
    from coachbot.services.oncall import delete_shift

    if not delete_shift(runtime_of(ctx).session_factory, shift_id, now=utcnow(), actor="cli"):
        fail(f"no shift #{shift_id}")
    click.echo(f"shift #{shift_id} deleted")


@click.command("alerts")
@click.option("--status", type=click.Choice(["open", "all"]), default="open", show_default=True)
@click.option("--limit", type=click.IntRange(1, 10000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
@friendly_errors
def alerts(ctx: click.Context, status: str, limit: int, as_json: bool) -> None:
    """Alerts, newest first, with who was paged, when, by which channel, and who acknowledged."""
    from coachbot.services.alerts import list_alerts

    # A listing that names patients' alerts is a read of their records: audited.
    listing = list_alerts(
        runtime_of(ctx).session_factory,
        open_only=status == "open",
        limit=limit,
        actor="cli",
        action="cli.alerts",
        now=utcnow(),
    )
    rows, pages, names = listing.alerts, listing.pages, listing.names
    payload = [
        {
            "id": a.id,
            "patient_id": a.patient_id,
            "kind": a.kind,
            "severity": a.severity,
            "status": a.status,
            "created_at": a.created_at.isoformat(),
            "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
            "acknowledged_by": names.get(a.acknowledged_by_id or 0),
            "pages": [p.as_json() for p in pages[a.id]],
        }
        for a in rows
    ]
    if as_json:
        click.echo(json.dumps({"status": status, "alerts": payload}))
        return
    for a in rows:
        sent = sum(1 for p in pages[a.id] if p.state == "sent")
        by = names.get(a.acknowledged_by_id or 0)
        click.echo(
            f"#{a.id} {a.severity} {a.kind} {a.status} {a.created_at.isoformat()}"
            f" pages sent={sent}" + (f" acked by {by}" if by else "")
        )
