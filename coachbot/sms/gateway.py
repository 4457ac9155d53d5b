"""The SMS gateway port: what dispatch and enrolment need from a provider, and nothing more."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from coachbot.domain.pacing import TokenBucket
from coachbot.domain.provider_errors import Outcome


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    status_callback: str | None = None
    # What pacing charges: Twilio meters senders in segments, not requests.
    segments: int = 1
    # A reply owed even to a suppressed number (HELP, the STOP confirmation, safety text);
    # see coachbot.sms.suppression. Everything else is refused there.
    compliance: bool = False


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
        self.detail = detail
        super().__init__(detail or f"{outcome} (code={code}, http={http_status})")


# One message's fate in a batch: a receipt, a failure, or None when it was never attempted
# because the provider throttled the batch (the caller hands those back to the queue).
SendResult = SendReceipt | SendFailure | None
ResultHook = Callable[[int, SendReceipt | SendFailure], None]


@dataclass(frozen=True)
class Pacing:
    """How a batch may be sent: a segments-per-second cap (None: uncapped) and at most
    `max_concurrency` API calls in flight."""

    segments_per_second: float | None = None
    max_concurrency: int = 1


class SmsGateway(Protocol):
    name: str

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """Hand one message to the provider or raise `SendFailure`."""
        ...


class BatchGateway(SmsGateway, Protocol):
    def send_many(
        self, batch: Sequence[OutgoingSms], pacing: Pacing, on_result: ResultHook | None = None
    ) -> list[SendResult]:
        """Send concurrently within `pacing`; results in the order of `batch`."""
        ...


# Sends one batch and returns its results in order; see `open_batch_sender`.
BatchSender = Callable[[Sequence[OutgoingSms], ResultHook | None], list[SendResult]]


class SessionGateway(SmsGateway, Protocol):
    def batch_sender(self, pacing: Pacing) -> AbstractContextManager[BatchSender]:
        """A sender that keeps its connections (and event loop) across batches until
        the context exits."""
        ...


@contextmanager
def open_batch_sender(
    gateway: SmsGateway, pacing: Pacing, *, buckets: dict[str, TokenBucket] | None = None
) -> Iterator[BatchSender]:
    """One sender for a whole dispatch run: a gateway that can keep its connection pool
    between batches does so; any other is driven through `send_batch`."""
    opener = getattr(gateway, "batch_sender", None)
    if opener is not None:
        with opener(pacing) as send:
            yield send
        return

    def one_at_a_time(
        batch: Sequence[OutgoingSms], on_result: ResultHook | None
    ) -> list[SendResult]:
        return send_batch(gateway, batch, pacing, on_result, buckets=buckets)

    yield one_at_a_time


def send_batch(
    gateway: SmsGateway,
    batch: Sequence[OutgoingSms],
    pacing: Pacing,
    on_result: ResultHook | None = None,
    *,
    buckets: dict[str, TokenBucket] | None = None,
) -> list[SendResult]:
    """Concurrent gateways send their own way; any other gateway is called one at a time,
    still paced, and stops at the first throttle."""
    many = getattr(gateway, "send_many", None)
    if many is not None:
        results: list[SendResult] = many(batch, pacing, on_result)
        return results
    bucket = None
    if pacing.segments_per_second is not None:
        store = buckets if buckets is not None else {}
        bucket = store.setdefault(gateway.name, TokenBucket(pacing.segments_per_second, 1.0))
    out: list[SendResult] = [None] * len(batch)
    for index, sms in enumerate(batch):
        if bucket is not None:
            wait = bucket.reserve(sms.segments, time.monotonic())
            if wait > 0:
                time.sleep(wait)
        try:
            result: SendReceipt | SendFailure = gateway.send(sms)
        except SendFailure as failure:
            result = failure
        out[index] = result
        if on_result is not None:
            on_result(index, result)
        if isinstance(result, SendFailure) and result.outcome is Outcome.RETRY:
            break
    return out


@dataclass(frozen=True)
class ProviderMessage:
    """A message as the provider's records show it (for reconciliation)."""

    provider_sid: str
    status: str
    body: str
    created_at: datetime


class LookupGateway(SmsGateway, Protocol):
    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Every message to `to` created at or after `since`, newest first; raises
        `SendFailure` when the provider cannot answer (nothing may then be concluded)."""
        ...
