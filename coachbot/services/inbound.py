"""The inbound SMS pipeline, in order: idempotency, sender, compliance keywords, revocations,
red flags, reply parsing, adherence, coaching reply.

One transaction per message. A failure anywhere still answers Twilio with empty TwiML and
keeps the inbound row, so no reply is ever lost and Twilio never sees a 500.

What a text means, and so what happens (its class, alerts, answer, reply), is decided by the
pure `coachbot.domain.triage.decide`; its docstring holds the rules (danger before adherence,
consent, unknown senders). This module reads the sender and their open nudges, calls it, and
carries the decision out.

Failures
--------
* A transient database error (a lock, a deadlock or serialization failure, a dropped
  connection) is retried a few times after a short pause.
* When every attempt fails the row is kept with outcome "error" and linked to the sender,
  and, in that same fallback transaction, what protects the patient without a reply is
  applied: a patient's STOP opts them out (unsent nudges skipped), a red flag raises the
  clinician's alert. A caregiver's STOP is left to the recovery: caregivers get no
  automated texts, so nothing goes to them meanwhile.
* The clock tick runs the pipeline again for rows kept as "error"
  (`coachbot.services.inbound_recovery`); effects the fallback already applied for that row
  (its opt-out, its red-flag alert) are recognised by the alert the row raised and are not
  applied twice, while the reply they owe (the STOP confirmation, the safety text) is sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.messaging_response import MessagingResponse

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain import coaching
from coachbot.domain.emergency import crisis_template, template_variables
from coachbot.domain.phones import mask_phone
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.segments import count_segments
from coachbot.domain.states import (
    AdherenceOutcome,
    AlertKind,
    AlertSeverity,
    NudgeState,
    PatientStatus,
)
from coachbot.domain.triage import (
    ALWAYS_SENT,
    Answer,
    Decision,
    Effect,
    MessageClass,
    OpenPrompt,
    SenderContext,
    SenderRole,
    decide,
)
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
    ReportedValue,
    SuppressedNumber,
)
from coachbot.queries.adherence import streak_from_instants
from coachbot.services import audit, consent, paging
from coachbot.services.alerts import raise_alert
from coachbot.settings import Settings

log = logging.getLogger(__name__)

EMPTY_TWIML = str(MessagingResponse())
BOT_REPLIES_PER_HOUR = 3
MAX_MEDIA = 10  # Twilio's own limit per MMS
MAX_STORED_BODY = 5000  # Twilio caps bodies at 1,600; anything longer is not Twilio
STREAK_DAYS = 60  # a streak longer than this is reported as this
_OPEN_STATES = (NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)
# An ambiguous nudge may have reached the phone but has no window yet: the longest one bounds it.
_LONGEST_WINDOW = max(p.reply_window for p in TRACK_POLICIES.values())
# Three runs: a unique-key race needs a second one, a transient database error one or two.
_ATTEMPTS = 3
# Pause before run n+1 after a transient error: short (Twilio waits on the answer), jittered
# so two requests that deadlocked each other do not meet again.
_RETRY_PAUSE_SECONDS = 0.02
FAILED = "error"  # the outcome of a row kept unprocessed; the clock tick's recovery re-runs it
_RECOVERING = "recovering"  # a row claimed by one clock process's recovery (transaction-local)
# Same bytes as str(MessagingResponse().message(body)): ElementTree escapes &, < and > only.
_TWIML_HEAD = EMPTY_TWIML.removesuffix("<Response />") + "<Response><Message>"
_TWIML_TAIL = "</Message></Response>"


@dataclass(frozen=True)
class InboundSms:
    provider_sid: str
    from_number: str
    to_number: str
    body: str
    num_media: int = 0


@dataclass
class _Row:
    """The inbound row being handled. Inserted first (its id keys alerts and answers), the
    rest is written by one UPDATE at the end instead of one per changed field."""

    id: int
    provider_sid: str
    from_e164: str
    body: str
    num_media: int
    patient_id: int | None = None
    is_proxy: bool = False
    nudge_id: int | None = None
    outcome: str | None = None
    needs_reading: bool = False


@dataclass
class _Patient:
    """The sender's record as read once; changes go to the database as Core UPDATEs."""

    id: int
    phone_e164: str
    status: str
    language: str
    first_name: str
    timezone: str
    caregiver_phone_e164: str | None
    opted_in_at: dt.datetime | None
    paused_by: str | None = None
    number_suppressed: bool = False  # the number that texted is on the suppression list


@dataclass(frozen=True)
class _Nudge:
    id: int
    patient_id: int
    track: str
    occurrence_key: str
    sent_at: dt.datetime | None
    record_id: int | None  # the adherence record already answering it, if any


