"""`coachbot patient pause|resume|discharge --id N`: the status changes of the patient page,
with the same rules. A resume the patient has to give themselves (they texted STOP, or
asked in their own words to stop) is refused with exit status 2 and the reason."""

from __future__ import annotations

import datetime as dt

import click

from coachbot.cli.common import NOW_OPTION, fail, friendly_errors, runtime_of
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
