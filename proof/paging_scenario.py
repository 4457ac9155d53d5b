"""The paging proof: red flags mixed into signed replies against gunicorn while a dispatcher
sends nudges; the web workers' pager threads page the on-call, the clock's paging step
retries what the Twilio stand-in answered 500, and every page also goes by e-mail."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain.clock import utcnow
from coachbot.models import Alert, InboundMessage, Page
from coachbot.runtime import Runtime, build_runtime
from coachbot.services import oncall
from coachbot.services import paging as pager
from coachbot.services.dispatch import plan_nudges
from coachbot.services.staff import create_staff_user
from coachbot.settings import Settings
from proof.scenarios import (
    ACCOUNT_SID,
    FROM_NUMBER,
    NOW,
    Result,
    base_settings,
    build_factory,
    delivery_checks,
)
from proof.web_process import free_port, post_signed, start_gunicorn, web_env
from tests.support.cohort import cohort_phone, make_cohort
from tests.support.dispatcher_process import start_dispatcher
from tests.support.fake_twilio import FakeTwilio, Fault
from tests.support.smtp_sink import SmtpSink
from tests.support.twilio_signing import AUTH_TOKEN, inbound_params, sign

ONCALL_PHONE = "+13125550142"  # outside the cohort's 617-555 block
ONCALL_EMAIL = "oncall@clinic.example"
BACKUP_EMAIL = "backup@clinic.example"
_RED_FLAGS = ("I had a seizure", "I'm confused")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def paging(
    database_url: str, *, nudges: int, rate: int, seconds: float, red_flags: int, seed: int
) -> Result:
    """Red flags mixed into signed replies at `rate`/s against gunicorn while a dispatcher
    sends nudges. The web workers' pager threads page the on-call; the Twilio stand-in
    answers 500 to every fifth page, which the clock's paging step retries; every page also
    goes by e-mail to a real SMTP server (aiosmtpd) on loopback."""
    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not crypto
    result = Result(
        "paging",
        f"{red_flags} red flags among signed replies at {rate}/s for {seconds:.0f} s against"
        f" gunicorn (2 workers, pager threads) while a dispatcher sends {nudges} nudges;"
        " 1 in 5 pages answered 500; e-mail through aiosmtpd",
    )
    with (
        FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake,
        SmtpSink() as smtp,
        tempfile.TemporaryFile("w+") as log_file,
    ):
        config = dataclasses.replace(
            base_settings(database_url, fake),
            smtp_url=smtp.url,
            paging_from_email="pager@clinic.example",
        )
        _set_up(config, nudges)
        arrivals = _Arrivals()
        fake.inject(Fault.server_error(), times=None, to=ONCALL_PHONE, when=arrivals.record)
        port = free_port()
        env = web_env(
            database_url,
            SMS_BACKEND="twilio",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_FROM_NUMBER=FROM_NUMBER,
            TWILIO_API_BASE_URL=fake.base_url,
            CLINIC_NAME=config.clinic_name,
            SMTP_URL=smtp.url,
            PAGING_FROM_EMAIL="pager@clinic.example",
            PAGER_ENABLED="1",
        )
        web = start_gunicorn(port, env, log_file)
        posts = _Posts(port)
        clock = _Clock(build_runtime(config))
        worker: subprocess.Popen[str] | None = None
        try:
            worker = start_dispatcher(config, NOW, stderr=subprocess.DEVNULL)
            clock.thread.start()
            elapsed = _post_replies(
                posts, rng, nudges=nudges, rate=rate, seconds=seconds, red_flags=red_flags
            )
            # Retried pages back off 10 s: wait until each red flag's page is in, or 90 s.
            _settle(build_factory(database_url), red_flags)
            worker.communicate(timeout=600)
        finally:
            clock.stop()
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait()
            web.terminate()
            web.wait(timeout=30)
        log_file.seek(0)
        logs = log_file.read()
        factory = build_factory(database_url)
        _judge(
            result,
            config,
            fake,
            smtp,
            factory,
            arrivals.seen,
            posts,
            elapsed,
            logs,
            red_flags=red_flags,
        )
        delivery_checks(result, fake, factory, nudges)
    return result


def _set_up(config: Settings, nudges: int) -> None:
    """The cohort, its nudges planned, the on-call and the backup with their override."""
    runtime = build_runtime(config)
    try:
        make_cohort(runtime.session_factory, nudges, consent_method="proof")
        plan_nudges(runtime.session_factory, NOW)
        for email, phone in ((ONCALL_EMAIL, ONCALL_PHONE), (BACKUP_EMAIL, None)):
            create_staff_user(
                runtime.session_factory,
                email=email,
                role="clinician",
                password="proof-password-0",  # noqa: S106 - loopback only
                now=utcnow(),
                actor="proof",
                phone=phone,
            )
        oncall.set_override(
            runtime.session_factory,
            primary_email=ONCALL_EMAIL,
            backup_email=BACKUP_EMAIL,
            now=utcnow(),
            actor="proof",
        )
    finally:
        runtime.close()


@dataclass
class _Arrivals:
    """Every page request that reaches the stand-in, and its time; every fifth fails."""

    seen: list[tuple[str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, params: dict[str, str] | Any) -> bool:
        with self.lock:
            self.seen.append((params.get("Body", ""), time.time()))
            return len(self.seen) % 5 == 0


class _Clock:
    """The clock process's paging step, once a second: retries, and first pages a web
    worker missed."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="proof-clock", daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(1.0):
            pager.run_due(
                self.runtime.session_factory, self.runtime.gateway, self.runtime.settings, utcnow()
            )

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        self.runtime.close()


