"""`coachbot patient pause|resume|discharge --id N`: the status changes of the patient page,
with the same rules. A resume the patient has to give themselves (they texted STOP, or
asked in their own words to stop) is refused with exit status 2 and the reason.
`coachbot patient caregiver` and `coachbot patient close-watch` are the edit page's
caregiver and close-watch fields, with the same checks (a bad value: exit status 2)."""

from __future__ import annotations

import datetime as dt

import click

from coachbot.cli.common import (
    CAREGIVER_OPTIONS,
    NOW_OPTION,
    fail,
    friendly_errors,
    named_options,
    runtime_of,
)
from coachbot.domain.clock import utcnow


@click.group()
def patient() -> None:
    """Pause, resume or discharge one patient."""


def _change(ctx: click.Context, action: str, patient_id: int, now: dt.datetime | None) -> None:
    from coachbot.services.status_changes import TransitionRefused, change_status

    runtime = runtime_of(ctx)
    try:
        record = change_status(
            runtime.session_factory,
            patient_id,
            action,
            now=now or utcnow(),
            actor="cli",
            settings=runtime.settings,
        )
    except LookupError:
        fail(f"no patient with id {patient_id}")
    except TransitionRefused as exc:
        fail(f"{action} refused: {exc}")
    click.echo(f"patient {patient_id} is now {record.status}")


def _command(action: str, help_text: str) -> click.Command:
    @click.command(name=action, help=help_text)
    @click.option("--id", "patient_id", type=int, required=True, help="The patient's id.")
    @NOW_OPTION
    @click.pass_context
    @friendly_errors
    def run(ctx: click.Context, patient_id: int, now: dt.datetime | None) -> None:
        _change(ctx, action, patient_id, now)

    return run


patient.add_command(_command("pause", "Pause an active patient's texts (a clinician pause)."))
patient.add_command(
    _command(
        "resume",
        "Resume a paused patient. Refused (exit 2) when the patient stopped the texts "
        "themselves: only their START or YES restarts them.",
    )
)
patient.add_command(_command("discharge", "Discharge a patient: no more texts."))


@patient.command("caregiver")
@click.option("--id", "patient_id", type=int, required=True, help="The patient's id.")
@click.option("--caregiver", "phone", default=None, help="The caregiver's mobile number.")
@click.option("--caregiver-name", "name", default=None, help="Their first name.")
@click.option("--caregiver-language", "language", default=None, help="en or es.")
@click.option("--remove", is_flag=True, help="Take the caregiver off this patient.")
@click.option(
    "--invite",
    is_flag=True,
    help="Ask a caregiver who was never invited (added before caregivers were texted) for YES.",
)
@NOW_OPTION
@click.pass_context
@friendly_errors
def caregiver(
    ctx: click.Context,
    patient_id: int,
    phone: str | None,
    name: str | None,
    language: str | None,
    remove: bool,
    invite: bool,
    now: dt.datetime | None,
) -> None:
    """Add or change a patient's caregiver (a new number is invited to reply YES), or
    --remove them."""
    from coachbot.services.care import change_caregiver
    from coachbot.services.caregivers.records import CaregiverEntry

    if remove == bool(phone):
        fail("--caregiver: give the caregiver's number, or --remove (not both)")
    runtime = runtime_of(ctx)
    entry = None if remove else CaregiverEntry(phone, name, language)
    try:
        with named_options(CAREGIVER_OPTIONS):
            changed = change_caregiver(
                runtime.session_factory,
                runtime.settings,
                patient_id,
                entry,
                now=now or utcnow(),
                actor="cli",
                invite=invite,
            )
    except LookupError:
        fail(f"no patient with id {patient_id}")
    click.echo(f"patient {patient_id}: {', '.join(changed) or 'no change'}")


@patient.command("close-watch")
@click.option("--id", "patient_id", type=int, required=True, help="The patient's id.")
@click.option("--close-watch-from", "starts", default=None, help="First day, e.g. 2026-12-01.")
@click.option(
    "--close-watch-days", "days", default=None, help="1 to 90 (default: the programme's)."
)
@click.option("--clear", is_flag=True, help="No close watch for this patient.")
@NOW_OPTION
@click.pass_context
@friendly_errors
def close_watch(
    ctx: click.Context,
    patient_id: int,
    starts: str | None,
    days: str | None,
    clear: bool,
    now: dt.datetime | None,
) -> None:
    """Set (or --clear) a patient's close-watch weeks."""
    from coachbot.services.care import change_close_watch

    if clear == bool(starts):
        fail("--close-watch-from: give the first day, or --clear (not both)")
    runtime = runtime_of(ctx)
    try:
        with named_options(CAREGIVER_OPTIONS):
            changed = change_close_watch(
                runtime.session_factory,
                patient_id,
                None if clear else starts,
                None if clear else days,
                now=now or utcnow(),
                actor="cli",
            )
    except LookupError:
        fail(f"no patient with id {patient_id}")
    click.echo(f"patient {patient_id}: {', '.join(changed) or 'no change'}")
