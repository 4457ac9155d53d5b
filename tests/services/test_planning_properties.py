"""Property test of planning and dispatch through the real clock tick and a real database.

The domain property (tests/unit/test_schedule_every_zone.py) checks occurrence arithmetic in
memory. This one drives the production tick (`run_clock_tick`: reply windows, planning,
claim, send) under frozen time over hypothesis-chosen IANA zones, wall times steered into
daylight-saving gaps and repeated hours, quiet hours, allowed windows and daily caps, for a
few local days around an offset change, replaying ticks and planning on the way. It then
judges the materialised `nudges` rows against the documented rules:

* exactly one row per track slot per local day; a repeated wall time fires at its first
  reading, a missing one is moved forward by the gap (or merged when that lands on another
  slot's instant, as `occurrences_between` documents); replays add nothing;
* every stored instant is aware UTC;
* nothing is sent outside the allowed window or inside quiet hours: per TRACK_POLICIES a
  blocked nudge is deferred to the first permitted instant (an opening of the window or the
  end of quiet hours) or skipped with the reason that blocked it;
* every nudge the clock has passed is final (sent or skipped with a reason), never lost;
* the daily cap holds, and a nudge is skipped for the cap only once the cap was reached.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain import coaching
from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.schedule import (
    DEFAULT_ALLOWED_WINDOW,
    TRACKS,
    LocalWindow,
    QuietPolicy,
    local_day_bounds,
)
from coachbot.domain.states import NudgeState, PatientStatus
from coachbot.models import Nudge, Patient, TrackSchedule
from coachbot.runtime import Runtime
from coachbot.services.dispatch import plan_nudges
from coachbot.services.schedules import set_window
from coachbot.services.tick import run_clock_tick
from tests.support.builders import make_patient
from tests.support.zone_eras import ZONES, minute_times, offset_at, offset_changes, readings

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
# place_in_window's default: a blocked nudge is deferred at most this far, else skipped.
MAX_DEFER = dt.timedelta(hours=16)
# Zones the issue names, half-hour DST (Lord Howe), odd offsets with DST (St John's,
# Chatham) and changes at or across midnight (Havana, Santiago, Beirut).
NAMED_ZONES = (
    "America/New_York",
    "Europe/London",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
    "America/Havana",
    "America/Santiago",
    "Asia/Beirut",
)
# In the New York and London gaps and repeated hours, and at midnight, whatever the zone.
DST_WALL_TIMES = (dt.time(1, 30), dt.time(2, 30), dt.time(0, 0), dt.time(0, 30))
WINDOW_REASONS = {"quiet_hours", "outside_allowed_window", "no_window"}


@dataclass(frozen=True)
class Scenario:
    zone: str
    first: dt.date  # first local day of the run
    days: int
    times: dict[str, list[dt.time]]  # track -> wall times
    quiet: LocalWindow | None
    window: LocalWindow
    cap: int
    step: dt.timedelta  # the clock's cadence between ticks at send times
    replays: tuple[bool, ...]  # which ticks are replayed, cycled


@st.composite
def windows(draw: st.DrawFn) -> LocalWindow:
    """A non-empty local window; may wrap midnight."""
    start = dt.datetime.combine(dt.date(2000, 1, 1), draw(minute_times))
    length = draw(st.integers(1, 24 * 60 - 1)) * MINUTE
    return LocalWindow(start.time(), (start + length).time())


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    # Two draws, not one_of: a union's repr lists all ~600 zones in every failure report.
    zone = draw(st.sampled_from(NAMED_ZONES if draw(st.booleans()) else ZONES))
    year = draw(st.integers(2000, 2037))
    changes = offset_changes(zone, year)
    hot: list[dt.time] = []
    if changes and draw(st.integers(0, 4)) > 0:
        # Steered: uniform dates would almost never put a slot in a gap or a repeated hour.
        day, before, at = draw(st.sampled_from(changes))
        # The wall times between the last reading before the change and the first after it
        # are the gap (clocks forward) or the repeated span (clocks back); draw mostly inside.
        lo, hi = sorted(dt.datetime.combine(day, t).replace(second=0) for t in (before, at))
        span = (hi - lo) // MINUTE
        hot = [(lo + draw(st.integers(-30, span + 30)) * MINUTE).time() for _ in range(3)]
        first = day - dt.timedelta(days=draw(st.integers(0, 1)))
    else:
        first = draw(st.dates(dt.date(year, 1, 1), dt.date(year, 12, 28)))
    slot = st.one_of(
        st.sampled_from(hot or DST_WALL_TIMES), st.sampled_from(DST_WALL_TIMES), minute_times
    )
    tracks = draw(st.lists(st.sampled_from(TRACKS), min_size=1, max_size=3, unique=True))
    times: dict[str, list[dt.time]] = {}
    for track in tracks:
        slots = draw(st.lists(slot, min_size=1, max_size=3, unique=True))
        if hot and track == tracks[0]:
            slots = list(dict.fromkeys([hot[0], *slots]))
        times[track] = slots
    return Scenario(
        zone=zone,
        first=first,
        days=draw(st.integers(2, 3)),
        times=times,
        quiet=draw(st.none() | windows()),
        window=draw(st.just(DEFAULT_ALLOWED_WINDOW) | windows()),
        # Small caps half the time, so the cap binds within a few slots a day.
        cap=draw(st.integers(1, 2) | st.integers(3, 5)),
        # At most half the planning horizon, so nothing is planned late (downtime has its
        # own test in test_dispatch_planning.py).
        step=draw(st.sampled_from([60, 180])) * MINUTE,
        replays=tuple(draw(st.lists(st.booleans(), min_size=8, max_size=8))),
    )


def permitted(
    instant: dt.datetime, zone: ZoneInfo, window: LocalWindow, quiet: LocalWindow | None
) -> bool:
    local = instant.astimezone(zone).time()
    return window.contains(local) and not (quiet is not None and quiet.contains(local))


def expected_instant(day: dt.date, slot: dt.time, zone: ZoneInfo) -> tuple[dt.datetime, str]:
    """The documented rule, from the zone's own readings: the first reading of a repeated
    wall time; a missing one moved forward by the gap, which is PEP 495's fold=0 reading."""
    wall = dt.datetime.combine(day, slot)
    real = readings(wall, zone)
    if real:
        return real[0], "repeated" if len(real) > 1 else "ordinary"
    moved = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    shift = moved.astimezone(zone).replace(tzinfo=None) - wall
    assert shift > dt.timedelta(0)
    assert shift == offset_at(moved, zone) - offset_at(moved - shift, zone)
    return moved, "in a gap"