@dataclass
class _Context:
    session: Session
    connection: Connection
    library: MessageLibrary
    settings: Settings
    row: _Row
    now: dt.datetime
    patient: _Patient | None = None
    # Re-running a row kept as failed: effects the fallback already applied are not repeated.
    recovering: bool = False
    open_nudges: tuple[_Nudge, ...] = ()  # the sender's, most recent first
    recent_replies: int | None = None  # bot replies to this number in the last hour
    decision: Decision | None = None
    pageable: bool = False  # raised an alert a person must be paged for
    done_facts: _DoneFacts | None = None  # read before an answer is written, for its coaching

    def require_decision(self) -> Decision:
        assert self.decision is not None, "decided before it is carried out"
        return self.decision


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
        for attempt in range(_ATTEMPTS):
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
                if is_transient_db_error(exc) and attempt + 1 < _ATTEMPTS:
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
        _keep_failed_row(session_factory, library, settings, sms, now)
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


def is_transient_db_error(exc: BaseException) -> bool:
    """A database error that a new transaction may not meet again: SQLite's "database is
    locked", a PostgreSQL deadlock or serialization failure, a dropped connection."""
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


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
    )


# Statements are built once, parameters bound by name at execution: building the open-nudge
# condition alone was 3% of a request in bench/webhook_profile.py.
_INSERT_ROW = insert(InboundMessage).returning(InboundMessage.id)
_FINISH_ROW = update(InboundMessage).where(InboundMessage.id == bindparam("row_id"))


def _insert_row(connection: Connection, sms: InboundSms, now: dt.datetime, **kept: str) -> int:
    """Stores the text (its provider_sid is unique) and returns the row's id."""
    values: dict[str, object] = {
        "provider_sid": sms.provider_sid,
        "from_e164": sms.from_number,
        "to_e164": sms.to_number,
        "body": sms.body,
        "num_media": sms.num_media,
        "is_proxy": False,
        "received_at": now,
        **kept,
    }
    return int(connection.execute(_INSERT_ROW, values).scalar_one())


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
        row_id = _insert_row(connection, sms, now)
        row = _Row(row_id, sms.provider_sid, sms.from_number, sms.body, sms.num_media)
        ctx = _Context(session, connection, library, settings, row, now)
        reply = _process(ctx)
        twiml = EMPTY_TWIML
        if reply is not None:
            twiml = twiml_message(reply.body)
            _insert_reply(ctx, reply)
        connection.execute(
            _FINISH_ROW,
            {
                "row_id": row.id,
                "patient_id": row.patient_id,
                "is_proxy": row.is_proxy,
                "nudge_id": row.nudge_id,
                "outcome": row.outcome,
                "needs_reading": row.needs_reading,
                "response_twiml": twiml,
            },
        )
        return twiml, ctx.pageable


_INSERT_OUTBOUND = insert(OutboundMessage)


def _insert_reply(ctx: _Context, message: RenderedMessage) -> None:
    """The reply that travels inside the TwiML answer, kept for the timeline and the loop
    guard."""
    ctx.connection.execute(
        _INSERT_OUTBOUND,
        {
            "patient_id": ctx.patient.id if ctx.patient else None,
            "to_e164": ctx.row.from_e164,
            "body": message.body,
            "kind": "reply",
            "template_id": message.template_id,
            "variant_id": message.variant_id,
            "backend": "twiml",
            "segments": message.segments.segments,
            "created_at": ctx.now,
        },
    )


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


