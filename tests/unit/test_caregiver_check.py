"""A caregiver's answer to the daily observation check, read and decided, as tables."""

from __future__ import annotations

import pytest

from coachbot.domain.caregiver_check import (
    CaregiverAnswer,
    CheckDecision,
    Concern,
    SeenToday,
    decide,
    read_answer,
    read_choice,
    read_seen_today,
)
from coachbot.domain.red_flags import RedFlag

OK, WORSE, WORRIED = Concern.OK, Concern.WORSE, Concern.WORRIED


@pytest.mark.parametrize(
    ("body", "count", "concern"),
    [
        # Counts of items that went as usual, in figures, as a fraction and in words.
        ("3", 3, None),
        (" 4 ", 4, None),
        ("0", 0, None),
        ("3/4", 3, None),
        ("3 / 4", 3, None),
        ("3 of 4", 3, None),
        ("2 de 4", 2, None),
        ("three", 3, None),
        ("Three.", 3, None),
        ("tres", 3, None),
        ("TRÉS", 3, None),
        ("cuatro", 4, None),
        ("none", 0, None),
        ("ninguna", 0, None),
        ("all", 4, None),
        ("all fine", 4, OK),
        ("All good!", 4, OK),
        ("everything ok", 4, OK),
        ("todo bien", 4, OK),
        ("Todos bien.", 4, OK),
        # Words.
        ("OK", None, OK),
        ("okay", None, OK),
        ("ok!", None, OK),
        ("fine", None, OK),
        ("bien", None, OK),
        ("WORSE", None, WORSE),
        ("worse today", None, WORSE),
        ("peor", None, WORSE),
        ("Está peor", None, WORSE),
        ("worried", None, WORRIED),
        ("WORRIED", None, WORRIED),
        ("Estoy preocupada", None, WORRIED),
        ("me preocupa", None, WORRIED),
        # One-letter typos of the long words.
        ("woried", None, WORRIED),
        ("worrid", None, WORRIED),
        ("preocupda", None, WORRIED),
        ("wrose", None, WORSE),
        # Negation: "not ok" is a worry, "not worried" an OK; a comma breaks it.
        ("not ok", None, WORRIED),
        ("no está bien", None, WORRIED),
        ("not worried", None, OK),
        ("no estoy preocupado", None, OK),
        ("no worse", None, OK),
        ("no, worse", None, WORSE),
        # Both, and the strongest word wins.
        ("3 but worried", 3, WORRIED),
        ("ok but worse", None, WORSE),
        ("2/4, preocupada", 2, WORRIED),
    ],
)
def test_an_answer_is_read_as_a_count_and_a_word(
    body: str, count: int | None, concern: Concern | None
) -> None:
    answer = read_answer(body)
    assert (answer.items_as_usual, answer.concern) == (count, concern)
    assert answer.understood


@pytest.mark.parametrize(
    "body",
    [
        "5",  # more items than the check has
        "3/5",  # a fraction of another check
        "3 or 4",  # two counts: which one?
        "tengo una pregunta",  # "una" is an article here, not a count
        "hello",
        "",
    ],
)
def test_an_answer_that_is_not_a_count_or_a_word_is_not_understood(body: str) -> None:
    answer = read_answer(body)
    assert answer == CaregiverAnswer()
    assert not answer.understood


def test_a_check_with_other_items_counts_against_its_own_number() -> None:
    assert read_answer("5", items=5).items_as_usual == 5
    assert read_answer("all fine", items=3).items_as_usual == 3
    assert read_answer("3/4", items=3).items_as_usual is None


@pytest.mark.parametrize(
    ("body", "flag"),
    [
        ("she is confused today", RedFlag.CONFUSION),
        ("He could not write a sentence", RedFlag.HANDWRITING),
        ("no puede escribir", RedFlag.HANDWRITING),
        ("3, but he had a seizure", RedFlag.SEIZURE),
    ],
)
def test_red_flags_in_the_caregivers_words_come_from_the_red_flag_matcher(
    body: str, flag: RedFlag
) -> None:
    answer = read_answer(body)
    assert flag in answer.flags
    assert answer.understood


