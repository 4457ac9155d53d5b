"""The proof's harness and its delivery scenarios. The harness, shared by every scenario
module under proof/: `Result` (what was tried, the numbers, which invariants held), the
settings that point a runtime at the loopback Twilio server, `settle` and
`delivery_checks`. The scenarios here (crash, provider faults, consent under load,
suppression list) send a cohort's nudges through that server and check what it received;
each takes a migrated database URL and returns a Result. The bad-input scenarios are in
proof/fuzz_scenarios.py, the others in proof/*_scenario.py and proof/caregivers.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.program import CLAIM_LEASE
from coachbot.domain.states import FINAL_NUDGE_STATES, NudgeState
from coachbot.models import Nudge, Patient
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.dispatch import plan_nudges
from coachbot.services.reconcile import reconcile_ambiguous
from coachbot.services.schedules import set_stale_limit
from coachbot.services.tick import run_tick
from coachbot.settings import Settings
from tests.support.builders import MONDAY_0830_NEW_YORK
from tests.support.cohort import cohort_phone, make_cohort, nudge_states
from tests.support.crash_points import commit_points
from tests.support.dispatcher_process import start_dispatcher
from tests.support.fake_twilio import FakeTwilio, Fault
from tests.support.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, inbound_params, sign

ACCOUNT_SID = "AC" + "c3" * 16
FROM_NUMBER = "+16175550100"
NOW = MONDAY_0830_NEW_YORK
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    scenario: str
    tried: str
    checks: dict[str, bool] = field(default_factory=dict)
    numbers: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def held(self) -> bool:
        return self.error is None and bool(self.checks) and all(self.checks.values())


def base_settings(database_url: str, fake: FakeTwilio | None, timeout: float = 5.0) -> Settings:
    settings = Settings(
        database_url=database_url,
        secret_key="proof-secret-key-that-is-long-enough-0",  # noqa: S106 - loopback only
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=PUBLIC_BASE_URL,
        clinic_name="Riverside Recovery Clinic",
        clinic_phone="+16175550199",
    )
    if fake is None:
        return settings
    return dataclasses.replace(
        settings,
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_base_url=fake.base_url,
        twilio_timeout_seconds=timeout,
    )


def settle(runtime: Runtime, start: dt.datetime, rounds: int = 20) -> dt.datetime:
    """Ticks past the claim lease and the reconciliation grace until nothing is open."""
    now = start
    for _ in range(rounds):
        run_tick(runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, now)
        while reconcile_ambiguous(runtime.session_factory, runtime.gateway, now, limit=500).found:
            pass
        open_states = set(nudge_states(runtime.session_factory)) - {
            str(s) for s in FINAL_NUDGE_STATES
        }
        if not open_states:
            break
        now += dt.timedelta(minutes=3)
    return now


def delivery_checks(
    result: Result, fake: FakeTwilio, factory: sessionmaker[Session], expected: int
) -> None:
    per_nudge = fake.count_by_callback_param("nudge")
    states = nudge_states(factory)
    final = {str(s) for s in FINAL_NUDGE_STATES}
    total = sum(states.values())
    sent_rows = states.get(NudgeState.SENT, 0) + states.get(NudgeState.DELIVERED, 0)
    result.numbers.update(
        nudges=total,
        final_states=states,
        accepted_at_server=sum(per_nudge.values()),
        sent_twice=sum(1 for n in per_nudge.values() if n > 1),
        duplicates=len(fake.duplicates()),
    )
    # Guards the other checks against passing on an empty run.
    result.checks[f"all {expected} nudges planned"] = total == expected
    result.checks["every nudge in a final state"] = set(states) <= final
    result.checks["none sent twice (server count)"] = (
        all(n == 1 for n in per_nudge.values()) and not fake.duplicates()
    )
    result.checks["every sent nudge reached the server once"] = sent_rows == len(per_nudge)


# --------------------------------------------------------------------------- 1. crash


def crash(database_url: str, *, nudges: int, kills: int, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    result = Result(
        "crash",
        f"kill -9 a dispatcher {kills}x at random moments, {nudges} nudges, 50 ms API latency",
    )
    # Real API latency keeps each run long enough for a wall-clock kill to land mid-send.
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, latency=0.05) as fake:
        config = base_settings(database_url, fake)
        runtime = build_runtime(config)
        try:
            make_cohort(runtime.session_factory, nudges, consent_method="proof")
            plan_nudges(runtime.session_factory, NOW)
            # Restarts come after the dead run's lease ran out (as a supervisor's would),
            # so the day's nudges must stay sendable for the whole run.
            set_stale_limit(runtime.session_factory, 24 * 60, actor="proof", now=NOW)
            landed = finished = attempts = 0
            # A run that finishes before its kill is not a kill: keep restarting until
            # `kills` landed (bounded, for when the work runs out first).
            while landed < kills and attempts < 3 * kills:
                k, attempts = attempts, attempts + 1
                options: dict[str, object] = {}
                # Half the kills land at the code's worst points (just claimed, accepted by
                # the provider but not recorded, just recorded) after a random count; the
                # other half at a random wall-clock instant.
                if k % 2 == 0:
                    point = rng.choice(["claimed", "accepted", "recorded"])
                    options["kill_at"] = point
                    options["kill_after"] = rng.randint(1, 150 if point == "accepted" else 3)
                restart_at = NOW + k * (CLAIM_LEASE + dt.timedelta(minutes=1))
                worker = start_dispatcher(config, restart_at, stderr=subprocess.DEVNULL, **options)
                assert worker.stdout is not None
                worker.stdout.readline()  # "ready": imports done, the runtime is built
                if k % 2 == 1:
                    deadline = time.monotonic() + rng.uniform(0.05, 1.0)
                    while time.monotonic() < deadline and worker.poll() is None:
                        time.sleep(0.01)
                    if worker.poll() is None:
                        os.kill(worker.pid, signal.SIGKILL)
                worker.communicate(timeout=300)
                if worker.returncode == -signal.SIGKILL:
                    landed += 1
                else:
                    finished += 1
            crashed = nudge_states(runtime.session_factory)
            settle(runtime, NOW + attempts * (CLAIM_LEASE + dt.timedelta(minutes=1)))
        finally:
            runtime.close()
        result.numbers.update(
            kills_landed=landed, runs_finished_first=finished, after_kills=crashed
        )
        result.checks[f"{kills} kills landed mid-run"] = landed == kills
        delivery_checks(result, fake, build_factory(database_url), nudges)
    return result


def build_factory(database_url: str) -> sessionmaker[Session]:
    from coachbot.db import make_engine, make_session_factory

    return make_session_factory(make_engine(database_url))


# --------------------------------------------------------------------------- 2. faults


def faults(database_url: str, *, nudges: int, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    result = Result(
        "provider faults",
        f"{nudges} nudges; 429 storm + Retry-After, 500/503, hangs past the 1 s timeout"
        " (accepted and not), resets before/after the request was read",
    )
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, hang_limit=3.0) as fake:
        config = base_settings(database_url, fake, timeout=1.0)
        runtime = build_runtime(config)
        try:
            make_cohort(runtime.session_factory, nudges, consent_method="proof")
            plan_nudges(runtime.session_factory, NOW)
            kinds: dict[str, Callable[[], Fault]] = {
                "500": Fault.server_error,
                "503": lambda: Fault.unavailable(retry_after=1),
                "hang, accepted": lambda: Fault.hang(accept=True),
                "hang, not accepted": lambda: Fault.hang(accept=False),
                "reset after accept": Fault.reset_after,
                "reset before read": Fault.reset_before,
            }
            victims = rng.sample(range(nudges), min(nudges, 8 * len(kinds)))
            injected: dict[str, int] = {}
            for n, i in enumerate(victims):
                name = list(kinds)[n % len(kinds)]
                fake.inject(kinds[name](), to=cohort_phone(i))
                injected[name] = injected.get(name, 0) + 1
            # A storm: every create is refused for a while, as Twilio does past the rate.
            storm = min(50, nudges // 4)
            fake.inject(Fault.rate_limited(retry_after=1), times=storm)
            injected["429 storm"] = storm
            ambiguous_sids = {
                cohort_phone(i) for n, i in enumerate(victims) if n % len(kinds) in (2, 4)
            }
            settle(runtime, NOW)
            settle(runtime, NOW + dt.timedelta(minutes=6))
        finally:
            runtime.close()
        fake.release_hangs()
        result.numbers["faults injected"] = injected
        result.numbers["server outcomes"] = dict(fake.outcomes())
        counts = fake.count_by_to()
        result.numbers["ambiguous victims texted"] = sum(counts[p] for p in ambiguous_sids)
        result.checks["accepted-then-lost sends not resent"] = all(
            counts[p] == 1 for p in ambiguous_sids
        )
        delivery_checks(result, fake, build_factory(database_url), nudges)
    return result


# --------------------------------------------------------------------------- 4. consent


def consent(database_url: str, *, nudges: int, stops: int, seed: int) -> Result:
    from coachbot.app import create_app

    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    result = Result(
        "consent under load",
        f"STOP from {stops} patients posted the moment their nudge's batch is claimed,"
        f" {nudges} nudges going out",
    )
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        config = base_settings(database_url, fake)
        runtime = build_runtime(config)
        app = create_app(runtime=runtime)
        client = app.test_client()
        statuses: list[int] = []
        stopped: dict[str, int] = {}  # phone -> messages the server had for it at STOP
        try:
            make_cohort(runtime.session_factory, nudges, consent_method="proof")
            plan_nudges(runtime.session_factory, NOW)
            with runtime.session_factory() as session:
                rows = session.execute(
                    select(Nudge.id, Patient.phone_e164).join(
                        Patient, Patient.id == Nudge.patient_id
                    )
                ).all()
            targets = dict(rng.sample([(nid, ph) for nid, ph in rows], min(stops, len(rows))))
            batch_of: dict[int, list[str]] = {}

            def on_claim(point: str, first_id: int | None) -> None:
                if point != "claimed" or first_id is None:
                    return
                # The batch was claimed (committed) and is about to be gated and sent.
                batch = [ph for nid, ph in targets.items() if first_id <= nid < first_id + 200]
                batch_of[first_id] = batch
                for ph in batch:
                    if ph in stopped:
                        continue
                    params = inbound_params(ph, "STOP")
                    response = client.post(
                        "/sms/inbound",
                        data=params,
                        headers={"X-Twilio-Signature": sign("/sms/inbound", params)},
                    )
                    statuses.append(response.status_code)
                    stopped[ph] = fake.count_by_to()[ph]

            with commit_points(runtime.session_factory, on_claim):
                settle(runtime, NOW)
        finally:
            runtime.close()
        counts = fake.count_by_to()
        after = sum(counts[ph] - before for ph, before in stopped.items())
        result.numbers.update(
            stops_posted=len(stopped),
            stop_responses=sorted(set(statuses)),
            texts_after_stop=after,
        )
        result.checks["STOPs stored (HTTP 200)"] = bool(statuses) and set(statuses) == {200}
        result.checks["nothing sent after STOP"] = after == 0
        delivery_checks(result, fake, build_factory(database_url), nudges)
    return result


# --------------------------------------------------------------------------- 7. suppression


def suppression(database_url: str, *, nudges: int, suppressed: int, seed: int) -> Result:
    """Issue #14: numbers on the suppression list get nothing while a whole cohort's nudges
    go out. The patients stay active (as when the STOP came from that number while it was a
    caregiver's or unknown), so only the gateway guard stands between them and a text; some
    other numbers meet the carrier's 21610 on the way and must end up suppressed too."""
    from coachbot.services import consent as consent_service

    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    carrier = max(1, suppressed // 5)
    result = Result(
        "suppression list",
        f"{nudges} nudges go out; {suppressed} more patients' numbers are suppressed in"
        f" advance and {carrier} meet Twilio's 21610 mid-run",
    )
    total = nudges + suppressed
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        config = base_settings(database_url, fake)
        runtime = build_runtime(config)
        try:
            make_cohort(runtime.session_factory, total, consent_method="proof")
            plan_nudges(runtime.session_factory, NOW)
            picked = rng.sample(range(total), suppressed + carrier)
            stopped = [cohort_phone(i) for i in picked[:suppressed]]
            unsubscribed = [cohort_phone(i) for i in picked[suppressed:]]
            with runtime.session_factory() as session:
                for number in stopped:
                    consent_service.suppress(
                        session,
                        number,
                        source="keyword",
                        text="STOP",
                        now=NOW - dt.timedelta(days=1),
                    )
                session.commit()
            for number in unsubscribed:
                fake.inject(Fault.unsubscribed(), to=number)
            settle(runtime, NOW)
            # The next day: nothing for the carrier's unsubscribers either, now suppressed.
            plan_nudges(runtime.session_factory, NOW + dt.timedelta(days=1))
            settle(runtime, NOW + dt.timedelta(days=1))
            with runtime.session_factory() as session:
                listed = consent_service.suppressed_among(session, stopped + unsubscribed)
                reasons = Counter(
                    session.scalars(
                        select(Nudge.state_reason).where(Nudge.state == NudgeState.SKIPPED)
                    )
                )
        finally:
            runtime.close()
        counts = fake.count_by_to()
        to_suppressed = sum(counts[n] for n in stopped + unsubscribed)
        result.numbers.update(
            texts_to_suppressed=to_suppressed,
            skipped_suppressed=reasons.get("suppressed", 0),
            carrier_refusals=fake.outcomes().get("400", 0),
            accepted_at_server=sum(counts.values()),
        )
        result.checks["0 texts to a suppressed number"] = to_suppressed == 0
        result.checks["21610 numbers end up on the suppression list"] = listed == set(
            stopped + unsubscribed
        )
        untouched = set(range(total)) - set(picked)
        result.checks[f"the other {len(untouched)} patients texted both days"] = all(
            counts[cohort_phone(i)] == 2 for i in untouched
        )
        # Both days for the numbers suppressed in advance (their records stay active); the
        # carrier's unsubscribers are opted out after their 21610 and not planned again.
        result.checks["suppressed nudges skipped as such"] = (
            reasons.get("suppressed", 0) == 2 * suppressed
        )
        delivery_checks(result, fake, build_factory(database_url), 2 * total - carrier)
    return result
