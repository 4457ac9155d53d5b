"""Red-flag symptoms in any reply, and answers to the daily symptom check-in.

The rule every inbound text follows (see also ``replies`` and ``triage``): a message is checked
for danger first; it becomes an adherence answer only when it is confidently one; a number counts
only when the message is essentially a number answer to an open numeric prompt; number words in
prose are not answers; anything uncertain is free text for a person. This module is the "danger
first" step.

The check-in asks: "Any new confusion, trouble finding words, changes in handwriting, shaking,
seizures, severe headache, weakness or falls? Reply 0 if none." Its numbering is ``RedFlag`` 1..7
and ``parse_checkin`` maps only those numbers; later members (8 and up) are found in words only.

coachbot does not diagnose: a flag only routes the message to people (the patient is told to call
the care team or the emergency number, the on-call clinician is paged). So detection prefers
recall over precision: a clinician glancing at a false alarm is cheap, a missed one is not.

Severity (paging order; the patient is told to call in every case)

========================  ========  =====================================================
flag                      severity  why
========================  ========  =====================================================
1 CONFUSION               URGENT    ICANS hallmark; can progress within hours
2 WORD_FINDING            URGENT    expressive aphasia, slurred speech (often the first sign)
3 HANDWRITING             HIGH      an ICE-score item, but alone it asks for a same-day
                                    assessment; with confusion or words it is URGENT anyway
4 SEIZURE                 URGENT    seizures, fits, and new shaking / tremor (check-in item 4
                                    asks "shaking, seizures" together)
5 SEVERE_HEADACHE         URGENT    "worst headache" can be a bleed
6 WEAKNESS                URGENT    one-sided weakness, numbness or drooping: stroke-like
7 FALL                    URGENT    head injury risk on low platelets / anticoagulants
8 DROWSINESS              URGENT    reduced consciousness: unusually sleepy, hard to wake
9 VISION                  URGENT    double or blurred vision, losing sight
10 FEVER                  URGENT    >= 38.0 °C / 100.4 °F: CRS or neutropenic sepsis
11 CHILLS                 URGENT    rigors come with the fever, sometimes before it
12 BREATHING              URGENT    short of breath, can't breathe
13 CHEST_PAIN             URGENT    chest pain, pressure or tightness
14 HEART_RHYTHM           URGENT    racing, pounding or irregular heartbeat
15 FAINTING               URGENT    fainting, passing out, dizzy or light-headed (low blood
                                    pressure in CRS)
16 HEAD_INJURY            URGENT    a blow to the head
17 SUICIDAL               URGENT    crisis: the crisis line of the patient's country too
18 SELF_HARM              URGENT    crisis: the crisis line of the patient's country too
19 VOMITING_DIARRHOEA     HIGH      severe or non-stop, or 6 or more times (CTCAE grade 3)
20 NOT_EATING_DRINKING    HIGH      unable to eat or drink, nothing kept down
21 SEVERE_PAIN            HIGH      new severe pain (words, not a numeric score)
22 INFECTION              HIGH      sore throat, cough, burning when peeing, mouth sores
23 NEUROPATHY             HIGH      numbness or tingling spreading or worsening, dropping things
(none)                    NONE
========================  ========  =====================================================

``severity`` is the highest severity of the flags given; ``is_crisis`` says whether any is a
mental-health crisis flag (``CRISIS_FLAGS``).

Decisions and known trade-offs
------------------------------
* Text is folded (``keywords.fold``), then ``textnorm.expand`` spells out shorthand ("2day",
  "cnt", "w/o"), turns symptom emoji into words (🤒 🥵 fever, 🥶 chills, 🤮 vomiting, 😵 dizzy,
  🤕 head injury) and temperature readings into ``feverreading`` / ``normalreading`` (the
  temperature rules are in that module's docstring: "39.2", "temp 102", "101 F" are fever;
  "37.2", "99" and a bare "102" are not).
* Long symptom words (6+ letters) are matched with one typo ("sezure", "confussed", "feaver",
  "diarrea", "vomitting"); a short list of real words that sit one edit away is left alone.
* Negation: a negator (no, not, never, without, didn't, sin, ni, nunca, ningún, ...) before the
  term, separated only by filler words (any, new, had, signs of, seem, ...), conjunctions or other
  symptom terms, cancels it: "no seizures or falls", "no new confusion", "sin fiebre",
  "didn't fall", "no me caí", "not confused anymore". A sentence break, "but"/"pero", or a comma
  right after the negator ends the scope: "No, she fell" and "no seizures but fell" are flags.
  A term followed by "is gone", "went away", "resolved", "broke", "se fue", "ya pasó", ... is
  resolved, not a flag ("fever is gone").
* Hypotheticals: a term inside an "if" clause ("if I get a fever", "what if she falls",
  "in case he gets confused", "en caso de fiebre", "por si se cae", "qué hago si tengo fiebre")
  does not escalate. The clause ends at a comma or sentence break, or where a second subject
  starts the main clause: "if I stand up I get dizzy" IS a flag (a real, repeatable symptom).
  "not sure if she fell" / "no sé si se cayó" is doubt, not a hypothetical: it flags.
  Spanish "si" is also "yes" (accents fold away): a message-initial "si" reads as "if" only
  when a comma or a question follows in the message ("si tengo fiebre, ¿llamo?"); a bare
  "si tengo fiebre" flags, because "sí, tengo fiebre" typed without accent and comma is common.
* Other people's history: a sentence that says "history of", "runs in the family", "years ago",
  "when she was young", "antecedentes", "hace años", "de joven", or a relative who "had" /
  "used to have" / "tuvo" / "sufría" a plural or chronic condition ("my mother had seizures",
  "mi papá tuvo convulsiones") does not escalate, unless it also says now / today / last night.
  A caregiver's report about the patient ("she is confused", "my husband fell", "mi esposa no
  puede hablar") is a flag: there is no way to tell patient from relative except the tense.
* Past events already seen: a message that names a past time ("last month", "ago", "ayer",
  "el mes pasado") and that a doctor, nurse, ER or clinic saw, checked or cleared it, and does
  not say "again", "still", "today", "now", does not escalate ("fell last month, the doctor
  checked it").
* Excluded idioms: "fell asleep / behind / through / apart", hair falling out, "caída del
  cabello", "se cayó el internet", "weak coffee / signal", "this weak" (a typo for week),
  "protein shake(s)", "shaking hands with", "fitting in", "keep fit", a first-person
  "can't talk right now" at the start of a message (a busy patient, not aphasia), "breathing
  exercises" (mindfulness), "dropping off the kids", "chest of drawers".
* Plain "headache" is not a flag in free text (too common); adjectives make it one ("bad",
  "worst", "pounding", "fuerte"). "migraine" always flags. In a check-in answer the symptom names
  themselves ("headache", "words", "writing", "falls") count, unless "mild"/"leve".
* Numbness alone is not a flag (chemotherapy neuropathy is chronic): it is WEAKNESS in the face,
  one side, an arm or a leg, or sudden; NEUROPATHY when spreading, worse or with dropping things.
* Plain "dizzy" / "mareado" is FAINTING: after CAR-T it can be the low blood pressure of CRS.
* Vomiting or diarrhoea is a flag when severe, non-stop, "can't keep anything down", ongoing
  ("I'm vomiting", 🤮), or 6 or more times; "threw up twice" is free text for a person.
* Numeric pain scores ("pain 8/10") are not flags: a person reads them as free text. "severe",
  "unbearable", "worst", "insoportable" pain is SEVERE_PAIN.
* A heart rate is a flag from 120 bpm ("pulse 130", "heart rate 125").
* Accepted false positives: "temblor" (also an earthquake), "shaky" (also low blood sugar),
  "can't walk today" (weather), "weak" in any sense not listed, "cough" from a cold.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from coachbot.domain.keywords import damerau_levenshtein_1, fold
from coachbot.domain.textnorm import FEVER_READING, expand

__all__ = [
    "CRISIS_FLAGS",
    "LABELS",
    "CheckinAnswer",
    "RedFlag",
    "Severity",
    "damerau_levenshtein_1",
    "find_red_flags",
    "is_crisis",
    "parse_checkin",
    "severity",
]


def _split(words: str) -> tuple[str, ...]:
    """Whitespace-separated word lists keep long vocabularies readable."""
    return tuple(words.split())


class RedFlag(enum.IntEnum):
    # 1..7 are the check-in's numbering: never renumber them.
    CONFUSION = 1
    WORD_FINDING = 2
    HANDWRITING = 3
    SEIZURE = 4
    SEVERE_HEADACHE = 5
    WEAKNESS = 6
    FALL = 7
    DROWSINESS = 8
    VISION = 9
    FEVER = 10
    CHILLS = 11
    BREATHING = 12
    CHEST_PAIN = 13
    HEART_RHYTHM = 14
    FAINTING = 15
    HEAD_INJURY = 16
    SUICIDAL = 17
    SELF_HARM = 18
    VOMITING_DIARRHOEA = 19
    NOT_EATING_DRINKING = 20
    SEVERE_PAIN = 21
    INFECTION = 22
    NEUROPATHY = 23


class Severity(enum.IntEnum):
    NONE = 0
    HIGH = 1
    URGENT = 2


_HIGH_FLAGS = frozenset(
    {
        RedFlag.HANDWRITING,
        RedFlag.VOMITING_DIARRHOEA,
        RedFlag.NOT_EATING_DRINKING,
        RedFlag.SEVERE_PAIN,
        RedFlag.INFECTION,
        RedFlag.NEUROPATHY,
    }
)
_SEVERITY: dict[RedFlag, Severity] = {
    f: Severity.HIGH if f in _HIGH_FLAGS else Severity.URGENT for f in RedFlag
}

CRISIS_FLAGS: frozenset[RedFlag] = frozenset({RedFlag.SUICIDAL, RedFlag.SELF_HARM})

LABELS: dict[RedFlag, str] = {
    RedFlag.CONFUSION: "confusion",
    RedFlag.WORD_FINDING: "trouble with words or speech",
    RedFlag.HANDWRITING: "handwriting change",
    RedFlag.SEIZURE: "seizure or shaking",
    RedFlag.SEVERE_HEADACHE: "severe headache",
    RedFlag.WEAKNESS: "weakness, numbness or drooping",
    RedFlag.FALL: "fall",
    RedFlag.DROWSINESS: "unusual sleepiness",
    RedFlag.VISION: "vision change",
    RedFlag.FEVER: "fever",
    RedFlag.CHILLS: "chills",
    RedFlag.BREATHING: "trouble breathing",
    RedFlag.CHEST_PAIN: "chest pain",
    RedFlag.HEART_RHYTHM: "racing or irregular heartbeat",
    RedFlag.FAINTING: "fainting or dizziness",
    RedFlag.HEAD_INJURY: "head injury",
    RedFlag.SUICIDAL: "suicidal thoughts",
    RedFlag.SELF_HARM: "self-harm",
    RedFlag.VOMITING_DIARRHOEA: "severe vomiting or diarrhoea",
    RedFlag.NOT_EATING_DRINKING: "unable to eat or drink",
    RedFlag.SEVERE_PAIN: "severe pain",
    RedFlag.INFECTION: "signs of infection",
    RedFlag.NEUROPATHY: "neuropathy getting worse",
}


def severity(flags: Iterable[RedFlag]) -> Severity:
    """The most severe level among ``flags``; NONE when there are none."""
    return max((_SEVERITY[f] for f in flags), default=Severity.NONE)


def is_crisis(flags: Iterable[RedFlag]) -> bool:
    """True when any flag is a mental-health crisis (the reply adds the crisis line)."""
    return any(f in CRISIS_FLAGS for f in flags)


@dataclass(frozen=True, slots=True)
class CheckinAnswer:
    """How a reply answers the symptom check-in.

    ``unspecified`` is a bare "yes"/"sí": the patient reports symptoms without saying which.
    Callers must escalate it like a flag (and may ask which one), never treat it as clear.
    """

    understood: bool
    flags: tuple[RedFlag, ...] = ()
    unspecified: bool = False

    @property
    def clear(self) -> bool:
        return self.understood and not self.flags and not self.unspecified


# --- tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W\d_]+|[0-9]+|[.!?;:\n]|[,/&+]|[^\w\s]")
_SENTENCE = frozenset(".!?;:\n")
_LIST = frozenset(",/&+")

# Misspellings of long symptom words are common and cheap to catch; short ones ("weak") are not,
# because their one-letter neighbours are everyday words ("week", "wear").
_FUZZY_TARGETS: tuple[str, ...] = _split(
    """
    seizure seizures convulsion convulsions convulsiones confused confusion confundido confundida
    headache headaches migraine migraines handwriting weakness debilidad temblores disoriented
    desorientado desorientada fever fiebre breathe breath breathing respirar calentura dizzy
    mareado mareada mareos fainted desmayo desmaye desmayado unconscious unresponsive suicide
    suicidal vomiting vomited vomitando diarrhea diarrhoea diarrea palpitations temperature
    shortness blurry blurred vision chills escalofrios tingling numbness spreading
    """
)
_FUZZY_SET = frozenset(_FUZZY_TARGETS)
# One edit changes the length by at most one: only targets of a near length can match.
_FUZZY_BY_LENGTH: dict[int, tuple[str, ...]] = {
    n: tuple(t for t in _FUZZY_TARGETS if abs(len(t) - n) <= 1) for n in range(4, 40)
}
# Real words one edit from a target: left as they are.
_FUZZY_KEEP = frozenset(
    _split(
        """
        breathed breaths breathes breathy fevers feverish revision visions chiles chilly dizzily
        confuses confusing confuse seizes seized seizing breather vomits painted chilis fiebres
        tinkling mingling jingling flurry slurred slurring slurry temperatura temperaturas
        respira respiro respiras respiran
        """
    )
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for raw in _TOKEN.findall(text):
        if raw in _SENTENCE:
            tok = "."
        elif raw in _LIST:
            tok = ","
        elif raw[0].isalpha() or raw[0].isdigit():
            tok = raw
        else:
            tok = "."  # other emoji, dashes and symbols end a negation's scope
        if tok == "." and out and out[-1] == ".":
            continue
        if len(tok) >= 6 and tok.isalpha():
            tok = _spelled(tok)
        out.append(tok)
    return out


@lru_cache(maxsize=8192)
def _spelled(tok: str) -> str:
    """The symptom word ``tok`` misspells (one edit), or ``tok`` itself. Cached: pure, and
    texts repeat the same words."""
    if tok in _FUZZY_SET or tok in _FUZZY_KEEP:
        return tok
    for target in _FUZZY_BY_LENGTH.get(len(tok), ()):
        if damerau_levenshtein_1(tok, target):
            return target
    return tok


# --- patterns ------------------------------------------------------------------------------------

_CANT = (
    r"(?:cant|cannot|can not|couldnt|could not|unable to|wont|isnt able to|not able to"
    r"|arent able to|hardly|barely)"
)
_HARD = (
    r"(?:(?:trouble|difficulty|difficulties|problems?|hard time|struggl\w*|issues?)"
    r"(?: to| with)?|(?:hard|harder|difficult|painful) to)"
)
_INTENSE = (
    r"(?:severe|bad|terrible|awful|worst|intense|horrible|horrendous|excruciating|splitting"
    r"|pounding|throbbing|huge|massive|killer|strong|crushing|unbearable|extreme|sudden|blinding"
    r"|really|very|so|super|real|major|debilitating|crazy|insane|extremely|new|worse|worsening"
    r"|awfull|nasty|wicked|ass)"
)
_HEADACHE = r"(?:headaches?|head aches?|migraines?|head pain)"
_LIMB = r"(?:arm|arms|leg|legs|hand|hands|side|face|foot|feet|body|knee|knees|ankle|ankles|hip)"
_SUBJ = r"(?:her|his|my|the|mom|moms|dad|dads|mum|mums|their)"
_VERY = r"(?:very|so|really|super|extremely|too|unusually|excessively|abnormally|always|crazy)"
_MUY = r"(?:muy|tan|bien|super|demasiado|re|mucho|muchisimo)"
_BREATH_VERB = (
    r"(?:breathe|breath|breathing|breth|brethe|get air|get a breath|catch (?:my|her|his) breath)"
)

# One entry per flag: the alternatives are joined into a single regex per flag.
_PATTERNS: dict[RedFlag, tuple[str, ...]] = {
    RedFlag.CONFUSION: (
        r"\bconfus(?:e|ed|es|ion|edness)\b",
        r"\bdisorient(?:ed|ated|ation)\b",
        r"\bdeliri(?:ous|um|o|a|ando)\b",
        r"\b(?:doesnt|does not|didnt|did not|dont|do not|cant|cannot|couldnt) (?:know|tell"
        r"|remember) (?:where (?:i am|im|she is|shes|he is|hes|they are|we are|i was|she was|he"
        r" was)|what day it is|what year it is|who i am|who she is|who he is)\b",
        # Orientation as the daily observation check asks it (year, month, city): a caregiver
        # reports "didnt know which city we live in", "cant say what month it is".
        r"\b(?:doesnt|does not|didnt|did not|dont|do not|cant|cannot|couldnt|could not|unable"
        r" to) (?:know|tell|remember|say|name) (?:what|which) (?:day|date|month|year|city|town"
        r"|place|country)(?: (?:it is|its|it was|we are|were|we live(?: in)?|they live(?: in)?"
        r"|(?:he|she) (?:is|lives|was)(?: in)?|this is|today|anymore|now))*(?= *(?:$|[.,;!?]"
        r"| (?:and|or|but|either)\b))",
        r"\bno (?:sabe|sabia|supo|recuerda|recordaba|pudo decir|puede decir) (?:en )?(?:que|cual)"
        r" (?:dia|fecha|mes|ano|ciudad|pueblo|pais|lugar)(?: (?:es|era|estamos|estabamos|vivimos"
        r"|esta|estaba|hoy))*(?= *(?:$|[.,;!?]| (?:y|ni|o|pero)\b))",
        r"\b(?:doesnt|does not|didnt|did not|cant|cannot|couldnt|wont|dont|do not) recogni[sz]e"
        r"\b|\b(?:doesnt|does not|didnt|did not|cant|cannot|couldnt|wont) know (?:me|us|her|him"
        r"|anyone|anybody|family|his wife|her husband|her kids|his kids|who)\b",
        r"\b(?:thinks|thought|believes|says) (?:its|it is|it was|we are|were|she is|shes|he is"
        r"|hes|i am|im) (?:still )?(?:in )?(?:19[0-9][0-9]|20[0-9][0-9]|monday|tuesday|wednesday"
        r"|thursday|friday|saturday|sunday|christmas|a different|another|at (?:home|work|school)"
        r"|back (?:home|at))",
        r"\b(?:not making sense|making no sense|talking nonsense|not (?:her|him|my)self"
        r"|out of it|acting (?:strange|strangely|weird|odd|funny|confused|off)|foggy|in a fog"
        r"|mixed up|lost track of (?:time|the day)|keeps? getting lost|got lost)\b",
        r"\bconfundid[oa]s?\b",
        r"\bconfus[oa]s?\b",
        r"\bdesorientad[oa]s?\b",
        r"\bno (?:sabe|se|sabia|sabe bien) (?:donde (?:esta|estoy|estaba|estamos)|que dia es"
        r"|quien (?:es|soy))\b",
        r"\bno (?:me |nos |la |lo |le |los )?reconoc\w*",
        r"\bno tiene sentido lo que (?:dice|habla)\b",
        r"\bincoheren\w*",
        r"\b(?:perdid[oa]|ida|ido) (?:de la realidad|mentalmente)\b|\bse pierde\b",
        r"\bno (?:es|esta|parece) (?:la misma|el mismo|ella misma|el mismo)\b",
        r"\b(?:cant|cannot|couldnt|doesnt|didnt) remember (?:my|her|his|our|their|who|what|where)"
        r" (?:name|own name|wife|husband|kids|children|address|am|is|are)?\b"
        r"|\bforgot (?:who|where) (?:i|she|he|we|they) (?:am|is|are|was|were|live|lives)\b",
        r"\b(?:keeps?|kept) (?:repeating|asking) (?:the same|herself|himself|the same question)"
        r"|\bhallucinat\w*|\b(?:seeing|sees|hearing|hears) (?:things|bugs|insects|spiders"
        r"|voices)\b|\balucin\w*"
        r"|\b(?:seeing|sees|saw|see|hearing|hears|heard) (?:\w+ ){1,3}?(?:that|who) (?:arent|are"
        r" not|isnt|is not|werent|wasnt|was not) (?:there|real)\b"
        r"|\b(?:sees|seeing|saw) (?:\w+ ){0,2}?(?:on the (?:wall|walls|ceiling)|in the room)\b"
        r"|\bve (?:cosas|gente|bichos|personas) que no\b",
        r"\b(?:(?:ella|el|mi \w+) (?:esta|anda)|anda|la veo|lo veo|la noto|lo noto) (?:muy |bien"
        r" |super )?(?:rar[oa]|extran[oa]|perdid[oa]|ausente|desconectad[oa])\b",
        r"\b(?:dice|habla|decia|hablaba) (?:cosas )?(?:sin sentido|incoherencias|disparates"
        r"|locuras|tonterias raras)\b",
    ),
    RedFlag.WORD_FINDING: (
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:find|finding|get|getting|say|saying|remember"
        r"|remembering) (?:out )?(?:the |my |her |his |right |any |some |correct )*words?\b",
        r"\bword (?:finding|find|retrieval)\b",
        r"\bwords? (?:are |is |were |was |come out |coming out |came out |keep coming out |"
        r"get |got |getting )?(?:all )?(?:jumbled|mixed up|wrong|scrambled|garbled|backwards"
        r"|slurred|stuck)\b",
        r"\b(?:wrong|jumbled|mixed up|mixing up|mixes up|mixing|mixes|confusing|confuses"
        r"|scrambling|scrambles|forgetting|forgets|losing|loses) (?:up )?(?:her |his |my |their"
        r" |the |simple |easy |basic )?words?\b",
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:talk|talking|speak|speaking|understand (?:me|us|what"
        r"|people|anyone|others))\b",
        r"\b(?:not|stopped) (?:talking|speaking)\b",
        r"\bslurr\w*|\bslurs?\b|\baphasi\w*|\bgibberish\b|\bbabbling\b",
        r"\b(?:speech|speaking|talking|voice) (?:is |was |sounds |seems )?(?:slurred|garbled"
        r"|off|strange|weird|funny|slow|different|wrong)\b",
        r"\blost (?:her|his|my|the) words\b",
        # Naming, as the daily observation check asks it: "couldnt name the cup or the spoon".
        rf"\b(?:{_CANT}|{_HARD}|didnt|did not|doesnt|does not) (?:to )?(?:name|naming)"
        r" (?:the |a |an |any |simple |everyday |common |three |3 )*(?:things?|objects?|items?"
        r"|cup|spoon|pen|glass|key|keys|watch|phone|chair)\b",
        r"\bno (?:pudo|puede|podia|sabe|supo) (?:nombrar|decir el nombre de)\b",
        r"\bno (?:puedo|puede|podia|pudo|podemos) (?:hablar|entender)\b",
        r"\bno (?:encuentro|encuentra|encontraba|encontre|encuentro las|le salen|me salen"
        r"|salen) (?:las |la |mis |sus )?palabras?\b",
        r"\b(?:dificultad|dificultades|problemas?|trabajo|le cuesta|me cuesta) (?:para |al |con"
        r" |)?(?:hablar|encontrar (?:las )?palabras|las palabras)\b",
        r"\bhabla (?:rara|raro|arrastrada|enredada|mal|incoherente|lento|extrano|extrana)\b",
        r"\barrastra (?:las )?palabras\b|\bse le traba la lengua\b",
        r"\bpalabras (?:equivocadas|incorrectas|revueltas)\b",
        r"\b(?:ya no habla|dejo de hablar|afasia)\b",
    ),
    RedFlag.HANDWRITING: (
        r"\bhand ?writt?ing\b|\bmicrographia\b",
        r"\b(?:writing|signature) (?:is |looks |has |got |seems |became |went )*(?:different"
        r"|weird|messy|shaky|strange|off|bad|worse|changed|sloppy|funny|wobbly|small|smaller"
        r"|tiny|illegible|unreadable|scribbly)\b",
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:write|writing|sign|signing|hold (?:a |the |my )?pen"
        r"|read|reading)\b",
        r"\b(?:hand ?writing|writing|signature) (?:is |looks |has |got |seems |went )*(?:all over"
        r" the place|a mess|like a (?:child|kid)s?|unrecogni[sz]able|scribbles?)\b",
        r"\bletra (?:esta |se ve |es |salio |sale |muy |bien |super |tan |mas |toda |le |me |se"
        r" |ya |ahora |se le ve |se me ve )*"
        r"(?:diferente|rara|raro|fea|temblorosa"
        r"|chueca|cambiada|ilegible|distinta|mal|peor|pequena|chiquita)\b",
        r"\bcambios? (?:en |de )?(?:la |mi |su )?(?:letra|escritura)\b",
        r"\bno (?:puedo|puede|pude|pudo|podia) (?:escribir|firmar|leer)\b",
        r"\bescritura (?:diferente|rara|cambiada|temblorosa|mal|peor|ilegible)\b",
    ),
    RedFlag.SEIZURE: (
        r"\bseiz(?:ure|ures|ing)\b|\bsiez(?:ure|ures|ing)\b|\bseazures?\b|\bsezures?\b",
        r"\bconvuls\w*|\bconvulc\w*|\bepilep\w*",
        r"\b(?:had|having|has|have|a|another|in|into|with) (?:a |an |another )?fits?\b",
        r"\bfitting\b",
        r"\bshaking\b|\bshakes\b|\bshaky\b|\bshakey\b|\bshook\b",
        r"\btremors?\b|\btrembl\w*|\btwitch\w*|\bjerk(?:ing|s|ed|y)\b|\bspasms?\b",
        r"\bstaring (?:spells?|into space|blankly)\b|\bblank stare\b",
        r"\btembl\w*|\btiembl\w*|\bespasmos?\b|\bsacudidas?\b",
        r"\bse (?:sacude|sacudia|sacudio|sacudian)\b",
        r"\bataque epileptico\b|\bcrisis (?:convulsiva|epileptica)s?\b",
        r"\b(?:le dio|tuvo|tuve|me dio|dio|un|otro) (?:un |otro )?ataque\b"
        r"(?! (?:de (?:ansiedad|panico|nervios|tos|risa|asma|celos|hambre)|al corazon|cardiaco))",
    ),
    RedFlag.SEVERE_HEADACHE: (
        rf"\b(?:{_INTENSE} ){{1,3}}{_HEADACHE}\b",
        r"\b(?:headaches?|migraines?|head pain|head hurts?|head is hurting|head) (?:is |are |was"
        r" |so |very |really |getting |got |that is |thats |keeps |feels |kept |has been )*"
        r"(?:severe|terrible|awful|unbearable|killing me|the worst|worst|excruciating|horrible"
        r"|really bad|so bad|worse|intense|splitting|pounding|exploding|throbbing)\b",
        r"\bmigraines?\b|\bthunderclap\b",
        r"\bheadaches? (?:with|and) (?:a )?stiff neck\b",
        r"\bhead hurts? (?:so bad|so much|really bad|a lot|like crazy|badly)\b",
        r"\bdolor(?:es)? de cabeza (?:muy |tan |bien |super |re |mas |demasiado )*(?:fuerte"
        r"|fuertes|intenso|intensos|terrible|horrible|insoportable|severo|tremendo|grave"
        r"|horroroso|espantoso|peor)\b",
        r"\b(?:fuerte|fuertes|terrible|horrible|tremendo|intenso|gran|severo|mucho|muchisimo"
        r"|insoportable|peor) dolor(?:es)? de cabeza\b",
        r"\bmigrana\b|\bjaqueca\b|\bcefalea\b",
        r"\b(?:me|le) (?:duele|dolia|esta doliendo) (?:mucho|muchisimo|horrible|demasiado"
        r"|fuerte|muy fuerte) la cabeza\b|\b(?:me|le) (?:explota|estalla) la cabeza\b",
    ),
    RedFlag.WEAKNESS: (
        r"\bweak(?:ness|er|ened|ening)?\b|\bweekness\b",
        r"\bno strength\b|\bparaly\w*|\bparaliz\w*|\bstroke\b|\bderrame\b|\bictus\b",
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:walk|walking|stand|standing|lift|lifting|move|moving"
        r"|grip|gripping|hold|holding|get up|getting up|raise|raising|feel (?:my|her|his) "
        r"(?:arm|leg|face|hand|side))\b",
        rf"\b{_LIMB} (?:is |are |feels |feel |went |gone |going |got |has gone |keeps |keep"
        r" |kept |just |suddenly |so |really |very )*"
        r"(?:weak|limp|heavy|dead|floppy|useless|droopy|drooping|giving out|gave out|gave way"
        r"|buckled|buckling)\b",
        rf"\b(?:face|lip|lips|mouth|tongue|arm|leg|one side|side of {_SUBJ} (?:face|body)|cheek)"
        r" (?:is |are |feels |went |gone |going |feel )*(?:numb|tingly|dead)\b",
        r"\bnumb(?:ness)? (?:\w+ ){0,3}?(?:on|in|down) (?:one|the left|the right|left|right|"
        r"half|her|his|my)? ?(?:side|face|arm|leg)\b",
        r"\bnumb (?:face|arm|leg|side)\b",
        r"\b(?:sudden|new) numbness\b",
        r"\b(?:face|mouth|smile|eyelids?|lips?|eyes?|cheeks?|side of (?:her|his|my|the) face)"
        r" (?:is |are |looks |look |seems |seem |went |got |getting |has gone |a bit |kind of"
        r" |kinda |so |really )*(?:droop\w*|crooked|lopsided|uneven|sagging|saggy|slack|dropped"
        r"|twisted)\b|\bdroopy (?:face|eye|eyelid|mouth|lip)\b|\bdrooping\b",
        r"\bdebil(?:idad|es)?\b|\bsin fuerzas?\b|\bno tengo fuerzas?\b",
        r"\bno (?:puedo|puede|podia|pude|pudo) (?:caminar|andar|levantarme|levantarse|moverme"
        r"|moverse|mover (?:el|la|mi|su) \w+|pararme|pararse|agarrar|sostener)\b",
        r"\b(?:brazo|pierna|piernas|mano|lado|cara|boca|labio|labios|mejilla) (?:esta |se siente"
        r" |se le |se me |la tengo |lo tengo )?(?:debil|paralizad[oa]|caid[oa]|torcid[oa]"
        r"|dormid[oa]|entumid[oa]|entumecid[oa]|adormecid[oa]|adormilad[oa])\b",
        r"\b(?:entumecid[oa]|adormecid[oa]|dormid[oa]) (?:\w+ ){0,2}(?:la cara|un lado|el brazo"
        r"|la pierna|medio cuerpo|la boca)\b",
        r"\bpiernas? (?:no (?:me |le )?responden|(?:me |le )?fallan)\b",
        r"\bno (?:me|se|le) (?:puedo|puede|pude|pudo) (?:mover|levantar|parar|sostener)\b",
        rf"\b{_CANT} (?:get|getting) (?:out of|up from|up off) (?:bed|the bed|the chair|the couch"
        r"|the toilet)\b",
        r"\bse le cae (?:la cara|un lado|la boca)\b",
        r"\bunsteady\b|\b(?:lost|losing|lose) (?:my |her |his )?balance\b|\boff balance\b"
        r"|\bbalance (?:is )?(?:off|bad|worse|gone)\b|\bpierde el equilibrio\b",
    ),
    RedFlag.FALL: (
        r"\bfell\b|\bfallen\b|\bfalls?\b|\bfalling\b|\bfallin\b|\btripped\b|\bslipped\b",
        r"\bcollaps\w*",
        r"\bfound (?:her|him|them|mom|dad|my mom|my dad) on the (?:floor|ground)\b"
        rf"|\b{_CANT} get (?:up )?off the (?:floor|ground)\b",
        r"\bme cai\b|\bse cayo\b|\bnos caimos\b|\b(?:me|se) (?:he|ha) caido\b|\bse cae\b",
        r"\bcaidas?\b|\bse fue al (?:suelo|piso)\b|\bcayo al (?:suelo|piso)\b|\bse desplomo\b",
        r"\bme resbale\b|\bse resbalo\b|\btropece\b|\btropezo\b",
    ),
    RedFlag.DROWSINESS: (
        r"\b(?:hard|difficult|impossible|trouble) to (?:wake|rouse|arouse|keep awake)\b",
        r"\b(?:wont|cant|cannot|couldnt|can not) (?:wake|rouse)\b|\bnot waking(?: up)?\b"
        r"|\bisnt waking\b",
        rf"\b{_CANT} (?:stay|keep) (?:awake|(?:my|her|his) eyes open)\b",
        r"\bunresponsive\b|\bnot responding\b|\bwont respond\b|\bunconscious\b|\blethargic\b",
        rf"\b{_VERY} (?:sleepy|drowsy|tired and sleepy)\b|\bdrowsy\b|\bdrowsiness\b",
        r"\bsleep(?:ing|s)? all (?:day|the time)\b|\bslept all day\b",
        r"\bsleep(?:ing|s)? (?:a lot |so much |way )?more than (?:usual|normal)\b"
        r"|\bduerme (?:mucho )?mas de lo normal\b",
        r"\bno (?:me |le |nos )?(?:contesta|responde) cuando\b|\bdoesnt (?:answer|respond)"
        r" when\b",
        r"\b(?:keeps?|keeping) (?:falling asleep|dozing off|nodding off|passing out)\b",
        r"\bfalling asleep (?:mid|while|during|in the middle)\b|\bnodding off\b",
        r"\bno (?:se )?despierta\b|\bno (?:puedo|podemos) despertarl\w*|\bsomnolient[oa]\b",
        r"\bno reacciona\b|\bno responde\b|\binconsciente\b|\bperdio el conocimiento\b",
        rf"\b(?:{_MUY} )*(?:adormilad[oa]|dormid[oa] todo el dia)\b|\bduerme todo el dia\b",
        r"\bno (?:puede|puedo) mantener(?:se|me) despiert[oa]\b|\bmucho sueno\b",
    ),
    RedFlag.VISION: (
        r"\b(?:double|blurry|blurred|blurring|fuzzy|cloudy|dim|dimmed|lost|losing|loss of"
        r"|changes? in|change of|weird|strange|tunnel|patchy) (?:\w+ )?(?:vision|eyesight|sight)\b",
        r"\b(?:vision|eyesight|sight|eyes?) (?:is |are |went |has gone |have gone |keeps |keep"
        r" |getting |got |seems |looks |look |gone |going |so |really |very |all )*"
        r"(?:blurry|blurred|fuzzy|double|dim|cloudy|weird|strange|off|worse|bad|gone|going"
        r"|black|grey|gray|dark|changed)\b",
        r"\bseeing (?:double|two of|spots|flashing|flashes)\b|\bsee double\b",
        rf"\b{_CANT} see\b|\bblind\b|\bblindness\b|\bgoing blind\b",
        r"\beverything (?:looks |is )?(?:blurry|blurred|fuzzy|double)\b",
        r"\bvision (?:doble|borrosa|nublada)\b",
        r"\b(?:veo|ve|ves|vemos|ven|viendo|vio|vi) (?:todo )?(?:doble|borroso|nublado|mal|manchas"
        r"|luces|puntos|negro|oscuro)\b",
        r"\bno (?:puedo|puede|pude|pudo) ver\b|\bno veo\b|\bperd\w* (?:la )?vista\b",
        r"\bvista (?:borrosa|nublada|doble)\b|\bse (?:me|le) (?:nubl\w*|pone borrosa)\b",
        r"\beyes? (?:wont|cant|cannot|dont|do not|will not) focus\b|\bcant focus (?:my|her|his)"
        r" eyes\b",
    ),
    RedFlag.FEVER: (
        rf"\b{FEVER_READING}\b",
        r"\bfevers?\b|\bfeverish\b|\bfebrile\b|\bburning up\b|\bhigh temp(?:erature)?\b",
        r"\b(?:have|has|got|running|run|with|had) (?:a |an )?(?:slight |high |little )?"
        r"(?:temp|temperature)\b(?! (?:of |is |was |at |de )?normalreading)",
        r"\bfiebre\b|\bcalentura\b|\bfebril\b|\bardiendo\b|\btemperatura alta\b",
        r"\b(?:tengo|tiene|con) (?:temperatura|temp)\b",
        r"\b(?:temp|temperature|temperatura) (?:is |es |esta |went |has gone |keeps going |le |me"
        r" |se |sigue |keeps |still )*(?:up|high|rising|going up|climbing|alta|subiendo|subio)\b",
        r"\b(?:feel|feels|feeling|felt|is|she is|he is) (?:really |very |so )?(?:hot to the touch"
        r"|burning hot|hot and (?:sweaty|shivery|shaky|clammy))\b|\bnight sweats\b"
        r"|\b(?:se siente|esta|lo siento|la siento) (?:muy )?(?:caliente|ardiendo)\b",
    ),
    RedFlag.CHILLS: (
        r"\bchills\b|\brigou?rs?\b|\bshivering\b|\bshivers\b|\bshiver\b|\bcant get warm\b",
        r"\bescalofrios?\b|\btiritando\b|\btirita\b|\bteeth (?:are )?chattering\b",
        r"\b(?:temblando|tiembla|tiemblo|shaking|shivering) (?:de|from the|with) (?:frio|cold)\b",
        r"\bsudando frio\b|\bsudor frio\b|\bcold sweats?\b",
    ),
    RedFlag.BREATHING: (
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?{_BREATH_VERB}\b",
        r"\b(?:short|shortness|shortnes) (?:of|o) (?:breath|breathe|breth)\b",
        r"\bout of breath\b|\bbreathless\w*|\bwinded\b|\bgasping\b|\bwheez\w*",
        r"\b(?:breathing|breath) (?:is |feels |has been |got |getting |really |so |very |kinda"
        r" |super |a bit |too )*(?:hard|difficult|fast"
        r"|rapid|labou?red|shallow|weird|heavy|funny|tight|short|bad|worse|noisy)\b",
        r"\b(?:hard|difficult|labou?red|rapid|fast|shallow|heavy) breathing\b",
        r"\b(?:suffocating|choking|smothering)\b|\bcant get (?:enough )?air\b|\bneed air\b",
        r"\bno (?:puedo|puede|podia|pude|pudo) respirar\b|\bme (?:falta|faltaba) (?:el )?aire\b",
        r"\b(?:le|nos) falta (?:el )?aire\b|\bfalta de aire\b|\bsin aire\b",
        r"\bme ahog\w*|\bse ahog\w*",
        r"\bahog(?:o|a|ando|andome)\b|\bdificultad (?:para|al) respirar\b|\brespir\w* mal\b",
        r"\bno me entra (?:el )?aire\b|\bme cuesta respirar\b|\ble cuesta respirar\b",
        r"\bagitad[oa]\b|\bsin aliento\b|\basfixi\w*",
        r"\bnot breathing (?:right|well|properly|normally|good)\b|\brespira (?:muy )?(?:raro|mal"
        r"|rapido|con dificultad|fuerte|agitado)\b",
        r"\b(?:blue|bluish|purple) lips\b|\blips (?:are |look |turning |went )*(?:blue|purple)\b"
        r"|\blabios (?:se ven |estan |se le ponen |se le pusieron |se pusieron |muy )*(?:morados"
        r"|azules)\b|\bturning blue\b",
    ),
    RedFlag.CHEST_PAIN: (
        r"\bchest (?:\w+ ){0,3}?(?:pain|pains|pian|pians|paim|hurts?|hurting|tight|tightness"
        r"|pressure|heavy"
        r"|heaviness|ache|aches|aching|squeez\w*|crush\w*|burn\w*|sore|pounding|discomfort)\b",
        r"\b(?:pain|pains|pressure|tightness|heaviness|ache|squeezing|discomfort|burning) (?:in|on"
        r"|across|around) (?:my |her |his |the )?chest\b",
        r"\bangina\b|\b(?:tight|heavy|sore|painful|aching|crushing|burning|pounding) chest\b",
        r"\b(?:dolor|dolores|presion|opresion|punzada|ardor|pesadez) (?:\w+ ){0,2}?(?:de|en|del)"
        r" (?:el |mi |su )?(?:pecho|pesho)\b",
        r"\b(?:me|le) (?:duele|dolia|aprieta|arde) (?:mucho |el )?pecho\b|\bpecho apretado\b",
        r"\bpecho (?:me |le )?(?:duele|aprieta|arde|pesa)\b",
    ),
    RedFlag.HEART_RHYTHM: (
        r"\bheart (?:\w+ ){0,2}?(?:racing|races|raced|pounding|pounds|fluttering|flutters"
        r"|skipping|skips|skipped|irregular|beating (?:fast|so fast|really fast|hard|weird"
        r"|funny|out of)|going (?:fast|crazy|really fast)|is fast|jumping)\b",
        r"\b(?:racing|pounding|irregular|fluttering|fast|rapid) (?:heart|heartbeat|heart beat"
        r"|pulse|heart rate)\b",
        r"\bpalpitat\w*|\btachycardi\w*|\barrhythmi\w*|\bafib\b|\ba fib\b",
        r"\bpalpitacion\w*|\btaquicardi\w*|\barritmi\w*",
        r"\bheart (?:feels |is |is doing |keeps |seems )?(?:funny|weird|strange|off|odd|wrong"
        r"|flip ?flopping)\b",
        r"\b(?:late|latiendo|palpita) (?:muy )?(?:raro|rapido|rapidisimo|fuerte|irregular|a mil"
        r"|descontrolado|acelerado)\b",
        r"\bcorazon (?:\w+ ){0,3}?(?:acelerado|rapido|rapidisimo|muy rapido|fuerte|loco"
        r"|desbocado|irregular|brinca|salta)\b",
        r"\b(?:pulse|heart rate|hr|bpm|pulso|frecuencia cardiaca) (?:is |was |of |at |de |es )?"
        r"(?:1[2-9][0-9]|2[0-9][0-9])\b",
        r"\b(?:1[2-9][0-9]|2[0-9][0-9]) bpm\b",
    ),
    RedFlag.FAINTING: (
        r"\bfaint(?:ed|ing|s|ish)?\b|\bpass(?:ed|ing)? out\b|\bblack(?:ed|ing)? out\b",
        r"\bcollaps\w*|\bkeeled over\b|\bsyncope\b",
        r"\bdizz(?:y|iness|ie)\b|\blight ?headed\w*|\bvertigo\b|\broom (?:is )?spinning\b"
        r"|\bwoozy\b",
        r"\bdesmay\w*|\bmare(?:ad[oa]s?|o|os|ando)\b|\bme mareo\b|\bse marea\b|\bvahido\b",
        r"\bperdio el conocimiento\b|\bse (?:me |le )?va la cabeza\b",
    ),
    RedFlag.HEAD_INJURY: (
        r"\b(?:hit|bumped|banged|bashed|smacked|knocked|cracked|struck|hurt|whacked|slammed"
        r"|smashed|conked|thumped|bonked|busted) (?:\w+ ){0,2}?"
        r"(?:head|skull|forehead)\b",
        r"\bhead (?:injury|injured|trauma|wound|bump|knock)\b|\bconcuss\w*",
        r"\b(?:golpe|golpazo|trancazo|chichon) (?:\w+ ){0,2}?(?:en|de) (?:la |mi |su )?"
        r"(?:cabeza|frente)\b",
        r"\b(?:me|se|le) (?:golpe\w*|pegu?\w*) (?:\w+ ){0,3}?(?:la )?(?:cabeza|frente)\b",
        r"\bhead injury\b|\bconmocion\b|\btraumatismo\b",
    ),
    RedFlag.SUICIDAL: (
        r"\b(?:want|wanna|wanted|wish|going|gonna|ready|planning|plan|thinking about|think about"
        r"|thought about|thoughts of|thinking of) (?:to )?(?:die|dying|end it|end it all|end my"
        r" life|kill myself|be dead|not be here|not wake up|take my (?:own )?life|disappear)\b",
        r"\bkill(?:ing)? (?:my ?self|herself|himself)\b|\bkms\b|\bunalive\b",
        r"\bsuicid\w*|\bend(?:ing)? (?:it all|my life|things)\b|\btake my (?:own )?life\b",
        r"\b(?:no|not any|nothing) (?:point|reason|use) (?:in |to )?(?:going on|living|being"
        r" here|carrying on|go on|live|keep going|anymore)\b",
        r"\bbetter off (?:dead|without me|gone)\b|\bwish i (?:was|were) (?:dead|gone|never born)\b",
        r"\b(?:might as well|may as well|rather|should just|would rather|id rather) (?:be dead"
        r"|die|not wake up|not be here|not exist)\b",
        r"\b(?:whats|what is|wheres|where is) the (?:point|use|reason) (?:of |in |to )?(?:living"
        r"|going on|life|carrying on|being alive|anything|it all|any of this|trying)\b",
        r"\bpara que (?:vivir|seguir viviendo|seguir)\b|\bque sentido tiene (?:vivir|seguir)\b",
        r"\b(?:no le (?:veo|encuentro)|no tiene|sin) sentido (?:a |la |el )?(?:vivir|la vida|seguir"
        r"|seguir viviendo)\b",
        r"\b(?:dont|do not|no longer) want to (?:live|be alive|be here|exist|wake up|go on)\b",
        r"\bcant (?:go on|do this anymore|take it anymore)\b|\bgive up on life\b",
        r"\bwant(?:s)? to die\b|\bready to die\b",
        r"\b(?:quiero|quisiera|quiere|ganas de|pienso en|pensando en|deseo) (?:me )?"
        r"(?:morir(?:me)?|matarme|suicidarme|desaparecer|quitarme la vida|no despertar)\b",
        r"\bme quiero (?:morir|matar|suicidar)\b|\bse quiere (?:morir|matar|suicidar)\b",
        r"\bno quiero (?:vivir|seguir (?:viviendo|aqui|adelante)|despertar|estar aqui)\b",
        r"\b(?:acabar|terminar) con (?:todo|mi vida|esto)\b|\bquitarme la vida\b",
        r"\bsuicid\w*|\bmejor (?:muert[oa]|no estar)\b|\bno vale la pena (?:vivir|seguir)\b",
        r"\bya no (?:puedo|aguanto) mas\b|\bestarian mejor sin mi\b",
    ),
    RedFlag.SELF_HARM: (
        r"\b(?:cut|cutting|cuts|burning|harm|harming|scratching) (?:my ?self|herself|himself)\b",
        # Intent or ideation before the act, in any tense: "feel like hurting myself",
        # "thoughts of harming myself", "i might hurt myself".
        r"\b(?:want|wants|wanna|going|gonna|thinking about|thinking of|thought about|thought of"
        r"|thoughts of|thoughts about|urge to|urges to|feel like|feels like|felt like|might|may"
        r"|could|will|ill|would|tempted to|planning to|plan to|about to|afraid ill|scared ill)"
        r"(?: (?:to|just|really|actually|end up|go and))* (?:hurt|hurting|harm|harming|cut"
        r"|cutting|hit|hitting|burn|burning|punish|punishing|injure|injuring) (?:my ?self"
        r"|herself|himself)\b",
        r"\bme (?:quiero|quisiera|voy a|puedo|podria|dan ganas de|gustaria) (?:hacer|causar)"
        r" (?:dano|danio)\b|\bme (?:quiero|voy a|dan ganas de) lastimar\b",
        r"\b(?:hurt|hurting|hit|hitting|burned|burnt) (?:my ?self|herself|himself) (?:on purpose"
        r"|deliberately|intentionally|again)\b",
        r"\b(?:i|she|he|they) (?:cut|cuts|burn|burns|harm|harms|scratch|scratches|punch|punches"
        r"|starve|starves) (?:my ?self|herself|himself)\b",
        r"\b(?:hurt|hurting|hit|hitting|burn|burning|cut|cutting|harm|harming) (?:my ?self|herself"
        r"|himself) (?:to|so (?:i|she|he) can) (?:feel|cope|punish|forget|calm|make)\b",
        r"\b(?:keep|keeps|kept|been|started|start|stop|cant stop) (?:hurting|hitting|burning"
        r"|cutting|harming|scratching|punching|starving) (?:my ?self|herself|himself)\b",
        r"\bself ?harm\w*|\bself ?injur\w*",
        r"\b(?:took|taken|take|swallowed|overdos\w*) (?:all (?:of )?)?(?:my |the |a bunch of"
        r" |too many |extra )?(?:pills|tablets|meds|medication)\b|\boverdos\w*",
        r"\b(?:hacerme|hacerse|me hago|se hace|me hice|se hizo) (?:dano|danio|cortes)\b",
        r"\b(?:cortarme|me corto|me corte|se corta|se corto|quemarme|me quemo|lastimarme"
        r"|me lastimo|golpearme)\b",
        r"\bautolesion\w*|\bsobredosis\b|\bme tome todas las pastillas\b",
        r"\b(?:me|se) (?:estoy|esta|he|ha|sigo|sigue) (?:estado |seguido )?(?:cortando|lastimando"
        r"|quemando|golpeando|haciendo dano|rasgu\w+)\b",
    ),
    RedFlag.VOMITING_DIARRHOEA: (
        r"\b(?:vomiting|throwing up|puking|being sick)\b",
        r"\b(?:cant|cannot|wont|can not) stop (?:vomiting|throwing up|puking|being sick|pooping"
        r"|going to the bathroom|running to the toilet)\b",
        r"\b(?:severe|bad|terrible|constant|nonstop|non stop|explosive|watery|bloody|lots of"
        r"|so much|really bad|awful) (?:\w+ )?(?:diarrh?o?ea|diarrhea|diarrhoea|diarrea|runs"
        r"|vomiting|vomit|nausea and vomiting)\b",
        r"\b(?:diarrh?o?ea|diarrhea|diarrhoea|diarrea|vomit\w*|threw up|thrown up|throwing up"
        r"|puk\w*) (?:\w+ ){0,4}?(?:all (?:day|night|morning)|nonstop|non stop|every hour|wont"
        r" stop|since (?:last night|yesterday)|(?:[6-9]|[1-9][0-9]|six|seven|eight|nine|ten"
        r"|twelve|twenty|a dozen|seis|siete|ocho|nueve|diez|doce|muchas|many) (?:times|veces"
        r"|x))\b",
        r"\b(?:[6-9]|[1-9][0-9]|six|seven|eight|nine|ten|twelve|seis|siete|ocho|nueve|diez)"
        r" (?:times|episodes|veces) (?:of )?(?:diarrh?o?ea|diarrea|vomit\w*)\b",
        r"\bvomitando\b|\bno (?:para|paro|puedo parar) de (?:vomitar|devolver|ir al bano)\b",
        r"\bno (?:puedo|puede|podia|pudo) (?:dejar|parar) de (?:vomitar|devolver|ir al bano)\b",
        r"\bdiarrea (?:muy )?(?:fuerte|severa|constante|con sangre|todo el dia|toda la noche)\b",
        r"\b(?:vomit\w*|devolv\w*|diarrea) (?:\w+ ){0,3}?todo el dia\b|\bvomitos? con sangre\b",
    ),
    RedFlag.NOT_EATING_DRINKING: (
        rf"\b{_CANT} (?:eat|drink|swallow|keep (?:anything|any food|food|water|liquids|it) down"
        r"|eat or drink|eat nor drink|eat anything|drink anything)\b"
        # "couldn't eat much / my salad": less than planned, not unable to eat.
        r"(?! (?:much|a lot|all|the whole|as much|enough|more|my|breakfast|lunch|dinner|fish"
        r"|salmon|the|that|it all|it\b))",
        r"\b(?:hasnt|havent|has not|have not|hadnt|not|didnt|did not)"
        r" (?:eaten|drunk|drank|eat|drink|eating|drinking|had) (?:or (?:eaten|drunk|drank"
        r"|drink|eat) )?(?:anything|a thing|nothing|any food|any water|food or water|in \w+|for"
        r" \w+|since|all day)\b",
        r"\bnot (?:eating|drinking) (?:or|and|nor) (?:eating|drinking)\b",
        r"\b(?:wont|refuses to|doesnt want to|will not|refused to) (?:eat|drink) (?:or|and|nor)"
        r" (?:eat|drink)\b",
        r"\bno (?:quiere|puede|come|bebe|toma|como|bebo|tomo) (?:comer|beber|tomar|nada)? ?ni"
        r" (?:comer|beber|tomar|come|bebe|toma|como|bebo|tomo|agua|liquidos)\b",
        r"\bnothing (?:stays|will stay) down\b|\bcant keep (?:\w+ )?down\b",
        r"\bno (?:puedo|puede|pude|pudo|he podido|ha podido) (?:comer|tomar|beber|tragar)"
        r"(?: (?:nada|agua|ni agua|liquidos))?\b",
        r"\bno (?:he|ha|hemos|han) (?:comido|tomado|bebido|probado) (?:\w+ ){0,2}?(?:nada|en todo"
        r" el dia|desde|en \d+ horas|en (?:dos|2) dias|hoy)\b",
        r"\bno (?:come|toma|bebe) nada\b|\bno retiene (?:nada|liquidos|la comida)\b",
    ),
    RedFlag.SEVERE_PAIN: (
        r"\b(?:severe|terrible|unbearable|excruciating|horrible|worst|intense|extreme|awful"
        r"|agonizing|crippling|sharp severe|really bad|so much|so bad) (?:\w+ )?(?:pain|pains)\b",
        r"\bpain (?:is |has been |got |getting |so |really |very |too )*(?:unbearable"
        r"|excruciating|severe|terrible|horrible|the worst|worse and worse|out of control"
        r"|killing me|bad|awful|intense)\b",
        r"\bin (?:so much|agony|terrible|a lot of|severe) pain\b|\bagony\b",
        r"\bdolor (?:muy |tan |bien )?(?:fuerte|insoportable|terrible|horrible|intenso|severo"
        r"|muy fuerte|espantoso)\b|\b(?:mucho|muchisimo|terrible|insoportable) dolor\b",
        r"\bme (?:duele|duelen) (?:\w+ ){0,3}?(?:muchisimo|horrible|demasiado)\b",
    ),
    RedFlag.INFECTION: (
        r"\bsore throat\b|\bthroat (?:is |feels )?(?:sore|hurts|raw|burning)\b",
        r"\bcough\w*|\bphlegm\b|\bmucus\b",
        r"\b(?:burn\w*|stings?|stinging|hurts?|pain|painful) (?:\w+ ){0,2}?(?:when|while|to)"
        r" (?:i |she |he )?(?:pee|peeing|pees|urinat\w*|wee|go to the bathroom)\b",
        r"\b(?:peeing|urinating|pee) (?:burns|hurts|stings)\b|\buti\b|\bbladder infection\b",
        r"\b(?:burning|painful|pain (?:with|on|during)|stinging) (?:urination|peeing|pee)\b"
        r"|\bdysuria\b",
        r"\b(?:mouth|tongue|gum|lip) (?:sores?|ulcers?)\b|\bsores? in (?:my |her |his )?mouth\b"
        r"|\bcold sores?\b|\bthrush\b|\bulcers? in (?:my |her |his )?mouth\b",
        r"\binfect\w*",
        r"\bdolor de garganta\b|\bgarganta (?:irritada|inflamada)\b|\bme duele la garganta\b",
        r"\btos\b|\btosiendo\b|\bflema\b",
        r"\b(?:ardor|arde|duele|dolor) (?:\w+ ){0,2}?(?:al|cuando) (?:orinar|hacer pipi|orino"
        r"|hago pipi)\b",
        r"\b(?:llagas|aftas|ulceras|heridas) (?:en|de) (?:la )?boca\b|\binfeccion\w*",
    ),
    RedFlag.NEUROPATHY: (
        r"\b(?:numb(?:ness)?|tingl\w*|pins and needles|burning feet|neuropathy)"
        r" (?:\w+ ){0,3}?(?:is |are |has |keeps |getting |got |is getting )*(?:spreading"
        r"|spread|worse|worsening|moving up|going up|climbing|up to)\b",
        r"\b(?:spreading|worse|worsening|more) (?:numbness|tingling|neuropathy)\b",
        r"\b(?:dropping|drop|dropped|dropps) (?:things|stuff|everything|my (?:cup|phone|keys"
        r"|fork|spoon)|cups?|objects)\b",
        rf"\b{_CANT} (?:button|feel (?:my|her|his) (?:feet|hands|fingers|toes))\b",
        r"\bse me caen las cosas\b|\bse le caen las cosas\b|\bse me cae todo\b",
        r"\b(?:hormigueo|entumecimiento|adormecimiento) (?:que )?(?:se extiende|sube|avanza|peor"
        r"|empeora|nuevo|se esta extendiendo|esta peor|mas fuerte)\b",
    ),
}

# Symptom names count in a check-in answer, where they answer the question just asked.
_CHECKIN_PATTERNS: dict[RedFlag, tuple[str, ...]] = {
    RedFlag.WORD_FINDING: (r"\bwords?\b|\bspeech\b|\bpalabras?\b|\bhablar\b",),
    RedFlag.HANDWRITING: (r"\bwriting\b|\bletra\b|\bescritura\b",),
    RedFlag.SEVERE_HEADACHE: (rf"\b{_HEADACHE}\b|\bdolor(?:es)? de cabeza\b|\bduele la cabeza\b",),
    RedFlag.WEAKNESS: (r"\bdebil\w*|\bfuerza\b",),
}

_MASKS: tuple[str, ...] = (
    r"\b(?:fell|fallen|falls?|falling|fallin) (?:back )?(?:asleep|behind|through|apart|short"
    r"|for|in love|out of love|ill|sick|off the wagon|into (?:a |the )?(?:routine|habit)|in line"
    r"|silent|quiet|pregnant|victim)\b",
    r"\b(?:hair|pelo|cabello) (?:\w+ ){0,3}?(?:fell|falling|falls|fallen|fall)\b",
    r"\b(?:this|last|next|until|till|since last|in the|by) fall\b",
    r"\bfall (?:walk|walks|colou?rs|leaves|weather|season|day|morning|afternoon|evening|air"
    r"|semester|break)\b",
    r"\bcaidas? de(?:l| la| el)? (?:cabello|pelo|presion|bolsa|precios|internet|senal|sistema)\b",
    r"\bcara caida\b",
    r"\bse (?:cayo|cae) (?:el|la) (?:internet|sistema|red|senal|llamada|pagina|app|aplicacion"
    r"|wifi)\b",
    r"\b(?:this|last|next|per|every|each|whole|that) weak\b",
    r"\bweak (?:ago|coffee|tea|signal|wifi|wi fi|connection|excuse|moment|joke|point|spot"
    r"|password|reception|link|argument|beer|sauce)\b",
    r"\b(?:senal|wifi|internet|cafe|te) (?:muy |es |esta )?debil\b",
    r"\b(?:signal|wifi|wi fi|connection|reception|coffee|tea|battery|password|excuse) (?:is |was "
    r"|seems |so |very |really |too |a bit |kinda )*weak\b",
    r"\b(?:protein|milk|milkshake|smoothie|chocolate|vanilla|strawberry|meal|breakfast|banana)"
    r" shakes?\b",
    r"\bshak(?:ing|e|es) (?:hands )?(?:with|off|up)\b|\bshook (?:hands|it off)\b",
    r"\bfitting (?:in|it|into|room|my|the|them|everything|exercise)\b",
    r"\b(?:keep|keeping|stay|staying|get|getting|feel|feeling|feels|felt|so|very|more) fit\b",
    r"^(?:i |sorry |sorry i |sorry , i |sorry , )?(?:cant|cannot|can not) talk (?:now|right now"
    r"|rn|atm|at the moment|at work|busy|im busy|driving|in a meeting|later)\b",
    r"\b(?:mild|slight|little|small|minor|tiny|light|leve|ligero|pequeno) (?:\w+ )?"
    r"(?:headaches?|dolor de cabeza)\b",
    r"\bpoco de dolor de cabeza\b",
    r"\bconfusing\b",
    r"\bbreathing (?:exercises?|exercise|practice|session|technique|app|meditation)\b",
    r"\b(?:deep|slow|mindful|box) breathing\b|\bejercicios? de respiracion\b",
    r"\bdrop(?:ping|ped)? (?:off|by)\b",
    r"\bchest of drawers\b|\bchest (?:day|workout|press|exercises?)\b",
    r"\b(?:fever|fiebre) (?:dream|pitch)\b|\bcabin fever\b|\bspring fever\b",
    r"\bdying (?:to|for|of laughter)\b|\b(?:killing it|killed it)\b",
    r"\bdie (?:of|from) (?:boredom|laughter|laughing|embarrassment|shame)\b",
    r"\b(?:cut|burned|burnt) (?:my ?self|herself|himself) (?:shaving|cooking|chopping|on the"
    r"|in the kitchen|with the|while)\b",
    r"\b(?:weight|pain|fear|worries|stress|the kids|the dog) (?:\w+ )?fell\b",
    r"\btrip(?:ped)? (?:to|up)\b",
    r"\bslipped (?:my mind|out|in a|it in)\b",
    r"\bsick of\b",
    r"\bsee (?:you|u|ya)\b",
    r"\binfect(?:ious)? (?:laugh|smile)\b",
    r"\bhit (?:the|my) (?:gym|goal|target|bed|sack|hay|road)\b",
    r"\bpara (?:la|el|los|las)? ?tos\b",
)

_NEGATORS = frozenset(
    _split(
        """
        no not never without none neither nor didnt dont doesnt havent hasnt hadnt wasnt werent
        isnt arent aint nothing zero denies denied sin nunca ni ningun ninguna ninguno ningunos
        ningunas tampoco nada cero wont
        """
    )
)
_CONTRAST = frozenset(
    _split(
        """
        but however although though except yet still only just apart besides pero aunque sino
        excepto salvo solo solamente menos
        """
    )
)
_FILLERS = frozenset(
    _split(
        """
        new any more recent real major big obvious signs sign symptoms symptom of a an the had
        have has having i she he they we im is am are was were been be felt feel feeling feels get
        got getting experienced experiencing noticed notice seen saw today yesterday further other
        episodes episode problems problem issues issue with w or and nor also really seem seems
        seemed look looks looked appear appears longer more anymore sign further
        nuevo nueva nuevos nuevas he ha han tenido tuve tuvo hay hubo tengo tiene signos sintomas
        sintoma de la el los las un una mas hoy ayer me se le siento sentido estoy esta otra otro
        episodios o y e u ni tambien ella ya parece
        """
    )
)
_MAX_WALK = 8

# "fever is gone", "la fiebre se fue": a term followed by one of these is resolved.
_RESOLVED_AFTER = re.compile(
    r"^(?:(?:is|has|have|was|finally|now|already|completely|ya|se|me|le|la|el) )*"
    r"(?:gone|free|went away|go away|resolved|broke|broken|over|passed|stopped|cleared|cleared up"
    r"|disappeared|fue|paso|quito|desaparecio|bajo|termino)\b"
)

# Hypotheticals: the clause after one of these is not a report.
_IF_WORDS = frozenset(_split("if unless incase"))
_IF_PHRASES: tuple[tuple[str, ...], ...] = (
    ("in", "case"),
    ("en", "caso"),
    ("por", "si"),
    ("what", "if"),
    ("y", "si"),
)
_DOUBT_BEFORE_IF = frozenset(
    _split("sure know knows wonder wondering unsure check ask asking tell see idk se sabe")
)
_SUBJECTS = frozenset(_split("i she he we they you it my her his mom dad me se le nos yo ella el"))
_QUESTION_WORDS = frozenset(
    _split("should what when call do llamo llamar debo hago que cuando aviso")
)

# Someone else's history, or an old event already seen.
_HISTORY_MARKERS = tuple(
    re.compile(p)
    for p in (
        r"\bhistory of\b|\bfamily history\b|\bruns in (?:the|my|our|his|her) family\b",
        r"\b(?:years|decades) ago\b|\bwhen (?:i|she|he|they) (?:was|were) (?:young|little|a kid"
        r"|a child|a baby|younger|in school|pregnant)\b|\bas a (?:kid|child|teenager|baby)\b",
        r"\bantecedentes\b|\bhace (?:muchos )?anos\b|\bde (?:joven|nin[oa]|pequen[oa]|chic[oa])\b"
        r"|\ben (?:la|mi|su) familia\b",
        r"\bin (?:19|20)[0-9][0-9]\b|\ben (?:19|20)[0-9][0-9]\b",
        # People who are never the patient, on an old event.
        r"\b(?:friend|neighbou?r|coworker|colleague|cousin|amig[oa]|vecin[oa]|prim[oa]"
        r"|companer[oa])s?\b[^.]*\b(?:last (?:year|month|summer|winter)|(?:years|months) ago"
        r"|ano pasado|mes pasado|hace (?:un|una|dos|tres|\d+|unos|unas|muchos|muchas) \w+)\b",
    )
)
_RELATIVE_HABITUAL = re.compile(
    r"\b(?:my|his|her|our|their|mi|su|mis|sus) (?:mother|father|mom|mum|dad|grandma|grandpa"
    r"|grandmother|grandfather|brother|sister|uncle|aunt|cousin|friend|neighbou?r|son|daughter"
    r"|madre|padre|mama|papa|abuela|abuelo|hermano|hermana|tio|tia|prim[oa]|amig[oa]|vecin[oa]"
    r"|hij[oa])s? (?:\w+ ){0,2}?(?:had|has had|used to have|used to get|suffered|suffers|died"
    r"|passed away|tuvo|tenia|sufria|sufrio|padecia|murio|padece)\b"
)
_RELATIVE_HAS = re.compile(
    r"\b(?:my|his|her|our|their|mi|su|mis|sus) (?:mother|father|mom|mum|dad|grandma|grandpa"
    r"|grandmother|grandfather|brother|sister|uncle|aunt|cousin|friend|neighbou?r|son|daughter"
    r"|madre|padre|mama|papa|abuela|abuelo|hermano|hermana|tio|tia|prim[oa]|amig[oa]|vecin[oa]"
    r"|hij[oa])s? (?:also |too )?(?:has|have|suffers from|tiene|padece|sufre de)"
    r" (?:\w+ ){0,2}?(?:epilepsy|epilepsia|dementia|demencia|asthma|asma|migraines|migranas"
    r"|parkinsons?|alzheimers?)\b"
)
_RELATIVE_DIED = re.compile(
    r"\b(?:my|his|her|our|their|mi|su|mis|sus) (?:\w+ ){0,2}?(?:died|passed away|murio|fallecio)"
    r" (?:of|from|de|por|after|after a|tras)\b"
)
_PLURAL_OR_CHRONIC = re.compile(
    r"\b(?:seizures|convulsions|epilepsy|migraines|strokes|falls|fevers|convulsiones|epilepsia"
    r"|migranas|caidas|ataques|derrames|dementia|demencia|asthma|asma|cancer|depression"
    r"|depresion)\b"
)
_NOW = re.compile(
    r"\b(?:now|today|tonight|this morning|last night|right now|again|still|currently|just now"
    r"|hoy|ahora|anoche|esta manana|otra vez|de nuevo|todavia|sigue|ahorita)\b"
)
_PAST = re.compile(
    r"\b(?:last (?:week|month|year|time)|ago|yesterday|earlier|previous|before|back in"
    r"|el (?:mes|ano) pasado|la semana pasada|hace|ayer|antes)\b"
)
_SEEN = re.compile(
    r"\b(?:doctor|dr|er|ed|emergency room|a and e|nurse|clinic|hospital|team|urgent care"
    r"|neurologist|oncologist|medico|doctora|enfermera|urgencias|clinica)\b"
    r"[^.]{0,40}?\b(?:checked|check|saw|seen|looked|examined|cleared|said (?:\w+ ){0,3}?"
    r"(?:fine|ok|okay|normal|nothing)|reviso|revisaron|vio|checo|dijo que (?:\w+ ){0,2}?bien"
    r"|ya (?:lo|la|me) vio)\b"
    r"|\b(?:checked|seen|examined|cleared|looked at|treated) (?:by|at) (?:the |my |a |her |his )?"
    r"(?:doctor|dr|er|ed|nurse|clinic|hospital|team|urgent care)\b"
    r"|\balready (?:seen|checked|treated|looked at)\b|\bya (?:me|lo|la) (?:revis\w*|vio|atend\w*)\b"
)


def _alternation(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_COMPILED = tuple((f, _alternation(ps)) for f, ps in _PATTERNS.items())
_COMPILED_CHECKIN = tuple((f, _alternation(ps)) for f, ps in _CHECKIN_PATTERNS.items())
_COMPILED_MASKS = tuple(re.compile(p) for p in _MASKS)


@dataclass(frozen=True, slots=True)
class _Hit:
    flag: RedFlag
    first: int  # token index
    last: int  # token index, inclusive
    negated: bool


def _prepare(body: str) -> str:
    return expand(fold(body))


def _scan(prepared: str, *, checkin: bool) -> tuple[list[str], list[_Hit]]:
    tokens = _tokens(prepared)
    text = " ".join(tokens)
    starts: list[int] = []
    pos = 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    patterns = _COMPILED + _COMPILED_CHECKIN if checkin else _COMPILED
    found = [
        (flag, m.start(), m.end())
        for flag, pattern in patterns
        for m in pattern.finditer(text)
        if m.start() != m.end()
    ]
    if not found:
        return tokens, []  # most texts: no term at all, so no idiom masks to compute
    masked = [(m.start(), m.end()) for p in _COMPILED_MASKS for m in p.finditer(text)]
    raw: list[tuple[RedFlag, int, int]] = []
    for flag, start, end in found:
        if any(a <= start < b for a, b in masked):
            continue
        first = bisect_right(starts, start) - 1
        last = bisect_right(starts, end - 1) - 1
        raw.append((flag, first, last))
    if not raw:
        return tokens, []
    in_terms = {i for _, a, b in raw for i in range(a, b + 1)}
    question = "?" in prepared
    discounted = _discounted_segments(tokens, text)
    hits = []
    for f, a, b in raw:
        void = (
            _negated(tokens, a, in_terms)
            or _resolved(tokens, b)
            or _hypothetical(tokens, a, question)
            or (f not in CRISIS_FLAGS and discounted(a))
        )
        hits.append(_Hit(f, a, b, void))
    return tokens, hits


def _negated(tokens: list[str], first: int, in_terms: set[int]) -> bool:
    i = first - 1
    for _ in range(_MAX_WALK):
        if i < 0:
            return False
        tok = tokens[i]
        if tok == "." or tok in _CONTRAST:
            return False
        if tok in _NEGATORS and i not in in_terms:
            # "No, she fell": a bare no answers the question; it does not negate what follows.
            return tokens[i + 1] != ","
        if tok == "," or tok in _FILLERS or tok in _NEGATORS or i in in_terms:
            i -= 1
            continue
        return False
    return False


def _resolved(tokens: list[str], last: int) -> bool:
    after = " ".join(tokens[last + 1 : last + 6])
    return bool(after) and _RESOLVED_AFTER.match(after) is not None


def _if_at(tokens: list[str], i: int) -> int:
    """Length of the "if" marker that ends at token ``i`` (0 when there is none)."""
    if tokens[i] in _IF_WORDS:
        return 1
    if i >= 1 and (tokens[i - 1], tokens[i]) in _IF_PHRASES:
        return 2
    if tokens[i] == "si":
        return 1
    return 0


def _hypothetical(tokens: list[str], first: int, question: bool) -> bool:
    i = first - 1
    while i >= 0 and first - i <= 10:
        tok = tokens[i]
        if tok in (".", ",") or tok in _CONTRAST:
            return False
        size = _if_at(tokens, i)
        if size:
            start = i - size + 1
            before = tokens[start - 1] if start >= 1 else "."
            if before in _DOUBT_BEFORE_IF or (start >= 2 and tokens[start - 2] == "not"):
                return False  # "not sure if she fell", "no sé si se cayó": doubt, not a maybe
            if tokens[i] == "si" and size == 1 and before in (".", ","):
                # Sentence-initial "si" is "yes" unless a question or a main clause follows.
                rest = tokens[first:]
                if not (question or "," in rest):
                    return False
            return not _main_clause(tokens[i + 1 : first])
        i -= 1
    return False


def _main_clause(between: list[str]) -> bool:
    """True when a second subject starts a main clause: "if I stand up I get dizzy"."""
    groups = 0
    previous = False
    for tok in between:
        is_subject = tok in _SUBJECTS
        if is_subject and not previous:
            groups += 1
        previous = is_subject
    return groups >= 2


def _discounted_segments(tokens: list[str], text: str) -> _Discount:
    """Which token indexes sit in someone else's history or an old event already seen."""
    if _PAST.search(text) and _SEEN.search(text) and not _NOW.search(text):
        return _Discount(None)
    segments: list[tuple[int, int]] = []
    start = 0
    for i, tok in enumerate(tokens):
        if tok == "." or tok in _CONTRAST:
            segments.append((start, i))
            start = i + 1
    segments.append((start, len(tokens)))
    void: list[tuple[int, int]] = []
    for a, b in segments:
        segment = " ".join(tokens[a:b])
        if not segment or _NOW.search(segment):
            continue
        history = (
            any(p.search(segment) for p in _HISTORY_MARKERS)
            or _RELATIVE_HAS.search(segment) is not None
            or _RELATIVE_DIED.search(segment) is not None
            or (
                _RELATIVE_HABITUAL.search(segment) is not None
                and _PLURAL_OR_CHRONIC.search(segment) is not None
            )
        )
        if history:
            void.append((a, b))
    return _Discount(tuple(void))


