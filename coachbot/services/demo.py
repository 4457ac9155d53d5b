"""Demo data for `make run`: a clinician to sign in as and a few patients already opted in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.patient_status import Event, transition
from coachbot.domain.states import Role
from coachbot.models import Patient, StaffUser
from coachbot.services import audit
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient
from coachbot.services.staff import create_staff_user
from coachbot.services.status_changes import patient_state
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway

DEMO_EMAIL = "clinician@demo.coachbot.test"
# A fixed, published password is acceptable only because demo data is refused in production.
DEMO_PASSWORD = "demo-clinician-password"  # noqa: S105  (published demo login)

_DEMO_PATIENTS = (
    EnrollmentRequest(
        first_name="Maya",
        phone="+16175550101",
        timezone="America/New_York",
        tracks="sleep,exercise,mindfulness",
        homework=("10 minutes of word-finding cards",),
    ),
    EnrollmentRequest(
        first_name="Lucía",
        phone="+16175550102",
        timezone="America/Los_Angeles",
        language="es",
        tracks="exercise,diet,rehab",
        homework=("5 sit-to-stand repetitions, twice",),
    ),
    EnrollmentRequest(
        first_name="Tom",
        phone="+16175550103",
        timezone="Europe/London",
        tracks="sleep,diet,rehab",
        checkin=True,
        homework=("the attention worksheet",),
    ),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    patients: int


def seed_demo(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> DemoLogin:
    """Idempotent: a second run adds nothing and prints the same login. Development data,
    so a transaction per account and per patient step (as their services commit) is fine."""
    if settings.env == "production":
        raise RuntimeError("demo data is refused in production")
    with sessions() as session:
        has_clinician = session.scalar(select(StaffUser.id).where(StaffUser.email == DEMO_EMAIL))
    if has_clinician is None:
        create_staff_user(
            sessions,
            email=DEMO_EMAIL,
            role=Role.CLINICIAN,
            password=DEMO_PASSWORD,
            now=now,
            actor="demo",
            display_name="Dr. Demo",
        )
    for request in _DEMO_PATIENTS:
        with sessions() as session:
            known = session.scalar(select(Patient.id).where(Patient.phone_e164 == request.phone))
        if known is not None:
            continue
        patient = enroll_patient(
            sessions,
            gateway,
            library,
            settings,
            dataclasses.replace(request, clinician_email=DEMO_EMAIL, consent="demo data"),
            now=now,
            actor="demo",
        )
        _opt_in(sessions, patient.id, now)
    with sessions() as session:
        count = len(session.scalars(select(Patient.id)).all())
    return DemoLogin(DEMO_EMAIL, DEMO_PASSWORD, count)


def _opt_in(sessions: sessionmaker[Session], patient_id: int, now: dt.datetime) -> None:
    """Demo phones cannot reply YES from a real handset; they are marked opted in."""
    with sessions.begin() as session:
        patient = session.get_one(Patient, patient_id)
        outcome = transition(patient_state(session, patient), Event.OPT_IN)
        patient.status = outcome.status
        patient.paused_by = outcome.paused_by
        patient.opted_in_at = now
        audit.record(
            session,
            actor="demo",
            action="consent.opt_in",
            patient_id=patient.id,
            now=now,
            detail="demo data",
        )