@dataclass
class _Posts:
    """Signed replies POSTed to the web workers: each answer's code, when each red flag
    went, and every MessageSid sent."""

    port: int
    codes: Counter[int] = field(default_factory=Counter)
    posted_at: dict[str, float] = field(default_factory=dict)  # red flag sid -> wall time
    inbound_sids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, params: dict[str, str]) -> None:
        body, signature = urlencode(params), sign("/sms/inbound", params)
        if params["Body"] in _RED_FLAGS:
            with self.lock:
                self.posted_at[params["MessageSid"]] = time.time()
        code = post_signed(self.port, "/sms/inbound", body, signature)
        with self.lock:
            self.codes[code] += 1


def _post_replies(
    posts: _Posts, rng: random.Random, *, nudges: int, rate: int, seconds: float, red_flags: int
) -> float:
    """`rate` replies a second for `seconds`, `red_flags` of them red flags from distinct
    patients at random slots; returns the seconds it took."""
    flaggers = rng.sample(range(nudges), red_flags)
    total = int(rate * seconds)
    flag_slots = dict(zip(sorted(rng.sample(range(total), red_flags)), flaggers, strict=True))
    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.monotonic()
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if i in flag_slots:
                params = inbound_params(cohort_phone(flag_slots[i]), rng.choice(_RED_FLAGS))
            else:
                params = inbound_params(
                    cohort_phone(rng.randrange(nudges)), rng.choice(["2", "done"])
                )
            posts.inbound_sids.add(params["MessageSid"])
            pool.submit(posts.post, params)
        return time.monotonic() - start


def _settle(factory: sessionmaker[Session], red_flags: int) -> None:
    settle_by = time.monotonic() + 90
    while time.monotonic() < settle_by:
        with factory() as session:
            pending = session.scalar(
                select(func.count()).select_from(Page).where(Page.state.not_in(["sent", "gave_up"]))
            )
            pages = session.scalar(select(func.count()).select_from(Page))
        if pages and not pending and pages >= 2 * red_flags:
            return
        time.sleep(0.5)


