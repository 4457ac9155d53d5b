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
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain import schedule as sched
from coachbot.domain.phones import mask_phone
from coachbot.domain.program import (
    CLAIM_LEASE,
    DEFAULT_DAILY_CAP,
    PLANNING_HORIZON,
    TRACK_POLICIES,
)
from coachbot.domain.provider_errors import Outcome
from coachbot.domain.states import AlertKind, AlertSeverity, NudgeState, PatientStatus
from coachbot.models import HomeworkItem, Nudge, OutboundMessage, Patient, TrackSchedule
from coachbot.services.alerts import raise_alert
from coachbot.services.delivery import apply_stored_events
from coachbot.services.messaging import status_callback_url
from coachbot.settings import Settings
from coachbot.sms.gateway import OutgoingSms, SendFailure, SmsGateway

log = logging.getLogger(__name__)

CLAIM_BATCH = 200
PLANNING_LOOKBACK = dt.timedelta(hours=24)
RETRY_LATER_DELAY = dt.timedelta(minutes=30)
RETRY_LATER_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF = dt.timedelta(seconds=30)
# States that count against the daily cap: anything that may have reached the phone.
_CAPPED_STATES = (NudgeState.SENDING, NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)


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
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_text(self) -> str:
        return (
            f"planned={self.planned} sent={self.sent} skipped={self.skipped}"
            f" missed={self.missed} failed={self.failed} ambiguous={self.ambiguous}"
            f" deferred={self.deferred} recovered={self.recovered}"
        )


