"""The close-watch weeks: who is in them on a local day, and what a programme sets for them.

A patient is in close watch on local date D when ``from <= D < from + days``; ``days`` is the
patient's own length or else the programme's. The programme (its version's settings JSON,
under ``"close_watch"``) sets the default length, the local time of the caregiver's daily
observation check, how long an unanswered check waits for its one follow-up (and as long
again for the no-answer alert), when "Have you seen <name> today?" goes if the patient was
silent, and the check's items per language: operators choose the wording, so the items are a
variable of the ``caregiver.check`` template, never a grade or a diagnosis.

Pure: no I/O; callers pass the date, the zone and what they read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from coachbot.domain import schedule as sched

MIN_DAYS, MAX_DAYS = 1, 90
MIN_FOLLOWUP_HOURS, MAX_FOLLOWUP_HOURS = 1, 12
MIN_ITEMS, MAX_ITEMS = 1, 6
MAX_ITEM_CHARS = 80
LANGUAGES = ("en", "es")

# The lay items, inspired by the ICE screen's but worded for anyone at home.
DEFAULT_ITEMS: Mapping[str, tuple[str, ...]] = {
    "en": (
        "say the year, month and city",
        "name 3 things you point to",
        "write one normal sentence",
        "count down from one hundred by tens",
    ),
    "es": (
        "decir el año, el mes y la ciudad",
        "nombrar 3 cosas que usted le señala",
        "escribir una frase normal",
        "contar de diez en diez hacia abajo desde cien",
    ),
}


@dataclass(frozen=True)
class CloseWatchSettings:
    """One programme version's close-watch rules (built-in defaults when it sets none)."""

    days: int = 28
    check_time: dt.time = dt.time(18, 0)
    # 18:00 + 1 h: the follow-up still falls inside the default 08:00-20:00 send window.
    followup_after_hours: int = 1
    seen_today_time: dt.time = dt.time(19, 0)
    items: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ITEMS))

    @property
    def followup_after(self) -> dt.timedelta:
        return dt.timedelta(hours=self.followup_after_hours)

    def items_for(self, language: str) -> tuple[str, ...]:
        """The items in the caregiver's language, English when the programme has none."""
        return self.items.get(language) or self.items.get("en") or DEFAULT_ITEMS["en"]

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "check_time": f"{self.check_time:%H:%M}",
            "followup_after_hours": self.followup_after_hours,
            "seen_today_time": f"{self.seen_today_time:%H:%M}",
            "items": {lang: list(items) for lang, items in sorted(self.items.items())},
        }


DEFAULTS = CloseWatchSettings()


class InvalidCloseWatch(ValueError):
    """Field name -> what is wrong with it, every field checked at once."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def in_close_watch(from_date: dt.date | None, days: int | None, local_date: dt.date) -> bool:
    """Whether `local_date` is inside the close-watch weeks that start on `from_date`."""
    if from_date is None or days is None or days <= 0:
        return False
    return from_date <= local_date < from_date + dt.timedelta(days=days)


def effective_days(patient_days: int | None, settings: CloseWatchSettings) -> int:
    """The patient's own length wins over the programme's default."""
    return patient_days if patient_days is not None else settings.days


def local_instant(local_date: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """`at` on `local_date` in `zone`, as an aware UTC instant. A wall time that a daylight-
    saving change skips moves on by the gap; a repeated one is its first occurrence (the
    nudge schedule's rule, `schedule.occurrences_between`)."""
    return sched.due_instant(dt.datetime.combine(local_date, at), zone)


def items_text(items: tuple[str, ...] | list[str]) -> str:
    """'1) say the year 2) name 3 things ...': the items as the check text lists them."""
    return " ".join(f"{n}) {item.strip()}" for n, item in enumerate(items, start=1))


def parse(raw: Mapping[str, Any] | None) -> CloseWatchSettings:
    """A stored version's "close_watch" object; absent or partial falls back to defaults
    (stored values were validated when they were saved)."""
    if not raw:
        return DEFAULTS
    items = raw.get("items") or {}
    return CloseWatchSettings(
        days=int(raw.get("days", DEFAULTS.days)),
        check_time=sched.parse_hhmm(str(raw.get("check_time", "18:00"))),
        followup_after_hours=int(raw.get("followup_after_hours", DEFAULTS.followup_after_hours)),
        seen_today_time=sched.parse_hhmm(str(raw.get("seen_today_time", "19:00"))),
        items={
            **DEFAULT_ITEMS,
            **{lang: tuple(str(i) for i in values) for lang, values in items.items() if values},
        },
    )


def _whole(text: object, low: int, high: int, unit: str) -> tuple[int | None, str | None]:
    try:
        value = int(str(text).strip())
    except ValueError:
        return None, f"a whole number of {unit} is required"
    if not low <= value <= high:
        return None, f"must be between {low} and {high} {unit}"
    return value, None


def _time(text: object) -> tuple[dt.time | None, str | None]:
    try:
        return sched.parse_hhmm(str(text)), None
    except ValueError:
        return None, "a time as HH:MM is required, e.g. 18:00"


def split_items(text: str) -> tuple[str, ...]:
    """What an operator typed, one item a line, blank lines dropped."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _items_problem(items: tuple[str, ...]) -> str | None:
    if not MIN_ITEMS <= len(items) <= MAX_ITEMS:
        return f"give {MIN_ITEMS} to {MAX_ITEMS} items, one a line"
    long = [n for n, item in enumerate(items, start=1) if len(item) > MAX_ITEM_CHARS]
    if long:
        return f"item {long[0]} is longer than {MAX_ITEM_CHARS} characters"
    return None


def validate(
    *,
    days: object,
    check_time: object,
    followup_after_hours: object,
    seen_today_time: object,
    items: Mapping[str, str],
) -> CloseWatchSettings:
    """Every field checked at once (form names: `days`, `check_time`, ...,
    `items_en`, `items_es`); raises InvalidCloseWatch naming each field that is wrong.
    Whether the composed text fits two segments and passes the linter is the caller's
    check (`services.close_watch_settings`), which has the message library."""
    errors: dict[str, str] = {}
    n_days, problem = _whole(days, MIN_DAYS, MAX_DAYS, "days")
    if problem:
        errors["days"] = problem
    hours, problem = _whole(followup_after_hours, MIN_FOLLOWUP_HOURS, MAX_FOLLOWUP_HOURS, "hours")
    if problem:
        errors["followup_after_hours"] = problem
    check_at, problem = _time(check_time)
    if problem:
        errors["check_time"] = problem
    seen_at, problem = _time(seen_today_time)
    if problem:
        errors["seen_today_time"] = problem
    parsed: dict[str, tuple[str, ...]] = {}
    for language in LANGUAGES:
        parsed[language] = split_items(items.get(language, ""))
        problem = _items_problem(parsed[language])
        if problem:
            errors[f"items_{language}"] = problem
    if errors or n_days is None or hours is None or check_at is None or seen_at is None:
        raise InvalidCloseWatch(errors)
    return CloseWatchSettings(n_days, check_at, hours, seen_at, parsed)


def changes(old: CloseWatchSettings, new: CloseWatchSettings) -> list[str]:
    """What an edit changes, field by field: "check_time: 18:00 -> 17:30"."""
    before, after = old.as_json(), new.as_json()
    out = [
        f"close_watch.{k}: {before[k]} -> {after[k]}"
        for k in before
        if k != "items" and before[k] != after[k]
    ]
    for language in sorted(set(before["items"]) | set(after["items"])):
        if before["items"].get(language) != after["items"].get(language):
            out.append(f"close_watch.items.{language}: changed")
    return out
