"""Planning and dispatch at the service level, with the real clock tick under frozen time:
daylight saving, the allowed window and quiet hours, the daily cap, downtime, schedule and
programme-default changes that apply at the next tick, phases relative to enrolment."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from coachbot.cli.schedule import schedule
from coachbot.clock import tick_once
from coachbot.domain.states import NudgeState
from coachbot.models import AuditEntry, Nudge, TrackSchedule
from coachbot.runtime import Runtime
from coachbot.services import programs
from coachbot.services.dispatch import plan_nudges
from coachbot.services.schedules import (
    set_patient_schedule,
    set_window,
    validate_schedule,
)
from coachbot.services.tick import run_tick
from coachbot.store.nudges import PLANNER_LOCK_ARGS, PLANNER_LOCK_CLASS
from tests.support.builders import make_patient

ALL_DAY = (dt.time(0, 0), dt.time(23, 59))


def open_window(session: Session, now: dt.datetime) -> None:
    set_window(
        session,
        start=ALL_DAY[0],
        end=ALL_DAY[1],
        daily_cap=None,
        max_concurrency=None,
        actor="test",
        now=now,
    )


def run_clock(runtime: Runtime, start: dt.datetime, hours: int, step_minutes: int = 15) -> None:
    """The real clock tick, every `step_minutes`, under frozen time."""
    moment = start
    with freeze_time(start) as frozen:
        while moment < start + dt.timedelta(hours=hours):
            tick_once(runtime)
            moment += dt.timedelta(minutes=step_minutes)
            frozen.move_to(moment)


def scheduled_nudges() -> Select[Nudge]:
    """The schedule's own nudges: follow-ups planned by unanswered windows are left out."""
    return select(Nudge).where(~Nudge.occurrence_key.endswith(":followup"))


def sent(session: Session) -> list[Nudge]:
    session.commit()  # end the read snapshot so the clock's writes are visible
    return list(
        session.scalars(
            scheduled_nudges().where(Nudge.state == NudgeState.SENT).order_by(Nudge.due_at)
        )
    )


@pytest.mark.parametrize(
    ("zone", "wall", "start", "expected_utc"),
    [
        pytest.param(
            "America/New_York",
            "02:30",
            dt.datetime(2026, 3, 7, 0, 0, tzinfo=dt.UTC),
            # 7 Mar EST 07:30Z; 8 Mar 02:30 does not exist -> 03:30 EDT (07:30Z); 9 Mar EDT.
            [(7, 7, 30), (8, 7, 30), (9, 6, 30)],
            id="new-york-spring-forward-gap",
        ),
        pytest.param(
            "America/New_York",
            "01:30",
            dt.datetime(2026, 10, 31, 0, 0, tzinfo=dt.UTC),
            # 1 Nov 01:30 happens twice (05:30Z EDT, 06:30Z EST): the first one only.
            [(31, 5, 30), (1, 5, 30), (2, 6, 30)],
            id="new-york-fall-back-fold",
        ),
        pytest.param(
            "Europe/London",
            "01:30",
            dt.datetime(2026, 3, 28, 0, 0, tzinfo=dt.UTC),
            # 29 Mar 01:30 does not exist -> 02:30 BST (01:30Z).
            [(28, 1, 30), (29, 1, 30), (30, 0, 30)],
            id="london-spring-forward-gap",
        ),
        pytest.param(
            "Europe/London",
            "01:30",
            dt.datetime(2026, 10, 24, 0, 0, tzinfo=dt.UTC),
            # 25 Oct 01:30 twice (00:30Z BST, 01:30Z GMT): the first one only.
            [(24, 0, 30), (25, 0, 30), (26, 1, 30)],
            id="london-fall-back-fold",
        ),
        pytest.param(
            "Asia/Kathmandu",
            "08:30",
            dt.datetime(2026, 3, 7, 0, 0, tzinfo=dt.UTC),
            # +05:45 all year: 02:45Z every day.
            [(7, 2, 45), (8, 2, 45), (9, 2, 45)],
            id="kathmandu-quarter-hour-offset",
        ),
    ],
)
def test_a_daily_slot_is_sent_once_per_local_day_across_daylight_saving(
    runtime: Runtime,
    session: Session,
    zone: str,
    wall: str,
    start: dt.datetime,
    expected_utc: list[tuple[int, int, int]],
) -> None:
    open_window(session, start)
    make_patient(session, tz=zone, tracks={"sleep": wall}, enrolled_at=start)
    run_clock(runtime, start, hours=72)
    rows = sent(session)
    assert [(n.due_at.day, n.due_at.hour, n.due_at.minute) for n in rows] == expected_utc
    assert all(n.due_at.tzinfo is dt.UTC for n in rows)
    local_days = Counter(n.due_at.astimezone(ZoneInfo(zone)).date() for n in rows)
    assert set(local_days.values()) == {1}
    # Sent at its due instant, not an hour off.
    assert all(
        n.sent_at is not None and n.sent_at - n.due_at < dt.timedelta(minutes=15) for n in rows
    )