def run_tick(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> TickSummary:
    summary = TickSummary()
    summary.recovered = recover_expired_leases(session_factory, now)
    summary.planned = plan_nudges(session_factory, now)
    dispatch_due(session_factory, gateway, library, settings, now, summary)
    return summary


# --- planning -------------------------------------------------------------------------


def _quiet_window(patient: Patient) -> sched.LocalWindow | None:
    if patient.quiet_start is None or patient.quiet_end is None:
        return None
    return sched.LocalWindow(patient.quiet_start, patient.quiet_end)


def _domain_schedule(row: TrackSchedule) -> sched.TrackSchedule:
    return sched.TrackSchedule(
        track=row.track,
        times=tuple(sched.parse_hhmm(t) for t in row.local_times.split(",") if t),
        days_of_week=frozenset(int(d) for d in row.days_of_week),
        start_date=row.start_date,
        end_date=row.end_date,
    )


def plan_nudges(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Materialises occurrences due before now + horizon as rows; idempotent under replays
    and concurrent planners thanks to the per-occurrence unique key."""
    horizon_end = now + PLANNING_HORIZON
    # Re-plan a schedule only once half its horizon is used up, so most ticks skip this.
    replan_before = now + PLANNING_HORIZON / 2
    inserted = 0
    with session_factory() as session, session.begin():
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
        for row in rows:
            patient = row.patient
            zone = ZoneInfo(patient.timezone)
            start = row.planned_through or max(
                now - PLANNING_LOOKBACK, patient.opted_in_at or patient.enrolled_at
            )
            values = []
            for occ in sched.occurrences_between(_domain_schedule(row), zone, start, horizon_end):
                values.append(_nudge_values(patient, occ, zone, now))
            if values:
                inserted += _insert_ignoring_duplicates(session, values)
            row.planned_through = horizon_end
    return inserted


def _nudge_values(
    patient: Patient, occ: sched.Occurrence, zone: ZoneInfo, now: dt.datetime
) -> dict[str, object]:
    track_policy = TRACK_POLICIES[occ.track]
    values: dict[str, object] = {
        "patient_id": patient.id,
        "track": occ.track,
        "occurrence_key": occ.key,
        "due_at": occ.due_at,
        "send_at": occ.due_at,
        "state": NudgeState.PLANNED,
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
        sched.DEFAULT_ALLOWED_WINDOW,
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
    )
    result = session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


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


def dispatch_due(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    summary: TickSummary,
) -> None:
    while True:
        ids = claim_due(session_factory, now)
        if not ids:
            return
        for index, nudge_id in enumerate(ids):
            throttled = _send_one(
                session_factory, gateway, library, settings, nudge_id, now, summary
            )
            if throttled:
                # The provider asked us to slow down: hand the rest back and end this tick.
                _release(session_factory, ids[index + 1 :], now)
                return


def _release(session_factory: sessionmaker[Session], ids: Sequence[int], now: dt.datetime) -> None:
    if not ids:
        return
    with session_factory() as session, session.begin():
        session.execute(
            update(Nudge)
            .where(Nudge.id.in_(ids), Nudge.state == NudgeState.CLAIMED)
            .values(state=NudgeState.PLANNED, lease_expires_at=None, updated_at=now)
        )


def _finish(nudge: Nudge, state: NudgeState, reason: str | None, now: dt.datetime) -> None:
    nudge.state = state
    nudge.state_reason = reason
    nudge.lease_expires_at = None
    nudge.updated_at = now


def _homework_text(session: Session, patient_id: int) -> str:
    items = session.scalars(
        select(HomeworkItem.description)
        .where(HomeworkItem.patient_id == patient_id, HomeworkItem.active.is_(True))
        .order_by(HomeworkItem.id)
    ).all()
    return "; ".join(items) if items else "your home exercises"


def _sent_today(session: Session, patient: Patient, now: dt.datetime) -> int:
    zone = ZoneInfo(patient.timezone)
    start, end = sched.local_day_bounds(now.astimezone(zone).date(), zone)
    return int(
        session.scalar(
            select(func.count(Nudge.id)).where(
                Nudge.patient_id == patient.id,
                Nudge.state.in_(_CAPPED_STATES),
                Nudge.sent_at >= start,
                Nudge.sent_at < end,
            )
        )
        or 0
    )


def _send_one(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    nudge_id: int,
    now: dt.datetime,
    summary: TickSummary,
) -> bool:
    """Returns True when the provider throttled us."""
    with session_factory() as session, session.begin():
        nudge = session.get(Nudge, nudge_id)
        if nudge is None or nudge.state != NudgeState.CLAIMED:
            return False
        patient = nudge.patient
        zone = ZoneInfo(patient.timezone)
        policy = TRACK_POLICIES[nudge.track]
        # Re-check at claim time: consent, lateness, quiet hours and the cap can all have
        # changed since the row was planned.
        if patient.status != PatientStatus.ACTIVE:
            _finish(nudge, NudgeState.SKIPPED, f"patient_{patient.status}", now)
            summary.skipped += 1
            return False
        if now - nudge.due_at > policy.stale_limit:
            _finish(nudge, NudgeState.MISSED, "too_late", now)
            summary.missed += 1
            return False
        decision = sched.place_in_window(
            now, zone, sched.DEFAULT_ALLOWED_WINDOW, _quiet_window(patient), policy.quiet_policy
        )
        if decision.action == "skip":
            _finish(nudge, NudgeState.SKIPPED, decision.reason, now)
            summary.skipped += 1
            return False
        if decision.action == "defer" and decision.send_at is not None:
            nudge.state, nudge.send_at, nudge.lease_expires_at = (
                NudgeState.PLANNED,
                decision.send_at,
                None,
            )
            summary.deferred += 1
            return False
        if _sent_today(session, patient, now) >= DEFAULT_DAILY_CAP:
            _finish(nudge, NudgeState.SKIPPED, "daily_cap", now)
            summary.skipped += 1
            return False

        recent_variants = session.scalars(
            select(Nudge.variant_id).where(
                Nudge.patient_id == patient.id,
                Nudge.track == nudge.track,
                Nudge.sent_at >= now - dt.timedelta(days=7),
                Nudge.variant_id.is_not(None),
            )
        ).all()
        variables: dict[str, object] = {
            "first_name": patient.first_name,
            "clinic_name": settings.clinic_name,
            "clinic_phone": settings.clinic_phone,
            "local_time": now.astimezone(zone).strftime("%H:%M"),
        }
        if nudge.track == "rehab":
            variables["homework"] = _homework_text(session, patient.id)
        # A row planned with a template (a follow-up, a re-engagement) keeps it; otherwise
        # the track's nudge family.
        message = library.render(
            nudge.template_id or f"nudge.{nudge.track}",
            patient.language,
            variables,
            seed=f"{patient.id}:{nudge.occurrence_key}",
            avoid=[v for v in recent_variants if v],
        )
        # The last gate before the wire, atomic with the consent check: a STOP stored
        # before this commit means this nudge is never sent.
        moved = session.execute(
            update(Nudge)
            .where(
                Nudge.id == nudge.id,
                Nudge.state == NudgeState.CLAIMED,
                exists().where(
                    and_(Patient.id == Nudge.patient_id, Patient.status == PatientStatus.ACTIVE)
                ),
            )
            .values(
                state=NudgeState.SENDING,
                attempts=Nudge.attempts + 1,
                template_id=message.template_id,
                variant_id=message.variant_id,
                sent_at=now,
                lease_expires_at=now + CLAIM_LEASE,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if int(getattr(moved, "rowcount", 0) or 0) != 1:
            return False
        to_number, patient_id, track = patient.phone_e164, patient.id, nudge.track

    callback = (
        status_callback_url(settings.public_base_url, nudge_id)
        if gateway.name == "twilio"
        else None
    )
    try:
        receipt = gateway.send(
            OutgoingSms(to=to_number, body=message.body, status_callback=callback)
        )
    except SendFailure as failure:
        return _record_failure(session_factory, nudge_id, patient_id, failure, now, summary)

    with session_factory() as session, session.begin():
        nudge = session.get_one(Nudge, nudge_id)
        # A status callback may have outrun us and already moved the row forward.
        if nudge.state == NudgeState.SENDING:
            _finish(nudge, NudgeState.SENT, None, now)
        nudge.provider_sid = receipt.provider_sid
        nudge.reply_window_ends_at = now + TRACK_POLICIES[track].reply_window
        outbound = OutboundMessage(
            patient_id=patient_id,
            to_e164=to_number,
            body=message.body,
            kind="nudge",
            template_id=message.template_id,
            variant_id=message.variant_id,
            nudge_id=nudge_id,
            backend=gateway.name,
            provider_sid=receipt.provider_sid,
            delivery_status=receipt.status,
            segments=message.segments.segments,
            created_at=now,
        )
        session.add(outbound)
        apply_stored_events(session, receipt.provider_sid, outbound, nudge, now)
    summary.sent += 1
    log.info("nudge %s (%s) sent to %s", nudge_id, track, mask_phone(to_number))
    return False


def _record_failure(
    session_factory: sessionmaker[Session],
    nudge_id: int,
    patient_id: int,
    failure: SendFailure,
    now: dt.datetime,
    summary: TickSummary,
) -> bool:
    code = str(failure.code) if failure.code is not None else None
    with session_factory() as session, session.begin():
        nudge = session.get_one(Nudge, nudge_id)
        patient = session.get_one(Patient, patient_id)
        outcome = failure.outcome
        if outcome is Outcome.RETRY:
            delay = (
                dt.timedelta(seconds=failure.retry_after)
                if failure.retry_after is not None
                else DEFAULT_BACKOFF
            )
            nudge.state, nudge.send_at, nudge.lease_expires_at = (
                NudgeState.PLANNED,
                now + delay,
                None,
            )
            nudge.sent_at = None
            summary.deferred += 1
            return True
        if outcome is Outcome.RETRY_LATER and nudge.attempts < RETRY_LATER_MAX_ATTEMPTS:
            nudge.state, nudge.send_at, nudge.lease_expires_at = (
                NudgeState.PLANNED,
                now + RETRY_LATER_DELAY,
                None,
            )
            nudge.sent_at = None
            summary.deferred += 1
            return False
        if outcome is Outcome.AMBIGUOUS:
            _finish(nudge, NudgeState.AMBIGUOUS, code or "no_response", now)
            summary.ambiguous += 1
            return False
        _finish(nudge, NudgeState.FAILED, code or outcome.value, now)
        summary.failed += 1
        if outcome is Outcome.OPTED_OUT:
            patient.status = PatientStatus.OPTED_OUT
            patient.opted_out_at = now
            raise_alert(
                session,
                patient_id=patient_id,
                kind=AlertKind.OPT_OUT,
                severity=AlertSeverity.NORMAL,
                detail="carrier_21610",
                now=now,
            )
        elif outcome is Outcome.INVALID_NUMBER:
            # Stop texting a number that cannot receive SMS until a clinician fixes it.
            patient.status = PatientStatus.PAUSED
            raise_alert(
                session,
                patient_id=patient_id,
                kind=AlertKind.INVALID_NUMBER,
                severity=AlertSeverity.HIGH,
                detail=f"code_{code}",
                now=now,
            )
    log.warning("nudge %s failed: %s (code %s)", nudge_id, failure.outcome, code)
    return False
