"""Which patient a caregiver's answer is about, and what it asks for: one pure decision.

A caregiver may watch several patients. Their text (already known to be no consent keyword
and no red flag: those are decided by `coachbot.domain.triage` first, and a red flag alerts
on every patient they watch) is read against the checks still open for them today:

1. A pending "Which person?" question (the answer it holds) is settled by a choice ("1",
   "two", "Bo"), unless a check went out after that question: then the text answers the check.
2. The open checks name the patient: unanswered ones first, else those answered today (a
   second answer corrects the first). Checks of one patient only: that patient, their latest
   check. Checks of several: the answer could be about any of them, so "Which person?".
3. No open check: a caregiver of one patient is talking about that patient; of several, an
   understood answer waits for "Which person?".

`assess` then reads the answer for the check's kind (`caregiver_check.read_answer` for the
observation check, `read_seen_today` for "Have you seen ...?") and `caregiver_check.decide`
says whether it is a concern. A count with no check to count against is not understood: the
items and the baseline belong to a check. WORSE and WORRIED need no check.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from coachbot.domain.caregiver_check import (
    CHECK_ITEMS,
    CaregiverAnswer,
    Concern,
    SeenToday,
    decide,
    read_answer,
    read_choice,
    read_seen_today,
)

__all__ = [
    "OBSERVATION",
    "SEEN_TODAY",
    "Assessment",
    "HeldAnswer",
    "OpenCheck",
    "Route",
    "Step",
    "assess",
    "route",
]

OBSERVATION = "observation"
SEEN_TODAY = "seen_today"


@dataclass(frozen=True, slots=True)
class OpenCheck:
    """A check sent to this caregiver today, answered or not."""

    id: int
    patient_id: int
    kind: str  # observation | seen_today
    items: int
    answered: bool
    sent_at: dt.datetime


@dataclass(frozen=True, slots=True)
class HeldAnswer:
    """An earlier text that got "Which person?" and waits for the choice."""

    inbound_id: int
    body: str
    asked_at: dt.datetime


class Step(enum.Enum):
    ANSWER = "answer"  # the text answers about `patient_id` (and `check`, when one is open)
    CHOICE = "choice"  # the text picks `patient_id` for the held answer
    WHICH_PERSON = "which_person"  # ask which patient the text is about; hold it
    NOT_UNDERSTOOD = "not_understood"


@dataclass(frozen=True, slots=True)
class Route:
    step: Step
    patient_id: int | None = None
    check: OpenCheck | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """What an answer says: whether it was understood, pages someone (`urgent`), the count
    and word to store, the baseline after it, and the codes for the alert's detail."""

    understood: bool
    urgent: bool = False
    score: int | None = None
    concern: str | None = None
    baseline: int | None = None
    reasons: tuple[str, ...] = ()


def _understood(body: str) -> bool:
    return read_answer(body).understood or read_seen_today(body) is not None


def route(
    body: str,
    patient_ids: Sequence[int],
    first_names: Sequence[str],
    checks: Sequence[OpenCheck],
    held: HeldAnswer | None = None,
) -> Route:
    """`patient_ids` are the patients the caregiver watches, in the order "Which person?"
    numbers them (`first_names` alike); `checks` those open today, newest first."""
    latest_sent = max((c.sent_at for c in checks), default=None)
    if held is not None and (latest_sent is None or latest_sent < held.asked_at):
        index = read_choice(body, list(first_names))
        if index is not None:
            chosen = patient_ids[index]
            check = next((c for c in checks if c.patient_id == chosen), None)
            return Route(Step.CHOICE, chosen, check)
    pool = [c for c in checks if not c.answered] or list(checks)
    about = {c.patient_id for c in pool}
    if len(about) == 1:
        return Route(Step.ANSWER, pool[0].patient_id, pool[0])
    if not about and len(patient_ids) == 1:
        return Route(Step.ANSWER, patient_ids[0])
    if _understood(body):
        return Route(Step.WHICH_PERSON)
    return Route(Step.NOT_UNDERSTOOD)


def assess(body: str, check: OpenCheck | None, baseline: int | None) -> Assessment:
    """Reads `body` for `check` (or, with none open, for a concern word alone) against the
    caregiver's baseline for that patient. Red flags are left out: they were decided first."""
    if check is not None and check.kind == SEEN_TODAY:
        seen = read_seen_today(body)
        if seen is None:
            return Assessment(understood=False, baseline=baseline)
        worried = seen is SeenToday.WORRIED
        return Assessment(
            understood=True,
            urgent=worried,
            concern=Concern.WORRIED if worried else Concern.OK,
            baseline=baseline,
            reasons=("seen_today_worried",) if worried else (),
        )
    items = check.items if check is not None and check.items > 0 else CHECK_ITEMS
    read = read_answer(body, items)
    count = read.items_as_usual if check is not None else None
    if count is None and read.concern is None:
        return Assessment(understood=False, baseline=baseline)
    decision = decide(CaregiverAnswer(items_as_usual=count, concern=read.concern), baseline)
    return Assessment(
        understood=True,
        urgent=decision.urgent,
        score=count,
        concern=read.concern,
        baseline=decision.baseline,
        reasons=_codes(count, read.concern, baseline),
    )


def _codes(count: int | None, concern: Concern | None, baseline: int | None) -> tuple[str, ...]:
    """The alert's detail: codes, never the caregiver's words."""
    codes: list[str] = []
    if concern in (Concern.WORSE, Concern.WORRIED):
        codes.append(f"caregiver_{concern}")
    if count is not None and baseline is not None and count < baseline:
        codes.append("below_baseline")
    return tuple(codes)
