"""Read side: adherence per patient and track, aggregated in SQL (never a Python loop over rows).

Partial answers ("2 of 3", "half", outcome ``partial``) are counted as their own outcome
everywhere they are shown; the rate and streak arithmetic is in `coachbot.domain.adherence`.
The homework table counts only a done, since "2 of 3" does not say which items were done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from coachbot.domain.adherence import PARTIAL_CREDIT as PARTIAL_CREDIT
from coachbot.domain.adherence import adherence_pct as adherence_pct
from coachbot.domain.adherence import adherence_rate
from coachbot.domain.adherence import streak_from_instants as streak_from_instants
from coachbot.domain.coaching import FOLLOWUP_SUFFIX
from coachbot.domain.states import AdherenceOutcome, NudgeState
from coachbot.models import AdherenceRecord, Nudge, Patient

_SENT_STATES = (NudgeState.SENT, NudgeState.DELIVERED)
# The unit of a partial answer's value: the share done, 0 < value < 1.
FRACTION_UNIT = "fraction"


@dataclass(frozen=True)
class TrackAdherence:
    patient_id: int
    track: str
    sent: int
    done: int
    skipped: int
    missed: int
    last_reply_at: dt.datetime | None
    partial: int = 0

    @property
    def rate(self) -> float | None:
        """Done plus half of each partial, over sent; None if nothing was sent."""
        rate = adherence_rate(self.done, self.partial, self.sent)
        return None if rate is None else round(rate, 3)

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["last_reply_at"] = self.last_reply_at.isoformat() if self.last_reply_at else None
        data["rate"] = self.rate
        return data


def patient_ids(session: Session) -> list[int]:
    """Every patient's id, in order: who a clinic-wide report covers."""
    return list(session.scalars(select(Patient.id).order_by(Patient.id)))


def adherence_by_track(
    session: Session,
    *,
    now: dt.datetime,
    days: int,
    patient_ids: list[int] | None = None,
) -> list[TrackAdherence]:
    """Counts for nudges due in the last `days` days. A sent nudge with no reply by the end
    of its reply window counts as missed. Follow-ups are not counted: their answers are
    recorded on the nudge they follow up, so counting them would inflate "sent"."""
    since = now - dt.timedelta(days=days)
    outcome = AdherenceRecord.outcome
    window_over = and_(
        Nudge.reply_window_ends_at.is_not(None),
        Nudge.reply_window_ends_at <= now,
    )
    query = (
        select(
            Nudge.patient_id,
            Nudge.track,
            func.count(Nudge.id).filter(Nudge.state.in_(_SENT_STATES)).label("sent"),
            func.count(AdherenceRecord.id).filter(outcome == AdherenceOutcome.DONE).label("done"),
            func.count(AdherenceRecord.id)
            .filter(outcome == AdherenceOutcome.SKIPPED)
            .label("skipped"),
            func.count(AdherenceRecord.id)
            .filter(outcome == AdherenceOutcome.PARTIAL)
            .label("partial"),
            func.sum(
                case(
                    (
                        and_(
                            Nudge.state.in_(_SENT_STATES),
                            AdherenceRecord.id.is_(None),
                            window_over,
                        ),
                        1,
                    ),
                    (outcome == AdherenceOutcome.MISSED, 1),
                    else_=0,
                )
            ).label("missed"),
            func.max(AdherenceRecord.recorded_at).label("last_reply_at"),
        )
        .outerjoin(AdherenceRecord, AdherenceRecord.nudge_id == Nudge.id)
        .where(
            Nudge.due_at >= since,
            Nudge.due_at <= now,
            Nudge.occurrence_key.not_like(f"%{FOLLOWUP_SUFFIX}"),
        )
        .group_by(Nudge.patient_id, Nudge.track)
        .order_by(Nudge.patient_id, Nudge.track)
    )
    if patient_ids is not None:
        query = query.where(Nudge.patient_id.in_(patient_ids))
    rows = session.execute(query).all()
    result = []
    for row in rows:
        last = row.last_reply_at
        if last is not None and last.tzinfo is None:
            # Aggregates bypass the column type on SQLite; the stored value is UTC.
            last = last.replace(tzinfo=dt.UTC)
        elif isinstance(last, str):
            last = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC)
        result.append(
            TrackAdherence(
                patient_id=row.patient_id,
                track=row.track,
                sent=int(row.sent or 0),
                done=int(row.done or 0),
                skipped=int(row.skipped or 0),
                missed=int(row.missed or 0),
                last_reply_at=last,
                partial=int(row.partial or 0),
            )
        )
    return result


def current_streak(
    session: Session, *, patient: Patient, track: str, now: dt.datetime, limit_days: int = 60
) -> int:
    """Consecutive local days, ending today, with a DONE for this track."""
    zone = ZoneInfo(patient.timezone)
    instants = session.scalars(
        select(AdherenceRecord.recorded_at).where(
            AdherenceRecord.patient_id == patient.id,
            AdherenceRecord.track == track,
            AdherenceRecord.outcome == AdherenceOutcome.DONE,
            AdherenceRecord.recorded_at >= now - dt.timedelta(days=limit_days),
        )
    ).all()
    return streak_from_instants(instants, zone, now)
