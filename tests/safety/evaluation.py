"""The labelled evaluation set (evaluation.tsv) and the decision it is scored against.

Each row: the text, its language (en/es), the prompt open when it arrived (none / sleep /
exercise / diet / mindfulness / rehab / checkin), the class a clinician expects (red_flag,
crisis, opt_out, help, adherence, free_text) and, for red flags, the categories (RedFlag names).
The ``batch`` column says when a row was written: ``initial`` rows were labelled before the
matcher was run on them; ``holdout`` rows were added after a fix, for the fixed category, without
looking at the matcher's output while fixing.

``classify`` runs the real decision, ``coachbot.domain.triage.decide``, for an active patient
with the row's prompt open (none: nothing open), and maps its ``MessageClass`` onto the labels:
a plain-language revocation is an opt-out for the patient, EMPTY is free text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.red_flags import RedFlag
from coachbot.domain.states import PatientStatus
from coachbot.domain.triage import MessageClass, OpenPrompt, SenderContext, SenderRole, decide

DATA = Path(__file__).with_name("evaluation.tsv")

CLASSES = ("red_flag", "crisis", "opt_out", "help", "adherence", "free_text")
PROMPTS: tuple[str, ...] = ("none", "sleep", "exercise", "diet", "mindfulness", "rehab", "checkin")
_LABELS: dict[MessageClass, str] = {
    MessageClass.OPT_OUT: "opt_out",
    MessageClass.REVOCATION: "opt_out",
    MessageClass.HELP: "help",
    MessageClass.OPT_IN: "opt_in",
    MessageClass.CRISIS: "crisis",
    MessageClass.RED_FLAG: "red_flag",
    MessageClass.ADHERENCE: "adherence",
    MessageClass.FREE_TEXT: "free_text",
    MessageClass.EMPTY: "free_text",
}
_PATIENT = SenderContext(SenderRole.PATIENT, PatientStatus.ACTIVE)
_OPEN: dict[str, tuple[OpenPrompt, ...]] = {
    track: (OpenPrompt(1, track, TRACK_POLICIES[track].expectation),)
    for track in PROMPTS
    if track != "none"
}


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    text: str
    language: str
    prompt: str
    expected: str
    categories: tuple[RedFlag, ...]
    batch: str


@dataclass(frozen=True, slots=True)
class Outcome:
    message_class: str
    flags: tuple[RedFlag, ...] = ()


def load_rows(path: Path = DATA) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for line, record in enumerate(reader, start=2):
            cats = tuple(RedFlag[c] for c in record["categories"].split(",") if c)
            rows.append(
                Row(
                    line,
                    record["text"],
                    record["language"],
                    record["prompt"],
                    record["expected"],
                    cats,
                    record["batch"],
                )
            )
    return rows


def classify(text: str, prompt: str) -> Outcome:
    """The class ``decide`` gives ``text`` from an active patient with ``prompt`` open."""
    decision = decide(text, _PATIENT, _OPEN.get(prompt, ()))
    return Outcome(_LABELS[decision.message_class], decision.flags)
