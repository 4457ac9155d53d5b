"""The inbound SMS pipeline, in order: idempotency, sender, compliance keywords, revocations,
red flags, reply parsing, adherence, coaching reply.

One transaction per message. A failure anywhere still answers Twilio with empty TwiML and
keeps the inbound row, so no reply is ever lost and Twilio never sees a 500.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.messaging_response import MessagingResponse

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain.keywords import ComplianceKeyword, classify_compliance, is_revocation
from coachbot.domain.phones import mask_phone
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.red_flags import RedFlag, Severity, find_red_flags, severity
from coachbot.domain.replies import Expectation, ParsedReply, ReplyKind, parse_reply
from coachbot.domain.states import (
    AdherenceOutcome,
    AlertKind,
    AlertSeverity,
    NudgeState,
    PatientStatus,
)
from coachbot.models import AdherenceRecord, InboundMessage, Nudge, OutboundMessage, Patient
from coachbot.queries.adherence import current_streak
from coachbot.services import audit
from coachbot.services.alerts import raise_alert
from coachbot.services.messaging import record_twiml_reply
from coachbot.settings import Settings

log = logging.getLogger(__name__)

EMPTY_TWIML = str(MessagingResponse())
BOT_REPLIES_PER_HOUR = 3
# Replies that must go out whatever the loop guard says: safety and compliance.
_ALWAYS_SENT = frozenset({"red_flag", "stop_confirmation", "start_confirmation", "optin_confirmed"})


@dataclass(frozen=True)
class InboundSms:
    provider_sid: str
    from_number: str
    to_number: str
    body: str
    num_media: int = 0


@dataclass
class _Context:
    session: Session
    library: MessageLibrary
    settings: Settings
    row: InboundMessage
    now: dt.datetime
    patient: Patient | None = None


def handle_inbound(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    sms: InboundSms,
    now: dt.datetime,
) -> str:
    """Returns the TwiML answer for Twilio. Never raises."""
    try:
        with session_factory() as session, session.begin():
            existing = session.scalar(
                select(InboundMessage).where(InboundMessage.provider_sid == sms.provider_sid)
            )
            if existing is not None:
                return existing.response_twiml or EMPTY_TWIML
            row = _new_row(sms, now)
            session.add(row)
            # On PostgreSQL a concurrent duplicate waits here for the first one to commit,
            # then fails the unique key and takes the branch below.
            session.flush()
            ctx = _Context(session, library, settings, row, now)
            reply = _process(ctx)
            twiml = EMPTY_TWIML
            if reply is not None:
                response = MessagingResponse()
                response.message(reply.body)
                twiml = str(response)
                record_twiml_reply(
                    session,
                    patient_id=ctx.patient.id if ctx.patient else None,
                    to_e164=sms.from_number,
                    message=reply,
                    now=now,
                )
            row.response_twiml = twiml
            return twiml
    except IntegrityError:
        return _answer_of_duplicate(session_factory, sms)
    except Exception:
        log.exception("inbound %s from %s failed", sms.provider_sid, mask_phone(sms.from_number))
        _keep_failed_row(session_factory, sms, now)
        return EMPTY_TWIML


def _new_row(sms: InboundSms, now: dt.datetime) -> InboundMessage:
    return InboundMessage(
        provider_sid=sms.provider_sid,
        from_e164=sms.from_number[:32],
        to_e164=sms.to_number[:32],
        body=sms.body,
        num_media=sms.num_media,
        received_at=now,
    )


def _answer_of_duplicate(session_factory: sessionmaker[Session], sms: InboundSms) -> str:
    with session_factory() as session:
        existing = session.scalar(
            select(InboundMessage.response_twiml).where(
                InboundMessage.provider_sid == sms.provider_sid
            )
        )
        return existing or EMPTY_TWIML


def _keep_failed_row(
    session_factory: sessionmaker[Session], sms: InboundSms, now: dt.datetime
) -> None:
    try:
        with session_factory() as session, session.begin():
            exists = session.scalar(
                select(InboundMessage.id).where(InboundMessage.provider_sid == sms.provider_sid)
            )
            if exists is None:
                row = _new_row(sms, now)
                row.outcome = "error"
                row.response_twiml = EMPTY_TWIML
                session.add(row)
    except Exception:
        # The database itself is failing; Twilio will retry and operators see the log.
        log.exception("could not keep inbound %s", sms.provider_sid)


# --- the pipeline -------------------------------------------------------------------------


def _process(ctx: _Context) -> RenderedMessage | None:
    row, session = ctx.row, ctx.session
    patient = session.scalar(select(Patient).where(Patient.phone_e164 == row.from_e164))
    if patient is None:
        patient = session.scalar(
            select(Patient).where(Patient.caregiver_phone_e164 == row.from_e164)
        )
        row.is_proxy = patient is not None
    if patient is None:
        row.outcome = "unknown_sender"
        return _reply(ctx, "unknown_sender", "en", {})
    ctx.patient = patient
    row.patient_id = patient.id

    keyword = classify_compliance(row.body)
    if keyword is ComplianceKeyword.OPT_OUT:
        return _opt_out(ctx, patient)
    if keyword is ComplianceKeyword.HELP:
        row.outcome = "help"
        return _reply(ctx, "help", patient.language)
    if not row.is_proxy and (
        keyword is ComplianceKeyword.OPT_IN
        or (keyword is ComplianceKeyword.YES and patient.status != PatientStatus.ACTIVE)
    ):
        resumed = _opt_in(ctx, patient)
        if resumed is not None:
            return resumed

    if patient.status == PatientStatus.OPTED_OUT:
        # Nothing of any kind goes to an opted-out number; the row is kept for the record.
        row.outcome = "ignored_opted_out"
        return None
    if patient.status == PatientStatus.PENDING_CONSENT:
        row.outcome = "awaiting_consent"
        return None

    if is_revocation(row.body):
        return _revocation(ctx, patient)

    flags = find_red_flags(row.body)
    nudge = _open_nudge(ctx, patient, None)
    expectation = TRACK_POLICIES[nudge.track].expectation if nudge is not None else Expectation.NONE
    parsed = parse_reply(row.body, expectation)
    if parsed.named_track is not None and (nudge is None or nudge.track != parsed.named_track):
        named = _open_nudge(ctx, patient, parsed.named_track)
        if named is not None:
            nudge = named
            parsed = parse_reply(row.body, TRACK_POLICIES[named.track].expectation)
    flags = flags or parsed.red_flags
    if flags or parsed.kind is ReplyKind.RED_FLAG:
        return _red_flag(ctx, patient, nudge, tuple(flags))

    if parsed.kind is ReplyKind.EMPTY:
        row.outcome = "empty"
        return None
    if nudge is None or parsed.kind is ReplyKind.FREE_TEXT:
        row.outcome = "free_text"
        return _reply(ctx, "ack.free_text", patient.language)
    return _record_adherence(ctx, patient, nudge, parsed)


def _reply(
    ctx: _Context,
    template_id: str,
    language: str,
    variables: dict[str, object] | None = None,
) -> RenderedMessage | None:
    """Renders a reply unless this number already got too many bot replies this hour
    (an auto-responder on the other end would otherwise ping-pong with us forever)."""
    if template_id not in _ALWAYS_SENT:
        recent = ctx.session.scalar(
            select(func.count(OutboundMessage.id)).where(
                OutboundMessage.to_e164 == ctx.row.from_e164,
                OutboundMessage.kind == "reply",
                OutboundMessage.created_at > ctx.now - dt.timedelta(hours=1),
            )
        )
        if (recent or 0) >= BOT_REPLIES_PER_HOUR:
            if (recent or 0) == BOT_REPLIES_PER_HOUR:
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
                ctx.session.add(
                    OutboundMessage(
                        patient_id=ctx.patient.id if ctx.patient else None,
                        to_e164=ctx.row.from_e164,
                        body="",
                        kind="reply",
                        backend="muted",
                        segments=0,
                        created_at=ctx.now,
                    )
                )
            ctx.row.outcome = f"{ctx.row.outcome or 'reply'}_muted"
            return None
    values: dict[str, object] = {
        "clinic_name": ctx.settings.clinic_name,
        "clinic_phone": ctx.settings.clinic_phone,
    }
    if ctx.patient is not None:
        values["first_name"] = ctx.patient.first_name
    values.update(variables or {})
    return ctx.library.render(template_id, language, values, seed=f"{ctx.row.provider_sid}")


def _opt_out(ctx: _Context, patient: Patient) -> RenderedMessage | None:
    row = ctx.row
    if row.is_proxy:
        # A caregiver's STOP ends texts to the caregiver, not the patient's own program.
        patient.caregiver_phone_e164 = None
        row.outcome = "caregiver_opt_out"
        audit.record(
            ctx.session,
            actor="caregiver",
            action="caregiver.opt_out",
            patient_id=patient.id,
            now=ctx.now,
        )
        return _reply(ctx, "stop_confirmation", patient.language)
    if patient.status == PatientStatus.OPTED_OUT:
        row.outcome = "opt_out_repeat"  # exactly one confirmation, ever
        return None
    patient.status = PatientStatus.OPTED_OUT
    patient.opted_out_at = ctx.now
    patient.updated_at = ctx.now
    # Claimed but unsent nudges die here too; dispatch re-checks consent atomically.
    ctx.session.execute(
        update(Nudge)
        .where(
            Nudge.patient_id == patient.id,
            Nudge.state.in_((NudgeState.PLANNED, NudgeState.CLAIMED)),
        )
        .values(state=NudgeState.SKIPPED, state_reason="opted_out", updated_at=ctx.now)
        .execution_options(synchronize_session=False)
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
    row.outcome = "opt_out"
    return _reply(ctx, "stop_confirmation", patient.language)


def _opt_in(ctx: _Context, patient: Patient) -> RenderedMessage | None:
    if patient.status == PatientStatus.PENDING_CONSENT:
        template, action = "optin_confirmed", "consent.opt_in"
    elif patient.status in (PatientStatus.OPTED_OUT, PatientStatus.PAUSED):
        template, action = "start_confirmation", "consent.resume"
    else:
        return None  # already active: "yes" is an ordinary answer to a nudge
    patient.status = PatientStatus.ACTIVE
    patient.opted_in_at = patient.opted_in_at or ctx.now
    patient.opted_out_at = None
    patient.updated_at = ctx.now
    audit.record(ctx.session, actor="patient", action=action, patient_id=patient.id, now=ctx.now)
    ctx.row.outcome = action.split(".")[1]
    return _reply(ctx, template, patient.language)


def _revocation(ctx: _Context, patient: Patient) -> RenderedMessage | None:
    patient.status = PatientStatus.PAUSED
    patient.updated_at = ctx.now
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


def _open_nudge(ctx: _Context, patient: Patient, track: str | None) -> Nudge | None:
    query = (
        select(Nudge)
        .where(
            Nudge.patient_id == patient.id,
            Nudge.state.in_((NudgeState.SENT, NudgeState.DELIVERED)),
            Nudge.sent_at <= ctx.now,
            or_(Nudge.reply_window_ends_at.is_(None), Nudge.reply_window_ends_at > ctx.now),
        )
        .order_by(Nudge.sent_at.desc(), Nudge.id.desc())
        .limit(1)
    )
    if track is not None:
        query = query.where(Nudge.track == track)
    return ctx.session.scalar(query)


def _red_flag(
    ctx: _Context, patient: Patient, nudge: Nudge | None, flags: tuple[RedFlag, ...]
) -> RenderedMessage | None:
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
    if nudge is not None and nudge.track == "checkin":
        _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.DONE, None, None)
    ctx.row.nudge_id = nudge.id if nudge is not None else None
    ctx.row.outcome = "red_flag"
    # Fixed, clinician-reviewed wording; never a coaching reply after a red flag.
    return _reply(ctx, "red_flag", patient.language)


def _upsert_adherence(
    ctx: _Context,
    patient: Patient,
    nudge: Nudge,
    outcome: AdherenceOutcome,
    value: float | None,
    unit: str | None,
) -> None:
    record = ctx.session.scalar(select(AdherenceRecord).where(AdherenceRecord.nudge_id == nudge.id))
    if record is None:
        record = AdherenceRecord(patient_id=patient.id, nudge_id=nudge.id, track=nudge.track)
        ctx.session.add(record)
    # The latest answer to a nudge wins: "skip" then "did it after all" ends as done.
    record.outcome = outcome
    record.value = value
    record.unit = unit
    record.is_proxy = ctx.row.is_proxy
    record.inbound_message_id = ctx.row.id
    record.recorded_at = ctx.now


def _record_adherence(
    ctx: _Context, patient: Patient, nudge: Nudge, parsed: ParsedReply
) -> RenderedMessage | None:
    ctx.row.nudge_id = nudge.id
    if parsed.kind is ReplyKind.SKIP:
        _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.SKIPPED, None, None)
        ctx.row.outcome = "skipped"
        return _reply(ctx, "ack.skip", patient.language)
    value = parsed.value if parsed.kind is ReplyKind.NUMBER else None
    _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.DONE, value, parsed.unit)
    ctx.session.flush()
    ctx.row.outcome = "done" if value is None else "value"
    if parsed.typo_corrected:
        return _reply(ctx, "ack.typo_done", patient.language)
    streak = current_streak(ctx.session, patient=patient, track=nudge.track, now=ctx.now)
    if streak >= 2:
        return _reply(ctx, "streak", patient.language, {"streak": streak})
    return _reply(ctx, "ack.value" if value is not None else "ack.done", patient.language)
