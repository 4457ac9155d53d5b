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
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from coachbot.domain.keywords import (
    STOP_FAMILY,
    ComplianceKeyword,
    classify_compliance,
    damerau_levenshtein_1,
    fold,
    is_revocation,
)
from coachbot.domain.red_flags import RedFlag, find_red_flags, parse_checkin
from coachbot.domain.textnorm import expand

__all__ = [
    "TRACK_NAMES",
    "Expectation",
    "ParsedReply",
    "ReplyKind",
    "Unit",
    "parse_reply",
]


def _split(words: str) -> tuple[str, ...]:
    """Whitespace-separated word lists keep long vocabularies readable."""
    return tuple(words.split())


class Expectation(enum.Enum):
    DONE_SKIP = "done_skip"
    SLEEP_HOURS = "sleep_hours"
    MINUTES = "minutes"
    RATING = "rating"
    CHECKIN = "checkin"
    NONE = "none"


class ReplyKind(enum.Enum):
    DONE = "done"
    SKIP = "skip"
    NUMBER = "number"
    PARTIAL = "partial"
    CHECKIN_CLEAR = "checkin_clear"
    RED_FLAG = "red_flag"
    FREE_TEXT = "free_text"
    EMPTY = "empty"


Unit = Literal["hours", "minutes", "rating", "fraction"]
TRACK_NAMES: tuple[str, ...] = ("sleep", "exercise", "diet", "mindfulness", "rehab")


@dataclass(frozen=True, slots=True)
class ParsedReply:
    kind: ReplyKind
    value: float | None = None
    unit: Unit | None = None
    typo_corrected: bool = False
    named_track: str | None = None
    red_flags: tuple[RedFlag, ...] = ()


# --- vocabulary ----------------------------------------------------------------------------------

_DONE_PHRASES = """
yes|y|yep|yup|yeah|yea|ye|yas|done|did|did it|i did|did that|did them|did mine|done it|done that
|ok|okay|okey|k|kk|finished|finish|complete|completed|all done|got it done|sure did|yes i did
|i did it|si|sip|listo|lista|listos|listas|hecho|hecha|ya|ya lo hice|lo hice|lo hizo|ya lo hizo
|lo hicimos|ya lo hicimos|hice|hizo|termine|terminado|terminada|termino|completado|completada
|claro|claro que si|de una|did it after all|done after all|i did after all|did after all
"""
_SKIP_PHRASES = """
no|n|nope|nah|skip|skipped|skipping|not today|no today|cant|cannot|couldnt|could not|didnt
|did not|not done|missed|missed it|forgot|forgot it|i forgot|none|too tired|not able|unable|nothing
|hoy no|no hoy|omitir|omiti|saltar|salte|no pude|no pudo|no lo hice|no lo hizo|no hice|no hizo
|manana|tomorrow|no puedo|no puede|tampoco|me lo salte|no alcance
"""
_DEFER_PHRASES = """
later|not yet|in a bit|in a while|soon|after|will do|will do it|gonna|going to|mas tarde|luego
|despues|ahora no|todavia no|aun no|al rato|ahorita|lo hare|en un rato
"""


def _phrases(block: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(p.split()) for p in block.replace("\n", "").split("|") if p.strip())


class _Pol(enum.Enum):
    DONE = "done"
    SKIP = "skip"
    DEFER = "defer"


_PHRASES: dict[tuple[str, ...], _Pol] = {
    **dict.fromkeys(_phrases(_DEFER_PHRASES), _Pol.DEFER),
    **dict.fromkeys(_phrases(_SKIP_PHRASES), _Pol.SKIP),
    **dict.fromkeys(_phrases(_DONE_PHRASES), _Pol.DONE),
}
_MAX_PHRASE = max(len(p) for p in _PHRASES)

