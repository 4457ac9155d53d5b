"""Adherence arithmetic: rates, streaks and whether adherence is falling. Pure functions over
numbers and instants; the queries count in SQL and hand the counts here.

A partial answer ("2 of 3", "half") counts as half a done in a rate. Half, not the reported
fraction: the fraction is kept as a reported value, but a rate that moved with it would make
"2 of 3" and "1 of 3" different kinds of success while both mean "did some and not all". A
partial answer does not extend a streak (a streak is days in a row with a done).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from zoneinfo import ZoneInfo

# How much of a done a partial answer is worth in an adherence rate.
PARTIAL_CREDIT = 0.5
# Streaks are counted back this many local days at most; the pages show "30+ days".
STREAK_LIMIT_DAYS = 30
# A week's rate this many points below the week before counts as falling adherence.
FALLING_POINTS = 20
# The same as a drop in rate, as the database compares rates: a hair under FALLING_POINTS
# so float rounding (0.6 - 0.4 = 0.19999...) does not hide a 20-point drop.
FALLING_DROP = FALLING_POINTS / 100 - 1e-9


def adherence_rate(done: int, partial: int, sent: int) -> float | None:
    """Done plus half of each partial, over sent; None if nothing was sent."""
    return (done + PARTIAL_CREDIT * partial) / sent if sent else None


def adherence_pct(done: int, partial: int, sent: int) -> int | None:
    """The adherence rate as a whole percentage; None if nothing was sent."""
    rate = adherence_rate(done, partial, sent)
    return None if rate is None else round(100 * rate)


def is_falling(rate_before: float | None, rate_now: float | None) -> bool:
    """True when this week's rate is at least FALLING_POINTS below last week's (both weeks
    had texts sent: a week with nothing sent says nothing about adherence). The patients
    list ranks by the same comparison in SQL, with FALLING_DROP."""
    if rate_before is None or rate_now is None:
        return False
    return rate_before - rate_now >= FALLING_DROP


def streak_from_days(days_ago: Collection[int], limit: int = STREAK_LIMIT_DAYS) -> int:
    """Consecutive local days ending today (0 = today) that hold a done, capped at `limit`."""
    streak = 0
    while streak < limit and streak in days_ago:
        streak += 1
    return streak


def streak_from_mask(mask: int, limit: int = STREAK_LIMIT_DAYS) -> int:
    """The same from a bit mask whose bit n is set when the day n days ago holds a done."""
    return streak_from_days({n for n in range(limit) if mask >> n & 1}, limit)


def streak_from_instants(
    instants: Iterable[dt.datetime], timezone: str | ZoneInfo, now: dt.datetime
) -> int:
    """Consecutive local days, ending on `now`'s local day, that hold one of `instants`
    (uncapped: a caller that needs a cap reads only that many days)."""
    zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    days = {(today - i.astimezone(zone).date()).days for i in instants}
    return streak_from_days(days, limit=len(days) + 1)


def week_in_words(done: int, partial: int, sent: int) -> str:
    """A track's week as a clinician says it: "5 of 7 done this week", "4 of 7 done and 1 in
    part this week", "nothing sent this week"."""
    if not sent:
        return "nothing sent this week"
    part = f" and {partial} in part" if partial else ""
    return f"{done} of {sent} done{part} this week"


def streak_in_words(streak: int, limit: int = STREAK_LIMIT_DAYS) -> str:
    """ "done 3 days running", "done 30+ days running"; empty below two days (one day is not
    a streak worth a word)."""
    if streak < 2:
        return ""
    return f"done {streak}{'+' if streak >= limit else ''} days running"
