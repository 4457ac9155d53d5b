"""The real Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from coachbot.db import make_engine
from coachbot.migrate import downgrade, upgrade
from coachbot.models import AuditEntry, Base
from tests.conftest import _schema_url


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return list(diff)


def test_empty_sqlite_upgrades_to_head_matching_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    assert _schema_diff(url) == []
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"patients", "nudges", "inbound_messages", "audit_log", "alembic_version"} <= tables


def test_sqlite_downgrade_to_base_and_back_is_clean(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    downgrade(url, "base")
    assert set(inspect(create_engine(url)).get_table_names()) == {"alembic_version"}
    upgrade(url)
    assert _schema_diff(url) == []


def test_empty_postgresql_upgrades_to_head_matching_the_models(postgres_url: str) -> None:
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = _schema_url(postgres_url, schema)
        upgrade(url)
        assert _schema_diff(url) == []
        downgrade(url, "base")
        upgrade(url)
        assert _schema_diff(url) == []
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_audit_log_refuses_updates_even_from_raw_sql(database_url: str) -> None:
    engine = make_engine(database_url)
    with Session(engine) as session:
        session.add(AuditEntry(at=dt.datetime.now(dt.UTC), actor="test", action="probe"))
        session.commit()
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
    engine.dispose()