def _judge(
    result: Result,
    config: Settings,
    fake: FakeTwilio,
    smtp: SmtpSink,
    factory: sessionmaker[Session],
    arrivals: list[tuple[str, float]],
    posts: _Posts,
    elapsed: float,
    logs: str,
    *,
    red_flags: int,
) -> None:
    """The run's figures and checks, from the database, the stand-in and the mail sink."""
    with factory() as session:
        stored = list(session.scalars(select(InboundMessage.provider_sid)))
        alert_rows = session.execute(
            select(Alert.id, Alert.severity, InboundMessage.provider_sid).join(
                InboundMessage, InboundMessage.id == Alert.inbound_message_id
            )
        ).all()
        page_rows = list(session.scalars(select(Page)))
    urgent = {aid: sid for aid, severity, sid in alert_rows if severity == "urgent"}
    flagged = set(posts.posted_at)
    accepted = _first_seen(
        urgent,
        ((m.body, m.date_created.timestamp()) for m in fake.sent_to(ONCALL_PHONE)),
        config.clinic_name,
    )
    first_request = {
        aid: min(times) for aid, times in _first_seen(urgent, arrivals, config.clinic_name).items()
    }
    posted_at = posts.posted_at
    to_page = [accepted[a][0] - posted_at[s] for a, s in urgent.items() if a in accepted]
    to_request = [first_request[a] - posted_at[s] for a, s in urgent.items() if a in first_request]
    subjects = {m.subject for m in smtp.to(ONCALL_EMAIL)}
    mailed = {aid for aid in urgent if f"[{config.clinic_name}] URGENT alert #{aid}" in subjects}
    retried = sum(1 for p in page_rows if p.channel == "sms" and p.tries > 1)
    codes = posts.codes
    result.numbers.update(
        requests=sum(codes.values()),
        achieved_rate=f"{sum(codes.values()) / elapsed:.0f}/s",
        responses=dict(sorted(codes.items())),
        red_flags_posted=len(flagged),
        urgent_alerts=len(urgent),
        paged_by_sms=len(accepted),
        page_requests=len(arrivals),
        answered_500=len(arrivals) // 5,
        sms_pages_retried=retried,
        emailed=len(mailed),
        time_to_first_page_request_p50=f"{_percentile(to_request, 0.5):.2f}s",
        time_to_first_page_request_p99=f"{_percentile(to_request, 0.99):.2f}s",
        time_to_page_accepted_p50=f"{_percentile(to_page, 0.5):.2f}s",
        time_to_page_accepted_p99=f"{_percentile(to_page, 0.99):.2f}s",
        time_to_page_max=f"{max(to_page, default=0):.2f}s",
        database_locked=logs.count("database is locked"),
    )
    checks = result.checks
    checks["0 responses of 500"] = not any(c >= 500 or c < 0 for c in codes)
    checks["every reply stored once"] = sorted(stored) == sorted(posts.inbound_sids)
    checks["every red flag raised one urgent alert"] = (
        sorted(urgent.values()) == sorted(flagged) and len(flagged) == red_flags
    )
    checks["every urgent alert paged by SMS within 60 s"] = len(to_page) == len(urgent) and all(
        t <= 60 for t in to_page
    )
    checks["first page request p99 <= 5 s"] = (
        len(to_request) == len(urgent) and _percentile(to_request, 0.99) <= 5
    )
    checks["no alert paged twice for one attempt"] = all(
        len(times) == 1 for times in accepted.values()
    ) and not any(p.attempt > 0 for p in page_rows)
    checks["pages answered 500 were retried"] = retried >= 1
    checks["every urgent alert e-mailed"] = mailed == set(urgent)
    checks["every page row sent"] = {p.state for p in page_rows} == {"sent"}


def _first_seen(
    urgent: dict[int, str],
    texts: Iterable[tuple[str, float]],
    clinic_name: str,
) -> dict[int, list[float]]:
    """For each urgent alert, the instants of the page texts about it, in the order seen."""
    seen: dict[int, list[float]] = {}
    for body, at in texts:
        for aid in urgent:
            if body.startswith(f"{clinic_name}: URGENT alert #{aid}."):
                seen.setdefault(aid, []).append(at)
    return seen