_FILLER = frozenset(
    _split(
        """
        i im ive id me she shes he hes we were they theyre it its mom mum mother mommy dad father
        daddy wife husband my her his our their grandma grandpa granny son daughter partner patient
        is was has have had are am be been just already finally also all this that today tonight
        morning afternoon evening now thanks thank you thx ty tks please pls lol haha yay hooray
        woohoo great good nice and so oh well the a an with for of to my mine some too actually
        anyway anyways
        ella el yo mi mis su sus tu mama mami papa papi esposo esposa marido abuela abuelo hijo hija
        nosotros ellos hoy ahora gracias por favor porfa tambien todo toda la los las un una de con
        ya y bien muy super exercises ejercicios activity actividad them mine yours
        feeling felt feel feels fine calm better happy energized relaxed here aqui through night
        on in around outside afuera inside dog dogs perro perra park parque stretches
        me siento sentia busy day raining rain weather lluvia llueve ocupado ocupada dia cansado
        cansada tired mejor
        """
    )
)
_TRACK_WORDS: dict[str, str] = {
    **dict.fromkeys(
        _split(
            """
            sleep slept sleeping asleep nap napped naps bed bedtime dormi dormir dormido dormida
            durmio durmiendo sueno siesta cama descanse
            """
        ),
        "sleep",
    ),
    **dict.fromkeys(
        _split(
            """
            exercise exercised exercising walk walked walking walks ran run running jog jogged
            jogging bike biked biking cycle cycled cycling swim swam swimming gym workout worked
            yoga stretch stretched stretching weights lifted strength hike hiked hiking treadmill
            dance danced camine caminar camino caminata caminando caminamos corri correr bici
            bicicleta nade nadar pesas gimnasio ejercicio bailar baile
            """
        ),
        "exercise",
    ),
    **dict.fromkeys(
        _split(
            """
            ate eat eating food meal meals fish salmon sardines tuna fruit fruits veg vegetables
            veggies salad water drank hydrated omega berries breakfast lunch dinner diet servings
            serving comi comer comida fruta frutas verduras vegetales pescado salmon agua ensalada
            desayuno almuerzo cena dieta
            """
        ),
        "diet",
    ),
    **dict.fromkeys(
        _split(
            """
            meditate meditated meditation meditating breathing breathe breathed breaths mindful
            mindfulness relax relaxed relaxing scan medite meditar meditacion respiracion respire
            respirar respiraciones relajacion relaje
            """
        ),
        "mindfulness",
    ),
    **dict.fromkeys(
        _split(
            """
            rehab homework therapy pt ot puzzle puzzles crossword sudoku therapist memory
            rehabilitacion terapia tarea tareas rompecabezas crucigrama fisioterapia
            """
        ),
        "rehab",
    ),
}
# Words that may sit beside a number answer without making it prose: clock times ("bed at
# 11pm"), what a rating measures ("stress is 2"), what a count counts ("10 reps", "3 glasses").
_NUMBER_CONTEXT = frozenset(
    _split(
        """
        at am pm oclock clock around by from until till las desde hasta stress estres level
        nivel mood animo score puntuacion reps rep repetitions repeticiones sets series times
        veces glasses vasos cups tazas portions porciones steps pasos km miles millas laps
        vueltas pages paginas early late solid straight temprano seguidas
        """
    )
)
# Partial-completion words and the fraction each one stands for.
_PARTIAL_WORDS: dict[str, float] = {
    **dict.fromkeys(
        _split("half halfway mitad some part partly partially parte bit little poco algo"), 0.5
    ),
    **dict.fromkeys(_split("most mostly mayoria"), 0.75),
}
_PARTIAL_PHRASES = re.compile(r"\bcasi (?:todo|toda|todos|todas)\b|\bmost of (?:it|them)\b")
_SLEEP_PHRASES = re.compile(
    r"\b(?:fell|fall|falling) asleep\b|\b(?:went|go|got|going) to (?:bed|sleep)\b"
    r"|\bme (?:dormi|acoste)\b"
)
_HOUR_UNITS = frozenset(_split("h hr hrs hour hours hora horas hs"))
_MINUTE_UNITS = frozenset(_split("m min mins minute minutes minuto minutos mn mnts mints"))
_NUMERIC_NOISE = frozenset(
    _split(
        """
        about around approx approximately roughly like almost nearly maybe over under only like
        just como unos unas casi aprox aproximadamente mas menos or to o a out
        """
    )
)
_NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "cero": 0, "uno": 1,
    "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9,
    "diez": 10, "doce": 12, "quince": 15, "veinte": 20, "treinta": 30,
    "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "noventa": 90,
}  # fmt: skip
_UNIT_WORDS = "|".join(w for w, v in _NUMBER_WORDS.items() if 1 <= v <= 9)
_TENS_WORDS = "|".join(w for w, v in _NUMBER_WORDS.items() if v in (20, 30, 40, 50))
_COMPOUND = re.compile(rf"\b({_TENS_WORDS})(?: y | |-)({_UNIT_WORDS})\b")
_SINGLE = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b")