# (answer, baseline before) -> (urgent, reasons, baseline after)
_DECISIONS: list[tuple[CaregiverAnswer, int | None, CheckDecision]] = [
    # The first count is the baseline, whatever it is, and is not itself a concern.
    (CaregiverAnswer(items_as_usual=2), None, CheckDecision(False, (), 2)),
    (CaregiverAnswer(items_as_usual=4), None, CheckDecision(False, (), 4)),
    # Later counts: the same or better is quiet; below the baseline pages.
    (CaregiverAnswer(items_as_usual=4), 4, CheckDecision(False, (), 4)),
    (CaregiverAnswer(items_as_usual=3), 2, CheckDecision(False, (), 2)),
    (
        CaregiverAnswer(items_as_usual=3),
        4,
        CheckDecision(True, ("3 of the usual items, below their first answer (4)",), 4),
    ),
    (
        CaregiverAnswer(items_as_usual=0),
        1,
        CheckDecision(True, ("0 of the usual items, below their first answer (1)",), 1),
    ),
    # Words: OK is quiet; WORSE and WORRIED page, with or without a baseline.
    (CaregiverAnswer(concern=OK), 4, CheckDecision(False, (), 4)),
    (CaregiverAnswer(concern=OK), None, CheckDecision(False, (), None)),
    (CaregiverAnswer(concern=WORSE), None, CheckDecision(True, ("caregiver says worse",), None)),
    (CaregiverAnswer(concern=WORRIED), 4, CheckDecision(True, ("caregiver is worried",), 4)),
    # A full count with a worry still pages; a first count with a worry also sets the baseline.
    (
        CaregiverAnswer(items_as_usual=4, concern=WORRIED),
        None,
        CheckDecision(True, ("caregiver is worried",), 4),
    ),
    # A red flag pages even with every item as usual.
    (
        CaregiverAnswer(items_as_usual=4, flags=(RedFlag.CONFUSION,)),
        4,
        CheckDecision(True, ("red flag in the caregiver's words",), 4),
    ),
    (
        CaregiverAnswer(items_as_usual=1, concern=WORSE, flags=(RedFlag.FALL,)),
        3,
        CheckDecision(
            True,
            (
                "red flag in the caregiver's words",
                "caregiver says worse",
                "1 of the usual items, below their first answer (3)",
            ),
            3,
        ),
    ),
    # Nothing understood: nothing decided, the baseline stays.
    (CaregiverAnswer(), 3, CheckDecision(False, (), 3)),
    (CaregiverAnswer(), None, CheckDecision(False, (), None)),
]


@pytest.mark.parametrize(("answer", "baseline", "expected"), _DECISIONS)
def test_the_escalation_decision(
    answer: CaregiverAnswer, baseline: int | None, expected: CheckDecision
) -> None:
    assert decide(answer, baseline) == expected


def test_read_and_decide_end_to_end_from_a_first_answer_to_a_drop() -> None:
    first = decide(read_answer("4/4"), None)
    assert first == CheckDecision(False, (), 4)
    later = decide(read_answer("two"), first.baseline)
    assert later.urgent
    assert later.baseline == 4


def test_nothing_in_a_decision_grades_icans() -> None:
    """coachbot relays the observation: no grade or ICE score in any reason it gives."""
    reasons = " ".join(r for _, _, d in _DECISIONS for r in d.reasons).lower()
    assert reasons
    for word in ("icans", "grade", "ice score", "neurotox"):
        assert word not in reasons


@pytest.mark.parametrize(
    ("body", "seen"),
    [
        ("1", SeenToday.FINE),
        ("OK", SeenToday.FINE),
        ("Sí, todo bien", SeenToday.FINE),
        ("2", SeenToday.WORRIED),
        ("worried", SeenToday.WORRIED),
        ("PREOCUPADA", SeenToday.WORRIED),
        ("1 but worried", SeenToday.WORRIED),
        ("1 2", SeenToday.WORRIED),
        ("she fell this morning", SeenToday.WORRIED),
        # Not an answer: the caller treats it like silence, which raises an alert.
        ("no la he visto", None),
        ("haven't seen him", None),
        ("3", None),
        ("", None),
    ],
)
def test_have_you_seen_them_today(body: str, seen: SeenToday | None) -> None:
    assert read_seen_today(body) is seen


@pytest.mark.parametrize(
    ("body", "names", "index"),
    [
        ("1", ["Ana", "Bo"], 0),
        ("2", ["Ana", "Bo"], 1),
        ("two", ["Ana", "Bo"], 1),
        ("dos", ["Ana", "Bo"], 1),
        ("Bo", ["Ana", "Bo"], 1),
        ("it's about ana", ["Ana", "Bo"], 0),
        ("Bo, 2", ["Ana", "Bo"], 1),
        ("José", ["Ana", "José"], 1),
        ("3", ["Ana", "Bo"], None),
        ("1 or 2", ["Ana", "Bo"], None),
        ("Ana and Bo", ["Ana", "Bo"], None),
        ("Ana", ["Ana", "Ana"], None),  # same first name: only the number tells them apart
        ("2", ["Ana", "Ana"], 1),
        ("hello", ["Ana", "Bo"], None),
    ],
)
def test_which_person_is_read_by_number_or_first_name(
    body: str, names: list[str], index: int | None
) -> None:
    assert read_choice(body, names) == index
