"""Demo handwriting samples (issue #16 item 4): small PNG pictures drawn in code (zlib and
struct, no imaging library) of a sentence's scribble, one per day, stored through the same
`MediaStore` and `media_samples` rows as a texted picture would be.

The pictures are lines of "ink" whose waviness grows with a `tremor` value, so the strip on
the patient page shows a visible change from day to day, as a clinician would look for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import struct
import zlib
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coachbot.models import Caregiver, CaregiverLink, InboundMessage, Patient
from coachbot.services.media_samples import keep_picture
from coachbot.settings import Settings
from coachbot.sms.media import FileMediaStore

__all__ = ["png", "scribble", "seed_demo_samples"]

log = logging.getLogger(__name__)
DEMO_DAYS = 14  # at most the strip's days
_SKIPPED = 4  # every 4th day has no sample: the strip shows empty days too
_LOCAL_TIME = dt.time(10, 30)  # when the demo's photos "arrive", in the patient's zone

_INK = (30, 40, 90)
_PAPER = (250, 248, 240)


def png(width: int, height: int, pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """An 8-bit RGB PNG of `pixels` (rows of (r, g, b))."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def scribble(seed: int, tremor: float, width: int = 160, height: int = 60) -> bytes:
    """A line of handwriting-like ink: words of loops along a baseline; `tremor` (0..1)
    shakes the stroke and lets the line drift, as a changing hand would."""
    pixels = [[_PAPER for _ in range(width)] for _ in range(height)]
    baseline = height * 0.6
    x = 8.0
    step = 0.25
    while x < width - 8:
        word_end = x + 18 + (seed * 7 + int(x)) % 14
        while x < word_end and x < width - 8:
            drift = tremor * 6 * math.sin(x / 23 + seed)
            shake = tremor * 3 * math.sin(x * 1.7 + seed * 3)
            y = baseline + drift + shake - 8 * abs(math.sin(x / 2.2 + seed))
            _dot(pixels, int(x), int(y))
            x += step
        x += 7
    return png(width, height, pixels)


def _dot(pixels: list[list[tuple[int, int, int]]], x: int, y: int) -> None:
    for dy in (0, 1):
        for dx in (0, 1):
            if 0 <= y + dy < len(pixels) and 0 <= x + dx < len(pixels[0]):
                pixels[y + dy][x + dx] = _INK


def seed_demo_samples(
    session_factory: sessionmaker[Session],
    settings: Settings,
    demo_phones: list[str],
    now: dt.datetime,
) -> int:
    """Handwriting samples for the demo patient with a caregiver (the one in close watch
    first): a photo most days of the close-watch period so far (the last 14 days outside
    it), from the patient and the caregiver by turns, the hand shakier as the days go. Kept
    through `media_samples.keep_picture` into the store, each with the inbound MMS it came
    in as. Returns how many were added (0 when no demo patient has a caregiver)."""
    with session_factory.begin() as session:
        found = _demo_pair(session, demo_phones)
        if found is None:
            log.info("demo samples skipped: no demo patient has a caregiver")
            return 0
        patient, caregiver = found
        zone = ZoneInfo(patient.timezone)
        today = now.astimezone(zone).date()
        first = today - dt.timedelta(days=DEMO_DAYS - 1)
        if patient.close_watch_from is not None and first <= patient.close_watch_from <= today:
            first = patient.close_watch_from
        store = FileMediaStore.configured(settings.media_dir)
        days = [first + dt.timedelta(days=n) for n in range((today - first).days + 1)]
        added = 0
        for n, day in enumerate(days):
            if n % _SKIPPED == _SKIPPED - 1:
                continue
            at = dt.datetime.combine(day, _LOCAL_TIME, zone).astimezone(dt.UTC)
            if at > now:
                continue
            by_caregiver = n % 2 == 1
            sender = caregiver if by_caregiver else None
            _add(session, store, patient, sender, settings.clinic_phone, at, (n, days))
            added += 1
    return added


def _demo_pair(session: Session, demo_phones: list[str]) -> tuple[Patient, Caregiver] | None:
    row = session.execute(
        select(Patient, Caregiver)
        .join(CaregiverLink, CaregiverLink.patient_id == Patient.id)
        .join(Caregiver, Caregiver.id == CaregiverLink.caregiver_id)
        .where(Patient.phone_e164.in_(demo_phones))
        .order_by(Patient.close_watch_from.is_(None), Patient.id)
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def _add(
    session: Session,
    store: FileMediaStore,
    patient: Patient,
    caregiver: Caregiver | None,
    clinic_number: str,
    at: dt.datetime,
    nth: tuple[int, list[dt.date]],
) -> None:
    n, days = nth
    day = days[n]
    sender = caregiver.phone_e164 if caregiver is not None else patient.phone_e164
    digest = hashlib.sha256(f"{patient.id}:{day.isoformat()}".encode()).hexdigest()
    message_sid, media_sid = "MM" + digest[:32], "ME" + digest[32:]
    text = InboundMessage(
        provider_sid=message_sid,
        from_e164=sender,
        to_e164=clinic_number,
        body="",
        num_media=1,
        patient_id=patient.id,
        is_proxy=caregiver is not None,
        caregiver_id=caregiver.id if caregiver is not None else None,
        outcome="media_only",
        received_at=at,
        needs_reading=False,
    )
    session.add(text)
    session.flush()
    keep_picture(
        session,
        store,
        inbound_message_id=text.id,
        patient_id=patient.id,
        caregiver_id=caregiver.id if caregiver is not None else None,
        content=scribble(n, 0.05 + 0.7 * n / max(len(days) - 1, 1)),
        received_at=at,
        local_date=day,
        sids=(message_sid, media_sid),
    )
