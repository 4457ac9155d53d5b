"""The bot's replies to a text: rendering, the loop guard that mutes them, and the row that
keeps each one (the reply travels inside the TwiML answer)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import bindparam, func, or_, select

from coachbot.content import RenderedMessage
from coachbot.domain.emergency import crisis_template, template_variables
from coachbot.domain.states import (
    AlertKind,
    AlertSeverity,
)
from coachbot.domain.triage import (
    ALWAYS_SENT,
)
from coachbot.models import (
    OutboundMessage,
)
from coachbot.services.alerts import raise_alert
from coachbot.services.inbound.context import Context
from coachbot.store import outbound as outbound_store

log = logging.getLogger(__name__)

BOT_REPLIES_PER_HOUR = 3


def insert_reply(ctx: Context, message: RenderedMessage) -> None:
    """The reply that travels inside the TwiML answer, kept for the timeline and the loop
    guard."""
    _keep_reply(
        ctx,
        message.body,
        message.template_id,
        message.variant_id,
        "twiml",
        message.segments.segments,
    )


def _keep_reply(
    ctx: Context,
    body: str,
    template_id: str | None,
    variant_id: str | None,
    backend: str,
    segments: int,
) -> None:
    outbound_store.insert_many(
        ctx.connection,
        [
            outbound_store.Outbound(
                patient_id=ctx.patient.id if ctx.patient else None,
                to_e164=ctx.row.from_e164,
                body=body,
                kind="reply",
                template_id=template_id,
                variant_id=variant_id,
                backend=backend,
                segments=segments,
                created_at=ctx.now,
            )
        ],
    )


# The loop guard counts the coaching replies it may mute, not the safety and compliance
# replies that always go (a crisis reply must not use up the "we'll read this" that follows).
RECENT_REPLIES = select(func.count(OutboundMessage.id)).where(
    OutboundMessage.to_e164 == bindparam("number"),
    OutboundMessage.kind == "reply",
    OutboundMessage.created_at > bindparam("since"),
    or_(
        OutboundMessage.template_id.is_(None),  # the muted marker row
        OutboundMessage.template_id.not_in(sorted(ALWAYS_SENT)),
    ),
)


def _recent_replies(ctx: Context) -> int:
    if ctx.recent_replies is None:
        ctx.recent_replies = int(
            ctx.connection.execute(
                RECENT_REPLIES,
                {"number": ctx.row.from_e164, "since": ctx.now - dt.timedelta(hours=1)},
            ).scalar_one()
            or 0
        )
    return ctx.recent_replies


def may_reply(ctx: Context, template_id: str) -> bool:
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
        _keep_reply(ctx, "", None, None, "muted", 0)
        ctx.recent_replies = recent + 1
    ctx.row.outcome = f"{ctx.row.outcome or 'reply'}_muted"
    return False


def render(
    ctx: Context, template_id: str, language: str, variables: dict[str, object] | None = None
) -> RenderedMessage:
    values: dict[str, object] = {
        "clinic_name": ctx.settings.clinic_name,
        "clinic_phone": ctx.settings.clinic_phone,
    }
    if ctx.patient is not None:
        values["first_name"] = ctx.patient.first_name
    values.update(variables or {})
    return ctx.library.render(template_id, language, values, seed=ctx.row.provider_sid)


def reply_with(
    ctx: Context,
    template_id: str,
    language: str,
    variables: dict[str, object] | None = None,
) -> RenderedMessage | None:
    if not may_reply(ctx, template_id):
        return None
    return render(ctx, template_id, language, variables)


def safety_reply(ctx: Context, template: str, language: str) -> RenderedMessage | None:
    """The fixed safety text, naming the emergency number (and for a crisis, the crisis line)
    of the sender's country."""
    numbers = ctx.settings.emergency_numbers_for(ctx.row.from_e164)
    if template == "crisis":
        template = crisis_template(numbers)
    return reply_with(ctx, template, language, template_variables(numbers))
