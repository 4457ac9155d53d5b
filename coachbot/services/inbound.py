"""The inbound SMS pipeline, in order: idempotency, sender, compliance keywords, revocations,
red flags, reply parsing, adherence, coaching reply.

One transaction per message. A failure anywhere still answers Twilio with empty TwiML and
keeps the inbound row, so no reply is ever lost and Twilio never sees a 500.

Decisions
---------
* Opted out means silence: after the one STOP confirmation nothing goes back to that number,
  HELP included (Twilio blocks it anyway, error 21610, and answers HELP itself when Advanced
  Opt-Out is on). START, UNSTOP and YES are the only ways back. A red flag from an opted-out
  or not-yet-consented patient still raises the clinician's alert: an alert is not a message.
* A paused (revocation) or discharged patient's answers are recorded without a coaching reply;
  a red flag still gets the fixed safety reply, because the patient started that conversation.
* A revocation that also mentions a red flag pauses, raises both alerts, and answers with the
  safety text, which matters more than the pause notice.
* The caregiver is not texted on a red flag: the schema records no caregiver consent, the fixed
  safety wording is addressed to the patient, and an extra outbound send inside the webhook
  would add a network call to Twilio's request. A caregiver who reports a flag gets the reply.
* A reply to a follow-up counts for the nudge it follows up (see `coachbot.domain.coaching`).
* YES resumes only an opted-out patient (and confirms a pending one). A paused patient was
  paused by their clinician, by a plain-language revocation or by an invalid-number code:
  only START / UNSTOP or the clinician resume them, and their "yes" is an ordinary reply
  (so an open check-in's "yes", a symptom, escalates). In every status, a red flag on an
  open check-in is looked for before any opt-in handling.
* A caregiver's STOP removes that number as caregiver from every patient it is set on.
  A STOP from a number we do not know gets no answer (carriers handle STOP themselves), and
  once a number got its STOP confirmation, nothing but START is answered from it.

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
from dataclasses import dataclass, replace
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.messaging_response import MessagingResponse

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain import coaching
from coachbot.domain.emergency import template_variables
from coachbot.domain.keywords import ComplianceKeyword, classify_compliance, is_revocation
from coachbot.domain.phones import mask_phone
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.red_flags import RedFlag, Severity, severity
from coachbot.domain.replies import Expectation, ParsedReply, ReplyKind, parse_reply
from coachbot.domain.segments import count_segments
from coachbot.domain.states import (
    AdherenceOutcome,
    AlertKind,
    AlertSeverity,
    NudgeState,
    PatientStatus,
)
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Patient,
)
from coachbot.queries.adherence import streak_from_instants
from coachbot.services import audit
from coachbot.services.alerts import raise_alert
from coachbot.settings import Settings

log = logging.getLogger(__name__)

EMPTY_TWIML = str(MessagingResponse())
BOT_REPLIES_PER_HOUR = 3
MAX_MEDIA = 10  # Twilio's own limit per MMS
MAX_STORED_BODY = 5000  # Twilio caps bodies at 1,600; anything longer is not Twilio
STREAK_DAYS = 60  # a streak longer than this is reported as this
# Replies that must go out whatever the loop guard says: safety and compliance.
_ALWAYS_SENT = frozenset({"red_flag", "stop_confirmation", "start_confirmation", "optin_confirmed"})
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
) -> str:
    """Returns the TwiML answer for Twilio. Never raises."""
    try:
        sms = _storable(sms)
        for attempt in range(_ATTEMPTS):
            try:
                try:
                    return _handle_once(session_factory, library, settings, sms, now)
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
) -> str:
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
                "response_twiml": twiml,
            },
        )
        return twiml


_INSERT_OUTBOUND = insert(OutboundMessage)


def _insert_reply(ctx: _Context, message: RenderedMessage) -> None:
    """The reply that travels inside the TwiML answer, kept for the timeline and the loop
    guard (the same row `services.messaging.record_twiml_reply` writes)."""
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
    if classify_compliance(ctx.row.body) is ComplianceKeyword.OPT_OUT:
        if not ctx.row.is_proxy and patient.status != PatientStatus.OPTED_OUT:
            _apply_opt_out(ctx, patient)
        return
    understood = _understand(ctx, patient)
    if understood.is_red_flag:
        _raise_red_flag(ctx, patient, understood.flags)


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


@dataclass(frozen=True)
class _Understood:
    nudge: _Nudge | None
    parsed: ParsedReply
    flags: tuple[RedFlag, ...]

    @property
    def is_red_flag(self) -> bool:
        return bool(self.flags) or self.parsed.kind is ReplyKind.RED_FLAG


def _process(ctx: _Context) -> RenderedMessage | None:
    row = ctx.row
    keyword = classify_compliance(row.body)
    patient = _find_sender(ctx)
    if patient is None:
        return _unknown_sender(ctx, keyword)
    ctx.patient = patient
    row.patient_id = patient.id

    if keyword is ComplianceKeyword.OPT_OUT:
        return _opt_out(ctx, patient)
    understood: _Understood | None = None
    if not row.is_proxy and (
        keyword is ComplianceKeyword.OPT_IN
        or (
            # YES resumes an opted-out patient and confirms a pending one; from a paused
            # patient it is an ordinary reply (see the module's notes).
            keyword is ComplianceKeyword.YES
            and patient.status in (PatientStatus.OPTED_OUT, PatientStatus.PENDING_CONSENT)
        )
    ):
        # A red flag first: "yes" to an open check-in is a symptom, not a consent.
        understood = _understand(ctx, patient)
        if not understood.is_red_flag:
            resumed = _opt_in(ctx, patient, keyword)
            if resumed is not None or row.outcome is not None:
                return resumed
    if keyword is ComplianceKeyword.HELP:
        if patient.status == PatientStatus.OPTED_OUT:
            row.outcome = "help_opted_out"
            return None
        row.outcome = "help"
        return _reply(ctx, "help", patient.language)

    # A keyword is never a revocation (see keywords.is_revocation): skip the scan.
    revoked = (
        keyword is None and patient.status != PatientStatus.OPTED_OUT and is_revocation(row.body)
    )
    if understood is None:
        understood = _understand(ctx, patient)

    if patient.status == PatientStatus.OPTED_OUT:
        # Nothing of any kind goes to an opted-out number; the row is kept for the record.
        if understood.is_red_flag:
            _raise_red_flag(ctx, patient, understood.flags)
            row.outcome = "red_flag_opted_out"
        else:
            row.outcome = "ignored_opted_out"
        return None
    if revoked:
        paused = _revocation(ctx, patient)
        if understood.is_red_flag:
            return _red_flag(ctx, patient, understood.nudge, understood.flags)
        return paused
    if understood.is_red_flag:
        return _red_flag(ctx, patient, understood.nudge, understood.flags)
    if patient.status == PatientStatus.PENDING_CONSENT:
        row.outcome = "awaiting_consent"
        return None

    parsed, nudge = understood.parsed, understood.nudge
    if parsed.kind is ReplyKind.EMPTY:
        if row.num_media > 0:
            # A picture we cannot read: say so rather than leave the patient guessing.
            row.outcome = "media_only"
            return _coach_or_silent(ctx, patient, "not_understood")
        row.outcome = "empty"
        return None
    if nudge is None or parsed.kind is ReplyKind.FREE_TEXT:
        row.outcome = "free_text"
        return _coach_or_silent(ctx, patient, "ack.free_text")
    return _record_adherence(ctx, patient, nudge, parsed)


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


def _understand(ctx: _Context, patient: _Patient) -> _Understood:
    body = ctx.row.body
    nudge = _open_nudge(ctx, None)
    expectation = TRACK_POLICIES[nudge.track].expectation if nudge is not None else Expectation.NONE
    parsed = parse_reply(body, expectation)
    if parsed.named_track is not None and (nudge is None or nudge.track != parsed.named_track):
        named = _open_nudge(ctx, parsed.named_track)
        if named is not None:
            nudge = named
            parsed = parse_reply(body, TRACK_POLICIES[named.track].expectation)
    # parse_reply puts red flags first, so its flags are find_red_flags(body) whenever the
    # body has any; an EMPTY body has none.
    return _Understood(nudge, parsed, parsed.red_flags)


_RECENT_REPLIES = select(func.count(OutboundMessage.id)).where(
    OutboundMessage.to_e164 == bindparam("number"),
    OutboundMessage.kind == "reply",
    OutboundMessage.created_at > bindparam("since"),
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
    if template_id in _ALWAYS_SENT:
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
        # Bridge (branch content) until the lead's pipeline passes these itself.
        **template_variables(ctx.settings.emergency_numbers_for(ctx.row.from_e164)),
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


def _coach_or_silent(
    ctx: _Context, patient: _Patient, template_id: str, variables: dict[str, object] | None = None
) -> RenderedMessage | None:
    """Coaching goes to active patients only; a paused or discharged one is just recorded."""
    if patient.status != PatientStatus.ACTIVE:
        ctx.row.outcome = f"{ctx.row.outcome}_{patient.status}"
        return None
    return _reply(ctx, template_id, patient.language, variables)


def _update_patient(ctx: _Context, patient: _Patient, **values: Any) -> None:
    for name, value in values.items():
        setattr(patient, name, value)
    ctx.connection.execute(
        update(Patient).where(Patient.id == patient.id).values(updated_at=ctx.now, **values)
    )


_LAST_TEXT_TO = (
    select(OutboundMessage.template_id)
    .where(OutboundMessage.to_e164 == bindparam("number"))
    .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
    .limit(1)
)


def _unknown_sender(ctx: _Context, keyword: ComplianceKeyword | None) -> RenderedMessage | None:
    if keyword is ComplianceKeyword.OPT_OUT:
        # Carriers act on STOP themselves; a number we do not know gets no answer, and a
        # former caregiver's repeated STOP no second confirmation.
        ctx.row.outcome = "unknown_sender_opt_out"
        return None
    if keyword is not ComplianceKeyword.OPT_IN:
        last = ctx.connection.execute(_LAST_TEXT_TO, {"number": ctx.row.from_e164}).first()
        if last is not None and last.template_id == "stop_confirmation":
            # The number opted out (a caregiver's STOP): silence until it sends START.
            ctx.row.outcome = "unknown_sender_opted_out"
            return None
    ctx.row.outcome = "unknown_sender"
    return _reply(ctx, "unknown_sender", "en", {})


_REMOVE_CAREGIVER = (
    update(Patient)
    .where(Patient.caregiver_phone_e164 == bindparam("number"))
    .values(caregiver_phone_e164=None, updated_at=bindparam("now"))
    .returning(Patient.id)
)


def _caregiver_opt_out(ctx: _Context, patient: _Patient) -> RenderedMessage | None:
    """A caregiver's STOP ends texts to that number, for every patient it is caregiver of,
    not any patient's own programme."""
    removed = (
        ctx.connection.execute(_REMOVE_CAREGIVER, {"number": ctx.row.from_e164, "now": ctx.now})
        .scalars()
        .all()
    )
    patient.caregiver_phone_e164 = None
    for patient_id in sorted(removed):
        audit.record(
            ctx.session,
            actor="caregiver",
            action="caregiver.opt_out",
            patient_id=patient_id,
            now=ctx.now,
        )
    ctx.row.outcome = "caregiver_opt_out"
    return _reply(ctx, "stop_confirmation", patient.language)


