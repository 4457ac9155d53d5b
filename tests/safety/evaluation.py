"""The labelled evaluation set (evaluation.tsv) and the decision it is scored against.

Each row: the text, its language (en/es), the prompt open when it arrived (none / sleep /
exercise / diet / mindfulness / rehab / checkin), the class a clinician expects (red_flag,
crisis, opt_out, help, adherence, free_text) and, for red flags, the categories (RedFlag names).
The ``batch`` column says when a row was written: ``initial`` rows were labelled before the
matcher was run on them; ``holdout`` rows were added after a fix, for the fixed category, without
looking at the matcher's output while fixing.

``classify`` composes the domain functions in the documented order (compliance keyword first,
then danger, then a plain-language revocation, then the reply parser for the open prompt) until
the lead's ``coachbot.domain.triage.decide`` replaces it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from coachbot.domain.keywords import ComplianceKeyword, classify_compliance, is_revocation
from coachbot.domain.red_flags import RedFlag, find_red_flags, is_crisis
from coachbot.domain.replies import Expectation, ReplyKind, parse_reply

DATA = Path(__file__).with_name("evaluation.tsv")

CLASSES = ("red_flag", "crisis", "opt_out", "help", "adherence", "free_text")
PROMPTS: dict[str, Expectation | None] = {
    "none": None,
    "sleep": Expectation.SLEEP_HOURS,
    "exercise": Expectation.MINUTES,
    "diet": Expectation.DONE_SKIP,
    "mindfulness": Expectation.RATING,
    "rehab": Expectation.DONE_SKIP,
    "checkin": Expectation.CHECKIN,
}
_ANSWERS = frozenset(
    (ReplyKind.DONE, ReplyKind.SKIP, ReplyKind.NUMBER, ReplyKind.PARTIAL, ReplyKind.CHECKIN_CLEAR)
)


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
    """The class a message gets: keywords, then danger, then revocation, then the answer."""
    keyword = classify_compliance(text)
    if keyword is ComplianceKeyword.OPT_OUT:
        return Outcome("opt_out")
    if keyword is ComplianceKeyword.HELP:
        return Outcome("help")
    if keyword is ComplianceKeyword.OPT_IN:
        return Outcome("opt_in")
    flags = find_red_flags(text)
    if flags:
        return Outcome("crisis" if is_crisis(flags) else "red_flag", flags)
    if is_revocation(text):
        return Outcome("opt_out")
    expectation = PROMPTS[prompt]
    if expectation is None:
        return Outcome("free_text")  # nothing is open: a person reads it
    parsed = parse_reply(text, expectation)
    if parsed.kind is ReplyKind.RED_FLAG:
        return Outcome("red_flag", parsed.red_flags)
    if parsed.kind in _ANSWERS:
        return Outcome("adherence")
    return Outcome("free_text")
