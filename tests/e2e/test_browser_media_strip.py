"""The handwriting strip in a real browser: the owning clinician sees a cell per day with
the pictures loaded (served as images under the page's CSP), empty days marked; another
clinician cannot open a picture by its address."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from coachbot.domain.clock import utcnow
from coachbot.settings import Settings
from tests.e2e.conftest import Screenshots
from tests.e2e.test_browser_accessibility import AXE, WCAG_AA
from tests.support.builders import make_caregiver, make_media_sample, make_patient
from tests.web.test_dashboard_support import PASSWORD, make_staff


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """conftest's settings, with the samples kept under this test's folder."""
    return dataclasses.replace(settings, media_dir=str(tmp_path / "media"))


def _sign_in(page: Any, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/patients")


def test_the_strip_shows_the_days_pictures_and_another_clinician_cannot_open_one(
    page: Any,
    chromium: Any,
    live_server: str,
    session: Session,
    settings: Settings,
    shots: Screenshots,
) -> None:
    now = utcnow()
    root = Path(settings.media_dir)
    ana = make_staff(session, "ana@clinic.test")
    make_staff(session, "bo@clinic.test")
    maya = make_patient(session, first_name="Maya")
    maya.clinician_id = ana
    session.commit()
    sam = make_caregiver(session, maya, first_name="Sam")
    make_media_sample(session, maya, root=root, received_at=now - dt.timedelta(days=2))
    sample = make_media_sample(session, maya, root=root, received_at=now, caregiver=sam)

    _sign_in(page, live_server, "ana@clinic.test")
    page.goto(f"{live_server}/patients/{maya.id}")
    strip = page.locator("section.sample-strip")
    strip.get_by_role("heading", name="Handwriting samples").wait_for()
    days = strip.locator("li.strip-day")
    assert days.count() == 14
    assert strip.locator("li.strip-empty").count() == 12
    assert "No sample" in days.nth(12).inner_text()  # yesterday
    today = days.nth(13)
    assert "Sam (caregiver)" in today.inner_text()
    assert "Maya" in days.nth(11).inner_text()
    pictures = strip.locator("img")
    assert pictures.count() == 2
    for n in range(2):
        picture = pictures.nth(n)
        picture.scroll_into_view_if_needed()
        # Loaded and decoded: served as an image the page's CSP allows.
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
        )
    assert today.locator("img").get_attribute("alt").startswith("Handwriting sample from Sam")
    shots.take("handwriting-strip")
    results = AXE.run(
        page, options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    )
    assert results.response["violations"] == []
    picture_url = f"{live_server}/patients/{maya.id}/samples/{sample}"

    other = chromium.new_context()
    try:
        stranger = other.new_page()
        _sign_in(stranger, live_server, "bo@clinic.test")
        assert stranger.goto(picture_url).status == 404
        assert stranger.goto(f"{live_server}/patients/{maya.id}").status == 404
    finally:
        other.close()
    assert page.goto(picture_url).headers["cache-control"] == "no-store"
