"""One clock tick: plan the nudges due soon as rows, then claim and send the due ones.

The claim is committed before any network call, and the row is moved to `sending`
(conditionally on the patient still being active) before the provider is called, so a
crash can never lead to a blind resend: a `sending` row whose lease ran out becomes
`ambiguous` and waits for its status callback or reconciliation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain import schedule as sched
from coachbot.domain.pacing import TokenBucket
from coachbot.domain.program import (
    CLAIM_LEASE,
    PLANNING_HORIZON,
    TRACK_POLICIES,
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
from coachbot.services.schedules import DispatchSettings, dispatch_settings, domain_schedule
from coachbot.settings import Settings
from coachbot.sms.gateway import (
    OutgoingSms,
    Pacing,
    SendFailure,
    SendReceipt,
    SendResult,
    SmsGateway,
    send_batch,
)

log = logging.getLogger(__name__)

CLAIM_BATCH = 200
PLANNING_LOOKBACK = dt.timedelta(hours=24)
DEFAULT_BACKOFF = dt.timedelta(seconds=30)
# States that count against the daily cap: anything that may have reached the phone.
_CAPPED_STATES = (NudgeState.SENDING, NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)
# Any constant shared by every clock process: whoever holds it plans, the others skip.
PLANNER_LOCK_KEY = 0x636F6163_68626F74 >> 1

# Crash-test hook, called at "claimed" (claim committed), "accepted" (the provider returned a
# receipt, nothing recorded yet) and "recorded" (the batch's outcome committed). The kill -9
# tests set it inside a dispatcher subprocess; nothing in the package or the environment
# sets it, so production pays one None check per point.
crash_hook: Callable[[str, int], None] | None = None


def _at(point: str, nudge_id: int) -> None:
    if crash_hook is not None:
        crash_hook(point, nudge_id)


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
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PLANNER_LOCK_KEY}
        ):
            return 0
        window = dispatch_settings(session).window
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
                values.append(_nudge_values(patient, occ, zone, now, window))
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
) -> dict[str, object]:
    track_policy = TRACK_POLICIES[occ.track]
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
    if now - occ.due_at > track_policy.stale_limit:
        values.update(state=NudgeState.MISSED, state_reason="too_late")
        return values
    decision = sched.place_in_window(
        occ.due_at,
        zone,
        window,
        _quiet_window(patient),
        track_policy.quiet_policy,
    )
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


def dispatch_due(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    """Claims, gates, sends and records batch after batch until nothing is due or the
    provider throttles us. The sends of a batch go out concurrently within the pacing."""
    with session_factory() as session:
        config = dispatch_settings(session)
    sender = getattr(gateway, "sender", gateway.name)
    pacing = Pacing(config.pace_for(sender), config.max_concurrency)
    while True:
        ids = claim_due(session_factory, now)
        if not ids:
            return
        _at("claimed", ids[0])
        ready = _prepare(session_factory, library, settings, ids, now, config, summary)
        if not ready:
            continue
        callback_base = settings.public_base_url if gateway.name == "twilio" else None
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

        ids_in_batch = [r.nudge_id for r in ready]

        def accepted(
            index: int, result: SendReceipt | SendFailure, ids: list[int] = ids_in_batch
        ) -> None:
            if isinstance(result, SendReceipt):
                _at("accepted", ids[index])

        results = send_batch(gateway, batch, pacing, accepted, buckets=_SEQUENTIAL_BUCKETS)
        throttled = _record(session_factory, gateway.name, ready, results, now, summary)
        _at("recorded", ready[0].nudge_id)
        if throttled:
            return


_SEQUENTIAL_BUCKETS: dict[str, TokenBucket] = {}


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


def _sent_today_by_patient(
    session: Session, patients: dict[int, Patient], now: dt.datetime
) -> dict[int, int]:
    """Automated messages that may have reached each phone in its own local day so far."""
    counts = dict.fromkeys(patients, 0)
    if not patients:
        return counts
    bounds = {}
    for pid, patient in patients.items():
        zone = ZoneInfo(patient.timezone)
        bounds[pid] = sched.local_day_bounds(now.astimezone(zone).date(), zone)
    earliest = min(start for start, _ in bounds.values())
    rows = session.execute(
        select(Nudge.patient_id, Nudge.sent_at).where(
            Nudge.patient_id.in_(list(patients)),
            Nudge.state.in_(_CAPPED_STATES),
            Nudge.sent_at >= earliest,
        )
    ).all()
    for pid, sent_at in rows:
        start, end = bounds[pid]
        if sent_at is not None and start <= sent_at < end:
            counts[pid] += 1
    return counts


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
    the survivors to `sending` in one conditional statement."""
    with session_factory() as session, session.begin():
        nudges = session.scalars(
            select(Nudge)
            .where(Nudge.id.in_(ids), Nudge.state == NudgeState.CLAIMED)
            .options(selectinload(Nudge.patient))
            .order_by(Nudge.send_at, Nudge.id)
        ).all()
        patients = {n.patient_id: n.patient for n in nudges}
        sent_today = _sent_today_by_patient(session, patients, now)
        recent: dict[tuple[int, str], list[str]] = {}
        for pid, track, variant in session.execute(
            select(Nudge.patient_id, Nudge.track, Nudge.variant_id).where(
                Nudge.patient_id.in_(list(patients)),
                Nudge.sent_at >= now - dt.timedelta(days=7),
                Nudge.variant_id.is_not(None),
            )
        ):
            if variant:
                recent.setdefault((pid, track), []).append(variant)
        homework = _homework_by_patient(
            session, [n.patient_id for n in nudges if n.track == "rehab"]
        )
        ready: list[_Ready] = []
        for nudge in nudges:
            patient = nudge.patient
            zone = ZoneInfo(patient.timezone)
            policy = TRACK_POLICIES[nudge.track]
            # Consent, lateness, quiet hours and the cap may all have changed since the
            # row was planned.
            if patient.status != PatientStatus.ACTIVE:
                _finish(nudge, NudgeState.SKIPPED, f"patient_{patient.status}", now)
                summary.skipped += 1
                continue
            if now - nudge.due_at > policy.stale_limit:
                _finish(nudge, NudgeState.MISSED, "too_late", now)
                summary.missed += 1
                continue
            decision = sched.place_in_window(
                now, zone, config.window, _quiet_window(patient), policy.quiet_policy
            )
            if decision.action == "skip":
                _finish(nudge, NudgeState.SKIPPED, decision.reason, now)
                summary.skipped += 1
                continue
            if decision.action == "defer" and decision.send_at is not None:
                _requeue(nudge, decision.send_at, now)
                summary.deferred += 1
                continue
            if sent_today[patient.id] >= config.daily_cap:
                _finish(nudge, NudgeState.SKIPPED, "daily_cap", now)
                summary.skipped += 1
                continue
            variables: dict[str, object] = {
                "first_name": patient.first_name,
                "clinic_name": settings.clinic_name,
                "clinic_phone": settings.clinic_phone,
                "local_time": now.astimezone(zone).strftime("%H:%M"),
            }
            if nudge.track == "rehab":
                variables["homework"] = homework.get(patient.id) or "your home exercises"
            # A row planned with a template (a follow-up, a re-engagement) keeps it;
            # otherwise the track's nudge family.
            message = library.render(
                nudge.template_id or f"nudge.{nudge.track}",
                patient.language,
                variables,
                seed=f"{patient.id}:{nudge.occurrence_key}",
                avoid=recent.get((patient.id, nudge.track), []),
            )
            sent_today[patient.id] += 1
            if message.variant_id:
                recent.setdefault((patient.id, nudge.track), []).append(message.variant_id)
            ready.append(
                _Ready(
                    nudge.id,
                    patient.id,
                    nudge.track,
                    patient.phone_e164,
                    message.body,
                    message.template_id,
                    message.variant_id,
                    message.segments.segments,
                )
            )
        session.flush()
        if not ready:
            return []
        # The last gate before the wire, atomic with the consent check: a STOP stored
        # before this commit means these nudges are never sent.
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
                update(Nudge).execution_options(synchronize_session=False),
                [
                    {
                        "id": r.nudge_id,
                        "template_id": r.template_id,
                        "variant_id": r.variant_id,
                        "rendered_body": r.body,
                        "segments": r.segments,
                    }
                    for r in ready
                ],
            )
        return ready


