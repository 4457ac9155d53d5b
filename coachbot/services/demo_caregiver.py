"""The demo's close-watch caregiver, played through the real tick and inbound pipeline: the
invitation goes by the tick, the caregiver texts YES, and on each day of the close-watch
weeks the clock ticks at the check time (the check goes) and the caregiver answers it:
how many items went as usual, and WORRIED once."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from coachbot.domain import close_watch
from coachbot.services.demo_cast import Persona

if TYPE_CHECKING:
    from coachbot.services.demo_history import _Sim

_INVITE_AFTER = dt.timedelta(minutes=2)  # the tick that sends the invitation
_CAREGIVER_YES_AFTER = dt.timedelta(minutes=40)
_ANSWER_AFTER = dt.timedelta(minutes=20)


def play(sim: _Sim, persona: Persona, enrolled_at: dt.datetime) -> None:
    """Schedules the caregiver's story in the simulation, from the enrolment on."""
    assert persona.caregiver is not None
    assert persona.close_watch_days_ago is not None
    phone = f"+1617555{persona.caregiver[1]:04d}"
    yes = "SI" if persona.language == "es" else "YES"
    sim.at(enrolled_at + _INVITE_AFTER, sim.tick)
    sim.at(enrolled_at + _CAREGIVER_YES_AFTER, partial(sim.text, phone, yes))
    zone = ZoneInfo(persona.timezone)
    today = sim.end.astimezone(zone).date()
    for days_ago in range(persona.close_watch_days_ago, 0, -1):
        day = today - dt.timedelta(days=days_ago)
        # The programme's defaults: the demo's standard programme sets no close watch.
        check_at = close_watch.local_instant(day, close_watch.DEFAULTS.check_time, zone)
        if check_at <= enrolled_at + _CAREGIVER_YES_AFTER:
            continue
        answer = "WORRIED" if days_ago == persona.worried_days_ago else "4"
        sim.at(check_at, sim.tick)
        sim.at(check_at + _ANSWER_AFTER, partial(sim.text, phone, answer))
