"""`coachbot adherence`: the per-track report, audited per patient like a page view."""

from __future__ import annotations

import datetime as dt
import json

import click

from coachbot.cli.common import NOW_OPTION, fail, friendly_errors, runtime_of
from coachbot.domain.clock import utcnow


@click.command()
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
    from coachbot.services.reports import adherence_report

    now = now or utcnow()
    # A report from the command line reads records as a page does: audited per patient.
    report = adherence_report(
        runtime_of(ctx).session_factory,
        patient_id=patient_id,
        days=days,
        now=now,
        actor="cli",
        action="cli.adherence",
        read_at=utcnow(),
    )
    if report is None:
        fail(f"--patient: no patient with id {patient_id}")
    by_patient: dict[int, list[dict[str, object]]] = {i: [] for i in report.patient_ids}
    for row in report.rows:
        by_patient.setdefault(row.patient_id, []).append(row.as_json())
    payload = {
        "days": days,
        "as_of": now.isoformat(),
        "patients": [{"patient_id": pid, "tracks": tracks} for pid, tracks in by_patient.items()],
    }
    click.echo(json.dumps(payload, indent=2 if not as_json else None))
