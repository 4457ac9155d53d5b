"""Migration 0011 on a database with patients: numbers already opted out go on the suppression
list (with a ledger row), and each paused patient learns who paused them from the audit log,
on SQLite and PostgreSQL; the downgrade removes it all again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from coachbot.migrate import downgrade, upgrade
from tests.conftest import _schema_url

WHEN = "2026-11-20 10:00:00+00:00"
# (phone, status, audit actions in order) -> expected paused_by
PATIENTS = [
    ("+16175550301", "opted-out", [], None),
    ("+16175550302", "paused", ["patient.pause", "consent.revocation_pause"], "patient"),
    ("+16175550303", "paused", ["consent.revocation_pause", "patient.pause"], "clinician"),
    ("+16175550304", "paused", [], "system"),
    ("+16175550305", "active", ["patient.pause"], None),
]


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _schema_url(postgres_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _seed_at_0010(url: str) -> None:
    upgrade(url, "0010")
    engine = create_engine(url)
    with engine.begin() as c:
        for n, (phone, status, actions, _) in enumerate(PATIENTS, start=1):
            c.execute(
                text(
                    "INSERT INTO patients (id, first_name, phone_e164, timezone, language,"
                    " status, checkin_enabled, consent_at, consent_method, enrolled_at,"
                    " updated_at, opted_out_at) VALUES (:id, 'P', :phone, 'America/New_York',"
                    " 'en', :status, false, :at, 'test', :at, :at, :out)"
                ),
                {
                    "id": n,
                    "phone": phone,
                    "status": status,
                    "at": WHEN,
                    "out": WHEN if status == "opted-out" else None,
                },
            )
            for minute, action in enumerate(actions):
                c.execute(
                    text(
                        "INSERT INTO audit_log (at, actor, action, patient_id, outcome)"
                        " VALUES (:at, 'x', :action, :pid, 'ok')"
                    ),
                    {"at": f"2026-11-21 10:0{minute}:00+00:00", "action": action, "pid": n},
                )
    engine.dispose()


def _check_upgrade_and_downgrade(url: str) -> None:
    _seed_at_0010(url)
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as c:
        paused_by: dict[str, str | None] = {}
        for phone, by in c.execute(text("SELECT phone_e164, paused_by FROM patients")):
            paused_by[phone] = by
        suppressed = c.execute(
            text("SELECT number_e164, source, patient_id FROM suppressed_numbers")
        ).all()
        ledger = c.execute(text("SELECT number_e164, event, source FROM consent_events")).all()
    assert paused_by == {phone: expected for phone, _, _, expected in PATIENTS}
    assert [tuple(r) for r in suppressed] == [("+16175550301", "migrated", 1)]
    assert [tuple(r) for r in ledger] == [("+16175550301", "suppression_added", "migrated")]

    downgrade(url, "0010")
    tables = set(inspect(engine).get_table_names())
    columns = {col["name"] for col in inspect(engine).get_columns("patients")}
    engine.dispose()
    assert not {"suppressed_numbers", "consent_events"} & tables
    assert "paused_by" not in columns


def test_0011_backfills_suppression_and_paused_by_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_and_downgrade(f"sqlite:///{tmp_path / 'seeded.db'}")


def test_0011_backfills_suppression_and_paused_by_on_postgresql(postgres_schema_url: str) -> None:
    _check_upgrade_and_downgrade(postgres_schema_url)
