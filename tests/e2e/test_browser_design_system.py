"""The design system's shared parts in a real browser: a form's error summary takes focus and
its links move focus to their fields; the delivery-health charts draw with the vendored uPlot
(titled axes with units, bars, live legend values under the pointer) beside their table
fallback; delivery reads "not tracked" with the console backend; the message templates open
on a contents list with a page per track."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.e2e.conftest import Screenshots
from tests.support.builders import make_outbound, make_patient
from tests.support.sign_in import sign_in_browser as sign_in
from tests.web.test_dashboard_support import NOW, make_staff

SERIES_BLUE = (0x00, 0x5E, 0xA2)  # charts.js PALETTE[0], the first series' colour


def _focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id"))


def test_the_error_summary_takes_focus_and_each_link_focuses_its_field(
    page: Any, live_server: str, session: Session, shots: Screenshots
) -> None:
    make_staff(session, "ana@clinic.test")
    sign_in(page, live_server, "ana@clinic.test")
    page.goto(f"{live_server}/patients/new")
    page.get_by_label("Mobile number", exact=True).fill("not a phone")
    page.get_by_label("Time zone", exact=True).fill("Mars/Base")
    page.get_by_role("button", name="Enrol and send the welcome").click()

    summary = page.locator("[data-error-summary]")
    summary.wait_for()
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    links = summary.get_by_role("link")
    # One link per message shown at a field.
    assert links.count() == page.locator(".usa-error-message").count() >= 3
    shots.take("enrol-error-summary")

    summary.get_by_role("link", name="Mobile number: 'not a phone' is not a phone number").click()
    assert _focused_id(page) == "phone"
    assert page.get_by_label("Mobile number", exact=True).get_attribute("aria-invalid") == "true"
    summary.get_by_role("link", name="Time zone:", exact=False).click()
    assert _focused_id(page) == "timezone"
    # The field's label is on screen with it, not scrolled off above.
    label_top = page.evaluate(
        "document.querySelector('label[for=timezone]').getBoundingClientRect().top"
    )
    assert 0 <= label_top < page.viewport_size["height"]


def _chart_state(page: Any, chart_id: str) -> dict[str, Any]:
    """The drawn chart as the page holds it: axis titles, and how many canvas pixels carry
    the first series' colour (bars drawn, not an empty frame)."""
    return dict(
        page.evaluate(
            """([id, rgb]) => {
                const el = document.querySelector(`#${id} [data-chart]`);
                const chart = el.chart;
                const canvas = el.querySelector("canvas");
                const ctx = canvas.getContext("2d");
                const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
                let coloured = 0;
                for (let i = 0; i < data.length; i += 4) {
                    if (data[i] === rgb[0] && data[i + 1] === rgb[1] && data[i + 2] === rgb[2]) {
                        coloured += 1;
                    }
                }
                return {
                    axes: chart.axes.map((a) => a.label),
                    coloured: coloured,
                    width: canvas.width,
                };
            }""",
            [chart_id, list(SERIES_BLUE)],
        )
    )


