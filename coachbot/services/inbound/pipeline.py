"""The inbound pipeline, in order: idempotency, sender, compliance keywords, revocations,
red flags, reply parsing, adherence, coaching reply; one transaction per message."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from xml.sax.saxutils import escape

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain.phones import mask_phone
from coachbot.domain.segments import count_segments
from coachbot.domain.states import (
    AlertKind,
)
from coachbot.domain.triage import (
    Decision,
)
from coachbot.models import (
    InboundMessage,
)
from coachbot.services import media_samples, paging
from coachbot.services.caregivers.answers import reply_to_caregiver
from coachbot.services.inbound import context
from coachbot.services.inbound.answers import coach, record_answer
from coachbot.services.inbound.context import (
    EMPTY_TWIML,
    Context,
    InboundRow,
    InboundSms,
    find_sender,
    insert_row,
    raise_alerts,
    raised_for_row,
)
from coachbot.services.inbound.effects import apply_effect
from coachbot.services.inbound.failure import is_transient_db_error, keep_failed_row
from coachbot.services.inbound.replies import insert_reply, reply_with, safety_reply
from coachbot.settings import Settings
from coachbot.store import inbound as inbound_store

log = logging.getLogger(__name__)

MAX_MEDIA = 10  # Twilio's own limit per MMS
MAX_STORED_BODY = 5000  # Twilio caps bodies at 1,600; anything longer is not Twilio
# Three runs: a unique-key race needs a second one, a transient database error one or two.
ATTEMPTS = 3
# Pause before run n+1 after a transient error: short (Twilio waits on the answer), jittered
# so two requests that deadlocked each other do not meet again.
_RETRY_PAUSE_SECONDS = 0.02
# Same bytes as str(MessagingResponse().message(body)): ElementTree escapes &, < and > only.
_TWIML_HEAD = EMPTY_TWIML.removesuffix("<Response />") + "<Response><Message>"
_TWIML_TAIL = "</Message></Response>"


def twiml_message(body: str) -> str:
    """The TwiML answer carrying one message, byte for byte what the twilio SDK builds
    (tests/unit/test_inbound_twiml.py holds it to that): 0.5 us instead of 23 us."""
    if not body:
        return _TWIML_HEAD.removesuffix("<Message>") + "<Message /></Response>"
    return f"{_TWIML_HEAD}{escape(body)}{_TWIML_TAIL}"


def handle_inbound(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    sms: InboundSms,
    now: dt.datetime,
    *,
    after_commit: Callable[[], None] | None = None,
) -> str:
    """Returns the TwiML answer for Twilio. Never raises. `after_commit` is called once the
    message is committed when it raised an alert a person must be paged for (the web process
    wakes its pager with it)."""
    try:
        sms = _storable(sms)
        for attempt in range(ATTEMPTS):
            try:
                try:
                    twiml, pageable = _handle_once(session_factory, library, settings, sms, now)
                    if pageable and after_commit is not None:
                        _call_after_commit(after_commit, sms)
                    return twiml
                except IntegrityError:
                    # Usually a retried or concurrent duplicate: the INSERT of the row is the
                    # check. Reading the stored answer can fail too: the same handling below.
                    answer = _answer_of_duplicate(session_factory, sms)
                    if answer is not None:
                        return answer
                    # Another unique key lost a race (two answers to one nudge at the same
                    # instant): the other transaction has committed, a second run sees its rows.
                    log.info("inbound %s raced on a unique key; running it again", sms.provider_sid)
            except Exception as exc:
                if is_transient_db_error(exc) and attempt + 1 < ATTEMPTS:
                    log.warning(
                        "inbound %s hit a transient database error (%s); retrying",
                        sms.provider_sid,
                        type(exc).__name__,
                    )
                    jitter = 1 + random.random()  # noqa: S311 (timing, not security)
                    time.sleep(_RETRY_PAUSE_SECONDS * (attempt + 1) * jitter)
                    continue
                log.exception(
                    "inbound %s from %s failed", sms.provider_sid, mask_phone(sms.from_number)
                )
                break
        else:
            log.error("inbound %s still conflicting; kept unprocessed", sms.provider_sid)
        keep_failed_row(session_factory, library, settings, sms, now)
    except Exception:
        # Nothing may reach Twilio as a 500: it would only retry into the same failure.
        log.exception("inbound %s could not be handled at all", sms.provider_sid)
    return EMPTY_TWIML


def _call_after_commit(after_commit: Callable[[], None], sms: InboundSms) -> None:
    try:
        after_commit()
    except Exception:
        # The alert is committed: the clock tick pages it if the wake-up failed.
        log.exception("inbound %s: waking the pager failed", sms.provider_sid)


def _clean(text: str, limit: int) -> str:
    # PostgreSQL text refuses NUL and lone surrogates; the rest is kept exactly as sent.
    text = text.replace("\x00", "\ufffd")[:limit]
    return text.encode("utf-8", "replace").decode("utf-8")


def _storable(sms: InboundSms) -> InboundSms:
    return InboundSms(
        provider_sid=_clean(sms.provider_sid, 64),
        from_number=_clean(sms.from_number, 32),
        to_number=_clean(sms.to_number, 32),
        body=_clean(sms.body, MAX_STORED_BODY),
        num_media=min(max(sms.num_media, 0), MAX_MEDIA),
        media_urls=sms.media_urls[:MAX_MEDIA],
    )


# Statements are built once, parameters bound by name at execution: building the open-nudge
# condition alone was 3% of a request in bench/webhook_profile.py.


def _handle_once(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    sms: InboundSms,
    now: dt.datetime,
) -> tuple[str, bool]:
    with session_factory() as session, session.begin():
        connection = session.connection()
        # The unique provider_sid is the idempotency check: a duplicate fails here (on
        # PostgreSQL a concurrent one waits for the first to commit, then fails) and takes
        # the IntegrityError branch, which answers with the stored reply.
        row_id = insert_row(connection, sms, now)
        row = InboundRow(row_id, sms.provider_sid, sms.from_number, sms.body, sms.num_media)
        ctx = Context(session, connection, library, settings, row, now)
        reply = process(ctx)
        # Handwriting samples: a pending row per picture, fetched once this commits.
        reply = media_samples.record_samples(ctx, sms.media_urls, reply)
        twiml = EMPTY_TWIML
        if reply is not None:
            twiml = twiml_message(reply.body)
            insert_reply(ctx, reply)
        inbound_store.update_row(
            connection, row.id, {**row.found(row.outcome), "response_twiml": twiml}
        )
        return twiml, ctx.pageable


def _answer_of_duplicate(session_factory: sessionmaker[Session], sms: InboundSms) -> str | None:
    """The stored answer when the message itself is the duplicate, else None."""
    with session_factory() as session:
        row = session.execute(
            select(InboundMessage.id, InboundMessage.response_twiml).where(
                InboundMessage.provider_sid == sms.provider_sid
            )
        ).first()
        if row is None:
            return None
        return row.response_twiml or EMPTY_TWIML


def process(ctx: Context) -> RenderedMessage | None:
    """Reads the sender and their open prompts, asks the domain what the text means
    (`coachbot.domain.triage.decide`), and carries the decision out."""
    row = ctx.row
    staff_reply = paging.handle_staff_sms(ctx.session, row.from_e164, row.body, ctx.now)
    if staff_reply is not None:
        # The on-call acknowledging a page from their registered phone, not a patient's text.
        row.outcome = "staff_ack"
        return RenderedMessage(
            "staff_ack", "staff_ack", "en", staff_reply, count_segments(staff_reply)
        )
    patient = find_sender(ctx)
    if patient is not None:
        ctx.patient = patient
        row.patient_id = patient.id
    decision = context.decide_text(ctx, patient)
    ctx.decision = decision
    row.outcome = decision.outcome
    row.needs_reading = decision.needs_reading
    if decision.prompt is not None:
        row.nudge_id = decision.prompt.nudge_id
    keep_reply = apply_effect(ctx, patient, decision)
    raise_alerts(ctx, decision)
    if ctx.caregiver is not None:
        return reply_to_caregiver(ctx, decision, keep_reply)
    answered = None
    if decision.answer is not None and patient is not None:
        answered = record_answer(ctx, patient, decision.answer)
    language = patient.language if patient is not None else "en"
    if decision.coach and patient is not None and answered is not None:
        assert decision.answer is not None  # coach implies an answer
        return coach(ctx, patient, answered, decision.answer)
    template = decision.reply if keep_reply else None
    if template is None and _owes_stop_confirmation(ctx, decision):
        template, row.outcome = "stop_confirmation", "opt_out"
    if template is None:
        return None
    if decision.is_danger:
        return safety_reply(ctx, template, language)
    return reply_with(ctx, template, language)


def _owes_stop_confirmation(ctx: Context, decision: Decision) -> bool:
    """A STOP the fallback already applied (the row was kept when the database failed) still
    owes its one confirmation when the recovery re-runs it."""
    return decision.outcome == "opt_out_repeat" and raised_for_row(ctx, AlertKind.OPT_OUT)
