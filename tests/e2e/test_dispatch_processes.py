"""Real dispatcher processes against one database and the loopback Twilio server: two of
them never text a nudge twice, and one killed with SIGKILL at the worst moments leaves
every nudge, after a restart, in exactly one final state and texted exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from coachbot.db import make_engine, make_session_factory
from coachbot.domain.states import NudgeState
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.dispatch import plan_nudges
from coachbot.services.reconcile import reconcile_ambiguous
from coachbot.services.tick import run_tick
from coachbot.settings import Settings
from tests.support.builders import MONDAY_0830_NEW_YORK
from tests.support.cohort import make_cohort, nudge_states
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN

ACCOUNT_SID = "AC" + "c3" * 16
FROM_NUMBER = "+16175550100"
NOW = MONDAY_0830_NEW_YORK
ROOT = Path(__file__).resolve().parents[2]

# The dispatcher subprocess. The crash point comes from this script's own arguments and is
# found from outside the package (tests/support/crash_points.py: a gateway wrapper and a
# commit event): production code has no failpoint switch to leave on by mistake.
WORKER = r"""
import contextlib, datetime as dt, json, sys
from coachbot.runtime import build_runtime
from coachbot.services import dispatch, tick
from coachbot.settings import Settings
from tests.support.crash_points import crash_points, kill_at

args = json.loads(sys.argv[1])
runtime = build_runtime(Settings(**args["settings"]))
points = contextlib.nullcontext(runtime.gateway)
if args.get("kill_at"):
    crash = kill_at(args["kill_at"], args.get("kill_after", 1))
    points = crash_points(runtime.session_factory, runtime.gateway, crash)
now = dt.datetime.fromisoformat(args["now"])
with points as gateway:
    if args.get("dispatch_only"):
        summary = tick.TickSummary()
        dispatch.dispatch_due(runtime.session_factory, gateway, runtime.library,
                              runtime.settings, now, summary)
    else:
        summary = tick.run_tick(runtime.session_factory, gateway, runtime.library,
                                runtime.settings, now)
print(summary.as_text())
"""


def twilio_settings(settings: Settings, fake: FakeTwilio) -> Settings:
    return dataclasses.replace(
        settings,
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_base_url=fake.base_url,
        twilio_timeout_seconds=5.0,
    )


def start_worker(settings: Settings, now: dt.datetime, **options: object) -> subprocess.Popen[str]:
    payload = {
        "settings": {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)},
        "now": now.isoformat(),
        **options,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(payload)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_two_dispatch_processes_on_postgresql_send_each_nudge_exactly_once(
    postgres_url: str, settings: Settings, fake: FakeTwilio, factory: sessionmaker[Session]
) -> None:
    count = 2000
    make_cohort(factory, count)
    assert plan_nudges(factory, NOW) == count
    config = twilio_settings(settings, fake)
    workers = [start_worker(config, NOW, dispatch_only=True) for _ in range(2)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    per_nudge = fake.count_by_callback_param("nudge")
    assert len(per_nudge) == count
    assert set(per_nudge.values()) == {1}
    assert fake.duplicates() == {}
    assert nudge_states(factory) == {NudgeState.SENT: count}
    # Both processes did real work: the claims interleaved rather than one doing it all.
    sent_by_each = [int(out.split("sent=")[1].split()[0]) for out, _ in outputs]
    assert all(n > 0 for n in sent_by_each), sent_by_each


@pytest.mark.parametrize("point", ["claimed", "accepted", "recorded"])
def test_a_dispatcher_killed_mid_tick_leaves_every_nudge_final_and_texted_once(
    point: str, settings: Settings, fake: FakeTwilio, factory: sessionmaker[Session]
) -> None:
    count = 300
    make_cohort(factory, count)
    config = twilio_settings(settings, fake)
    # The first batch (200) is fully recorded; the kill cuts the second at `point`, or, for
    # "recorded", lands right after the first batch's outcome commits.
    kill_after = {"claimed": 2, "accepted": 250, "recorded": 1}[point]
    worker = start_worker(config, NOW, kill_at=point, kill_after=kill_after)
    worker.communicate(timeout=120)
    assert worker.returncode == -9
    crashed = nudge_states(factory)
    stranded = {"claimed": NudgeState.CLAIMED, "accepted": NudgeState.SENDING}
    if point in stranded:
        assert crashed.get(stranded[point], 0) > 0, crashed
    else:
        assert crashed == {NudgeState.SENT: 200, NudgeState.PLANNED: 100}
    before_restart = fake.count_by_callback_param("nudge")
    assert set(before_restart.values()) <= {1}

    # Restart after the claim lease ran out; wait out the reconciliation grace; settle.
    restarted: Runtime = build_runtime(config)
    try:
        later = NOW + dt.timedelta(minutes=6)
        run_tick(
            restarted.session_factory,
            restarted.gateway,
            restarted.library,
            restarted.settings,
            later,
        )
        settle = later + dt.timedelta(minutes=3)
        reconcile_ambiguous(restarted.session_factory, restarted.gateway, settle, limit=count)
        run_tick(
            restarted.session_factory,
            restarted.gateway,
            restarted.library,
            restarted.settings,
            settle,
        )
    finally:
        restarted.close()

    today = {NudgeState.SENT: count}
    assert nudge_states(factory) == today
    per_nudge = fake.count_by_callback_param("nudge")
    assert len(per_nudge) == count
    assert set(per_nudge.values()) == {1}