def _opt_out(ctx: _Context, patient: _Patient) -> RenderedMessage | None:
    row = ctx.row
    if row.is_proxy:
        return _caregiver_opt_out(ctx, patient)
    if patient.status == PatientStatus.OPTED_OUT:
        if _raised_for_row(ctx, AlertKind.OPT_OUT):
            # This very STOP was applied by the fallback that kept the row: the one
            # confirmation is still owed.
            row.outcome = "opt_out"
            return _reply(ctx, "stop_confirmation", patient.language)
        row.outcome = "opt_out_repeat"  # exactly one confirmation, ever
        return None
    _apply_opt_out(ctx, patient)
    row.outcome = "opt_out"
    return _reply(ctx, "stop_confirmation", patient.language)


def _apply_opt_out(ctx: _Context, patient: _Patient) -> None:
    """The patient's STOP: opted out, unsent nudges skipped, the clinician told."""
    row = ctx.row
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
    raise_alert(
        ctx.session,
        patient_id=patient.id,
        kind=AlertKind.OPT_OUT,
        severity=AlertSeverity.NORMAL,
        detail="stop_keyword",
        now=ctx.now,
        inbound_message_id=row.id,
    )
    audit.record(
        ctx.session, actor="patient", action="consent.opt_out", patient_id=patient.id, now=ctx.now
    )


