"""Handwriting samples by MMS (issue #16 item 4): a row per picture a patient or caregiver
texted, written with the text itself, then fetched, checked, stored and deleted at Twilio.

1. `record_samples` runs inside the inbound pipeline's transaction: one `media_samples` row
   per `MediaUrl{N}`, state "pending", the URL kept. A retried webhook (same MessageSid) is
   refused by the inbound row's unique key before this runs, so it adds no second row. A
   picture-only MMS is thanked instead of being told "we didn't catch that".
2. `fetch_message_samples` runs once the webhook's transaction has committed (after the
   answer went back to Twilio), `retry_pending` on every clock tick. Each attempt is claimed
   first (its count raised in a transaction of its own), so a process killed mid-download
   leaves a pending row the tick takes again; after MAX_ATTEMPTS failed downloads the sample
   is "gave_up", with a log line naming its id and error code only.
3. A picture of at most 5 MB is saved (the `MediaStore`, files under MEDIA_DIR by default),
   committed as "stored", and only then is Twilio's copy deleted and the URL cleared: a
   crash between the two leaves a stored row with its URL, whose deletion the tick finishes.
   Anything else is "refused": nothing is kept, Twilio's copy is deleted too, and the sender
   gets one polite text (`media.refused`).

Who a sample is about: the patient who texted it; for a caregiver, the patient their latest
check was about, else their only linked patient. A caregiver of several patients with no
check yet gets a row with no patient: the picture is refused like one from an unknown number
(kept nowhere, Twilio's copy deleted, no reply), because guessing would put it on the wrong
patient's page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from coachbot.content import MessageLibrary, RenderedMessage
from coachbot.domain.clock import utcnow
from coachbot.models import (
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    InboundMessage,
    MediaSample,
    OutboundMessage,
    Patient,
)
from coachbot.services.inbound.context import Context
from coachbot.services.inbound.replies import reply_with
from coachbot.services.messaging import send_text, status_callback_url
from coachbot.settings import Settings
from coachbot.sms import media
from coachbot.sms.gateway import SmsGateway
from coachbot.sms.twilio_client import build_twilio_client, close_twilio_client

log = logging.getLogger(__name__)

PENDING, STORED, REFUSED, GAVE_UP = "pending", "stored", "refused", "gave_up"
REFUSED_KIND = "media_refused"  # the outbound kind of the polite refusal
MAX_ATTEMPTS = 5
FETCH_SECONDS = 5.0  # a short deadline per file: the webhook's worker is held meanwhile
RETRY_STEP = dt.timedelta(minutes=2)  # attempt n+1 waits n steps after the text arrived
_URL_COLUMN = 500
# Refusals the sender is told about; the others (a broken or foreign URL) are not theirs.
_TOLD = frozenset(("not_image", "too_large"))
# Refusals of a file Twilio still holds: its copy is deleted (see coachbot.sms.media).
_HELD_AT_TWILIO = frozenset(("not_image", "too_large", "no_patient"))
_NOT_UNDERSTOOD = frozenset(("not_understood", "caregiver.not_understood"))


# --- 1. in the pipeline's transaction ---------------------------------------------------


@dataclass(frozen=True)
class _Sender:
    patient_id: int | None
    caregiver_id: int | None
    timezone: str | None
    language: str


def record_samples(
    ctx: Context, media_urls: Sequence[str], reply: RenderedMessage | None
) -> RenderedMessage | None:
    """Writes a pending row per media URL and returns the reply the text gets: a thank-you
    for a picture-only text from a known sender instead of "we didn't catch that"."""
    if not media_urls:
        return reply
    sender = _sender(ctx)
    local_date = ctx.now.astimezone(ZoneInfo(sender.timezone)).date() if sender.timezone else None
    ctx.connection.execute(
        insert(MediaSample),
        [
            {
                "inbound_message_id": ctx.row.id,
                "media_index": index,
                "patient_id": sender.patient_id,
                "caregiver_id": sender.caregiver_id,
                "media_url": url if len(url) <= _URL_COLUMN else None,
                "state": PENDING if len(url) <= _URL_COLUMN else REFUSED,
                "last_error": None if len(url) <= _URL_COLUMN else "not_twilio_url",
                "attempts": 0,
                "received_at": ctx.now,
                "local_date": local_date,
            }
            for index, url in enumerate(media_urls)
        ],
    )
    # Only a picture without words: a text beside it got the pipeline's own reply.
    picture_only = not ctx.row.body.strip() and sender.patient_id is not None
    if picture_only and reply is not None and reply.template_id in _NOT_UNDERSTOOD:
        return reply_with(ctx, "media.thanks", sender.language)
    return reply


def _sender(ctx: Context) -> _Sender:
    if ctx.patient is not None and not ctx.row.is_proxy:
        p = ctx.patient
        return _Sender(p.id, None, p.timezone, p.language)
    caregiver = ctx.connection.execute(
        select(Caregiver.id, Caregiver.timezone, Caregiver.language).where(
            Caregiver.phone_e164 == ctx.row.from_e164
        )
    ).first()
    if caregiver is None:
        if ctx.patient is not None:  # a caregiver number kept on the patient's record only
            p = ctx.patient
            return _Sender(p.id, None, p.timezone, p.language)
        return _Sender(None, None, None, "en")
    patient_id = _watched_patient(ctx.connection, caregiver.id)
    timezone = caregiver.timezone
    if patient_id is not None:
        timezone = ctx.connection.execute(
            select(Patient.timezone).where(Patient.id == patient_id)
        ).scalar_one()
    return _Sender(patient_id, caregiver.id, timezone, caregiver.language)


def _watched_patient(connection: Connection, caregiver_id: int) -> int | None:
    """The patient a caregiver's picture is about: their latest check's, else their only one."""
    latest = connection.execute(
        select(CaregiverCheck.patient_id)
        .join(
            CaregiverLink,
            (CaregiverLink.patient_id == CaregiverCheck.patient_id)
            & (CaregiverLink.caregiver_id == CaregiverCheck.caregiver_id),
        )
        .where(CaregiverCheck.caregiver_id == caregiver_id, CaregiverCheck.sent_at.is_not(None))
        .order_by(CaregiverCheck.sent_at.desc(), CaregiverCheck.id.desc())
        .limit(1)
    ).scalar()
    if latest is not None:
        return int(latest)
    linked = connection.execute(
        select(CaregiverLink.patient_id).where(CaregiverLink.caregiver_id == caregiver_id).limit(2)
    ).scalars()
    only = list(linked)
    return int(only[0]) if len(only) == 1 else None


# --- 2. after the commit, and on every tick ---------------------------------------------


@dataclass
class FetchCounts:
    stored: int = 0
    refused: int = 0
    failed: int = 0  # still pending, for a later tick
    gave_up: int = 0

    @property
    def total(self) -> int:
        return self.stored + self.refused + self.failed + self.gave_up


@dataclass(frozen=True)
class MediaParts:
    """What fetching needs besides the database: built per process, closed by the caller."""

    session_factory: sessionmaker[Session]
    gateway: SmsGateway
    library: MessageLibrary
    settings: Settings
    store: media.MediaStore
    client: Client | None  # None without Twilio credentials: every fetch then fails


def media_parts(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
) -> MediaParts:
    client = None
    if settings.twilio_account_sid and settings.twilio_auth_token:
        client = build_twilio_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            timeout=FETCH_SECONDS,
        )
    store = media.FileMediaStore(Path(settings.media_dir))
    return MediaParts(session_factory, gateway, library, settings, store, client)


def close_parts(parts: MediaParts) -> None:
    if parts.client is not None:
        close_twilio_client(parts.client)


def fetch_message_samples(parts: MediaParts, provider_sid: str, now: dt.datetime) -> FetchCounts:
    """The webhook's step once its transaction committed: the text's pending samples."""
    with parts.session_factory.begin() as session:
        ids = list(
            session.scalars(
                select(MediaSample.id)
                .join(InboundMessage, InboundMessage.id == MediaSample.inbound_message_id)
                .where(InboundMessage.provider_sid == provider_sid, MediaSample.attempts == 0)
                .order_by(MediaSample.media_index)
            )
        )
    return _work(parts, ids, now)


def retry_pending(parts: MediaParts, now: dt.datetime, limit: int = 50) -> FetchCounts:
    """The tick's step: pending samples whose next attempt is due, and stored or refused
    ones whose copy at Twilio is not deleted yet (a crash came between the two)."""
    with parts.session_factory.begin() as session:
        rows = session.execute(
            select(MediaSample.id, MediaSample.state, MediaSample.attempts, MediaSample.received_at)
            .where(MediaSample.media_url.is_not(None), MediaSample.state != GAVE_UP)
            .order_by(MediaSample.received_at, MediaSample.id)
            .limit(limit * 4)
        ).all()
    due = [
        r.id for r in rows if r.state != PENDING or now >= r.received_at + RETRY_STEP * r.attempts
    ][:limit]
    return _work(parts, due, now)


def _work(parts: MediaParts, ids: Sequence[int], now: dt.datetime) -> FetchCounts:
    counts = FetchCounts()
    for sample_id in ids:
        outcome = _take(parts, sample_id, now)
        if outcome is not None:
            setattr(counts, outcome, getattr(counts, outcome) + 1)
    return counts


@dataclass(frozen=True)
class _Claim:
    state: str
    url: str
    attempts: int
    patient_id: int | None


def _take(parts: MediaParts, sample_id: int, now: dt.datetime) -> str | None:
    """One sample, one step further; the count it falls under, or None if another process
    had it (or it only needed Twilio's copy deleted)."""
    claim = _claim(parts.session_factory, sample_id)
    if claim is None:
        return None
    if claim.state != PENDING:
        _delete_at_twilio(parts, sample_id, claim.url)
        return None
    try:
        if claim.patient_id is None:
            raise media.MediaRefused("no_patient")
        if parts.client is None:
            raise media.MediaFetchFailed("no_credentials")
        sample = media.fetch_media(parts.client, claim.url, timeout=FETCH_SECONDS)
    except media.MediaRefused as refused:
        _refuse(parts, sample_id, refused.reason, now)
        if refused.reason in _HELD_AT_TWILIO:
            _delete_at_twilio(parts, sample_id, claim.url)
        return "refused"
    except media.MediaFetchFailed as failed:
        return _failed(parts.session_factory, sample_id, claim.attempts, str(failed))
    key = parts.store.save(sample)
    with parts.session_factory.begin() as session:
        row = session.get_one(MediaSample, sample_id)
        row.state, row.storage_key, row.stored_at = STORED, key, now
        row.content_type, row.size_bytes = sample.content_type, len(sample.content)
        row.last_error = None
    _delete_at_twilio(parts, sample_id, claim.url)
    return "stored"


def _claim(session_factory: sessionmaker[Session], sample_id: int) -> _Claim | None:
    """Raises the attempt count of a pending sample (compare-and-set, so of two processes
    only one downloads it); a stored or refused one is returned as it is."""
    with session_factory.begin() as session:
        row = session.execute(
            select(
                MediaSample.state,
                MediaSample.media_url,
                MediaSample.attempts,
                MediaSample.patient_id,
            ).where(MediaSample.id == sample_id)
        ).first()
        if row is None or row.media_url is None or row.state == GAVE_UP:
            return None
        if row.state != PENDING:
            return _Claim(row.state, row.media_url, row.attempts, row.patient_id)
        won = session.execute(
            update(MediaSample)
            .where(MediaSample.id == sample_id, MediaSample.attempts == row.attempts)
            .values(attempts=row.attempts + 1)
        )
        if getattr(won, "rowcount", 0) != 1:
            return None
        return _Claim(PENDING, row.media_url, row.attempts + 1, row.patient_id)


def _refuse(parts: MediaParts, sample_id: int, reason: str, now: dt.datetime) -> None:
    """Marks the sample refused (kept nowhere) and tells a known sender, once per text."""
    with parts.session_factory.begin() as session:
        row = session.get_one(MediaSample, sample_id)
        row.state, row.last_error = REFUSED, reason
        if reason not in _HELD_AT_TWILIO:
            row.media_url = None  # nothing of ours at Twilio to delete
        if reason in _TOLD and row.patient_id is not None:
            _tell_refused(parts, session, row, now)
    log.info("media sample %d refused (%s)", sample_id, reason)


def _tell_refused(parts: MediaParts, session: Session, row: MediaSample, now: dt.datetime) -> None:
    text = session.get_one(InboundMessage, row.inbound_message_id)
    told = session.scalar(
        select(OutboundMessage.id)
        .where(
            OutboundMessage.to_e164 == text.from_e164,
            OutboundMessage.kind == REFUSED_KIND,
            OutboundMessage.created_at >= text.received_at,
        )
        .limit(1)
    )
    if told is not None:
        return  # one polite text per MMS, however many of its files were refused
    language = session.scalar(
        select(Caregiver.language).where(Caregiver.id == row.caregiver_id)
        if row.caregiver_id is not None
        else select(Patient.language).where(Patient.id == row.patient_id)
    )
    message = parts.library.render(
        "media.refused",
        language or "en",
        {"clinic_name": parts.settings.clinic_name},
        seed=text.provider_sid,
    )
    send_text(
        session,
        parts.gateway,
        patient_id=row.patient_id,
        to_e164=text.from_e164,
        message=message,
        kind=REFUSED_KIND,
        now=now,
        status_callback=status_callback_url(parts.settings.public_base_url),
    )


def _failed(
    session_factory: sessionmaker[Session], sample_id: int, attempts: int, error: str
) -> str:
    code = error.split(":", 1)[0][:60]
    with session_factory.begin() as session:
        row = session.get_one(MediaSample, sample_id)
        row.last_error = code
        if attempts >= MAX_ATTEMPTS:
            row.state = GAVE_UP
    if attempts >= MAX_ATTEMPTS:
        log.warning("media sample %d gave up after %d attempts (%s)", sample_id, attempts, code)
        return "gave_up"
    log.info(
        "media sample %d not fetched (attempt %d, %s); the tick retries", sample_id, attempts, code
    )
    return "failed"


def _delete_at_twilio(parts: MediaParts, sample_id: int, url: str) -> None:
    """Deletes Twilio's copy, then clears the URL; a failure leaves the URL for the tick."""
    try:
        if parts.client is None:
            raise media.MediaFetchFailed("no_credentials")
        media.delete_twilio_copy(parts.client, *media.media_ids(parts.client, url))
    except TwilioRestException as exc:
        if exc.status != 404:  # already gone is what we wanted
            log.warning("media sample %d: Twilio's copy not deleted (%s)", sample_id, exc.status)
            return
    except Exception as exc:
        # A timeout or a refused connection: the URL stays, the next tick deletes it.
        name = type(exc).__name__
        log.warning("media sample %d: Twilio's copy not deleted (%s)", sample_id, name)
        return
    with parts.session_factory.begin() as session:
        session.get_one(MediaSample, sample_id).media_url = None


# --- entry points for the webhook and the clock -----------------------------------------


def fetch_after_answer(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    provider_sid: str,
) -> Callable[[], None]:
    """What the webhook runs once its answer is sent (the response's close): the text's
    samples, each with a short deadline. It never raises: whatever fails is the tick's."""

    def fetch() -> None:
        parts = media_parts(session_factory, gateway, library, settings)
        try:
            fetch_message_samples(parts, provider_sid, utcnow())
        except Exception:
            log.exception("media of inbound %s left for the tick", provider_sid)
        finally:
            close_parts(parts)

    return fetch


def retry_in_tick(
    session_factory: sessionmaker[Session],
    gateway: SmsGateway,
    library: MessageLibrary,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """The clock's step: how many samples it stored, refused, retried or gave up on."""
    parts = media_parts(session_factory, gateway, library, settings)
    try:
        return retry_pending(parts, now).total
    finally:
        close_parts(parts)


def keep_picture(
    session: Session,
    store: media.MediaStore,
    *,
    inbound_message_id: int,
    patient_id: int,
    caregiver_id: int | None,
    content: bytes,
    received_at: dt.datetime,
    local_date: dt.date,
    sids: tuple[str, str],
) -> int:
    """A picture already in hand (the demo's), kept as a fetched one is: saved in the store
    and a stored row added to the caller's transaction. `sids` are the (message, media)
    sids its key is made of. Returns the row's id."""
    content_type = media.picture_type(content)
    if content_type is None:
        raise media.MediaRefused("not_image")
    key = store.save(media.MediaSample(sids[0], sids[1], content_type, content))
    row = MediaSample(
        inbound_message_id=inbound_message_id,
        media_index=0,
        patient_id=patient_id,
        caregiver_id=caregiver_id,
        media_url=None,
        state=STORED,
        content_type=content_type,
        size_bytes=len(content),
        storage_key=key,
        attempts=0,
        received_at=received_at,
        local_date=local_date,
        stored_at=received_at,
    )
    session.add(row)
    session.flush()
    return row.id
