"""Twilio status callbacks: store each distinct event once, move statuses forward only.

A callback can arrive before dispatch has recorded the provider id (Twilio is fast, our
commit is not instant). The event row is stored regardless, and `apply_stored_events`
replays it when the send is recorded, so no callback is lost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import (
    DELIVERY_STATUS_RANK,
    NudgeState,
    delivery_status_advances,
)
from coachbot.models import DeliveryEvent, Nudge, OutboundMessage

_NUDGE_STATE_FOR_STATUS = {
    "sent": NudgeState.SENT,
    "delivered": NudgeState.DELIVERED,
    "read": NudgeState.DELIVERED,
    "undelivered": NudgeState.FAILED,
    "failed": NudgeState.FAILED,
}
# A nudge in one of these states may still learn its fate from a callback.
_OPEN_NUDGE_STATES = (NudgeState.SENDING, NudgeState.SENT, NudgeState.AMBIGUOUS)


@dataclass(frozen=True)
class StatusCallback:
    provider_sid: str
    status: str
    error_code: str | None = None
    nudge_id: int | None = None


def handle_status(
    session_factory: sessionmaker[Session], callback: StatusCallback, now: dt.datetime
) -> bool:
    """Returns False for a status we do not know (still acknowledged to Twilio)."""
    status = callback.status.strip().lower()
    if status not in DELIVERY_STATUS_RANK:
        return False
    with session_factory() as session, session.begin():
        _store_event(session, callback.provider_sid, status, callback.error_code, now)
        message = session.scalar(
            select(OutboundMessage).where(OutboundMessage.provider_sid == callback.provider_sid)
        )
        nudge = session.scalar(select(Nudge).where(Nudge.provider_sid == callback.provider_sid))
        if nudge is None and callback.nudge_id is not None:
            candidate = session.get(Nudge, callback.nudge_id)
            # Only adopt the id for a nudge that has no provider id yet: a forged or stale
            # nudge number must not let one message's callback rewrite another's state.
            if candidate is not None and candidate.provider_sid is None:
                candidate.provider_sid = callback.provider_sid
                nudge = candidate
        _apply(message, nudge, status, callback.error_code, now)
    return True


def apply_stored_events(
    session: Session,
    provider_sid: str,
    message: OutboundMessage | None,
    nudge: Nudge | None,
    now: dt.datetime,
) -> None:
    events = session.execute(
        select(DeliveryEvent.status, DeliveryEvent.error_code).where(
            DeliveryEvent.provider_sid == provider_sid
        )
    ).all()
    for status, error_code in sorted(events, key=lambda e: DELIVERY_STATUS_RANK.get(e[0], -1)):
        _apply(message, nudge, status, error_code, now)


def _apply(
    message: OutboundMessage | None,
    nudge: Nudge | None,
    status: str,
    error_code: str | None,
    now: dt.datetime,
) -> None:
    if message is not None and delivery_status_advances(message.delivery_status, status):
        message.delivery_status = status
        if error_code:
            message.error_code = error_code
    if nudge is not None and nudge.state in _OPEN_NUDGE_STATES:
        target = _NUDGE_STATE_FOR_STATUS.get(status)
        if target is not None and target != nudge.state:
            nudge.state = target
            nudge.state_reason = error_code if target is NudgeState.FAILED else None
            nudge.lease_expires_at = None
            nudge.updated_at = now


def _store_event(
    session: Session, sid: str, status: str, error_code: str | None, now: dt.datetime
) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(DeliveryEvent)
        .values(provider_sid=sid, status=status, error_code=error_code, received_at=now)
        .on_conflict_do_nothing(index_elements=["provider_sid", "status"])
    )
