"""The shared components in _macros.html, rendered by the app's own Jinja environment:
pagination's pages and gaps, the chart's data island and table fallback, the table, the tag
and the error summary's links."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask


def _render(app: Flask, source: str, **context: Any) -> str:
    with app.test_request_context("/"):
        template = app.jinja_env.from_string(
            '{% from "_macros.html" import pagination, chart, table, tag, error_summary %}' + source
        )
        return template.render(**context)


def test_pagination_shows_first_last_current_and_neighbours_with_gaps(app: Flask) -> None:
    html = _render(app, "{{ pagination('dashboard.patients', 5, 10, {'q': 'ro'}) }}")
    pages = re.findall(r'aria-label="Page (\d+)"', html)
    assert pages == ["1", "4", "5", "6", "10"]
    assert html.count("usa-pagination__overflow") == 2
    assert 'href="/patients?page=5&amp;q=ro" class="usa-pagination__button usa-current"' in html
    assert 'aria-current="page">5<' in html
    assert (
        'href="/patients?page=4&amp;q=ro" class="usa-pagination__link usa-pagination__previous'
        in html
    )
    assert (
        'href="/patients?page=6&amp;q=ro" class="usa-pagination__link usa-pagination__next' in html
    )
    first = _render(app, "{{ pagination('dashboard.patients', 1, 3) }}")
    assert "Previous page" not in first
    assert re.findall(r'aria-label="Page (\d+)"', first) == ["1", "2", "3"]
    assert "usa-pagination__overflow" not in first
    assert _render(app, "{{ pagination('dashboard.patients', 1, 1) }}").strip() == ""


def test_chart_writes_a_data_island_and_a_table_with_units_and_gaps(app: Flask) -> None:
    html = _render(
        app,
        "{{ chart('sleep', 'Hours slept', ['2026-11-20', '2026-11-21'],"
        " [{'label': 'Sleep', 'values': [7.5, None]}], 'Day', 'Sleep', 'hours') }}",
    )
    island = re.search(
        r'<script type="application/json" id="sleep-data">(.*?)</script>', html, re.S
    )
    assert island
    spec = json.loads(island.group(1))
    assert spec["yLabel"] == "Sleep (hours)"
    assert spec["xLabel"] == "Day"
    assert spec["series"] == [{"label": "Sleep", "values": [7.5, None]}]
    assert spec["kind"] == "line"
    assert 'data-chart="sleep-data" aria-hidden="true"' in html
    assert "<caption>Hours slept</caption>" in html
    assert '<th scope="col">Day</th><th scope="col">Sleep (hours)</th>' in html
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td>([^<]+)</td></tr>', html)
    assert rows == [("2026-11-20", "7.5"), ("2026-11-21", "–")]


def test_a_chart_title_cannot_break_out_of_its_data_island(app: Flask) -> None:
    html = _render(
        app,
        "{{ chart('c', title, ['a'], [{'label': 'x', 'values': [1]}], 'X', 'Y', '',"
        " x_kind='category', kind='bar') }}",
        title="</script><script>alert(1)</script>",
    )
    assert "<script>alert(1)" not in html
    island = re.search(r'id="c-data">(.*?)</script>', html, re.S)
    assert island
    assert json.loads(island.group(1))["title"] == "</script><script>alert(1)</script>"


def test_table_tag_and_error_summary(app: Flask) -> None:
    html = _render(
        app,
        "{% call table('Staff', ['Email', 'Role'], caption_visible=False) %}"
        "<tr><td>a</td><td>b</td></tr>{% endcall %}{{ tag('urgent', 'urgent') }}"
        "{{ error_summary({'phone': 'not a phone number', 'tracks': 'choose one'},"
        " anchors={'tracks': 'track_sleep'}, labels={'phone': 'Mobile number'}) }}",
    )
    assert '<caption class="usa-sr-only">Staff</caption>' in html
    assert '<th scope="col">Email</th><th scope="col">Role</th>' in html
    assert 'tabindex="0" role="region" aria-label="Staff"' in html
    assert '<span class="usa-tag cb-tag cb-tag--urgent">urgent</span>' in html
    assert "There are 2 problems" in html
    assert 'href="#phone" data-focus-target="phone">Mobile number: not a phone number</a>' in html
    assert 'href="#track_sleep" data-focus-target="track_sleep">choose one</a>' in html
    assert _render(app, "{{ error_summary({}) }}").strip() == ""