def test_nothing_is_sent_outside_the_window_and_quiet_hours_defer_or_skip_per_track(
    runtime: Runtime, session: Session
) -> None:
    start = dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC)  # 00:00 in New York
    make_patient(
        session,
        tracks={"sleep": "07:00", "mindfulness": "21:30", "exercise": "09:00"},
        quiet=(dt.time(8, 45), dt.time(9, 30)),
        enrolled_at=start,
    )
    run_clock(runtime, start, hours=24, step_minutes=5)
    zone = ZoneInfo("America/New_York")
    session.expire_all()
    today = {
        n.track: n
        for n in session.scalars(scheduled_nudges())
        if n.due_at.astimezone(zone).date() == dt.date(2026, 11, 23)
    }
    # Before the 08:00 window: deferred to its start.
    assert today["sleep"].state == NudgeState.SENT
    assert today["sleep"].sent_at.astimezone(zone).time() == dt.time(8, 0)  # type: ignore[union-attr]
    # Inside the patient's quiet hours: deferred to their end.
    assert today["exercise"].sent_at.astimezone(zone).time() == dt.time(9, 30)  # type: ignore[union-attr]
    # An evening wind-down after 20:00 is skipped, not moved to the morning.
    assert (today["mindfulness"].state, today["mindfulness"].state_reason) == (
        NudgeState.SKIPPED,
        "outside_allowed_window",
    )
    for nudge in session.scalars(select(Nudge).where(Nudge.sent_at.is_not(None))):
        local = nudge.sent_at.astimezone(zone).time()  # type: ignore[union-attr]
        assert dt.time(8) <= local < dt.time(20)
        assert not dt.time(8, 45) <= local < dt.time(9, 30)


def test_the_daily_cap_skips_the_rest_with_a_reason(runtime: Runtime, session: Session) -> None:
    start = dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC)
    times = ",".join(f"{h:02d}:00" for h in range(9, 17))  # eight slots
    make_patient(session, tracks={"sleep": times}, enrolled_at=start)
    set_window(
        session,
        start=None,
        end=None,
        daily_cap=3,
        max_concurrency=None,
        actor="test",
        now=start,
    )
    run_clock(runtime, start, hours=18, step_minutes=30)
    session.expire_all()
    outcome = Counter((n.state, n.state_reason) for n in session.scalars(scheduled_nudges()))
    assert outcome == {(NudgeState.SENT, None): 3, (NudgeState.SKIPPED, "daily_cap"): 5}


def test_after_downtime_overdue_nudges_are_missed_too_late_not_sent_in_a_burst(
    runtime: Runtime, session: Session
) -> None:
    start = dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC)
    make_patient(
        session, tracks={"sleep": "08:30", "exercise": "10:00", "diet": "12:00"}, enrolled_at=start
    )
    # The clock was down from 00:00 to 12:15 local: only the 12:00 diet nudge is recent.
    run_clock(runtime, start + dt.timedelta(hours=12, minutes=15), hours=1)
    session.expire_all()
    final = {n.track: (n.state, n.state_reason) for n in session.scalars(scheduled_nudges())}
    assert final == {
        "sleep": (NudgeState.MISSED, "too_late"),
        "exercise": (NudgeState.MISSED, "too_late"),
        "diet": (NudgeState.SENT, None),
    }


def test_a_changed_schedule_applies_at_the_next_tick_replacing_unsent_keeping_sent(
    runtime: Runtime, session: Session
) -> None:
    start = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)  # 08:00 New York
    patient = make_patient(session, tracks={"sleep": "08:30,17:00"}, enrolled_at=start)
    run_clock(runtime, start, hours=4)  # 08:30 sent; 17:00 planned (inside the horizon)
    change_at = start + dt.timedelta(hours=4)
    spec = validate_schedule("sleep", "17:00,18:15", "daily")
    with freeze_time(change_at):
        assert set_patient_schedule(session, patient.id, spec, actor="test", now=change_at) == 1
    run_clock(runtime, change_at, hours=10)
    session.expire_all()
    zone = ZoneInfo("America/New_York")
    today = sorted(
        (n.due_at.astimezone(zone).strftime("%H:%M"), n.state, n.state_reason)
        for n in session.scalars(scheduled_nudges())
        if n.due_at.astimezone(zone).date() == dt.date(2026, 11, 23)
    )
    assert today == [
        ("08:30", NudgeState.SENT, None),
        ("17:00", NudgeState.CANCELLED, "schedule_changed"),
        ("17:00", NudgeState.SENT, None),
        ("18:15", NudgeState.SENT, None),
    ]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "schedule.set")).one()
    assert entry.patient_id == patient.id


