"""One clock tick closes reply windows and sends what they plan, through normal dispatch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from coachbot.models import AdherenceRecord, Nudge, OutboundMessage
from coachbot.runtime import Runtime
from coachbot.services.tick import run_clock_tick
from tests.support.builders import make_patient

# 08:30 and 18:45 in New York on Monday 2026-11-23 (EST, UTC-5).
NUDGE_TIME = dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC)
AFTER_WINDOW = dt.datetime(2026, 11, 23, 23, 45, tzinfo=dt.UTC)


def _tick(runtime: Runtime, now: dt.datetime) -> str:
    return run_clock_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
    ).as_text()


def test_an_unanswered_nudge_is_missed_and_followed_up_in_the_same_tick(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        make_patient(s, tz="America/New_York", tracks={"sleep": "08:30"})
    assert "sent=1" in _tick(runtime, NUDGE_TIME)

    text = _tick(runtime, AFTER_WINDOW)

    assert "missed=1 followups=1" in text
    assert "sent=1" in text
    with runtime.session_factory() as s:
        record = s.scalars(select(AdherenceRecord)).one()
        assert record.outcome == "missed"
        followup = s.scalars(select(Nudge).where(Nudge.template_id == "followup.sleep")).one()
        assert followup.state == "sent"
        kinds = s.scalars(select(OutboundMessage.template_id).order_by(OutboundMessage.id)).all()
        assert kinds == ["nudge.sleep", "followup.sleep"]


def test_a_replayed_tick_neither_misses_nor_follows_up_twice(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        make_patient(s, tz="America/New_York", tracks={"sleep": "08:30"})
    _tick(runtime, NUDGE_TIME)
    _tick(runtime, AFTER_WINDOW)
    again = _tick(runtime, AFTER_WINDOW + dt.timedelta(seconds=5))
    assert "missed=0 followups=0" in again
    assert "sent=0" in again


def test_the_tick_line_names_each_count_once(runtime: Runtime) -> None:
    """One summary for the whole tick: a dispatcher's late nudge is `too_late=`, a reply
    window closed unanswered is `missed=`, and no name is printed twice."""
    with runtime.session_factory() as s:
        make_patient(s, tz="America/New_York", tracks={"sleep": "08:30"})
    text = _tick(runtime, NUDGE_TIME)
    names = [part.split("=")[0] for part in text.split() if "=" in part]
    assert len(names) == len(set(names)), text
    assert "too_late=0" in text
    assert text.count("missed=") == 1
