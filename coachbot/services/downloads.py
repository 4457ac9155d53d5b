"""The audit of a cohort download: an entry in the trail of every record it holds, written in
a transaction of its own before the first byte goes out (a download cut short still
happened). One patient's export is audited with `audit.viewed`; the exports themselves are
read-only queries in `coachbot/queries/exports/`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import Patient
from coachbot.services import audit


def record_cohort_export(
    session_factory: sessionmaker[Session], *, actor: str, clinician_id: int, now: dt.datetime
) -> None:
    """The cohort CSV: an entry in the trail of each of the clinician's patients it holds."""
    with session_factory.begin() as session:
        audit.record_reads(
            session,
            actor=actor,
            action="export.cohort_csv",
            now=now,
            patient_ids=session.scalars(
                select(Patient.id).where(Patient.clinician_id == clinician_id)
            ),
            detail="cohort",
        )
