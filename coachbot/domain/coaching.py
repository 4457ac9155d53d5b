"""Pure coaching rules: what a reply to an answer says, and which nudges earn a follow-up.

Decisions
---------
* An answer gets one short reply: a skip is acknowledged without pressure; a typo-corrected
  answer always echoes what was logged ("Got it - logged as done") and nothing else, so a wrong
  guess is easy to spot; a done or a number gets the streak message from two days in a row,
  otherwise a plain acknowledgement.
* Every third DONE on a track (3rd, 6th, ...) earns a tip for that track, appended only when the
  acknowledgement and the tip together still fit in one SMS segment. Counting answers (not
  drawing at random) keeps the rule deterministic, so tests can pin it and patients see tips at
  a steady, modest rate.
* A nudge without an answer by the end of its window gets at most one gentle follow-up, planned
  as a nudge row whose occurrence key is the original's plus ``:followup``: the unique key per
  occurrence makes "at most one" hold under replays and concurrent ticks. The symptom check-in
  gets no follow-up: its silence raises an alert instead (not replying can be a symptom).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from coachbot.domain.segments import count_segments

__all__ = [
    "FOLLOWUP_SUFFIX",
    "FOLLOWUP_TRACKS",
    "MISSES_IN_A_ROW",
    "STREAK_MIN",
    "TIP_EVERY",
    "AnswerKind",
    "ReplyPlan",
    "fits_one_segment",
    "followup_key",
    "is_followup_key",
    "join_with_tip",
    "original_key",
    "plan_reply",
    "tip_order",
]

STREAK_MIN = 2
TIP_EVERY = 3
MISSES_IN_A_ROW = 3
FOLLOWUP_SUFFIX = ":followup"
FOLLOWUP_TRACKS: frozenset[str] = frozenset({"sleep", "exercise", "diet", "mindfulness", "rehab"})

AnswerKind = Literal["done", "value", "skip", "typo_done"]


@dataclass(frozen=True)
class ReplyPlan:
    template_id: str
    streak: int | None = None
    with_tip: bool = False


def plan_reply(kind: AnswerKind, *, streak: int, done_total: int) -> ReplyPlan:
    """`streak` counts local days in a row with a DONE on the track, today included;
    `done_total` counts every DONE on the track, this one included."""
    if kind == "skip":
        return ReplyPlan("ack.skip")
    if kind == "typo_done":
        return ReplyPlan("ack.typo_done")
    with_tip = done_total > 0 and done_total % TIP_EVERY == 0
    if streak >= STREAK_MIN:
        return ReplyPlan("streak", streak=streak, with_tip=with_tip)
    return ReplyPlan("ack.value" if kind == "value" else "ack.done", with_tip=with_tip)


def join_with_tip(ack: str, tip: str) -> str:
    return f"{ack} {tip}"


def fits_one_segment(text: str) -> bool:
    return count_segments(text).segments == 1


def tip_order(variant_ids: Sequence[str], seed: str, recent: Sequence[str] = ()) -> list[str]:
    """Tip variants to try: those not sent recently in a stable order drawn from `seed`, then
    the recently sent ones, least recently sent first. `recent` is newest first. Only a tip
    that fits one segment beside the acknowledgement is used, so sometimes only recent ones
    fit; ranking those by age (not by the seed) means the tip just sent is the last resort
    and is never repeated back to back while another one fits."""
    # How many sends ago each recent tip last went out (0 = the latest).
    sends_ago: dict[str, int] = {}
    for position, variant_id in enumerate(recent):
        sends_ago.setdefault(variant_id, position)

    def rank(variant_id: str) -> tuple[bool, int, bytes]:
        if variant_id in sends_ago:
            return (True, -sends_ago[variant_id], b"")
        return (False, 0, hashlib.sha256(f"{seed}:{variant_id}".encode()).digest())

    return sorted(variant_ids, key=rank)


def followup_key(occurrence_key: str) -> str:
    return occurrence_key + FOLLOWUP_SUFFIX


def is_followup_key(occurrence_key: str) -> bool:
    return occurrence_key.endswith(FOLLOWUP_SUFFIX)


def original_key(occurrence_key: str) -> str:
    """The occurrence a follow-up stands for; any other key is its own original."""
    if is_followup_key(occurrence_key):
        return occurrence_key[: -len(FOLLOWUP_SUFFIX)]
    return occurrence_key
