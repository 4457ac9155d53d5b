"""Delivery health for operators: counts and codes only, never a patient's words or number.

Every series is bucketed in SQL (hours over the last 24 hours, days over the last 30), so
the page costs a handful of grouped queries whatever the traffic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from coachbot.domain.states import NudgeState
from coachbot.models import DISPATCH_CLOCK, ClockHeartbeat, Nudge, OutboundMessage, Patient

SPANS: dict[str, tuple[dt.timedelta, int]] = {
    "24h": (dt.timedelta(hours=1), 24),
    "30d": (dt.timedelta(days=1), 30),
}
DELIVERED = ("delivered", "read")
PROVIDER_FAILED = ("failed", "undelivered")
# Backends whose provider reports each text's fate (Twilio's status callbacks). The console
# backend prints texts and TwiML replies get no callback: their delivery is not tracked.
TRACKED_BACKENDS = ("twilio",)
# The reply-loop guard's marker row (services/inbound/replies.py: backend "muted", no body)
# records a reply it did not send; a text refused before it left (the API said no, or the
# suppression list) has no provider id. Neither was sent.
MUTED_BACKEND = "muted"
SENT = and_(
    OutboundMessage.backend != MUTED_BACKEND,
    # Spelled out for SQL's NULLs: most rows have no delivery status yet.
    or_(
        OutboundMessage.delivery_status.is_(None),
        OutboundMessage.delivery_status.not_in(PROVIDER_FAILED),
        OutboundMessage.provider_sid.is_not(None),
    ),
)
MISSED_TICKS_ALARM = 3


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime
    sent: int  # texts that left: not muted replies, not refused before sending
    delivered: int
    failed: int
    opt_outs: int
    tracked: int  # of `sent`, those through a backend that reports delivery

    @property
    def delivery_rate(self) -> float | None:
        """Share delivered of the texts whose fate is known; None when nothing settled."""
        settled = self.delivered + self.failed
        return self.delivered / settled if settled else None

    @property
    def delivery_percent(self) -> int | None:
        rate = self.delivery_rate
        return None if rate is None else round(rate * 100)


@dataclass(frozen=True)
class ClockStatus:
    name: str
    last_tick_at: dt.datetime | None
    last_summary: str | None
    silent_for: dt.timedelta | None
    alarm: bool


@dataclass(frozen=True)
class DeliveryHealth:
    span: str
    since: dt.datetime
    width: dt.timedelta
    buckets: list[Bucket]
    failures_by_code: list[tuple[str, int]]
    waiting_due: int  # planned or claimed, send time passed: the backlog
    waiting_later: int  # planned for later
    ambiguous: int
    clock: ClockStatus
    delivery_tracked: bool  # False: "Delivered" would read 0 for texts nobody reports on

    @property
    def labels(self) -> list[str]:
        """Each bucket's start as a chart labels it: "14:00" for hours, "30 Nov" for days."""
        pattern = "%H:%M" if self.width < dt.timedelta(days=1) else "%d %b"
        return [b.start.strftime(pattern) for b in self.buckets]

    @property
    def sent(self) -> int:
        return sum(b.sent for b in self.buckets)

    @property
    def delivered(self) -> int:
        return sum(b.delivered for b in self.buckets)

    @property
    def failed(self) -> int:
        return sum(b.failed for b in self.buckets)

    @property
    def opt_outs(self) -> int:
        return sum(b.opt_outs for b in self.buckets)

    @property
    def delivery_rate(self) -> float | None:
        settled = self.delivered + self.failed
        return self.delivered / settled if settled else None


def _bucket_of(
    session: Session, column: InstrumentedAttribute[Any], since: dt.datetime, width: dt.timedelta
) -> ColumnElement[int]:
    seconds = int(width.total_seconds())
    if session.get_bind().dialect.name == "postgresql":
        epoch: ColumnElement[Any] = func.extract("epoch", column)
        return cast(func.floor((epoch - since.timestamp()) / seconds), Integer)
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]'; strftime('%s') reads it as UTC.
    return cast(
        (cast(func.strftime("%s", column), Integer) - literal(int(since.timestamp()))) / seconds,
        Integer,
    )


def _series(
    session: Session,
    column: InstrumentedAttribute[Any],
    since: dt.datetime,
    width: dt.timedelta,
    *conditions: ColumnElement[bool],
) -> dict[int, int]:
    bucket = _bucket_of(session, column, since, width).label("bucket")
    rows = session.execute(
        select(bucket, func.count()).where(column >= since, *conditions).group_by(bucket)
    ).all()
    return {int(b): int(n) for b, n in rows if b is not None}


