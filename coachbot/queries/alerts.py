"""What the alerts queue and an alert's page show beside the alert row: the patient's own
words (the text that raised it) and who acknowledged it, for a page of alerts in one query;
the newest alerts for `coachbot alerts`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertStatus
from coachbot.models import Alert, InboundMessage, StaffUser


@dataclass(frozen=True)
class AlertWords:
    words: str | None  # the inbound text that raised the alert; None when no text did
    from_caregiver: bool
    acknowledged_by: str | None


def alert_words(session: Session, alert_ids: Sequence[int]) -> dict[int, AlertWords]:
    """Per alert id: the raising text and the acknowledger's name. The caller shows these
    only for alerts the viewer may see (their own patients, or paged to them on call)."""
    if not alert_ids:
        return {}
    rows = session.execute(
        select(Alert.id, InboundMessage.body, InboundMessage.is_proxy, StaffUser.display_name)
        .outerjoin(InboundMessage, InboundMessage.id == Alert.inbound_message_id)
        .outerjoin(StaffUser, StaffUser.id == Alert.acknowledged_by_id)
        .where(Alert.id.in_(list(alert_ids)))
    )
    return {
        alert_id: AlertWords(body, bool(is_proxy), acker)
        for alert_id, body, is_proxy, acker in rows
    }


def recent_alerts(session: Session, *, open_only: bool, limit: int) -> list[Alert]:
    """The newest `limit` alerts (open ones only, or all), newest first."""
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.status == AlertStatus.OPEN)
    return list(session.scalars(query))