def _keep_failed_row(
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
            exists = session.scalar(
                select(InboundMessage.id).where(InboundMessage.provider_sid == sms.provider_sid)
            )
            if exists is None:
                session.add(
                    InboundMessage(
                        provider_sid=sms.provider_sid,
                        from_e164=sms.from_number,
                        to_e164=sms.to_number,
                        body=sms.body,
                        num_media=sms.num_media,
                        received_at=now,
                        outcome=FAILED,
                        response_twiml=EMPTY_TWIML,
                    )
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
        exists = session.scalar(
            select(InboundMessage.id).where(InboundMessage.provider_sid == sms.provider_sid)
        )
        if exists is not None:
            return  # a concurrent delivery of the same message was kept or handled
        row_id = _insert_row(connection, sms, now, outcome=FAILED, response_twiml=EMPTY_TWIML)
        row = _Row(row_id, sms.provider_sid, sms.from_number, sms.body, sms.num_media)
        ctx = _Context(session, connection, library, settings, row, now)
        _protect(ctx)
        connection.execute(
            update(InboundMessage)
            .where(InboundMessage.id == row.id)
            .values(patient_id=row.patient_id, is_proxy=row.is_proxy)
        )


def _protect(ctx: _Context) -> None:
    """The part of the pipeline that needs no reply and must not wait for the recovery:
    the sender's STOP and a red flag's alert."""
    patient = _find_sender(ctx)
    if patient is None:
        return
    ctx.patient = patient
    ctx.row.patient_id = patient.id
    decision = _decide(ctx, patient)
    if decision.effect is Effect.OPT_OUT and not ctx.row.is_proxy:
        _suppress_number(ctx, decision)
        _apply_opt_out(ctx, patient)
        _raise_alerts(ctx, decision)
    elif decision.is_danger:
        _raise_alerts(ctx, decision)


@dataclass(frozen=True)
class Recovered:
    """A row kept as failed, handled now; `message` is the reply it owes, if any."""

    row_id: int
    to_e164: str
    patient_id: int | None
    is_proxy: bool
    received_at: dt.datetime
    message: RenderedMessage | None


_CLAIM_FAILED = (
    update(InboundMessage)
    .where(InboundMessage.id == bindparam("row_id"), InboundMessage.outcome == FAILED)
    .values(outcome=_RECOVERING)
    .returning(
        InboundMessage.provider_sid,
        InboundMessage.from_e164,
        InboundMessage.body,
        InboundMessage.num_media,
        InboundMessage.received_at,
    )
)


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
        claimed = connection.execute(_CLAIM_FAILED, {"row_id": row_id}).first()
        if claimed is None:
            return None
        row = _Row(row_id, claimed.provider_sid, claimed.from_e164, claimed.body, claimed.num_media)
        ctx = _Context(
            session, connection, library, settings, row, claimed.received_at, recovering=True
        )
        reply = _process(ctx)
        # The TwiML answer stays the empty one Twilio got; the reply goes out as a text.
        connection.execute(
            update(InboundMessage)
            .where(InboundMessage.id == row.id)
            .values(
                patient_id=row.patient_id,
                is_proxy=row.is_proxy,
                nudge_id=row.nudge_id,
                outcome=row.outcome or "recovered",
                needs_reading=row.needs_reading,
            )
        )
        return Recovered(
            row.id, row.from_e164, row.patient_id, row.is_proxy, claimed.received_at, reply
        )


def _raised_for_row(ctx: _Context, kind: AlertKind) -> bool:
    """True when this row already raised an alert of `kind` (only asked while recovering:
    the fallback that kept the row may have applied its STOP or red flag)."""
    if not ctx.recovering:
        return False
    found = ctx.connection.execute(
        select(Alert.id).where(Alert.inbound_message_id == ctx.row.id, Alert.kind == kind).limit(1)
    ).first()
    return found is not None


# --- the pipeline -------------------------------------------------------------------------


# --- the pipeline -------------------------------------------------------------------------


def _process(ctx: _Context) -> RenderedMessage | None:
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
    patient = _find_sender(ctx)
    if patient is not None:
        ctx.patient = patient
        row.patient_id = patient.id
    decision = _decide(ctx, patient)
    ctx.decision = decision
    row.outcome = decision.outcome
    row.needs_reading = decision.needs_reading
    if decision.prompt is not None:
        row.nudge_id = decision.prompt.nudge_id
    keep_reply = _apply_effect(ctx, patient, decision)
    _raise_alerts(ctx, decision)
    answered = None
    if decision.answer is not None and patient is not None:
        answered = _record_answer(ctx, patient, decision.answer)
    language = patient.language if patient is not None else "en"
    if decision.coach and patient is not None and answered is not None:
        assert decision.answer is not None  # coach implies an answer
        return _coach(ctx, patient, answered, decision.answer)
    template = decision.reply if keep_reply else None
    if template is None and _owes_stop_confirmation(ctx, decision):
        template, row.outcome = "stop_confirmation", "opt_out"
    if template is None:
        return None
    if decision.is_danger:
        return _safety_reply(ctx, template, language)
    return _reply(ctx, template, language)


def _safety_reply(ctx: _Context, template: str, language: str) -> RenderedMessage | None:
    """The fixed safety text, naming the emergency number (and for a crisis, the crisis line)
    of the sender's country."""
    numbers = ctx.settings.emergency_numbers_for(ctx.row.from_e164)
    if template == "crisis":
        template = crisis_template(numbers)
    return _reply(ctx, template, language, template_variables(numbers))


def _decide(ctx: _Context, patient: _Patient | None) -> Decision:
    prompts = tuple(
        OpenPrompt(n.id, n.track, TRACK_POLICIES[n.track].expectation) for n in ctx.open_nudges
    )
    return decide(ctx.row.body, _sender_context(ctx, patient), prompts, num_media=ctx.row.num_media)


def _sender_context(ctx: _Context, patient: _Patient | None) -> SenderContext:
    if patient is None:
        suppressed = consent.is_suppressed(ctx.session, ctx.row.from_e164)
        return SenderContext(SenderRole.UNKNOWN, number_suppressed=suppressed)
    status = PatientStatus(patient.status)
    role = SenderRole.CAREGIVER if ctx.row.is_proxy else SenderRole.PATIENT
    return SenderContext(
        role,
        status,
        paused_by_patient=patient.paused_by == consent.PAUSED_BY_PATIENT,
        number_suppressed=patient.number_suppressed,
    )


def _owes_stop_confirmation(ctx: _Context, decision: Decision) -> bool:
    """A STOP the fallback already applied (the row was kept when the database failed) still
    owes its one confirmation when the recovery re-runs it."""
    return decision.outcome == "opt_out_repeat" and _raised_for_row(ctx, AlertKind.OPT_OUT)


def _apply_effect(ctx: _Context, patient: _Patient | None, decision: Decision) -> bool:
    """Applies the consent or status change and writes it to the consent ledger; False when
    the reply it owes is void."""
    effect = decision.effect
    own = patient if patient is not None and not ctx.row.is_proxy else None
    applied = True
    if effect is Effect.OPT_OUT:
        _suppress_number(ctx, decision)
        if own is not None:
            _apply_opt_out(ctx, own)
    elif effect is Effect.CAREGIVER_REMOVED:
        _suppress_number(ctx, decision)
        _remove_caregiver(ctx)
    elif effect is Effect.OPT_IN and own is not None and _start_superseded(ctx, own):
        ctx.row.outcome = "opt_in_superseded"
        applied = False
    elif effect is Effect.OPT_IN:
        consent.lift(
            ctx.session,
            ctx.row.from_e164,
            source="keyword",
            text=ctx.row.body,
            now=ctx.now,
            patient_id=own.id if own is not None else None,
        )
        if own is not None:
            _opt_in(ctx, own)
    elif effect is Effect.PATIENT_PAUSE and own is not None:
        _update_patient(ctx, own, status=PatientStatus.PAUSED, paused_by=consent.PAUSED_BY_PATIENT)
        audit.record(
            ctx.session,
            actor="patient",
            action="consent.revocation_pause",
            patient_id=own.id,
            now=ctx.now,
        )
    _record_consent(ctx, own, decision, applied)
    return applied


# The ledger's name for what a consent message did; anything else consent-related that
# changed nothing (HELP, a repeated STOP, START while active) is a "keyword" event.
_LEDGER_EVENTS: dict[Effect, str] = {
    Effect.OPT_OUT: consent.OPT_OUT,
    Effect.CAREGIVER_REMOVED: consent.OPT_OUT,
    Effect.OPT_IN: consent.RESUME,
    Effect.PATIENT_PAUSE: consent.REVOCATION,
}
_CONSENT_CLASSES = frozenset(
    {MessageClass.OPT_OUT, MessageClass.OPT_IN, MessageClass.HELP, MessageClass.REVOCATION}
)


def _record_consent(ctx: _Context, own: _Patient | None, decision: Decision, applied: bool) -> None:
    if decision.message_class not in _CONSENT_CLASSES and decision.effect is None:
        return
    event = consent.KEYWORD
    if decision.effect is not None and applied:
        event = _LEDGER_EVENTS[decision.effect]
        if decision.outcome == "opt_in":
            event = consent.OPT_IN  # the first YES to the welcome
    consent.record_event(
        ctx.session,
        number=ctx.row.from_e164,
        patient_id=ctx.patient.id if ctx.patient is not None else None,
        event=event,
        text=ctx.row.body,
        now=ctx.now,
        source=decision.outcome,
        actor="caregiver" if ctx.row.is_proxy else ("patient" if own else "unknown"),
    )


def _suppress_number(ctx: _Context, decision: Decision) -> None:
    """The texting number's own consent ends, whichever records hold it."""
    consent.suppress(
        ctx.session,
        ctx.row.from_e164,
        source=decision.message_class.value,
        text=ctx.row.body,
        now=ctx.now,
        patient_id=ctx.patient.id if ctx.patient is not None else None,
    )


def _raise_alerts(ctx: _Context, decision: Decision) -> None:
    patient_id = ctx.patient.id if ctx.patient is not None else None
    for spec in decision.alerts:
        if _raised_for_row(ctx, spec.kind):
            continue  # raised by the fallback that kept this row
        raise_alert(
            ctx.session,
            patient_id=patient_id,
            kind=spec.kind,
            severity=spec.severity,
            detail=spec.detail,
            now=ctx.now,
            inbound_message_id=ctx.row.id,
        )
        if spec.severity in (AlertSeverity.URGENT, AlertSeverity.HIGH) and decision.is_danger:
            ctx.pageable = True


def _open_condition() -> Any:
    return and_(
        Nudge.patient_id == Patient.id,
        Nudge.state.in_(_OPEN_STATES),
        Nudge.sent_at <= bindparam("now"),
        or_(
            Nudge.reply_window_ends_at > bindparam("now"),
            and_(
                Nudge.reply_window_ends_at.is_(None),
                Nudge.sent_at > bindparam("window_start"),
            ),
        ),
    )


# The sender (by own phone or as caregiver), each candidate's open nudges, and the answer each
# nudge already has, in one round trip; most recent nudge first within a patient.
_SENDER = (
    select(
        Patient.id,
        Patient.phone_e164,
        Patient.status,
        Patient.language,
        Patient.first_name,
        Patient.timezone,
        Patient.caregiver_phone_e164,
        Patient.opted_in_at,
        Patient.paused_by,
        # Whether the texting number opted out, in the same round trip.
        exists()
        .where(SuppressedNumber.number_e164 == bindparam("number"))
        .label("number_suppressed"),
        Nudge.id.label("nudge_id"),
        Nudge.track,
        Nudge.occurrence_key,
        Nudge.sent_at,
        AdherenceRecord.id.label("record_id"),
    )
    .where(
        or_(
            Patient.phone_e164 == bindparam("number"),
            Patient.caregiver_phone_e164 == bindparam("number"),
        )
    )
    .outerjoin(Nudge, _open_condition())
    .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
    .order_by(Patient.id, Nudge.sent_at.desc(), Nudge.id.desc())
)


def _find_sender(ctx: _Context) -> _Patient | None:
    number = ctx.row.from_e164
    rows = ctx.connection.execute(
        _SENDER,
        {"number": number, "now": ctx.now, "window_start": ctx.now - _LONGEST_WINDOW},
    ).all()
    if not rows:
        return None
    patients: dict[int, _Patient] = {}
    nudges: dict[int, list[_Nudge]] = {}
    for r in rows:
        if r.id not in patients:
            patients[r.id] = _Patient(
                r.id,
                r.phone_e164,
                r.status,
                r.language,
                r.first_name,
                r.timezone,
                r.caregiver_phone_e164,
                r.opted_in_at,
                r.paused_by,
                bool(r.number_suppressed),
            )
            nudges[r.id] = []
        if r.nudge_id is not None:
            nudges[r.id].append(
                _Nudge(r.nudge_id, r.id, r.track, r.occurrence_key, r.sent_at, r.record_id)
            )
    own = next((p for p in patients.values() if p.phone_e164 == number), None)
    if own is not None:
        patient = own
    else:
        ctx.row.is_proxy = True
        # One caregiver for several patients: the answer is for whoever was texted last.
        candidates = sorted(patients.values(), key=lambda p: p.id)
        latest = max(
            (n for p in candidates for n in nudges[p.id][:1]),
            key=_recency,
            default=None,
        )
        patient = patients[latest.patient_id] if latest is not None else candidates[0]
    ctx.open_nudges = tuple(nudges[patient.id])
    return patient


def _recency(nudge: _Nudge) -> tuple[dt.datetime, int]:
    # Open nudges always have sent_at; the fallback only keeps the key total.
    return (nudge.sent_at or dt.datetime.min.replace(tzinfo=dt.UTC), nudge.id)


# The loop guard counts the coaching replies it may mute, not the safety and compliance
# replies that always go (a crisis reply must not use up the "we'll read this" that follows).
_RECENT_REPLIES = select(func.count(OutboundMessage.id)).where(
    OutboundMessage.to_e164 == bindparam("number"),
    OutboundMessage.kind == "reply",
    OutboundMessage.created_at > bindparam("since"),
    or_(
        OutboundMessage.template_id.is_(None),  # the muted marker row
        OutboundMessage.template_id.not_in(sorted(ALWAYS_SENT)),
    ),
)


def _recent_replies(ctx: _Context) -> int:
    if ctx.recent_replies is None:
        ctx.recent_replies = int(
            ctx.connection.execute(
                _RECENT_REPLIES,
                {"number": ctx.row.from_e164, "since": ctx.now - dt.timedelta(hours=1)},
            ).scalar_one()
            or 0
        )
    return ctx.recent_replies


def _may_reply(ctx: _Context, template_id: str) -> bool:
    """False once this number got too many bot replies this hour (an auto-responder on the
    other end would otherwise ping-pong with us forever); raises the alert once."""
    if template_id in ALWAYS_SENT:
        return True
    recent = _recent_replies(ctx)
    if recent < BOT_REPLIES_PER_HOUR:
        return True
    if recent == BOT_REPLIES_PER_HOUR:
        raise_alert(
            ctx.session,
            patient_id=ctx.patient.id if ctx.patient else None,
            kind=AlertKind.REPLY_LOOP,
            severity=AlertSeverity.NORMAL,
            detail="reply_cap_reached",
            now=ctx.now,
            inbound_message_id=ctx.row.id,
        )
        # Count the alert as a muted reply so it is raised once per hour, not per text.
        ctx.connection.execute(
            _INSERT_OUTBOUND,
            {
                "patient_id": ctx.patient.id if ctx.patient else None,
                "to_e164": ctx.row.from_e164,
                "body": "",
                "kind": "reply",
                "template_id": None,
                "variant_id": None,
                "backend": "muted",
                "segments": 0,
                "created_at": ctx.now,
            },
        )
        ctx.recent_replies = recent + 1
    ctx.row.outcome = f"{ctx.row.outcome or 'reply'}_muted"
    return False


def _render(
    ctx: _Context, template_id: str, language: str, variables: dict[str, object] | None = None
) -> RenderedMessage:
    values: dict[str, object] = {
        "clinic_name": ctx.settings.clinic_name,
        "clinic_phone": ctx.settings.clinic_phone,
    }
    if ctx.patient is not None:
        values["first_name"] = ctx.patient.first_name
    values.update(variables or {})
    return ctx.library.render(template_id, language, values, seed=ctx.row.provider_sid)


def _reply(
    ctx: _Context,
    template_id: str,
    language: str,
    variables: dict[str, object] | None = None,
) -> RenderedMessage | None:
    if not _may_reply(ctx, template_id):
        return None
    return _render(ctx, template_id, language, variables)


def _update_patient(ctx: _Context, patient: _Patient, **values: Any) -> None:
    for name, value in values.items():
        setattr(patient, name, value)
    ctx.connection.execute(
        update(Patient).where(Patient.id == patient.id).values(updated_at=ctx.now, **values)
    )


_REMOVE_CAREGIVER = (
    update(Patient)
    .where(Patient.caregiver_phone_e164 == bindparam("number"))
    .values(caregiver_phone_e164=None, updated_at=bindparam("now"))
    .returning(Patient.id)
)


def _remove_caregiver(ctx: _Context) -> None:
    """A caregiver's STOP or revocation ends texts to that number, for every patient it is
    caregiver of, not any patient's own programme."""
    removed = (
        ctx.connection.execute(_REMOVE_CAREGIVER, {"number": ctx.row.from_e164, "now": ctx.now})
        .scalars()
        .all()
    )
    if ctx.patient is not None:
        ctx.patient.caregiver_phone_e164 = None
    for patient_id in sorted(removed):
        audit.record(
            ctx.session,
            actor="caregiver",
            action="caregiver.opt_out",
            patient_id=patient_id,
            now=ctx.now,
        )


def _apply_opt_out(ctx: _Context, patient: _Patient) -> None:
    """The patient's STOP: opted out, unsent nudges skipped (the decision's alert tells the
    clinician)."""
    _update_patient(ctx, patient, status=PatientStatus.OPTED_OUT, opted_out_at=ctx.now)
    # Claimed but unsent nudges die here too; dispatch re-checks consent atomically.
    ctx.connection.execute(
        update(Nudge)
        .where(
            Nudge.patient_id == patient.id,
            Nudge.state.in_((NudgeState.PLANNED, NudgeState.CLAIMED)),
        )
        .values(state=NudgeState.SKIPPED, state_reason="opted_out", updated_at=ctx.now)
    )
    audit.record(
        ctx.session, actor="patient", action="consent.opt_out", patient_id=patient.id, now=ctx.now
    )


def _start_superseded(ctx: _Context, patient: _Patient) -> bool:
    """A START re-run by the recovery that is older than a STOP the patient sent after it:
    it must not undo that STOP."""
    if not ctx.recovering or patient.status == PatientStatus.ACTIVE:
        return False
    opted_out_at = ctx.connection.execute(
        select(Patient.opted_out_at).where(Patient.id == patient.id)
    ).scalar_one_or_none()
    return opted_out_at is not None and opted_out_at > ctx.now


def _opt_in(ctx: _Context, patient: _Patient) -> None:
    """Pending or stopped/paused -> active."""
    if patient.status == PatientStatus.DISCHARGED:
        return  # the number may restart; a discharged programme does not
    action = (
        "consent.opt_in" if patient.status == PatientStatus.PENDING_CONSENT else "consent.resume"
    )
    _update_patient(
        ctx,
        patient,
        status=PatientStatus.ACTIVE,
        opted_in_at=patient.opted_in_at or ctx.now,
        opted_out_at=None,
        paused_by=None,
    )
    audit.record(ctx.session, actor="patient", action=action, patient_id=patient.id, now=ctx.now)


def _open_nudge(ctx: _Context, track: str | None) -> _Nudge | None:
    """The most recent open nudge, of `track` if given (open_nudges is newest first)."""
    return next((n for n in ctx.open_nudges if track is None or n.track == track), None)


_ORIGINAL = (
    select(
        Nudge.id,
        Nudge.patient_id,
        Nudge.track,
        Nudge.occurrence_key,
        Nudge.sent_at,
        AdherenceRecord.id.label("record_id"),
    )
    .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
    .where(Nudge.patient_id == bindparam("patient_id"), Nudge.occurrence_key == bindparam("key"))
)


def _answered_nudge(ctx: _Context, nudge: _Nudge) -> _Nudge:
    """The nudge an answer counts for: a follow-up's answer belongs to its original."""
    if not coaching.is_followup_key(nudge.occurrence_key):
        return nudge
    found = ctx.connection.execute(
        _ORIGINAL,
        {"patient_id": nudge.patient_id, "key": coaching.original_key(nudge.occurrence_key)},
    ).first()
    if found is None:
        return nudge
    return _Nudge(
        found.id,
        found.patient_id,
        found.track,
        found.occurrence_key,
        found.sent_at,
        found.record_id,
    )


_INSERT_RECORD = insert(AdherenceRecord)
# A later answer to the same nudge sets the outcome ("skip", then "did it after all") but never
# erases a number: a later answer without one keeps the record's, and a later number moves the
# earlier one to reported_values first (below).
_UPDATE_RECORD = (
    update(AdherenceRecord)
    .where(AdherenceRecord.id == bindparam("record_id"))
    .values(
        outcome=bindparam("outcome"),
        value=func.coalesce(bindparam("value"), AdherenceRecord.value),
        unit=func.coalesce(bindparam("unit"), AdherenceRecord.unit),
        is_proxy=bindparam("is_proxy"),
        inbound_message_id=bindparam("inbound_message_id"),
        recorded_at=bindparam("recorded_at"),
    )
)
# The number a new one replaces, copied in the same round trip; nothing when it had none.
_KEEP_REPLACED_VALUE = insert(ReportedValue).from_select(
    [
        "patient_id",
        "nudge_id",
        "track",
        "value",
        "unit",
        "is_proxy",
        "inbound_message_id",
        "recorded_at",
    ],
    select(
        AdherenceRecord.patient_id,
        AdherenceRecord.nudge_id,
        AdherenceRecord.track,
        AdherenceRecord.value,
        AdherenceRecord.unit,
        AdherenceRecord.is_proxy,
        AdherenceRecord.inbound_message_id,
        AdherenceRecord.recorded_at,
    ).where(AdherenceRecord.id == bindparam("record_id"), AdherenceRecord.value.is_not(None)),
)


def _record_answer(ctx: _Context, patient: _Patient, answer: Answer) -> _Nudge | None:
    """Records the answer against the nudge it counts for (a follow-up's original) and
    returns that nudge. Every number is kept: the record holds the latest, reported_values
    the ones it replaced (a first answer, the common case, costs no extra statement)."""
    nudge = _open_nudge_by_id(ctx, answer.prompt.nudge_id)
    if nudge is None:
        return None
    nudge = _answered_nudge(ctx, nudge)
    ctx.row.nudge_id = nudge.id
    if ctx.require_decision().coach and answer.outcome is not AdherenceOutcome.SKIPPED:
        ctx.done_facts = _done_facts(ctx, patient, nudge)
    values = {
        "outcome": answer.outcome,
        "value": answer.value,
        "unit": answer.unit,
        "is_proxy": ctx.row.is_proxy,
        "inbound_message_id": ctx.row.id,
        "recorded_at": ctx.now,
    }
    if nudge.record_id is not None:
        if answer.value is not None:
            ctx.connection.execute(_KEEP_REPLACED_VALUE, {"record_id": nudge.record_id})
        ctx.connection.execute(_UPDATE_RECORD, {"record_id": nudge.record_id, **values})
    else:
        # Two answers to one nudge at once: the unique nudge_id makes the second one retry.
        ctx.connection.execute(
            _INSERT_RECORD,
            {"patient_id": patient.id, "nudge_id": nudge.id, "track": nudge.track, **values},
        )
    return nudge


def _open_nudge_by_id(ctx: _Context, nudge_id: int) -> _Nudge | None:
    return next((n for n in ctx.open_nudges if n.id == nudge_id), None)


@dataclass(frozen=True)
class _DoneFacts:
    recent_replies: int
    earlier_done: int  # DONE answers on the track before this one
    earlier_instants: list[dt.datetime]  # and when, over the streak window


def _done_facts_statement() -> Any:
    """Loop-guard count, DONE total and the streak window's DONE instants in one round trip.
    Read before this answer is written, and so without it; the caller adds it back."""
    done_before = and_(
        AdherenceRecord.patient_id == bindparam("patient_id"),
        AdherenceRecord.track == bindparam("track"),
        AdherenceRecord.outcome == AdherenceOutcome.DONE,
        or_(AdherenceRecord.nudge_id.is_(None), AdherenceRecord.nudge_id != bindparam("nudge_id")),
    )
    counts = select(
        _RECENT_REPLIES.scalar_subquery().label("recent"),
        select(func.count(AdherenceRecord.id)).where(done_before).scalar_subquery().label("done"),
    ).subquery()
    return select(counts.c.recent, counts.c.done, AdherenceRecord.recorded_at).select_from(
        counts.outerjoin(
            AdherenceRecord,
            and_(done_before, AdherenceRecord.recorded_at >= bindparam("streak_since")),
        )
    )


_DONE_FACTS = _done_facts_statement()


def _done_facts(ctx: _Context, patient: _Patient, nudge: _Nudge) -> _DoneFacts:
    rows = ctx.connection.execute(
        _DONE_FACTS,
        {
            "number": ctx.row.from_e164,
            "since": ctx.now - dt.timedelta(hours=1),
            "patient_id": patient.id,
            "track": nudge.track,
            "nudge_id": nudge.id,
            "streak_since": ctx.now - dt.timedelta(days=STREAK_DAYS),
        },
    ).all()
    return _DoneFacts(
        int(rows[0].recent or 0),
        int(rows[0].done or 0),
        [r.recorded_at for r in rows if r.recorded_at is not None],
    )


def _coach(
    ctx: _Context, patient: _Patient, nudge: _Nudge, answer: Answer
) -> RenderedMessage | None:
    """The acknowledgement of an answer from an active patient: a streak, sometimes a tip."""
    if answer.outcome is AdherenceOutcome.SKIPPED:
        return _reply(ctx, "ack.skip", patient.language)
    facts = ctx.done_facts
    assert facts is not None  # read by _record_answer before the answer was written
    ctx.recent_replies = facts.recent_replies
    if answer.typo_corrected:
        kind: coaching.AnswerKind = "typo_done"
    else:
        kind = "value" if answer.value is not None else "done"
    plan = coaching.plan_reply(
        kind,
        # This answer is a DONE recorded now: today counts, and it is one more on the track.
        streak=streak_from_instants([*facts.earlier_instants, ctx.now], patient.timezone, ctx.now),
        done_total=facts.earlier_done + 1 if kind != "typo_done" else 0,
    )
    if not _may_reply(ctx, plan.template_id):
        return None
    variables: dict[str, object] = {"streak": plan.streak} if plan.streak is not None else {}
    message = _render(ctx, plan.template_id, patient.language, variables)
    if plan.with_tip:
        message = _with_tip(ctx, patient, message, nudge.track)
    return message


_RECENT_TIPS = (
    select(OutboundMessage.variant_id)
    .where(
        OutboundMessage.patient_id == bindparam("patient_id"),
        OutboundMessage.kind == "reply",
        OutboundMessage.template_id.like("%+tip.%"),
    )
    .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
    .limit(10)
)


def _with_tip(
    ctx: _Context, patient: _Patient, ack: RenderedMessage, track: str
) -> RenderedMessage:
    """The acknowledgement plus a tip for the track, when both fit in one segment."""
    tip_id = f"tip.{track}"
    if not ctx.library.has_template(tip_id, ack.language):
        return ack
    recent = ctx.connection.execute(_RECENT_TIPS, {"patient_id": patient.id}).scalars().all()
    sent = [part for v in recent if v for part in v.split("+")[1:]]
    for variant_id in coaching.tip_order(
        ctx.library.variant_ids(tip_id, ack.language), ctx.row.provider_sid, sent
    ):
        tip = ctx.library.render_variant(tip_id, ack.language, variant_id, {})
        body = coaching.join_with_tip(ack.body, tip.body)
        if coaching.fits_one_segment(body):
            return replace(
                ack,
                template_id=f"{ack.template_id}+{tip_id}",
                variant_id=f"{ack.variant_id}+{variant_id}",
                body=body,
                segments=count_segments(body),
            )
    return ack
