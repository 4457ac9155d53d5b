"""The load proof: signed replies and status callbacks (half of them repeats) at a fixed
rate against gunicorn while a dispatcher sends a cohort's nudges; nothing answers 500,
nothing is stored twice, SQLite never reports a lock."""

from __future__ import annotations

import random
import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import select

from coachbot.models import DeliveryEvent, InboundMessage
from coachbot.runtime import build_runtime
from coachbot.services.dispatch import plan_nudges
from proof.scenarios import (
    ACCOUNT_SID,
    NOW,
    Result,
    base_settings,
    build_factory,
    delivery_checks,
)
from proof.web_process import free_port, post_signed, start_gunicorn, web_env
from tests.support.cohort import cohort_phone, make_cohort
from tests.support.dispatcher_process import start_dispatcher
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, inbound_params, sign


def load(database_url: str, *, nudges: int, rate: int, seconds: float, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    result = Result(
        "load",
        f"signed replies + status callbacks (half repeats) at {rate}/s for {seconds:.0f} s"
        f" against gunicorn (2 workers) while a dispatcher sends {nudges} nudges",
    )
    with (
        FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake,
        tempfile.TemporaryFile("w+") as log_file,
    ):
        config = base_settings(database_url, fake)
        runtime = build_runtime(config)
        try:
            make_cohort(runtime.session_factory, nudges, consent_method="proof")
            plan_nudges(runtime.session_factory, NOW)
        finally:
            runtime.close()
        port = free_port()
        web = start_gunicorn(port, web_env(database_url, SMS_BACKEND="console"), log_file)
        worker: subprocess.Popen[str] | None = None
        traffic = _Traffic(port, rng, fake, nudges)
        try:
            worker = start_dispatcher(config, NOW, stderr=subprocess.DEVNULL)
            elapsed = traffic.run(rate, seconds)
            worker.communicate(timeout=600)
        finally:
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait()
            web.terminate()
            web.wait(timeout=30)
        log_file.seek(0)
        logs = log_file.read()
        factory = build_factory(database_url)
        with factory() as session:
            stored = list(session.scalars(select(InboundMessage.provider_sid)))
            events = session.execute(select(DeliveryEvent.provider_sid, DeliveryEvent.status)).all()
        codes = traffic.codes
        result.numbers.update(
            requests=sum(codes.values()),
            achieved_rate=f"{sum(codes.values()) / elapsed:.0f}/s",
            responses=dict(sorted(codes.items())),
            database_locked=logs.count("database is locked"),
            replies_posted=len(traffic.inbound_sids),
            replies_stored=len(stored),
            callbacks_posted=len(traffic.callbacks),
            delivery_events=len(events),
        )
        result.checks["0 responses of 500"] = not any(c >= 500 or c < 0 for c in codes)
        result.checks['0 "database is locked"'] = "database is locked" not in logs
        result.checks["every reply stored once"] = sorted(stored) == sorted(traffic.inbound_sids)
        result.checks["each callback recorded once"] = (
            len(events) == len(set(events))
            and {(sid, status) for sid, status in events} >= traffic.callbacks
        )
        delivery_checks(result, fake, factory, nudges)
    return result


@dataclass
class _Traffic:
    """The open-loop stream of POSTs: new replies, status callbacks for texts the stand-in
    has, and repeats of either; what was posted, and each answer's code."""

    port: int
    rng: random.Random
    fake: FakeTwilio
    nudges: int
    codes: Counter[int] = field(default_factory=Counter)
    inbound_sids: set[str] = field(default_factory=set)
    callbacks: set[tuple[str, str]] = field(default_factory=set)
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (path, body, signature)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _new_request(self) -> tuple[str, dict[str, str]] | None:
        rng = self.rng
        if self.sent and rng.random() < 0.5:
            return None  # a repeat, chosen by the caller
        if rng.random() < 0.5:
            params = inbound_params(
                cohort_phone(rng.randrange(self.nudges)), rng.choice(["2", "done"])
            )
            self.inbound_sids.add(params["MessageSid"])
            return "/sms/inbound", params
        messages = self.fake.messages
        if not messages:
            return None
        message = rng.choice(messages)
        status = rng.choice(["sent", "delivered"])
        url = message.status_callback or ""
        path = url[len(PUBLIC_BASE_URL) :] if url.startswith(PUBLIC_BASE_URL) else url
        self.callbacks.add((message.sid, status))
        return path, self.fake.status_callback_params(message.sid, status)

    def _post(self, path: str, body: str, signature: str) -> None:
        code = post_signed(self.port, path, body, signature)
        with self.lock:
            self.codes[code] += 1

    def run(self, rate: int, seconds: float) -> float:
        """Posts at `rate`/s for `seconds`; returns the seconds the schedule took."""
        with ThreadPoolExecutor(max_workers=32) as pool:
            start = time.monotonic()
            for i in range(int(rate * seconds)):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # open loop: the schedule, not the replies, paces it
                made = self._new_request()
                if made is None:
                    if not self.sent:
                        continue
                    path, body, signature = self.rng.choice(self.sent)
                else:
                    path, params = made
                    body = urlencode(params)
                    signature = sign(path, params)
                    self.sent.append((path, body, signature))
                pool.submit(self._post, path, body, signature)
            return time.monotonic() - start
