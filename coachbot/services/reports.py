"""Reports from the command line, read as a page is: every patient whose record the report
reads gets an audit row, in the report's own transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import Patient, TrackSchedule
from coachbot.queries.adherence import TrackAdherence, adherence_by_track, patient_ids
from coachbot.services import audit


@dataclass(frozen=True)
class AdherenceReport:
    patient_ids: list[int]  # who the report covers, those with no nudges included
    rows: list[TrackAdherence]


def adherence_report(
    sessions: sessionmaker[Session],
    *,
    patient_id: int | None,
    days: int,
    now: dt.datetime,
    actor: str,
    action: str,
    read_at: dt.datetime,
) -> AdherenceReport | None:
    """Per patient and track, the last `days` days before `now`: one patient's or everyone's,
    each audited as read at `read_at`. None when `patient_id` names no patient (nothing read,
    nothing audited)."""
    with sessions.begin() as session:
        if patient_id is not None and session.get(Patient, patient_id) is None:
            return None
        one = [patient_id] if patient_id is not None else None
        rows = adherence_by_track(session, now=now, days=days, patient_ids=one)
        ids = one if one is not None else patient_ids(session)
        audit.record_reads(session, actor=actor, action=action, now=read_at, patient_ids=ids)
    return AdherenceReport(ids, rows)


def patient_schedules(
    sessions: sessionmaker[Session], patient_id: int, *, actor: str, action: str, now: dt.datetime
) -> tuple[Patient, list[TrackSchedule]] | None:
    """A patient and their track schedules (`coachbot schedule show --patient`), audited as
    a read of the record. None when there is no such patient (nothing audited)."""
    with sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            return None
        audit.record(session, actor=actor, action=action, patient_id=patient.id, now=now)
        query = select(TrackSchedule).where(TrackSchedule.patient_id == patient_id)
        return patient, list(session.scalars(query))
