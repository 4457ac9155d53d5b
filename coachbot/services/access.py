"""Who may open a patient's record, decided once and audited: the dashboard's pages and the
JSON API ask here before they read a record.

The record is read through the caller's session, so it lives on in the session the view
reads with; the audit entry is written in its own short transaction. Two transactions on
purpose: the read must not take SQLite's write lock (a slow page would make a webhook
wait), and the entry must be committed even though the view writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import Role
from coachbot.models import Patient
from coachbot.queries.pages import was_paged
from coachbot.services import audit

ON_CALL_DETAIL = "on-call: paged for an unresolved alert"


@dataclass(frozen=True)
class Viewer:
    """The staff member asking; `actor` is how the audit log names them."""

    user_id: int
    role: str

    @property
    def actor(self) -> str:
        return f"staff:{self.user_id}"


def open_patient_page(
    read: Session,
    sessions: sessionmaker[Session],
    viewer: Viewer,
    patient_id: int,
    *,
    action: str,
    now: dt.datetime,
    on_call: bool = False,
) -> Patient | None:
    """The patient if `viewer` may open the record from a page, else None (refusal audited).

    Only the owning clinician sees a record: admins manage accounts and operators run
    delivery, neither needs patients' replies. The one exception, with `on_call=True`: a
    clinician paged for an alert of this patient that is not resolved covers the whole
    clinic and opens the record; every such opening is audited here. The owner's own view
    is audited by the caller, which names what was viewed.
    """
    patient = read.get(Patient, patient_id)
    if (
        on_call
        and patient is not None
        and viewer.role == Role.CLINICIAN
        and patient.clinician_id != viewer.user_id
        and was_paged(read, viewer.user_id, patient_id=patient_id)
    ):
        audit.viewed(
            sessions,
            actor=viewer.actor,
            action=action,
            now=now,
            patient_id=patient_id,
            detail=ON_CALL_DETAIL,
        )
        return patient
    if patient is None or viewer.role != Role.CLINICIAN or patient.clinician_id != viewer.user_id:
        audit.deny(
            sessions,
            actor=viewer.actor,
            action=action,
            now=now,
            patient_id=patient_id,
            detail="not found" if patient is None else "not the owning clinician",
        )
        return None
    return patient


def open_patient_api(
    read: Session,
    sessions: sessionmaker[Session],
    viewer: Viewer,
    patient_id: int,
    *,
    action: str,
    now: dt.datetime,
) -> Patient | None:
    """The patient if `viewer` owns the record, else None; through the API every request
    is one read, so the opening and the refusal are both audited here."""
    patient = read.get(Patient, patient_id)
    if patient is not None and patient.clinician_id == viewer.user_id:
        audit.viewed(
            sessions,
            actor=viewer.actor,
            action=action,
            now=now,
            patient_id=patient_id,
            detail="api",
        )
        return patient
    audit.deny(
        sessions,
        actor=viewer.actor,
        action=action,
        now=now,
        patient_id=patient_id,
        detail="api: not the owning clinician or no such patient",
    )
    return None
