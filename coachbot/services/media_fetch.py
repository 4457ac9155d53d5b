"""Fetching the handwriting samples `media_samples.record_samples` wrote (issue #16 item 4):
once the webhook's answer is sent (`fetch_after_answer`), and on every clock tick
(`retry_in_tick`). See `coachbot.services.media_samples` for the whole flow.

Each attempt is claimed first (its count raised in a transaction of its own), so a process
killed mid-download leaves a pending row the tick takes again, and of two processes only
one downloads. A kept picture is committed as "stored" before Twilio's copy is deleted and
its URL cleared; a crash between the two leaves the URL, whose deletion the tick finishes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from coachbot.content import MessageLibrary
from coachbot.domain.clock import utcnow
from coachbot.models import Caregiver, InboundMessage, MediaSample, OutboundMessage, Patient
from coachbot.services.media_samples import (
    FETCH_SECONDS,
    GAVE_UP,
    MAX_ATTEMPTS,
    PENDING,
    REFUSED,
    REFUSED_KIND,
    RETRY_STEP,
    STORED,
)
from coachbot.services.messaging import send_text, status_callback_url
from coachbot.settings import Settings
from coachbot.sms import media
from coachbot.sms.gateway import SmsGateway
from coachbot.sms.twilio_client import build_twilio_client, close_twilio_client

log = logging.getLogger(__name__)

# Refusals the sender is told about; the others (a broken or foreign URL) are not theirs.
_TOLD = frozenset(("not_image", "too_large"))
# Refusals of a file Twilio still holds: its copy is deleted (see coachbot.sms.media).
_HELD_AT_TWILIO = frozenset(("not_image", "too_large", "no_patient"))
# Attempts (downloads and deletions together) after which a copy at Twilio is left alone.
DELETE_ATTEMPTS = 2 * MAX_ATTEMPTS


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
    store = media.FileMediaStore.configured(settings.media_dir)
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
    # The same spacing for a deletion that failed: Twilio is not asked every few seconds.
    due = [
        r.id
        for r in rows
        if now >= r.received_at + RETRY_STEP * r.attempts
        and (r.state == PENDING or r.attempts < DELETE_ATTEMPTS)
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
            _not_deleted(parts.session_factory, sample_id, str(exc.status))
            return
    except Exception as exc:
        # A timeout or a refused connection: the URL stays, a later tick deletes it.
        _not_deleted(parts.session_factory, sample_id, type(exc).__name__)
        return
    with parts.session_factory.begin() as session:
        session.get_one(MediaSample, sample_id).media_url = None


def _not_deleted(session_factory: sessionmaker[Session], sample_id: int, code: str) -> None:
    """Counts the failed deletion (the tick spaces the next, and stops after DELETE_ATTEMPTS:
    then the URL stays on the row for an operator, and the log says so once)."""
    with session_factory.begin() as session:
        row = session.get_one(MediaSample, sample_id)
        row.attempts += 1
        attempts = row.attempts
    last = " (the tick stops trying)" if attempts >= DELETE_ATTEMPTS else ""
    log.warning("media sample %d: Twilio's copy not deleted (%s)%s", sample_id, code, last)


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