def test_a_programme_default_change_moves_default_followers_only(
    runtime: Runtime, session: Session
) -> None:
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    follower = make_patient(session, tracks={"sleep": "08:30"}, enrolled_at=now)
    own_times = make_patient(session, tracks={"sleep": "07:15"}, enrolled_at=now)
    # Enrolled with explicit times: the schedule is the patient's own (as the CLI marks it).
    own_times.schedules[0].is_custom = True
    session.commit()
    version = programs.show_program(session, programs.STANDARD).version
    proposed = programs.propose_track(
        session, programs.STANDARD, "sleep", times="09:45", days="mon-fri"
    )
    saved = programs.save_track(
        session, programs.STANDARD, proposed, base_version=version, actor="test", now=now
    )
    assert saved.schedules_changed == 1
    session.expire_all()
    by_patient = {
        row.patient_id: (row.local_times, row.days_of_week)
        for row in session.scalars(select(TrackSchedule))
    }
    assert by_patient == {follower.id: ("09:45", "01234"), own_times.id: ("07:15", "0123456")}


def test_phases_relative_to_enrolment_change_the_days(runtime: Runtime, session: Session) -> None:
    enrolled = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)  # a Monday, 09:00 New York
    patient = make_patient(session, tracks={"checkin": "10:00"}, enrolled_at=enrolled)
    spec = validate_schedule("checkin", "10:00", "daily", "0-28:daily;28-:mon,wed,fri")
    set_patient_schedule(session, patient.id, spec, actor="test", now=enrolled)
    zone = ZoneInfo("America/New_York")
    days = []
    moment = dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)
    for _ in range(9):
        plan_nudges(runtime.session_factory, moment)
        moment += dt.timedelta(hours=6)
        plan_nudges(runtime.session_factory, moment)
        moment += dt.timedelta(hours=18)
    session.expire_all()
    first = dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)
    for nudge in session.scalars(select(Nudge).where(Nudge.due_at >= first).order_by(Nudge.due_at)):
        days.append(nudge.due_at.astimezone(zone).date().day)
    # Days 0-27 (to 29 Nov) daily; from day 28 (30 Nov) Monday, Wednesday, Friday only.
    assert days == [26, 27, 28, 29, 30, 2, 4]


def test_schedule_commands_show_set_default_and_set_patient(
    runtime: Runtime, session: Session
) -> None:
    patient = make_patient(session, tracks={"sleep": "08:30"})
    env = {"DATABASE_URL": runtime.settings.database_url}
    runner = CliRunner()
    result = runner.invoke(
        schedule,
        ["set-default", "--track", "sleep", "--times", "08:45", "--days", "mon-fri"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "1 patient schedules follow it" in result.output
    result = runner.invoke(
        schedule,
        ["set", "--patient", str(patient.id), "--track", "exercise", "--times", "10:00,16:00"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(schedule, ["show", "--patient", str(patient.id)], env=env)
    assert "exercise     times=10:00,16:00 days=0123456" in result.output
    assert "sleep        times=08:45 days=01234" in result.output
    result = runner.invoke(schedule, ["show"], env=env)
    assert "window 08:00-20:00 local, daily cap 5" in result.output
    assert "mindfulness  times=17:00 days=0123456 phases=- quiet-policy=skip" in result.output
    bad = runner.invoke(schedule, ["set-default", "--track", "sleep", "--times", "25:00"], env=env)
    assert bad.exit_code == 2
    assert "times" in bad.output


def test_only_the_advisory_lock_holder_plans_on_postgresql(
    postgres_url: str, runtime: Runtime, session: Session
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("runs on the PostgreSQL pass")
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    make_patient(session, tracks={"sleep": "08:30"}, enrolled_at=now)
    session.commit()
    with runtime.engine.connect() as other_clock, other_clock.begin():
        other_clock.execute(
            text(f"SELECT pg_advisory_xact_lock{PLANNER_LOCK_ARGS}"), {"cls": PLANNER_LOCK_CLASS}
        )
        assert plan_nudges(runtime.session_factory, now) == 0
    assert plan_nudges(runtime.session_factory, now) == 1
    summary = run_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
    )
    assert summary.planned == 0
