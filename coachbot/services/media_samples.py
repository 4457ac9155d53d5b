"""Handwriting samples by MMS (issue #16 item 4): a row per picture a patient or caregiver
texted, written with the text itself, then fetched, checked, stored and deleted at Twilio.

1. `record_samples` runs inside the inbound pipeline's transaction: one `media_samples` row
   per `MediaUrl{N}`, state "pending", the URL kept. A retried webhook (same MessageSid) is
   refused by the inbound row's unique key before this runs, so it adds no second row. A
   picture-only MMS is thanked instead of being told "we didn't catch that".
2. `coachbot.services.media_fetch` fetches them once the webhook's transaction has
   committed and its answer went back to Twilio, and again on every clock tick. Each attempt
   is claimed first (its count raised in a transaction of its own), so a process killed
   mid-download leaves a pending row the tick takes again; after MAX_ATTEMPTS failed
   downloads the sample is "gave_up", with a log line naming its id and error code only.
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
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from coachbot.content import RenderedMessage
from coachbot.models import (
    Caregiver,
    CaregiverCheck,
    CaregiverLink,
    MediaSample,
    Patient,
)
from coachbot.queries.media_samples import stored_sample
from coachbot.services.inbound.context import Context
from coachbot.services.inbound.replies import reply_with
from coachbot.settings import Settings
from coachbot.sms import media

PENDING, STORED, REFUSED, GAVE_UP = "pending", "stored", "refused", "gave_up"
REFUSED_KIND = "media_refused"  # the outbound kind of the polite refusal
MAX_ATTEMPTS = 5
FETCH_SECONDS = 5.0  # a short deadline per file: the webhook's worker is held meanwhile
RETRY_STEP = dt.timedelta(minutes=2)  # attempt n+1 waits n steps after the text arrived
_URL_COLUMN = 500
_NOT_UNDERSTOOD = frozenset(("not_understood", "caregiver.not_understood"))
_CAREGIVER_PICTURE = "caregiver_media"  # the outcome of an active caregiver's picture-only text


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
    # The caregiver pipeline leaves an active caregiver's picture unanswered for this hook
    # (services/caregivers/answers.py); one from a caregiver without consent stays so.
    if picture_only and reply is None and ctx.row.outcome == _CAREGIVER_PICTURE:
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


def sample_picture(
    session: Session, settings: Settings, patient_id: int, sample_id: int
) -> media.MediaSample | None:
    """One of the patient's stored handwriting samples as the store keeps it (type checked
    again from its bytes), or None when it is not theirs, not stored, or gone from disk."""
    key = stored_sample(session, patient_id, sample_id)
    return media.FileMediaStore.configured(settings.media_dir).load(key) if key else None
