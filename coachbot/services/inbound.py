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
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.messaging_response import MessagingResponse

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain import coaching
from coachbot.domain.keywords import ComplianceKeyword, classify_compliance, is_revocation
from coachbot.domain.phones import mask_phone
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.red_flags import RedFlag, Severity, find_red_flags, severity
from coachbot.domain.replies import Expectation, ParsedReply, ReplyKind, parse_reply
from coachbot.domain.segments import count_segments
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
MAX_MEDIA = 10  # Twilio's own limit per MMS
MAX_STORED_BODY = 5000  # Twilio caps bodies at 1,600; anything longer is not Twilio
# Replies that must go out whatever the loop guard says: safety and compliance.
_ALWAYS_SENT = frozenset({"red_flag", "stop_confirmation", "start_confirmation", "optin_confirmed"})
_OPEN_STATES = (NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)
# An ambiguous nudge may have reached the phone but has no window yet: the longest one bounds it.
_LONGEST_WINDOW = max(p.reply_window for p in TRACK_POLICIES.values())
_ATTEMPTS = 2


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
    sms = _storable(sms)
    for _attempt in range(_ATTEMPTS):
        try:
            return _handle_once(session_factory, library, settings, sms, now)
        except IntegrityError:
            answer = _answer_of_duplicate(session_factory, sms)
            if answer is not None:
                return answer
            # Another unique key lost a race (two answers to one nudge at the same instant):
            # the other transaction has committed now, so a second run sees its rows.
            log.info("inbound %s raced on a unique key; running it again", sms.provider_sid)
        except Exception:
            log.exception(
                "inbound %s from %s failed", sms.provider_sid, mask_phone(sms.from_number)
            )
            _keep_failed_row(session_factory, sms, now)
            return EMPTY_TWIML
    log.error("inbound %s still conflicting; kept unprocessed", sms.provider_sid)
    _keep_failed_row(session_factory, sms, now)
    return EMPTY_TWIML


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


def _handle_once(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    sms: InboundSms,
    now: dt.datetime,
) -> str:
    with session_factory() as session, session.begin():
        existing = session.scalar(
            select(InboundMessage).where(InboundMessage.provider_sid == sms.provider_sid)
        )
        if existing is not None:
            return existing.response_twiml or EMPTY_TWIML
        row = _new_row(sms, now)
        session.add(row)
        # On PostgreSQL a concurrent duplicate waits here for the first one to commit,
        # then fails the unique key and takes the IntegrityError branch.
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


