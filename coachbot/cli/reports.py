"""`coachbot adherence`: the per-track report, audited per patient like a page view."""

from __future__ import annotations

import datetime as dt
import json

import click
from sqlalchemy import select

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