@dataclass(frozen=True, slots=True)
class _Discount:
    spans: tuple[tuple[int, int], ...] | None  # None: the whole message

    def __call__(self, index: int) -> bool:
        if self.spans is None:
            return True
        return any(a <= index < b for a, b in self.spans)


def _ordered(flags: Iterable[RedFlag]) -> tuple[RedFlag, ...]:
    return tuple(sorted(set(flags)))


# A decision asks about the same body several times (the reply parser, the check-in, the
# triage): a few-entry cache makes the repeats free without keeping message text around.
@lru_cache(maxsize=16)
def find_red_flags(body: str) -> tuple[RedFlag, ...]:
    """Red-flag symptoms mentioned (and not negated) in ``body``, in RedFlag order, no repeats."""
    _, hits = _scan(_prepare(body), checkin=False)
    return _ordered(h.flag for h in hits if not h.negated)


# --- check-in answers ---------------------------------------------------------------------------

_CHECKIN_FILLER = frozenset(
    _split(
        """
        and y e plus number numbers numero numeros num no nr today hoy only just solo solamente
        yes si the los las el la thanks thank you ty thx gracias
        """
    )
)
_CLEAR_WORDS = frozenset(
    _split(
        """
        no nope nah none nothing zero cero ninguno ninguna ningun nada nil fine good ok okay well
        great normal all everything bien todo todos symptoms symptom sintomas sintoma new nuevo
        nuevos today hoy im i am she he is shes hes feeling feel estoy esta me siento of them de
        those these eso esos ellos at thanks gracias thank you ty same as usual igual changes change
        cambios novedad novedades so far por ahora sin above the los las de anteriores them
        here aqui issues issue problems problem problemas concerns thanks ty gracias
        had have has having any been experienced there were was tuvo tuve ha he han tenido hubo
        hay ninguna
        """
    )
)
# At least one of these must be present: "ok" alone acknowledges the message, it does not answer.
_STRONG_CLEAR = frozenset(
    _split(
        """
        no nope nah none nothing zero cero ninguno ninguna ningun nada nil fine good well great
        normal bien igual same
        """
    )
)
_POSITIVE = frozenset(_split("good fine well great ok okay bien normal"))
_AFFIRMATIVE = frozenset(_split("yes si yeah yep yup sip"))
_AFFIRMATIVE_FILLER = frozenset(
    _split("some a few little bit un poco algunos algunas algo i do have")
)


