"""The demo clinic: logins for each role, and history made by the real pipeline.

One seed of a sample of the cast (one of each kind) serves most tests here: playing 90 days
takes seconds, so it is played once per module into its own database and only read after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coachbot.domain.states import AlertKind, AlertStatus, PatientStatus, Role
from coachbot.models import (
    AdherenceRecord,
    Alert,
    InboundMessage,
    Nudge,
    OutboundMessage,
    Page,
    Patient,
    StaffUser,
)
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.demo import (
    DEMO_LOGINS,
    demo_logins_present,
    ready_lines,
    seed_demo,
)
from coachbot.services.demo_cast import CAST, Persona
from coachbot.services.staff import password_hasher
from coachbot.settings import Settings
from tests.conftest import fresh_database

END = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York
SAMPLE_NAMES = ("Maya", "Owen", "Daniel", "Nora", "Elliot", "Ada", "Rosa", "Iris", "Ben")
SAMPLE = tuple(p for p in CAST if p.first_name in SAMPLE_NAMES)


def _persona(name: str) -> Persona:
    return next(p for p in CAST if p.first_name == name)


@pytest.fixture(scope="module")
def seeded(_migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Every test of this module reads this one seed; none asks for a per-test database,
    which on PostgreSQL would empty the shared schema under it."""
    url = fresh_database(_migrated_template, tmp_path_factory.mktemp("demo"))
    runtime = build_runtime(Settings(database_url=url, clinic_phone="+16175550199"))
    result = seed_demo(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, END, SAMPLE
    )
    assert result.history is not None
    assert result.history.patients == len(SAMPLE)
    yield runtime
    runtime.close()


@pytest.fixture
def db(seeded: Runtime) -> Iterator[Session]:
    with seeded.read_session_factory() as session:
        yield session


def _utc(instant: dt.datetime) -> dt.datetime:
    # SQLite hands aggregates (MIN, MAX) back without the column's zone.
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def _patient(db: Session, name: str) -> Patient:
    return db.scalars(select(Patient).where(Patient.first_name == name)).one()


def test_there_is_a_login_for_each_role_with_its_published_password(db: Session) -> None:
    users = {u.email: u for u in db.scalars(select(StaffUser))}
    assert [login.role for login in DEMO_LOGINS] == [Role.CLINICIAN, Role.OPERATOR, Role.ADMIN]
    for login in DEMO_LOGINS:
        user = users[login.email]
        assert user.role == login.role
        assert password_hasher.verify(user.password_hash, login.password)
    assert demo_logins_present(db) == DEMO_LOGINS


def test_every_demo_patient_belongs_to_the_demo_clinician(db: Session) -> None:
    clinician = db.scalars(select(StaffUser).where(StaffUser.role == Role.CLINICIAN)).one()
    owners = set(db.scalars(select(Patient.clinician_id)))
    assert owners == {clinician.id}
    assert db.scalar(select(func.count(Patient.id))) == len(SAMPLE)


def test_the_history_spans_ninety_days_and_was_made_by_the_pipeline(db: Session) -> None:
    first_sent, last_sent = db.execute(
        select(func.min(Nudge.sent_at), func.max(Nudge.sent_at)).where(Nudge.sent_at.is_not(None))
    ).one()
    assert first_sent is not None
    assert last_sent is not None
    assert (END - _utc(first_sent)).days >= 89
    assert (END - _utc(last_sent)) < dt.timedelta(days=1)
    # Every text in came through handle_inbound with the demo's provider sids, every answer
    # was recorded against a nudge the dispatcher sent.
    sids = set(db.scalars(select(InboundMessage.provider_sid)))
    assert len(sids) > 1000
    assert all(sid.startswith("SMdemo") for sid in sids)
    outcomes = dict(
        db.execute(
            select(AdherenceRecord.outcome, func.count()).group_by(AdherenceRecord.outcome)
        ).all()
    )
    assert {"done", "skipped", "missed", "partial"} <= set(outcomes)
    unsent = db.scalar(
        select(func.count(AdherenceRecord.id))
        .join(Nudge, Nudge.id == AdherenceRecord.nudge_id)
        .where(Nudge.sent_at.is_(None))
    )
    assert unsent == 0


def test_only_a_patient_still_waiting_for_yes_is_asked_for_it(db: Session) -> None:
    for patient in db.scalars(select(Patient)):
        welcomes = db.scalars(
            select(OutboundMessage.created_at).where(
                OutboundMessage.patient_id == patient.id, OutboundMessage.kind == "welcome"
            )
        ).all()
        assert len(welcomes) == 1, patient.first_name
        if patient.first_name == "Iris":
            assert patient.status == PatientStatus.PENDING_CONSENT
        else:
            assert patient.status == PatientStatus.ACTIVE, patient.first_name
            assert patient.opted_in_at is not None
            assert welcomes[0] <= patient.opted_in_at


