"""The amount a reply states: durations, ranges, ratings, fractions, number words.

Split out of ``replies`` (which holds the rules, see its docstring) so each part stays readable;
``replies`` re-exports ``Expectation`` and ``Unit``. Pure and total like ``parse_reply``: every
function here takes folded text and never raises.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AMBIGUOUS",
    "ASCII_DIGITS",
    "HOUR_UNITS",
    "MINUTE_UNITS",
    "NUMBER_WORDS",
    "WORDS",
    "Expectation",
    "Quantity",
    "Unit",
    "digit_first",
    "in_expected_unit",
    "read_fraction",
    "read_quantity",
    "split_words",
    "valid_for",
    "words_to_digits",
]


def split_words(words: str) -> tuple[str, ...]:
    """Whitespace-separated word lists keep long vocabularies readable."""
    return tuple(words.split())


class Expectation(enum.Enum):
    DONE_SKIP = "done_skip"
    SLEEP_HOURS = "sleep_hours"
    MINUTES = "minutes"
    RATING = "rating"
    CHECKIN = "checkin"
    NONE = "none"


Unit = Literal["hours", "minutes", "rating", "fraction"]

HOUR_UNITS = frozenset(split_words("h hr hrs hour hours hora horas hs"))
MINUTE_UNITS = frozenset(split_words("m min mins minute minutes minuto minutos mn mnts mints"))
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "cero": 0, "uno": 1,
    "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9,
    "diez": 10, "doce": 12, "quince": 15, "veinte": 20, "treinta": 30,
    "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "noventa": 90,
}  # fmt: skip
_UNIT_WORDS = "|".join(w for w, v in NUMBER_WORDS.items() if 1 <= v <= 9)
_TENS_WORDS = "|".join(w for w, v in NUMBER_WORDS.items() if v in (20, 30, 40, 50))
_COMPOUND = re.compile(rf"\b({_TENS_WORDS})(?: y | |-)({_UNIT_WORDS})\b")
_SINGLE = re.compile(r"\b(?:" + "|".join(NUMBER_WORDS) + r")\b")

WORDS = re.compile(r"[^\W\d_]+|[0-9]+(?:[.,][0-9]+)?|[:/~\-]")


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: Unit | None
    composite: bool = False


# Compared by identity: a stated amount that cannot be read (several numbers, a negative one).
AMBIGUOUS = Quantity(-1.0, None)

_PHRASE_NUMBERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\b(?:an?|1|one) (?:hour|hr) and a half\b", " 90 min "),
        (r"\buna hora y media\b", " 90 min "),
        (r"\b(?:half (?:an?|1) hour|half hour|media hora)\b", " 30 min "),
        (r"\b(?:a )?quarter (?:of an )?hour\b|\bun cuarto de hora\b", " 15 min "),
        (r"\b(\d+) (hours?|hrs?|horas?) (?:and a half|y media)\b", r" \1.5 \2 "),
        (r"\b(\d+) (?:and a half|y media)\b", r" \1.5 "),
        (r"\b(?:an|a|una|un) (hour|hr|hora|minute|minuto)\b", r" 1 \1 "),
    )
)


def words_to_digits(folded: str) -> str:
    def compound(m: re.Match[str]) -> str:  # "twenty five", "treinta y cinco"
        return str(NUMBER_WORDS[m.group(1)] + NUMBER_WORDS[m.group(2)])

    text = _COMPOUND.sub(compound, folded)
    text = _SINGLE.sub(lambda m: str(NUMBER_WORDS[m.group(0)]), text)
    for pattern, repl in _PHRASE_NUMBERS:
        text = pattern.sub(repl, text)
    return text


_CLOCK_BEFORE = frozenset(split_words("at from since until till by before after las desde hasta @"))
_CLOCK_AFTER = frozenset(split_words("am pm oclock"))


ASCII_DIGITS = frozenset("0123456789")


def digit_first(tok: str) -> bool:
    # Not str.isdigit: "፩" and other non-decimal digits pass it, and float() refuses them.
    return tok[:1] in ASCII_DIGITS


def _number(tok: str) -> float:
    return float(tok.replace(",", "."))


def _amount_at(toks: list[str], i: int) -> tuple[Quantity | None, int]:
    """What the number ``toks[i]`` states with its neighbours, and how many tokens that used.

    None for a clock time ("at 11", "10pm"); AMBIGUOUS for what cannot be an amount (a negative
    number, seven digits or more). A unit makes a duration, "/5" or "out of 5" a rating, a bare
    number has no unit.
    """
    tok = toks[i]
    n = len(toks)
    if len(tok) > 6:  # phone numbers, dates run together: not an amount
        return AMBIGUOUS, 1
    value = _number(tok)
    prev = toks[i - 1] if i > 0 else ""
    nxt = toks[i + 1] if i + 1 < n else ""
    after = toks[i + 2] if i + 2 < n else ""
    if prev in _CLOCK_BEFORE or nxt in _CLOCK_AFTER or (nxt == "o" and after == "clock"):
        return None, 1
    if prev == "-" and (i < 2 or not digit_first(toks[i - 2])):
        return AMBIGUOUS, 1  # a negative amount
    if nxt == ":" and after.isascii() and after.isdigit() and len(after) == 2:
        return Quantity(value * 60 + _number(after), "minutes", composite=True), 3
    if nxt in HOUR_UNITS:
        if digit_first(after) and "." not in after and "," not in after:
            tail = toks[i + 3] if i + 3 < n else ""
            minutes = value * 60 + _number(after)
            return Quantity(minutes, "minutes", composite=True), 4 if tail in MINUTE_UNITS else 3
        return Quantity(value, "hours"), 2
    if nxt in MINUTE_UNITS:
        return Quantity(value, "minutes"), 2
    if nxt == "/" and after in ("5", "10"):
        return Quantity(value if after == "5" else -1.0, "rating"), 3
    if (nxt, after) == ("out", "of") and toks[i + 3 : i + 4] == ["5"]:
        return Quantity(value, "rating"), 4
    if (nxt, after) == ("de", "5"):
        return Quantity(value, "rating"), 3
    if nxt in ("-", "to", "or", "a", "o") and digit_first(after):
        mid = (value + _number(after)) / 2  # a range: its midpoint
        unit_tok = toks[i + 3] if i + 3 < n else ""
        if unit_tok in HOUR_UNITS:
            return Quantity(mid, "hours"), 4
        if unit_tok in MINUTE_UNITS:
            return Quantity(mid, "minutes"), 4
        return Quantity(mid, None), 3
    return Quantity(value, None), 1


def read_quantity(folded: str, *, hours_first: bool) -> Quantity | None:
    """The amount a reply states, None if it states none, AMBIGUOUS if it cannot be read."""
    toks = WORDS.findall(words_to_digits(folded))
    found: list[Quantity] = []
    i = 0
    while i < len(toks):
        if not digit_first(toks[i]):
            i += 1
            continue
        amount, used = _amount_at(toks, i)
        if amount is AMBIGUOUS:
            return AMBIGUOUS  # one unreadable number makes the whole reply unreadable
        if amount is not None:
            found.append(amount)
        i += used
    durations = [q for q in found if q.unit in ("hours", "minutes")]
    if durations:
        return _sum(durations, hours_first=hours_first)
    ratings = [q for q in found if q.unit == "rating"]
    if ratings:
        return ratings[0] if len(ratings) == 1 else AMBIGUOUS
    bare = [q for q in found if q.unit is None]
    if bare:
        values = {q.value for q in bare}
        return bare[0] if len(values) == 1 else AMBIGUOUS
    return None


def _sum(durations: list[Quantity], *, hours_first: bool) -> Quantity:
    units = {q.unit for q in durations}
    composite = any(q.composite for q in durations)
    if units == {"hours"}:
        return Quantity(sum(q.value for q in durations), "hours")
    minutes = sum(q.value * 60 if q.unit == "hours" else q.value for q in durations)
    if hours_first and (composite or "hours" in units):
        return Quantity(round(minutes / 60, 2), "hours")
    return Quantity(minutes, "minutes", composite=composite)


_LIMITS: dict[str, float] = {"hours": 24.0, "minutes": 1440.0, "rating": 5.0}


def valid_for(q: Quantity, expects: Expectation) -> bool:
    if q.value < 0:
        return False
    if q.unit == "rating":
        return q.value.is_integer() and 1 <= q.value <= 5
    if q.unit is None:
        return True
    limit = 600.0 if expects is Expectation.MINUTES and q.unit == "minutes" else _LIMITS[q.unit]
    return q.value <= limit


def in_expected_unit(q: Quantity, expects: Expectation) -> Quantity:
    """Give a bare number the unit the nudge asked for; turn hours into minutes for MINUTES."""
    if q.unit is None:
        if expects is Expectation.SLEEP_HOURS:
            return Quantity(q.value, "hours")
        if expects is Expectation.MINUTES:
            return Quantity(q.value, "minutes")
        if expects is Expectation.RATING:
            return Quantity(q.value, "rating")
        return q
    if expects is Expectation.MINUTES and q.unit == "hours":
        return Quantity(round(q.value * 60, 2), "minutes")
    return q


_FRACTION = re.compile(r"\b(\d{1,2}) ?(?:/|of|out of|de|outta) ?(?:the |los |las )?(\d{1,2})\b")


def read_fraction(text: str, expects: Expectation) -> tuple[float | None, str]:
    """A stated "done of total" ("2 of 3", "2/3") and the text without it; (None, text) if none.

    -1.0 means a fraction that cannot be an answer (more done than asked, a zero total).
    """
    m = _FRACTION.search(text)
    if m is None:
        return None, text
    done, total = int(m.group(1)), int(m.group(2))
    if total == 10 and "/" in m.group(0):
        return None, text  # "8/10" is a score
    if expects is Expectation.RATING and total == 5:
        return None, text  # "4 out of 5" answers a rating prompt
    rest = text[: m.start()] + " " + text[m.end() :]
    if total == 0 or done > total or _FRACTION.search(rest):
        return -1.0, rest
    return round(done / total, 2), rest