def _homework_by_patient(session: Session, patient_ids: Sequence[int]) -> dict[int, str]:
    if not patient_ids:
        return {}
    found: dict[int, list[str]] = {}
    for pid, description in session.execute(
        select(HomeworkItem.patient_id, HomeworkItem.description)
        .where(HomeworkItem.patient_id.in_(list(patient_ids)), HomeworkItem.active.is_(True))
        .order_by(HomeworkItem.id)
    ):
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
    """Records a batch's outcomes in one transaction; True when the provider throttled us."""
    throttle_delay = DEFAULT_BACKOFF
    for result in results:
        if (
            isinstance(result, SendFailure)
            and result.outcome is Outcome.RETRY
            and result.retry_after is not None
        ):
            throttle_delay = max(throttle_delay, dt.timedelta(seconds=result.retry_after))
    throttled = False
    with session_factory() as session, session.begin():
        nudges = {
            n.id: n
            for n in session.scalars(select(Nudge).where(Nudge.id.in_([r.nudge_id for r in ready])))
        }
        sids = [r.provider_sid for r in results if isinstance(r, SendReceipt)]
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
        for item, result in zip(ready, results, strict=True):
            nudge = nudges[item.nudge_id]
            if result is None:
                # Never attempted: the provider throttled the batch before its turn.
                nudge.attempts = max(0, nudge.attempts - 1)
                _requeue(nudge, now + throttle_delay, now)
                summary.deferred += 1
                throttled = True
            elif isinstance(result, SendReceipt):
                _record_sent(session, backend, item, nudge, result, now, known, with_events)
                summary.sent += 1
            else:
                throttled |= _record_failure(session, item, nudge, result, now, summary)
    if summary.sent:
        log.info("dispatch batch: %s", summary.as_text())
    return throttled


