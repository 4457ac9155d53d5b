"""The clock tick's step for inbound texts the webhook could not handle.

`services.inbound` keeps such a text with outcome "error" (after applying, in that fallback,
a patient's STOP and a red flag's alert). Each tick runs the pipeline for those rows again,
as of when each was received, through `inbound.recover_failed`, which claims a row with a
conditional UPDATE so that of several clock processes one only handles it.

The reply the pipeline gives is texted after that transaction commits (no network call
inside it, as everywhere else): at most once, so a crash between the commit and the send
loses the reply, never the STOP or the alert, and never texts twice.

* Compliance and safety replies (the STOP confirmation, START / opt-in confirmations, the
  fixed red-flag text) go at once, as they would have inside the TwiML answer: carriers
  require the STOP confirmation immediately and the patient started that conversation.
* Any other reply is an automated text by now, so it obeys the send window and the
  patient's quiet hours, goes to active patients only, and only while it still answers
  something (`FRESH_REPLY`); otherwise it is dropped (the answer itself is recorded).
* A number we do not know gets no late reply.
* A row that fails again on a transient database error stays failed for the next tick; on
  any other error it is marked `UNRECOVERED` and logged once, rather than every tick.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain import schedule as sched
from coachbot.domain import sendability
from coachbot.models import (
    Caregiver,
    InboundMessage,
    Patient,
)
from coachbot.services.inbound.context import FAILED, RECOVERING, Context, InboundRow
from coachbot.services.inbound.failure import is_transient_db_error
from coachbot.services.inbound.pipeline import process
from coachbot.services.messaging import send_text, status_callback_url
from coachbot.services.schedules import dispatch_settings
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway
from coachbot.store import inbound as inbound_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    """A row kept as failed, handled now; `message` is the reply it owes, if any."""

    row_id: int
    to_e164: str
    patient_id: int | None
    is_proxy: bool
    received_at: dt.datetime
    message: RenderedMessage | None
    caregiver_id: int | None = None  # a caregiver wrote: their consent and hours apply


def recover_failed(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    row_id: int,
) -> Recovered | None:
    """Runs the pipeline for a row kept as failed, as of when it was received, and commits.
    None when the row is no longer failed: the conditional UPDATE that claims it lets one
    clock process only handle it (on PostgreSQL a second one waits for the first's commit,
    then matches nothing; SQLite has one writer at a time). Raises on failure, the row then
    stays failed."""
    with session_factory() as session, session.begin():
        connection = session.connection()
        claimed = inbound_store.claim_failed(connection, row_id, FAILED, RECOVERING)
        if claimed is None:
            return None
        row = InboundRow(
            row_id, claimed.provider_sid, claimed.from_e164, claimed.body, claimed.num_media
        )
        ctx = Context(
            session, connection, library, settings, row, claimed.received_at, recovering=True
        )
        reply = process(ctx)
        # The TwiML answer stays the empty one Twilio got; the reply goes out as a text.
        inbound_store.update_row(connection, row.id, row.found(row.outcome or "recovered"))
        return Recovered(
            row.id,
            row.from_e164,
            row.patient_id,
            row.is_proxy,
            claimed.received_at,
            reply,
            row.caregiver_id,
        )


# --- the clock tick's step ---------------------------------------------------------------

BATCH = 50
# Bounds one tick's work after a long outage; the rest waits for the next tick.
MAX_PER_TICK = 2000
FRESH_REPLY = dt.timedelta(hours=1)
UNRECOVERED = "error_unrecovered"
# Sent whatever the hour: carrier-required or safety text (as triage.ALWAYS_SENT).
IMMEDIATE = frozenset(
    {
        "red_flag",
        "stop_confirmation",
        "start_confirmation",
        "optin_confirmed",
        "caregiver.optin_confirmed",
        "caregiver.ack_concern",
    }
)


def recover_failed_inbound(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """Handles the rows kept as failed, oldest first, each at most once per call (one that
    fails again waits for the next tick), up to MAX_PER_TICK; returns how many it handled.

    The whole backlog, not one batch: the tick runs this before dispatch, so a STOP kept
    in a failed row is applied before the next nudge goes out (a burst of database errors
    can leave more than one batch behind)."""
    handled = seen = last_id = 0
    while seen < MAX_PER_TICK:
        with session_factory() as session:
            row_ids = list(
                session.scalars(
                    select(InboundMessage.id)
                    .where(InboundMessage.outcome == FAILED, InboundMessage.id > last_id)
                    .order_by(InboundMessage.id)
                    .limit(BATCH)
                )
            )
        if not row_ids:
            break
        last_id, seen = row_ids[-1], seen + len(row_ids)
        for row_id in row_ids:
            handled += _recover_one(session_factory, gateway, library, settings, row_id, now)
    if handled:
        log.info("failed inbound texts recovered: %d", handled)
    return handled


def _recover_one(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    row_id: int,
    now: dt.datetime,
) -> int:
    """1 when this call handled the row, 0 when it failed again or another clock has it."""
    try:
        recovered = recover_failed(session_factory, library, settings, row_id)
    except Exception as exc:
        if is_transient_db_error(exc):
            log.warning("inbound row %d still failing (%s)", row_id, type(exc).__name__)
            return 0
        log.exception("inbound row %d could not be recovered", row_id)
        _give_up(session_factory, row_id)
        return 0
    if recovered is None:
        return 0  # another clock process has it
    if recovered.message is not None:
        _send_reply(session_factory, gateway, settings, recovered, now)
    return 1


def _give_up(session_factory: sessionmaker[Session], row_id: int) -> None:
    try:
        with session_factory() as session, session.begin():
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == row_id, InboundMessage.outcome == FAILED)
                .values(outcome=UNRECOVERED)
            )
    except Exception:
        log.exception("inbound row %d left failed", row_id)


def _may_send(session: Session, recovered: Recovered, now: dt.datetime) -> bool:
    message = recovered.message
    if message is None:
        return False
    # The one who wrote is the recipient: a caregiver by their own consent and hours.
    recipient: Patient | Caregiver | None = None
    if recovered.caregiver_id is not None:
        recipient = session.get(Caregiver, recovered.caregiver_id)
    elif recovered.patient_id is not None:
        recipient = session.get(Patient, recovered.patient_id)
    if recipient is None:
        return False
    if message.template_id in IMMEDIATE:
        return True
    verdict = sendability.check(
        sendability.Recipient(
            recipient.status,
            ZoneInfo(recipient.timezone),
            recipient.quiet_start,
            recipient.quiet_end,
        ),
        now,
        sendability.Rules(
            dispatch_settings(session).window,
            quiet_policy=sched.QuietPolicy.SKIP,
            fresh_until=recovered.received_at + FRESH_REPLY,
        ),
    )
    return verdict.may_send_now


def _send_reply(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    settings: Settings,
    recovered: Recovered,
    now: dt.datetime,
) -> None:
    """Texts the reply to the number that wrote (the patient or their caregiver) and keeps
    it as a "reply" row, like the TwiML answer it replaces (the loop guard counts it)."""
    message = recovered.message
    with session_factory() as session:
        if message is None or not _may_send(session, recovered, now):
            log.info("late reply to inbound row %d not sent", recovered.row_id)
            return
        session.commit()  # no transaction (nor SQLite write lock) across the send
        send_text(
            session,
            gateway,
            patient_id=recovered.patient_id,
            to_e164=recovered.to_e164,
            message=message,
            kind="reply",
            now=now,
            status_callback=status_callback_url(settings.public_base_url),
        )
        session.commit()
