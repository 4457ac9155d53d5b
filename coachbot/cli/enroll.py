"""`coachbot enroll` and `coachbot demo-seed`: patients in, from the command line."""

from __future__ import annotations

import logging
from typing import Any

import click
from sqlalchemy.orm import Session

from coachbot.cli.common import (
    CAREGIVER_OPTIONS,
    fail,
    friendly_errors,
    named_options,
    runtime_of,
)
from coachbot.domain.clock import utcnow


@click.command()
@click.option("--first-name", required=True)
@click.option("--phone", required=True, help="Mobile number; E.164 or national format.")
@click.option("--tz", "timezone", required=True, help="IANA time zone, e.g. America/Chicago.")
@click.option("--language", default="en", show_default=True)
@click.option("--tracks", default="sleep,exercise,diet,mindfulness,rehab", show_default=True)
@click.option(
    "--times",
    default=None,
    help="Local times for every track listed in --tracks, e.g. 08:30,20:00 (default: each"
    " track's own time from the programme).",
)
@click.option("--quiet-hours", default=None, help="e.g. 21:00-07:30")
@click.option(
    "--clinician",
    "clinician_email",
    default=None,
    help="Owning clinician's email; may be left out when there is only one clinician.",
)
@click.option("--consent", default="verbal consent in clinic", show_default=True)
@click.option("--caregiver", "caregiver_phone", default=None, help="The caregiver's mobile number.")
@click.option(
    "--caregiver-name", default=None, help="The caregiver's first name (with --caregiver)."
)
@click.option(
    "--caregiver-language", default=None, help="en or es (default: the patient's language)."
)
@click.option(
    "--close-watch-from", default=None, help="First day of the close watch, e.g. 2026-12-01."
)
@click.option(
    "--close-watch-days",
    default=None,
    help="Length of the close watch, 1 to 90 (default: the programme's).",
)
@click.option("--checkin/--no-checkin", default=False, help="Daily symptom check-in.")
@click.option("--homework", multiple=True, help="A homework item; repeat for several.")
@click.pass_context
@friendly_errors
def enroll(ctx: click.Context, /, **options: Any) -> None:
    """Enrol a patient and text the welcome that asks for YES. Prints the patient id."""
    from coachbot.services.enrollment import EnrollmentRequest, enroll_patient, opted_out_notes
    from coachbot.services.welcomes import welcome_note

    runtime = runtime_of(ctx)
    now = utcnow()
    with runtime.read_session_factory() as session:
        clinician = options["clinician_email"] or _the_only_clinician(session)
    request = EnrollmentRequest(
        **{**options, "clinician_email": clinician, "homework": tuple(options["homework"])}
    )
    with named_options(CAREGIVER_OPTIONS):
        patient = enroll_patient(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            request,
            now=now,
            actor="cli",
        )
    with runtime.read_session_factory() as session:
        note = welcome_note(session, patient, now)
        opted_out = opted_out_notes(session, runtime.settings, patient)
    click.echo(patient.id)
    for line in ([note] if note else []) + opted_out:  # on stderr: stdout is the id alone
        click.echo(line, err=True)


@click.command("demo-seed")
@click.pass_context
@friendly_errors
def demo_seed(ctx: click.Context) -> None:
    """A demo clinic: logins for each role and 26 patients with 90 days of history, played
    through the real pipeline (development only; idempotent)."""
    from coachbot.services.demo import DemoRefused, seed_demo

    runtime = runtime_of(ctx)
    # Some 5,000 texts go through the console backend, each logged at INFO: the seed says
    # what it did in one line instead. Warnings and errors still show.
    logging.getLogger("coachbot").setLevel(logging.WARNING)
    try:
        result = seed_demo(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, utcnow()
        )
    except DemoRefused as exc:
        fail(str(exc))
    for line in result.as_lines():
        click.echo(line)


def _the_only_clinician(session: Session) -> str | None:
    """A patient with no clinician is on nobody's list, so --clinician may be left out only
    when the answer is obvious: the one clinician there is. With several, the error names
    them. With none yet (a fresh install, before any `create-user`) there is no list to be
    on, and the enrolment goes ahead as before."""
    from coachbot.queries.staff import active_clinicians

    emails = [user.email for user in active_clinicians(session)]
    if len(emails) > 1:
        fail(f"--clinician: required when there are several clinicians; one of {', '.join(emails)}")
    return emails[0] if emails else None
