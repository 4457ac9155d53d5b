"""One clock tick: plan the nudges due soon as rows, then claim and send the due ones.

The claim is committed before any network call, and the row is moved to `sending`
(conditionally on the patient still being active) before the provider is called, so a
crash can never lead to a blind resend: a `sending` row whose lease ran out becomes
`ambiguous` and waits for its status callback or reconciliation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    insert,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.content.lint import clinician_text_problem
from coachbot.domain import schedule as sched
from coachbot.domain import sendability
from coachbot.domain.pacing import TokenBucket
from coachbot.domain.program import (
    CLAIM_LEASE,
    PLANNING_HORIZON,
)
from coachbot.domain.provider_errors import Outcome
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import (
    DeliveryEvent,
    HomeworkItem,
    Nudge,
    OutboundMessage,
    Patient,
    TrackSchedule,
)
from coachbot.services.delivery import (
    RETRY_LATER_DELAY,
    RETRY_LATER_MAX_ATTEMPTS,
    apply_number_outcome,
    apply_stored_events,
)
from coachbot.services.messaging import status_callback_url
from coachbot.services.programs import TrackRules, load_policy_book
from coachbot.services.schedules import DispatchSettings, dispatch_settings, domain_schedule
from coachbot.settings import Settings
from coachbot.sms.gateway import (
    OutgoingSms,
    Pacing,
    SendFailure,
    SendReceipt,
    SendResult,
    SmsGateway,
    open_batch_sender,
)
from coachbot.sms.suppression import SUPPRESSED, is_suppression_refusal

log = logging.getLogger(__name__)

CLAIM_BATCH = 200
PLANNING_LOOKBACK = dt.timedelta(hours=24)
DEFAULT_BACKOFF = dt.timedelta(seconds=30)
# States that count against the daily cap: anything that may have reached the phone.
_CAPPED_STATES = (NudgeState.SENDING, NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)
# Whoever holds this lock plans, the other clocks skip. The second key is the schema, so the
# lock is shared by clocks planning the same data and by nothing else on the server.
PLANNER_LOCK_CLASS = 0x636F6163
PLANNER_LOCK_ARGS = "(:cls, hashtext(current_schema()))"


@dataclass
class TickSummary:
    planned: int = 0
    sent: int = 0
    skipped: int = 0
    missed: int = 0
    failed: int = 0
    ambiguous: int = 0
    deferred: int = 0
    recovered: int = 0
    reconciled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_text(self) -> str:
        return (
            f"planned={self.planned} sent={self.sent} skipped={self.skipped}"
            f" missed={self.missed} failed={self.failed} ambiguous={self.ambiguous}"
            f" deferred={self.deferred} recovered={self.recovered}"
            f" reconciled={self.reconciled}"
        )


def run_tick(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> TickSummary:
    # Imported here: reconciliation imports delivery, as this module does, and nothing else
    # of dispatch, so keeping the import local keeps the module graph a tree.
    from coachbot.services.reconcile import reconcile_ambiguous

    summary = TickSummary()
    summary.recovered = recover_expired_leases(session_factory, now)
    summary.planned = plan_nudges(session_factory, now)
    dispatch_due(session_factory, gateway, library, settings, now, summary)
    summary.reconciled = reconcile_ambiguous(session_factory, gateway, now).found
    return summary


# --- planning -------------------------------------------------------------------------


def _quiet_window(patient: Patient) -> sched.LocalWindow | None:
    if patient.quiet_start is None or patient.quiet_end is None:
        return None
    return sched.LocalWindow(patient.quiet_start, patient.quiet_end)


def plan_nudges(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Materialises occurrences due before now + horizon as rows; idempotent under replays
    and concurrent planners thanks to the per-occurrence unique key. On PostgreSQL only the
    holder of an advisory lock plans, so several clocks do not all recompute calendars."""
    horizon_end = now + PLANNING_HORIZON
    # Re-plan a schedule only once half its horizon is used up, so most ticks skip this.
    replan_before = now + PLANNING_HORIZON / 2
    inserted = 0
    with session_factory() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql" and not session.scalar(
            text(f"SELECT pg_try_advisory_xact_lock{PLANNER_LOCK_ARGS}"),
            {"cls": PLANNER_LOCK_CLASS},
        ):
            return 0
        window = dispatch_settings(session).window
        book = load_policy_book(session)
        rows = session.scalars(
            select(TrackSchedule)
            .join(Patient)
            .where(
                Patient.status == PatientStatus.ACTIVE,
                (TrackSchedule.planned_through.is_(None))
                | (TrackSchedule.planned_through < replan_before),
            )
            .options(selectinload(TrackSchedule.patient))
        ).all()
        values: list[dict[str, object]] = []
        for row in rows:
            patient = row.patient
            zone = ZoneInfo(patient.timezone)
            start = row.planned_through or max(
                now - PLANNING_LOOKBACK, patient.opted_in_at or patient.enrolled_at
            )
            try:
                schedule = domain_schedule(row)
            except ValueError:
                log.exception("schedule %s of patient %s is invalid", row.id, patient.id)
                continue
            enrolled_on = patient.enrolled_at.astimezone(zone).date()
            for occ in sched.occurrences_between(
                schedule, zone, start, horizon_end, enrolled_on=enrolled_on
            ):
                values.append(
                    _nudge_values(
                        patient, occ, zone, now, window, book.rules(patient.id, occ.track)
                    )
                )
            row.planned_through = horizon_end
            if len(values) >= 1000:
                inserted += _insert_ignoring_duplicates(session, values)
                values = []
        if values:
            inserted += _insert_ignoring_duplicates(session, values)
    return inserted


