"""How the contract tests call the real twilio SDK against FakeTwilio: the numbers they
text, a client built as the gateway builds it (build_twilio_client), a text sent with the
gateway's defaults, and a create form posted through the SDK's own request path. Shared by
the fake's contract modules (test_fake_twilio.py, test_fake_twilio_faults.py) and the
fixtures in tests/contract/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twilio.rest import Client

from coachbot.sms.twilio_client import build_twilio_client, close_twilio_client
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

SENDER = "+15005550006"
SERVICE = "MG" + "5e" * 16
PATIENT = "+15551230001"
OTHER_PATIENT = "+15551230002"


def build_client(fake: FakeTwilio, timeout: float = 5.0) -> Client:
    return build_twilio_client(
        DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_base_url=fake.base_url, timeout=timeout
    )


def client_for(fake: FakeTwilio, timeout: float = 5.0) -> Iterator[Client]:
    """A client for a fixture to yield, closed afterwards."""
    client = build_client(fake, timeout)
    try:
        yield client
    finally:
        close_twilio_client(client)


def send(client: Client, to: str = PATIENT, **kwargs: Any) -> Any:
    kwargs.setdefault("body", "Time for your 10-minute walk.")
    if "messaging_service_sid" not in kwargs:
        kwargs.setdefault("from_", SENDER)
    return client.messages.create(to=to, **kwargs)


def raw_create(client: Client, data: dict[str, object]) -> Any:
    """POST through the SDK's own request path, bypassing MessageList's fixed form."""
    url = client.api.absolute_url(f"2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json")
    return client.request("POST", url, data=data)
