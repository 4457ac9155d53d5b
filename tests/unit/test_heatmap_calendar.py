"""The heatmap's calendar: 90 days as Monday-to-Sunday week columns labelled by month, and the
weekly adherence trend counted from the same cells."""

from __future__ import annotations

import datetime as dt

from coachbot.queries.patient_page import HeatCell, heatmap_weeks, weekly_adherence


def _cells(first: dt.date, states: list[str]) -> list[HeatCell]:
    return [HeatCell(first + dt.timedelta(days=n), s) for n, s in enumerate(states)]


def test_weeks_are_columns_from_monday_padded_outside_the_range() -> None:
    # Thursday 2026-10-29 to Sunday 2026-11-08: 11 days over two weeks.
    weeks = heatmap_weeks(_cells(dt.date(2026, 10, 29), ["done"] * 11))
    assert len(weeks) == 2
    assert [d is None for d in weeks[0].days] == [True] * 3 + [False] * 4
    thursday = weeks[0].days[3]
    assert thursday is not None
    assert thursday.day == dt.date(2026, 10, 29)
    assert all(d is not None and d.day.weekday() == i for i, d in enumerate(weeks[1].days))
    # The first column names its month even mid-month; a week holding the 1st names the new one.
    assert [w.month for w in weeks] == ["Nov", ""]  # Sunday 1 Nov is in the first week


def test_ninety_days_name_each_month_once() -> None:
    first = dt.date(2026, 8, 26)  # Wednesday
    weeks = heatmap_weeks(_cells(first, ["none"] * 90))
    assert sum(d is not None for w in weeks for d in w.days) == 90
    assert [w.month for w in weeks if w.month] == ["Aug", "Sep", "Oct", "Nov"]


def test_weekly_adherence_counts_partial_half_and_leaves_out_nothing_due() -> None:
    monday = dt.date(2026, 11, 2)
    states = ["done", "partial", "missed", "skipped", "none", "waiting", "done"] + ["none"] * 7
    rates = weekly_adherence(heatmap_weeks(_cells(monday, states)))
    # (1 + 0.5 + 0 + 0 + 1) of 5 days with something due: 50%; the empty week is a gap.
    assert rates == [(monday, 50), (monday + dt.timedelta(days=7), None)]


def test_no_cells_no_weeks() -> None:
    assert heatmap_weeks([]) == []