def parse_checkin(body: str) -> CheckinAnswer:
    """Read a reply to the symptom check-in: "0"/"none"/"nada" clear, "1,4" flags, words via
    ``find_red_flags`` (plus the bare symptom names the question used)."""
    tokens, hits = _scan(_prepare(body), checkin=True)
    flags = _ordered(h.flag for h in hits if not h.negated)
    if flags:
        return CheckinAnswer(understood=True, flags=flags)
    covered = {i for h in hits for i in range(h.first, h.last + 1)}
    rest = [t for i, t in enumerate(tokens) if i not in covered and t not in ".,"]
    # ASCII digits only: "፩".isdigit() is True but int() refuses it.
    numbers = [t for t in rest if t.isascii() and t.isdigit()]
    words = [t for t in rest if not (t.isascii() and t.isdigit())]
    if numbers:
        if any(w not in _CHECKIN_FILLER for w in words):
            return CheckinAnswer(understood=False)
        if any(len(n) > 2 or int(n) > 7 for n in numbers):
            return CheckinAnswer(understood=False)
        chosen = {int(n) for n in numbers} - {0}
        if chosen:
            return CheckinAnswer(understood=True, flags=_ordered(RedFlag(v) for v in chosen))
        return CheckinAnswer(understood=True)
    if not words:
        return CheckinAnswer(understood=False)
    if all(w in _AFFIRMATIVE or w in _AFFIRMATIVE_FILLER for w in words) and any(
        w in _AFFIRMATIVE for w in words
    ):
        return CheckinAnswer(understood=True, unspecified=True)
    negated_any = any(h.negated for h in hits)
    if _negates_wellbeing(tokens, covered):
        return CheckinAnswer(understood=False)  # "not good", "no estoy bien"
    for w in words:
        if w not in _CLEAR_WORDS and not (negated_any and w in _NEGATORS):
            return CheckinAnswer(understood=False)
    if not negated_any and not any(w in _STRONG_CLEAR for w in words):
        return CheckinAnswer(understood=False)
    return CheckinAnswer(understood=True)


def _negates_wellbeing(tokens: list[str], covered: set[int]) -> bool:
    for i, tok in enumerate(tokens):
        if tok not in _NEGATORS or i in covered:
            continue
        for j in range(i + 1, min(i + 4, len(tokens))):
            if tokens[j] in ".," or j in covered:
                break
            if tokens[j] in _POSITIVE:
                return True
    return False
