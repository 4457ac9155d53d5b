"""The caregiver panel in a real browser (issue #16): the daily counts drawn by uPlot with
the baseline as its own series, the same numbers in the table fallback, the consent in
words, and the caregiver's text marked by name in the thread."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from coachbot.domain.states import PatientStatus
from tests.e2e.conftest import Screenshots
from tests.support.builders import (
    make_caregiver,
    make_caregiver_check,
    make_inbound,
    make_patient,
)
from tests.support.sign_in import sign_in_browser
from tests.web.test_dashboard_support import NOW, make_staff

TODAY = dt.date(2026, 11, 23)  # NOW in New York


def test_the_panel_draws_the_counts_against_the_baseline_and_marks_the_thread(
    page: Any,
    live_server: str,
    session: Session,
    shots: Screenshots,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("coachbot.web.common.utcnow", lambda: NOW + dt.timedelta(hours=2))
    ana = make_staff(session, "ana@clinic.test")
    rosa = make_patient(session, first_name="Rosa")
    rosa.clinician_id = ana
    rosa.close_watch_from = TODAY - dt.timedelta(days=3)
    rosa.close_watch_days = 14
    sam = make_caregiver(session, rosa, first_name="Sam", baseline=4)
    make_caregiver(session, rosa, first_name="Lee", status=PatientStatus.PENDING_CONSENT)
    for ago, score in ((3, 4), (2, 4), (1, 3)):
        make_caregiver_check(session, rosa, sam, day=TODAY - dt.timedelta(ago), score=score)
    make_caregiver_check(session, rosa, sam, day=TODAY, concern="worried")
    text = make_inbound(session, body="Worried", received_at=NOW, patient=rosa, is_proxy=True)
    text.caregiver_id = sam.id
    session.commit()

    sign_in_browser(page, live_server, "ana@clinic.test")
    page.goto(f"{live_server}/patients/{rosa.id}")
    panel = page.locator("section.caregiver-panel")
    assert "Day 4 of 14" in panel.locator("#close-watch").inner_text()
    sam_box = panel.locator(f"#caregiver-{sam.id}")
    assert sam_box.locator(".caregiver-consent").inner_text().startswith("Active since")
    assert sam_box.locator(".caregiver-last").inner_text().startswith("WORRIED")
    lee_box = panel.locator(".caregiver").filter(has_text="Caregiver Lee")
    assert "Pending their YES since" in lee_box.locator(".caregiver-consent").inner_text()
    # uPlot drew the chart: a canvas and a legend naming both series.
    chart = sam_box.locator("figure.cb-chart")
    chart.locator("canvas").first.wait_for()
    legend = chart.locator(".u-legend").inner_text()
    assert "Items as usual" in legend
    assert "Baseline" in legend
    shots.take("caregiver-panel")
    # The table fallback carries the same numbers, a day per row (the worried day a gap).
    chart.get_by_text("the numbers as a table").click()
    rows = chart.locator("details table tbody tr")
    assert rows.count() == 4
    assert [rows.nth(i).locator("td").all_inner_texts() for i in range(4)] == [
        ["4", "4"],
        ["4", "4"],
        ["3", "4"],
        ["–", "4"],
    ]
    # The thread says who wrote the text in words, not in colour alone.
    mark = page.locator("ol.timeline .cb-tag--caregiver")
    assert mark.inner_text() == "Caregiver Sam"
    assert mark.locator("xpath=ancestor::li").locator(".body").inner_text() == "Worried"
