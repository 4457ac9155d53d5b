"""Settling ambiguous sends by asking the provider what it has.

A nudge is `ambiguous` when its API call may have reached Twilio without us learning the
result (a 5xx, a timeout, a reset, a dispatcher killed mid-send). Its status callback may
still settle it; after a grace period this job lists the provider's messages to the
patient's number and matches the body we stored when the row entered `sending`:

* found: the nudge is sent (or delivered/failed, as Twilio says), and recorded;
* proven absent: resent once (a second ambiguous miss fails it with a visible reason), or
  recorded `missed (too_late)` when its track's stale limit has passed;
* the provider cannot answer: left for the next run; nothing is concluded from silence.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.phones import mask_phone
from coachbot.domain.states import NudgeState
from coachbot.models import Nudge, OutboundMessage, Patient
from coachbot.services.delivery import apply_stored_events, record_outbound
from coachbot.services.programs import rules_for
from coachbot.sms.gateway import ProviderMessage, SendFailure, SmsGateway

log = logging.getLogger(__name__)

# Status callbacks usually settle an ambiguous send within seconds; only then ask.
RECONCILE_GRACE = dt.timedelta(minutes=2)
# Provider clocks and ours differ a little; look a bit before our own send instant.
CLOCK_SLACK = dt.timedelta(minutes=5)
RECONCILE_BATCH = 50
_STATE_FOR_PROVIDER_STATUS = {
    "delivered": NudgeState.DELIVERED,
    "read": NudgeState.DELIVERED,
    "undelivered": NudgeState.FAILED,
    "failed": NudgeState.FAILED,
}


@dataclass
class ReconcileSummary:
    """What one reconciliation run concluded, for `coachbot reconcile` and the log line.

    Its own type rather than `tick.TickSummary`: its `failed` and `missed` count nudges this
    run settled (a second ambiguous miss, a proven-absent send past its stale limit), while
    the tick's count dispatch failures and unanswered reply windows; one type would make
    two different facts share a name. The tick folds in what it reports, `found`, as
    `TickSummary.reconciled`."""

    found: int = 0
    resent: int = 0
    failed: int = 0
    missed: int = 0
    unresolved: int = 0

    def as_text(self) -> str:
        return (
            f"found={self.found} resent={self.resent} failed={self.failed}"
            f" missed={self.missed} unresolved={self.unresolved}"
        )


def reconcile_ambiguous(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    now: dt.datetime,
    *,
    grace: dt.timedelta = RECONCILE_GRACE,
    limit: int = RECONCILE_BATCH,
) -> ReconcileSummary:
    summary = ReconcileSummary()
    lookup = getattr(gateway, "recent_messages", None)
    if lookup is None:
        return summary  # a backend with no records to ask (console) never goes ambiguous
    with session_factory() as session:
        candidates = session.execute(
            select(Nudge.id, Patient.phone_e164, Nudge.sent_at, Nudge.updated_at)
            .join(Patient, Patient.id == Nudge.patient_id)
            .where(Nudge.state == NudgeState.AMBIGUOUS, Nudge.updated_at <= now - grace)
            .order_by(Nudge.updated_at, Nudge.id)
            .limit(limit)
        ).all()
    for nudge_id, phone, sent_at, updated_at in candidates:
        since = (sent_at or updated_at) - CLOCK_SLACK
        try:
            messages: list[ProviderMessage] = lookup(phone, since)
        except SendFailure as exc:
            log.warning("reconcile: cannot list messages to %s: %s", mask_phone(phone), exc)
            summary.unresolved += 1
            continue
        _settle(session_factory, nudge_id, messages, now, summary)
    if candidates:
        log.info("reconcile: %s", summary.as_text())
    return summary


def _settle(
    session_factory: sessionmaker[Session],
    nudge_id: int,
    messages: list[ProviderMessage],
    now: dt.datetime,
    summary: ReconcileSummary,
) -> None:
    with session_factory() as session, session.begin():
        nudge = session.get(Nudge, nudge_id)
        # A callback may have settled it while we were asking.
        if nudge is None or nudge.state != NudgeState.AMBIGUOUS:
            return
        match = _match(session, nudge, messages)
        if match is not None:
            nudge.provider_sid = match.provider_sid
            nudge.state = _STATE_FOR_PROVIDER_STATUS.get(match.status, NudgeState.SENT)
            nudge.state_reason = "reconciled"
            nudge.lease_expires_at = None
            nudge.updated_at = now
            message = record_outbound(session, nudge, match.provider_sid, now)
            message.delivery_status = match.status
            apply_stored_events(session, match.provider_sid, message, nudge, now)
            summary.found += 1
            return
        policy = rules_for(session, nudge.patient_id, nudge.track)
        if nudge.resent:
            nudge.state, nudge.state_reason = NudgeState.FAILED, "unconfirmed_after_resend"
            nudge.updated_at = now
            summary.failed += 1
        elif now - nudge.due_at > policy.stale_limit:
            nudge.state, nudge.state_reason = NudgeState.MISSED, "too_late"
            nudge.updated_at = now
            summary.missed += 1
        else:
            # Proven absent: Twilio has no such message, so one resend cannot double-text.
            nudge.state, nudge.state_reason = NudgeState.PLANNED, "resend_after_reconcile"
            nudge.resent = True
            nudge.send_at = now
            nudge.sent_at = None
            nudge.lease_expires_at = None
            nudge.updated_at = now
            summary.resent += 1


def _match(
    session: Session, nudge: Nudge, messages: list[ProviderMessage]
) -> ProviderMessage | None:
    if not nudge.rendered_body:
        return None
    candidates = [m for m in messages if m.body == nudge.rendered_body]
    if not candidates:
        return None
    sids = [m.provider_sid for m in candidates]
    # A message already recorded for another nudge or reply is not this nudge's.
    taken = set(session.scalars(select(Nudge.provider_sid).where(Nudge.provider_sid.in_(sids))))
    taken |= set(
        session.scalars(
            select(OutboundMessage.provider_sid).where(OutboundMessage.provider_sid.in_(sids))
        )
    )
    free = [m for m in candidates if m.provider_sid not in taken]
    # Oldest first: the first attempt is the one that went out.
    return min(free, key=lambda m: m.created_at) if free else None
