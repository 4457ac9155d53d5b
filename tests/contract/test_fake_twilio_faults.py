"""FakeTwilio's faults through the real twilio SDK: how each failure the gateway must
handle surfaces (Twilio errors without SDK retries, Retry-After, hangs and read timeouts,
resets before and after the message was accepted, a refused connection) and whether the
text may have reached Twilio. The answers when nothing fails are in test_fake_twilio.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from coachbot.sms.twilio_client import (
    RecordingHttpClient,
    close_twilio_client,
    last_retry_after,
    may_have_reached_twilio,
)
from tests.contract.sdk_calls import (
    OTHER_PATIENT,
    PATIENT,
    build_client,
    send,
)
from tests.support.fake_twilio import (
    FakeTwilio,
    Fault,
)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        pytest.param(Fault.invalid_to(), 400, 21211, id="invalid-to"),
        pytest.param(Fault.unsubscribed(), 400, 21610, id="unsubscribed"),
        pytest.param(Fault.not_mobile(), 400, 21614, id="not-mobile"),
        pytest.param(Fault.server_error(), 500, 20500, id="500"),
        pytest.param(Fault.unavailable(), 503, 20503, id="503"),
    ],
)
def test_error_faults_raise_twilio_rest_exception_once_without_sdk_retries(
    fake: FakeTwilio, client: Client, fault: Fault, status: int, code: int
) -> None:
    rule = fake.inject(fault)

    with pytest.raises(TwilioRestException) as caught:
        send(client)

    assert (caught.value.status, caught.value.code) == (status, code)
    assert rule.hits == 1
    assert fake.requests_by_kind()["create"] == 1
    assert fake.messages == []
    # The fault was for one request only.
    send(client)
    assert len(fake.messages) == 1


def test_rate_limit_exposes_retry_after_through_the_recording_http_client(
    fake: FakeTwilio, client: Client
) -> None:
    fake.inject(Fault.rate_limited(retry_after=7))

    with pytest.raises(TwilioRestException) as caught:
        send(client)

    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert last_retry_after(client) == 7.0
    http_client = client.http_client
    assert isinstance(http_client, RecordingHttpClient)
    assert http_client.last_response is not None
    assert http_client.last_response.headers["retry-after"] == "7"

    send(client)
    assert last_retry_after(client) is None


def test_retry_after_may_be_an_http_date(fake: FakeTwilio, client: Client) -> None:
    fake.inject(Fault.rate_limited(retry_after="Wed, 21 Oct 2015 07:28:30 GMT"))

    with pytest.raises(TwilioRestException):
        send(client)

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert last_retry_after(client, now=now) == 30.0


def test_faults_can_target_one_recipient(fake: FakeTwilio, client: Client) -> None:
    fake.inject(Fault.unsubscribed(), to=OTHER_PATIENT, times=None)

    send(client, to=PATIENT)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            send(client, to=OTHER_PATIENT)
        assert caught.value.code == 21610
    send(client, to=PATIENT)

    assert fake.count_by_to() == {PATIENT: 2}


def test_hang_surfaces_as_read_timeout_and_records_nothing(
    fake: FakeTwilio, quick_client: Client
) -> None:
    rule = fake.inject(Fault.hang())

    with pytest.raises(requests.exceptions.ReadTimeout):
        send(quick_client)

    assert rule.hit.is_set()
    assert fake.messages == []
    assert fake.outcomes()["hang"] == 1
    assert fake.requests_by_kind()["create"] == 1  # no retry inside the SDK
    assert last_retry_after(quick_client) is None
    fake.release_hangs()
    # The client opens a fresh connection and carries on.
    send(quick_client)
    assert len(fake.messages) == 1


def test_hang_after_accept_is_ambiguous(fake: FakeTwilio, quick_client: Client) -> None:
    fake.inject(Fault.hang(accept=True))

    with pytest.raises(requests.exceptions.ReadTimeout) as caught:
        send(quick_client, status_callback="http://127.0.0.1:9/s?nudge=9")

    assert may_have_reached_twilio(caught.value)

    assert fake.count_by_callback_param("nudge") == {"9": 1}


def test_stop_releases_hanging_requests_promptly() -> None:
    fake = FakeTwilio(hang_limit=60).start()
    client = build_client(fake, timeout=0.3)
    try:
        fake.inject(Fault.hang())
        with pytest.raises(requests.exceptions.ReadTimeout):
            send(client)
    finally:
        started = time.monotonic()
        fake.stop()
        close_twilio_client(client)
    assert time.monotonic() - started < 5
    assert fake.hanging == 0


def test_latency_interrupted_by_stop() -> None:
    fake = FakeTwilio(latency=60).start()
    client = build_client(fake, timeout=0.3)
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            send(client)
    finally:
        started = time.monotonic()
        fake.stop()
        close_twilio_client(client)
    assert time.monotonic() - started < 5


def test_latency_fault_delays_but_serves(fake: FakeTwilio, client: Client) -> None:
    fake.inject(Fault.latency(0.05))

    started = time.monotonic()
    send(client)

    assert time.monotonic() - started >= 0.05
    assert len(fake.messages) == 1


def test_reset_before_processing_is_a_connection_error_and_sends_nothing(
    fake: FakeTwilio, client: Client
) -> None:
    fake.inject(Fault.reset_before())

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        send(client)

    assert not isinstance(caught.value, requests.exceptions.Timeout)
    assert may_have_reached_twilio(caught.value)
    assert fake.messages == []
    assert fake.outcomes()["reset"] == 1
    assert fake.requests_by_kind()["create"] == 1
    send(client)
    assert len(fake.messages) == 1


def test_reset_after_accept_is_a_connection_error_but_the_message_went_out(
    fake: FakeTwilio, client: Client
) -> None:
    fake.inject(Fault.reset_after())

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        send(client, status_callback="http://127.0.0.1:9/s?nudge=5")

    # Indistinguishable from reset_before on the client side: that is the point.
    assert may_have_reached_twilio(caught.value)
    assert fake.count_by_callback_param("nudge") == {"5": 1}
    assert fake.requests_by_kind()["create"] == 1


def test_refused_connection_is_known_not_to_have_reached_twilio() -> None:
    with FakeTwilio() as fake:
        client = build_client(fake)
    # The fake is stopped: its port now refuses connections.
    try:
        with pytest.raises(requests.exceptions.ConnectionError) as caught:
            send(client)
    finally:
        close_twilio_client(client)

    assert not may_have_reached_twilio(caught.value)


def test_faults_on_fetch(fake: FakeTwilio, client: Client) -> None:
    sent = send(client)
    fake.inject(Fault.server_error(), kinds=("fetch",))

    with pytest.raises(TwilioRestException) as caught:
        client.messages(sent.sid).fetch()

    assert caught.value.status == 500
