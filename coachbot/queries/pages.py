"""What pages and people may see of paging: who was paged for what (the on-call's access
to records beyond their own patients), and each alert's pages for the alerts views."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertStatus
from coachbot.models import Alert, Page, Patient, StaffUser


def was_paged(
    session: Session, staff_id: int, *, alert_id: int | None = None, patient_id: int | None = None
) -> bool:
    """True when `staff_id` was paged for this alert, or for an alert of this patient that
    is not resolved yet (open or acknowledged: the person on it keeps seeing the record
    until it is resolved): the on-call's access to records beyond their own patients."""
    query = select(Page.id).where(Page.recipient_id == staff_id)
    if alert_id is not None:
        query = query.where(Page.alert_id == alert_id)
    if patient_id is not None:
        query = query.join(Alert, Alert.id == Page.alert_id).where(
            Alert.patient_id == patient_id, Alert.status != AlertStatus.RESOLVED
        )
    return session.scalar(query.limit(1)) is not None


@dataclass(frozen=True)
class PageView:
    id: int
    attempt: int
    recipient: str
    role: str
    channel: str
    state: str
    tries: int
    error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "attempt": self.attempt,
            "recipient": self.recipient,
            "role": self.role,
            "channel": self.channel,
            "state": self.state,
            "tries": self.tries,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
        }


def pages_for(session: Session, alert_ids: Sequence[int]) -> dict[int, list[PageView]]:
    out: dict[int, list[PageView]] = {i: [] for i in alert_ids}
    if not alert_ids:
        return out
    rows = session.execute(
        select(Page, StaffUser.display_name)
        .join(StaffUser, StaffUser.id == Page.recipient_id)
        .where(Page.alert_id.in_(list(alert_ids)))
        .order_by(Page.alert_id, Page.attempt, Page.id)
    ).all()
    for page, name in rows:
        out[page.alert_id].append(
            PageView(
                page.id,
                page.attempt,
                name,
                page.role,
                page.channel,
                page.state,
                page.tries,
                page.error,
                page.created_at,
                page.sent_at,
            )
        )
    return out


def paged_alerts(
    session: Session, staff_id: int, limit: int = 200
) -> list[tuple[Alert, str | None]]:
    """Unresolved alerts paged to `staff_id`, newest first, with the patient's first name
    (None: an alert with no patient)."""
    paged = select(Page.alert_id).where(Page.recipient_id == staff_id).distinct()
    rows = session.execute(
        select(Alert, Patient.first_name)
        .outerjoin(Patient, Patient.id == Alert.patient_id)
        .where(Alert.id.in_(paged), Alert.status != AlertStatus.RESOLVED)
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    return [(alert, name) for alert, name in rows]
