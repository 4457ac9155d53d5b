"""Shared fixtures: a real, migrated database per test (SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set), settings, a runtime with the console backend, the Flask app."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from coachbot.app import create_app
from coachbot.migrate import upgrade
from coachbot.models import Base
from coachbot.runtime import Runtime, build_runtime
from coachbot.settings import Settings
from tests.support.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_available(url: str) -> str | None:
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server named by TEST_DATABASE_URL; skips (or fails in CI) without it."""
    if not TEST_DATABASE_URL:
        if IN_CI:
            pytest.skip("PostgreSQL pass runs separately in .ci/run with TEST_DATABASE_URL set")
        pytest.skip("set TEST_DATABASE_URL=postgresql+psycopg://... to run PostgreSQL tests")
    problem = _postgres_available(TEST_DATABASE_URL)
    if problem:
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {problem}")
    return TEST_DATABASE_URL


def _schema_url(base_url: str, schema: str) -> str:
    url = make_url(base_url)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Runs the real migrations once per session; each test then gets a clean copy."""
    if TEST_DATABASE_URL:
        problem = _postgres_available(TEST_DATABASE_URL)
        if problem:
            pytest.exit(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {problem}", 2)
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = create_engine(TEST_DATABASE_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = _schema_url(TEST_DATABASE_URL, schema)
        upgrade(url)
        yield url
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "coachbot.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)


def fresh_database(template: str, directory: Path) -> str:
    """An empty migrated database: a copy of the SQLite template in `directory`, or the
    PostgreSQL template schema emptied (shared: the next test that asks empties it again)."""
    if TEST_DATABASE_URL:
        engine = create_engine(template)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            # TRUNCATE bypasses the audit log's row-level append-only trigger by design.
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return template
    copy = directory / "coachbot.db"
    shutil.copyfile(template, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def database_url(_migrated_template: str, tmp_path: Path) -> str:
    return fresh_database(_migrated_template, tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-000",
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=PUBLIC_BASE_URL,
        clinic_name="Riverside Recovery Clinic",
        clinic_phone="+16175550199",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    # Deferred transactions on SQLite: a test holding this session open never blocks the
    # app's writers (it commits its own writes, as the builders do).
    with runtime.read_session_factory() as s:
        yield s


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    flask_app = create_app(runtime=runtime)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
