"""A cohort of due nudges for the multi-process tests and the reliability suite (proof/):
many patients written in two bulk statements, each with one daily 08:30 sleep check that
falls due at `MONDAY_0830_NEW_YORK`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.states import PatientStatus
from coachbot.models import Nudge, Patient, TrackSchedule
from tests.support.builders import MONDAY_0830_NEW_YORK

ENROLLED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def cohort_phone(i: int) -> str:
    """The i-th patient's number: distinct for every i below 10,000."""
    return f"+1617{5550000 + i:07d}"[:12]


def make_cohort(
    factory: sessionmaker[Session], count: int, *, consent_method: str = "test"
) -> None:
    """`count` active patients in New York, each with a daily 08:30 sleep check."""
    with factory() as session, session.begin():
        session.execute(
            insert(Patient),
            [
                {
                    "first_name": f"P{i}",
                    "phone_e164": cohort_phone(i),
                    "timezone": "America/New_York",
                    "language": "en",
                    "status": PatientStatus.ACTIVE,
                    "consent_at": ENROLLED,
                    "consent_method": consent_method,
                    "opted_in_at": ENROLLED,
                    "enrolled_at": ENROLLED,
                    "updated_at": ENROLLED,
                }
                for i in range(count)
            ],
        )
        ids = session.scalars(select(Patient.id)).all()
        session.execute(
            insert(TrackSchedule),
            [
                {
                    "patient_id": pid,
                    "track": "sleep",
                    "local_times": "08:30",
                    "days_of_week": "0123456",
                    # Planned from just before today's slot: one due nudge per patient.
                    "planned_through": MONDAY_0830_NEW_YORK - dt.timedelta(minutes=1),
                    "updated_at": ENROLLED,
                }
                for pid in ids
            ],
        )


def nudge_states(factory: sessionmaker[Session]) -> dict[str, int]:
    """How many nudges are in each state."""
    with factory() as session:
        rows = session.execute(select(Nudge.state, func.count()).group_by(Nudge.state)).all()
    return {str(state): int(n) for state, n in rows}
