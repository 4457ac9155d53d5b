"""Append-only audit of who did what to which patient's record, including refusals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from coachbot.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    patient_id: int | None = None,
    outcome: str = "ok",
    detail: str | None = None,
) -> None:
    """Adds an entry to the caller's transaction: it commits or rolls back with the action."""
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action=action,
            patient_id=patient_id,
            outcome=outcome,
            detail=detail[:500] if detail else None,
        )
    )
