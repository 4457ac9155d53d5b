"""Append-only audit of who did what to which patient's record, including refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

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


def record_reads(
    session: Session,
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    patient_ids: Iterable[int],
    detail: str | None = None,
) -> None:
    """One entry per patient whose record was read, in one statement (a cohort report can
    read thousands), in the caller's transaction."""
    rows = [
        {
            "at": now,
            "actor": actor,
            "action": action,
            "patient_id": pid,
            "outcome": "ok",
            "detail": detail[:500] if detail else None,
        }
        for pid in patient_ids
    ]
    if rows:
        session.execute(insert(AuditEntry), rows)


def deny(
    sessions: sessionmaker[Session],
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    patient_id: int | None = None,
    detail: str | None = None,
) -> None:
    """A refusal, in its own transaction: nothing else happened, so nothing commits with it."""
    with sessions.begin() as session:
        record(
            session,
            actor=actor,
            action=action,
            now=now,
            patient_id=patient_id,
            outcome="denied",
            detail=detail,
        )


def viewed(
    sessions: sessionmaker[Session],
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    patient_id: int | None = None,
    detail: str | None = None,
) -> None:
    """A read (a page, an export), in its own transaction: a read changes nothing that the
    entry could commit with."""
    with sessions.begin() as session:
        record(session, actor=actor, action=action, now=now, patient_id=patient_id, detail=detail)
