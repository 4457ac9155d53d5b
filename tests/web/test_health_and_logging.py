"""Health check, security headers, and the privacy of what the console backend logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.db import make_engine
from coachbot.models import InboundMessage
from coachbot.sms.console import ConsoleGateway
from coachbot.sms.gateway import OutgoingSms
from tests.support.twilio_signing import inbound_params, post_signed, sign


def test_healthz_answers_200_when_the_database_answers(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_healthz_answers_503_when_the_database_does_not(client, runtime) -> None:  # type: ignore[no-untyped-def]
    # Nothing listens on port 1: the connection is refused at once.
    runtime.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_console_backend_logs_only_the_last_four_digits(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="coachbot.sms.console")
    ConsoleGateway().send(OutgoingSms(to="+16175550142", body="Maya, time for your walk"))
    text = caplog.text
    assert "***0142" in text
    assert "+16175550142" not in text
    assert "walk" not in text


@pytest.mark.parametrize("signature", [None, "", "   ", "forged-signature"])
def test_a_missing_or_forged_signature_gets_403_and_nothing_is_stored(
    client: Any,
    session: Session,
    signature: str | None,
) -> None:
    params = inbound_params("+16175550142", "DONE")
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    response = client.post("/sms/inbound", data=params, headers=headers)
    assert response.status_code == 403
    assert session.scalar(select(func.count(InboundMessage.id))) == 0


def test_a_signature_for_other_parameters_is_refused(client, session) -> None:  # type: ignore[no-untyped-def]
    params = inbound_params("+16175550142", "DONE")
    tampered = {**params, "Body": "STOP"}
    response = client.post(
        "/sms/inbound", data=tampered, headers={"X-Twilio-Signature": sign("/sms/inbound", params)}
    )
    assert response.status_code == 403
    assert session.scalar(select(func.count(InboundMessage.id))) == 0


def test_a_signed_message_from_an_unknown_number_is_stored_and_answered_generically(
    client: Any,
    session: Session,
) -> None:
    response = post_signed(client, "/sms/inbound", inbound_params("+16175550999", "hello?"))
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    row = session.scalars(select(InboundMessage)).one()
    assert row.outcome == "unknown_sender"
    assert row.patient_id is None
