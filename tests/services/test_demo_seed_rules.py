"""The demo seed's rules, each on a database of its own: the same instant gives the same
clinic, production refuses it, and a clinic with its own patients gets no demo history."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import func, select

from coachbot.migrate import upgrade
from coachbot.models import AdherenceRecord, Patient, StaffUser
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.demo import DEMO_LOGINS, DemoRefused, demo_logins_present, seed_demo
from tests.conftest import TEST_DATABASE_URL
from tests.services.test_demo_seed import END, SAMPLE, _persona
from tests.support.builders import make_patient


def _outcomes(runtime: Runtime) -> list[tuple[object, ...]]:
    with runtime.read_session_factory() as s:
        return [
            tuple(row)
            for row in s.execute(
                select(
                    Patient.first_name,
                    AdherenceRecord.track,
                    AdherenceRecord.outcome,
                    AdherenceRecord.value,
                    AdherenceRecord.recorded_at,
                )
                .join(Patient, Patient.id == AdherenceRecord.patient_id)
                .order_by(AdherenceRecord.recorded_at, Patient.first_name, AdherenceRecord.track)
            )
        ]


def test_the_same_instant_gives_the_same_clinic(runtime: Runtime, tmp_path: Path) -> None:
    pair = (_persona("Maya"), _persona("Owen"))
    seed_demo(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, END, pair
    )
    if TEST_DATABASE_URL:
        pytest.skip("the second database of the pair is a SQLite file; PostgreSQL has one schema")
    second_url = f"sqlite:///{tmp_path / 'second.db'}"
    upgrade(second_url)
    second = build_runtime(dataclasses.replace(runtime.settings, database_url=second_url))
    try:
        seed_demo(
            second.session_factory, second.gateway, second.library, second.settings, END, pair
        )
        first_rows, second_rows = _outcomes(runtime), _outcomes(second)
    finally:
        second.close()
    assert len(first_rows) > 100
    assert first_rows == second_rows


def test_demo_data_is_refused_in_production(runtime: Runtime) -> None:
    production = dataclasses.replace(runtime.settings, env="production")
    with pytest.raises(DemoRefused, match="production"):
        seed_demo(runtime.session_factory, runtime.gateway, runtime.library, production, END)
    with runtime.read_session_factory() as s:
        assert s.scalar(select(func.count(StaffUser.id))) == 0


def test_a_clinic_with_its_own_patients_gets_the_logins_but_no_history(
    runtime: Runtime,
) -> None:
    with runtime.session_factory() as s:
        make_patient(s)
        s.commit()
    result = seed_demo(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, END, SAMPLE
    )
    assert result.history is None
    assert result.as_lines() == ["demo history skipped: the database already has 1 other patients"]
    with runtime.read_session_factory() as s:
        assert s.scalar(select(func.count(Patient.id))) == 1
        assert demo_logins_present(s) == DEMO_LOGINS