def _new_row(sms: InboundSms, now: dt.datetime) -> InboundMessage:
    return InboundMessage(
        provider_sid=sms.provider_sid,
        from_e164=sms.from_number,
        to_e164=sms.to_number,
        body=sms.body,
        num_media=sms.num_media,
        received_at=now,
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


@dataclass(frozen=True)
class _Understood:
    nudge: Nudge | None
    parsed: ParsedReply
    flags: tuple[RedFlag, ...]

    @property
    def is_red_flag(self) -> bool:
        return bool(self.flags) or self.parsed.kind is ReplyKind.RED_FLAG


def _process(ctx: _Context) -> RenderedMessage | None:
    row = ctx.row
    patient = _find_sender(ctx)
    if patient is None:
        row.outcome = "unknown_sender"
        return _reply(ctx, "unknown_sender", "en", {})
    ctx.patient = patient
    row.patient_id = patient.id

    keyword = classify_compliance(row.body)
    if keyword is ComplianceKeyword.OPT_OUT:
        return _opt_out(ctx, patient)
    if not row.is_proxy and (
        keyword is ComplianceKeyword.OPT_IN
        or (keyword is ComplianceKeyword.YES and patient.status != PatientStatus.ACTIVE)
    ):
        resumed = _opt_in(ctx, patient, keyword)
        if resumed is not None or row.outcome is not None:
            return resumed
    if keyword is ComplianceKeyword.HELP:
        if patient.status == PatientStatus.OPTED_OUT:
            row.outcome = "help_opted_out"
            return None
        row.outcome = "help"
        return _reply(ctx, "help", patient.language)

    revoked = patient.status != PatientStatus.OPTED_OUT and is_revocation(row.body)
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


def _find_sender(ctx: _Context) -> Patient | None:
    session, number = ctx.session, ctx.row.from_e164
    patient = session.scalar(select(Patient).where(Patient.phone_e164 == number))
    if patient is not None:
        return patient
    candidates = session.scalars(
        select(Patient).where(Patient.caregiver_phone_e164 == number).order_by(Patient.id)
    ).all()
    if not candidates:
        return None
    ctx.row.is_proxy = True
    if len(candidates) == 1:
        return candidates[0]
    # One caregiver for several patients: the answer is for whoever was texted last.
    latest = session.scalar(
        select(Nudge.patient_id)
        .where(
            Nudge.patient_id.in_([p.id for p in candidates]),
            _is_open(ctx.now),
        )
        .order_by(Nudge.sent_at.desc(), Nudge.id.desc())
        .limit(1)
    )
    return next((p for p in candidates if p.id == latest), candidates[0])


def _understand(ctx: _Context, patient: Patient) -> _Understood:
    body = ctx.row.body
    flags = find_red_flags(body)
    nudge = _open_nudge(ctx, patient, None)
    expectation = TRACK_POLICIES[nudge.track].expectation if nudge is not None else Expectation.NONE
    parsed = parse_reply(body, expectation)
    if parsed.named_track is not None and (nudge is None or nudge.track != parsed.named_track):
        named = _open_nudge(ctx, patient, parsed.named_track)
        if named is not None:
            nudge = named
            parsed = parse_reply(body, TRACK_POLICIES[named.track].expectation)
    return _Understood(nudge, parsed, tuple(flags or parsed.red_flags))


def _may_reply(ctx: _Context, template_id: str) -> bool:
    """False once this number got too many bot replies this hour (an auto-responder on the
    other end would otherwise ping-pong with us forever); raises the alert once."""
    if template_id in _ALWAYS_SENT:
        return True
    recent = (
        ctx.session.scalar(
            select(func.count(OutboundMessage.id)).where(
                OutboundMessage.to_e164 == ctx.row.from_e164,
                OutboundMessage.kind == "reply",
                OutboundMessage.created_at > ctx.now - dt.timedelta(hours=1),
            )
        )
        or 0
    )
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


def _coach_or_silent(
    ctx: _Context, patient: Patient, template_id: str, variables: dict[str, object] | None = None
) -> RenderedMessage | None:
    """Coaching goes to active patients only; a paused or discharged one is just recorded."""
    if patient.status != PatientStatus.ACTIVE:
        ctx.row.outcome = f"{ctx.row.outcome}_{patient.status}"
        return None
    return _reply(ctx, template_id, patient.language, variables)


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


def _opt_in(ctx: _Context, patient: Patient, keyword: ComplianceKeyword) -> RenderedMessage | None:
    if patient.status == PatientStatus.PENDING_CONSENT:
        template, action = "optin_confirmed", "consent.opt_in"
    elif patient.status in (PatientStatus.OPTED_OUT, PatientStatus.PAUSED):
        template, action = "start_confirmation", "consent.resume"
    elif keyword is ComplianceKeyword.OPT_IN and patient.status == PatientStatus.ACTIVE:
        ctx.row.outcome = "opt_in_repeat"  # START while active: confirm, change nothing
        return _reply(ctx, "start_confirmation", patient.language)
    else:
        return None  # "yes" from an active patient is an ordinary answer to a nudge
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


def _is_open(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        Nudge.state.in_(_OPEN_STATES),
        Nudge.sent_at <= now,
        or_(
            Nudge.reply_window_ends_at > now,
            and_(Nudge.reply_window_ends_at.is_(None), Nudge.sent_at > now - _LONGEST_WINDOW),
        ),
    )


def _open_nudge(ctx: _Context, patient: Patient, track: str | None) -> Nudge | None:
    query = (
        select(Nudge)
        .where(Nudge.patient_id == patient.id, _is_open(ctx.now))
        .order_by(Nudge.sent_at.desc(), Nudge.id.desc())
        .limit(1)
    )
    if track is not None:
        query = query.where(Nudge.track == track)
    return ctx.session.scalar(query)


def _answered_nudge(ctx: _Context, nudge: Nudge) -> Nudge:
    """The nudge an answer counts for: a follow-up's answer belongs to its original."""
    if not coaching.is_followup_key(nudge.occurrence_key):
        return nudge
    original = ctx.session.scalar(
        select(Nudge).where(
            Nudge.patient_id == nudge.patient_id,
            Nudge.occurrence_key == coaching.original_key(nudge.occurrence_key),
        )
    )
    return original or nudge


def _raise_red_flag(ctx: _Context, patient: Patient, flags: tuple[RedFlag, ...]) -> None:
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
    ctx: _Context, patient: Patient, nudge: Nudge | None, flags: tuple[RedFlag, ...]
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
    # The latest answer to a nudge wins: "skip" then "did it after all" ends as done, and an
    # answer to the follow-up replaces the "missed" its silence left.
    record.outcome = outcome
    record.value = value
    record.unit = unit
    record.is_proxy = ctx.row.is_proxy
    record.inbound_message_id = ctx.row.id
    record.recorded_at = ctx.now


def _record_adherence(
    ctx: _Context, patient: Patient, nudge: Nudge, parsed: ParsedReply
) -> RenderedMessage | None:
    nudge = _answered_nudge(ctx, nudge)
    ctx.row.nudge_id = nudge.id
    if parsed.kind is ReplyKind.SKIP:
        _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.SKIPPED, None, None)
        ctx.row.outcome = "skipped"
        return _coach_or_silent(ctx, patient, "ack.skip")
    value = parsed.value if parsed.kind is ReplyKind.NUMBER else None
    _upsert_adherence(ctx, patient, nudge, AdherenceOutcome.DONE, value, parsed.unit)
    ctx.session.flush()
    ctx.row.outcome = "done" if value is None else "value"
    if patient.status != PatientStatus.ACTIVE:
        return _coach_or_silent(ctx, patient, "ack.done")
    if parsed.typo_corrected:
        kind: coaching.AnswerKind = "typo_done"
    else:
        kind = "value" if value is not None else "done"
    plan = coaching.plan_reply(
        kind,
        streak=current_streak(ctx.session, patient=patient, track=nudge.track, now=ctx.now),
        done_total=_done_total(ctx, patient, nudge.track) if kind != "typo_done" else 0,
    )
    if not _may_reply(ctx, plan.template_id):
        return None
    variables: dict[str, object] = {"streak": plan.streak} if plan.streak is not None else {}
    message = _render(ctx, plan.template_id, patient.language, variables)
    if plan.with_tip:
        message = _with_tip(ctx, patient, message, nudge.track)
    return message


def _done_total(ctx: _Context, patient: Patient, track: str) -> int:
    return int(
        ctx.session.scalar(
            select(func.count(AdherenceRecord.id)).where(
                AdherenceRecord.patient_id == patient.id,
                AdherenceRecord.track == track,
                AdherenceRecord.outcome == AdherenceOutcome.DONE,
            )
        )
        or 0
    )


def _with_tip(ctx: _Context, patient: Patient, ack: RenderedMessage, track: str) -> RenderedMessage:
    """The acknowledgement plus a tip for the track, when both fit in one segment."""
    tip_id = f"tip.{track}"
    if not ctx.library.has_template(tip_id, ack.language):
        return ack
    recent = ctx.session.scalars(
        select(OutboundMessage.variant_id)
        .where(
            OutboundMessage.patient_id == patient.id,
            OutboundMessage.kind == "reply",
            OutboundMessage.template_id.like("%+tip.%"),
        )
        .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
        .limit(10)
    ).all()
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
