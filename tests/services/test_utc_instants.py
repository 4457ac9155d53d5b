"""Every instant is stored as aware UTC: naive values are refused, offsets are normalised."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from coachbot.db import NaiveDatetimeError
from coachbot.models import AuditEntry


def test_a_naive_datetime_is_refused_and_nothing_is_written(session: Session) -> None:
    session.add(AuditEntry(at=dt.datetime(2026, 11, 23, 8, 30), actor="test", action="probe"))  # noqa: DTZ001
    with pytest.raises(StatementError) as caught:
        session.commit()
    assert isinstance(caught.value.orig, NaiveDatetimeError)
    session.rollback()
    assert session.query(AuditEntry).count() == 0


def test_an_aware_local_time_comes_back_as_the_same_instant_in_utc(session: Session) -> None:
    local = dt.datetime(2026, 3, 8, 3, 30, tzinfo=ZoneInfo("America/New_York"))  # just after DST
    session.add(AuditEntry(at=local, actor="test", action="probe"))
    session.commit()
    session.expunge_all()
    stored = session.query(AuditEntry).one().at
    assert stored.tzinfo is dt.UTC
    assert stored == local
    assert stored == dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC)