# Everyday words one edit away from a done/skip word; correcting them would invent an answer.
_REAL_WORDS = frozenset(
    _split(
        """
        some dome dune bone cone gone hone lone none tone zone dine dote dove doze dose dole dons
        dong node nope hope rope pope cope mope dope note nose ship skin skid skim skit slip snip
        skips skimp spin kip okra oak listen lisa visto vista pista listo lista listos listas
        pecho techo lecho echo hecha mecha fecha hace dice nice rice mice vice lice hike hire hide
        hice hizo hijo rizo hilo once year yeah yean leah dona fine find finishes finishing
        completes complex salta saltan salto saltas saltar omitir manzana mana banana hermano
        termino terminal sip ship shop stop donde dono list lists liste hechos faltar finnish
        completo completa okays oaky
        """
    )
)

_DONE_VERBS = frozenset(
    _split(
        """
        walked ran jogged biked cycled swam exercised stretched hiked danced meditated breathed
        relaxed ate drank slept napped lifted camine caminamos corri nade medite respire comi dormi
        durmio descanse relaje
        """
    )
)
_DONE_EMOJI = frozenset("👍✅✔☑✓💪👌🆗🙌")
_SKIP_EMOJI = frozenset("👎❌✖✗✘🚫⛔❎🙅")

_WORDS = re.compile(r"[^\W\d_]+|[0-9]+(?:[.,][0-9]+)?|[:/~\-]")


# Only these words are typo targets: each one's everyday neighbours are listed in _REAL_WORDS.
_TYPO_TARGETS: tuple[str, ...] = (
    "done", "okay", "finished", "finish", "completed", "complete", "listo", "lista", "hecho",
    "hecha", "termine", "terminado", "terminada", "completado", "completada", "skip", "skipped",
    "omitir", "saltar",
)  # fmt: skip
_KNOWN = frozenset(w for p in _PHRASES for w in p) | _FILLER | frozenset(_TRACK_WORDS)


_STRETCH = re.compile(r"(.)\1{2,}")


def _unstretched(word: str) -> str:
    """``word`` with a letter held down ("doneee", "noooo", "allll", "goood") read as the
    known word it stretches; unchanged when there is none. Doubles are left to typo matching."""
    if not _STRETCH.search(word):
        return word
    for candidate in (_STRETCH.sub(r"\1\1", word), _STRETCH.sub(r"\1", word)):
        if candidate in _KNOWN:
            return candidate
    return word


@lru_cache(maxsize=8192)  # words repeat across texts; a bounded cache of single words
def _correct(word: str) -> str | None:
    """The done/skip word ``word`` is one typo away from, if that reading is safe."""
    if len(word) < 4 or word in _KNOWN or word in _REAL_WORDS or not word.isalpha():
        return None
    if any(
        abs(len(s) - len(word)) <= 1 and (word == s or damerau_levenshtein_1(word, s))
        for s in STOP_FAMILY
    ):
        return None
    found = {t for t in _TYPO_TARGETS if damerau_levenshtein_1(word, t)}
    pols = {_PHRASES.get((t,)) for t in found}
    if len(found) >= 1 and len(pols) == 1 and None not in pols:
        return sorted(found)[0]
    return None


# --- words ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Words:
    polarity: _Pol | None
    corrected: bool
    track: str | None
    unknown: bool = False  # a content word the parser does not know: a person reads it
    partial: float | None = None