def _opt_in(ctx: _Context, patient: _Patient, keyword: ComplianceKeyword) -> RenderedMessage | None:
    if ctx.recovering and patient.status != PatientStatus.ACTIVE:
        # An old START must not undo a STOP the patient sent after it.
        opted_out_at = ctx.connection.execute(
            select(Patient.opted_out_at).where(Patient.id == patient.id)
        ).scalar_one_or_none()
        if opted_out_at is not None and opted_out_at > ctx.now:
            ctx.row.outcome = "opt_in_superseded"
            return None
    if patient.status == PatientStatus.PENDING_CONSENT:
        template, action = "optin_confirmed", "consent.opt_in"
    elif patient.status in (PatientStatus.OPTED_OUT, PatientStatus.PAUSED):
        template, action = "start_confirmation", "consent.resume"
    elif keyword is ComplianceKeyword.OPT_IN and patient.status == PatientStatus.ACTIVE:
        ctx.row.outcome = "opt_in_repeat"  # START while active: confirm, change nothing
        return _reply(ctx, "start_confirmation", patient.language)
    else:
        return None  # "yes" from an active patient is an ordinary answer to a nudge
    _update_patient(
        ctx,
        patient,
        status=PatientStatus.ACTIVE,
        opted_in_at=patient.opted_in_at or ctx.now,
        opted_out_at=None,
    )
    audit.record(ctx.session, actor="patient", action=action, patient_id=patient.id, now=ctx.now)
    ctx.row.outcome = action.split(".")[1]
    return _reply(ctx, template, patient.language)


