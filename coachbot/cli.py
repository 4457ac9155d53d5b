"""The `coachbot` console script: thin calls into services, clear errors, non-zero exits."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from coachbot.cli_common import NOW_OPTION, fail, friendly_errors, runtime_of
from coachbot.cli_dashboard import api_token
from coachbot.cli_oncall import alerts, oncall
from coachbot.cli_patient import patient
from coachbot.cli_program import program
from coachbot.cli_program import settings as settings_group
from coachbot.cli_reply import reply
from coachbot.cli_schedule import reconcile, schedule
from coachbot.content.cli import templates
from coachbot.domain.clock import utcnow


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """coachbot: SMS coaching for recovery from neurotoxicity."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per successful tick every few seconds drowns everything else out.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


main.add_command(templates)
main.add_command(schedule)
main.add_command(reconcile)
main.add_command(api_token)
main.add_command(program)
main.add_command(settings_group)
main.add_command(reply)
main.add_command(oncall)
main.add_command(alerts)
main.add_command(patient)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply the Alembic migrations."""
    from coachbot.migrate import upgrade

    runtime = runtime_of(ctx)
    try:
        upgrade(runtime.settings.database_url, revision)
    except OperationalError as exc:
        fail(f"cannot migrate: {exc.orig}")
    click.echo(f"database at {revision}")


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["clinician", "operator", "admin"]))
@click.option("--name", "display_name", default=None, help="Display name (default: from email).")
@click.option("--phone", default=None, help="Mobile for on-call pages (E.164, e.g. +16175550142).")
@click.pass_context
@friendly_errors
def create_user(
    ctx: click.Context, email: str, role: str, display_name: str | None, phone: str | None
) -> None:
    """Create a staff account; the password comes from COACHBOT_PASSWORD or a prompt."""
    from coachbot.services.staff import create_staff_user

    password = os.environ.get("COACHBOT_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:
        user = create_staff_user(
            session,
            email=email,
            role=role,
            password=password,
            now=utcnow(),
            actor="cli",
            display_name=display_name,
            phone=phone,
            default_region=runtime.settings.default_region,
        )
    click.echo(f"created {user.role} {user.email} (id {user.id})")


@main.command()
@click.option("--first-name", required=True)
@click.option("--phone", required=True, help="Mobile number; E.164 or national format.")
@click.option("--tz", "timezone", required=True, help="IANA time zone, e.g. America/Chicago.")
@click.option("--language", default="en", show_default=True)
@click.option("--tracks", default="sleep,exercise,diet,mindfulness,rehab", show_default=True)
@click.option("--times", default=None, help="Local times for every chosen track, e.g. 08:30,20:00.")
@click.option("--quiet-hours", default=None, help="e.g. 21:00-07:30")
@click.option("--clinician", "clinician_email", default=None, help="Owning clinician's email.")
@click.option("--consent", default="verbal consent in clinic", show_default=True)
@click.option("--caregiver", "caregiver_phone", default=None)
@click.option("--checkin/--no-checkin", default=False, help="Daily symptom check-in.")
@click.option("--homework", multiple=True, help="A homework item; repeat for several.")
@click.pass_context
@friendly_errors
def enroll(ctx: click.Context, /, **options: Any) -> None:
    """Enrol a patient and text the welcome that asks for YES. Prints the patient id."""
    from coachbot.services.enrollment import (
        EnrollmentRequest,
        enroll_patient,
        opted_out_notes,
        welcome_note,
    )

    runtime = runtime_of(ctx)
    request = EnrollmentRequest(**{**options, "homework": tuple(options["homework"])})
    now = utcnow()
    with runtime.session_factory() as session:
        patient = enroll_patient(
            session,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            request,
            now=now,
            actor="cli",
        )
        note = welcome_note(session, patient, now)
        opted_out = opted_out_notes(session, runtime.settings, patient)
    click.echo(patient.id)
    for line in ([note] if note else []) + opted_out:  # on stderr: stdout is the id alone
        click.echo(line, err=True)


@main.command()
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


@main.command()
@click.option("--patient", "patient_id", type=int, default=None)
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True)
@NOW_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the only format for now).")
@click.pass_context
@friendly_errors
def adherence(
    ctx: click.Context,
    patient_id: int | None,
    days: int,
    now: dt.datetime | None,
    as_json: bool,
) -> None:
    """Per patient and track: sent, done, skipped, missed, last reply."""
    from coachbot.models import Patient
    from coachbot.queries.adherence import adherence_by_track
    from coachbot.services import audit

    now = now or utcnow()
    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:
        if patient_id is not None and session.get(Patient, patient_id) is None:
            fail(f"--patient: no patient with id {patient_id}")
        rows = adherence_by_track(
            session,
            now=now,
            days=days,
            patient_ids=[patient_id] if patient_id is not None else None,
        )
        ids = (
            [patient_id]
            if patient_id is not None
            else list(session.scalars(select(Patient.id).order_by(Patient.id)))
        )
        # A report from the command line reads records as a page does: audited per patient.
        audit.record_reads(
            session, actor="cli", action="cli.adherence", now=utcnow(), patient_ids=ids
        )
        session.commit()
    by_patient: dict[int, list[dict[str, object]]] = {i: [] for i in ids}
    for row in rows:
        by_patient.setdefault(row.patient_id, []).append(row.as_json())
    payload = {
        "days": days,
        "as_of": now.isoformat(),
        "patients": [{"patient_id": pid, "tracks": tracks} for pid, tracks in by_patient.items()],
    }
    click.echo(json.dumps(payload, indent=2 if not as_json else None))


@main.command("demo-seed")
@click.pass_context
@friendly_errors
def demo_seed(ctx: click.Context) -> None:
    """Create the demo clinician and patients (development only; idempotent)."""
    from coachbot.services.demo import seed_demo

    runtime = runtime_of(ctx)
    with runtime.session_factory() as session:
        try:
            login = seed_demo(session, runtime.gateway, runtime.library, runtime.settings, utcnow())
        except RuntimeError as exc:
            fail(str(exc))
    click.echo(f"demo clinician: {login.email} / password: {login.password}")
    click.echo(f"patients enrolled: {login.patients}")


@main.command()
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


@main.command()
@click.pass_context
def clock(ctx: click.Context) -> None:
    """The clock process: one interval job that runs the tick."""
    from coachbot.clock import run_blocking_clock

    run_blocking_clock(runtime_of(ctx))