def _read_words(tokens: list[str], folded: str) -> _Words:
    words: list[str] = []
    corrected = False
    partial: float | None = 0.75 if _PARTIAL_PHRASES.search(folded) else None
    for tok in tokens:
        if _digit_first(tok) or tok in ":/~-" or tok in _NUMBER_WORDS:
            continue
        if tok in _HOUR_UNITS or tok in _MINUTE_UNITS or tok in _NUMERIC_NOISE:
            continue
        if tok in _NUMBER_CONTEXT:
            continue
        if tok in _PARTIAL_WORDS:
            partial = partial if partial is not None else _PARTIAL_WORDS[tok]
            continue
        if tok not in _KNOWN:
            tok = _unstretched(tok)
        fixed = _correct(tok)
        if fixed is not None:
            words.append(fixed)
            corrected = True
        else:
            words.append(tok)
    tracks = {_TRACK_WORDS[w] for w in words if w in _TRACK_WORDS}
    worked_out = any(a in ("worked", "work") and b == "out" for a, b in itertools.pairwise(words))
    if worked_out:
        tracks.add("exercise")
    track = next(iter(tracks)) if len(tracks) == 1 else None

    if words == ["y"] or words == ["n"]:
        return _Words(_Pol.DONE if words == ["y"] else _Pol.SKIP, False, track)
    if partial is not None and words and words[-1] == "of":
        words = words[:-1]  # "half of", "some of" before a track word
    seen: set[_Pol] = set()
    used_fix = False
    i = 0
    while i < len(words):
        for size in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            pol = _PHRASES.get(tuple(words[i : i + size]))
            if pol is not None and (size > 1 or words[i] not in ("y", "n")):
                seen.add(pol)
                i += size
                break
        else:
            w = words[i]
            if w in _FILLER or w in _TRACK_WORDS or w in ("y", "n") or (w == "out" and worked_out):
                i += 1
                continue
            return _Words(None, False, track, unknown=True)
    used_fix = corrected and bool(seen)
    if not seen:
        # "walked", "meditated", "dormí": reporting the activity in the past tense is doing it.
        if worked_out or any(w in _DONE_VERBS for w in words):
            return _Words(_Pol.DONE, False, track, partial=partial)
        return _Words(_emoji_polarity(folded), False, track, partial=partial)
    if len(seen) > 1:
        return _Words(None, False, track, partial=partial)
    return _Words(next(iter(seen)), used_fix, track, partial=partial)


def _emoji_polarity(folded: str) -> _Pol | None:
    done = any(ch in _DONE_EMOJI for ch in folded)
    skip = any(ch in _SKIP_EMOJI for ch in folded)
    if done == skip:
        return None
    return _Pol.DONE if done else _Pol.SKIP


# --- numbers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Quantity:
    value: float
    unit: Unit | None
    composite: bool = False


_AMBIGUOUS = _Quantity(-1.0, None)

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


def _digits(folded: str) -> str:
    def compound(m: re.Match[str]) -> str:  # "twenty five", "treinta y cinco"
        return str(_NUMBER_WORDS[m.group(1)] + _NUMBER_WORDS[m.group(2)])

    text = _COMPOUND.sub(compound, folded)
    text = _SINGLE.sub(lambda m: str(_NUMBER_WORDS[m.group(0)]), text)
    for pattern, repl in _PHRASE_NUMBERS:
        text = pattern.sub(repl, text)
    return text


_CLOCK_BEFORE = frozenset(_split("at from since until till by before after las desde hasta @"))
_CLOCK_AFTER = frozenset(_split("am pm oclock"))


_ASCII_DIGITS = frozenset("0123456789")


def _digit_first(tok: str) -> bool:
    # Not str.isdigit: "፩" and other non-decimal digits pass it, and float() refuses them.
    return tok[:1] in _ASCII_DIGITS


def _number(tok: str) -> float:
    return float(tok.replace(",", "."))


