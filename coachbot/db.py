"""Engine and session set-up for SQLite (embedded default) and PostgreSQL (production).

SQLite is made a safe single-writer store: WAL so readers never block the writer, a busy
timeout so a second writer waits instead of failing, and `BEGIN IMMEDIATE` for every
transaction so two writers never deadlock on a read-to-write lock upgrade (the classic
"database is locked" under a web worker plus a clock process).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "coachbot_read_only"


class NaiveDatetimeError(ValueError):
    """A naive datetime reached the database layer; instants must be aware UTC."""


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as UTC and always returns aware UTC.

    SQLite drops offsets, so the value is normalised to UTC before it is written and
    re-labelled as UTC when read. Naive values are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value.isoformat()} refused; use aware UTC")
        utc = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    # A database error's text would otherwise carry the statement's parameters (message
    # bodies, phone numbers) into every log line that reports it.
    kwargs.setdefault("hide_parameters", True)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _make_sqlite_transactions_immediate(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _make_sqlite_transactions_immediate(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Read-only work (pages, reports, test assertions) opts out of the write lock, so a
        # long read never makes a webhook wait; see `make_read_session_factory`.
        if connection.get_execution_options().get(_READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: services return loaded objects to thin callers after commit.
    return sessionmaker(engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only. On SQLite they begin a deferred transaction that takes no
    write lock; writing through one is a bug that SQLite reports as "database is locked"
    under contention. On PostgreSQL they are ordinary sessions."""
    return sessionmaker(engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False)


def ping(engine: Engine) -> None:
    """One round trip to the database (`SELECT 1`); raises when it cannot be reached."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