def _record_sent(
    session: Session,
    backend: str,
    item: _Ready,
    nudge: Nudge,
    receipt: SendReceipt,
    now: dt.datetime,
    known: set[str | None],
    with_events: set[str],
) -> None:
    # A status callback may have outrun us and already moved the row forward.
    if nudge.state == NudgeState.SENDING:
        _finish(nudge, NudgeState.SENT, None, now)
    nudge.provider_sid = receipt.provider_sid
    nudge.reply_window_ends_at = now + TRACK_POLICIES[item.track].reply_window
    if receipt.provider_sid in known:
        return
    outbound = OutboundMessage(
        patient_id=item.patient_id,
        to_e164=item.to,
        body=item.body,
        kind="nudge",
        template_id=item.template_id,
        variant_id=item.variant_id,
        nudge_id=item.nudge_id,
        backend=backend,
        provider_sid=receipt.provider_sid,
        delivery_status=receipt.status,
        segments=item.segments,
        created_at=now,
    )
    session.add(outbound)
    if receipt.provider_sid in with_events:
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
    if outcome is Outcome.AMBIGUOUS:
        # Never resent blindly: a status callback or reconciliation settles it.
        _finish(nudge, NudgeState.AMBIGUOUS, code or failure.detail or "no_response", now)
        summary.ambiguous += 1
        return False
    _finish(nudge, NudgeState.FAILED, code or outcome.value, now)
    summary.failed += 1
    apply_number_outcome(session, item.patient_id, outcome, code, now)
    return False
