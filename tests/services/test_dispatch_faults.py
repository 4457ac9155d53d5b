"""The fault script: every provider failure the mapping table names, through the real twilio
SDK against the loopback server, ends with each nudge texted at most once and in a state
that says why."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, NudgeState, PatientStatus
from coachbot.models import Alert, Nudge, Patient
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.reconcile import reconcile_ambiguous
from coachbot.services.tick import run_tick
from coachbot.settings import Settings
from tests.support.builders import MONDAY_0830_NEW_YORK, make_patient
from tests.support.fake_twilio import FakeTwilio, Fault
from tests.support.twilio_signing import AUTH_TOKEN

ACCOUNT_SID = "AC" + "b2" * 16
FROM_NUMBER = "+16175550100"
NOW = MONDAY_0830_NEW_YORK
AFTER_GRACE = NOW + dt.timedelta(minutes=3)


def twilio_settings(settings: Settings, base_url: str, timeout: float = 2.0) -> Settings:
    return dataclasses.replace(
        settings,
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_base_url=base_url,
        twilio_timeout_seconds=timeout,
    )


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, hang_limit=5) as server:
        yield server


@pytest.fixture
def twilio(settings: Settings, fake: FakeTwilio) -> Iterator[Runtime]:
    runtime = build_runtime(twilio_settings(settings, fake.base_url, timeout=0.5))
    yield runtime
    runtime.close()


def tick(runtime: Runtime, now: dt.datetime = NOW) -> None:
    run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now)


def the_nudge(runtime: Runtime) -> Nudge:
    """Today's nudge (planning also records yesterday's slot, long past, as missed)."""
    with runtime.session_factory() as session:
        return session.scalars(select(Nudge).where(Nudge.due_at == NOW)).one()


def texts_per_nudge(fake: FakeTwilio) -> list[int]:
    return list(fake.count_by_callback_param("nudge").values())


def test_429_backs_off_for_retry_after_then_sends_once(
    twilio: Runtime, fake: FakeTwilio, session: Session
) -> None:
    make_patient(session)
    fake.inject(Fault.rate_limited(retry_after=7))
    tick(twilio)
    nudge = the_nudge(twilio)
    assert (nudge.state, nudge.send_at) == (NudgeState.PLANNED, NOW + dt.timedelta(seconds=7))
    tick(twilio, NOW + dt.timedelta(seconds=6))
    assert texts_per_nudge(fake) == []
    tick(twilio, NOW + dt.timedelta(seconds=7))
    assert the_nudge(twilio).state == NudgeState.SENT
    assert texts_per_nudge(fake) == [1]


def test_a_refused_connection_retries_without_ever_being_ambiguous(
    settings: Settings, session: Session, fake: FakeTwilio
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    runtime = build_runtime(twilio_settings(settings, f"http://127.0.0.1:{closed_port}"))
    make_patient(session)
    tick(runtime)
    nudge = the_nudge(runtime)
    assert nudge.state == NudgeState.PLANNED
    assert nudge.send_at > NOW
    runtime.close()
    # The same nudge goes out once the provider is reachable again.
    healthy = build_runtime(twilio_settings(settings, fake.base_url))
    tick(healthy, nudge.send_at)
    assert the_nudge(healthy).state == NudgeState.SENT
    assert texts_per_nudge(fake) == [1]
    healthy.close()


@pytest.mark.parametrize(
    ("fault", "recorded_by_twilio"),
    [
        pytest.param(Fault.server_error(), False, id="500"),
        pytest.param(Fault.unavailable(), False, id="503"),
        pytest.param(Fault.reset_before(), False, id="reset-before-accept"),
        pytest.param(Fault.reset_after(), True, id="reset-after-accept"),
        pytest.param(Fault.hang(accept=True, max_seconds=2), True, id="hang-past-timeout"),
    ],
)
def test_a_send_that_may_have_reached_twilio_is_ambiguous_never_resent_blindly(
    twilio: Runtime, fake: FakeTwilio, session: Session, fault: Fault, recorded_by_twilio: bool
) -> None:
    make_patient(session)
    fake.inject(fault)
    tick(twilio)
    assert the_nudge(twilio).state == NudgeState.AMBIGUOUS
    fake.release_hangs()
    # Later ticks inside the grace period leave it alone.
    tick(twilio, NOW + dt.timedelta(minutes=1))
    assert texts_per_nudge(fake) == ([1] if recorded_by_twilio else [])

    summary = reconcile_ambiguous(twilio.session_factory, twilio.gateway, AFTER_GRACE)
    nudge = the_nudge(twilio)
    if recorded_by_twilio:
        assert (summary.found, summary.resent) == (1, 0)
        assert nudge.state == NudgeState.SENT
        assert nudge.provider_sid == fake.messages[0].sid
    else:
        # Proven absent: resent once, by the next tick.
        assert (summary.found, summary.resent) == (0, 1)
        tick(twilio, AFTER_GRACE)
        assert the_nudge(twilio).state == NudgeState.SENT
    assert texts_per_nudge(fake) == [1]


def test_an_ambiguous_resend_that_is_again_absent_fails_instead_of_a_third_try(
    twilio: Runtime, fake: FakeTwilio, session: Session
) -> None:
    make_patient(session)
    fake.inject(Fault.server_error(), times=2)
    tick(twilio)
    reconcile_ambiguous(twilio.session_factory, twilio.gateway, AFTER_GRACE)
    tick(twilio, AFTER_GRACE)
    assert the_nudge(twilio).state == NudgeState.AMBIGUOUS
    later = AFTER_GRACE + dt.timedelta(minutes=3)
    reconcile_ambiguous(twilio.session_factory, twilio.gateway, later)
    tick(twilio, later)
    nudge = the_nudge(twilio)
    assert (nudge.state, nudge.state_reason) == (NudgeState.FAILED, "unconfirmed_after_resend")
    assert fake.requests_by_kind()["create"] == 2


def test_a_status_callback_settles_an_ambiguous_send_before_reconciliation(
    twilio: Runtime, fake: FakeTwilio, session: Session
) -> None:
    from coachbot.services.delivery import StatusCallback, handle_status

    make_patient(session)
    fake.inject(Fault.reset_after())
    tick(twilio)
    message = fake.messages[0]
    nudge_id = int(message.callback_param("nudge") or 0)
    handle_status(
        twilio.session_factory, StatusCallback(message.sid, "delivered", None, nudge_id), NOW
    )
    assert the_nudge(twilio).state == NudgeState.DELIVERED
    assert reconcile_ambiguous(twilio.session_factory, twilio.gateway, AFTER_GRACE).found == 0
    assert texts_per_nudge(fake) == [1]


def test_21610_opts_the_patient_out(twilio: Runtime, fake: FakeTwilio, session: Session) -> None:
    patient = make_patient(session)
    fake.inject(Fault.unsubscribed())
    tick(twilio)
    nudge = the_nudge(twilio)
    assert (nudge.state, nudge.state_reason) == (NudgeState.FAILED, "21610")
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.OPTED_OUT
    assert session.scalars(select(Alert.kind)).all() == [AlertKind.OPT_OUT]


@pytest.mark.parametrize("code", [21211, 21614, 30005, 30006])
def test_an_invalid_number_code_pauses_the_patient_and_alerts_the_clinician(
    twilio: Runtime, fake: FakeTwilio, session: Session, code: int
) -> None:
    patient = make_patient(session, tracks={"sleep": "08:30", "exercise": "08:30"})
    fake.inject(Fault.error(400, code))
    tick(twilio)
    session.expire_all()
    assert session.get_one(Patient, patient.id).status == PatientStatus.PAUSED
    alerts = session.scalars(select(Alert)).all()
    assert [(a.kind, a.detail) for a in alerts] == [(AlertKind.INVALID_NUMBER, f"code_{code}")]
    states = {
        n.track: (n.state, n.state_reason)
        for n in session.scalars(select(Nudge).where(Nudge.due_at == NOW))
    }
    # The failed one names the code; the other is not sent to a number known to be bad.
    assert (NudgeState.FAILED, str(code)) in states.values()


def test_30003_retries_later_a_bounded_number_of_times(
    twilio: Runtime, fake: FakeTwilio, session: Session
) -> None:
    make_patient(session)
    fake.inject(Fault.error(400, 30003), times=None)
    when = NOW
    for _ in range(3):
        tick(twilio, when)
        nudge = the_nudge(twilio)
        if nudge.state != NudgeState.PLANNED:
            break
        assert nudge.send_at == when + dt.timedelta(minutes=30)
        when = nudge.send_at
    nudge = the_nudge(twilio)
    assert (nudge.state, nudge.state_reason, nudge.attempts) == (NudgeState.FAILED, "30003", 3)
    assert fake.requests_by_kind()["create"] == 3
