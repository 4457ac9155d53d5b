"""Parsing what staff type for a schedule: times of day (HH:MM) and days of the week, and
the refusals that name the value at fault. Apart from tests/unit/test_schedule.py, which
tests what the parsed schedule does."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from coachbot.domain.schedule import (
    parse_days,
    parse_hhmm,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:30", dt.time(8, 30)),
        ("8:30", dt.time(8, 30)),
        ("20:00", dt.time(20)),
        ("00:00", dt.time(0)),
        ("23:59", dt.time(23, 59)),
        (" 7:05 ", dt.time(7, 5)),
    ],
)
def test_parse_hhmm_accepts(text: str, expected: dt.time) -> None:
    assert parse_hhmm(text) == expected


@pytest.mark.parametrize(
    "text",
    ["24:00", "8.30", "25:00", "", "8", "08:60", "8:5", "08:30:00", "-1:00", "٠٨:٣٠", "08:30\n9"],
)
def test_parse_hhmm_refuses_naming_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_hhmm(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon,wed,fri", {0, 2, 4}),
        ("Mon, Wed, Fri", {0, 2, 4}),
        ("daily", set(range(7))),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("weekends", {5, 6}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("fri - mon", {4, 5, 6, 0}),
        ("sun", {6}),
        ("tuesday thursday", {1, 3}),
        ("lun,mié,vie", {0, 2, 4}),
        ("lunes-viernes", {0, 1, 2, 3, 4}),
        ("sábado, domingo", {5, 6}),
        ("fin de semana", {5, 6}),
        ("todos los días", set(range(7))),
        ("entre semana", {0, 1, 2, 3, 4}),
        ("weekends,wed", {2, 5, 6}),
    ],
)
def test_parse_days_accepts(text: str, expected: set[int]) -> None:
    assert parse_days(text) == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("mon,funday", "'funday'"),
        ("mon-xyz", "'mon-xyz'"),
        ("", "''"),
        ("mon,,wed", "'mon,,wed'"),
        ("1,2", "'1'"),
    ],
)
def test_parse_days_refuses_naming_the_token(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(bad)):
        parse_days(text)
