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


class AlertActionRefused(ValueError):
    """The alert is not in a state that allows this action (e.g. resolving it twice)."""


def acknowledge_alert(
    session: Session, alert: Alert, *, actor_id: int, now: dt.datetime, note: str | None = None
) -> None:
    """Open -> acknowledged; the time to acknowledge is kept as acknowledged_at - created_at."""
    acknowledge(session, alert, actor_id=actor_id, now=now, note=note)
    session.commit()


def acknowledge(
    session: Session,
    alert: Alert,
    *,
    actor_id: int,
    now: dt.datetime,
    note: str | None = None,
    via: str | None = None,
) -> None:
    """`acknowledge_alert` inside the caller's transaction (an ACK by SMS commits with the
    inbound message that carried it); `via` names the channel in the audit row."""
    from coachbot.domain.states import AlertStatus
    from coachbot.services import audit

    if alert.status != AlertStatus.OPEN:
        raise AlertActionRefused(f"alert {alert.id} is {alert.status}, not open")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by_id = actor_id
    if note:
        alert.resolution_note = note[:2000]
    audit.record(
        session,
        actor=f"staff:{actor_id}",
        action="alert.acknowledge",
        patient_id=alert.patient_id,
        now=now,
        detail=f"alert={alert.id} kind={alert.kind}" + (f" via={via}" if via else ""),
    )


def resolve_alert(
    session: Session, alert: Alert, *, actor_id: int, now: dt.datetime, note: str
) -> None:
    """Open or acknowledged -> resolved with a note; resolving an open alert acknowledges it."""
    from coachbot.domain.states import AlertStatus
    from coachbot.services import audit

    if alert.status == AlertStatus.RESOLVED:
        raise AlertActionRefused(f"alert {alert.id} is already resolved")
    if not note.strip():
        raise AlertActionRefused("a note is required to resolve an alert")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by_id = actor_id
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolved_by_id = actor_id
    alert.resolution_note = note.strip()[:2000]
    audit.record(
        session,
        actor=f"staff:{actor_id}",
        action="alert.resolve",
        patient_id=alert.patient_id,
        now=now,
        detail=f"alert={alert.id} kind={alert.kind}",
    )
    session.commit()