def _nudge_values(
    patient: Patient,
    occ: sched.Occurrence,
    zone: ZoneInfo,
    now: dt.datetime,
    window: sched.LocalWindow,
    rules: TrackRules,
) -> dict[str, object]:
    values: dict[str, object] = {
        "patient_id": patient.id,
        "track": occ.track,
        "occurrence_key": occ.key,
        "due_at": occ.due_at,
        "send_at": occ.due_at,
        "state": NudgeState.PLANNED,
        # Every row names every column: a multi-row INSERT needs one shape for all rows.
        "state_reason": None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    quiet = _quiet_window(patient)
    if sched.overdue(occ.due_at, now, rules.stale_limit, zone, window, quiet, rules.quiet_policy):
        values.update(state=NudgeState.MISSED, state_reason="too_late")
        return values
    decision = sched.place_in_window(occ.due_at, zone, window, quiet, rules.quiet_policy)
    if decision.action == "skip":
        values.update(state=NudgeState.SKIPPED, state_reason=decision.reason)
    elif decision.send_at is not None:
        values["send_at"] = decision.send_at
    return values


def _insert_ignoring_duplicates(session: Session, values: list[dict[str, object]]) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Nudge)
        .values(values)
        .on_conflict_do_nothing(index_elements=["patient_id", "occurrence_key"])
        # Counted from RETURNING: a batched multi-row insert reports no usable rowcount.
        .returning(Nudge.id)
    )
    return len(session.execute(stmt).all())


# --- claiming and sending ----------------------------------------------------------------


