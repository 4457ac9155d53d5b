"""What the words of a reply say: done, skip or later, which track, how much of it, typos.

Split out of ``replies`` (which holds the rules, see its docstring); the amount a reply states is
read by ``reply_numbers``. Pure: ``read_words`` never raises.
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from coachbot.domain.keywords import STOP_FAMILY, damerau_levenshtein_1
from coachbot.domain.reply_numbers import (
    HOUR_UNITS,
    MINUTE_UNITS,
    NUMBER_WORDS,
    digit_first,
    split_words,
)

__all__ = ["Polarity", "WordReading", "read_words"]


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


class Polarity(enum.Enum):
    DONE = "done"
    SKIP = "skip"
    DEFER = "defer"


_PHRASES: dict[tuple[str, ...], Polarity] = {
    **dict.fromkeys(_phrases(_DEFER_PHRASES), Polarity.DEFER),
    **dict.fromkeys(_phrases(_SKIP_PHRASES), Polarity.SKIP),
    **dict.fromkeys(_phrases(_DONE_PHRASES), Polarity.DONE),
}
_MAX_PHRASE = max(len(p) for p in _PHRASES)

_FILLER = frozenset(
    split_words(
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
        split_words(
            """
            sleep slept sleeping asleep nap napped naps bed bedtime dormi dormir dormido dormida
            durmio durmiendo sueno siesta cama descanse
            """
        ),
        "sleep",
    ),
    **dict.fromkeys(
        split_words(
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
        split_words(
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
        split_words(
            """
            meditate meditated meditation meditating breathing breathe breathed breaths mindful
            mindfulness relax relaxed relaxing scan medite meditar meditacion respiracion respire
            respirar respiraciones relajacion relaje
            """
        ),
        "mindfulness",
    ),
    **dict.fromkeys(
        split_words(
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
    split_words(
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
        split_words("half halfway mitad some part partly partially parte bit little poco algo"), 0.5
    ),
    **dict.fromkeys(split_words("most mostly mayoria"), 0.75),
}
_PARTIAL_PHRASES = re.compile(r"\bcasi (?:todo|toda|todos|todas)\b|\bmost of (?:it|them)\b")
_NUMERIC_NOISE = frozenset(
    split_words(
        """
        about around approx approximately roughly like almost nearly maybe over under only like
        just como unos unas casi aprox aproximadamente mas menos or to o a out
        """
    )
)
# Everyday words one edit away from a done/skip word; correcting them would invent an answer.
_REAL_WORDS = frozenset(
    split_words(
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
    split_words(
        """
        walked ran jogged biked cycled swam exercised stretched hiked danced meditated breathed
        relaxed ate drank slept napped lifted camine caminamos corri nade medite respire comi dormi
        durmio descanse relaje
        """
    )
)
_DONE_EMOJI = frozenset("👍✅✔☑✓💪👌🆗🙌")
_SKIP_EMOJI = frozenset("👎❌✖✗✘🚫⛔❎🙅")

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
class WordReading:
    polarity: Polarity | None
    corrected: bool
    track: str | None
    unknown: bool = False  # a content word the parser does not know: a person reads it
    partial: float | None = None


def read_words(tokens: list[str], folded: str) -> WordReading:
    words: list[str] = []
    corrected = False
    partial: float | None = 0.75 if _PARTIAL_PHRASES.search(folded) else None
    for tok in tokens:
        if digit_first(tok) or tok in ":/~-" or tok in NUMBER_WORDS:
            continue
        if tok in HOUR_UNITS or tok in MINUTE_UNITS or tok in _NUMERIC_NOISE:
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
        return WordReading(Polarity.DONE if words == ["y"] else Polarity.SKIP, False, track)
    if partial is not None and words and words[-1] == "of":
        words = words[:-1]  # "half of", "some of" before a track word
    seen: set[Polarity] = set()
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
            return WordReading(None, False, track, unknown=True)
    used_fix = corrected and bool(seen)
    if not seen:
        # "walked", "meditated", "dormí": reporting the activity in the past tense is doing it.
        if worked_out or any(w in _DONE_VERBS for w in words):
            return WordReading(Polarity.DONE, False, track, partial=partial)
        return WordReading(_emoji_polarity(folded), False, track, partial=partial)
    if len(seen) > 1:
        return WordReading(None, False, track, partial=partial)
    return WordReading(next(iter(seen)), used_fix, track, partial=partial)


def _emoji_polarity(folded: str) -> Polarity | None:
    done = any(ch in _DONE_EMOJI for ch in folded)
    skip = any(ch in _SKIP_EMOJI for ch in folded)
    if done == skip:
        return None
    return Polarity.DONE if done else Polarity.SKIP
