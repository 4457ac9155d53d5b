"""A caregiver's answer to the daily observation check, and whether it needs a person now.

During a patient's close-watch weeks their caregiver gets a few lay questions a day (does
the person know the year, month and city; name three objects; write one sentence; count back
from 100 by tens) and answers with how many went as usual ("3", "3/4", "three", "tres",
"all fine") or with a word: OK, WORSE or WORRIED (or the Spanish BIEN, PEOR, PREOCUPADO/A).

Pure functions, English and Spanish, tolerant of case, accents and one-letter typos through
the same folding the rest of the domain uses (`keywords.fold`, `textnorm.expand`). Red flags
come from `red_flags.find_red_flags`, never from a list here.

coachbot relays what the caregiver saw. Nothing here grades ICANS or scores the ICE screen:
the count is the caregiver's own tally, compared only with their own first answer.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from coachbot.domain.keywords import damerau_levenshtein_1, fold
from coachbot.domain.red_flags import RedFlag, find_red_flags
from coachbot.domain.textnorm import expand

__all__ = [
    "CHECK_ITEMS",
    "CaregiverAnswer",
    "CheckDecision",
    "Concern",
    "SeenToday",
    "decide",
    "patient_choices",
    "read_answer",
    "read_choice",
    "read_seen_today",
]

# The lay items of the default programme; a programme may ask fewer or more.
CHECK_ITEMS = 4


class Concern(enum.StrEnum):
    """A word answer: OK, or one of the two the caregiver uses to say "come and look"."""

    OK = "ok"
    WORSE = "worse"
    WORRIED = "worried"


# Whole answers (after folding) that mean every item went as usual.
_ALL_FINE = re.compile(
    r"^(?:all|all (?:fine|good|ok|okay|normal|well|as usual|of them|items?)|everything (?:fine|ok|"
    r"okay|good|normal)|todo|todos|todas|todo (?:bien|normal)|todos bien|todas bien|"
    r"(?:todo|todos|todas) (?:normal|normales|como siempre))$"
)
_FRACTION = re.compile(r"\b(\d{1,2}) ?(?:/|of|de|out of|sobre) ?(\d{1,2})\b")
_NUMBER = re.compile(r"\b\d{1,3}\b")
_WORD = re.compile(r"[a-z]+")
# Words and the punctuation between them: a negator only reaches across words ("no, worse").
_TOKEN = re.compile(r"[a-z]+|[.,;:!?\n]")
_NUMBER_WORDS = {
    "zero": 0,
    "none": 0,
    "cero": 0,
    "ninguno": 0,
    "ninguna": 0,
    "one": 1,
    "uno": 1,
    "two": 2,
    "dos": 2,
    "three": 3,
    "tres": 3,
    "four": 4,
    "cuatro": 4,
    "five": 5,
    "cinco": 5,
}
_CONCERN_WORDS = {
    Concern.OK: ("ok", "okay", "k", "fine", "good", "bien", "normal", "vale", "bueno", "buena"),
    Concern.WORSE: ("worse", "worst", "peor", "peores", "empeoro", "empeorando"),
    Concern.WORRIED: (
        "worried",
        "worry",
        "worrying",
        "concerned",
        "scared",
        "preocupado",
        "preocupada",
        "preocupados",
        "preocupadas",
        "preocupa",
        "preocupacion",
        "asustado",
        "asustada",
    ),
}
# A word this close to a long concern word is that word ("woried", "preocupda").
_TYPO_MIN_LENGTH = 5
_NEGATORS = frozenset(("not", "no", "isnt", "arent", "never", "nunca", "ni"))


@dataclass(frozen=True, slots=True)
class CaregiverAnswer:
    """What a caregiver's text says. `items_as_usual` is their count (None when they gave
    none or it could not be read), `concern` their word, `flags` the red flags in it."""

    items_as_usual: int | None = None
    concern: Concern | None = None
    flags: tuple[RedFlag, ...] = ()

    @property
    def understood(self) -> bool:
        return self.items_as_usual is not None or self.concern is not None or bool(self.flags)


@dataclass(frozen=True, slots=True)
class CheckDecision:
    """Whether the answer pages someone now (`urgent`) and why, in plain words for the
    alert; `baseline` is the caregiver's first count, set by this answer when it is one."""

    urgent: bool
    reasons: tuple[str, ...]
    baseline: int | None


def _word_concern(word: str) -> Concern | None:
    for concern, words in _CONCERN_WORDS.items():
        if word in words:
            return concern
    if len(word) >= _TYPO_MIN_LENGTH - 1:
        for concern, words in _CONCERN_WORDS.items():
            if any(len(w) >= _TYPO_MIN_LENGTH and damerau_levenshtein_1(word, w) for w in words):
                return concern
    return None