def patient_nudges(session: Session, patient_id: int) -> list[Nudge]:
    session.commit()  # end the read snapshot so the tick's writes are visible
    return list(
        session.scalars(
            select(Nudge).where(Nudge.patient_id == patient_id).order_by(Nudge.due_at, Nudge.id)
        )
    )


Row = tuple[str, str, str, str | None, dt.datetime, dt.datetime, dt.datetime | None]


def snapshot(session: Session, patient_id: int) -> set[Row]:
    return {
        (n.occurrence_key, n.track, n.state, n.state_reason, n.due_at, n.send_at, n.sent_at)
        for n in patient_nudges(session, patient_id)
    }


def forget_planning(sf: sessionmaker[Session], patient_id: int) -> dict[str, dt.datetime | None]:
    """Clears the schedules' planning bookmark, as a crash between the insert and the
    bookkeeping (or a second planner with a stale read) would; returns where it was."""
    with sf() as s, s.begin():
        schedules = s.scalars(select(TrackSchedule).where(TrackSchedule.patient_id == patient_id))
        through = {row.track: row.planned_through for row in schedules}
        s.execute(
            update(TrackSchedule)
            .where(TrackSchedule.patient_id == patient_id)
            .values(planned_through=None)
        )
    return through


def run_clock(
    runtime: Runtime,
    session: Session,
    patient_id: int,
    scenario: Scenario,
    start: dt.datetime,
    end: dt.datetime,
) -> int:
    """The production tick every `step` and also exactly at each planned send_at, so a sent
    nudge's sent_at is its send_at. Replayed ticks check that a second tick at the same
    instant, and planning again without the bookmark, add and send nothing."""
    sf = runtime.session_factory
    replays = itertools.cycle(scenario.replays)
    ticks = 0
    now = start
    with freeze_time(start) as frozen:
        while now < end:
            frozen.move_to(now)
            run_clock_tick(sf, runtime.gateway, runtime.library, runtime.settings, now)
            ticks += 1
            if next(replays):
                before = snapshot(session, patient_id)
                again = run_clock_tick(sf, runtime.gateway, runtime.library, runtime.settings, now)
                assert (again.planned, again.sent) == (0, 0)
                assert snapshot(session, patient_id) == before
                # Planning without the bookmark may only extend past what was planned...
                through = forget_planning(sf, patient_id)
                plan_nudges(sf, now)
                after = snapshot(session, patient_id)
                assert before <= after
                for key, track, *_, due_at, _send_at, _sent_at in after - before:
                    planned_to = through[track]
                    assert planned_to is not None, key
                    assert due_at >= planned_to, f"{key} planned twice"
                # ...and doing it once more adds nothing at all.
                forget_planning(sf, patient_id)
                assert plan_nudges(sf, now) == 0
                assert snapshot(session, patient_id) == after
            pending = [
                n.send_at
                for n in patient_nudges(session, patient_id)
                if n.state == NudgeState.PLANNED and n.send_at > now
            ]
            now = min([now + scenario.step, *pending])
    return ticks


