"""Every write of a nudge's state, each statement once, both dialects side by side.

The dispatcher's life of a nudge: planned (`insert_planned`), claimed (`claim_due`),
re-queued or finished by the gates (`requeue`, `finish`), moved to `sending` together with
its rendered body (`move_to_sending`), then `mark_sent` once the provider accepted it.
`release_expired_leases` handles the claims of a dispatcher that died.

Where the dialects differ it is for speed, not meaning. On PostgreSQL the per-batch writes
are one statement over arrays (unnest): executemany cost about 30 µs a row there in round
trips and per-statement work, and a row update is a new row version plus index entries, so
the gate and the body are written together. SQLite runs in-process, where executemany is
already cheap. The raw column lists are the mapped ones of Nudge (tests on PostgreSQL catch
a drift).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table, and_, bindparam, case, exists, null, select, text, update
from sqlalchemy.orm import Session

from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import Nudge, Patient
from coachbot.store.dialect import insert_ignoring_duplicates, is_postgresql, skip_locked

# Whoever holds this lock plans, the other clocks skip. The second key is the schema, so the
# lock is shared by clocks planning the same data and by nothing else on the server.
PLANNER_LOCK_CLASS = 0x636F6163
PLANNER_LOCK_ARGS = "(:cls, hashtext(current_schema()))"

# Core table for the bulk statements (the ORM mapping offers it as a generic FromClause).
_NUDGES = cast(Table, Nudge.__table__)
_SENDING = _NUDGES.c.state == NudgeState.SENDING


def try_planner_lock(session: Session) -> bool:
    """True when this transaction may plan: always on SQLite (one writer at a time); on
    PostgreSQL only for the holder of the planner's transaction-scoped advisory lock."""
    if not is_postgresql(session):
        return True
    return bool(
        session.scalar(
            text(f"SELECT pg_try_advisory_xact_lock{PLANNER_LOCK_ARGS}"),
            {"cls": PLANNER_LOCK_CLASS},
        )
    )


def insert_planned(session: Session, values: Sequence[dict[str, object]]) -> int:
    """Inserts the occurrences not planned yet (one per patient and occurrence key); returns
    how many were new. Every row must name the same columns (one multi-row INSERT)."""
    return len(
        insert_ignoring_duplicates(
            session, Nudge, values, ["patient_id", "occurrence_key"], [Nudge.id]
        )
    )


def insert_one_planned(session: Session, values: dict[str, object]) -> bool:
    """One occurrence (a follow-up); True when this statement planned it."""
    return bool(
        insert_ignoring_duplicates(
            session, Nudge, values, ["patient_id", "occurrence_key"], [Nudge.id]
        )
    )


def release_expired_leases(session: Session, now: dt.datetime) -> int:
    """Claims whose dispatcher died: unsent ones go back to the queue; ones that may have
    been on the wire become ambiguous instead of being sent again. Returns how many."""
    released = session.execute(
        update(Nudge)
        .where(Nudge.state == NudgeState.CLAIMED, Nudge.lease_expires_at < now)
        .values(state=NudgeState.PLANNED, lease_expires_at=None, updated_at=now)
    )
    stranded = session.execute(
        update(Nudge)
        .where(Nudge.state == NudgeState.SENDING, Nudge.lease_expires_at < now)
        .values(
            state=NudgeState.AMBIGUOUS,
            state_reason="dispatcher_lost_mid_send",
            updated_at=now,
        )
    )
    return int(getattr(released, "rowcount", 0) or 0) + int(getattr(stranded, "rowcount", 0) or 0)


def claim_due(
    session: Session, now: dt.datetime, lease_until: dt.datetime, limit: int
) -> list[int]:
    """Claims up to `limit` planned nudges due by `now`, oldest first, until `lease_until`."""
    query = (
        select(Nudge.id)
        .where(Nudge.state == NudgeState.PLANNED, Nudge.send_at <= now)
        .order_by(Nudge.send_at, Nudge.id)
        .limit(limit)
    )
    ids = list(session.scalars(skip_locked(session, query)))
    if ids:
        session.execute(
            update(Nudge)
            .where(Nudge.id.in_(ids))
            .values(state=NudgeState.CLAIMED, lease_expires_at=lease_until, updated_at=now)
        )
    return ids


