"""`coachbot enroll` and `coachbot demo-seed`: patients in, from the command line."""

from __future__ import annotations

from typing import Any

import click

from coachbot.cli.common import fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow


@click.command()
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


@click.command("demo-seed")
@click.pass_context
@friendly_errors
def demo_seed(ctx: click.Context) -> None:
    """Create the demo clinician and patients (development only; idempotent)."""
    from coachbot.services.demo import seed_demo

    runtime = runtime_of(ctx)
    try:
        login = seed_demo(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, utcnow()
        )
    except RuntimeError as exc:
        fail(str(exc))
    click.echo(f"demo clinician: {login.email} / password: {login.password}")
    click.echo(f"patients enrolled: {login.patients}")
