"""The close-watch scenario: `patients` patients in close watch get their caregiver's daily
check at the same minute from two real dispatcher processes; a tenth of the caregivers who
got it answer WORRIED through the real webhook (gunicorn, two workers, pager threads).
Every concern must be paged within 60 s, every check sent once, and none sent to a
caregiver who has not said YES, has said STOP, or whose number is suppressed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.domain import close_watch
from coachbot.domain.clock import utcnow
from coachbot.domain.states import PatientStatus
from coachbot.models import (
    Alert,
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    InboundMessage,
    Page,
    Patient,
)
from coachbot.runtime import build_runtime
from coachbot.services import consent, oncall, program_edits
from coachbot.services import paging as pager
from coachbot.services.staff import create_staff_user
from coachbot.settings import Settings
from proof.scenarios import (
    ACCOUNT_SID,
    BACKUP_EMAIL,
    FROM_NUMBER,
    ONCALL_EMAIL,
    ONCALL_PHONE,
    ROOT,
    Result,
    _free_port,
    _percentile,
    base_settings,
    build_factory,
    start_gunicorn,
)
from tests.support.dispatcher_process import start_dispatcher
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, inbound_params, sign

CONCERN = "caregiver_concern"
# One caregiver in twenty has not said YES, one has said STOP, one is suppressed.
_PENDING, _OPTED_OUT, _SUPPRESSED = 0, 1, 2


def caregiver_phone(i: int) -> str:
    return f"+1646{5550000 + i:07d}"[:12]


def _midday_zone(now: dt.datetime) -> ZoneInfo:
    """A fixed-offset zone where it is midday now: the check time falls in the send window."""
    for offset in range(-12, 15):
        zone = ZoneInfo(f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}")
        if 11 <= now.astimezone(zone).hour < 15:
            return zone
    raise AssertionError("some offset is always midday")


def _kind(i: int) -> int | None:
    return i % 20 if i % 20 in (_PENDING, _OPTED_OUT, _SUPPRESSED) else None


def _seed(factory: sessionmaker[Session], patients: int, zone: ZoneInfo, now: dt.datetime) -> None:
    today = now.astimezone(zone).date()
    with factory.begin() as session:
        session.execute(
            insert(Patient),
            [
                {
                    "first_name": f"P{i}",
                    "phone_e164": f"+1617{5550000 + i:07d}"[:12],
                    "timezone": zone.key,
                    "language": "en",
                    "status": PatientStatus.ACTIVE,
                    "consent_at": now,
                    "consent_method": "proof",
                    "opted_in_at": now,
                    "enrolled_at": now,
                    "updated_at": now,
                    "close_watch_from": today,
                }
                for i in range(patients)
            ],
        )
        status: dict[int | None, PatientStatus] = {
            _PENDING: PatientStatus.PENDING_CONSENT,
            _OPTED_OUT: PatientStatus.OPTED_OUT,
        }
        session.execute(
            insert(Caregiver),
            [
                {
                    "first_name": f"C{i}",
                    "phone_e164": caregiver_phone(i),
                    "language": "en",
                    "timezone": zone.key,
                    "status": status.get(_kind(i), PatientStatus.ACTIVE),
                    "invited_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(patients)
            ],
        )
        patient_ids = session.scalars(select(Patient.id).order_by(Patient.id)).all()
        caregiver_ids = session.scalars(select(Caregiver.id).order_by(Caregiver.id)).all()
        session.execute(
            insert(CaregiverLink),
            [
                {"patient_id": p, "caregiver_id": c, "linked_at": now, "linked_by": "proof"}
                for p, c in zip(patient_ids, caregiver_ids, strict=True)
            ],
        )
        for i in range(patients):
            if _kind(i) == _SUPPRESSED:
                consent.suppress(session, caregiver_phone(i), source="proof", text=None, now=now)


def _setup(config: Settings, patients: int, zone: ZoneInfo, now: dt.datetime) -> None:
    runtime = build_runtime(config)
    try:
        _seed(runtime.session_factory, patients, zone, now)
        watch = dataclasses.replace(
            close_watch.DEFAULTS,
            check_time=now.astimezone(zone).time().replace(second=0, microsecond=0),
        )
        program_edits.save_close_watch(
            runtime.session_factory, "standard", watch, base_version=1, actor="proof", now=now
        )
        for email, phone in ((ONCALL_EMAIL, ONCALL_PHONE), (BACKUP_EMAIL, None)):
            create_staff_user(
                runtime.session_factory,
                email=email,
                role="clinician",
                password="proof-password-0",  # noqa: S106 - loopback only
                now=now,
                actor="proof",
                phone=phone,
            )
        oncall.set_override(
            runtime.session_factory,
            primary_email=ONCALL_EMAIL,
            backup_email=BACKUP_EMAIL,
            now=now,
            actor="proof",
        )
    finally:
        runtime.close()


def close_watch_checks(database_url: str, *, patients: int, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311 - reproducible choice, not crypto
    concerns = patients // 10
    result = Result(
        "close_watch",
        f"{patients} patients in close watch, their caregivers' checks due at the same minute"
        f" from 2 dispatcher processes; {concerns} caregivers answer WORRIED through the"
        " webhook (gunicorn, 2 workers, pager threads); 1 caregiver in 20 pending, 1 opted"
        " out, 1 suppressed",
    )
    now = utcnow().replace(second=0, microsecond=0)
    zone = _midday_zone(now)
    with (
        FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake,
        tempfile.TemporaryFile("w+") as log_file,
    ):
        config = base_settings(database_url, fake)
        _setup(config, patients, zone, now)
        dispatchers = [start_dispatcher(config, now, stderr=subprocess.DEVNULL) for _ in range(2)]
        outputs = [d.communicate(timeout=600)[0] for d in dispatchers]
        eligible = [i for i in range(patients) if _kind(i) is None]
        ineligible = [i for i in range(patients) if _kind(i) is not None]
        texts = {i: len(fake.sent_to(caregiver_phone(i))) for i in range(patients)}
        factory = build_factory(database_url)
        with factory() as session:
            states = Counter(session.scalars(select(CaregiverCheck.state)))
        result.numbers.update(
            eligible=len(eligible),
            checks=dict(sorted(states.items())),
            dispatchers=" | ".join(o.strip().splitlines()[-1] for o in outputs if o.strip()),
        )
        result.checks["every opted-in caregiver got the check once"] = all(
            texts[i] == 1 for i in eligible
        )
        result.checks["none to a caregiver pending, opted out or suppressed"] = all(
            texts[i] == 0 for i in ineligible
        )
        result.checks["every check row sent or skipped, none left"] = states == Counter(
            sent=len(eligible), skipped=len(ineligible)
        )
        _answer(result, config, database_url, fake, log_file, rng.sample(eligible, concerns))
    return result


def _answer(
    result: Result,
    config: Settings,
    database_url: str,
    fake: FakeTwilio,
    log_file: Any,
    answering: list[int],
) -> None:
    """WORRIED from each answering caregiver through the signed webhook; the web workers'
    pagers page, the clock's paging step (once a second) catches any they missed."""
    port = _free_port()
    web = start_gunicorn(port, _web_env(database_url, fake, config), log_file)
    clock_runtime = build_runtime(config)
    stop = threading.Event()

    def clock() -> None:
        while not stop.wait(1.0):
            pager.run_due(
                clock_runtime.session_factory,
                clock_runtime.gateway,
                clock_runtime.settings,
                utcnow(),
            )

    clock_thread = threading.Thread(target=clock, name="proof-clock", daemon=True)
    codes: Counter[int] = Counter()
    posted_at: dict[str, float] = {}
    lock = threading.Lock()

    def post(params: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/sms/inbound",
            data=urlencode(params).encode(),
            headers={
                "X-Twilio-Signature": sign("/sms/inbound", params),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        with lock:
            posted_at[params["MessageSid"]] = time.time()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                code = response.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError:
            code = -1
        with lock:
            codes[code] += 1

    try:
        _wait_for_port(port, web)
        clock_thread.start()
        with ThreadPoolExecutor(max_workers=16) as pool:
            for i in answering:
                pool.submit(post, inbound_params(caregiver_phone(i), "WORRIED"))
        _wait_for_pages(build_factory(database_url), len(answering))
    finally:
        stop.set()
        clock_thread.join(timeout=30)
        clock_runtime.close()
        web.terminate()
        web.wait(timeout=30)
    log_file.seek(0)
    result.numbers["web_tracebacks"] = log_file.read().count("Traceback")
    _page_checks(result, config, database_url, fake, posted_at, codes, len(answering))


def _web_env(database_url: str, fake: FakeTwilio, config: Settings) -> dict[str, str]:
    """gunicorn's environment: the Twilio stand-in, and the web workers' pager threads on."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SECRET_KEY": "proof-secret-key-that-is-long-enough-0",
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake.base_url,
        "CLINIC_NAME": config.clinic_name,
        "PAGER_ENABLED": "1",
    }


def _wait_for_port(port: int, web: subprocess.Popen[bytes]) -> None:
    """Until a worker answers /healthz: on a loaded machine the port opens long before
    both workers have imported the app, and the first answers would time out."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                pass
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline or web.poll() is not None:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)


def _wait_for_pages(factory: sessionmaker[Session], expected: int) -> None:
    """Until every concern's first page is out, or 90 s."""
    settle_by = time.monotonic() + 90
    while time.monotonic() < settle_by:
        with factory() as session:
            paged = session.scalar(
                select(func.count(func.distinct(Page.alert_id)))
                .join(Alert, Alert.id == Page.alert_id)
                .where(Alert.kind == CONCERN, Page.state == "sent")
            )
        if (paged or 0) >= expected:
            return
        time.sleep(0.5)


def _page_checks(
    result: Result,
    config: Settings,
    database_url: str,
    fake: FakeTwilio,
    posted_at: dict[str, float],
    codes: Counter[int],
    answers: int,
) -> None:
    clinic = config.clinic_name
    with build_factory(database_url)() as session:
        concern_alerts = dict(
            session.execute(
                select(Alert.id, InboundMessage.provider_sid)
                .join(InboundMessage, InboundMessage.id == Alert.inbound_message_id)
                .where(Alert.kind == CONCERN)
            ).all()
        )
    accepted: dict[int, float] = {}
    for message in fake.sent_to(ONCALL_PHONE):
        for aid in concern_alerts:
            if message.body.startswith(f"{clinic}: URGENT alert #{aid}."):
                accepted.setdefault(aid, message.date_created.timestamp())
    to_page = [accepted[a] - posted_at[s] for a, s in concern_alerts.items() if a in accepted]
    result.numbers.update(
        answers_posted=answers,
        responses=dict(sorted(codes.items())),
        concern_alerts=len(concern_alerts),
        paged=len(accepted),
        time_to_page_p50=f"{_percentile(to_page, 0.5):.2f}s",
        time_to_page_max=f"{max(to_page, default=0):.2f}s",
    )
    result.checks["0 responses of 500"] = not any(c >= 500 or c < 0 for c in codes)
    result.checks["every concern raised one urgent alert"] = (
        sorted(concern_alerts.values()) == sorted(posted_at) and len(posted_at) == answers
    )
    result.checks["every concern paged within 60 s"] = len(to_page) == answers and all(
        t <= 60 for t in to_page
    )
