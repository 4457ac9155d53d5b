"""An answer to a nudge: recorded against the nudge it counts for, and acknowledged with a
streak and sometimes a tip."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update

from coachbot.content import RenderedMessage
from coachbot.domain import coaching
from coachbot.domain.segments import count_segments
from coachbot.domain.states import (
    AdherenceOutcome,
)
from coachbot.domain.triage import (
    Answer,
)
from coachbot.models import (
    AdherenceRecord,
    Nudge,
    OutboundMessage,
    ReportedValue,
)
from coachbot.queries.adherence import streak_from_instants
from coachbot.services.inbound.context import Context, DoneFacts, OpenNudge, SenderRecord
from coachbot.services.inbound.replies import RECENT_REPLIES, may_reply, render, reply_with

STREAK_DAYS = 60  # a streak longer than this is reported as this


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


def _answered_nudge(ctx: Context, nudge: OpenNudge) -> OpenNudge:
    """The nudge an answer counts for: a follow-up's answer belongs to its original."""
    if not coaching.is_followup_key(nudge.occurrence_key):
        return nudge
    found = ctx.connection.execute(
        _ORIGINAL,
        {"patient_id": nudge.patient_id, "key": coaching.original_key(nudge.occurrence_key)},
    ).first()
    if found is None:
        return nudge
    return OpenNudge(
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


def record_answer(ctx: Context, patient: SenderRecord, answer: Answer) -> OpenNudge | None:
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


def _open_nudge_by_id(ctx: Context, nudge_id: int) -> OpenNudge | None:
    return next((n for n in ctx.open_nudges if n.id == nudge_id), None)


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
        RECENT_REPLIES.scalar_subquery().label("recent"),
        select(func.count(AdherenceRecord.id)).where(done_before).scalar_subquery().label("done"),
    ).subquery()
    return select(counts.c.recent, counts.c.done, AdherenceRecord.recorded_at).select_from(
        counts.outerjoin(
            AdherenceRecord,
            and_(done_before, AdherenceRecord.recorded_at >= bindparam("streak_since")),
        )
    )


_DONE_FACTS = _done_facts_statement()


def _done_facts(ctx: Context, patient: SenderRecord, nudge: OpenNudge) -> DoneFacts:
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
    return DoneFacts(
        int(rows[0].recent or 0),
        int(rows[0].done or 0),
        [r.recorded_at for r in rows if r.recorded_at is not None],
    )


def coach(
    ctx: Context, patient: SenderRecord, nudge: OpenNudge, answer: Answer
) -> RenderedMessage | None:
    """The acknowledgement of an answer from an active patient: a streak, sometimes a tip."""
    if answer.outcome is AdherenceOutcome.SKIPPED:
        return reply_with(ctx, "ack.skip", patient.language)
    facts = ctx.done_facts
    assert facts is not None  # read by record_answer before the answer was written
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
    if not may_reply(ctx, plan.template_id):
        return None
    variables: dict[str, object] = {"streak": plan.streak} if plan.streak is not None else {}
    message = render(ctx, plan.template_id, patient.language, variables)
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
    ctx: Context, patient: SenderRecord, ack: RenderedMessage, track: str
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