def _quantity(folded: str, *, hours_first: bool) -> _Quantity | None:
    """The amount a reply states, None if it states none, _AMBIGUOUS if it cannot be read."""
    toks = _WORDS.findall(_digits(folded))
    durations: list[_Quantity] = []
    bare: list[_Quantity] = []
    ratings: list[_Quantity] = []
    invalid = False
    i = 0
    n = len(toks)
    while i < n:
        tok = toks[i]
        if not _digit_first(tok):
            i += 1
            continue
        if len(tok) > 6:  # phone numbers, dates run together: not an amount
            invalid = True
            i += 1
            continue
        value = _number(tok)
        prev = toks[i - 1] if i > 0 else ""
        nxt = toks[i + 1] if i + 1 < n else ""
        after = toks[i + 2] if i + 2 < n else ""
        if prev in _CLOCK_BEFORE or nxt in _CLOCK_AFTER or (nxt == "o" and after == "clock"):
            i += 1
            continue
        if prev == "-" and (i < 2 or not _digit_first(toks[i - 2])):
            invalid = True  # a negative amount
        if nxt == ":" and after.isascii() and after.isdigit() and len(after) == 2:
            minutes = value * 60 + _number(after)
            durations.append(_Quantity(minutes, "minutes", composite=True))
            i += 3
            continue
        if nxt in _HOUR_UNITS:
            if _digit_first(after) and "." not in after and "," not in after:
                tail = toks[i + 3] if i + 3 < n else ""
                minutes = value * 60 + _number(after)
                durations.append(_Quantity(minutes, "minutes", composite=True))
                i += 4 if tail in _MINUTE_UNITS else 3
                continue
            durations.append(_Quantity(value, "hours"))
            i += 2
            continue
        if nxt in _MINUTE_UNITS:
            durations.append(_Quantity(value, "minutes"))
            i += 2
            continue
        if nxt == "/" and after in ("5", "10"):
            ratings.append(_Quantity(value if after == "5" else -1.0, "rating"))
            i += 3
            continue
        if (nxt, after) == ("out", "of") and toks[i + 3 : i + 4] == ["5"]:
            ratings.append(_Quantity(value, "rating"))
            i += 4
            continue
        if (nxt, after) == ("de", "5"):
            ratings.append(_Quantity(value, "rating"))
            i += 3
            continue
        if nxt in ("-", "to", "or", "a", "o") and _digit_first(after):
            high = _number(after)
            unit_tok = toks[i + 3] if i + 3 < n else ""
            mid = (value + high) / 2
            if unit_tok in _HOUR_UNITS:
                durations.append(_Quantity(mid, "hours"))
                i += 4
            elif unit_tok in _MINUTE_UNITS:
                durations.append(_Quantity(mid, "minutes"))
                i += 4
            else:
                bare.append(_Quantity(mid, None))
                i += 3
            continue
        bare.append(_Quantity(value, None))
        i += 1
    if invalid:
        return _AMBIGUOUS
    if durations:
        return _sum(durations, hours_first=hours_first)
    if ratings:
        return ratings[0] if len(ratings) == 1 else _AMBIGUOUS
    if bare:
        values = {q.value for q in bare}
        return bare[0] if len(values) == 1 else _AMBIGUOUS
    return None


def _sum(durations: list[_Quantity], *, hours_first: bool) -> _Quantity:
    units = {q.unit for q in durations}
    composite = any(q.composite for q in durations)
    if units == {"hours"}:
        return _Quantity(sum(q.value for q in durations), "hours")
    minutes = sum(q.value * 60 if q.unit == "hours" else q.value for q in durations)
    if hours_first and (composite or "hours" in units):
        return _Quantity(round(minutes / 60, 2), "hours")
    return _Quantity(minutes, "minutes", composite=composite)


_LIMITS: dict[str, float] = {"hours": 24.0, "minutes": 1440.0, "rating": 5.0}


def _valid(q: _Quantity, expects: Expectation) -> bool:
    if q.value < 0:
        return False
    if q.unit == "rating":
        return q.value.is_integer() and 1 <= q.value <= 5
    if q.unit is None:
        return True
    limit = 600.0 if expects is Expectation.MINUTES and q.unit == "minutes" else _LIMITS[q.unit]
    return q.value <= limit


def _in_expected_unit(q: _Quantity, expects: Expectation) -> _Quantity:
    """Give a bare number the unit the nudge asked for; turn hours into minutes for MINUTES."""
    if q.unit is None:
        if expects is Expectation.SLEEP_HOURS:
            return _Quantity(q.value, "hours")
        if expects is Expectation.MINUTES:
            return _Quantity(q.value, "minutes")
        if expects is Expectation.RATING:
            return _Quantity(q.value, "rating")
        return q
    if expects is Expectation.MINUTES and q.unit == "hours":
        return _Quantity(round(q.value * 60, 2), "minutes")
    return q


# --- entry point ---------------------------------------------------------------------------------


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
_FRACTION = re.compile(r"\b(\d{1,2}) ?(?:/|of|out of|de|outta) ?(?:the |los |las )?(\d{1,2})\b")
_STOP_LIKE = frozenset(
    (ComplianceKeyword.OPT_OUT, ComplianceKeyword.OPT_IN, ComplianceKeyword.HELP)
)


def _written_as_digit(body: str) -> bool:
    # "1" and "0" are the check-in style done / skip; "one" in a sentence is a word, not a vote.
    return any(ch in _ASCII_DIGITS for ch in body)


_OF_UNKNOWN_TOTAL = re.compile(r"\b\d+ (?:of|de) (?:them|it|those|these|ellos|ellas|esos|esas)\b")


def _means_stop(body: str) -> bool:
    return classify_compliance(body) in _STOP_LIKE or is_revocation(body)


def _fraction(text: str, expects: Expectation) -> tuple[float | None, str]:
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


