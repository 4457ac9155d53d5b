"""Signed posts to /sms/inbound against a real database, and what the inbound tests read back:
the empty TwiML answer, the clinic's number, the Monday 08:30 New York start (T0), a nudge sent
for the patient to answer, the rows, alerts, replies, consent ledger and suppressions. Shared by
tests/web/test_inbound_pipeline.py (and its _answers and _rails siblings),
test_inbound_safety.py, test_inbound_consent.py, test_inbound_caregivers.py and
test_delivery_health_counts.py.

`session` is a fixture: a module takes it with `session = inbound_webhook.session`, in place of
tests/conftest.py's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState
from coachbot.models import (
    Alert,
    ConsentEvent,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
    SuppressedNumber,
)
from tests.support.builders import MONDAY_0830_NEW_YORK
from tests.support.builders import make_nudge as build_nudge
from tests.support.twilio_signing import inbound_params, post_signed

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
CLINIC_PHONE = "+16175550199"
T0 = MONDAY_0830_NEW_YORK  # a sleep nudge goes out now


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """The test's own view of the database. A plain engine, without the app's BEGIN IMMEDIATE,
    so reading between two posts never holds SQLite's write lock against the webhook."""
    engine = create_engine(database_url)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def make_nudge(
    session: Session,
    patient: Patient,
    track: str = "sleep",
    *,
    sent_at: dt.datetime = T0,
    window: dt.timedelta = dt.timedelta(hours=10),
    state: NudgeState = NudgeState.SENT,
    key: str | None = None,
) -> Nudge:
    sent = state in (NudgeState.SENT, NudgeState.DELIVERED)
    nudge = build_nudge(
        session,
        patient,
        due=sent_at,
        track=track,
        state=state,
        sent_at=sent_at if sent else None,
        reply_window_ends_at=sent_at + window if sent else None,
        key=key,
    )
    session.commit()
    return nudge


def post(client: Any, sender: str, body: str, at: dt.datetime, **extra: str) -> Any:
    params = inbound_params(sender, body) | extra
    with freeze_time(at):
        response = post_signed(client, "/sms/inbound", params)
    assert response.status_code == 200
    return response


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def count(session: Session, model: type[Any], *where: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def last_inbound(session: Session) -> InboundMessage:
    session.expire_all()
    return session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()  # type: ignore[return-value]


def alerts(session: Session, kind: AlertKind) -> list[Alert]:
    session.expire_all()
    return list(session.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.id)))


MINUTE = dt.timedelta(minutes=1)
STRANGER = "+16175559999"
CAREGIVER = "+16175550777"


def outbound_to(db: Session, number: str) -> list[OutboundMessage]:
    db.expire_all()
    return list(
        db.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.to_e164 == number)
            .order_by(OutboundMessage.id)
        )
    )


def ledger(db: Session, number: str) -> list[tuple[str, str | None]]:
    db.expire_all()
    rows = db.execute(
        select(ConsentEvent.event, ConsentEvent.text)
        .where(ConsentEvent.number_e164 == number)
        .order_by(ConsentEvent.id)
    ).all()
    return [(event, text) for event, text in rows]


def suppressed(db: Session, number: str) -> bool:
    db.expire_all()
    return db.get(SuppressedNumber, number) is not None
