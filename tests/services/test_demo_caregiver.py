"""The demo's close-watch patient: enrolled with a caregiver, who is invited by the tick,
says YES, and answers each day's check through the real pipeline, with one concern."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from coachbot.domain.states import AlertKind, PatientStatus
from coachbot.models import Alert, Caregiver, CaregiverCheck, OutboundMessage
from coachbot.runtime import Runtime
from coachbot.services.demo import seed_demo
from coachbot.services.demo_cast import CAST

END = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York


def test_the_close_watch_caregiver_answers_every_check_and_worries_once(
    runtime: Runtime,
) -> None:
    clara = next(p for p in CAST if p.caregiver is not None)
    result = seed_demo(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, END, (clara,)
    )
    assert result.history is not None
    with runtime.read_session_factory() as db:
        caregiver = db.scalars(select(Caregiver)).one()
        assert (caregiver.first_name, caregiver.status) == ("Jon", PatientStatus.ACTIVE)
        invites = db.scalars(
            select(OutboundMessage.id).where(OutboundMessage.kind == "caregiver_invite")
        ).all()
        assert len(invites) == 1
        checks = db.execute(
            select(CaregiverCheck.local_date, CaregiverCheck.state, CaregiverCheck.concern)
            .where(CaregiverCheck.kind == "observation")
            .order_by(CaregiverCheck.local_date)
        ).all()
        assert len(checks) >= 6
        assert {state for _, state, _ in checks} == {"answered"}
        assert [c for _, _, c in checks].count("worried") == 1
        concerns = db.scalars(
            select(Alert.id).where(Alert.kind == AlertKind.CAREGIVER_CONCERN)
        ).all()
        assert len(concerns) == 1