@dataclass(frozen=True)
class Final:
    """A claimed nudge the gates stopped: its final state and why."""

    nudge_id: int
    state: NudgeState
    reason: str | None


@dataclass(frozen=True)
class Requeued:
    """A claimed nudge put back in the queue for `send_at`."""

    nudge_id: int
    send_at: dt.datetime


# Executed with one parameter set per nudge (executemany): one round trip per batch.
_FINISH = (
    update(_NUDGES)
    .where(_NUDGES.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        state_reason=bindparam("b_reason"),
        lease_expires_at=None,
        updated_at=bindparam("b_now"),
    )
)
_REQUEUE = (
    update(_NUDGES)
    .where(_NUDGES.c.id == bindparam("b_id"))
    .values(
        state=NudgeState.PLANNED,
        send_at=bindparam("b_send_at"),
        sent_at=None,
        lease_expires_at=None,
        updated_at=bindparam("b_now"),
    )
)


def finish(session: Session, rows: Sequence[Final], now: dt.datetime) -> None:
    if rows:
        session.execute(
            _FINISH,
            [
                {"b_id": r.nudge_id, "b_state": r.state, "b_reason": r.reason, "b_now": now}
                for r in rows
            ],
        )


def requeue(session: Session, rows: Sequence[Requeued], now: dt.datetime) -> None:
    if rows:
        session.execute(
            _REQUEUE,
            [{"b_id": r.nudge_id, "b_send_at": r.send_at, "b_now": now} for r in rows],
        )


@dataclass(frozen=True)
class Rendered:
    """What a nudge says, written with its move to `sending` (reconciliation matches an
    ambiguous send by its body)."""

    nudge_id: int
    template_id: str
    variant_id: str | None
    body: str
    segments: int


_PG_TO_SENDING = text(
    "UPDATE nudges AS n SET state = :sending, attempts = n.attempts + 1,"
    " sent_at = CAST(:now AS timestamptz), lease_expires_at = CAST(:lease AS timestamptz),"
    " updated_at = CAST(:now AS timestamptz), template_id = v.template_id,"
    " variant_id = v.variant_id, rendered_body = v.body, segments = v.segments"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:templates AS varchar[]),"
    " CAST(:variants AS varchar[]), CAST(:bodies AS text[]), CAST(:segments AS integer[]))"
    " AS v(id, template_id, variant_id, body, segments)"
    " WHERE n.id = v.id AND n.state = :claimed"
    " AND EXISTS (SELECT 1 FROM patients AS p WHERE p.id = n.patient_id AND p.status = :active)"
    " RETURNING n.id"
)
_RENDERED = (
    update(_NUDGES)
    .where(_NUDGES.c.id == bindparam("b_id"))
    .values(
        template_id=bindparam("b_template"),
        variant_id=bindparam("b_variant"),
        rendered_body=bindparam("b_body"),
        segments=bindparam("b_segments"),
    )
)


def move_to_sending(
    session: Session, rendered: Sequence[Rendered], now: dt.datetime, lease_until: dt.datetime
) -> set[int]:
    """The last gate before the wire, atomic with the consent check: moves the claimed
    nudges of still-active patients to `sending` with their rendered body; returns the ids
    moved (a STOP committed before this statement means those nudges are never sent)."""
    ids = [r.nudge_id for r in rendered]
    if is_postgresql(session):
        return set(
            session.scalars(
                _PG_TO_SENDING,
                {
                    "claimed": NudgeState.CLAIMED.value,
                    "sending": NudgeState.SENDING.value,
                    "active": PatientStatus.ACTIVE.value,
                    "now": now,
                    "lease": lease_until,
                    "ids": ids,
                    "templates": [r.template_id for r in rendered],
                    "variants": [r.variant_id for r in rendered],
                    "bodies": [r.body for r in rendered],
                    "segments": [r.segments for r in rendered],
                },
            )
        )
    moved = set(
        session.scalars(
            update(Nudge)
            .where(
                Nudge.id.in_(ids),
                Nudge.state == NudgeState.CLAIMED,
                exists().where(
                    and_(Patient.id == Nudge.patient_id, Patient.status == PatientStatus.ACTIVE)
                ),
            )
            .values(
                state=NudgeState.SENDING,
                attempts=Nudge.attempts + 1,
                sent_at=now,
                lease_expires_at=lease_until,
                updated_at=now,
            )
            .returning(Nudge.id)
            .execution_options(synchronize_session=False)
        )
    )
    if moved:
        session.execute(
            _RENDERED,
            [
                {
                    "b_id": r.nudge_id,
                    "b_template": r.template_id,
                    "b_variant": r.variant_id,
                    "b_body": r.body,
                    "b_segments": r.segments,
                }
                for r in rendered
                if r.nudge_id in moved
            ],
        )
    return moved


