"""When handling a text fails: which database errors are worth another run, and the row kept
for the clock tick's recovery with what protects the patient already applied (the sender's
STOP, a red flag's alert) in that same fallback transaction."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.triage import (
    Effect,
)
from coachbot.services import media_samples
from coachbot.services.inbound import context
from coachbot.services.inbound.context import (
    EMPTY_TWIML,
    FAILED,
    Context,
    InboundRow,
    InboundSms,
    find_sender,
    insert_row,
    raise_alerts,
)
from coachbot.services.inbound.effects import apply_opt_out, caregiver_leaves, suppress_number
from coachbot.settings import Settings
from coachbot.store import inbound as inbound_store

log = logging.getLogger(__name__)


def is_transient_db_error(exc: BaseException) -> bool:
    """A database error that a new transaction may not meet again: SQLite's "database is
    locked", a PostgreSQL deadlock or serialization failure, a dropped connection."""
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def is_kept(session_factory: sessionmaker[Session], provider_sid: str) -> bool:
    """Whether the text with this provider id was stored, handled or kept as failed: the
    answer is empty TwiML either way, and only this tells a text with no reply from one
    the database could not take."""
    with session_factory() as session, session.begin():
        return inbound_store.is_stored(session.connection(), provider_sid)


def keep_failed_row(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    sms: InboundSms,
    now: dt.datetime,
) -> None:
    """Keeps the row for the clock tick's recovery, with what protects the patient applied
    (see the module's notes); failing that, the row alone; failing that, the log line."""
    try:
        _keep_protected(session_factory, library, settings, sms, now)
        return
    except Exception:
        log.exception("inbound %s kept without its STOP or red flag applied", sms.provider_sid)
    try:
        with session_factory() as session, session.begin():
            if not inbound_store.is_stored(session.connection(), sms.provider_sid):
                insert_row(
                    session.connection(), sms, now, outcome=FAILED, response_twiml=EMPTY_TWIML
                )
    except Exception:
        # The database itself is failing; Twilio will retry and operators see the log.
        log.exception("could not keep inbound %s", sms.provider_sid)


def _keep_protected(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    sms: InboundSms,
    now: dt.datetime,
) -> None:
    with session_factory() as session, session.begin():
        connection = session.connection()
        if inbound_store.is_stored(connection, sms.provider_sid):
            return  # a concurrent delivery of the same message was kept or handled
        row_id = insert_row(connection, sms, now, outcome=FAILED, response_twiml=EMPTY_TWIML)
        row = InboundRow(row_id, sms.provider_sid, sms.from_number, sms.body, sms.num_media)
        ctx = Context(session, connection, library, settings, row, now)
        _protect(ctx)
        media_samples.record_samples(ctx, sms.media_urls, None)  # pictures are kept too
        inbound_store.update_row(
            connection,
            row.id,
            {
                "patient_id": row.patient_id,
                "caregiver_id": row.caregiver_id,
                "is_proxy": row.is_proxy,
            },
        )


def _protect(ctx: Context) -> None:
    """The part of the pipeline that needs no reply and must not wait for the recovery:
    the sender's STOP and a red flag's alert."""
    patient = find_sender(ctx)
    if patient is None and ctx.caregiver is None:
        return
    ctx.patient = patient
    ctx.row.patient_id = patient.id if patient is not None else None
    decision = context.decide_text(ctx, patient)
    if decision.effect is Effect.OPT_OUT and patient is not None and not ctx.row.is_proxy:
        suppress_number(ctx, decision)
        apply_opt_out(ctx, patient)
        raise_alerts(ctx, decision)
    elif decision.effect is Effect.CAREGIVER_REMOVED:
        # The tick texts caregivers their checks: their STOP cannot wait for the recovery.
        suppress_number(ctx, decision)
        caregiver_leaves(ctx)
        raise_alerts(ctx, decision)
    elif decision.is_danger:
        raise_alerts(ctx, decision)
