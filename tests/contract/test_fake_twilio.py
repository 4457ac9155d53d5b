"""The real twilio SDK, built by build_twilio_client, against FakeTwilio.

These pin down both halves of the contract the SMS gateway relies on: that the
fake answers the way Twilio does, and how each failure surfaces through the SDK.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from coachbot.sms.twilio_client import (
    RecordingHttpClient,
    build_async_twilio_client,
    build_twilio_client,
    close_twilio_client,
    last_retry_after,
    may_have_reached_twilio,
    shared_twilio_client,
)
from tests.support.fake_twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilio,
    Fault,
    num_segments,
)

SENDER = "+15005550006"
SERVICE = "MG" + "5e" * 16
PATIENT = "+15551230001"
OTHER_PATIENT = "+15551230002"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


def _build(fake: FakeTwilio, timeout: float = 5.0) -> Client:
    return build_twilio_client(
        DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_base_url=fake.base_url, timeout=timeout
    )


def _client(fake: FakeTwilio, timeout: float = 5.0) -> Iterator[Client]:
    client = _build(fake, timeout)
    try:
        yield client
    finally:
        close_twilio_client(client)


@pytest.fixture
def client(fake: FakeTwilio) -> Iterator[Client]:
    """The twilio SDK client; shadows tests/conftest.py's Flask client in this module."""
    yield from _client(fake)


@pytest.fixture
def quick_client(fake: FakeTwilio) -> Iterator[Client]:
    """Short timeout, for hangs."""
    yield from _client(fake, timeout=0.3)


def _send(client: Client, to: str = PATIENT, **kwargs: Any) -> Any:
    kwargs.setdefault("body", "Time for your 10-minute walk.")
    if "messaging_service_sid" not in kwargs:
        kwargs.setdefault("from_", SENDER)
    return client.messages.create(to=to, **kwargs)


def _raw_create(client: Client, data: dict[str, object]) -> Any:
    """POST through the SDK's own request path, bypassing MessageList's fixed form."""
    url = client.api.absolute_url(f"2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json")
    return client.request("POST", url, data=data)


# ----------------------------------------------------------------- happy paths


