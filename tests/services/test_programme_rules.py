"""A programme's reply window and follow-up policy, saved by an operator, are what the next
tick obeys: no restart, no code constants."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import AdherenceRecord, Nudge
from coachbot.runtime import Runtime
from coachbot.services import program_edits, programs
from coachbot.services.tick import run_clock_tick
from tests.support.builders import make_patient
from tests.web.test_dashboard_support import writer_of

# 08:30 in New York on Monday 2026-11-23 (UTC-5).
NUDGE_TIME = dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC)


def _save_sleep(session: Session, **changes: object) -> None:
    view = programs.show_program(session, "standard")
    proposed = program_edits.with_changes(view.tracks["sleep"], **changes)
    session.commit()  # the read ends before the save's own transaction
    program_edits.save_track(
        writer_of(session),
        "standard",
        proposed,
        base_version=view.version,
        actor="test",
        now=NUDGE_TIME,
    )


def _tick(runtime: Runtime, now: dt.datetime) -> str:
    return run_clock_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
    ).as_text()


def test_a_saved_reply_window_sets_when_the_sent_nudge_stops_waiting(
    runtime: Runtime, session: Session
) -> None:
    make_patient(session, tracks={"sleep": "08:30"})
    _save_sleep(session, reply_window_minutes=90)
    _tick(runtime, NUDGE_TIME)
    with runtime.read_session_factory() as s:
        nudge = s.scalars(select(Nudge).where(Nudge.state == "sent")).one()
        assert nudge.reply_window_ends_at == NUDGE_TIME + dt.timedelta(minutes=90)
    # 91 minutes later the window has closed: the miss is recorded at once.
    assert "missed=1" in _tick(runtime, NUDGE_TIME + dt.timedelta(minutes=91))


def test_a_programme_without_follow_ups_records_the_miss_but_sends_no_reminder(
    runtime: Runtime, session: Session
) -> None:
    make_patient(session, tracks={"sleep": "08:30"})
    _save_sleep(session, followup="none", reply_window_minutes=60)
    _tick(runtime, NUDGE_TIME)
    text = _tick(runtime, NUDGE_TIME + dt.timedelta(hours=2))
    assert "missed=1 followups=0" in text
    with runtime.read_session_factory() as s:
        assert s.scalars(select(AdherenceRecord.outcome)).all() == ["missed"]
        followups = s.scalars(select(Nudge).where(Nudge.occurrence_key.endswith(":followup")))
        assert followups.all() == []