def clock_status(
    session: Session, now: dt.datetime, tick_seconds: float, name: str = DISPATCH_CLOCK
) -> ClockStatus:
    """The clock's last tick; an alarm once it has been silent for three tick intervals."""
    row = session.get(ClockHeartbeat, name)
    if row is None:
        return ClockStatus(name, None, None, None, True)
    silent = now - row.last_tick_at
    alarm = silent > dt.timedelta(seconds=tick_seconds * MISSED_TICKS_ALARM)
    return ClockStatus(name, row.last_tick_at, row.last_summary, silent, alarm)


def _window(now: dt.datetime, span: str) -> tuple[dt.datetime, dt.timedelta, int]:
    """The first bucket's start, the bucket width and the count: buckets end at the current
    one, aligned to whole hours or days (UTC)."""
    width, count = SPANS[span]
    if width == dt.timedelta(hours=1):
        current = now.replace(minute=0, second=0, microsecond=0)
    else:
        current = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return current - width * (count - 1), width, count


def _buckets(session: Session, since: dt.datetime, width: dt.timedelta, count: int) -> list[Bucket]:
    sent = _series(session, OutboundMessage.created_at, since, width, SENT)
    tracked = _series(
        session,
        OutboundMessage.created_at,
        since,
        width,
        SENT,
        OutboundMessage.backend.in_(TRACKED_BACKENDS),
    )
    delivered = _series(
        session,
        OutboundMessage.created_at,
        since,
        width,
        OutboundMessage.delivery_status.in_(DELIVERED),
    )
    # A failure is a nudge that ended failed (refused at the API or reported undelivered),
    # bucketed when it failed; texts outside nudges count by their own delivery status.
    failed_nudges = _series(
        session, Nudge.updated_at, since, width, Nudge.state == NudgeState.FAILED
    )
    failed_other = _series(
        session,
        OutboundMessage.created_at,
        since,
        width,
        OutboundMessage.delivery_status.in_(PROVIDER_FAILED),
        OutboundMessage.nudge_id.is_(None),
    )
    opt_outs = _series(session, Patient.opted_out_at, since, width)
    return [
        Bucket(
            start=since + width * i,
            sent=sent.get(i, 0),
            delivered=delivered.get(i, 0),
            failed=failed_nudges.get(i, 0) + failed_other.get(i, 0),
            opt_outs=opt_outs.get(i, 0),
            tracked=tracked.get(i, 0),
        )
        for i in range(count)
    ]


def _failures_by_code(session: Session, since: dt.datetime) -> list[tuple[str, int]]:
    """Failed nudges by their reason, plus failed texts outside nudges by their error code;
    most frequent first."""
    code = func.coalesce(Nudge.state_reason, "unknown")
    by_code: dict[str, int] = {
        str(c): int(n)
        for c, n in session.execute(
            select(code, func.count())
            .where(Nudge.state == NudgeState.FAILED, Nudge.updated_at >= since)
            .group_by(code)
        ).all()
    }
    other_code = func.coalesce(OutboundMessage.error_code, "unknown")
    for c, n in session.execute(
        select(other_code, func.count())
        .where(
            OutboundMessage.created_at >= since,
            OutboundMessage.delivery_status.in_(PROVIDER_FAILED),
            OutboundMessage.nudge_id.is_(None),
        )
        .group_by(other_code)
    ).all():
        by_code[str(c)] = by_code.get(str(c), 0) + int(n)
    return sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))


def delivery_health(
    session: Session, *, now: dt.datetime, span: str, tick_seconds: float, backend: str
) -> DeliveryHealth:
    """The span's buckets and totals. `backend` is the SMS backend in use: delivery counts
    as tracked if it reports delivery, or if any text in the span went through one that does."""
    since, width, count = _window(now, span)
    buckets = _buckets(session, since, width, count)
    waiting_due, waiting_later = session.execute(
        select(
            func.count().filter(Nudge.send_at <= now),
            func.count().filter(Nudge.send_at > now),
        ).where(Nudge.state.in_((NudgeState.PLANNED, NudgeState.CLAIMED)))
    ).one()
    ambiguous = session.scalar(
        select(func.count()).where(Nudge.state == NudgeState.AMBIGUOUS).select_from(Nudge)
    )
    return DeliveryHealth(
        span=span,
        since=since,
        width=width,
        buckets=buckets,
        failures_by_code=_failures_by_code(session, since),
        waiting_due=int(waiting_due or 0),
        waiting_later=int(waiting_later or 0),
        ambiguous=int(ambiguous or 0),
        clock=clock_status(session, now, tick_seconds),
        delivery_tracked=backend in TRACKED_BACKENDS or any(b.tracked for b in buckets),
    )
