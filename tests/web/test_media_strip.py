"""The patient page's handwriting strip and the image route behind it: a cell per local day
(the last 14, or the close-watch period so far), who sent each sample, empty days shown as
such; the picture only for the patient's own clinician, audited, never cached."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from coachbot.app import create_app
from coachbot.models import AuditEntry, Patient
from coachbot.runtime import Runtime, build_runtime
from coachbot.services.demo_samples import scribble
from coachbot.settings import Settings
from tests.support.builders import make_caregiver, make_media_sample, make_patient
from tests.support.sign_in import make_staff, sign_in

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # Monday 13:00 in New York
PICTURE = scribble(7, 0.3)


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def rt(settings: Settings, media_root: Path) -> Iterator[Runtime]:
    runtime = build_runtime(dataclasses.replace(settings, media_dir=str(media_root)))
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


@pytest.fixture
def frozen() -> Iterator[Any]:
    with freeze_time(NOW) as clock:
        yield clock


def owned_patient(db: Session, email: str = "ana@clinic.test", **kw: Any) -> Patient:
    clinician = make_staff(db, email)
    patient = make_patient(db, **kw)
    patient.clinician_id = clinician
    db.commit()
    return patient


def cells(html: str) -> list[tuple[str, str]]:
    """(day, the cell's text) for each cell of the strip, in order."""
    found = re.findall(r'<li class="strip-day[^"]*" data-day="([^"]+)">(.*?)</li>', html, re.S)
    return [(day, re.sub(r"<[^>]+>", " ", body)) for day, body in found]


def test_the_strip_has_a_cell_per_day_with_who_sent_each_sample(
    web: Any, db: Session, media_root: Path, frozen: Any
) -> None:
    maya = owned_patient(db, first_name="Maya")
    sam = make_caregiver(db, maya, first_name="Sam")
    make_media_sample(db, maya, root=media_root, received_at=NOW - dt.timedelta(days=1))
    make_media_sample(
        db, maya, root=media_root, received_at=NOW - dt.timedelta(days=3), caregiver=sam
    )
    # 15 days ago: outside the strip.
    make_media_sample(db, maya, root=media_root, received_at=NOW - dt.timedelta(days=15))
    sign_in(web, "ana@clinic.test")
    html = web.get(f"/patients/{maya.id}").get_data(as_text=True)
    strip = cells(html)
    assert (strip[0][0], strip[-1][0]) == ("2026-11-10", "2026-11-23")
    assert len(strip) == 14
    by_day = dict(strip)
    assert "Maya" in by_day["2026-11-22"]
    assert "Sam (caregiver)" in by_day["2026-11-20"]
    assert "No sample" in by_day["2026-11-21"]
    assert sum("No sample" in text for _, text in strip) == 12
    assert html.count('<img src="/patients/') == 2


def test_in_close_watch_the_strip_is_the_period_so_far(
    web: Any, db: Session, media_root: Path, frozen: Any
) -> None:
    maya = owned_patient(db)
    maya.close_watch_from, maya.close_watch_days = dt.date(2026, 11, 18), 28
    db.commit()
    sign_in(web, "ana@clinic.test")
    html = web.get(f"/patients/{maya.id}").get_data(as_text=True)
    assert [day for day, _ in cells(html)] == [f"2026-11-{d}" for d in range(18, 24)]
    assert "The close-watch period so far" in html


def test_the_picture_is_served_to_the_own_clinician_audited_and_never_cached(
    web: Any, db: Session, media_root: Path, frozen: Any
) -> None:
    maya = owned_patient(db)
    sample = make_media_sample(db, maya, root=media_root, received_at=NOW, content=PICTURE)
    sign_in(web, "ana@clinic.test")
    response = web.get(f"/patients/{maya.id}/samples/{sample}")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.get_data() == PICTURE
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    db.rollback()
    audited = db.scalars(select(AuditEntry).where(AuditEntry.action == "media_sample.view")).one()
    assert (audited.patient_id, audited.outcome, audited.detail) == (
        maya.id,
        "ok",
        f"sample {sample}",
    )


def test_another_clinician_cannot_open_the_picture_and_is_audited(
    web: Any, db: Session, media_root: Path, frozen: Any
) -> None:
    maya = owned_patient(db)
    bo = owned_patient(db, "other@clinic.test", first_name="Bo")
    sample = make_media_sample(db, maya, root=media_root, received_at=NOW)
    sign_in(web, "other@clinic.test")
    assert web.get(f"/patients/{maya.id}/samples/{sample}").status_code == 404
    # Nor through a patient of their own: the sample must be that patient's.
    assert web.get(f"/patients/{bo.id}/samples/{sample}").status_code == 404
    db.rollback()
    denied = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "media_sample.view", AuditEntry.outcome != "ok"
        )
    ).all()
    assert [d.patient_id for d in denied] == [maya.id]


def test_a_pending_or_refused_sample_is_not_served(
    web: Any, db: Session, media_root: Path, frozen: Any
) -> None:
    maya = owned_patient(db)
    sign_in(web, "ana@clinic.test")
    assert web.get(f"/patients/{maya.id}/samples/999").status_code == 404
