"""Claiming: due nudges are leased, gated again, rendered and moved to `sending`.

The claim commits before any network call. Every claimed nudge then passes the one
sendability check (consent, lateness, window and quiet hours, the daily cap: any of them
may have changed since it was planned), is rendered, and the survivors move to `sending`
in one conditional statement that re-checks consent atomically, so a STOP stored before
that commit means they are never sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.content.lint import clinician_text_problem
from coachbot.domain import schedule as sched
from coachbot.domain import sendability
from coachbot.domain.program import CLAIM_LEASE
from coachbot.domain.states import NudgeState
from coachbot.models import HomeworkItem, Nudge, Patient
from coachbot.services.programs import PolicyBook, load_policy_book
from coachbot.services.schedules import DispatchSettings
from coachbot.settings import Settings
from coachbot.store import nudges as nudge_store

if TYPE_CHECKING:
    from coachbot.services.tick import TickSummary

log = logging.getLogger(__name__)

CLAIM_BATCH = 200
RECENT_VARIANTS = dt.timedelta(days=7)
# States that count against the daily cap: anything that may have reached the phone.
_CAPPED_STATES = (NudgeState.SENDING, NudgeState.SENT, NudgeState.DELIVERED, NudgeState.AMBIGUOUS)


def recover_expired_leases(session_factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Claims whose dispatcher died: unsent ones go back to the queue; ones that may have
    been on the wire become ambiguous instead of being sent again."""
    with session_factory() as session, session.begin():
        return nudge_store.release_expired_leases(session, now)


def claim_batch(session_factory: sessionmaker[Session], now: dt.datetime) -> list[int]:
    """Claims the next batch of due nudges and commits the claim; their ids."""
    with session_factory() as session, session.begin():
        # Named: the crash-point tests read the claimed ids from this frame at its commit.
        ids = nudge_store.claim_due(session, now, now + CLAIM_LEASE, CLAIM_BATCH)
        return ids  # noqa: RET504


@dataclass
class Ready:
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


@dataclass
class _Batch:
    """What one claimed batch needs besides its rows, read once in its transaction."""

    library: MessageLibrary
    settings: Settings
    config: DispatchSettings
    book: PolicyBook
    now: dt.datetime
    sent_today: dict[int, int]
    recent: dict[tuple[int, str], list[str]]
    homework: dict[int, str]
    local_times: dict[str, tuple[ZoneInfo, str]] = field(default_factory=dict)
    finished: list[nudge_store.Final] = field(default_factory=list)
    requeued: list[nudge_store.Requeued] = field(default_factory=list)

    def zone_and_time(self, timezone: str) -> tuple[ZoneInfo, str]:
        """The zone and its local "HH:MM" now; a batch spans a handful of zones."""
        zoned = self.local_times.get(timezone)
        if zoned is None:
            zone = ZoneInfo(timezone)
            zoned = self.local_times[timezone] = (zone, self.now.astimezone(zone).strftime("%H:%M"))
        return zoned


_CLAIMED_COLUMNS = (
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


def prepare(
    session_factory: sessionmaker[Session],
    library: MessageLibrary,
    settings: Settings,
    ids: Sequence[int],
    now: dt.datetime,
    config: DispatchSettings,
    summary: TickSummary,
) -> list[Ready]:
    """Re-checks every claimed nudge, renders it, and moves the survivors to `sending` in one
    conditional statement.

    Columns, not ORM objects: building two mapped objects per nudge, and flushing them one
    by one, cost more than everything else this function does."""
    with session_factory() as session, session.begin():
        rows = session.execute(
            select(*_CLAIMED_COLUMNS)
            .join(Patient, Patient.id == Nudge.patient_id)
            .where(Nudge.id.in_(ids), Nudge.state == NudgeState.CLAIMED)
            .order_by(Nudge.send_at, Nudge.id)
        ).all()
        sent_today, recent = _history(session, {row.patient_id: row.timezone for row in rows}, now)
        homework = _homework_by_patient(
            session, [row.patient_id for row in rows if row.track == "rehab"]
        )
        batch = _Batch(
            library, settings, config, load_policy_book(session), now, sent_today, recent, homework
        )
        ready = [r for r in (_gate_and_render(batch, row, summary) for row in rows) if r]
        nudge_store.finish(session, batch.finished, now)
        nudge_store.requeue(session, batch.requeued, now)
        if not ready:
            return []
        moved = nudge_store.move_to_sending(
            session,
            [
                nudge_store.Rendered(r.nudge_id, r.template_id, r.variant_id, r.body, r.segments)
                for r in ready
            ],
            now,
            now + CLAIM_LEASE,
        )
        return [r for r in ready if r.nudge_id in moved]


def _gate_and_render(batch: _Batch, row: Any, summary: TickSummary) -> Ready | None:
    """The nudge ready for the wire, or None with its fate noted in the batch and summary."""
    pid = row.patient_id
    zone, local_time = batch.zone_and_time(row.timezone)
    rules = batch.book.rules(pid, row.track)
    verdict = sendability.check(
        sendability.Recipient(row.status, zone, row.quiet_start, row.quiet_end),
        batch.now,
        sendability.Rules(
            batch.config.window,
            quiet_policy=rules.quiet_policy,
            lateness=sendability.Lateness(row.due_at, rules.stale_limit),
            daily_cap=batch.config.daily_cap,
            sent_today=batch.sent_today[pid],
        ),
    )
    if verdict.action == "missed":
        batch.finished.append(nudge_store.Final(row.id, NudgeState.MISSED, verdict.reason))
        summary.too_late += 1
        return None
    if verdict.action == "defer" and verdict.send_at is not None:
        batch.requeued.append(nudge_store.Requeued(row.id, verdict.send_at))
        summary.deferred += 1
        return None
    if not verdict.may_send_now:
        batch.finished.append(nudge_store.Final(row.id, NudgeState.SKIPPED, verdict.reason))
        summary.skipped += 1
        return None
    variables: dict[str, object] = {
        "first_name": row.first_name,
        "clinic_name": batch.settings.clinic_name,
        "clinic_phone": batch.settings.clinic_phone,
        "local_time": local_time,
    }
    if row.track == "rehab":
        variables["homework"] = batch.homework.get(pid) or "your home exercises"
    # A row planned with a template (a follow-up, a re-engagement) keeps it; otherwise the
    # track's nudge family.
    message = batch.library.render(
        row.template_id or f"nudge.{row.track}",
        row.language,
        variables,
        seed=f"{pid}:{row.occurrence_key}",
        avoid=batch.recent.get((pid, row.track), []),
    )
    batch.sent_today[pid] += 1
    if message.variant_id:
        batch.recent.setdefault((pid, row.track), []).append(message.variant_id)
    return Ready(
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