def recover_expired_leases(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Claims whose dispatcher died: unsent ones go back to the queue; ones that may have
    been on the wire become ambiguous instead of being sent again."""
    with session_factory() as session, session.begin():
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
        return int(getattr(released, "rowcount", 0) or 0) + int(
            getattr(stranded, "rowcount", 0) or 0
        )


def _claim_query(session: Session, now: dt.datetime) -> Select[int]:
    query = (
        select(Nudge.id)
        .where(Nudge.state == NudgeState.PLANNED, Nudge.send_at <= now)
        .order_by(Nudge.send_at, Nudge.id)
        .limit(CLAIM_BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Concurrent dispatchers take disjoint batches instead of queueing on row locks.
        query = query.with_for_update(skip_locked=True)
    return query


def claim_due(session_factory: sessionmaker[Session], now: dt.datetime) -> list[int]:
    with session_factory() as session, session.begin():
        ids = list(session.scalars(_claim_query(session, now)))
        if ids:
            session.execute(
                update(Nudge)
                .where(Nudge.id.in_(ids))
                .values(
                    state=NudgeState.CLAIMED, lease_expires_at=now + CLAIM_LEASE, updated_at=now
                )
            )
        return ids


@dataclass
class _Ready:
    """A nudge that passed every gate and is in `sending`: what goes on the wire."""

    nudge_id: int
    patient_id: int
    track: str
    to: str
    body: str
    template_id: str
    variant_id: str | None
    segments: int
    reply_window: dt.timedelta


def dispatch_due(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    """Claims, gates, sends and records batch after batch until nothing is due or the
    provider throttles us. The sends of a batch go out concurrently within the pacing, over
    one pool of kept-alive connections for the whole run."""
    with session_factory() as session:
        config = dispatch_settings(session)
    sender = getattr(gateway, "sender", gateway.name)
    pacing = Pacing(config.pace_for(sender), config.max_concurrency)
    callback_base = settings.public_base_url if gateway.name == "twilio" else None
    with open_batch_sender(gateway, pacing, buckets=_SEQUENTIAL_BUCKETS) as send:
        while True:
            ids = claim_due(session_factory, now)
            if not ids:
                return
            ready = _prepare(session_factory, library, settings, ids, now, config, summary)
            if not ready:
                continue
            batch = [
                OutgoingSms(
                    to=r.to,
                    body=r.body,
                    status_callback=(
                        status_callback_url(callback_base, r.nudge_id) if callback_base else None
                    ),
                    segments=r.segments,
                )
                for r in ready
            ]
            results = send(batch, None)
            throttled = _record(session_factory, gateway.name, ready, results, now, summary)
            if throttled:
                return


_SEQUENTIAL_BUCKETS: dict[str, TokenBucket] = {}
# Core tables for the bulk statements (the ORM mapping offers them as generic FromClauses).
_NUDGES = cast(Table, Nudge.__table__)
_OUTBOUND = cast(Table, OutboundMessage.__table__)
_SENDING = _NUDGES.c.state == NudgeState.SENDING


def _finish(nudge: Nudge, state: NudgeState, reason: str | None, now: dt.datetime) -> None:
    nudge.state = state
    nudge.state_reason = reason
    nudge.lease_expires_at = None
    nudge.updated_at = now


def _requeue(nudge: Nudge, send_at: dt.datetime, now: dt.datetime) -> None:
    nudge.state = NudgeState.PLANNED
    nudge.send_at = send_at
    nudge.sent_at = None
    nudge.lease_expires_at = None
    nudge.updated_at = now


RECENT_VARIANTS = dt.timedelta(days=7)


def _history(
    session: Session, zones: dict[int, str], now: dt.datetime
) -> tuple[dict[int, int], dict[tuple[int, str], list[str]]]:
    """One read of the batch's patients' last week: how many automated messages may have
    reached each phone in its own local day so far (the daily cap), and which variants
    each (patient, track) got recently (so texts do not repeat)."""
    counts = dict.fromkeys(zones, 0)
    recent: dict[tuple[int, str], list[str]] = {}
    if not zones:
        return counts, recent
    rows = session.execute(
        select(Nudge.patient_id, Nudge.track, Nudge.variant_id, Nudge.state, Nudge.sent_at).where(
            Nudge.patient_id.in_(list(zones)),
            Nudge.sent_at >= now - RECENT_VARIANTS,
        )
    ).all()
    # Day bounds per zone, not per patient: a cohort spans a handful of zones.
    bounds: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for pid, track, variant, state, sent_at in rows:
        if variant:
            recent.setdefault((pid, track), []).append(variant)
        if state not in _CAPPED_STATES or sent_at is None:
            continue
        name = zones[pid]
        day = bounds.get(name)
        if day is None:
            zone = ZoneInfo(name)
            day = bounds[name] = sched.local_day_bounds(now.astimezone(zone).date(), zone)
        if day[0] <= sent_at < day[1]:
            counts[pid] += 1
    return counts, recent


def _prepare(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    ids: Sequence[int],
    now: dt.datetime,
    config: DispatchSettings,
    summary: TickSummary,
) -> list[_Ready]:
    """Re-checks every claimed nudge (consent, lateness, window, cap), renders it, and moves
    the survivors to `sending` in one conditional statement.

    Columns, not ORM objects: building two mapped objects per nudge, and flushing them one
    by one, cost more than everything else this function does."""
    with session_factory() as session, session.begin():
        rows = session.execute(
            select(
                Nudge.id,
                Nudge.patient_id,
                Nudge.track,
                Nudge.occurrence_key,
                Nudge.due_at,
                Nudge.template_id,
                Patient.status,
                Patient.timezone,
                Patient.quiet_start,
                Patient.quiet_end,
                Patient.first_name,
                Patient.language,
                Patient.phone_e164,
            )
            .join(Patient, Patient.id == Nudge.patient_id)
            .where(Nudge.id.in_(ids), Nudge.state == NudgeState.CLAIMED)
            .order_by(Nudge.send_at, Nudge.id)
        ).all()
        zones = {row.patient_id: row.timezone for row in rows}
        book = load_policy_book(session)
        sent_today, recent = _history(session, zones, now)
        homework = _homework_by_patient(
            session, [row.patient_id for row in rows if row.track == "rehab"]
        )
        finished: list[dict[str, object]] = []
        requeued: list[dict[str, object]] = []
        ready: list[_Ready] = []
        local_times: dict[str, tuple[ZoneInfo, str]] = {}
        for row in rows:
            pid = row.patient_id
            zoned = local_times.get(row.timezone)
            if zoned is None:
                zone = ZoneInfo(row.timezone)
                zoned = local_times[row.timezone] = (zone, now.astimezone(zone).strftime("%H:%M"))
            zone, local_time = zoned
            rules = book.rules(pid, row.track)
            # Consent, lateness, quiet hours and the cap may all have changed since the
            # row was planned.
            verdict = sendability.check(
                sendability.Recipient(row.status, zone, row.quiet_start, row.quiet_end),
                now,
                sendability.Rules(
                    config.window,
                    quiet_policy=rules.quiet_policy,
                    lateness=sendability.Lateness(row.due_at, rules.stale_limit),
                    daily_cap=config.daily_cap,
                    sent_today=sent_today[pid],
                ),
            )
            if verdict.action == "missed":
                finished.append(_final(row.id, NudgeState.MISSED, verdict.reason, now))
                summary.missed += 1
                continue
            if verdict.action == "defer" and verdict.send_at is not None:
                requeued.append(_back_to_queue(row.id, verdict.send_at, now))
                summary.deferred += 1
                continue
            if not verdict.may_send_now:
                finished.append(_final(row.id, NudgeState.SKIPPED, verdict.reason, now))
                summary.skipped += 1
                continue
            variables: dict[str, object] = {
                "first_name": row.first_name,
                "clinic_name": settings.clinic_name,
                "clinic_phone": settings.clinic_phone,
                "local_time": local_time,
            }
            if row.track == "rehab":
                variables["homework"] = homework.get(pid) or "your home exercises"
            # A row planned with a template (a follow-up, a re-engagement) keeps it;
            # otherwise the track's nudge family.
            message = library.render(
                row.template_id or f"nudge.{row.track}",
                row.language,
                variables,
                seed=f"{pid}:{row.occurrence_key}",
                avoid=recent.get((pid, row.track), []),
            )
            sent_today[pid] += 1
            if message.variant_id:
                recent.setdefault((pid, row.track), []).append(message.variant_id)
            ready.append(
                _Ready(
                    row.id,
                    pid,
                    row.track,
                    row.phone_e164,
                    message.body,
                    message.template_id,
                    message.variant_id,
                    message.segments.segments,
                    rules.reply_window,
                )
            )
        if finished:
            session.execute(_FINISH, finished)
        if requeued:
            session.execute(_REQUEUE, requeued)
        if not ready:
            return []
        # The last gate before the wire, atomic with the consent check: a STOP stored
        # before this commit means these nudges are never sent. The rendered body goes in
        # with it, since reconciliation matches an ambiguous send by that body.
        if _is_postgresql(session):
            # One statement: a PostgreSQL row update is a new row version plus index
            # entries, so the gate and the body are written together, not one after the other.
            moved = set(
                session.scalars(
                    _PG_TO_SENDING,
                    {
                        "claimed": NudgeState.CLAIMED.value,
                        "sending": NudgeState.SENDING.value,
                        "active": PatientStatus.ACTIVE.value,
                        "now": now,
                        "lease": now + CLAIM_LEASE,
                        "ids": [r.nudge_id for r in ready],
                        "templates": [r.template_id for r in ready],
                        "variants": [r.variant_id for r in ready],
                        "bodies": [r.body for r in ready],
                        "segments": [r.segments for r in ready],
                    },
                )
            )
            return [r for r in ready if r.nudge_id in moved]
        moved = set(
            session.scalars(
                update(Nudge)
                .where(
                    Nudge.id.in_([r.nudge_id for r in ready]),
                    Nudge.state == NudgeState.CLAIMED,
                    exists().where(
                        and_(
                            Patient.id == Nudge.patient_id,
                            Patient.status == PatientStatus.ACTIVE,
                        )
                    ),
                )
                .values(
                    state=NudgeState.SENDING,
                    attempts=Nudge.attempts + 1,
                    sent_at=now,
                    lease_expires_at=now + CLAIM_LEASE,
                    updated_at=now,
                )
                .returning(Nudge.id)
                .execution_options(synchronize_session=False)
            )
        )
        ready = [r for r in ready if r.nudge_id in moved]
        if ready:
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
                    for r in ready
                ],
            )
        return ready


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _final(
    nudge_id: int, state: NudgeState, reason: str | None, now: dt.datetime
) -> dict[str, object]:
    return {"b_id": nudge_id, "b_state": state, "b_reason": reason, "b_now": now}


def _back_to_queue(nudge_id: int, send_at: dt.datetime, now: dt.datetime) -> dict[str, object]:
    return {"b_id": nudge_id, "b_send_at": send_at, "b_now": now}


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
# PostgreSQL: one statement per batch over arrays (unnest) instead of one execution per
# row; executemany cost about 30 µs a row of round trips and per-statement work there.
# SQLite runs in-process, where executemany is already cheap. The column lists are the
# mapped ones of Nudge and OutboundMessage (tests on PostgreSQL catch a drift).
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
_PG_OUTBOUND = text(
    "INSERT INTO outbound_messages (patient_id, to_e164, body, kind, template_id, variant_id,"
    " nudge_id, backend, provider_sid, delivery_status, error_code, segments, created_at)"
    " SELECT v.patient_id, v.to_e164, v.body, :kind, v.template_id, v.variant_id, v.nudge_id,"
    " :backend, v.sid, v.status, NULL, v.segments, CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:patient_ids AS integer[]), CAST(:tos AS varchar[]),"
    " CAST(:bodies AS text[]), CAST(:templates AS varchar[]), CAST(:variants AS varchar[]),"
    " CAST(:nudge_ids AS integer[]), CAST(:sids AS varchar[]), CAST(:statuses AS varchar[]),"
    " CAST(:segments AS integer[]))"
    " AS v(patient_id, to_e164, body, template_id, variant_id, nudge_id, sid, status, segments)"
)
# A status callback may have outrun us and already moved the row past `sending`: then only
# the provider's id and the reply window are recorded.
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


def _homework_by_patient(session: Session, patient_ids: Sequence[int]) -> dict[int, str]:
    if not patient_ids:
        return {}
    found: dict[int, list[str]] = {}
    for pid, description in session.execute(
        select(HomeworkItem.patient_id, HomeworkItem.description)
        .where(HomeworkItem.patient_id.in_(list(patient_ids)), HomeworkItem.active.is_(True))
        .order_by(HomeworkItem.id)
    ):
        # Forms and the CLI refuse such words; an item stored before that check (or by
        # any other way in) is checked again here, where it would reach the phone.
        if clinician_text_problem(description) is not None:
            log.warning("homework item of patient %s withheld: fails the privacy lint", pid)
            continue
        found.setdefault(pid, []).append(description)
    return {pid: "; ".join(items) for pid, items in found.items()}


def _record(
    session_factory: sessionmaker[Session],
    backend: str,
    ready: Sequence[_Ready],
    results: Sequence[SendResult],
    now: dt.datetime,
    summary: TickSummary,
) -> bool:
    """Records a batch's outcomes in one transaction; True when the provider throttled us.

    Accepted sends, nearly all of a batch, are written with two bulk statements; the rare
    failures and throttled leftovers go through the per-nudge rules below."""
    throttle_delay = DEFAULT_BACKOFF
    for result in results:
        if (
            isinstance(result, SendFailure)
            and result.outcome is Outcome.RETRY
            and result.retry_after is not None
        ):
            throttle_delay = max(throttle_delay, dt.timedelta(seconds=result.retry_after))
    throttled = False
    accepted = [
        (item, result)
        for item, result in zip(ready, results, strict=True)
        if isinstance(result, SendReceipt)
    ]
    others = [
        (item, result)
        for item, result in zip(ready, results, strict=True)
        if not isinstance(result, SendReceipt)
    ]
    with session_factory() as session, session.begin():
        if accepted:
            _record_accepted(session, backend, accepted, now)
            summary.sent += len(accepted)
        if others:
            nudges = {
                n.id: n
                for n in session.scalars(
                    select(Nudge).where(Nudge.id.in_([item.nudge_id for item, _ in others]))
                )
            }
            for item, result in others:
                nudge = nudges[item.nudge_id]
                if result is None:
                    # Never attempted: the provider throttled the batch before its turn.
                    nudge.attempts = max(0, nudge.attempts - 1)
                    _requeue(nudge, now + throttle_delay, now)
                    summary.deferred += 1
                    throttled = True
                else:
                    assert isinstance(result, SendFailure)
                    throttled |= _record_failure(session, item, nudge, result, now, summary)
    if summary.sent:
        log.info("dispatch batch: %s", summary.as_text())
    return throttled


def _record_accepted(
    session: Session,
    backend: str,
    accepted: Sequence[tuple[_Ready, SendReceipt]],
    now: dt.datetime,
) -> None:
    sids = [receipt.provider_sid for _, receipt in accepted]
    # A replayed record (or a callback that created the message row) must not add a second.
    known = set(
        session.scalars(
            select(OutboundMessage.provider_sid).where(OutboundMessage.provider_sid.in_(sids))
        )
    )
    with_events = set(
        session.scalars(
            select(DeliveryEvent.provider_sid).where(DeliveryEvent.provider_sid.in_(sids))
        )
    )
    postgresql = _is_postgresql(session)
    if postgresql:
        session.execute(
            _PG_SENT,
            {
                "sending": NudgeState.SENDING.value,
                "sent": NudgeState.SENT.value,
                "now": now,
                "ids": [item.nudge_id for item, _ in accepted],
                "sids": sids,
                "replies": [now + item.reply_window for item, _ in accepted],
            },
        )
    else:
        session.execute(
            _SENT,
            [
                {
                    "b_id": item.nudge_id,
                    "b_sid": receipt.provider_sid,
                    "b_reply": now + item.reply_window,
                    "b_now": now,
                }
                for item, receipt in accepted
            ],
        )
    new = [(item, receipt) for item, receipt in accepted if receipt.provider_sid not in known]
    if not new:
        return
    if postgresql:
        session.execute(
            _PG_OUTBOUND,
            {
                "kind": "nudge",
                "backend": backend,
                "now": now,
                "patient_ids": [item.patient_id for item, _ in new],
                "tos": [item.to for item, _ in new],
                "bodies": [item.body for item, _ in new],
                "templates": [item.template_id for item, _ in new],
                "variants": [item.variant_id for item, _ in new],
                "nudge_ids": [item.nudge_id for item, _ in new],
                "sids": [receipt.provider_sid for _, receipt in new],
                "statuses": [receipt.status for _, receipt in new],
                "segments": [item.segments for item, _ in new],
            },
        )
    else:
        session.execute(
            insert(_OUTBOUND),
            [
                {
                    "patient_id": item.patient_id,
                    "to_e164": item.to,
                    "body": item.body,
                    "kind": "nudge",
                    "template_id": item.template_id,
                    "variant_id": item.variant_id,
                    "nudge_id": item.nudge_id,
                    "backend": backend,
                    "provider_sid": receipt.provider_sid,
                    "delivery_status": receipt.status,
                    "error_code": None,
                    "segments": item.segments,
                    "created_at": now,
                }
                for item, receipt in new
            ],
        )
    # Status callbacks that arrived before this commit were stored as events; replay them
    # now that the message row exists (rare: Twilio answers before it calls back).
    for item, receipt in new:
        if receipt.provider_sid in with_events:
            outbound = session.scalars(
                select(OutboundMessage).where(OutboundMessage.provider_sid == receipt.provider_sid)
            ).one()
            nudge = session.get_one(Nudge, item.nudge_id)
            apply_stored_events(session, receipt.provider_sid, outbound, nudge, now)


def _record_failure(
    session: Session,
    item: _Ready,
    nudge: Nudge,
    failure: SendFailure,
    now: dt.datetime,
    summary: TickSummary,
) -> bool:
    code = str(failure.code) if failure.code is not None else None
    outcome = failure.outcome
    log.warning("nudge %s not sent: %s (code %s)", item.nudge_id, outcome, code)
    if outcome is Outcome.RETRY:
        delay = (
            dt.timedelta(seconds=failure.retry_after)
            if failure.retry_after is not None
            else DEFAULT_BACKOFF
        )
        _requeue(nudge, now + delay, now)
        summary.deferred += 1
        return True
    if outcome is Outcome.RETRY_LATER and nudge.attempts < RETRY_LATER_MAX_ATTEMPTS:
        _requeue(nudge, now + RETRY_LATER_DELAY, now)
        nudge.state_reason = code
        summary.deferred += 1
        return False
    if is_suppression_refusal(failure):
        # The number is on the suppression list: nothing reached the provider, so the
        # nudge is skipped (like any other consent gate), with the reason on the row.
        _finish(nudge, NudgeState.SKIPPED, SUPPRESSED, now)
        nudge.sent_at = None
        summary.skipped += 1
        return False
    if outcome is Outcome.AMBIGUOUS:
        # Never resent blindly: a status callback or reconciliation settles it.
        _finish(nudge, NudgeState.AMBIGUOUS, code or failure.detail or "no_response", now)
        summary.ambiguous += 1
        return False
    _finish(nudge, NudgeState.FAILED, code or outcome.value, now)
    summary.failed += 1
    apply_number_outcome(session, item.patient_id, outcome, code, now)
    return False