def _partial(
    fraction: float | None,
    words: _Words,
    polarity: _Pol | None,
    deferred: bool,
    qty: _Quantity | None,
    track: str | None,
) -> ParsedReply:
    value = fraction if fraction is not None else words.partial
    if (
        value is None
        or value < 0
        or deferred
        or (polarity is _Pol.SKIP and value > 0)
        or (fraction is not None and words.partial is not None)
        or qty is not None
    ):
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)
    if value >= 1:
        return ParsedReply(ReplyKind.DONE, named_track=track)
    if value == 0:
        return ParsedReply(ReplyKind.SKIP, named_track=track)
    return ParsedReply(ReplyKind.PARTIAL, value, "fraction", words.corrected, track)


def parse_reply(body: str, expects: Expectation) -> ParsedReply:
    """Understand one reply given what the open nudge asked. See the module docstring."""
    folded = fold(body)
    if not folded.strip():
        return ParsedReply(ReplyKind.EMPTY)
    # Number words and phrases become digits first ("media hora" -> "30 min", "dos de tres"
    # -> "2 de 3"), so what remains of the words is what the reply says besides its amount.
    folded = _digits(_SLEEP_PHRASES.sub(" asleep ", expand(folded)))
    fraction, folded = (
        _fraction(folded, expects) if expects is not Expectation.CHECKIN else (None, folded)
    )
    folded = _NEGATED_SYMPTOMS.sub(" ", folded)
    tokens = _WORDS.findall(folded)
    words = _read_words(tokens, folded)
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
        answer = parse_checkin(body)
        if answer.flags or answer.unspecified:
            return ParsedReply(ReplyKind.RED_FLAG, named_track=track, red_flags=answer.flags)
        if answer.clear:
            return ParsedReply(ReplyKind.CHECKIN_CLEAR, named_track=track)
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)

    if words.unknown or vague_count or "?" in folded or "¿" in folded:
        # A question is not an answer either ("is it ok to walk in the rain?"); check-in
        # answers were read above, so "1,4?" still reports its symptoms.
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)
    hours_first = expects is Expectation.SLEEP_HOURS or track == "sleep"
    qty = _quantity(folded, hours_first=hours_first)
    polarity = words.polarity if words.polarity is not _Pol.DEFER else None
    deferred = words.polarity is _Pol.DEFER

    if fraction is not None or words.partial is not None:
        numeric = expects in (Expectation.SLEEP_HOURS, Expectation.MINUTES)
        if numeric and qty is not None and qty is not _AMBIGUOUS and fraction is None:
            pass  # "did half, 15 min": the number answers a numeric prompt (read below)
        else:
            return _partial(fraction, words, polarity, deferred, qty, track)

    def answered(pol: _Pol) -> ParsedReply:
        kind = ReplyKind.DONE if pol is _Pol.DONE else ReplyKind.SKIP
        corrected = words.corrected
        if qty is not None and qty.unit in ("hours", "minutes") and _valid(qty, expects):
            q = _in_expected_unit(qty, expects)
            if q.value == 0:
                kind = ReplyKind.SKIP
            return ParsedReply(kind, q.value, q.unit, corrected, track)
        return ParsedReply(kind, typo_corrected=corrected, named_track=track)

    if expects in (Expectation.SLEEP_HOURS, Expectation.MINUTES, Expectation.RATING):
        if qty is not None:
            q = _in_expected_unit(qty, expects)
            if qty is not _AMBIGUOUS and _valid(q, expects):
                return ParsedReply(ReplyKind.NUMBER, q.value, q.unit, named_track=track)
            if polarity is None:
                return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)
        if polarity is not None and not deferred:
            return answered(polarity)
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)

    if polarity is not None:
        return answered(polarity)
    if qty is None or deferred or qty is _AMBIGUOUS or not _valid(qty, expects):
        return ParsedReply(ReplyKind.FREE_TEXT, named_track=track)
    if expects is Expectation.DONE_SKIP:
        if qty.unit is None and qty.value in (0.0, 1.0) and _written_as_digit(body):
            kind = ReplyKind.DONE if qty.value == 1.0 else ReplyKind.SKIP
            return ParsedReply(kind, named_track=track)
        if qty.unit in ("hours", "minutes"):
            kind = ReplyKind.SKIP if qty.value == 0 else ReplyKind.DONE
            return ParsedReply(kind, qty.value, qty.unit, named_track=track)
    return ParsedReply(ReplyKind.NUMBER, qty.value, qty.unit, named_track=track)
