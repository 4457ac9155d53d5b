"""Sending: claimed and gated batches go on the wire, one batch after another."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.pacing import TokenBucket
from coachbot.services.dispatch.claim import Ready, claim_batch, prepare
from coachbot.services.dispatch.record import record_batch
from coachbot.services.messaging import status_callback_url
from coachbot.services.schedules import dispatch_settings
from coachbot.settings import Settings
from coachbot.sms.gateway import OutgoingSms, Pacing, SmsGateway, open_batch_sender

if TYPE_CHECKING:
    from coachbot.services.tick import TickSummary

_SEQUENTIAL_BUCKETS: dict[str, TokenBucket] = {}


def dispatch_due(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    """Claims, gates, sends and records batch after batch until nothing is due or the
    provider throttles us. The sends of a batch go out concurrently within the pacing, over
    one pool of kept-alive connections for the whole run."""
    with session_factory() as session:
        config = dispatch_settings(session)
    sender = getattr(gateway, "sender", gateway.name)
    pacing = Pacing(config.pace_for(sender), config.max_concurrency)
    callback_base = settings.public_base_url if gateway.name == "twilio" else None
    with open_batch_sender(gateway, pacing, buckets=_SEQUENTIAL_BUCKETS) as send:
        while True:
            ids = claim_batch(session_factory, now)
            if not ids:
                return
            ready = prepare(session_factory, library, settings, ids, now, config, summary)
            if not ready:
                continue
            results = send([_outgoing(r, callback_base) for r in ready], None)
            if record_batch(session_factory, gateway.name, ready, results, now, summary):
                return  # throttled: the rest waits for the next tick


def _outgoing(ready: Ready, callback_base: str | None) -> OutgoingSms:
    return OutgoingSms(
        to=ready.to,
        body=ready.body,
        # The nudge id in the callback URL matches a callback that outruns our own commit.
        status_callback=(
            status_callback_url(callback_base, ready.nudge_id) if callback_base else None
        ),
        segments=ready.segments,
    )
