"""What differs between PostgreSQL and SQLite for the statements that write, asked once.

Both dialects spell "insert, ignore duplicates" as INSERT ... ON CONFLICT DO NOTHING, but
SQLAlchemy builds it from each dialect's own `insert`; rows locked by another transaction can
be skipped only on PostgreSQL (SQLite has one writer at a time, so there is nothing to skip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_Query = TypeVar("_Query", bound=Select[Any])


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def dialect_insert(session: Session) -> Any:
    """The dialect's `insert`, which offers ON CONFLICT (`on_conflict_do_nothing/update`)."""
    return postgresql.insert if is_postgresql(session) else sqlite.insert


def insert_ignoring_duplicates(
    session: Session,
    table: type[Any] | Table,
    values: Mapping[str, object] | Sequence[Mapping[str, object]],
    keys: Sequence[str],
    returning: Sequence[Any],
) -> Sequence[Any]:
    """Inserts the rows whose unique `keys` are new and returns `returning` of those only:
    what this statement added, not a replay's or a concurrent writer's rows.

    RETURNING, not rowcount: neither a batched multi-row insert nor psycopg's ORM-level
    insert reports a usable rowcount."""
    stmt = (
        dialect_insert(session)(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*returning)
    )
    return session.execute(stmt).all()


def skip_locked(session: Session, query: _Query) -> _Query:
    """On PostgreSQL, concurrent workers take disjoint rows instead of queueing on row locks."""
    if is_postgresql(session):
        return query.with_for_update(skip_locked=True)
    return query
