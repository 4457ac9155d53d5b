"""The clinician's day in a real browser: sign in, enrol, the welcome on the simulated phone,
YES, a tick, the nudge answered, adherence and the heatmap, a red flag acknowledged, export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from coachbot.domain.clock import utcnow
from coachbot.models import Patient
from coachbot.runtime import Runtime
from coachbot.services.tick import run_tick
from tests.e2e.conftest import Screenshots
from tests.support.sign_in import make_staff, sign_in_browser


def _midday_zone(now: dt.datetime) -> str:
    """A fixed-offset zone where it is early afternoon now, inside the sending window."""
    for offset in range(-12, 15):
        name = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"
        if 12 <= now.astimezone(ZoneInfo(name)).hour < 15:
            return name
    raise AssertionError("some offset is always early afternoon")


def test_a_clinician_enrols_sees_the_reply_acts_on_an_alert_and_exports(
    page: Any, live_server: str, runtime: Runtime, session: Session, shots: Screenshots
) -> None:
    make_staff(session, "ana@clinic.test")
    start = utcnow()
    zone = _midday_zone(start)

    page.goto(f"{live_server}/login")
    shots.take("login")
    sign_in_browser(page, live_server, "ana@clinic.test")
    page.wait_for_url(f"{live_server}/patients")
    shots.take("patients-empty")

    _enrol_rosa(page, shots, start, zone)
    _opt_in_on_the_simulated_phone(page, shots)
    _tick_sends_the_due_nudge(runtime, start)
    _answer_the_nudge_then_report_a_seizure(page, shots)
    _see_adherence_the_heatmap_and_the_red_flag(page, shots)
    _acknowledge_the_alert(page, shots)
    _export_the_patients_csv(page, shots)


def _enrol_rosa(page: Any, shots: Screenshots, start: dt.datetime, zone: str) -> None:
    """The enrolment form, sleep only, one nudge time two minutes ago in Rosa's zone (so
    the tick after her YES sends it at once)."""
    due_local = (start - dt.timedelta(minutes=2)).astimezone(ZoneInfo(zone))
    page.get_by_role("link", name="Enrol", exact=True).click()
    page.get_by_label("First name", exact=True).fill("Rosa")
    page.get_by_label("Mobile number", exact=True).fill("(617) 555-0177")
    page.get_by_label("Time zone").fill(zone)
    for track in ("Exercise", "Diet", "Mindfulness", "Rehab"):
        # USWDS draws the box on the label and moves the input off screen: click the label,
        # as a person does, and check the box followed.
        box = page.get_by_label(track, exact=True)
        page.locator(f"label[for='{box.get_attribute('id')}']").click()
        assert not box.is_checked()
    page.get_by_label("sleep times (HH:MM, comma separated)").fill(f"{due_local:%H:%M}")
    consented = (start - dt.timedelta(hours=1)).astimezone(ZoneInfo(zone))
    page.get_by_label("When consent was given").fill(f"{consented:%Y-%m-%dT%H:%M}")
    shots.take("enrol-form")
    page.get_by_role("button", name="Enrol and send the welcome").click()
    page.get_by_role("heading", name="Rosa").wait_for()
    shots.take("patient-enrolled")


def _opt_in_on_the_simulated_phone(page: Any, shots: Screenshots) -> None:
    page.get_by_role("link", name="Phone simulator").click()
    phone = page.locator("section.phone", has_text="Rosa")
    phone.get_by_text("YES", exact=False).first.wait_for()
    shots.take("simulator-welcome")
    phone.get_by_label("Reply as Rosa").fill("YES")
    phone.get_by_role("button", name="Send").click()
    page.locator("section.phone", has_text="Rosa").locator("li.sms-out", has_text="YES").wait_for()


def _tick_sends_the_due_nudge(runtime: Runtime, start: dt.datetime) -> None:
    # The opt-in is moved ten minutes back, as if Rosa had answered before the nudge was due:
    # the planner only plans occurrences after the opt-in.
    with runtime.session_factory() as s:
        s.execute(update(Patient).values(opted_in_at=start - dt.timedelta(minutes=10)))
        s.commit()
    summary = run_tick(
        runtime.session_factory, runtime.gateway, runtime.library, runtime.settings, utcnow()
    )
    assert "sent=1" in summary.as_text()


def _answer_the_nudge_then_report_a_seizure(page: Any, shots: Screenshots) -> None:
    page.reload()
    phone = page.locator("section.phone", has_text="Rosa")
    # Every sleep nudge variant says "sleep" or "slept"; which one goes out depends on the day.
    phone.locator("li.sms-in").filter(has_text=re.compile("sleep|slept", re.I)).first.wait_for()
    shots.take("simulator-nudge")
    phone.get_by_label("Reply as Rosa").fill("7 hours")
    phone.get_by_role("button", name="Send").click()
    page.locator("section.phone", has_text="Rosa").locator(
        "li.sms-out", has_text="7 hours"
    ).wait_for()
    phone = page.locator("section.phone", has_text="Rosa")
    phone.get_by_label("Reply as Rosa").fill("I had a seizure this morning")
    phone.get_by_role("button", name="Send").click()
    page.locator("li.sms-out", has_text="seizure").wait_for()
    shots.take("simulator-replies")


def _see_adherence_the_heatmap_and_the_red_flag(page: Any, shots: Screenshots) -> None:
    page.get_by_role("link", name="Patients").click()
    row = page.locator("table.patients tbody tr", has_text="Rosa")
    row.get_by_text("sleep: 1 of 1 done this week (100%); 100% over 30 days").wait_for()
    assert row.locator("a.badge").inner_text() == "1"
    shots.take("patients-adherence")

    row.get_by_role("link", name="Rosa").click()
    page.locator("table.heatmap[data-track='sleep'] td.hm-done").first.wait_for()
    # The reported hours drawn by the chart library, with the numbers as a table beside it.
    page.locator("figure#numbers-sleep canvas").first.wait_for()
    assert page.locator("figure#numbers-sleep caption").text_content() == (
        "sleep: reported numbers (hours)"
    )
    page.locator("table.alerts").get_by_text("Red flag").first.wait_for()
    shots.take("patient-page")


def _acknowledge_the_alert(page: Any, shots: Screenshots) -> None:
    page.get_by_role("link", name="Alerts", exact=True).click()
    alert_row = page.locator("table.alerts tbody tr", has_text="Rosa")
    shots.take("alerts-open")
    alert_row.get_by_role("button", name="Acknowledge").click()
    page.locator("table.alerts tbody tr", has_text="acknowledged").wait_for()
    shots.take("alerts-acknowledged")


def _export_the_patients_csv(page: Any, shots: Screenshots) -> None:
    page.get_by_role("link", name="Patients").click()
    page.locator("table.patients").get_by_role("link", name="Rosa").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    body = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["track"], r["outcome"], r["value"]) for r in rows] == [("sleep", "done", "7.0")]
    shots.take("after-export")
