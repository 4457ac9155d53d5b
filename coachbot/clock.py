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
from coachbot.runtime import Runtime
from coachbot.services.tick import record_heartbeat, run_clock_tick

log = logging.getLogger(__name__)


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
    record_heartbeat(runtime.session_factory, now, summary)
    if summary.eventful:
        log.info("tick: %s", summary.as_text())


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