@dataclass(frozen=True)
class Accepted:
    """A nudge the provider accepted: its id there, and when its reply window closes."""

    nudge_id: int
    provider_sid: str
    reply_window_ends_at: dt.datetime


# A status callback may have outrun us and already moved the row past `sending`: then only
# the provider's id and the reply window are recorded.
_PG_SENT = text(
    "UPDATE nudges AS n SET"
    " state = CASE WHEN n.state = :sending THEN :sent ELSE n.state END,"
    " state_reason = CASE WHEN n.state = :sending THEN NULL ELSE n.state_reason END,"
    " lease_expires_at = CASE WHEN n.state = :sending THEN NULL ELSE n.lease_expires_at END,"
    " updated_at = CASE WHEN n.state = :sending THEN CAST(:now AS timestamptz)"
    " ELSE n.updated_at END,"
    " provider_sid = v.sid, reply_window_ends_at = v.reply"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:sids AS varchar[]),"
    " CAST(:replies AS timestamptz[])) AS v(id, sid, reply)"
    " WHERE n.id = v.id"
)
_SENT = (
    update(_NUDGES)
    .where(_NUDGES.c.id == bindparam("b_id"))
    .values(
        state=case((_SENDING, NudgeState.SENT), else_=_NUDGES.c.state),
        state_reason=case((_SENDING, null()), else_=_NUDGES.c.state_reason),
        lease_expires_at=case((_SENDING, null()), else_=_NUDGES.c.lease_expires_at),
        updated_at=case(
            (_SENDING, bindparam("b_now", type_=_NUDGES.c.updated_at.type)),
            else_=_NUDGES.c.updated_at,
        ),
        provider_sid=bindparam("b_sid"),
        reply_window_ends_at=bindparam("b_reply"),
    )
)


def mark_sent(session: Session, accepted: Sequence[Accepted], now: dt.datetime) -> None:
    if not accepted:
        return
    if is_postgresql(session):
        session.execute(
            _PG_SENT,
            {
                "sending": NudgeState.SENDING.value,
                "sent": NudgeState.SENT.value,
                "now": now,
                "ids": [a.nudge_id for a in accepted],
                "sids": [a.provider_sid for a in accepted],
                "replies": [a.reply_window_ends_at for a in accepted],
            },
        )
        return
    session.execute(
        _SENT,
        [
            {
                "b_id": a.nudge_id,
                "b_sid": a.provider_sid,
                "b_reply": a.reply_window_ends_at,
                "b_now": now,
            }
            for a in accepted
        ],
    )


_SKIP_UNSENT = (
    update(Nudge)
    .where(
        Nudge.patient_id == bindparam("b_patient_id"),
        Nudge.state.in_((NudgeState.PLANNED, NudgeState.CLAIMED)),
    )
    .values(
        state=NudgeState.SKIPPED,
        state_reason=bindparam("b_reason"),
        updated_at=bindparam("b_now"),
    )
)


def skip_unsent(connection: Connection, patient_id: int, reason: str, now: dt.datetime) -> None:
    """A patient's planned and claimed nudges die (the dispatcher re-checks consent
    atomically before the wire, so a claimed one is never sent either)."""
    connection.execute(_SKIP_UNSENT, {"b_patient_id": patient_id, "b_reason": reason, "b_now": now})
