"""Helpers shared by the dashboard, auth, API and export tests (no tests in this module):
the statements a request sends, and a small history."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, AlertSeverity, NudgeState
from coachbot.models import InboundMessage, Patient
from coachbot.services.alerts import raise_alert
from tests.support.builders import (
    MONDAY_1300_NEW_YORK,
    make_answer,
    make_outbound,
    make_sent_nudge,
)
from tests.support.sign_in import PASSWORD, csrf_token, make_staff, post_form, sign_in, writer_of

# The instant the history is built around; the sign-in helpers live in tests/support/sign_in.py
# and are re-exported here for the tests that import them from this module.
NOW = MONDAY_1300_NEW_YORK
__all__ = ["PASSWORD", "csrf_token", "make_staff", "post_form", "sign_in", "writer_of"]


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
        nudge = make_sent_nudge(
            session, patient, sent_at=due, window=dt.timedelta(hours=10), state=NudgeState.DELIVERED
        )
        make_outbound(
            session,
            patient,
            body="How many hours did you sleep?",
            created_at=due,
            nudge=nudge,
            delivery_status="delivered",
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
            make_answer(
                session,
                nudge,
                recorded_at=reply_at,
                value=6.0 + day % 3,
                unit="hours",
                inbound=inbound,
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
