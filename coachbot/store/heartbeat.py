"""The clock's heartbeat row: when it last ticked and what the tick did (delivery health
reads it, `coachbot.queries.delivery_health`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from coachbot.models import ClockHeartbeat
from coachbot.store.dialect import dialect_insert


def upsert_heartbeat(session: Session, name: str, at: dt.datetime, summary: str) -> None:
    """One row per clock, overwritten by every tick (ON CONFLICT: several clock processes
    may start at once)."""
    stmt = dialect_insert(session)(ClockHeartbeat).values(
        name=name, last_tick_at=at, last_summary=summary
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"], set_={"last_tick_at": at, "last_summary": summary}
        )
    )
