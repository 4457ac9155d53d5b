"""Demo data for `make run`: a clinic with 90 days of history and a login for each role.

The logins are fixed and published, which is acceptable only because demo data is refused
in production. The patients and their history are played through the real pipeline by
`coachbot.services.demo_history`; the cast is in `coachbot.services.demo_cast`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary
from coachbot.domain.states import Role
from coachbot.models import OnCallOverride, Patient, StaffUser
from coachbot.services.demo_cast import CAST, Persona
from coachbot.services.demo_history import HISTORY, HistoryReport, play_history
from coachbot.services.demo_samples import seed_demo_samples
from coachbot.services.oncall import set_override
from coachbot.services.staff import create_staff_user
from coachbot.settings import Settings
from coachbot.sms.gateway import SmsGateway


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


# Published on purpose (README, `make run`): development only, refused in production.
DEMO_LOGINS = (
    DemoLogin(Role.CLINICIAN, "clinician@demo.coachbot.test", "demo-clinician-password"),
    DemoLogin(Role.OPERATOR, "operator@demo.coachbot.test", "demo-operator-password"),
    DemoLogin(Role.ADMIN, "admin@demo.coachbot.test", "demo-admin-password"),
)
DEMO_EMAIL = DEMO_LOGINS[0].email
DEMO_PASSWORD = DEMO_LOGINS[0].password
# The demo clinician's mobile, where the on-call pages go (a 555-01xx fiction number).
DEMO_CLINICIAN_PHONE = "+16175550190"


class DemoRefused(RuntimeError):
    """Demo data may not be written here (a production configuration)."""


@dataclass(frozen=True)
class DemoResult:
    logins: tuple[DemoLogin, ...]
    patients: int  # demo patients in the database
    history: HistoryReport | None  # None: the history was there already, or skipped
    skipped_because: str | None = None

    def as_lines(self) -> list[str]:
        if self.history is not None:
            h = self.history
            return [
                f"demo clinic seeded: {h.patients} patients, {HISTORY.days} days of history"
                f" ({h.ticks} clock ticks, {h.texts_in} texts in)"
            ]
        return [self.skipped_because or f"demo data already there ({self.patients} patients)"]


def seed_demo(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
    cast: tuple[Persona, ...] = CAST,
) -> DemoResult:
    """Idempotent: the logins are created once, and the history is played only into a
    clinic that has no patients yet; a second run changes nothing and says so."""
    if settings.env == "production":
        raise DemoRefused("demo data is refused in production (COACHBOT_ENV=production)")
    clinician = _ensure_logins(session_factory, settings, now)
    with session_factory() as session:
        demo_phones = [p.phone for p in cast]
        ours = session.scalar(
            select(func.count(Patient.id)).where(Patient.phone_e164.in_(demo_phones))
        )
        others = session.scalar(
            select(func.count(Patient.id)).where(Patient.phone_e164.not_in(demo_phones))
        )
    if ours:
        return DemoResult(DEMO_LOGINS, ours or 0, None)
    if others:
        # Playing 90 days of clock ticks would also run over these patients' records.
        why = f"demo history skipped: the database already has {others} other patients"
        return DemoResult(DEMO_LOGINS, 0, None, skipped_because=why)
    history = play_history(session_factory, gateway, library, settings, clinician, now, cast)
    seed_demo_samples(session_factory, settings, demo_phones, now)  # handwriting by MMS
    return DemoResult(DEMO_LOGINS, history.patients, history)


def _ensure_logins(
    session_factory: sessionmaker[Session], settings: Settings, now: dt.datetime
) -> StaffUser:
    start = now - HISTORY - dt.timedelta(days=1)  # staff exist before the first enrolment
    with session_factory() as session:
        existing = set(
            session.scalars(
                select(StaffUser.email).where(
                    StaffUser.email.in_([login.email for login in DEMO_LOGINS])
                )
            )
        )
        on_call_set = bool(session.scalar(select(func.count()).select_from(OnCallOverride)))
    for login in DEMO_LOGINS:
        if login.email in existing:
            continue
        create_staff_user(
            session_factory,
            email=login.email,
            role=login.role,
            password=login.password,
            now=start,
            actor="demo",
            display_name=_DISPLAY_NAMES[login.role],
            phone=DEMO_CLINICIAN_PHONE if login.role == Role.CLINICIAN else None,
            default_region=settings.default_region,
        )
    if not on_call_set:
        # Someone must be on call for the demo's red flags to page anybody.
        set_override(
            session_factory, primary_email=DEMO_EMAIL, backup_email=None, now=start, actor="demo"
        )
    with session_factory() as session:
        clinician = session.scalars(select(StaffUser).where(StaffUser.email == DEMO_EMAIL)).one()
        session.expunge(clinician)
    return clinician


def demo_logins_present(session: Session) -> tuple[DemoLogin, ...]:
    """The demo logins whose accounts exist here, for `coachbot serve` to print; none in
    production, where a published password must never be advertised."""
    emails = set(
        session.scalars(
            select(StaffUser.email).where(
                StaffUser.email.in_([login.email for login in DEMO_LOGINS]),
                StaffUser.is_active.is_(True),
            )
        )
    )
    return tuple(login for login in DEMO_LOGINS if login.email in emails)


def ready_lines(url: str, logins: tuple[DemoLogin, ...]) -> list[str]:
    """What `coachbot serve` prints once it listens, last, so `make run` ends with it."""
    lines = [f"coachbot is running at {url}  (Ctrl+C stops it)"]
    if logins:
        lines.append("sign in as:")
        width = max(len(login.role) for login in logins)
        lines += [f"  {login.role:<{width}}  {login.email} / {login.password}" for login in logins]
    return lines


_DISPLAY_NAMES: dict[str, str] = {
    Role.CLINICIAN: "Dr. Dana Reyes",
    Role.OPERATOR: "Olu Operator",
    Role.ADMIN: "Ari Admin",
}