class Harness:
    """The runtime and read session behind a short repr: hypothesis prints the test's
    arguments with each failing example, and the runtime's repr holds the whole message
    library (about 100 kB)."""

    def __init__(self, runtime: Runtime, session: Session) -> None:
        self.runtime, self.session = runtime, session

    def __repr__(self) -> str:
        return "Harness()"


@pytest.fixture
def harness(runtime: Runtime, session: Session) -> Harness:
    return Harness(runtime, session)


def pause_earlier_patients(harness: Harness) -> None:
    """Examples share the test's database (a fresh one per example would cost a migration
    each); earlier examples' patients are paused so no later tick plans or sends for them."""
    harness.session.rollback()  # a failed example may have left it mid-transaction
    with harness.runtime.session_factory() as s, s.begin():
        s.execute(
            update(Patient)
            .where(Patient.status == PatientStatus.ACTIVE)
            .values(status=PatientStatus.PAUSED)
        )


@settings(
    max_examples=40,
    deadline=None,
    # No explain phase: it reruns a failing example dozens of times (minutes here).
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    # The database fixture is shared by the examples on purpose (pause_earlier_patients).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
@example(
    # The smallest case of the first finding: a sleep nudge at 05:59 is deferred to the
    # 08:00 window start, then dropped at 08:00 as missed (too_late), 2 h 01 min after due.
    scenario=Scenario(
        zone="America/New_York",
        first=dt.date(2026, 11, 23),
        days=1,
        times={"sleep": [dt.time(5, 59)]},
        quiet=None,
        window=DEFAULT_ALLOWED_WINDOW,
        cap=5,
        step=180 * MINUTE,
        replays=(False,),
    )
)
def test_property_planned_rows_obey_daylight_saving_windows_and_the_cap(
    harness: Harness, scenario: Scenario
) -> None:
    pause_earlier_patients(harness)
    zone = ZoneInfo(scenario.zone)
    window, quiet = scenario.window, scenario.quiet
    start = local_day_bounds(scenario.first, zone)[0]
    last = scenario.first + dt.timedelta(days=scenario.days - 1)
    end = local_day_bounds(last, zone)[1]
    rows = _plan_and_run_the_clock(harness, scenario, start, end)

    # Every stored instant is aware UTC.
    for n in rows:
        for instant in (n.due_at, n.send_at, n.sent_at, n.created_at, n.updated_at):
            assert instant is None or instant.tzinfo is UTC, (n.occurrence_key, instant)

    scheduled = [n for n in rows if not coaching.is_followup_key(n.occurrence_key)]
    if len(scheduled) < len(rows):
        event("follow-ups planned")
    _check_one_row_per_slot_and_day(scheduled, scenario, zone, start, end)
    _check_window_and_quiet_hours(scheduled, zone, window, quiet)

    # Every nudge whose send time the clock passed is final: sent at its send time inside
    # the window, or skipped with a reason. None ends "missed": the clock never stopped.
    for n in rows:
        if n.send_at >= end:
            continue
        assert n.state in (NudgeState.SENT, NudgeState.SKIPPED), (
            f"{n.occurrence_key} due {n.due_at} send_at {n.send_at}: {n.state} {n.state_reason}"
        )
        if n.state == NudgeState.SENT:
            assert n.sent_at == n.send_at, n.occurrence_key
            assert permitted(n.send_at, zone, window, quiet), n.occurrence_key

    _check_daily_cap(rows, zone, scenario.cap)


def _plan_and_run_the_clock(
    harness: Harness, scenario: Scenario, start: dt.datetime, end: dt.datetime
) -> list[Nudge]:
    """The scenario's window, cap and patient, then the clock from `start` to `end`; the
    patient's nudge rows afterwards (noted, for a failing example's report)."""
    runtime, session = harness.runtime, harness.session
    window, quiet = scenario.window, scenario.quiet
    set_window(
        runtime.session_factory,
        start=window.start,
        end=window.end,
        daily_cap=scenario.cap,
        max_concurrency=None,
        actor="test",
        now=start,
    )
    patient = make_patient(
        session,
        tz=scenario.zone,
        tracks={t: ",".join(f"{s:%H:%M}" for s in slots) for t, slots in scenario.times.items()},
        quiet=(quiet.start, quiet.end) if quiet else None,
        enrolled_at=start,
    )
    ticks = run_clock(runtime, session, patient.id, scenario, start, end)
    rows = patient_nudges(session, patient.id)
    note(f"run {start} .. {end}, {ticks} ticks; rows (key, state, reason, due, send, sent):")
    for n in rows:
        note(f"  {n.occurrence_key} {n.state} {n.state_reason} {n.due_at} {n.send_at} {n.sent_at}")
    return rows


def _check_one_row_per_slot_and_day(
    scheduled: list[Nudge],
    scenario: Scenario,
    zone: ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Exactly one row per track slot per local day, at the documented instant."""
    by_key = {n.occurrence_key: n for n in scheduled}
    expected_keys: set[str] = set()
    for track, slots in scenario.times.items():
        for offset in range(-1, scenario.days + 1):
            day = scenario.first + dt.timedelta(days=offset)
            for slot in slots:
                instant, kind = expected_instant(day, slot, zone)
                if not start <= instant < end:
                    continue
                event(f"wall time {kind}")
                key = f"{track}:{day.isoformat()}T{slot:%H:%M}"
                if key in by_key:
                    expected_keys.add(key)
                    assert by_key[key].due_at == instant, key
                else:
                    # Only a slot moved out of a gap may be missing, and only because another
                    # slot of the track fires at that very instant (one text, not two).
                    assert kind == "in a gap", f"{key} due {instant} was never planned"
                    assert any(n.track == track and n.due_at == instant for n in scheduled), (
                        f"{key} moved to {instant} was lost"
                    )
                    event("gap slot merged into another")
    in_run = {n.occurrence_key for n in scheduled if n.due_at < end}
    assert in_run == expected_keys, f"unexpected rows {sorted(in_run - expected_keys)}"


def _check_window_and_quiet_hours(
    scheduled: list[Nudge], zone: ZoneInfo, window: LocalWindow, quiet: LocalWindow | None
) -> None:
    """The allowed window and quiet hours, per the track's documented policy."""
    for n in scheduled:
        if permitted(n.due_at, zone, window, quiet):
            assert n.send_at == n.due_at, n.occurrence_key
            assert n.state_reason not in WINDOW_REASONS, n.occurrence_key
            continue
        local = n.due_at.astimezone(zone).time()
        blocked = (
            "quiet_hours"
            if quiet is not None and quiet.contains(local)
            else "outside_allowed_window"
        )
        if TRACK_POLICIES[n.track].quiet_policy is QuietPolicy.SKIP:
            event("blocked: skipped per policy")
            assert (n.state, n.state_reason) == (NudgeState.SKIPPED, blocked), n.occurrence_key
            continue
        opens = next(
            (
                n.due_at + k * MINUTE
                for k in range(1, MAX_DEFER // MINUTE + 1)
                if permitted(n.due_at + k * MINUTE, zone, window, quiet)
            ),
            None,
        )
        if opens is None:
            event("blocked: no permitted time within the deferral limit")
            assert (n.state, n.state_reason) == (NudgeState.SKIPPED, "no_window"), n.occurrence_key
            continue
        event("blocked: deferred")
        assert n.send_at == opens, (n.occurrence_key, n.send_at, opens)
        opening = n.send_at.astimezone(zone).time()
        assert (
            opening == window.start
            or (quiet is not None and opening == quiet.end)
            or offset_at(n.send_at - dt.timedelta(seconds=1), zone) != offset_at(n.send_at, zone)
        ), (n.occurrence_key, opening)


def _check_daily_cap(rows: list[Nudge], zone: ZoneInfo, cap: int) -> None:
    """The daily cap, per local day as dispatch counts it; a cap skip only once it was
    reached."""
    sent = [n.sent_at for n in rows if n.state == NudgeState.SENT and n.sent_at is not None]
    for day in {s.astimezone(zone).date() for s in sent}:
        lo, hi = local_day_bounds(day, zone)
        assert sum(1 for s in sent if lo <= s < hi) <= cap, day
    for n in rows:
        if n.state_reason == "daily_cap":
            event("daily cap reached")
            lo, _ = local_day_bounds(n.updated_at.astimezone(zone).date(), zone)
            assert sum(1 for s in sent if lo <= s <= n.updated_at) >= cap, n.occurrence_key
