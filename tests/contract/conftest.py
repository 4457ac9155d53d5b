"""Fixtures of the contract tests against FakeTwilio. In this folder `client` is the twilio
SDK client, built as the gateway builds it, and shadows tests/conftest.py's Flask client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.rest import Client

from tests.contract.sdk_calls import client_for
from tests.support.fake_twilio import FakeTwilio


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def client(fake: FakeTwilio) -> Iterator[Client]:
    """The twilio SDK client against the fake."""
    yield from client_for(fake)


@pytest.fixture
def quick_client(fake: FakeTwilio) -> Iterator[Client]:
    """Short timeout, for hangs."""
    yield from client_for(fake, timeout=0.3)