def test_create_with_from_returns_a_parsed_message_instance(
    fake: FakeTwilio, client: Client
) -> None:
    message = _send(
        client, body="Hola Ana, ¿caminamos?", status_callback="http://127.0.0.1:9/s?nudge=41"
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.account_sid == DEFAULT_ACCOUNT_SID
    assert (message.to, message.from_, message.body) == (
        PATIENT,
        SENDER,
        "Hola Ana, ¿caminamos?",
    )
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert message.num_segments == "1"
    assert message.date_created is not None
    assert message.date_created.tzinfo is not None
    assert message.date_sent is None
    assert message.uri == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{message.sid}.json"
    [recorded] = fake.messages
    assert recorded.sid == message.sid
    assert recorded.form["StatusCallback"] == ["http://127.0.0.1:9/s?nudge=41"]
    assert fake.count_by_callback_param("nudge") == {"41": 1}


def test_create_with_messaging_service_is_accepted_without_a_sender(
    fake: FakeTwilio, client: Client
) -> None:
    message = _send(client, messaging_service_sid=SERVICE)

    assert message.status == "accepted"
    assert message.messaging_service_sid == SERVICE
    assert message.from_ is None
    assert "From" not in fake.messages[0].form


def test_fetch_returns_the_stored_message_and_404s_unknown_sids(client: Client) -> None:
    sent = _send(client)

    fetched = client.messages(sent.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.status) == (sent.sid, sent.body, "queued")

    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_list_filters_by_to_and_follows_next_page_uri(fake: FakeTwilio, client: Client) -> None:
    for i in range(5):
        _send(client, to=PATIENT, body=f"nudge {i}")
    _send(client, to=OTHER_PATIENT)

    listed = client.messages.list(to=PATIENT, page_size=2)

    # Three pages of 2, 2 and 1; newest first, as Twilio orders them.
    assert [m.body for m in listed] == [f"nudge {i}" for i in reversed(range(5))]
    assert fake.requests_by_kind()["list"] == 3


def test_list_filters_by_date_sent_once_the_message_was_sent() -> None:
    moment = datetime(2025, 3, 4, 23, 59, 30, tzinfo=UTC)
    with FakeTwilio(clock=lambda: moment) as fake:
        client = _build(fake)
        try:
            sent = _send(client)
            assert client.messages.list(date_sent=moment) == []

            fake.set_status(sent.sid, "sent")

            [listed] = client.messages.list(date_sent=moment, from_=SENDER)
            assert (listed.sid, listed.status) == (sent.sid, "sent")
            assert listed.date_sent == moment
            assert client.messages.list(date_sent_after=datetime(2025, 3, 5, tzinfo=UTC)) == []
        finally:
            close_twilio_client(client)


def test_recording_helpers_count_duplicates(fake: FakeTwilio, client: Client) -> None:
    _send(client, status_callback="http://127.0.0.1:9/s?nudge=1")
    _send(client, status_callback="http://127.0.0.1:9/s?nudge=1")
    _send(client, to=OTHER_PATIENT, status_callback="http://127.0.0.1:9/s?nudge=2")

    assert fake.count_by_to() == {PATIENT: 2, OTHER_PATIENT: 1}
    assert fake.count_by_callback_param("nudge") == {"1": 2, "2": 1}
    assert fake.duplicates() == {
        (PATIENT, "Time for your 10-minute walk.", "http://127.0.0.1:9/s?nudge=1"): 2
    }
    assert len(fake.sent_to(OTHER_PATIENT)) == 1

    fake.reset()
    assert fake.messages == []
    assert fake.total_requests == 0


def test_pooled_connection_is_reused(fake: FakeTwilio, client: Client) -> None:
    for _ in range(20):
        _send(client)

    assert fake.connections_accepted == 1


def test_concurrent_senders_share_one_client(fake: FakeTwilio, client: Client) -> None:
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                _send(client, body=f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert len({m.sid for m in fake.messages}) == 200
    assert fake.duplicates(key=lambda m: m.body) == {}


def test_segments_follow_gsm7_and_ucs2_rules() -> None:
    assert num_segments("a" * 160) == 1
    assert num_segments("a" * 161) == 2
    assert num_segments("ñ" * 160) == 1  # ñ is in GSM-7
    assert num_segments("á" * 70) == 1  # á is not: UCS-2, 70 per segment
    assert num_segments("á" * 71) == 2
    assert num_segments("[" * 80) == 1  # escaped characters take two septets
    assert num_segments("[" * 81) == 2


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        pytest.param({"body": None}, 400, 21602, id="missing-body"),
        pytest.param({"to": "555-1234"}, 400, 21211, id="invalid-to"),
        pytest.param({"from_": "+1"}, 400, 21212, id="invalid-from"),
        pytest.param({"messaging_service_sid": SERVICE, "from_": SENDER}, 400, 20422, id="both"),
        pytest.param({"messaging_service_sid": "MGnope"}, 400, 20422, id="bad-service-sid"),
        pytest.param({"body": "x" * 1601}, 400, 21617, id="body-too-long"),
        pytest.param({"status_callback": "not a url"}, 400, 21609, id="bad-callback"),
    ],
)
def test_invalid_creates_are_rejected_like_twilio(
    fake: FakeTwilio, client: Client, kwargs: dict[str, Any], status: int, code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        _send(client, **kwargs)

    assert (caught.value.status, caught.value.code) == (status, code)
    assert fake.messages == []


def test_missing_to_is_21604(client: Client) -> None:
    response = _raw_create(client, {"From": SENDER, "Body": "hi"})

    assert response.status_code == 400
    assert '"code":21604' in response.text


def test_form_keys_outside_the_spec_are_rejected(fake: FakeTwilio, client: Client) -> None:
    response = _raw_create(client, {"To": PATIENT, "From": SENDER, "Body": "hi", "NudgeId": "7"})

    assert response.status_code == 400
    assert '"code":20001' in response.text
    assert "NudgeId" in response.text
    assert fake.messages == []


def test_sdk_parameters_newer_than_the_spec_are_rejected(client: Client) -> None:
    # MessageIntent is in twilio 9.x but not in our copy of Twilio's spec; the
    # gateway must not depend on it until the spec is refreshed.
    with pytest.raises(TwilioRestException) as caught:
        _send(client, message_intent="notifications")

    assert caught.value.code == 20001


def test_bad_credentials_get_401(fake: FakeTwilio) -> None:
    client = build_twilio_client(DEFAULT_ACCOUNT_SID, "wrong-token", api_base_url=fake.base_url)
    try:
        with pytest.raises(TwilioRestException) as caught:
            _send(client)
    finally:
        close_twilio_client(client)

    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert fake.messages == []


def test_another_accounts_path_is_not_found(fake: FakeTwilio, client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.api.v2010.accounts("AC" + "1" * 32).messages.create(
            to=PATIENT, from_=SENDER, body="hi"
        )

    assert (caught.value.status, caught.value.code) == (404, 20404)


# ----------------------------------------------------------------- faults


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
        _send(client)

    assert (caught.value.status, caught.value.code) == (status, code)
    assert rule.hits == 1
    assert fake.requests_by_kind()["create"] == 1
    assert fake.messages == []
    # The fault was for one request only.
    _send(client)
    assert len(fake.messages) == 1


def test_rate_limit_exposes_retry_after_through_the_recording_http_client(
    fake: FakeTwilio, client: Client
) -> None:
    fake.inject(Fault.rate_limited(retry_after=7))

    with pytest.raises(TwilioRestException) as caught:
        _send(client)

    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert last_retry_after(client) == 7.0
    http_client = client.http_client
    assert isinstance(http_client, RecordingHttpClient)
    assert http_client.last_response is not None
    assert http_client.last_response.headers["retry-after"] == "7"

    _send(client)
    assert last_retry_after(client) is None


def test_retry_after_may_be_an_http_date(fake: FakeTwilio, client: Client) -> None:
    fake.inject(Fault.rate_limited(retry_after="Wed, 21 Oct 2015 07:28:30 GMT"))

    with pytest.raises(TwilioRestException):
        _send(client)

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert last_retry_after(client, now=now) == 30.0


def test_faults_can_target_one_recipient(fake: FakeTwilio, client: Client) -> None:
    fake.inject(Fault.unsubscribed(), to=OTHER_PATIENT, times=None)

    _send(client, to=PATIENT)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            _send(client, to=OTHER_PATIENT)
        assert caught.value.code == 21610
    _send(client, to=PATIENT)

    assert fake.count_by_to() == {PATIENT: 2}


def test_hang_surfaces_as_read_timeout_and_records_nothing(
    fake: FakeTwilio, quick_client: Client
) -> None:
    rule = fake.inject(Fault.hang())

    with pytest.raises(requests.exceptions.ReadTimeout):
        _send(quick_client)

    assert rule.hit.is_set()
    assert fake.messages == []
    assert fake.outcomes()["hang"] == 1
    assert fake.requests_by_kind()["create"] == 1  # no retry inside the SDK
    assert last_retry_after(quick_client) is None
    fake.release_hangs()
    # The client opens a fresh connection and carries on.
    _send(quick_client)
    assert len(fake.messages) == 1


def test_hang_after_accept_is_ambiguous(fake: FakeTwilio, quick_client: Client) -> None:
    fake.inject(Fault.hang(accept=True))

    with pytest.raises(requests.exceptions.ReadTimeout) as caught:
        _send(quick_client, status_callback="http://127.0.0.1:9/s?nudge=9")

    assert may_have_reached_twilio(caught.value)

    assert fake.count_by_callback_param("nudge") == {"9": 1}


def test_stop_releases_hanging_requests_promptly() -> None:
    fake = FakeTwilio(hang_limit=60).start()
    client = _build(fake, timeout=0.3)
    try:
        fake.inject(Fault.hang())
        with pytest.raises(requests.exceptions.ReadTimeout):
            _send(client)
    finally:
        started = time.monotonic()
        fake.stop()
        close_twilio_client(client)
    assert time.monotonic() - started < 5
    assert fake.hanging == 0


def test_latency_interrupted_by_stop() -> None:
    fake = FakeTwilio(latency=60).start()
    client = _build(fake, timeout=0.3)
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            _send(client)
    finally:
        started = time.monotonic()
        fake.stop()
        close_twilio_client(client)
    assert time.monotonic() - started < 5


def test_latency_fault_delays_but_serves(fake: FakeTwilio, client: Client) -> None:
    fake.inject(Fault.latency(0.05))

    started = time.monotonic()
    _send(client)

    assert time.monotonic() - started >= 0.05
    assert len(fake.messages) == 1


def test_reset_before_processing_is_a_connection_error_and_sends_nothing(
    fake: FakeTwilio, client: Client
) -> None:
    fake.inject(Fault.reset_before())

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        _send(client)

    assert not isinstance(caught.value, requests.exceptions.Timeout)
    assert may_have_reached_twilio(caught.value)
    assert fake.messages == []
    assert fake.outcomes()["reset"] == 1
    assert fake.requests_by_kind()["create"] == 1
    _send(client)
    assert len(fake.messages) == 1


def test_reset_after_accept_is_a_connection_error_but_the_message_went_out(
    fake: FakeTwilio, client: Client
) -> None:
    fake.inject(Fault.reset_after())

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        _send(client, status_callback="http://127.0.0.1:9/s?nudge=5")

    # Indistinguishable from reset_before on the client side: that is the point.
    assert may_have_reached_twilio(caught.value)
    assert fake.count_by_callback_param("nudge") == {"5": 1}
    assert fake.requests_by_kind()["create"] == 1


def test_refused_connection_is_known_not_to_have_reached_twilio() -> None:
    with FakeTwilio() as fake:
        client = _build(fake)
    # The fake is stopped: its port now refuses connections.
    try:
        with pytest.raises(requests.exceptions.ConnectionError) as caught:
            _send(client)
    finally:
        close_twilio_client(client)

    assert not may_have_reached_twilio(caught.value)


def test_faults_on_fetch(fake: FakeTwilio, client: Client) -> None:
    sent = _send(client)
    fake.inject(Fault.server_error(), kinds=("fetch",))

    with pytest.raises(TwilioRestException) as caught:
        client.messages(sent.sid).fetch()

    assert caught.value.status == 500


# ----------------------------------------------------------------- status callbacks


class _Receiver:
    """A tiny webhook endpoint standing in for coachbot's status-callback route."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], str]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with receiver.changed:
                    receiver.calls.append(
                        (self.path, form, self.headers.get("X-Twilio-Signature", ""))
                    )
                    receiver.changed.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.calls) >= count, timeout=5)


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join()


def test_status_callback_is_signed_like_twilio(
    fake: FakeTwilio, client: Client, receiver: _Receiver
) -> None:
    sent = _send(client, status_callback=receiver.url("/sms/status?nudge=12"))

    assert fake.send_status_callback(sent.sid, "undelivered", error_code=30003) == 204

    [(path, form, signature)] = receiver.calls
    assert path == "/sms/status?nudge=12"
    assert form == {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30003",
        "From": SENDER,
        "MessageSid": sent.sid,
        "MessageStatus": "undelivered",
        "SmsSid": sent.sid,
        "SmsStatus": "undelivered",
        "To": PATIENT,
    }
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)
    assert validator.validate(receiver.url(path), form, signature)
    assert not validator.validate(receiver.url(path), {**form, "To": OTHER_PATIENT}, signature)
    assert not RequestValidator("other-token").validate(receiver.url(path), form, signature)
    fetched = client.messages(sent.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


def test_auto_status_calls_back_in_order(receiver: _Receiver) -> None:
    with FakeTwilio(auto_status=("sent", "delivered")) as fake:
        client = _build(fake)
        try:
            sent = _send(
                client,
                messaging_service_sid=SERVICE,
                status_callback=receiver.url("/sms/status"),
            )
            assert receiver.wait_for(2)
            fetched = client.messages(sent.sid).fetch()
        finally:
            close_twilio_client(client)

    assert [form["MessageStatus"] for _, form, _ in receiver.calls] == ["sent", "delivered"]
    assert receiver.calls[0][1]["MessagingServiceSid"] == SERVICE
    assert (fetched.status, fetched.from_) == ("delivered", fake.service_number)
    assert [a.http_status for a in fake.callback_attempts] == [204, 204]


# ----------------------------------------------------------------- client construction


def test_edge_and_region_from_the_environment_do_not_redirect_the_fake(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    client = _build(fake)
    try:
        _send(client)
    finally:
        close_twilio_client(client)

    assert len(fake.messages) == 1


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        build_twilio_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, timeout=0)


def test_shared_client_is_one_per_process_and_settings(fake: FakeTwilio) -> None:
    first = shared_twilio_client(
        DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_base_url=fake.base_url
    )
    try:
        again = shared_twilio_client(
            DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_base_url=fake.base_url
        )
        assert again is first
        _send(first)
    finally:
        close_twilio_client(first)


def test_async_client_sends_through_the_same_fake(fake: FakeTwilio) -> None:
    async def scenario() -> tuple[str, str]:
        client = build_async_twilio_client(
            DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_base_url=fake.base_url, timeout=5
        )
        try:
            message = await client.messages.create_async(
                to=PATIENT, from_=SENDER, body="async nudge"
            )
            fake.inject(Fault.rate_limited(2))
            with pytest.raises(TwilioRestException):
                await client.messages.create_async(to=PATIENT, from_=SENDER, body="again")
            retry_after = last_retry_after(client)
        finally:
            await client.http_client.close()
        return message.sid, str(retry_after)

    sid, retry_after = asyncio.run(scenario())

    assert [m.sid for m in fake.messages] == [sid]
    assert retry_after == "2.0"


def test_standalone_process_prints_its_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_twilio", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        client = build_twilio_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_base_url=url)
        try:
            assert _send(client).status == "queued"
        finally:
            close_twilio_client(client)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
