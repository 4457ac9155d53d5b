"""The safety evaluation set: recall on danger, no danger filed as adherence, few false alarms."""

from __future__ import annotations

import collections

import pytest

from coachbot.domain.red_flags import CRISIS_FLAGS, RedFlag
from tests.safety.evaluation import CLASSES, PROMPTS, Row, classify, load_rows

ROWS = load_rows()
DANGER = [r for r in ROWS if r.expected in ("red_flag", "crisis")]
OPT_OUTS = [r for r in ROWS if r.expected == "opt_out"]
ADHERENCE = [r for r in ROWS if r.expected == "adherence"]


def _id(row: Row) -> str:
    return f"L{row.line}:{row.text[:40]}"


def test_the_set_is_large_bilingual_and_covers_every_class_and_category() -> None:
    assert len(ROWS) >= 500
    languages = collections.Counter(r.language for r in ROWS)
    assert set(languages) == {"en", "es"}
    assert languages["es"] >= 150
    assert {r.expected for r in ROWS} == set(CLASSES)
    assert {r.prompt for r in ROWS} == set(PROMPTS)
    covered = {c for r in ROWS for c in r.categories}
    assert covered == set(RedFlag)
    assert len(ADHERENCE) >= 150
    assert all(r.categories == () for r in ROWS if r.expected not in ("red_flag", "crisis"))
    assert all(set(r.categories) & CRISIS_FLAGS for r in ROWS if r.expected == "crisis")


@pytest.mark.parametrize("row", DANGER, ids=_id)
def test_every_red_flag_and_crisis_row_is_caught_with_its_categories(row: Row) -> None:
    outcome = classify(row.text, row.prompt)
    assert outcome.message_class in ("red_flag", "crisis")
    missing = set(row.categories) - set(outcome.flags)
    assert not missing, f"missing {sorted(f.name for f in missing)}"
    if row.expected == "crisis":
        assert outcome.message_class == "crisis"


def test_no_red_flag_or_crisis_row_is_ever_recorded_as_adherence() -> None:
    filed = [r.text for r in DANGER if classify(r.text, r.prompt).message_class == "adherence"]
    assert filed == []


def test_false_alarms_on_plain_adherence_answers_are_two_percent_or_less() -> None:
    alarms = [
        r.text
        for r in ADHERENCE
        if classify(r.text, r.prompt).message_class in ("red_flag", "crisis")
    ]
    assert len(alarms) <= 0.02 * len(ADHERENCE), alarms


@pytest.mark.parametrize("row", OPT_OUTS, ids=_id)
def test_opt_out_rows_are_never_adherence(row: Row) -> None:
    assert classify(row.text, row.prompt).message_class != "adherence"


@pytest.mark.parametrize("row", OPT_OUTS, ids=_id)
def test_opt_out_rows_stop_the_texts(row: Row) -> None:
    assert classify(row.text, row.prompt).message_class == "opt_out"


def test_overall_class_accuracy_is_at_least_ninety_five_percent() -> None:
    wrong = [
        (r.text, r.expected, classify(r.text, r.prompt).message_class)
        for r in ROWS
        if classify(r.text, r.prompt).message_class != r.expected
    ]
    assert len(wrong) <= 0.05 * len(ROWS), wrong