def _negated(tokens: list[str], i: int) -> bool:
    """A negator one or two words before, with no punctuation between ("not ok")."""
    for token in reversed(tokens[max(0, i - 2) : i]):
        if not token.isalpha():
            return False
        if token in _NEGATORS:
            return True
    return False


def _concern(tokens: list[str]) -> Concern | None:
    """The strongest concern said: WORRIED or WORSE over OK. A negated OK ("not ok", "no
    está bien") is a worry; a negated worry ("not worried", "no peor") is an OK."""
    found: set[Concern] = set()
    for i, token in enumerate(tokens):
        concern = _word_concern(token) if token.isalpha() else None
        if concern is None:
            continue
        negated = _negated(tokens, i)
        if negated:
            found.add(Concern.WORRIED if concern is Concern.OK else Concern.OK)
        else:
            found.add(concern)
    for strongest in (Concern.WORRIED, Concern.WORSE, Concern.OK):
        if strongest in found:
            return strongest
    return None


def _numbers(text: str, words: list[str]) -> set[int]:
    return {int(n) for n in _NUMBER.findall(text)} | {
        _NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS
    }


def _count(text: str, words: list[str], items: int) -> int | None:
    """The caregiver's count, when exactly one is given and it fits the number of items."""
    if _ALL_FINE.match(text.strip(" .!")):
        return items
    fraction = _FRACTION.search(text)
    if fraction:
        count, total = int(fraction.group(1)), int(fraction.group(2))
        return count if total == items and count <= items else None
    counts = _numbers(text, words)
    if len(counts) != 1:
        return None
    (count,) = counts
    return count if count <= items else None


def read_answer(body: str, items: int = CHECK_ITEMS) -> CaregiverAnswer:
    """Reads a caregiver's text as an answer to a check of `items` lay items."""
    text = expand(fold(body))
    words = _WORD.findall(text)
    return CaregiverAnswer(
        items_as_usual=_count(text, words, items),
        concern=_concern(_TOKEN.findall(text)),
        flags=find_red_flags(body),
    )


def decide(answer: CaregiverAnswer, baseline: int | None) -> CheckDecision:
    """Urgent for a red flag in the words, WORSE or WORRIED, or a count below the
    caregiver's baseline (their first count, which this answer sets when there is none)."""
    reasons: list[str] = []
    if answer.flags:
        reasons.append("red flag in the caregiver's words")
    if answer.concern is Concern.WORSE:
        reasons.append("caregiver says worse")
    if answer.concern is Concern.WORRIED:
        reasons.append("caregiver is worried")
    count = answer.items_as_usual
    if baseline is None:
        baseline = count
    elif count is not None and count < baseline:
        reasons.append(f"{count} of the usual items, below their first answer ({baseline})")
    return CheckDecision(urgent=bool(reasons), reasons=tuple(reasons), baseline=baseline)


_FOR = {"en": "for", "es": "para"}


def patient_choices(first_names: list[str], language: str) -> str:
    """The choices of "Which person?" to a caregiver of several patients, numbered from 1 in
    the order given: "1 for Ana, 2 for Bo" ("1 para Ana, 2 para Bo")."""
    word = _FOR.get(language, _FOR["en"])
    return ", ".join(f"{n} {word} {name}" for n, name in enumerate(first_names, start=1))


class SeenToday(enum.StrEnum):
    """The answer to "Have you seen <first name> today? Reply 1 if all is fine, 2 if you are
    worried"."""

    FINE = "fine"
    WORRIED = "worried"


def read_seen_today(body: str) -> SeenToday | None:
    """1 or an OK is FINE; 2, WORSE, WORRIED or a red flag is WORRIED (the worry wins when
    both are said); anything else None, which the caller treats like no answer."""
    text = expand(fold(body))
    concern = _concern(_TOKEN.findall(text))
    numbers = _numbers(text, _WORD.findall(text))
    if find_red_flags(body) or concern in (Concern.WORSE, Concern.WORRIED) or 2 in numbers:
        return SeenToday.WORRIED
    if numbers == {1} or (not numbers and concern is Concern.OK):
        return SeenToday.FINE
    return None


def read_choice(body: str, first_names: list[str]) -> int | None:
    """Which of the numbered people of "Which person?" the caregiver means: its index in
    `first_names`, from its number ("2", "two") or its name ("Bo"), when exactly one fits."""
    text = expand(fold(body))
    words = _WORD.findall(text)
    picked = {n - 1 for n in _numbers(text, words) if 1 <= n <= len(first_names)}
    folded = [fold(name) for name in first_names]
    # Two people of the same first name can only be told apart by their number.
    if len(set(folded)) == len(folded):
        picked |= {i for i, name in enumerate(folded) if name in words}
    if len(picked) != 1:
        return None
    (index,) = picked
    return index
