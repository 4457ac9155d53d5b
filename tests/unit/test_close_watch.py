"""The close-watch rules: who is in the weeks on a local day, when the check is due in a
caregiver's zone (daylight saving included), and how a programme's settings are read and
validated."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coachbot.domain import close_watch as cw

D = dt.date(2026, 3, 1)


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("from_date", "days", "local_date", "expected"),
    [
        (D, 28, D, True),  # the first day counts
        (D, 28, D + dt.timedelta(days=27), True),  # the last day counts
        (D, 28, D + dt.timedelta(days=28), False),  # the day after does not
        (D, 28, D - dt.timedelta(days=1), False),  # nor the day before
        (D, 1, D, True),
        (None, 28, D, False),  # no close watch set
        (D, None, D, False),
        (D, 0, D, False),
    ],
)
def test_in_close_watch(
    from_date: dt.date | None, days: int | None, local_date: dt.date, expected: bool
) -> None:
    assert cw.in_close_watch(from_date, days, local_date) is expected


def test_a_patients_own_length_wins_over_the_programmes() -> None:
    assert cw.effective_days(10, cw.DEFAULTS) == 10
    assert cw.effective_days(None, cw.CloseWatchSettings(days=14)) == 14


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected_utc"),
    [
        ("America/New_York", dt.date(2026, 3, 6), dt.time(18), _utc(2026, 3, 6, 23)),
        # The Sunday daylight saving starts: 18:00 is 22:00 UTC from then on.
        ("America/New_York", dt.date(2026, 3, 8), dt.time(18), _utc(2026, 3, 8, 22)),
        ("Europe/Madrid", dt.date(2026, 3, 28), dt.time(18), _utc(2026, 3, 28, 17)),
        ("Europe/Madrid", dt.date(2026, 3, 29), dt.time(18), _utc(2026, 3, 29, 16)),
        # A wall time the change skips moves on by the gap.
        ("America/New_York", dt.date(2026, 3, 8), dt.time(2, 30), _utc(2026, 3, 8, 7, 30)),
        # A repeated one is its first occurrence.
        ("America/New_York", dt.date(2026, 11, 1), dt.time(1, 30), _utc(2026, 11, 1, 5, 30)),
    ],
)
def test_local_instant_across_daylight_saving(
    zone: str, day: dt.date, at: dt.time, expected_utc: dt.datetime
) -> None:
    assert cw.local_instant(day, at, ZoneInfo(zone)) == expected_utc


def test_items_are_numbered_for_the_text() -> None:
    assert cw.items_text(("say the year", "name 3 things")) == "1) say the year 2) name 3 things"


def test_absent_or_partial_settings_fall_back_to_the_defaults() -> None:
    assert cw.parse(None) == cw.DEFAULTS
    partial = cw.parse({"check_time": "17:30", "items": {"en": ["walk to the door"]}})
    assert partial.check_time == dt.time(17, 30)
    assert partial.days == 28
    assert partial.items_for("en") == ("walk to the door",)
    assert partial.items_for("es") == cw.DEFAULT_ITEMS["es"]
    assert partial.items_for("fr") == ("walk to the door",)  # English when none in language


def test_settings_round_trip_through_json() -> None:
    settings = cw.CloseWatchSettings(
        14, dt.time(17), 2, dt.time(20), {"en": ("a", "b"), "es": ("c",)}
    )
    assert cw.parse(settings.as_json()) == settings


def _form(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "days": "28",
        "check_time": "18:00",
        "followup_after_hours": "3",
        "seen_today_time": "19:00",
        "items": {"en": "say the year\nname 3 things\n", "es": "decir el año\n"},
    }
    values.update(overrides)
    return values


def test_a_valid_form_is_parsed() -> None:
    settings = cw.validate(**_form())  # type: ignore[arg-type]
    assert settings.items["en"] == ("say the year", "name 3 things")
    assert settings.followup_after == dt.timedelta(hours=3)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"days": "0"}, "days"),
        ({"days": "91"}, "days"),
        ({"days": "two"}, "days"),
        ({"check_time": "25:00"}, "check_time"),
        ({"check_time": "six"}, "check_time"),
        ({"seen_today_time": ""}, "seen_today_time"),
        ({"followup_after_hours": "0"}, "followup_after_hours"),
        ({"followup_after_hours": "13"}, "followup_after_hours"),
        ({"items": {"en": "", "es": "x"}}, "items_en"),
        ({"items": {"en": "x", "es": "\n".join("abcdefg")}}, "items_es"),
        ({"items": {"en": "x" * 81, "es": "x"}}, "items_en"),
    ],
)
def test_each_wrong_field_is_named(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(cw.InvalidCloseWatch) as caught:
        cw.validate(**_form(**overrides))  # type: ignore[arg-type]
    assert set(caught.value.errors) == {field}


def test_changes_name_each_field() -> None:
    new = cw.CloseWatchSettings(check_time=dt.time(17, 30), items={"en": ("x",)})
    assert cw.changes(cw.DEFAULTS, new) == [
        "close_watch.check_time: 18:00 -> 17:30",
        "close_watch.items.en: changed",
        "close_watch.items.es: changed",
    ]