def test_red_flags_page_the_on_call_and_a_few_stay_open(db: Session) -> None:
    flags = {
        a.patient_id: a for a in db.scalars(select(Alert).where(Alert.kind == AlertKind.RED_FLAG))
    }
    clinician_id = db.scalars(select(StaffUser.id).where(StaffUser.role == Role.CLINICIAN)).one()
    nora, elliot, ada, rosa = (
        flags[_patient(db, name).id] for name in ("Nora", "Elliot", "Ada", "Rosa")
    )
    assert (nora.severity, nora.status) == ("urgent", AlertStatus.OPEN)
    assert (rosa.severity, rosa.status) == ("urgent", AlertStatus.ACKNOWLEDGED)
    assert (elliot.severity, elliot.status) == ("high", AlertStatus.ACKNOWLEDGED)
    assert rosa.acknowledged_by_id == elliot.acknowledged_by_id == clinician_id
    assert ada.status == AlertStatus.RESOLVED
    assert ada.resolution_note == _persona("Ada").red_flags[0].resolved_note
    for alert in (nora, elliot, ada, rosa):
        # The patient's own words are kept with the alert, and the on-call was paged.
        assert alert.inbound_message_id is not None
        pages = db.scalar(select(func.count(Page.id)).where(Page.alert_id == alert.id))
        assert pages is not None
        assert pages >= 1


def test_each_behaviour_shows_in_the_answers(db: Session) -> None:
    def answered(name: str, days: tuple[int, int]) -> float:
        patient = _patient(db, name)
        rows = db.execute(
            select(AdherenceRecord.outcome)
            .join(Nudge, Nudge.id == AdherenceRecord.nudge_id)
            .where(
                AdherenceRecord.patient_id == patient.id,
                Nudge.sent_at >= END - dt.timedelta(days=days[0]),
                Nudge.sent_at < END - dt.timedelta(days=days[1]),
            )
        ).all()
        assert rows, name
        return sum(outcome != "missed" for (outcome,) in rows) / len(rows)

    assert answered("Maya", (90, 0)) > 0.85
    assert answered("Owen", (14, 0)) < answered("Owen", (90, 40)) - 0.3
    daniel = _patient(db, "Daniel")
    last_text = db.scalar(
        select(func.max(InboundMessage.received_at)).where(InboundMessage.patient_id == daniel.id)
    )
    assert last_text is not None
    assert END - _utc(last_text) >= dt.timedelta(days=4)
    spanish = db.scalars(
        select(InboundMessage.body).where(InboundMessage.patient_id == _patient(db, "Rosa").id)
    ).all()
    assert "SI" in spanish
    assert any("minutos" in body for body in spanish)


def test_every_text_names_the_demo_clinic_never_a_placeholder(db: Session) -> None:
    bodies = db.scalars(select(OutboundMessage.body)).all()
    assert any("Riverside Recovery Clinic" in body for body in bodies)
    assert not [b for b in bodies if "Your care team has" in b or "Your Your" in b]


def test_a_second_seed_changes_nothing_and_says_so(seeded: Runtime) -> None:
    def counts() -> tuple[int, ...]:
        with seeded.read_session_factory() as s:
            return tuple(
                s.scalar(select(func.count()).select_from(table)) or 0
                for table in (StaffUser, Patient, Nudge, InboundMessage, OutboundMessage)
            )

    before = counts()
    again = seed_demo(
        seeded.session_factory,
        seeded.gateway,
        seeded.library,
        seeded.settings,
        END + dt.timedelta(hours=1),
        SAMPLE,
    )
    assert again.history is None
    assert again.as_lines() == [f"demo data already there ({len(SAMPLE)} patients)"]
    assert counts() == before


def test_the_ready_block_is_the_url_then_one_line_per_login() -> None:
    assert ready_lines("http://127.0.0.1:5000/", DEMO_LOGINS) == [
        "coachbot is running at http://127.0.0.1:5000/  (Ctrl+C stops it)",
        "sign in as:",
        "  clinician  clinician@demo.coachbot.test / demo-clinician-password",
        "  operator   operator@demo.coachbot.test / demo-operator-password",
        "  admin      admin@demo.coachbot.test / demo-admin-password",
    ]
    assert ready_lines("http://127.0.0.1:5000/", ()) == [
        "coachbot is running at http://127.0.0.1:5000/  (Ctrl+C stops it)"
    ]
