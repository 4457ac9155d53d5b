"""Marking a "To read" text as read: who read it and when, audited, once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import InboundMessage
from coachbot.services import audit


class AlreadyRead(ValueError):
    """Someone marked the text read first (two people reading the inbox at once)."""


def mark_read(
    sessions: sessionmaker[Session], message_id: int, *, actor_id: int, now: dt.datetime
) -> None:
    """Waiting -> read by `actor_id` at `now`, with an audit row, in one transaction.

    The UPDATE only matches a row still waiting, so when two people press "Mark read" at
    once exactly one wins and the other is told (AlreadyRead, nothing written); the first
    reader is never overwritten. Whether the actor may see the text is the caller's check
    (the dashboard's ownership rule).
    """
    with sessions.begin() as session:
        patient_id = session.scalar(
            select(InboundMessage.patient_id).where(InboundMessage.id == message_id)
        )
        marked = session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.id == message_id,
                InboundMessage.needs_reading.is_(True),
                InboundMessage.read_at.is_(None),
            )
            .values(read_at=now, read_by_id=actor_id)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            raise AlreadyRead(f"text {message_id} was already marked read")
        audit.record(
            session,
            actor=f"staff:{actor_id}",
            action="inbox.mark_read",
            patient_id=patient_id,
            now=now,
            detail=f"inbound={message_id}",
        )
