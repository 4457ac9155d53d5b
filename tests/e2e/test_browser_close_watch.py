"""An operator sets a programme's close-watch weeks in a real browser: an edit that saves a
new version (and the check text the tick composes uses it), and an edit refused with the
field's own error because its items would make the daily check longer than two texts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from coachbot.runtime import Runtime
from coachbot.services import programs
from tests.e2e.conftest import Screenshots
from tests.support.sign_in import make_staff, sign_in_browser


def test_an_operator_saves_close_watch_settings_and_a_too_long_check_is_refused(
    page: Any, live_server: str, runtime: Runtime, session: Session, shots: Screenshots
) -> None:
    make_staff(session, "ops@clinic.test", role="operator")
    sign_in_browser(page, live_server, "ops@clinic.test")
    page.get_by_role("link", name="Operator console").click()
    page.get_by_role("link", name="standard").click()
    page.get_by_role("link", name="Edit close watch").click()

    # Refused: six long items do not fit two texts; the field says why, nothing is saved.
    items = page.get_by_label("Check items in English (one a line)")
    items.fill(
        "\n".join(f"tell you about {n} things they did earlier today, in order" for n in range(6))
    )
    page.get_by_role("button", name="Save version 2").click()
    error = page.locator("#items_en-error")
    error.wait_for()
    assert "SMS segments" in error.inner_text()
    assert (
        page.get_by_label("Check items in English (one a line)").get_attribute("aria-invalid")
        == "true"
    )
    shots.take("refused")
    with runtime.read_session_factory() as read:
        assert programs.show_program(read, "standard").version == 1

    # Saved: a new check time and two items of the operator's own.
    page.get_by_label("Daily check time (caregiver's local HH:MM)").fill("17:30")
    page.get_by_label("Check items in English (one a line)").fill(
        "say what day it is\nwrite their own name"
    )
    page.get_by_role("button", name="Save version 2").click()
    page.get_by_text("Saved standard version 2: close watch.").wait_for()
    assert page.locator(".close-watch-summary .check-time").inner_text() == "17:30"
    assert (
        "close_watch.check_time: 18:00 -> 17:30"
        in page.locator("tr[data-version='2']").inner_text()
    )
    shots.take("saved")
    with runtime.read_session_factory() as read:
        watch = programs.show_program(read, "standard").close_watch
    assert watch.check_time == dt.time(17, 30)
    assert watch.items_for("en") == ("say what day it is", "write their own name")
