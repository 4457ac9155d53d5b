"""Helpers shared by the dashboard, auth, API and export tests (no tests in this module):
staff accounts, signing in through the real form with its CSRF token, and a small history."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import AlertKind, AlertSeverity, NudgeState
from coachbot.models import AdherenceRecord, InboundMessage, Nudge, OutboundMessage, Patient
from coachbot.services.alerts import raise_alert
from coachbot.services.staff import create_staff_user

PASSWORD = "correct-horse-battery-staple"
NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def writer_of(session: Session) -> sessionmaker[Session]:
    """Sessions on the database `session` reads, for services that open their own
    transaction (test set-up runs nothing concurrently, so the read-only flag is moot)."""
    return sessionmaker(session.get_bind(), expire_on_commit=False)


def make_staff(session: Session, email: str, role: str = "clinician") -> int:
    # The set-up so far is kept (as when the service committed the caller's session), and
    # a write session's transaction ends: on SQLite it holds the lock the service needs.
    session.commit()
    user = create_staff_user(
        writer_of(session), email=email, role=role, password=PASSWORD, now=NOW, actor="test"
    )
    return user.id


def csrf_token(client: Any, page: str = "/login") -> str:
    html = client.get(page).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {page}"
    return match.group(1) or match.group(2)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def post_form(client: Any, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Posts with the session's CSRF token, as the page's own form would."""
    token = csrf_token(client, "/account/tokens")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


@contextlib.contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine (and its read-only variant) sends inside the block,
    SQLite's BEGIN IMMEDIATE included: what a request reads, writes and locks."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(statements: list[str]) -> list[str]:
    """The statements that change rows or take SQLite's write lock."""
    return [
        s
        for s in statements
        if s.split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")
        or s.upper().startswith("BEGIN IMMEDIATE")
    ]


def give_history(session: Session, patient: Patient, days: int = 10) -> None:
    """One sleep nudge a day for `days` days, answered with hours except every third day,
    plus the texts either way and an open red-flag alert."""
    for day in range(days):
        due = NOW - dt.timedelta(days=day, hours=4)
        nudge = Nudge(
            patient_id=patient.id,
            track="sleep",
            occurrence_key=f"sleep:{due.isoformat()}",
            due_at=due,
            send_at=due,
            state=NudgeState.DELIVERED,
            sent_at=due,
            reply_window_ends_at=due + dt.timedelta(hours=10),
            created_at=due,
            updated_at=due,
        )
        session.add(nudge)
        session.flush()
        session.add(
            OutboundMessage(
                patient_id=patient.id,
                to_e164=patient.phone_e164,
                body="How many hours did you sleep?",
                kind="nudge",
                nudge_id=nudge.id,
                backend="console",
                delivery_status="delivered",
                created_at=due,
            )
        )
        if day % 3 != 2:
            reply_at = due + dt.timedelta(minutes=20)
            inbound = InboundMessage(
                provider_sid=f"SMhist{patient.id}x{day}",
                from_e164=patient.phone_e164,
                to_e164="+16175550100",
                body=f"{6 + day % 3} hours",
                patient_id=patient.id,
                nudge_id=nudge.id,
                received_at=reply_at,
            )
            session.add(inbound)
            session.flush()
            session.add(
                AdherenceRecord(
                    patient_id=patient.id,
                    nudge_id=nudge.id,
                    track="sleep",
                    outcome="done",
                    value=6.0 + day % 3,
                    unit="hours",
                    inbound_message_id=inbound.id,
                    recorded_at=reply_at,
                )
            )
    raise_alert(
        session,
        patient_id=patient.id,
        kind=AlertKind.RED_FLAG,
        severity=AlertSeverity.URGENT,
        detail="red_flag:chest_pain",
        now=NOW - dt.timedelta(hours=1),
    )
    session.commit()
