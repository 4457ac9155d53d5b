"""The patient page's handwriting strip (issue #16 item 4): one cell per local day, oldest
first, with the day's stored samples and who sent each, so a clinician compares a change in
handwriting at a glance. The days are the close-watch period so far while the patient is in
it, else the last 14 days; a day without a sample is a cell of its own, shown as empty.

Only samples in state "stored" are shown: a pending one has no picture yet, a refused one
was kept nowhere."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import Caregiver, MediaSample, Patient
from coachbot.queries.caregivers import close_watch_of

STRIP_DAYS = 14
STORED = "stored"


@dataclass(frozen=True)
class StripSample:
    id: int
    sender: str  # "Maya" or "Sam (caregiver)"
    received_at: dt.datetime


@dataclass
class StripDay:
    day: dt.date
    samples: list[StripSample] = field(default_factory=list)


@dataclass(frozen=True)
class Strip:
    days: list[StripDay]
    close_watch: bool  # the days are the close-watch period so far

    @property
    def total(self) -> int:
        return sum(len(d.samples) for d in self.days)


def strip_days(session: Session, patient: Patient, today: dt.date) -> tuple[dt.date, bool]:
    """The strip's first day, and whether it is the close-watch period's."""
    watch = close_watch_of(session, patient, today)
    if watch is not None and watch.day is not None:
        return watch.start, True
    return today - dt.timedelta(days=STRIP_DAYS - 1), False


def sample_strip(session: Session, patient: Patient, now: dt.datetime) -> Strip:
    today = now.astimezone(ZoneInfo(patient.timezone)).date()
    first, in_watch = strip_days(session, patient, today)
    days = {
        first + dt.timedelta(days=n): StripDay(first + dt.timedelta(days=n))
        for n in range((today - first).days + 1)
    }
    rows = session.execute(
        select(
            MediaSample.id,
            MediaSample.local_date,
            MediaSample.received_at,
            Caregiver.first_name.label("caregiver"),
        )
        .outerjoin(Caregiver, Caregiver.id == MediaSample.caregiver_id)
        .where(
            MediaSample.patient_id == patient.id,
            MediaSample.state == STORED,
            MediaSample.local_date >= first,
            MediaSample.local_date <= today,
        )
        .order_by(MediaSample.received_at, MediaSample.id)
    ).all()
    for row in rows:
        sender = f"{row.caregiver} (caregiver)" if row.caregiver else patient.first_name
        days[row.local_date].samples.append(StripSample(row.id, sender, row.received_at))
    return Strip(list(days.values()), in_watch)


def stored_sample(session: Session, patient_id: int, sample_id: int) -> str | None:
    """The storage key of one of this patient's stored samples, or None."""
    key = session.scalar(
        select(MediaSample.storage_key).where(
            MediaSample.id == sample_id,
            MediaSample.patient_id == patient_id,
            MediaSample.state == STORED,
        )
    )
    return str(key) if key is not None else None