def _revocation(ctx: _Context, patient: _Patient) -> RenderedMessage | None:
    _update_patient(ctx, patient, status=PatientStatus.PAUSED)
    raise_alert(
        ctx.session,
        patient_id=patient.id,
        kind=AlertKind.REVOCATION,
        severity=AlertSeverity.HIGH,
        detail="plain_language_revocation",
        now=ctx.now,
        inbound_message_id=ctx.row.id,
    )
    audit.record(
        ctx.session,
        actor="patient",
        action="consent.revocation_pause",
        patient_id=patient.id,
        now=ctx.now,
    )
    ctx.row.outcome = "revocation_paused"
    return _reply(ctx, "revocation_paused", patient.language)


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


def _raise_red_flag(ctx: _Context, patient: _Patient, flags: tuple[RedFlag, ...]) -> None:
    if _raised_for_row(ctx, AlertKind.RED_FLAG):
        return  # raised by the fallback that kept this row
    # An empty tuple is a check-in "yes" without saying which symptom: escalate it too.
    level = severity(flags) if flags else Severity.HIGH
    raise_alert(
        ctx.session,
        patient_id=patient.id,
        kind=AlertKind.RED_FLAG,
        severity=AlertSeverity.URGENT if level is Severity.URGENT else AlertSeverity.HIGH,
        detail=",".join(f.name.lower() for f in flags) or "unspecified_symptom",
        now=ctx.now,
        inbound_message_id=ctx.row.id,
    )


def _red_flag(
    ctx: _Context, patient: _Patient, nudge: _Nudge | None, flags: tuple[RedFlag, ...]
) -> RenderedMessage | None:
    _raise_red_flag(ctx, patient, flags)
    if nudge is not None:
        nudge = _answered_nudge(ctx, nudge)
        if nudge.track == "checkin":
            _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.DONE, None, None)
    ctx.row.nudge_id = nudge.id if nudge is not None else None
    ctx.row.outcome = "red_flag"
    # Fixed, clinician-reviewed wording; never a coaching reply after a red flag.
    return _reply(ctx, "red_flag", patient.language)


_INSERT_RECORD = insert(AdherenceRecord)
_UPDATE_RECORD = update(AdherenceRecord).where(AdherenceRecord.id == bindparam("record_id"))


def _upsert_adherence(
    ctx: _Context,
    patient: _Patient,
    nudge: _Nudge,
    outcome: AdherenceOutcome,
    value: float | None,
    unit: str | None,
) -> None:
    # The latest answer to a nudge wins: "skip" then "did it after all" ends as done, and an
    # answer to the follow-up replaces the "missed" its silence left.
    values = {
        "outcome": outcome,
        "value": value,
        "unit": unit,
        "is_proxy": ctx.row.is_proxy,
        "inbound_message_id": ctx.row.id,
        "recorded_at": ctx.now,
    }
    if nudge.record_id is not None:
        ctx.connection.execute(_UPDATE_RECORD, {"record_id": nudge.record_id, **values})
    else:
        # Two answers to one nudge at once: the unique nudge_id makes the second one retry.
        ctx.connection.execute(
            _INSERT_RECORD,
            {"patient_id": patient.id, "nudge_id": nudge.id, "track": nudge.track, **values},
        )


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


def _record_adherence(
    ctx: _Context, patient: _Patient, nudge: _Nudge, parsed: ParsedReply
) -> RenderedMessage | None:
    nudge = _answered_nudge(ctx, nudge)
    ctx.row.nudge_id = nudge.id
    if parsed.kind is ReplyKind.SKIP:
        _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.SKIPPED, None, None)
        ctx.row.outcome = "skipped"
        return _coach_or_silent(ctx, patient, "ack.skip")
    value = parsed.value if parsed.kind is ReplyKind.NUMBER else None
    ctx.row.outcome = "done" if value is None else "value"
    if patient.status != PatientStatus.ACTIVE:
        _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.DONE, value, parsed.unit)
        return _coach_or_silent(ctx, patient, "ack.done")
    facts = _done_facts(ctx, patient, nudge)
    _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.DONE, value, parsed.unit)
    ctx.recent_replies = facts.recent_replies
    if parsed.typo_corrected:
        kind: coaching.AnswerKind = "typo_done"
    else:
        kind = "value" if value is not None else "done"
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
