"""Who needs the care team first: the patients list's default order and its "Why" column.

The order is a rank (the database computes it, so the list stays one paged query), and the
words say the rank's reason with the patient's own figures. Ranks, most pressing first:

1. an open urgent alert, 2. an open high alert, 3. a caregiver check missed (no answer after
its follow-up) in the last CAREGIVER_MISSED_DAYS days, even once its alert is closed,
4. silence (an active patient with no reply for SILENCE_DAYS days), 5. falling adherence
(this week's rate FALLING_POINTS or more below last week's, `domain.adherence.is_falling`),
6. everyone else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum

from coachbot.domain import labels

SILENCE_DAYS = 3
# How long a missed caregiver check keeps its patient up the list (by the check's due time).
CAREGIVER_MISSED_DAYS = 2


class Need(IntEnum):
    URGENT_ALERT = 0
    HIGH_ALERT = 1
    CAREGIVER_MISSED = 2
    SILENT = 3
    FALLING = 4
    NONE = 5


@dataclass(frozen=True)
class NeedFacts:
    """What the list knows about one patient's need, all from the page's queries."""

    rank: Need
    enrolled_at: dt.datetime
    last_reply_at: dt.datetime | None = None
    alert_kind: str | None = None  # the newest open alert of the rank's severity
    alert_detail: str | None = None
    alert_at: dt.datetime | None = None
    pct_last_week: int | None = None
    pct_this_week: int | None = None
    missed_check_days_ago: int | None = None  # the newest missed caregiver check's local day


def time_ago(delta: dt.timedelta) -> str:
    """How long ago, as a person says it: "just now", "25 min ago", "3 h ago", "4 days ago"
    (hours up to two days: "36 h" reads better than "1 day" for a sick patient)."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _day_words(days_ago: int) -> str:
    if days_ago <= 0:
        return "today"
    return "yesterday" if days_ago == 1 else f"{days_ago} days ago"


def why(facts: NeedFacts, now: dt.datetime) -> str:
    """The rank's reason in words: "Red flag 2 h ago: confusion", "No reply for 3 days",
    "Adherence down from 80% to 40% this week"; empty for everyone else."""
    if facts.rank in (Need.URGENT_ALERT, Need.HIGH_ALERT) and facts.alert_kind is not None:
        when = time_ago(now - facts.alert_at) if facts.alert_at else ""
        detail = labels.alert_detail(facts.alert_detail)
        said = f"{labels.alert_kind(facts.alert_kind)} {when}".strip()
        return f"{said}: {detail}" if detail else said
    if facts.rank is Need.CAREGIVER_MISSED:
        return f"Caregiver check missed {_day_words(facts.missed_check_days_ago or 0)}"
    if facts.rank is Need.SILENT:
        if facts.last_reply_at is None:
            days = (now - facts.enrolled_at).days
            return f"No reply since enrolment {days_text(days)} ago"
        return f"No reply for {days_text((now - facts.last_reply_at).days)}"
    if facts.rank is Need.FALLING:
        return f"Adherence down from {facts.pct_last_week}% to {facts.pct_this_week}% this week"
    return ""
