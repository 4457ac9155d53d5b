"""The pure on-call rules: who is on call at an instant (DST included), which alerts page,
which attempt is due, what a page says, and what an ACK is."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coachbot.domain.oncall import (
    Ack,
    OnCall,
    PageStep,
    Shift,
    is_pageable,
    on_call_at,
    page_step_due,
    page_text,
    parse_ack,
)

NY = ZoneInfo("America/New_York")
T = dt.time
# Mon-Fri days 08:00-20:00 by staff 1 (backup 2), nights 20:00-08:00 by staff 3 (backup 4);
# the weekend is two 24 h shifts by staff 5, Saturday 08:00 to Monday 08:00.
ROTA = [
    *[Shift(d, T(8), T(20), 1, 2) for d in range(5)],
    *[Shift(d, T(20), T(8), 3, 4) for d in range(5)],
    Shift(5, T(8), T(8), 5, None),
    Shift(6, T(8), T(8), 5, None),
]


def _local(text: str, fold: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY, fold=fold)


def _primary(instant: dt.datetime, shifts: list[Shift]) -> int | None:
    found = on_call_at(instant, override=None, shifts=shifts, zone=NY)
    return found.primary_id if found is not None else None


@pytest.mark.parametrize(
    ("local", "primary"),
    [
        ("2026-12-07T08:00", 1),  # Monday, the day shift's first minute
        ("2026-12-07T19:59", 1),
        ("2026-12-07T20:00", 3),  # the night shift takes over at its start
        ("2026-12-08T02:00", 3),  # Monday night, past midnight into Tuesday
        ("2026-12-12T07:59", 3),  # Friday night runs into Saturday morning
        ("2026-12-12T08:00", 5),  # the weekend block
        ("2026-12-14T07:59", 5),  # Sunday's 24 h shift ends Monday 08:00
        ("2026-12-14T08:00", 1),
    ],
)
def test_on_call_follows_the_weekly_shifts_across_midnight(local: str, primary: int) -> None:
    found = on_call_at(_local(local), override=None, shifts=ROTA, zone=NY)
    assert found == OnCall(primary, primary + 1 if primary != 5 else None, "shift")


def test_nobody_is_on_call_outside_every_shift() -> None:
    only_days = [Shift(0, T(8), T(20), 1)]
    assert on_call_at(_local("2026-12-07T20:00"), override=None, shifts=only_days, zone=NY) is None
    assert on_call_at(_local("2026-12-08T09:00"), override=None, shifts=[], zone=NY) is None


def test_an_override_beats_the_shifts() -> None:
    override = OnCall(9, 8, "override")
    assert on_call_at(_local("2026-12-07T09:00"), override=override, shifts=ROTA, zone=NY) == (
        override
    )


def test_overlapping_shifts_are_covered_by_the_one_that_started_last() -> None:
    shifts = [Shift(0, T(8), T(20), 1), Shift(0, T(12), T(14), 7)]
    assert _primary(_local("2026-12-07T13:00"), shifts) == 7
    assert _primary(_local("2026-12-07T14:00"), shifts) == 1


@pytest.mark.parametrize("fold", [0, 1])
def test_the_repeated_autumn_hour_is_covered_once_by_the_shift_owning_that_wall_time(
    fold: int,
) -> None:
    # 2026-11-01 01:30 happens twice in New York; Sunday night shift until 02:00 covers both.
    shifts = [Shift(5, T(22), T(2), 3), Shift(6, T(2), T(10), 1)]
    instant = _local("2026-11-01T01:30", fold).astimezone(dt.UTC)
    assert _primary(instant, shifts) == 3


def test_a_boundary_inside_the_skipped_spring_hour_leaves_no_gap() -> None:
    # 2026-03-08 02:00-03:00 does not exist in New York: the hand-over at 02:30 happens at
    # the first wall time that exists (03:00 EDT), and the minute before is still covered.
    shifts = [Shift(5, T(22), T(2, 30), 3), Shift(6, T(2, 30), T(10), 1)]
    before = dt.datetime(2026, 3, 8, 6, 59, tzinfo=dt.UTC)  # 01:59 EST
    after = dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC)  # 03:00 EDT
    assert _primary(before, shifts) == 3
    assert _primary(after, shifts) == 1


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        on_call_at(dt.datetime(2026, 12, 7, 9), override=None, shifts=ROTA, zone=NY)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("kind", "severity", "pageable"),
    [
        ("red_flag", "urgent", True),
        ("crisis", "urgent", True),  # a kind the pager has never heard of still pages
        ("silence", "high", True),
        ("silence", "normal", False),
        ("red_flag", "normal", False),
        ("revocation", "high", False),
        ("opt_out", "urgent", False),
        ("reply_loop", "high", False),
        ("invalid_number", "high", False),
    ],
)
def test_only_urgent_or_high_health_alerts_page_a_person(
    kind: str, severity: str, pageable: bool
) -> None:
    assert is_pageable(kind, severity) is pageable


START = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
FIVE = dt.timedelta(minutes=5)
FIFTEEN = dt.timedelta(minutes=15)


@pytest.mark.parametrize(
    ("minutes", "step"),
    [
        (0, PageStep(0, False)),
        (4.99, PageStep(0, False)),
        (5, PageStep(1, False)),
        (14.9, PageStep(2, False)),
        (15, PageStep(3, True)),
        (61, PageStep(12, True)),  # a clock down for an hour fires the current attempt only
        (120, None),  # paging stops after MAX_PAGE_ATTEMPTS
        (-1, None),
    ],
)
def test_the_attempt_due_repages_every_five_minutes_and_adds_the_backup_at_fifteen(
    minutes: float, step: PageStep | None
) -> None:
    now = START + dt.timedelta(minutes=minutes)
    assert page_step_due(START, now, repage=FIVE, backup_after=FIFTEEN) == step


def test_a_page_names_no_patient_only_the_alert_the_clinic_and_the_link() -> None:
    text = page_text(42, "urgent", "Riverside", "https://coach.example.org")
    assert text == (
        "Riverside: URGENT alert #42. Open https://coach.example.org/alerts/42 ."
        " Reply ACK 42 to acknowledge."
    )
    assert len(text) <= 160
    assert "alert #42 (page 3)." in page_text(42, "high", "Riverside", "https://x.org", attempt=2)


@pytest.mark.parametrize(
    ("body", "ack"),
    [
        ("ACK 12", Ack(12)),
        ("ack #12", Ack(12)),
        ("  Ack12. ", Ack(12)),
        ("acknowledged 7", Ack(7)),
        ("ACK", Ack(None)),
        ("ack!", Ack(None)),
        ("back 12", None),
        ("ACK 12 on my way", None),
        ("I had a seizure", None),
        ("", None),
    ],
)
def test_an_ack_is_the_word_and_an_optional_alert_number_only(body: str, ack: Ack | None) -> None:
    assert parse_ack(body) == ack
