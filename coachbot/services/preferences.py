"""A staff member's own settings: for now, the time zone the dashboard shows their times in."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import StaffUser
from coachbot.services import audit
from coachbot.services.errors import ValidationFailed


def checked_zone(name: str) -> str | None:
    """The zone's name if zoneinfo knows it, None for an empty field (the clinic's zone);
    anything else is refused with the field's message."""
    name = name.strip()
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            {"timezone": f"{name[:64]!r} is not a time zone: use a name such as Europe/Madrid"}
        ) from None
    return name


def own_timezone(session: Session, user_id: int) -> str | None:
    """The zone the person chose, or None for the clinic's (a read in the caller's session)."""
    return session.scalar(select(StaffUser.timezone).where(StaffUser.id == user_id))


def set_own_timezone(
    session_factory: sessionmaker[Session],
    user_id: int,
    zone_name: str,
    *,
    now: dt.datetime,
    actor: str,
) -> str | None:
    """Saves the person's zone (an empty name goes back to the clinic's), audited, in one
    transaction; returns what was saved. ValidationFailed for a name zoneinfo does not know."""
    zone = checked_zone(zone_name)
    with session_factory.begin() as session:
        user = session.get_one(StaffUser, user_id)
        user.timezone = zone
        audit.record(
            session,
            actor=actor,
            action="staff.timezone",
            now=now,
            detail=f"zone={zone or 'clinic'}",
        )
    return zone
