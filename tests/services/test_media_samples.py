"""Handwriting samples by MMS, end to end: signed webhook posts carrying MediaUrlN, the real
pipeline and database (SQLite, or PostgreSQL with TEST_DATABASE_URL), the real twilio SDK
fetching from and deleting at the loopback Twilio stand-in, the real clock tick."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from freezegun import freeze_time
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from coachbot.app import create_app
from coachbot.models import CaregiverCheck, InboundMessage, MediaSample, OutboundMessage
from coachbot.runtime import Runtime, build_runtime
from coachbot.services import inbound, media_fetch, media_samples
from coachbot.services.demo_samples import scribble
from coachbot.services.inbound import EMPTY_TWIML
from coachbot.services.tick import run_clock_tick
from coachbot.settings import Settings
from tests.support.builders import (
    MONDAY_0830_NEW_YORK,
    make_caregiver,
    make_patient,
    make_sent_nudge,
)
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, FakeTwilio, Fault
from tests.support.twilio_signing import AUTH_TOKEN, inbound_params, new_message_sid, post_signed

T0 = MONDAY_0830_NEW_YORK
PNG = scribble(1, 0.2)
PDF = b"%PDF-1.7\n" + b"\x00" * 200
SIX_MB_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * (6 * 1024 * 1024)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    # The stand-in's token is the one the webhook's signatures use: one Twilio account.
    with FakeTwilio(auth_token=AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def media_settings(settings: Settings, fake: FakeTwilio, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        settings,
        twilio_account_sid=DEFAULT_ACCOUNT_SID,
        twilio_api_base_url=fake.base_url,
        media_dir=str(tmp_path / "media"),
    )


@pytest.fixture
def rt(media_settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(media_settings)
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime) -> Any:
    app = create_app(runtime=rt)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def db(rt: Runtime) -> Iterator[Session]:
    with rt.read_session_factory() as s:
        yield s


def mms(
    web: Any,
    fake: FakeTwilio,
    sender: str,
    files: list[tuple[bytes, str]],
    *,
    body: str = "",
    at: dt.datetime = T0,
    sid: str | None = None,
    fetch: bool = True,
) -> tuple[str, str]:
    """Posts an MMS; `fetch=False` is a process that died once the text was committed.
    Returns (the TwiML answer, the MessageSid)."""
    sid = sid or new_message_sid()
    urls = [
        fake.base_url + fake.media.add(content, kind, message_sid=sid) for content, kind in files
    ]
    params = inbound_params(sender, body, sid) | {"NumMedia": str(len(urls))}
    params |= {f"MediaUrl{i}": url for i, url in enumerate(urls)}
    params |= {f"MediaContentType{i}": kind for i, (_, kind) in enumerate(files)}
    with freeze_time(at):
        response = post_signed(web, "/sms/inbound", params)
        assert response.status_code == 200
        answer = response.get_data(as_text=True)
        if fetch:
            response.close()  # what the WSGI server does once the answer is sent
    return answer, sid


def samples(db: Session) -> list[MediaSample]:
    db.rollback()  # a fresh snapshot: the webhook and the tick commit in their own sessions
    return list(db.scalars(select(MediaSample).order_by(MediaSample.id)))


def stored_files(settings: Settings) -> list[Path]:
    root = Path(settings.media_dir)
    return sorted(p for p in root.glob("*") if not p.name.startswith(".")) if root.exists() else []


def test_a_picture_only_mms_is_stored_twilios_copy_deleted_and_thanked(
    web: Any, fake: FakeTwilio, db: Session, media_settings: Settings
) -> None:
    patient = make_patient(db, first_name="Maya")
    answer, sid = mms(web, fake, patient.phone_e164, [(PNG, "image/png")])
    assert "your photo reached Riverside Recovery Clinic" in answer
    (sample,) = samples(db)
    assert (sample.state, sample.patient_id, sample.caregiver_id) == ("stored", patient.id, None)
    assert (sample.content_type, sample.size_bytes, sample.attempts) == ("image/png", len(PNG), 1)
    assert sample.media_url is None  # cleared once Twilio's copy was deleted
    assert sample.local_date == dt.date(2026, 11, 23)  # Maya's day in New York
    assert fake.media.held() == []
    assert len(fake.media.deleted) == 1
    (path,) = stored_files(media_settings)
    assert path.read_bytes() == PNG
    assert path.name == sample.storage_key
    assert sid in path.name


@pytest.mark.parametrize(
    ("content", "kind", "reason"),
    [(PDF, "application/pdf", "not_image"), (SIX_MB_JPEG, "image/jpeg", "too_large")],
)
def test_anything_but_a_picture_of_at_most_5_mb_is_refused_deleted_and_answered_politely(
    web: Any,
    fake: FakeTwilio,
    db: Session,
    media_settings: Settings,
    content: bytes,
    kind: str,
    reason: str,
) -> None:
    patient = make_patient(db, language="es")
    mms(web, fake, patient.phone_e164, [(content, kind)])
    (sample,) = samples(db)
    assert (sample.state, sample.last_error, sample.storage_key) == ("refused", reason, None)
    assert sample.media_url is None
    assert fake.media.held() == []  # Twilio's copy deleted too: it is kept nowhere
    assert stored_files(media_settings) == []
    (told,) = db.scalars(select(OutboundMessage).where(OutboundMessage.kind == "media_refused"))
    assert told.template_id == "media.refused"
    assert told.to_e164 == patient.phone_e164
    assert told.body.startswith("Lo sentimos")
    assert told.segments == 1


def test_the_text_of_an_mms_still_goes_through_the_pipeline(
    web: Any, fake: FakeTwilio, db: Session
) -> None:
    patient = make_patient(db)
    make_sent_nudge(db, patient, sent_at=T0 - dt.timedelta(minutes=5), window=dt.timedelta(hours=4))
    db.commit()
    answer, sid = mms(web, fake, patient.phone_e164, [(PNG, "image/png")], body="DONE")
    assert "photo" not in answer  # the coaching reply to DONE, not the thank-you
    row = db.scalars(select(InboundMessage).where(InboundMessage.provider_sid == sid)).one()
    assert row.outcome == "done"
    assert row.num_media == 1
    assert [s.state for s in samples(db)] == ["stored"]


def test_a_retried_webhook_adds_no_second_row(web: Any, fake: FakeTwilio, db: Session) -> None:
    patient = make_patient(db)
    files = [(PNG, "image/png"), (PNG, "image/png")]
    sid = new_message_sid()
    urls = [fake.base_url + fake.media.add(c, k, message_sid=sid) for c, k in files]
    params = inbound_params(patient.phone_e164, "", sid) | {"NumMedia": "2"}
    params |= {f"MediaUrl{i}": url for i, url in enumerate(urls)}
    with freeze_time(T0):
        first = post_signed(web, "/sms/inbound", params)
        first.close()
        again = post_signed(web, "/sms/inbound", params)
        again.close()
    assert again.get_data(as_text=True) == first.get_data(as_text=True)
    assert [(s.media_index, s.state) for s in samples(db)] == [(0, "stored"), (1, "stored")]
    assert len(fake.media.downloads) == 2


def test_a_failed_fetch_stays_pending_and_the_tick_stores_it(
    web: Any, fake: FakeTwilio, db: Session, rt: Runtime, media_settings: Settings
) -> None:
    patient = make_patient(db)
    fake.inject(Fault.server_error(), kinds=("media",))
    mms(web, fake, patient.phone_e164, [(PNG, "image/png")])
    (sample,) = samples(db)
    assert (sample.state, sample.attempts, sample.last_error) == (
        "pending",
        1,
        "media fetch answered 500",
    )
    assert sample.media_url is not None
    assert fake.media.held() != []
    # Too early for the second attempt: the tick leaves it.
    early = run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, T0)
    assert early.samples == 0
    assert samples(db)[0].attempts == 1
    later = T0 + media_samples.RETRY_STEP
    summary = run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, later)
    assert summary.samples == 1
    assert "samples=1" in summary.as_text()
    (sample,) = samples(db)
    assert (sample.state, sample.attempts, sample.media_url) == ("stored", 2, None)
    assert fake.media.held() == []
    assert len(stored_files(media_settings)) == 1


def test_a_fetch_killed_midway_is_finished_by_the_tick(
    web: Any, fake: FakeTwilio, db: Session, rt: Runtime
) -> None:
    patient = make_patient(db)
    # The process died once the text was committed: its fetch never ran.
    answer, _ = mms(web, fake, patient.phone_e164, [(PNG, "image/png")], fetch=False)
    assert "photo" in answer
    assert [(s.state, s.attempts) for s in samples(db)] == [("pending", 0)]
    run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, T0)
    assert [(s.state, s.media_url) for s in samples(db)] == [("stored", None)]


def test_a_crash_between_storing_and_deleting_is_finished_by_the_tick(
    web: Any, fake: FakeTwilio, db: Session, rt: Runtime
) -> None:
    patient = make_patient(db)
    media_requests: list[int] = []

    def the_delete(_params: Any) -> bool:  # the second media request: GET, then DELETE
        media_requests.append(1)
        return len(media_requests) == 2

    fake.inject(Fault.server_error(), kinds=("media",), when=the_delete)
    mms(web, fake, patient.phone_e164, [(PNG, "image/png")])
    (sample,) = samples(db)
    assert sample.state == "stored"
    assert sample.media_url is not None
    assert len(fake.media.held()) == 1
    assert sample.attempts == 2  # the download and the failed deletion: the next is spaced
    run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, T0)
    assert samples(db)[0].media_url is not None
    later = T0 + 2 * media_samples.RETRY_STEP
    run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, later)
    assert samples(db)[0].media_url is None
    assert fake.media.held() == []


def test_bounded_attempts_then_gave_up_with_a_log_line_naming_no_url_or_number(
    web: Any, fake: FakeTwilio, db: Session, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    patient = make_patient(db)
    fake.inject(Fault.server_error(), kinds=("media",), times=None)
    caplog.set_level(logging.INFO)
    mms(web, fake, patient.phone_e164, [(PNG, "image/png")])
    step = media_samples.RETRY_STEP
    for n in range(1, media_samples.MAX_ATTEMPTS + 2):
        run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, T0 + step * n)
    (sample,) = samples(db)
    assert (sample.state, sample.attempts) == ("gave_up", media_samples.MAX_ATTEMPTS)
    gave_up = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert gave_up == [
        f"media sample {sample.id} gave up after 5 attempts (media fetch answered 500)"
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records if "media" in r.name)
    assert "http" not in everything
    assert patient.phone_e164[-7:] not in everything


def test_a_caregivers_picture_is_about_the_patient_their_latest_check_was_about(
    web: Any, fake: FakeTwilio, db: Session
) -> None:
    ana = make_patient(db, first_name="Ana")
    bo = make_patient(db, first_name="Bo", tz="America/Los_Angeles")
    carer = make_caregiver(db, ana, first_name="Sam")
    make_caregiver(db, bo, phone=carer.phone_e164)
    for patient, sent in ((ana, T0 - dt.timedelta(hours=20)), (bo, T0 - dt.timedelta(hours=2))):
        db.add(
            CaregiverCheck(
                patient_id=patient.id,
                caregiver_id=carer.id,
                kind="observation",
                local_date=sent.date(),
                items=4,
                due_at=sent,
                state="sent",
                sent_at=sent,
                created_at=sent,
            )
        )
    db.commit()
    mms(web, fake, carer.phone_e164, [(PNG, "image/png")])
    (sample,) = samples(db)
    assert (sample.patient_id, sample.caregiver_id, sample.state) == (bo.id, carer.id, "stored")
    assert sample.local_date == dt.date(2026, 11, 23)  # 05:30 in Los Angeles


def test_a_caregiver_of_one_patient_needs_no_check(web: Any, fake: FakeTwilio, db: Session) -> None:
    ana = make_patient(db, first_name="Ana")
    carer = make_caregiver(db, ana)
    mms(web, fake, carer.phone_e164, [(PNG, "image/png")])
    assert [(s.patient_id, s.caregiver_id, s.state) for s in samples(db)] == [
        (ana.id, carer.id, "stored")
    ]


def test_a_picture_no_patient_can_be_named_for_is_kept_nowhere(
    web: Any, fake: FakeTwilio, db: Session, media_settings: Settings
) -> None:
    ana, bo = make_patient(db, first_name="Ana"), make_patient(db, first_name="Bo")
    carer = make_caregiver(db, ana)
    make_caregiver(db, bo, phone=carer.phone_e164)
    mms(web, fake, carer.phone_e164, [(PNG, "image/png")])
    mms(web, fake, "+16175559876", [(PNG, "image/png")])  # a number no record holds
    assert [(s.patient_id, s.state, s.last_error) for s in samples(db)] == [
        (None, "refused", "no_patient"),
        (None, "refused", "no_patient"),
    ]
    assert fake.media.downloads == []
    assert fake.media.held() == []
    assert stored_files(media_settings) == []
    refusals = db.scalars(select(OutboundMessage).where(OutboundMessage.kind == "media_refused"))
    assert list(refusals) == []


def test_a_text_the_pipeline_could_not_handle_keeps_its_pictures(
    web: Any, fake: FakeTwilio, db: Session, rt: Runtime
) -> None:
    patient = make_patient(db)
    failures = {"left": inbound.ATTEMPTS}

    def fail_the_pipelines_last_write(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE INBOUND_MESSAGES") and failures["left"]:
            failures["left"] -= 1
            if rt.engine.dialect.name == "postgresql":
                raise psycopg.errors.SerializationFailure("could not serialize access")
            raise sqlite3.OperationalError("database is locked")

    event.listen(rt.engine, "before_cursor_execute", fail_the_pipelines_last_write)
    try:
        answer, sid = mms(web, fake, patient.phone_e164, [(PNG, "image/png")])
    finally:
        event.remove(rt.engine, "before_cursor_execute", fail_the_pipelines_last_write)
    assert failures["left"] == 0
    assert answer == EMPTY_TWIML  # kept for the tick's recovery, answered empty
    db.rollback()
    row = db.scalars(select(InboundMessage).where(InboundMessage.provider_sid == sid)).one()
    assert row.outcome == inbound.FAILED
    assert [(s.inbound_message_id, s.patient_id, s.state) for s in samples(db)] == [
        (row.id, patient.id, "stored")
    ]
    assert fake.media.held() == []


def test_a_deletion_that_keeps_failing_is_spaced_and_then_left_alone(
    web: Any, fake: FakeTwilio, db: Session, rt: Runtime
) -> None:
    patient = make_patient(db)
    media_requests: list[int] = []

    def all_but_the_download(_params: Any) -> bool:
        media_requests.append(1)
        return len(media_requests) > 1

    fake.inject(Fault.server_error(), kinds=("media",), when=all_but_the_download, times=None)
    mms(web, fake, patient.phone_e164, [(PNG, "image/png")])
    for minutes in range(0, 60, 2):  # well past the last attempt
        at = T0 + dt.timedelta(minutes=minutes)
        run_clock_tick(rt.session_factory, rt.gateway, rt.library, rt.settings, at)
    (sample,) = samples(db)
    assert sample.state == "stored"  # the picture is ours; only Twilio's copy is left
    assert sample.media_url is not None
    assert sample.attempts == media_fetch.DELETE_ATTEMPTS
    # One download, then one deletion per attempt: none after the last.
    assert len(media_requests) == media_fetch.DELETE_ATTEMPTS
