"""Recording: a sent batch's outcomes, in one transaction after the sends.

Accepted sends, nearly all of a batch, are written in bulk (the nudges marked sent, one
outbound row each); the rare failures and throttled leftovers go through the per-nudge
rules of `_record_failure`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.provider_errors import Outcome
from coachbot.domain.states import NudgeState
from coachbot.models import DeliveryEvent, Nudge, OutboundMessage
from coachbot.services.delivery import (
    RETRY_LATER_DELAY,
    RETRY_LATER_MAX_ATTEMPTS,
    apply_number_outcome,
    apply_stored_events,
)
from coachbot.services.dispatch.claim import Ready
from coachbot.sms.gateway import SendFailure, SendReceipt, SendResult
from coachbot.sms.suppression import SUPPRESSED, is_suppression_refusal
from coachbot.store import nudges as nudge_store
from coachbot.store import outbound as outbound_store

if TYPE_CHECKING:
    from coachbot.services.tick import TickSummary

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = dt.timedelta(seconds=30)


def _finish(nudge: Nudge, state: NudgeState, reason: str | None, now: dt.datetime) -> None:
    nudge.state = state
    nudge.state_reason = reason
    nudge.lease_expires_at = None
    nudge.updated_at = now


def _requeue(nudge: Nudge, send_at: dt.datetime, now: dt.datetime) -> None:
    nudge.state = NudgeState.PLANNED
    nudge.send_at = send_at
    nudge.sent_at = None
    nudge.lease_expires_at = None
    nudge.updated_at = now


def _throttle_delay(results: Sequence[SendResult]) -> dt.timedelta:
    """The longest Retry-After the provider asked for, at least the default backoff."""
    delay = DEFAULT_BACKOFF
    for result in results:
        if (
            isinstance(result, SendFailure)
            and result.outcome is Outcome.RETRY
            and result.retry_after is not None
        ):
            delay = max(delay, dt.timedelta(seconds=result.retry_after))
    return delay


def record_batch(
    session_factory: sessionmaker[Session],
    backend: str,
    ready: Sequence[Ready],
    results: Sequence[SendResult],
    now: dt.datetime,
    summary: TickSummary,
) -> bool:
    """Records a batch's outcomes in one transaction; True when the provider throttled us."""
    throttle_delay = _throttle_delay(results)
    throttled = False
    pairs = list(zip(ready, results, strict=True))
    accepted = [(item, result) for item, result in pairs if isinstance(result, SendReceipt)]
    others = [(item, result) for item, result in pairs if not isinstance(result, SendReceipt)]
    with session_factory() as session, session.begin():
        if accepted:
            _record_accepted(session, backend, accepted, now)
            summary.sent += len(accepted)
        if others:
            nudges = {
                n.id: n
                for n in session.scalars(
                    select(Nudge).where(Nudge.id.in_([item.nudge_id for item, _ in others]))
                )
            }
            for item, result in others:
                nudge = nudges[item.nudge_id]
                if result is None:
                    # Never attempted: the provider throttled the batch before its turn.
                    nudge.attempts = max(0, nudge.attempts - 1)
                    _requeue(nudge, now + throttle_delay, now)
                    summary.deferred += 1
                    throttled = True
                else:
                    assert isinstance(result, SendFailure)
                    throttled |= _record_failure(session, item, nudge, result, now, summary)
    if summary.sent:
        log.info("dispatch batch: %s", summary.as_text())
    return throttled


def _record_accepted(
    session: Session,
    backend: str,
    accepted: Sequence[tuple[Ready, SendReceipt]],
    now: dt.datetime,
) -> None:
    sids = [receipt.provider_sid for _, receipt in accepted]
    # A replayed record (or a callback that created the message row) must not add a second.
    known = set(
        session.scalars(
            select(OutboundMessage.provider_sid).where(OutboundMessage.provider_sid.in_(sids))
        )
    )
    with_events = set(
        session.scalars(
            select(DeliveryEvent.provider_sid).where(DeliveryEvent.provider_sid.in_(sids))
        )
    )
    nudge_store.mark_sent(
        session,
        [
            nudge_store.Accepted(item.nudge_id, receipt.provider_sid, now + item.reply_window)
            for item, receipt in accepted
        ],
        now,
    )
    new = [(item, receipt) for item, receipt in accepted if receipt.provider_sid not in known]
    outbound_store.insert_many(
        session.connection(),
        [
            outbound_store.Outbound(
                patient_id=item.patient_id,
                to_e164=item.to,
                body=item.body,
                kind="nudge",
                template_id=item.template_id,
                variant_id=item.variant_id,
                backend=backend,
                segments=item.segments,
                created_at=now,
                nudge_id=item.nudge_id,
                provider_sid=receipt.provider_sid,
                delivery_status=receipt.status,
            )
            for item, receipt in new
        ],
    )
    # Status callbacks that arrived before this commit were stored as events; replay them
    # now that the message row exists (rare: Twilio answers before it calls back).
    for item, receipt in new:
        if receipt.provider_sid in with_events:
            outbound = session.scalars(
                select(OutboundMessage).where(OutboundMessage.provider_sid == receipt.provider_sid)
            ).one()
            nudge = session.get_one(Nudge, item.nudge_id)
            apply_stored_events(session, receipt.provider_sid, outbound, nudge, now)


def _record_failure(
    session: Session,
    item: Ready,
    nudge: Nudge,
    failure: SendFailure,
    now: dt.datetime,
    summary: TickSummary,
) -> bool:
    code = str(failure.code) if failure.code is not None else None
    outcome = failure.outcome
    log.warning("nudge %s not sent: %s (code %s)", item.nudge_id, outcome, code)
    if outcome is Outcome.RETRY:
        delay = (
            dt.timedelta(seconds=failure.retry_after)
            if failure.retry_after is not None
            else DEFAULT_BACKOFF
        )
        _requeue(nudge, now + delay, now)
        summary.deferred += 1
        return True
    if outcome is Outcome.RETRY_LATER and nudge.attempts < RETRY_LATER_MAX_ATTEMPTS:
        _requeue(nudge, now + RETRY_LATER_DELAY, now)
        nudge.state_reason = code
        summary.deferred += 1
        return False
    if is_suppression_refusal(failure):
        # The number is on the suppression list: nothing reached the provider, so the
        # nudge is skipped (like any other consent gate), with the reason on the row.
        _finish(nudge, NudgeState.SKIPPED, SUPPRESSED, now)
        nudge.sent_at = None
        summary.skipped += 1
        return False
    if outcome is Outcome.AMBIGUOUS:
        # Never resent blindly: a status callback or reconciliation settles it.
        _finish(nudge, NudgeState.AMBIGUOUS, code or failure.detail or "no_response", now)
        summary.ambiguous += 1
        return False
    _finish(nudge, NudgeState.FAILED, code or outcome.value, now)
    summary.failed += 1
    apply_number_outcome(session, item.patient_id, outcome, code, now)
    return False
