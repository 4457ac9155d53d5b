"""What a patient's (or caregiver's) SMS reply means for the nudge it answers.

The rule: a message is checked for danger first; it becomes an adherence answer only when it is
confidently one; a number counts only when the message is essentially a number answer to an open
numeric prompt; number words in prose are not answers; anything uncertain is free text for a
person.

Pure and total: ``parse_reply`` never raises, whatever the text (1,600-char bodies, NUL, zero-width
joiners, RTL marks, combining accents). Message bodies are never logged.

Order the webhook follows: ``keywords.classify_compliance`` and ``keywords.is_revocation`` first,
then ``parse_reply`` (which puts red flags before everything else).

Decisions
---------
* Nothing that means stop is an answer: whatever ``classify_compliance`` reads as OPT_OUT,
  OPT_IN or HELP (spaced, misspelled "stpo", Spanish "baja") and whatever ``is_revocation``
  catches is FREE_TEXT here too, as a defence in depth behind the webhook's own order. Red flags
  are still read first: a stop that reports danger is RED_FLAG.
* Red flags win: any flag found by ``find_red_flags`` makes the reply RED_FLAG, even "done".
* A symptom said not to be there ("no falls", "sin mareos", "no headache", "no pain") does not
  make an answer prose: "slept 7h, no headache" is 7 hours. Red flags are read first, so only
  negations the red-flag matcher accepted get here.
* A question ("?" or "¿" anywhere) is never an adherence answer: FREE_TEXT (a check-in answer
  such as "1,4?" still reports its symptoms).
* Every word must be known: done/skip/deferral words, filler (subjects such as "she", "mom",
  "ella", "mi mamá"; "today", "thanks", "gracias"), track words ("walked", "slept", "dormí"),
  units and number words, partial words ("half", "mitad"). One other content word makes the
  reply FREE_TEXT, with or without a number: "pain 6/10", "threw up 3 times", "temp 37.1",
  "numbness on one side of my face" (never 1 or DONE) are read by a person. Texting shorthand
  and emoji are spelled out first (``textnorm``: "2day" is "today").
* Stretched words (a letter held three times or more) read as their plain form when that is a
  known word ("doneee", "noooo", "siii", "okkk", "allll done"); this is not a typo correction.
* PARTIAL: "2 of 3", "2 out of 3", "2/3", "dos de tres", "half", "la mitad", "did some of it",
  "hice una parte", "most of it", "casi todo". ``value`` is the fraction done, rounded to two
  places (2 of 3 -> 0.67; half, some, part, a bit -> 0.5; most, casi todo -> 0.75) and ``unit``
  is "fraction". "3 of 3" is DONE and "0 of 3" SKIP. A slash over 10 ("8/10") is a score, not
  a fraction, and a rating prompt reads "4 out of 5" as a rating. A partial word together with a
  skip word ("no, only half") is FREE_TEXT.
* CHECKIN uses ``parse_checkin``: clear -> CHECKIN_CLEAR; flags -> RED_FLAG; a bare "yes"/"sí"
  (symptoms, unspecified) -> RED_FLAG with ``red_flags == ()``; anything else -> FREE_TEXT.
* Done/skip words must make up the whole reply apart from filler (subjects such as "she", "mom",
  "ella", "mi mamá"; "today", "thanks", "gracias"), numbers and units, and track words. So
  "she did it", "mom walked, done ✅" and "ella lo hizo" are DONE, while "done but my knee hurts"
  and "no idea" are FREE_TEXT: guessing wrong would record adherence the patient did not report.
  Words of both kinds ("no, I did it") -> FREE_TEXT.
* Emoji decide only when no word does: 👍 (any skin tone) ✅ ✔️ ☑️ ✓ 💪 👌 🆗 🙌 are done;
  👎 ❌ ✖️ ✗ 🚫 ⛔ ❎ are skip. Other emoji alone -> FREE_TEXT.
* "later", "not yet", "más tarde", "luego", "todavía no" are deferrals -> FREE_TEXT, not SKIP: the
  nudge stays open and a later DONE still counts. "mañana"/"tomorrow" means not today -> SKIP.
* One-letter typos (Damerau-Levenshtein distance 1, including a swap) are accepted only when both
  the typed word and the done/skip word have four or more letters, the typed word is not a known
  everyday word ("some", "hope", "nice", "gone", "pecho", "manzana", ...), and it is not one edit
  from a STOP-family word (English or Spanish): a misspelled stop is never SKIP. The result says
  ``typo_corrected=True`` so the caller echoes what it logged.
* Numbers: "7", "7.5h", "7,5 horas", "30m", "~20", "about 20 minutes", "1h30", "1:30",
  "half an hour", "media hora", "seven hours", "6-7 hours" (a range -> its midpoint). Clock times
  ("at 11", "a las 10", "10pm") are ignored. Several durations with units are added up ("20 min
  walk and 15 min bike" -> 35). Several different bare numbers -> FREE_TEXT (ambiguous).
* A unit in the reply overrides the expectation, except that hours become minutes when minutes
  are expected ("1.5 hours" -> 90). "30 min" to SLEEP_HOURS stays 30 minutes; the caller decides.
  Hours-and-minutes ("1h30") are minutes, or hours when sleep is expected or named.
* Bare numbers read as the nudge asked: SLEEP_HOURS hours 0-24; MINUTES minutes 0-600; RATING an
  integer 1-5 ("3/5" too); anything outside -> FREE_TEXT. DONE_SKIP: "1" -> DONE, "0" -> SKIP,
  other bare numbers -> NUMBER with unit None (servings, reps: the caller decides); a number with a
  unit -> DONE carrying value and unit ("walked 20 min"), or SKIP if it is 0. NONE: NUMBER.
* With a numeric expectation a valid number beats done/skip words ("done, 7 hours" -> NUMBER 7).
* ``named_track`` is the one track a reply names ("walked" -> exercise, "dormí" -> sleep,
  "meditated" -> mindfulness); two different tracks -> None. "exercises" alone names no track,
  because for these patients it usually means rehab homework.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from coachbot.domain.keywords import (
    ComplianceKeyword,
    classify_compliance,
    fold,
    is_revocation,
)
from coachbot.domain.red_flags import RedFlag, find_red_flags, parse_checkin
from coachbot.domain.reply_numbers import (
    AMBIGUOUS,
    ASCII_DIGITS,
    WORDS,
    Expectation,
    Quantity,
    Unit,
    in_expected_unit,
    read_fraction,
    read_quantity,
    valid_for,
    words_to_digits,
)
from coachbot.domain.reply_words import Polarity, WordReading, read_words
from coachbot.domain.textnorm import expand

__all__ = [
    "TRACK_NAMES",
    "Expectation",
    "ParsedReply",
    "ReplyKind",
    "Unit",
    "parse_reply",
]


class ReplyKind(enum.Enum):
    DONE = "done"
    SKIP = "skip"
    NUMBER = "number"
    PARTIAL = "partial"
    CHECKIN_CLEAR = "checkin_clear"
    RED_FLAG = "red_flag"
    FREE_TEXT = "free_text"
    EMPTY = "empty"


TRACK_NAMES: tuple[str, ...] = ("sleep", "exercise", "diet", "mindfulness", "rehab")


@dataclass(frozen=True, slots=True)
class ParsedReply:
    kind: ReplyKind
    value: float | None = None
    unit: Unit | None = None
    typo_corrected: bool = False
    named_track: str | None = None
    red_flags: tuple[RedFlag, ...] = ()


# --- entry point ---------------------------------------------------------------------------------

_SLEEP_PHRASES = re.compile(
    r"\b(?:fell|fall|falling) asleep\b|\b(?:went|go|got|going) to (?:bed|sleep)\b"
    r"|\bme (?:dormi|acoste)\b"
)

# "no falls", "sin mareos", "no headache": a symptom said not to be there, beside an answer, is
# not prose that needs a person ("slept 7h, no headache" is 7 hours). Red flags were checked
# before this is used, so a negation the matcher did not accept never reaches it.
_SYMPTOM_WORDS = (
    r"(?:chest (?:pain|pains|tightness|pressure)|shortness of breath|short of breath|trouble"
    r" breathing|dolor(?:es)? de (?:pecho|cabeza|garganta)|falta de aire|head ?aches?"
    r"|pain|pains|headaches?|problems?|issues?|symptoms?|nausea|falls?|dizziness|dizzy"
    r"|fevers?|confusion|seizures?|shaking|tremors?|chills|weakness|numbness|trouble"
    r"|complaints?|side effects?|dolor(?:es)?|problemas?|sintomas?|molestias?|nauseas?"
    r"|caidas?|mareos?|fiebre|confusion|convulsiones|temblores|escalofrios|debilidad"
    r"|novedad(?:es)?)"
)
_NEGATED_SYMPTOMS = re.compile(
    rf"\b(?:no|sin|without|zero|not any|ningun|ninguna|ninguno|nada de)"
    rf" (?:new |more |nuevo |nueva |nuevos |nuevas |de )?{_SYMPTOM_WORDS}"
    rf"(?: ?(?:,|or|and|nor|ni|o|y) (?:no |sin |ni )?{_SYMPTOM_WORDS})*\b"
)
_STOP_LIKE = frozenset(
    (ComplianceKeyword.OPT_OUT, ComplianceKeyword.OPT_IN, ComplianceKeyword.HELP)
)


def _written_as_digit(body: str) -> bool:
    # "1" and "0" are the check-in style done / skip; "one" in a sentence is a word, not a vote.
    return any(ch in ASCII_DIGITS for ch in body)


_OF_UNKNOWN_TOTAL = re.compile(r"\b\d+ (?:of|de) (?:them|it|those|these|ellos|ellas|esos|esas)\b")


def _means_stop(body: str) -> bool:
    return classify_compliance(body) in _STOP_LIKE or is_revocation(body)


def _partial(
    fraction: float | None,
    words: WordReading,
    polarity: Polarity | None,
    deferred: bool,
    qty: Quantity | None,
    track: str | None,
) -> ParsedReply:
    value = fraction if fraction is not None else words.partial
    if (
        value is None
        or value < 0
        or deferred
        or (polarity is Polarity.SKIP and value > 0)
        or (fraction is not None and words.partial is not None)
        or qty is not None
    ):
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)
    if value >= 1:
        return ParsedReply(ReplyKind.DONE, named_track=track)
    if value == 0:
        return ParsedReply(ReplyKind.SKIP, named_track=track)
    return ParsedReply(ReplyKind.PARTIAL, value, "fraction", words.corrected, track)


@dataclass(frozen=True, slots=True)
class _Reading:
    """What a reply says once its words and amount are read, for the answer helpers below."""

    body: str
    expects: Expectation
    qty: Quantity | None
    polarity: Polarity | None  # done or skip; a deferral is ``deferred`` instead
    deferred: bool
    corrected: bool
    track: str | None


def _checkin_answer(body: str, track: str | None) -> ParsedReply:
    answer = parse_checkin(body)
    if answer.flags or answer.unspecified:
        return ParsedReply(ReplyKind.RED_FLAG, named_track=track, red_flags=answer.flags)
    if answer.clear:
        return ParsedReply(ReplyKind.CHECKIN_CLEAR, named_track=track)
    return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)


def _answered(r: _Reading, pol: Polarity) -> ParsedReply:
    """DONE or SKIP, carrying a valid duration the reply states ("walked 20 min")."""
    kind = ReplyKind.DONE if pol is Polarity.DONE else ReplyKind.SKIP
    qty = r.qty
    if qty is not None and qty.unit in ("hours", "minutes") and valid_for(qty, r.expects):
        q = in_expected_unit(qty, r.expects)
        if q.value == 0:
            kind = ReplyKind.SKIP
        return ParsedReply(kind, q.value, q.unit, r.corrected, r.track)
    return ParsedReply(kind, typo_corrected=r.corrected, named_track=r.track)


def _numeric_answer(r: _Reading) -> ParsedReply:
    """The answer to a prompt for hours, minutes or a rating: a valid number beats done/skip."""
    if r.qty is not None:
        q = in_expected_unit(r.qty, r.expects)
        if r.qty is not AMBIGUOUS and valid_for(q, r.expects):
            return ParsedReply(ReplyKind.NUMBER, q.value, q.unit, named_track=r.track)
        if r.polarity is None:
            return ParsedReply(ReplyKind.FREE_TEXT, named_track=r.track)
    if r.polarity is not None and not r.deferred:
        return _answered(r, r.polarity)
    return ParsedReply(ReplyKind.FREE_TEXT, named_track=r.track)


def _done_skip_answer(r: _Reading) -> ParsedReply:
    """The answer to a done/skip prompt (or none): words first, then what a number means."""
    if r.polarity is not None:
        return _answered(r, r.polarity)
    qty = r.qty
    if qty is None or r.deferred or qty is AMBIGUOUS or not valid_for(qty, r.expects):
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=r.track)
    if r.expects is Expectation.DONE_SKIP:
        if qty.unit is None and qty.value in (0.0, 1.0) and _written_as_digit(r.body):
            kind = ReplyKind.DONE if qty.value == 1.0 else ReplyKind.SKIP
            return ParsedReply(kind, named_track=r.track)
        if qty.unit in ("hours", "minutes"):
            kind = ReplyKind.SKIP if qty.value == 0 else ReplyKind.DONE
            return ParsedReply(kind, qty.value, qty.unit, named_track=r.track)
    return ParsedReply(ReplyKind.NUMBER, qty.value, qty.unit, named_track=r.track)


def parse_reply(body: str, expects: Expectation) -> ParsedReply:
    """Understand one reply given what the open nudge asked. See the module docstring."""
    folded = fold(body)
    if not folded.strip():
        return ParsedReply(ReplyKind.EMPTY)
    # Number words and phrases become digits first ("media hora" -> "30 min", "dos de tres"
    # -> "2 de 3"), so what remains of the words is what the reply says besides its amount.
    folded = words_to_digits(_SLEEP_PHRASES.sub(" asleep ", expand(folded)))
    fraction, folded = (
        read_fraction(folded, expects) if expects is not Expectation.CHECKIN else (None, folded)
    )
    folded = _NEGATED_SYMPTOMS.sub(" ", folded)
    tokens = WORDS.findall(folded)
    words = read_words(tokens, folded)
    track = words.track
    vague_count = _OF_UNKNOWN_TOTAL.search(folded) is not None  # "one of them": how many?

    flags = find_red_flags(body)
    if flags:
        return ParsedReply(ReplyKind.RED_FLAG, named_track=track, red_flags=flags)
    # Danger first, then the stop defence: "stop texting me, I can't breathe" is a red flag
    # (the caller pauses the texts too), never a free text that hides the flag.
    if _means_stop(body):
        return ParsedReply(ReplyKind.FREE_TEXT)

    if expects is Expectation.CHECKIN:
        return _checkin_answer(body, track)

    if words.unknown or vague_count or "?" in folded or "¿" in folded:
        # A question is not an answer either ("is it ok to walk in the rain?"); check-in
        # answers were read above, so "1,4?" still reports its symptoms.
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)
    hours_first = expects is Expectation.SLEEP_HOURS or track == "sleep"
    qty = read_quantity(folded, hours_first=hours_first)
    polarity = words.polarity if words.polarity is not Polarity.DEFER else None
    deferred = words.polarity is Polarity.DEFER

    if fraction is not None or words.partial is not None:
        numeric = expects in (Expectation.SLEEP_HOURS, Expectation.MINUTES)
        if numeric and qty is not None and qty is not AMBIGUOUS and fraction is None:
            pass  # "did half, 15 min": the number answers a numeric prompt (read below)
        else:
            return _partial(fraction, words, polarity, deferred, qty, track)

    reading = _Reading(body, expects, qty, polarity, deferred, words.corrected, track)
    if expects in (Expectation.SLEEP_HOURS, Expectation.MINUTES, Expectation.RATING):
        return _numeric_answer(reading)
    return _done_skip_answer(reading)
