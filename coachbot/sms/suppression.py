"""The one consent check every outgoing SMS passes: no text to a suppressed number.

`SuppressionGuard` wraps the process's gateway (wired in `coachbot.runtime`), so the welcome,
nudges, follow-ups, re-engagement, caregiver texts, tips, recovered replies and pages to
staff all go through it, and a send path added later cannot forget it. A batch is looked up
in one query; a suppressed number fails with `SendFailure(Outcome.OPTED_OUT)` marked
`SUPPRESSED`, without reaching the provider.

Only messages marked `compliance` pass a suppressed number: the replies a person who
texted us is owed even after STOP (HELP, the STOP confirmation, the revocation
confirmation, the red-flag and crisis safety texts). `services.messaging` sets the mark from the
template id (`COMPLIANCE_TEMPLATES`).

When the list cannot be read (the database is down) nothing is sent: the batch fails
with a retryable outcome, so consent is never assumed.

The guard does not read the database itself: it is given the look-up (`SuppressedAmong`),
which `coachbot.runtime` wires to `services.consent.suppression_reader`, so this adapter
layer depends on no service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from coachbot.domain import sendability
from coachbot.domain.pacing import TokenBucket
from coachbot.domain.phones import mask_phone
from coachbot.domain.provider_errors import Outcome
from coachbot.domain.triage import OWED_AFTER_STOP
from coachbot.sms.gateway import (
    BatchSender,
    OutgoingSms,
    Pacing,
    ResultHook,
    SendFailure,
    SendReceipt,
    SendResult,
    SmsGateway,
    open_batch_sender,
    send_batch,
)

log = logging.getLogger(__name__)

SUPPRESSED = sendability.SUPPRESSED
# Replies owed to a person who texted us, even from a suppressed number (one list, kept with
# the inbound decision that sends them).
COMPLIANCE_TEMPLATES = OWED_AFTER_STOP


class SuppressionListUnreadable(Exception):
    """The look-up could not read the list: the guard sends nothing and says retry."""


# The suppressed ones of some numbers, in one read; raises SuppressionListUnreadable.
SuppressedAmong = Callable[[Collection[str]], set[str]]


def is_suppression_refusal(failure: SendFailure) -> bool:
    """True for the guard's own refusal (nothing reached the provider), as opposed to the
    carrier's 21610."""
    return failure.outcome is Outcome.OPTED_OUT and failure.detail == SUPPRESSED


def _refusal() -> SendFailure:
    return SendFailure(Outcome.OPTED_OUT, detail=SUPPRESSED)


class SuppressionGuard:
    """An `SmsGateway` (and batch gateway) that refuses suppressed numbers, then hands the
    rest to the wrapped gateway. Everything else (`sender`, `recent_messages`) is the
    wrapped gateway's."""

    def __init__(self, inner: SmsGateway, suppressed_among: SuppressedAmong) -> None:
        self._inner = inner
        self.name = inner.name
        self._suppressed_among = suppressed_among
        # Pacing state for a wrapped gateway that sends one at a time (see send_batch).
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def inner(self) -> SmsGateway:
        return self._inner

    def __getattr__(self, attr: str) -> Any:
        # Only reached for attributes this class lacks; every sending method is defined
        # here, so nothing that sends can bypass the check this way.
        return getattr(self._inner, attr)

    def _blocked(self, batch: Sequence[OutgoingSms]) -> set[str] | None:
        """The batch's suppressed numbers (compliance replies left out); None when the
        list could not be read."""
        numbers = {sms.to for sms in batch if not sms.compliance}
        if not numbers:
            return set()
        try:
            return self._suppressed_among(numbers)
        except SuppressionListUnreadable as exc:
            log.warning("suppression list unreadable, batch of %d held: %s", len(batch), exc)
            return None

    def send(self, sms: OutgoingSms) -> SendReceipt:
        blocked = self._blocked([sms])
        if blocked is None:
            raise SendFailure(Outcome.RETRY, detail="suppression list unreadable")
        if sms.to in blocked and not sms.compliance:
            log.info("sms to %s refused: number suppressed", mask_phone(sms.to))
            raise _refusal()
        return self._inner.send(sms)

    def _split(
        self, batch: Sequence[OutgoingSms], on_result: ResultHook | None
    ) -> tuple[list[SendResult], list[int]] | None:
        """Results with the refusals filled in, and the indexes still to send."""
        blocked = self._blocked(batch)
        if blocked is None:
            return None
        results: list[SendResult] = [None] * len(batch)
        allowed: list[int] = []
        for index, sms in enumerate(batch):
            if sms.to in blocked and not sms.compliance:
                refusal = _refusal()
                results[index] = refusal
                if on_result is not None:
                    on_result(index, refusal)
            else:
                allowed.append(index)
        if len(allowed) < len(batch):
            refused = len(batch) - len(allowed)
            log.info("batch: %d of %d refused, numbers suppressed", refused, len(batch))
        return results, allowed

    def _guarded(self, send: BatchSender) -> BatchSender:
        def guarded(batch: Sequence[OutgoingSms], on_result: ResultHook | None) -> list[SendResult]:
            split = self._split(batch, on_result)
            if split is None:
                unreadable = SendFailure(Outcome.RETRY, detail="suppression list unreadable")
                return [unreadable if i == 0 else None for i in range(len(batch))]
            results, allowed = split
            if not allowed:
                return results
            hook = None
            if on_result is not None:
                outer = on_result

                def hook(index: int, result: SendReceipt | SendFailure) -> None:
                    outer(allowed[index], result)

            sent = send([batch[i] for i in allowed], hook)
            for index, result in zip(allowed, sent, strict=True):
                results[index] = result
            return results

        return guarded

    def send_many(
        self, batch: Sequence[OutgoingSms], pacing: Pacing, on_result: ResultHook | None = None
    ) -> list[SendResult]:
        def through_inner(part: Sequence[OutgoingSms], hook: ResultHook | None) -> list[SendResult]:
            return send_batch(self._inner, part, pacing, hook, buckets=self._buckets)

        return self._guarded(through_inner)(batch, on_result)

    @contextmanager
    def batch_sender(self, pacing: Pacing) -> Iterator[BatchSender]:
        with open_batch_sender(self._inner, pacing, buckets=self._buckets) as send:
            yield self._guarded(send)