def test_delivery_health_charts_draw_with_axes_legend_values_and_a_table_fallback(
    page: Any,
    live_server: str,
    session: Session,
    shots: Screenshots,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("coachbot.web.common.utcnow", lambda: NOW)
    make_staff(session, "ops@clinic.test", role="operator")
    patient = make_patient(session)
    # Two texts sent in the 17:00 hour (UTC), one in the 15:00 hour.
    for minutes in (30, 40, 150):
        make_outbound(session, patient, created_at=NOW - dt.timedelta(minutes=minutes))
    session.commit()  # the live server reads through its own connection

    sign_in(page, live_server, "ops@clinic.test")
    page.goto(f"{live_server}/operator/health")
    page.locator("#chart-sent [data-chart-ready]").wait_for()
    state = _chart_state(page, "chart-sent")
    assert state["axes"] == ["Hour (UTC)", "Texts sent (texts)"]
    assert state["width"] > 0
    assert state["coloured"] > 100  # the bars, in the series colour
    assert page.locator("td[data-figure='sent']").inner_text() == "3"

    # Pointing at the 17:00 bar shows its hour and value in the legend.
    position = page.evaluate(
        """() => {
            const el = document.querySelector("#chart-sent [data-chart]");
            const chart = el.chart;
            el.scrollIntoView({block: "center"});
            const over = el.querySelector(".u-over").getBoundingClientRect();
            const index = chart.data[0].length - 2;  // the 17:00 bucket; 18:00 is the last
            return {x: over.left + chart.valToPos(index, "x"), y: over.top + over.height - 4};
        }"""
    )
    page.mouse.move(position["x"], position["y"])
    legend = page.locator("#chart-sent .u-legend")
    values = legend.locator(".u-value")
    assert values.nth(0).inner_text() == "17:00"
    assert values.nth(1).inner_text() == "2 texts"
    shots.take("health-chart-hover")

    # The same numbers as a table, for screen readers and without JavaScript.
    page.locator("#chart-sent summary").click()
    table = page.get_by_role("table", name="Texts sent per hour")
    assert table.get_by_role("columnheader").all_inner_texts() == [
        "Hour (UTC)",
        "Texts sent (texts)",
    ]
    assert table.get_by_role("row", name="17:00").inner_text().split() == ["17:00", "2"]
    assert table.get_by_role("row", name="15:00").inner_text().split() == ["15:00", "1"]
    assert table.get_by_role("row").count() == 25  # header and 24 hours


def test_with_the_console_backend_delivery_reads_not_tracked(
    page: Any, live_server: str, session: Session
) -> None:
    make_staff(session, "ops@clinic.test", role="operator")
    sign_in(page, live_server, "ops@clinic.test")
    page.goto(f"{live_server}/operator/health")
    assert page.locator("td[data-figure='delivered']").inner_text() == "not tracked"
    assert page.locator("td[data-figure='rate']").inner_text() == "not tracked"
    assert "Delivery is not tracked" in page.locator(".delivery-not-tracked").inner_text()
    # No delivery-rate chart to read as a failure: texts sent, failures and opt-outs only.
    assert page.locator("figure.cb-chart").count() == 3
    assert page.locator("#chart-rate").count() == 0


def test_message_templates_open_on_contents_with_a_page_per_track(
    page: Any, live_server: str, session: Session, shots: Screenshots
) -> None:
    make_staff(session, "ops@clinic.test", role="operator")
    sign_in(page, live_server, "ops@clinic.test")
    page.get_by_role("link", name="Operator console").click()
    page.get_by_role("link", name="Message templates").click()
    contents = page.get_by_role("navigation", name="Contents")
    assert page.locator("section.family").count() == 0
    tracks = contents.locator("[data-toc-track]")
    assert tracks.count() >= 5
    shots.take("templates-contents")
    contents_height = page.evaluate("document.documentElement.scrollHeight")

    contents.get_by_role("link", name="Sleep", exact=True).click()
    page.get_by_role("heading", name="Sleep templates").wait_for()
    sections = page.locator("section.family")
    assert sections.count() >= 2
    assert {s.get_attribute("data-template").split(".")[-1] for s in sections.all()} == {"sleep"}
    side = page.get_by_role("navigation", name="Tracks")
    assert side.locator("[aria-current='page']").inner_text() == "Sleep"
    # The page's own contents jump to a family.
    page.get_by_role("link", name="nudge.sleep").first.click()
    assert page.url.endswith("#nudge.sleep-en")
    page_height = page.evaluate("document.documentElement.scrollHeight")
    assert contents_height < 4000
    assert page_height < 8000
    shots.take("templates-sleep")

    # A language filter keeps to the track.
    page.get_by_label("Language", exact=True).select_option("es")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("heading", name="Sleep templates").wait_for()
    assert {s.get_attribute("data-language") for s in page.locator("section.family").all()} == {
        "es"
    }
