"""Raising alerts for people to act on; the dashboard's queue reads them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, AlertSeverity
from coachbot.models import Alert


def raise_alert(
    session: Session,
    *,
    patient_id: int | None,
    kind: AlertKind,
    severity: AlertSeverity,
    detail: str,
    now: dt.datetime,
    inbound_message_id: int | None = None,
) -> Alert:
    """Adds the alert to the caller's transaction. `detail` holds codes, never message text."""
    alert = Alert(
        patient_id=patient_id,
        kind=kind,
        severity=severity,
        detail=detail[:200],
        inbound_message_id=inbound_message_id,
        created_at=now,
    )
    session.add(alert)
    return alert
