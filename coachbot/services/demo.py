"""Demo data for `make run`: a clinician to sign in as and a few patients already opted in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.states import PatientStatus, Role
from coachbot.models import Patient, StaffUser
from coachbot.services import audit
from coachbot.services.enrollment import EnrollmentRequest, enroll_patient
from coachbot.services.staff import create_staff_user
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
    so one transaction per account and per patient (as their services commit) is fine."""
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
    with sessions() as session:
        for request in _DEMO_PATIENTS:
            known = session.scalar(select(Patient.id).where(Patient.phone_e164 == request.phone))
            if known is not None:
                continue
            patient = enroll_patient(
                session,
                gateway,
                library,
                settings,
                dataclasses.replace(request, clinician_email=DEMO_EMAIL, consent="demo data"),
                now=now,
                actor="demo",
            )
            # Demo phones cannot reply YES from a real handset; mark them opted in.
            patient.status = PatientStatus.ACTIVE
            patient.opted_in_at = now
            audit.record(
                session,
                actor="demo",
                action="consent.opt_in",
                patient_id=patient.id,
                now=now,
                detail="demo data",
            )
            session.commit()
        count = len(session.scalars(select(Patient.id)).all())
    return DemoLogin(DEMO_EMAIL, DEMO_PASSWORD, count)
