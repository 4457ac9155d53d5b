"""The pure decision of whom a caregiver's answer is about, and what it says: one row each."""

from __future__ import annotations

import datetime as dt

import pytest

from coachbot.domain.caregiver_reply import (
    Assessment,
    HeldAnswer,
    OpenCheck,
    Route,
    Step,
    assess,
    route,
)

T = dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC)
ANA, BO = 11, 22
NAMES = ("Ana", "Bo")


def check(
    patient: int, *, kind: str = "observation", answered: bool = False, at: int = 0
) -> OpenCheck:
    return OpenCheck(patient * 10 + at, patient, kind, 4, answered, T + dt.timedelta(minutes=at))


HELD = HeldAnswer(99, "worse", T + dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("body", "patients", "checks", "held", "expected"),
    [
        # One patient: everything is about them, with or without a check.
        ("3", [ANA], [], None, Route(Step.ANSWER, ANA)),
        ("3", [ANA], [check(ANA)], None, Route(Step.ANSWER, ANA, check(ANA))),
        # Two patients, one open check: it says whom.
        ("3", [ANA, BO], [check(BO)], None, Route(Step.ANSWER, BO, check(BO))),
        # Unanswered checks come before answered ones.
        ("ok", [ANA, BO], [check(ANA, answered=True, at=5), check(BO)], None,
         Route(Step.ANSWER, BO, check(BO))),
        # Both answered today: the second answer corrects... but whose? Ask.
        ("ok", [ANA, BO], [check(ANA, answered=True), check(BO, answered=True)], None,
         Route(Step.WHICH_PERSON)),
        # Two open checks, or none: an understood answer asks which person.
        ("worse", [ANA, BO], [check(ANA), check(BO)], None, Route(Step.WHICH_PERSON)),
        ("PREOCUPADA", [ANA, BO], [], None, Route(Step.WHICH_PERSON)),
        ("2", [ANA, BO], [], None, Route(Step.WHICH_PERSON)),
        # Nothing to read: not understood, whoever it is about.
        ("we went out", [ANA, BO], [], None, Route(Step.NOT_UNDERSTOOD)),
        # The choice, by number, word or name, applies the held answer.
        ("2", [ANA, BO], [check(ANA), check(BO)], HELD, Route(Step.CHOICE, BO, check(BO))),
        ("one", [ANA, BO], [], HELD, Route(Step.CHOICE, ANA)),
        ("bo", [ANA, BO], [], HELD, Route(Step.CHOICE, BO)),
        # Not a choice: read as an answer in its own right.
        ("3", [ANA, BO], [check(BO)], HELD, Route(Step.ANSWER, BO, check(BO))),
        # A check sent after the question: "1" answers the check, not the question.
        ("1", [ANA, BO], [check(ANA, kind="seen_today", at=120)], HELD,
         Route(Step.ANSWER, ANA, check(ANA, kind="seen_today", at=120))),
    ],
)  # fmt: skip
def test_route(
    body: str,
    patients: list[int],
    checks: list[OpenCheck],
    held: HeldAnswer | None,
    expected: Route,
) -> None:
    assert route(body, patients, NAMES, checks, held) == expected


OBSERVATION = check(ANA)
SEEN = check(ANA, kind="seen_today")


@pytest.mark.parametrize(
    ("body", "open_check", "baseline", "expected"),
    [
        # The first count is the baseline; no concern.
        ("4", OBSERVATION, None, Assessment(True, False, 4, None, 4)),
        ("all fine", OBSERVATION, None, Assessment(True, False, 4, "ok", 4)),
        # Below the baseline: urgent; at or above it: not.
        ("2", OBSERVATION, 4, Assessment(True, True, 2, None, 4, ("below_baseline",))),
        ("3 of 4", OBSERVATION, 3, Assessment(True, False, 3, None, 3)),
        # Words, English and Spanish, with typos and negation.
        ("WORSE", OBSERVATION, 4, Assessment(True, True, None, "worse", 4, ("caregiver_worse",))),
        ("peor", OBSERVATION, None, Assessment(True, True, None, "worse", None,
                                               ("caregiver_worse",))),
        ("woried", None, None, Assessment(True, True, None, "worried", None,
                                          ("caregiver_worried",))),
        ("not worse", OBSERVATION, 4, Assessment(True, False, None, "ok", 4)),
        ("no está bien", None, None, Assessment(True, True, None, "worried", None,
                                                ("caregiver_worried",))),
        # A count with no check to count against is not understood.
        ("3", None, 4, Assessment(False, baseline=4)),
        ("OK", None, None, Assessment(True, False, None, "ok", None)),
        # "Have you seen ...?": 1 fine, 2 worried, a count means nothing.
        ("1", SEEN, 4, Assessment(True, False, None, "ok", 4)),
        ("2", SEEN, 4, Assessment(True, True, None, "worried", 4, ("seen_today_worried",))),
        ("lunch", SEEN, None, Assessment(False)),
        ("we went out", OBSERVATION, 4, Assessment(False, baseline=4)),
    ],
)  # fmt: skip
def test_assess(
    body: str, open_check: OpenCheck | None, baseline: int | None, expected: Assessment
) -> None:
    assert assess(body, open_check, baseline) == expected
