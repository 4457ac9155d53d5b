"""The demo's handwriting samples: real PNGs drawn in code, kept through the media store for
the demo patient with a caregiver, most days of the close-watch period, by turns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.models import MediaSample
from coachbot.queries.media_samples import sample_strip
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.demo_samples import scribble, seed_demo_samples
from coachbot.settings import Settings
from coachbot.sms.media import FileMediaStore
from tests.support.builders import make_caregiver, make_patient

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # 13:00 in New York


@pytest.fixture
def rt(settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(dataclasses.replace(settings, media_dir=str(tmp_path / "media")))
    yield runtime
    runtime.close()


@pytest.fixture
def db(rt: Runtime) -> Iterator[Session]:
    with rt.read_session_factory() as s:
        yield s


def decode_png(content: bytes) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines), every chunk's CRC checked."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, {}
    while at < len(content):
        (length,) = struct.unpack(">I", content[at : at + 4])
        kind, data = content[at + 4 : at + 8], content[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", content[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks[kind] = data
        at += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_a_scribble_is_a_valid_png_and_shakier_with_more_tremor() -> None:
    width, height, raw = decode_png(scribble(3, 0.0))
    assert (width, height) == (160, 60)
    assert len(raw) == height * (1 + 3 * width)
    assert scribble(3, 0.0) == scribble(3, 0.0)  # the same day draws the same picture
    assert scribble(3, 0.0) != scribble(3, 0.8)


def test_the_demo_patient_with_a_caregiver_gets_samples_by_turns(rt: Runtime, db: Session) -> None:
    alone = make_patient(db, first_name="Owen")
    maya = make_patient(db, first_name="Maya")
    maya.close_watch_from, maya.close_watch_days = dt.date(2026, 11, 14), 28
    db.commit()
    sam = make_caregiver(db, maya, first_name="Sam")
    phones = [alone.phone_e164, maya.phone_e164]
    added = seed_demo_samples(rt.session_factory, rt.settings, phones, NOW)
    db.rollback()
    rows = list(db.scalars(select(MediaSample).order_by(MediaSample.local_date)))
    assert added == len(rows) == 8  # 10 days, every 4th without a sample
    assert {r.patient_id for r in rows} == {maya.id}
    assert {r.state for r in rows} == {"stored"}
    assert rows[0].local_date == dt.date(2026, 11, 14)
    assert [r.caregiver_id for r in rows[:3]] == [None, sam.id, None]
    store = FileMediaStore(Path(rt.settings.media_dir))
    for row in rows:
        assert row.storage_key is not None
        kept = store.load(row.storage_key)
        assert kept is not None
        assert kept.content_type == "image/png"
        decode_png(kept.content)
    strip = sample_strip(db, maya, NOW)
    assert strip.close_watch
    assert [len(d.samples) for d in strip.days] == [1, 1, 1, 0, 1, 1, 1, 0, 1, 1]


def test_without_a_caregiver_in_the_demo_no_samples_are_added(rt: Runtime, db: Session) -> None:
    owen = make_patient(db, first_name="Owen")
    assert seed_demo_samples(rt.session_factory, rt.settings, [owen.phone_e164], NOW) == 0
