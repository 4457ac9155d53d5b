"""The SMS gateway port: what dispatch and enrolment need from a provider, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from coachbot.domain.provider_errors import Outcome


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    status_callback: str | None = None


@dataclass(frozen=True)
class SendReceipt:
    provider_sid: str
    status: str


class SendFailure(Exception):
    """A send that did not produce a receipt; `outcome` says what dispatch should do."""

    def __init__(
        self,
        outcome: Outcome,
        *,
        code: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        detail: str = "",
    ) -> None:
        self.outcome = outcome
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(detail or f"{outcome} (code={code}, http={http_status})")


class SmsGateway(Protocol):
    name: str

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """Hand one message to the provider or raise `SendFailure`."""
        ...
