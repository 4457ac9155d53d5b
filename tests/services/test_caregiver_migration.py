"""Migration 0013 on a database with caregiver numbers on patients: each number becomes one
caregiver pending consent, not invited, linked to every patient that gave it; the patients'
column goes; the downgrade brings it back with each patient's number. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from coachbot.migrate import downgrade, upgrade

# A PostgreSQL schema of its own per test, dropped afterwards (the fixture 0011's test uses).
from tests.services.test_consent_migration import postgres_schema_url  # noqa: F401

WHEN = "2026-11-20 10:00:00+00:00"
SHARED = "+16175550711"
# (patient id, phone, caregiver number)
PATIENTS = [
    (1, "+16175550701", SHARED),
    (2, "+16175550702", SHARED),
    (3, "+16175550703", "+16175550713"),
    (4, "+16175550704", None),
]


def _check(url: str) -> None:
    upgrade(url, "0012")
    engine = create_engine(url)
    with engine.begin() as c:
        for patient_id, phone, caregiver in PATIENTS:
            c.execute(
                text(
                    "INSERT INTO patients (id, first_name, phone_e164, timezone, language,"
                    " status, checkin_enabled, consent_at, consent_method, enrolled_at,"
                    " updated_at, caregiver_phone_e164) VALUES (:id, 'P', :phone,"
                    " 'America/Chicago', 'es', 'active', false, :at, 'test', :at, :at, :cg)"
                ),
                {"id": patient_id, "phone": phone, "at": WHEN, "cg": caregiver},
            )
    upgrade(url)
    with engine.connect() as c:
        caregivers = c.execute(
            text(
                "SELECT phone_e164, first_name, language, timezone, status, invite_due_at,"
                " invited_at FROM caregivers ORDER BY phone_e164"
            )
        ).all()
        links = c.execute(
            text(
                "SELECT l.patient_id, c.phone_e164 FROM caregiver_links AS l JOIN caregivers"
                " AS c ON c.id = l.caregiver_id ORDER BY l.patient_id"
            )
        ).all()
    assert [tuple(r) for r in caregivers] == [
        (SHARED, "Caregiver", "es", "America/Chicago", "pending-consent", None, None),
        ("+16175550713", "Caregiver", "es", "America/Chicago", "pending-consent", None, None),
    ]
    assert [tuple(r) for r in links] == [(1, SHARED), (2, SHARED), (3, "+16175550713")]
    columns = {col["name"] for col in inspect(engine).get_columns("patients")}
    assert "caregiver_phone_e164" not in columns

    downgrade(url, "0012")
    with engine.connect() as c:
        back = c.execute(text("SELECT id, caregiver_phone_e164 FROM patients ORDER BY id")).all()
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("patients")}
    engine.dispose()
    assert [tuple(r) for r in back] == [(p, cg) for p, _, cg in PATIENTS]
    assert "ix_patients_caregiver_phone_e164" in indexes


def test_0013_moves_caregiver_numbers_to_caregivers_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'seeded.db'}")


def test_0013_moves_caregiver_numbers_to_caregivers_on_postgresql(
    postgres_schema_url: str,  # noqa: F811 (the fixture imported above)
) -> None:
    _check(postgres_schema_url)
