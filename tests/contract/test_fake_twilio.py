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
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from coachbot.sms.twilio_client import (
    build_async_twilio_client,
    build_twilio_client,
    close_twilio_client,
    last_retry_after,
    shared_twilio_client,
)
from tests.contract.sdk_calls import (
    OTHER_PATIENT,
    PATIENT,
    SENDER,
    SERVICE,
    build_client,
    raw_create,
    send,
)
from tests.support.fake_twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilio,
    Fault,
    num_segments,
)

# ----------------------------------------------------------------- happy paths


def test_create_with_from_returns_a_parsed_message_instance(
    fake: FakeTwilio, client: Client
) -> None:
    message = send(
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
    message = send(client, messaging_service_sid=SERVICE)

    assert message.status == "accepted"
    assert message.messaging_service_sid == SERVICE
    assert message.from_ is None
    assert "From" not in fake.messages[0].form


def test_fetch_returns_the_stored_message_and_404s_unknown_sids(client: Client) -> None:
    sent = send(client)

    fetched = client.messages(sent.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.status) == (sent.sid, sent.body, "queued")

    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_list_filters_by_to_and_follows_next_page_uri(fake: FakeTwilio, client: Client) -> None:
    for i in range(5):
        send(client, to=PATIENT, body=f"nudge {i}")
    send(client, to=OTHER_PATIENT)

    listed = client.messages.list(to=PATIENT, page_size=2)

    # Three pages of 2, 2 and 1; newest first, as Twilio orders them.
    assert [m.body for m in listed] == [f"nudge {i}" for i in reversed(range(5))]
    assert fake.requests_by_kind()["list"] == 3


def test_list_filters_by_date_sent_once_the_message_was_sent() -> None:
    moment = datetime(2025, 3, 4, 23, 59, 30, tzinfo=UTC)
    with FakeTwilio(clock=lambda: moment) as fake:
        client = build_client(fake)
        try:
            sent = send(client)
            assert client.messages.list(date_sent=moment) == []

            fake.set_status(sent.sid, "sent")

            [listed] = client.messages.list(date_sent=moment, from_=SENDER)
            assert (listed.sid, listed.status) == (sent.sid, "sent")
            assert listed.date_sent == moment
            assert client.messages.list(date_sent_after=datetime(2025, 3, 5, tzinfo=UTC)) == []
        finally:
            close_twilio_client(client)


def test_recording_helpers_count_duplicates(fake: FakeTwilio, client: Client) -> None:
    send(client, status_callback="http://127.0.0.1:9/s?nudge=1")
    send(client, status_callback="http://127.0.0.1:9/s?nudge=1")
    send(client, to=OTHER_PATIENT, status_callback="http://127.0.0.1:9/s?nudge=2")

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
        send(client)

    assert fake.connections_accepted == 1


def test_concurrent_senders_share_one_client(fake: FakeTwilio, client: Client) -> None:
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                send(client, body=f"{n}-{i}")
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
        send(client, **kwargs)

    assert (caught.value.status, caught.value.code) == (status, code)
    assert fake.messages == []


def test_missing_to_is_21604(client: Client) -> None:
    response = raw_create(client, {"From": SENDER, "Body": "hi"})

    assert response.status_code == 400
    assert '"code":21604' in response.text


def test_form_keys_outside_the_spec_are_rejected(fake: FakeTwilio, client: Client) -> None:
    response = raw_create(client, {"To": PATIENT, "From": SENDER, "Body": "hi", "NudgeId": "7"})

    assert response.status_code == 400
    assert '"code":20001' in response.text
    assert "NudgeId" in response.text
    assert fake.messages == []


def test_sdk_parameters_newer_than_the_spec_are_rejected(client: Client) -> None:
    # MessageIntent is in twilio 9.x but not in our copy of Twilio's spec; the
    # gateway must not depend on it until the spec is refreshed.
    with pytest.raises(TwilioRestException) as caught:
        send(client, message_intent="notifications")

    assert caught.value.code == 20001


def test_bad_credentials_get_401(fake: FakeTwilio) -> None:
    client = build_twilio_client(DEFAULT_ACCOUNT_SID, "wrong-token", api_base_url=fake.base_url)
    try:
        with pytest.raises(TwilioRestException) as caught:
            send(client)
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
    sent = send(client, status_callback=receiver.url("/sms/status?nudge=12"))

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
        client = build_client(fake)
        try:
            sent = send(
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
    client = build_client(fake)
    try:
        send(client)
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
        send(first)
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
            assert send(client).status == "queued"
        finally:
            close_twilio_client(client)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
