"""The database-faults proof: signed replies posted while statements of the webhook's own
transactions fail as a lock or a serialization failure; the reply must be kept, a STOP
honoured before the next send, a red flag alerted, and the clock tick must finish what the
webhook could not."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field

from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.app import create_app
from coachbot.domain.states import AlertKind, PatientStatus
from coachbot.models import Alert, InboundMessage, Patient
from coachbot.runtime import build_runtime
from coachbot.services.dispatch import plan_nudges
from coachbot.services.tick import run_clock_tick
from proof.scenarios import (
    ACCOUNT_SID,
    NOW,
    Result,
    base_settings,
    build_factory,
    delivery_checks,
    settle,
)
from tests.support.cohort import cohort_phone, make_cohort
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN, inbound_params, sign

# What each reply in the database-faults scenario says, and what must come of it.
_FAULT_REPLIES = {
    "stop": "STOP",
    "red_flag": "I fell and hit my head, very confused",
    "answer": "done",
}


def _transient_error(database_url: str) -> Exception:
    """The driver's own error for a transient failure: SQLite's lock, PostgreSQL's
    serialization failure (as a deadlock or a concurrent update would raise)."""
    if database_url.startswith("sqlite"):
        import sqlite3

        return sqlite3.OperationalError("database is locked")
    import psycopg

    return psycopg.errors.SerializationFailure("could not serialize access (proof)")


@dataclass
class _Faults:
    """Fails up to `left` statements, each with even odds, as a transient database error."""

    rng: random.Random
    error: Exception
    left: int = 0
    injected: int = 0

    def maybe_fail(self, *_: object) -> None:
        if self.left > 0 and self.rng.random() < 0.5:
            self.left -= 1
            self.injected += 1
            raise self.error


@dataclass
class _Posted:
    statuses: Counter[int] = field(default_factory=Counter)
    said: dict[str, str] = field(default_factory=dict)  # phone -> kind of reply
    confirmed_in_answer: Counter[str] = field(default_factory=Counter)


@dataclass
class _Outcome:
    kept: int | None
    rows: Counter[str]
    unfinished: int | None
    status_of: dict[str, str]
    alerted: set[str]


def db_faults(database_url: str, *, patients: int, posts: int, seed: int) -> Result:
    """Signed replies posted while statements of the webhook's own transactions fail as a
    lock or a serialization failure (up to 4 per request, at random statements): the reply
    must be kept, a STOP honoured before the next send, a red flag alerted, and the clock
    tick must finish what the webhook could not."""
    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    result = Result(
        "inbound under database faults",
        f"{posts} signed replies (STOP, red flag or an answer; a fifth redelivered) before"
        f" {patients} nudges go out, up to 4 statements of each request failing as a"
        " transient database error; then the clock tick",
    )
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        runtime = build_runtime(base_settings(database_url, fake))
        client = create_app(runtime=runtime).test_client()
        faults = _Faults(rng, _transient_error(database_url))
        posted = _Posted()
        try:
            make_cohort(runtime.session_factory, patients, consent_method="proof")
            plan_nudges(runtime.session_factory, NOW)
            phones = rng.sample([cohort_phone(i) for i in range(patients)], posts)
            event.listen(runtime.engine, "before_cursor_execute", faults.maybe_fail)
            try:
                with freeze_time(NOW - dt.timedelta(minutes=10)):
                    _post_all(client, rng, faults, posted, phones)
            finally:
                faults.left = 0
                event.remove(runtime.engine, "before_cursor_execute", faults.maybe_fail)
            factory = build_factory(database_url)
            with factory() as session:
                kept = session.scalar(
                    select(func.count(InboundMessage.id)).where(InboundMessage.outcome == "error")
                )
            run_clock_tick(
                runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, NOW
            )
            settle(runtime, NOW)
            outcome = _read_outcome(factory, phones, kept)
        finally:
            runtime.close()
        _judge(result, fake, faults, posted, outcome, posts=posts)
        delivery_checks(result, fake, build_factory(database_url), patients)
    return result


def _post_all(
    client: FlaskClient, rng: random.Random, faults: _Faults, posted: _Posted, phones: list[str]
) -> None:
    """Each phone's reply, a fifth of them delivered twice, each delivery with a new budget
    of up to 4 failing statements."""
    for phone in phones:
        kind = rng.choice(list(_FAULT_REPLIES))
        posted.said[phone] = kind
        params = inbound_params(phone, _FAULT_REPLIES[kind])
        for delivery in range(2 if rng.random() < 0.2 else 1):
            faults.left = rng.randint(0, 4)
            response = client.post(
                "/sms/inbound",
                data=params,
                headers={"X-Twilio-Signature": sign("/sms/inbound", params)},
            )
            posted.statuses[response.status_code] += 1
            if delivery == 0 and "<Message>" in response.get_data(as_text=True):
                posted.confirmed_in_answer[phone] += 1


def _read_outcome(factory: sessionmaker[Session], phones: list[str], kept: int | None) -> _Outcome:
    with factory() as session:
        rows = Counter(
            session.scalars(
                select(InboundMessage.from_e164).where(InboundMessage.from_e164.in_(phones))
            )
        )
        unfinished = session.scalar(
            select(func.count(InboundMessage.id)).where(
                InboundMessage.outcome.in_(("error", "recovering", "error_unrecovered"))
            )
        )
        status_of = dict(
            session.execute(
                select(Patient.phone_e164, Patient.status).where(Patient.phone_e164.in_(phones))
            ).all()
        )
        alerted = set(
            session.scalars(
                select(Patient.phone_e164)
                .join(Alert, Alert.patient_id == Patient.id)
                .where(Alert.kind == AlertKind.RED_FLAG)
            )
        )
    return _Outcome(kept, rows, unfinished, status_of, alerted)


def _judge(
    result: Result,
    fake: FakeTwilio,
    faults: _Faults,
    posted: _Posted,
    outcome: _Outcome,
    *,
    posts: int,
) -> None:
    said = posted.said
    stops = [ph for ph, kind in said.items() if kind == "stop"]
    flags = [ph for ph, kind in said.items() if kind == "red_flag"]
    nudged_after_stop = sum(
        1 for ph in stops for m in fake.sent_to(ph) if "nudge=" in (m.status_callback or "")
    )
    confirmations = {
        ph: posted.confirmed_in_answer[ph]
        + sum(1 for m in fake.sent_to(ph) if "nudge=" not in (m.status_callback or ""))
        for ph in stops
    }
    result.numbers.update(
        replies=dict(Counter(said.values())),
        responses=dict(posted.statuses),
        faults_injected=faults.injected,
        kept_for_the_tick=outcome.kept,
        stop_confirmations=dict(Counter(confirmations.values())),
    )
    checks = result.checks
    checks["faults injected and texts kept for the tick"] = faults.injected > 0 and bool(
        outcome.kept
    )
    checks["no 500"] = set(posted.statuses) == {200}
    rows = outcome.rows
    checks["every reply stored once"] = len(rows) == posts and set(rows.values()) == {1}
    checks["none left unprocessed after the tick"] = outcome.unfinished == 0
    checks["every STOP honoured, no nudge after it"] = nudged_after_stop == 0 and all(
        outcome.status_of[ph] == PatientStatus.OPTED_OUT for ph in stops
    )
    checks["exactly one STOP confirmation each"] = set(confirmations.values()) <= {1}
    checks["every red flag alerted"] = all(ph in outcome.alerted for ph in flags)
