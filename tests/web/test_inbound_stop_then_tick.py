"""STOP then a tick, with the real twilio client against the loopback Twilio server: nothing
more reaches that number, not even a nudge claimed before the STOP arrived."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from coachbot.app import create_app
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import Nudge, Patient
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.dispatch import claim_batch, dispatch_due, plan_nudges
from coachbot.services.tick import TickSummary, run_tick
from coachbot.settings import Settings
from tests.support.builders import make_patient
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN, inbound_params, post_signed

ACCOUNT_SID = "AC" + "b2" * 16
FROM_NUMBER = "+16175550100"
STOPPER = "+16175550142"
CONTROL = "+16175550143"
# 08:30 in New York: the stopper's sleep nudge is due; the control patient's comes at 08:35.
AT_0830 = dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC)


@pytest.fixture
def twilio_runtime(settings: Settings) -> Iterator[tuple[Runtime, FakeTwilio]]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        runtime = build_runtime(
            dataclasses.replace(
                settings,
                sms_backend="twilio",
                twilio_account_sid=ACCOUNT_SID,
                twilio_from_number=FROM_NUMBER,
                twilio_api_base_url=fake.base_url,
                twilio_timeout_seconds=5.0,
            )
        )
        yield runtime, fake
        runtime.close()


def test_stop_after_a_claim_means_the_loopback_server_never_hears_of_that_number(
    twilio_runtime: tuple[Runtime, FakeTwilio],
) -> None:
    runtime, fake = twilio_runtime
    with runtime.session_factory() as session:
        stopper = make_patient(session, phone=STOPPER, tracks={"sleep": "08:30,12:00"})
        make_patient(session, phone=CONTROL, tracks={"sleep": "08:35"})
        stopper_id = stopper.id
    client: Any = create_app(runtime=runtime).test_client()

    plan_nudges(runtime.session_factory, AT_0830)
    claimed = claim_batch(runtime.session_factory, AT_0830)
    with runtime.session_factory() as session:
        (claimed_nudge,) = session.scalars(select(Nudge).where(Nudge.id.in_(claimed))).all()
        assert (claimed_nudge.patient_id, claimed_nudge.state) == (stopper_id, NudgeState.CLAIMED)

    with freeze_time(AT_0830 + dt.timedelta(seconds=1)):
        answer = post_signed(client, "/sms/inbound", inbound_params(STOPPER, "Stop"))
    assert answer.status_code == 200
    assert "unsubscribed" in answer.get_data(as_text=True)

    summary = TickSummary()
    dispatch_due(
        runtime.session_factory,
        runtime.gateway,
        runtime.library,
        runtime.settings,
        AT_0830 + dt.timedelta(seconds=2),
        summary,
    )
    for minutes in (5, 10, 60, 210, 24 * 60):
        run_tick(
            runtime.session_factory,
            runtime.gateway,
            runtime.library,
            runtime.settings,
            AT_0830 + dt.timedelta(minutes=minutes),
        )

    assert fake.count_by_to().get(STOPPER, 0) == 0
    # The tick did run: the control patient got their nudges through the same server.
    assert fake.count_by_to()[CONTROL] >= 1
    with runtime.session_factory() as session:
        assert session.get_one(Patient, stopper_id).status == PatientStatus.OPTED_OUT
        states = set(session.scalars(select(Nudge.state).where(Nudge.patient_id == stopper_id)))
        assert NudgeState.SENT not in states
        assert NudgeState.SENDING not in states
        assert session.get_one(Nudge, claimed_nudge.id).state == NudgeState.SKIPPED
