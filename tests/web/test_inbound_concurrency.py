"""The same MessageSid posted concurrently to a real HTTP server: one record, one reply."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from coachbot.domain.states import NudgeState
from coachbot.models import AdherenceRecord, InboundMessage, OutboundMessage
from tests.support.builders import make_nudge, make_patient
from tests.support.twilio_signing import inbound_params, sign

COPIES = 10


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)  # no BEGIN IMMEDIATE: reads never block the server
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


@pytest.fixture
def base_url(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def _post_all_at_once(url: str, payloads: list[dict[str, str]]) -> list[requests.Response]:
    barrier = threading.Barrier(len(payloads))

    def one(params: dict[str, str]) -> requests.Response:
        body = urlencode(params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign("/sms/inbound", params),
        }
        barrier.wait(timeout=10)
        return requests.post(url + "/sms/inbound", data=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        return list(pool.map(one, payloads))


def _count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_one_message_id_posted_ten_times_at_once_creates_one_record_and_one_reply(
    base_url: str, session: Session
) -> None:
    now = dt.datetime.now(dt.UTC)
    patient = make_patient(session)
    make_nudge(
        session,
        patient,
        due=now - dt.timedelta(minutes=5),
        track="diet",
        state=NudgeState.SENT,
        sent_at=now - dt.timedelta(minutes=5),
        reply_window_ends_at=now + dt.timedelta(hours=4),
        key="diet:concurrency",
    )
    session.commit()
    params = inbound_params(patient.phone_e164, "done")

    responses = _post_all_at_once(base_url, [params] * COPIES)

    assert [r.status_code for r in responses] == [200] * COPIES
    answers = {r.text for r in responses}
    assert len(answers) == 1
    assert "<Message>" in answers.pop()
    assert _count(session, InboundMessage) == 1
    assert _count(session, OutboundMessage) == 1
    assert _count(session, AdherenceRecord) == 1


def test_different_answers_to_one_nudge_at_once_are_all_kept(
    base_url: str, session: Session
) -> None:
    """Two messages racing for the same adherence row: both inbound rows survive, one record."""
    now = dt.datetime.now(dt.UTC)
    patient = make_patient(session)
    make_nudge(
        session,
        patient,
        due=now,
        track="diet",
        state=NudgeState.SENT,
        sent_at=now - dt.timedelta(minutes=1),
        reply_window_ends_at=now + dt.timedelta(hours=4),
        key="diet:race",
    )
    session.commit()
    payloads = [inbound_params(patient.phone_e164, "done") for _ in range(6)]

    responses = _post_all_at_once(base_url, payloads)

    assert [r.status_code for r in responses] == [200] * 6
    assert _count(session, InboundMessage) == 6
    assert _count(session, AdherenceRecord) == 1
    outcomes = set(session.scalars(select(InboundMessage.outcome)))
    assert "error" not in outcomes
