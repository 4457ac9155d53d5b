"""Raising alerts for people to act on; the dashboard's queue reads them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import AlertKind, AlertSeverity, AlertStatus
from coachbot.models import Alert
from coachbot.queries.alerts import recent_alerts
from coachbot.queries.pages import PageView, pages_for
from coachbot.queries.staff import staff_names
from coachbot.services import audit


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
    sessions: sessionmaker[Session],
    alert_id: int,
    *,
    actor_id: int,
    now: dt.datetime,
    note: str | None = None,
) -> Alert:
    """Open -> acknowledged, audited, in one transaction; the alert as it now is. The time to
    acknowledge is kept as acknowledged_at - created_at. AlertActionRefused when the alert is
    not open; LookupError when there is no such alert. Whether the actor may act on it is the
    caller's check (the alerts page's ownership rule)."""
    with sessions.begin() as session:
        alert = _locked(session, alert_id)
        acknowledge(session, alert, actor_id=actor_id, now=now, note=note)
    return alert


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
    sessions: sessionmaker[Session], alert_id: int, *, actor_id: int, now: dt.datetime, note: str
) -> Alert:
    """Open or acknowledged -> resolved with a note, audited, in one transaction; resolving an
    open alert acknowledges it. AlertActionRefused when it is already resolved or the note is
    blank; LookupError when there is no such alert."""
    with sessions.begin() as session:
        alert = _locked(session, alert_id)
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
    return alert


@dataclass(frozen=True)
class AlertListing:
    alerts: list[Alert]
    pages: dict[int, list[PageView]]  # per alert id: who was paged, when, by which channel
    names: dict[int, str]  # staff display names by id (who acknowledged)


def list_alerts(
    sessions: sessionmaker[Session],
    *,
    open_only: bool,
    limit: int,
    actor: str,
    action: str,
    now: dt.datetime,
) -> AlertListing:
    """The newest alerts with their pages and the staff names behind them, for a listing
    outside the dashboard (`coachbot alerts`). A listing that names patients' alerts is a
    read of their records: one audit row per patient, in the same transaction."""
    with sessions.begin() as session:
        alerts = recent_alerts(session, open_only=open_only, limit=limit)
        listing = AlertListing(
            alerts, pages_for(session, [a.id for a in alerts]), staff_names(session)
        )
        audit.record_reads(
            session,
            actor=actor,
            action=action,
            now=now,
            patient_ids=sorted({a.patient_id for a in alerts if a.patient_id is not None}),
        )
    return listing


def _locked(session: Session, alert_id: int) -> Alert:
    # Locked on PostgreSQL so two people acting on one alert at once take turns, and the
    # second sees the first one's status; SQLite's write transaction already serialises them.
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise LookupError(f"no alert with id {alert_id}")
    return alert
