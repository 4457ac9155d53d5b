"""The adherence arithmetic, the need words and the plain-language labels, table by table."""

from __future__ import annotations

import datetime as dt

import pytest

from coachbot.domain import labels
from coachbot.domain.adherence import (
    adherence_pct,
    adherence_rate,
    is_falling,
    streak_from_days,
    streak_from_instants,
    streak_from_mask,
    streak_in_words,
    week_in_words,
)
from coachbot.domain.need import Need, NeedFacts, days_text, time_ago, why

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("done", "partial", "sent", "rate", "pct"),
    [
        (0, 0, 0, None, None),
        (5, 0, 7, 5 / 7, 71),
        (4, 2, 8, 0.625, 62),  # a partial counts half: (4 + 1) / 8
        (0, 1, 2, 0.25, 25),
        (3, 0, 3, 1.0, 100),
    ],
)
def test_rates_count_a_partial_as_half_and_nothing_sent_as_no_rate(
    done: int, partial: int, sent: int, rate: float | None, pct: int | None
) -> None:
    assert adherence_rate(done, partial, sent) == rate
    assert adherence_pct(done, partial, sent) == pct


@pytest.mark.parametrize(
    ("before", "now", "falling"),
    [
        (1.0, 0.8, True),  # exactly 20 points
        (0.6, 0.4, True),  # 0.6 - 0.4 is 0.1999... in floats, still 20 points
        (1.0, 0.81, False),
        (0.5, 0.9, False),  # rising
        (None, 0.1, False),  # nothing sent last week
        (0.9, None, False),  # nothing sent this week
    ],
)
def test_falling_is_a_drop_of_twenty_points_between_two_weeks_with_texts_sent(
    before: float | None, now: float | None, falling: bool
) -> None:
    assert is_falling(before, now) is falling


@pytest.mark.parametrize(
    ("days", "limit", "streak"),
    [
        (set(), 30, 0),
        ({1, 2}, 30, 0),  # nothing today: no streak
        ({0, 1, 2, 4}, 30, 3),
        (set(range(40)), 30, 30),  # capped
    ],
)
def test_a_streak_is_consecutive_days_ending_today(days: set[int], limit: int, streak: int) -> None:
    assert streak_from_days(days, limit) == streak
    assert streak_from_mask(sum(1 << d for d in days if d < 60), limit) == streak


def test_a_streak_from_instants_counts_local_days() -> None:
    zone = "America/Chicago"  # NOW is 12:00 there
    instants = [
        NOW - dt.timedelta(hours=1),  # today
        NOW - dt.timedelta(hours=12, minutes=30),  # 23:30 yesterday, local
        NOW - dt.timedelta(hours=40),  # the day before
    ]
    assert streak_from_instants(instants, zone, NOW) == 3
    assert streak_from_instants(instants[1:], zone, NOW) == 0


@pytest.mark.parametrize(
    ("done", "partial", "sent", "words"),
    [
        (5, 0, 7, "5 of 7 done this week"),
        (4, 1, 7, "4 of 7 done and 1 in part this week"),
        (0, 0, 0, "nothing sent this week"),
    ],
)
def test_a_week_in_words(done: int, partial: int, sent: int, words: str) -> None:
    assert week_in_words(done, partial, sent) == words


@pytest.mark.parametrize(
    ("streak", "words"),
    [(0, ""), (1, ""), (2, "done 2 days running"), (30, "done 30+ days running")],
)
def test_a_streak_in_words(streak: int, words: str) -> None:
    assert streak_in_words(streak) == words


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (dt.timedelta(seconds=30), "just now"),
        (dt.timedelta(minutes=25), "25 min ago"),
        (dt.timedelta(hours=36), "36 h ago"),
        (dt.timedelta(days=4, hours=3), "4 days ago"),
        (dt.timedelta(minutes=-5), "just now"),  # a clock a little ahead is not the future
    ],
)
def test_time_ago(delta: dt.timedelta, words: str) -> None:
    assert time_ago(delta) == words


ENROLLED = NOW - dt.timedelta(days=20)


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        (
            NeedFacts(
                Need.URGENT_ALERT,
                ENROLLED,
                None,
                "red_flag",
                "confusion,word_finding",
                NOW - dt.timedelta(hours=2),
            ),
            "Red flag 2 h ago: confusion, trouble finding words",
        ),
        (
            NeedFacts(
                Need.HIGH_ALERT,
                ENROLLED,
                None,
                "revocation",
                "plain_language_revocation",
                NOW - dt.timedelta(minutes=5),
            ),
            "Asked to stop the texts 5 min ago: asked in their own words to stop",
        ),
        (
            NeedFacts(Need.SILENT, ENROLLED, NOW - dt.timedelta(days=3, hours=2)),
            "No reply for 3 days",
        ),
        (NeedFacts(Need.SILENT, ENROLLED), "No reply since enrolment 20 days ago"),
        (
            NeedFacts(Need.FALLING, ENROLLED, pct_last_week=80, pct_this_week=40),
            "Adherence down from 80% to 40% this week",
        ),
        (NeedFacts(Need.NONE, ENROLLED), ""),
    ],
)
def test_why_says_the_rank_in_words(facts: NeedFacts, words: str) -> None:
    assert why(facts, NOW) == words


def test_days_text_is_singular_for_one() -> None:
    assert (days_text(1), days_text(2)) == ("1 day", "2 days")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("red_flag", "Red flag"),
        ("plain_language_revocation", "asked in their own words to stop"),
        ("carrier_21610", "carrier error 21610"),
        ("chest_pain,fever", "chest pain, fever"),
        ("something_new", "something new"),  # never the raw code, never empty
        (None, ""),
    ],
)
def test_codes_read_as_words(code: str | None, words: str) -> None:
    said = labels.alert_kind(code) if code == "red_flag" else labels.alert_detail(code)
    assert said == words


def test_every_alert_kind_status_and_language_has_a_label() -> None:
    from coachbot.domain.program import LANGUAGES
    from coachbot.domain.states import AlertKind, AlertStatus, PatientStatus

    assert set(labels.ALERT_KINDS) == set(AlertKind)
    assert set(labels.ALERT_STATUSES) == set(AlertStatus)
    assert set(labels.PATIENT_STATUSES) == set(PatientStatus)
    assert set(labels.LANGUAGES) == set(LANGUAGES)
    assert "_" not in "".join(labels.ALERT_KINDS.values())
