"""The clock: APScheduler fires one interval job, the tick; the schedule itself lives in our
tables. coalesce + max_instances=1 mean a slow tick is never run twice at once and a
backlog of missed fires collapses into one."""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from coachbot.domain.clock import utcnow
from coachbot.models import ClockHeartbeat
from coachbot.runtime import Runtime
from coachbot.services.tick import run_clock_tick
from coachbot.store.dialect import dialect_insert

log = logging.getLogger(__name__)
CLOCK_NAME = "dispatch"


def tick_once(runtime: Runtime, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    try:
        summary = run_clock_tick(
            runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now
        )
    except Exception:
        # One bad tick must not kill the clock; the next tick retries from the rows.
        log.exception("tick failed")
        return
    _heartbeat(runtime, now, summary.as_text())
    if summary.eventful:
        log.info("tick: %s", summary.as_text())


def _heartbeat(runtime: Runtime, now: dt.datetime, text: str) -> None:
    with runtime.session_factory() as session, session.begin():
        stmt = dialect_insert(session)(ClockHeartbeat).values(
            name=CLOCK_NAME, last_tick_at=now, last_summary=text
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"last_tick_at": now, "last_summary": text},
            )
        )


def _configure(scheduler: BaseScheduler, runtime: Runtime) -> BaseScheduler:
    interval = runtime.settings.tick_seconds
    scheduler.add_job(
        tick_once,
        "interval",
        args=[runtime],
        seconds=interval,
        id="tick",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(interval * 2)),
        next_run_time=utcnow(),
    )
    return scheduler


def start_background_clock(runtime: Runtime) -> BaseScheduler:
    scheduler = _configure(BackgroundScheduler(timezone=dt.UTC), runtime)
    scheduler.start()
    return scheduler


def run_blocking_clock(runtime: Runtime) -> None:
    scheduler = _configure(BlockingScheduler(timezone=dt.UTC), runtime)
    log.info("clock started: one tick every %ss", runtime.settings.tick_seconds)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("clock stopped")
