"""Red-flag symptoms in any reply, and answers to the daily symptom check-in.

The check-in asks: "Any new confusion, trouble finding words, changes in handwriting, shaking,
seizures, severe headache, weakness or falls? Reply 0 if none." Its numbering is ``RedFlag``.

coachbot does not diagnose: a flag only routes the message to people (the patient is told to call
the care team, the clinician gets an alert). So detection prefers recall over precision, and the
known false positives below are accepted because a clinician glancing at one is cheap.

Severity (clinician queue order; the patient is told to call in every case)

======================  ========  ======================================================
flag                    severity  why
======================  ========  ======================================================
1 CONFUSION             URGENT    ICANS hallmark; can progress within hours
2 WORD_FINDING          URGENT    expressive aphasia is often the first ICANS sign
3 HANDWRITING           HIGH      early ICANS sign, but rarely an emergency on its own
4 SEIZURE               URGENT    emergency
5 SEVERE_HEADACHE       URGENT    "worst headache" can be a bleed
6 WEAKNESS              HIGH      often chronic (neuropathy); URGENT triage is by the nurse
7 FALL                  URGENT    head injury risk on low platelets / anticoagulants
(none)                  NONE
======================  ========  ======================================================

``severity`` is the highest severity of the flags given.

Decisions and known trade-offs
------------------------------
* Negation: a negator (no, not, never, without, didn't, sin, ni, nunca, ningún, ...) directly
  before the term, or separated only by filler words (any, new, had, signs of, ...), conjunctions
  or other symptom terms, cancels it: "no seizures or falls", "no new confusion",
  "sin convulsiones", "didn't fall", "no me caí". A sentence break, "but"/"pero", or a comma
  right after the negator ends the scope: "No, she fell" and "no seizures but fell" are flags.
* Excluded idioms: "fell asleep / behind / through / apart", "falling asleep", hair falling out,
  "caída del cabello", "se cayó el internet", "weak coffee / signal / tea", "this weak" (a typo for
  week), "protein shake(s)", "shaking hands with", "fitting in", "keep fit", and a first-person
  "can't talk right now" at the start of a message (a busy patient, not aphasia; "she can't talk"
  still flags).
* Plain "headache" is not a flag in free text (too common to alert on); adjectives make it one
  ("bad", "worst", "pounding", "fuerte", ...). "migraine" always flags. In a check-in answer the
  symptom names themselves ("headache", "words", "writing", "falls") count, unless "mild"/"leve".
* Numbness alone is not a flag: chemotherapy neuropathy makes numb hands and feet chronic. It
  flags WEAKNESS when spreading, worse, new or sudden, or in the face, an arm, a leg or one side.
* Fainting, passing out and collapsing are FALL; "hard to wake" and "doesn't recognise me" are
  CONFUSION; face drooping is WEAKNESS.
* Accepted false positives: "temblor" (also an earthquake in Latin America), "shaky" (also low
  blood sugar), "can't walk today" (weather), "weak" meaning feeble in any sense not listed.
* Long symptom words (6+ letters) are matched with one typo ("siezure", "headach", "confussed").
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from coachbot.domain.keywords import fold

__all__ = [
    "CRISIS_FLAGS",
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
    CONFUSION = 1
    WORD_FINDING = 2
    HANDWRITING = 3
    SEIZURE = 4
    SEVERE_HEADACHE = 5
    WEAKNESS = 6
    FALL = 7


class Severity(enum.IntEnum):
    NONE = 0
    HIGH = 1
    URGENT = 2


_SEVERITY: dict[RedFlag, Severity] = {
    RedFlag.CONFUSION: Severity.URGENT,
    RedFlag.WORD_FINDING: Severity.URGENT,
    RedFlag.HANDWRITING: Severity.HIGH,
    RedFlag.SEIZURE: Severity.URGENT,
    RedFlag.SEVERE_HEADACHE: Severity.URGENT,
    RedFlag.WEAKNESS: Severity.HIGH,
    RedFlag.FALL: Severity.URGENT,
}


# Mental-health crisis categories: the crisis line as well as a person (none yet in this table).
CRISIS_FLAGS: frozenset[RedFlag] = frozenset()


def is_crisis(flags: Iterable[RedFlag]) -> bool:
    """True when any flag is a mental-health crisis."""
    return any(f in CRISIS_FLAGS for f in flags)


def severity(flags: Iterable[RedFlag]) -> Severity:
    """The most severe level among ``flags``; NONE when there are none."""
    return max((_SEVERITY[f] for f in flags), default=Severity.NONE)


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


def damerau_levenshtein_1(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one edit (insert, delete, substitute, swap)."""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


# --- tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W\d_]+|[0-9]+|[.!?;:\n]|[,/&+]|[^\w\s]")
_SENTENCE = frozenset(".!?;:\n")
_LIST = frozenset(",/&+")

# Misspellings of long symptom words are common and cheap to catch; short ones ("weak") are not,
# because their one-letter neighbours are everyday words ("week", "wear").
_FUZZY_TARGETS: tuple[str, ...] = (
    "seizure",
    "seizures",
    "convulsion",
    "convulsions",
    "convulsiones",
    "confused",
    "confusion",
    "confundido",
    "confundida",
    "headache",
    "headaches",
    "migraine",
    "migraines",
    "handwriting",
    "weakness",
    "debilidad",
    "temblores",
    "disoriented",
    "desorientado",
    "desorientada",
)
_FUZZY_SET = frozenset(_FUZZY_TARGETS)


def _tokens(folded: str) -> list[str]:
    out: list[str] = []
    for raw in _TOKEN.findall(folded):
        if raw in _SENTENCE:
            tok = "."
        elif raw in _LIST:
            tok = ","
        elif raw[0].isalpha() or raw[0].isdigit():
            tok = raw
        else:
            tok = "."  # emoji, dashes and other symbols end a negation's scope
        if tok == "." and out and out[-1] == ".":
            continue
        if len(tok) >= 6 and tok.isalpha() and tok not in _FUZZY_SET:
            for target in _FUZZY_TARGETS:
                if damerau_levenshtein_1(tok, target):
                    tok = target
                    break
        out.append(tok)
    return out


# --- patterns ------------------------------------------------------------------------------------

_CANT = r"(?:cant|cannot|can not|couldnt|could not|unable to|wont|isnt able to|not able to)"
_HARD = (
    r"(?:(?:trouble|difficulty|difficulties|problems?|hard time|struggl\w*)(?: to| with)?"
    r"|(?:hard|harder|difficult) to)"
)
_INTENSE = (
    r"(?:severe|bad|terrible|awful|worst|intense|horrible|horrendous|excruciating|splitting"
    r"|pounding|throbbing|huge|massive|killer|strong|crushing|unbearable|extreme|sudden|blinding"
    r"|really|very|so|super|real|major|debilitating|crazy|insane|extremely|new|worse|worsening"
    r"|awfull|nasty|wicked|ass)"
)
_HEADACHE = r"(?:headaches?|head aches?|migraines?|head pain)"
_LIMB = r"(?:arm|arms|leg|legs|hand|hands|side|face|foot|feet|body)"
_SUBJ = r"(?:her|his|my|the|mom|moms|dad|dads|mum|mums|their)"

_PATTERNS: tuple[tuple[RedFlag, str], ...] = (
    # 1 confusion (and other altered mental status)
    (RedFlag.CONFUSION, r"\bconfus(?:e|ed|es|ion|edness)\b"),
    (RedFlag.CONFUSION, r"\bdisorient(?:ed|ated|ation)\b"),
    (RedFlag.CONFUSION, r"\bdeliri(?:ous|um|o|a|ando)\b"),
    (
        RedFlag.CONFUSION,
        r"\b(?:doesnt|does not|didnt|did not|dont|do not|cant|cannot|couldnt) (?:know|tell)"
        r" where (?:i am|im|she is|shes|he is|hes|they are|we are)\b",
    ),
    (
        RedFlag.CONFUSION,
        r"\b(?:doesnt|does not|didnt|did not|cant|cannot|couldnt|wont) (?:recogni[sz]e|know)"
        r" (?:me|us|her|him|anyone|anybody|family|his wife|her husband|her kids|his kids)\b",
    ),
    (
        RedFlag.CONFUSION,
        r"\b(?:not making sense|making no sense|talking nonsense|not (?:her|him|my)self"
        r"|out of it|acting (?:strange|strangely|weird|odd|funny|confused)|hard to wake"
        r"|wont wake|cant wake|not waking|unresponsive|very drowsy|so drowsy)\b",
    ),
    (RedFlag.CONFUSION, r"\bconfundid[oa]s?\b"),
    (RedFlag.CONFUSION, r"\bconfus[oa]s?\b"),
    (RedFlag.CONFUSION, r"\bdesorientad[oa]s?\b"),
    (RedFlag.CONFUSION, r"\bno (?:sabe|se|sabia|sabe bien) donde (?:esta|estoy|estaba|estamos)\b"),
    (RedFlag.CONFUSION, r"\bno (?:me |nos |la |lo |le |los )?reconoc\w*"),
    (RedFlag.CONFUSION, r"\bno tiene sentido lo que (?:dice|habla)\b"),
    (RedFlag.CONFUSION, r"\bincoheren\w*"),
    (
        RedFlag.CONFUSION,
        r"\bno (?:se )?despierta\b|\bno (?:puedo|podemos) despertarl\w*|\bmuy somnolient[oa]\b",
    ),
    # 2 word finding / speech
    (
        RedFlag.WORD_FINDING,
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:find|finding|get|getting|say|saying|remember"
        r"|remembering) (?:out )?(?:the |my |her |his |right |any |some |correct )*words?\b",
    ),
    (RedFlag.WORD_FINDING, r"\bword (?:finding|find|retrieval)\b"),
    (
        RedFlag.WORD_FINDING,
        r"\bwords? (?:are |is |were |was |come out |coming out |came out |keep coming out |"
        r"get |got |getting )?(?:all )?(?:jumbled|mixed up|wrong|scrambled|garbled|backwards"
        r"|slurred|stuck)\b",
    ),
    (RedFlag.WORD_FINDING, r"\b(?:wrong|jumbled|mixed up|mixing up|mixes up) words?\b"),
    (RedFlag.WORD_FINDING, rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:talk|talking|speak|speaking)\b"),
    (RedFlag.WORD_FINDING, r"\b(?:not|stopped) (?:talking|speaking)\b"),
    (RedFlag.WORD_FINDING, r"\bslurr\w*|\bslurs?\b|\baphasi\w*"),
    (
        RedFlag.WORD_FINDING,
        r"\b(?:speech|speaking|talking|voice) (?:is |was |sounds |seems )?(?:slurred|garbled"
        r"|off|strange|weird|funny|slow|different|wrong)\b",
    ),
    (RedFlag.WORD_FINDING, r"\blost (?:her|his|my|the) words\b"),
    (RedFlag.WORD_FINDING, r"\bno (?:puedo|puede|podia|pudo|podemos) hablar\b"),
    (
        RedFlag.WORD_FINDING,
        r"\bno (?:encuentro|encuentra|encontraba|encontre|encuentro las|le salen|me salen"
        r"|salen) (?:las |la |mis |sus )?palabras?\b",
    ),
    (
        RedFlag.WORD_FINDING,
        r"\b(?:dificultad|dificultades|problemas?|trabajo|le cuesta|me cuesta) (?:para |al |con"
        r" |)?(?:hablar|encontrar (?:las )?palabras|las palabras)\b",
    ),
    (
        RedFlag.WORD_FINDING,
        r"\bhabla (?:rara|raro|arrastrada|enredada|mal|incoherente|lento|extrano|extrana)\b",
    ),
    (RedFlag.WORD_FINDING, r"\barrastra (?:las )?palabras\b|\bse le traba la lengua\b"),
    (RedFlag.WORD_FINDING, r"\bpalabras (?:equivocadas|incorrectas|revueltas)\b"),
    (RedFlag.WORD_FINDING, r"\b(?:ya no habla|dejo de hablar|afasia)\b"),
    # 3 handwriting
    (RedFlag.HANDWRITING, r"\bhand ?writt?ing\b|\bmicrographia\b"),
    (
        RedFlag.HANDWRITING,
        r"\b(?:writing|signature) (?:is |looks |has |got |seems |became |went )*(?:different"
        r"|weird|messy|shaky|strange|off|bad|worse|changed|sloppy|funny|wobbly|small|smaller"
        r"|tiny|illegible|unreadable|scribbly)\b",
    ),
    (
        RedFlag.HANDWRITING,
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:write|writing|sign|signing|hold (?:a |the |my )?pen)\b",
    ),
    (
        RedFlag.HANDWRITING,
        r"\bletra (?:esta |se ve |es |salio |sale )?(?:diferente|rara|raro|fea|temblorosa"
        r"|chueca|cambiada|ilegible|distinta|mal|peor|pequena|chiquita)\b",
    ),
    (RedFlag.HANDWRITING, r"\bcambios? (?:en |de )?(?:la |mi |su )?(?:letra|escritura)\b"),
    (RedFlag.HANDWRITING, r"\bno (?:puedo|puede|pude|pudo|podia) (?:escribir|firmar)\b"),
    (
        RedFlag.HANDWRITING,
        r"\bescritura (?:diferente|rara|cambiada|temblorosa|mal|peor|ilegible)\b",
    ),
    # 4 seizure / shaking
    (RedFlag.SEIZURE, r"\bseiz(?:ure|ures|ing)\b|\bsiez(?:ure|ures|ing)\b|\bseazures?\b"),
    (RedFlag.SEIZURE, r"\bconvuls\w*|\bconvulc\w*|\bepilep\w*"),
    (
        RedFlag.SEIZURE,
        r"\b(?:had|having|has|have|a|another|in|into|with) (?:a |an |another )?fits?\b",
    ),
    (RedFlag.SEIZURE, r"\bfitting\b"),
    (RedFlag.SEIZURE, r"\bshaking\b|\bshakes\b|\bshaky\b|\bshakey\b"),
    (RedFlag.SEIZURE, r"\btremors?\b|\btrembl\w*|\btwitch\w*|\bjerk(?:ing|s|ed|y)\b|\bspasms?\b"),
    (RedFlag.SEIZURE, r"\btembl\w*|\btiembl\w*|\bespasmos?\b|\bsacudidas?\b"),
    (RedFlag.SEIZURE, r"\bse (?:sacude|sacudia|sacudio|sacudian)\b"),
    (RedFlag.SEIZURE, r"\bataque epileptico\b|\bcrisis (?:convulsiva|epileptica)s?\b"),
    (
        RedFlag.SEIZURE,
        r"\b(?:le dio|tuvo|tuve|me dio|dio|un|otro) (?:un |otro )?ataque\b"
        r"(?! (?:de (?:ansiedad|panico|nervios|tos|risa|asma|celos|hambre)|al corazon|cardiaco))",
    ),
    # 5 severe headache
    (RedFlag.SEVERE_HEADACHE, rf"\b(?:{_INTENSE} ){{1,3}}{_HEADACHE}\b"),
    (
        RedFlag.SEVERE_HEADACHE,
        r"\b(?:headaches?|migraines?|head pain|head hurts?|head is hurting|head) (?:is |are |was"
        r" |so |very |really |getting |got |that is |thats |keeps |feels |kept |has been )*"
        r"(?:severe|terrible|awful|unbearable|killing me|the worst|worst|excruciating|horrible"
        r"|really bad|so bad|worse|intense|splitting|pounding|exploding|throbbing)\b",
    ),
    (RedFlag.SEVERE_HEADACHE, r"\bmigraines?\b|\bthunderclap\b"),
    (
        RedFlag.SEVERE_HEADACHE,
        r"\bhead hurts? (?:so bad|so much|really bad|a lot|like crazy|badly)\b",
    ),
    (
        RedFlag.SEVERE_HEADACHE,
        r"\bdolor(?:es)? de cabeza (?:muy |tan |bien |super |re |mas |demasiado )*(?:fuerte"
        r"|fuertes|intenso|intensos|terrible|horrible|insoportable|severo|tremendo|grave"
        r"|horroroso|espantoso|peor)\b",
    ),
    (
        RedFlag.SEVERE_HEADACHE,
        r"\b(?:fuerte|fuertes|terrible|horrible|tremendo|intenso|gran|severo|mucho|muchisimo"
        r"|insoportable|peor) dolor(?:es)? de cabeza\b",
    ),
    (RedFlag.SEVERE_HEADACHE, r"\bmigrana\b|\bjaqueca\b|\bcefalea\b"),
    (
        RedFlag.SEVERE_HEADACHE,
        r"\b(?:me|le) (?:duele|dolia|esta doliendo) (?:mucho|muchisimo|horrible|demasiado"
        r"|fuerte|muy fuerte) la cabeza\b|\b(?:me|le) (?:explota|estalla) la cabeza\b",
    ),
    # 6 weakness
    (RedFlag.WEAKNESS, r"\bweak(?:ness|er|ened|ening)?\b|\bweekness\b"),
    (RedFlag.WEAKNESS, r"\bno strength\b|\bparaly\w*|\bparaliz\w*"),
    (
        RedFlag.WEAKNESS,
        rf"\b(?:{_CANT}|{_HARD}) (?:to )?(?:walk|walking|stand|standing|lift|lifting|move|moving"
        r"|grip|gripping|hold|holding|get up|getting up|raise|raising)\b",
    ),
    (
        RedFlag.WEAKNESS,
        rf"\b{_LIMB} (?:is |are |feels |feel |went |gone |going |got |has gone |keeps )*"
        r"(?:weak|limp|heavy|dead|floppy|useless|droopy|drooping|giving out|gave out|gave way"
        r"|buckled|buckling)\b",
    ),
    (
        RedFlag.WEAKNESS,
        r"\bnumb(?:ness)? (?:is |are |has |keeps |getting |got |is getting )*(?:spreading|spread"
        r"|worse|worsening|moving up|going up|climbing)\b",
    ),
    (RedFlag.WEAKNESS, r"\b(?:new|sudden|spreading|worse|worsening) numbness\b"),
    (
        RedFlag.WEAKNESS,
        rf"\b(?:face|lip|lips|mouth|tongue|arm|leg|one side|side of {_SUBJ} (?:face|body))"
        r" (?:is |are |feels |went |gone |going )*numb\b",
    ),
    (RedFlag.WEAKNESS, r"\bnumb (?:face|arm|leg|side)\b"),
    (
        RedFlag.WEAKNESS,
        r"\b(?:face|mouth|smile) (?:is |looks )?(?:droop\w*|crooked|lopsided|uneven)\b"
        r"|\bdroopy face\b",
    ),
    (RedFlag.WEAKNESS, r"\bdebil(?:idad|es)?\b|\bsin fuerzas?\b|\bno tengo fuerzas?\b"),
    (
        RedFlag.WEAKNESS,
        r"\bno (?:puedo|puede|podia|pude|pudo) (?:caminar|andar|levantarme|levantarse|moverme"
        r"|moverse|mover (?:el|la|mi|su) \w+|pararme|pararse|agarrar|sostener)\b",
    ),
    (
        RedFlag.WEAKNESS,
        r"\b(?:brazo|pierna|piernas|mano|lado|cara) (?:esta |se siente |se le |se me )?"
        r"(?:debil|paralizad[oa]|caid[oa]|torcid[oa])\b",
    ),
    (
        RedFlag.WEAKNESS,
        r"\b(?:entumecimiento|adormecimiento) (?:que )?(?:se extiende|sube|avanza|peor|empeora"
        r"|nuevo|se esta extendiendo)\b",
    ),
    (RedFlag.WEAKNESS, r"\bpiernas? (?:no (?:me |le )?responden|(?:me |le )?fallan)\b"),
    # 7 fall (and collapse / fainting)
    (RedFlag.FALL, r"\bfell\b|\bfallen\b|\bfalls?\b|\bfalling\b|\bfallin\b"),
    (RedFlag.FALL, r"\bcollaps\w*|\bpassed out\b|\bfainted\b|\bfainting\b|\bblacked out\b"),
    (
        RedFlag.FALL,
        r"\bfound (?:her|him|them|mom|dad|my mom|my dad) on the (?:floor|ground)\b"
        rf"|\b{_CANT} get (?:up )?off the (?:floor|ground)\b",
    ),
    (RedFlag.FALL, r"\bme cai\b|\bse cayo\b|\bnos caimos\b|\b(?:me|se) (?:he|ha) caido\b"),
    (
        RedFlag.FALL,
        r"\bcaidas?\b|\bdesmay\w*|\bse fue al (?:suelo|piso)\b|\bcayo al (?:suelo|piso)\b",
    ),
)

# Symptom names count in a check-in answer, where they answer the question just asked.
_CHECKIN_PATTERNS: tuple[tuple[RedFlag, str], ...] = (
    (RedFlag.WORD_FINDING, r"\bwords?\b|\bspeech\b|\bpalabras?\b|\bhablar\b"),
    (RedFlag.HANDWRITING, r"\bwriting\b|\bletra\b|\bescritura\b"),
    (RedFlag.SEVERE_HEADACHE, rf"\b{_HEADACHE}\b|\bdolor(?:es)? de cabeza\b|\bduele la cabeza\b"),
    (RedFlag.WEAKNESS, r"\bdebil\w*|\bfuerza\b"),
)

_MASKS: tuple[str, ...] = (
    r"\b(?:fell|fallen|falls?|falling|fallin) (?:back )?(?:asleep|behind|through|apart|short"
    r"|for|in love|out of love|ill|sick|off the wagon|into (?:a |the )?(?:routine|habit)|in line"
    r"|silent|quiet|pregnant|victim)\b",
    r"\b(?:hair|pelo|cabello) (?:\w+ ){0,3}?(?:fell|falling|falls|fallen|fall)\b",
    r"\b(?:this|last|next|until|till|since last|in the) fall\b",
    r"\bcaidas? de(?:l| la| el)? (?:cabello|pelo|presion|bolsa|precios|internet|senal|sistema)\b",
    r"\bcara caida\b",
    r"\bse cayo (?:el|la) (?:internet|sistema|red|senal|llamada|pagina|app|aplicacion|wifi)\b",
    r"\b(?:this|last|next|per|every|each|whole|that) weak\b",
    r"\bweak (?:ago|coffee|tea|signal|wifi|wi fi|connection|excuse|moment|joke|point|spot"
    r"|password|reception|link|argument|beer|sauce)\b",
    r"\b(?:senal|wifi|internet|cafe|te) (?:muy |es |esta )?debil\b",
    r"\b(?:signal|wifi|wi fi|connection|reception|coffee|tea|battery|password|excuse) (?:is |was "
    r"|seems |so |very |really |too |a bit |kinda )*weak\b",
    r"\b(?:protein|milk|milkshake|smoothie|chocolate|vanilla|strawberry|meal|breakfast|banana)"
    r" shakes?\b",
    r"\bshak(?:ing|e) (?:hands )?(?:with|off)\b",
    r"\bfitting (?:in|it|into|room|my|the|them|everything|exercise)\b",
    r"\b(?:keep|keeping|stay|staying|get|getting|feel|feeling|feels|felt|so|very|more) fit\b",
    r"^(?:i |sorry |sorry i |sorry , i |sorry , )?(?:cant|cannot|can not) talk (?:now|right now"
    r"|rn|atm|at the moment|at work|busy|im busy|driving|in a meeting|later)\b",
    r"\b(?:mild|slight|little|small|minor|tiny|light|leve|ligero|pequeno) (?:\w+ )?"
    r"(?:headaches?|dolor de cabeza)\b",
    r"\bpoco de dolor de cabeza\b",
    r"\bconfusing\b",
)

_COMPILED = tuple((f, re.compile(p)) for f, p in _PATTERNS)
_COMPILED_CHECKIN = tuple((f, re.compile(p)) for f, p in _CHECKIN_PATTERNS)
_COMPILED_MASKS = tuple(re.compile(p) for p in _MASKS)

_NEGATORS = frozenset(
    _split(
        """
        no not never without none neither nor didnt dont doesnt havent hasnt hadnt wasnt werent
        isnt arent aint nothing zero denies denied sin nunca ni ningun ninguna ninguno ningunos
        ningunas tampoco nada cero
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
        episodes episode problems problem issues issue with w or and nor also really
        nuevo nueva nuevos nuevas he ha han tenido tuve tuvo hay hubo tengo tiene signos sintomas
        sintoma de la el los las un una mas hoy ayer me se le siento sentido estoy esta otra otro
        episodios o y e u ni tambien ella
        """
    )
)
_MAX_WALK = 8


@dataclass(frozen=True, slots=True)
class _Hit:
    flag: RedFlag
    first: int  # token index
    last: int  # token index, inclusive
    negated: bool


def _scan(folded: str, *, checkin: bool) -> tuple[list[str], list[_Hit]]:
    tokens = _tokens(folded)
    text = " ".join(tokens)
    starts: list[int] = []
    pos = 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    masked = [(m.start(), m.end()) for p in _COMPILED_MASKS for m in p.finditer(text)]
    patterns = _COMPILED + _COMPILED_CHECKIN if checkin else _COMPILED
    raw: list[tuple[RedFlag, int, int]] = []
    for flag, pattern in patterns:
        for m in pattern.finditer(text):
            if m.start() == m.end() or any(a <= m.start() < b for a, b in masked):
                continue
            first = bisect_right(starts, m.start()) - 1
            last = bisect_right(starts, m.end() - 1) - 1
            raw.append((flag, first, last))
    in_terms = {i for _, a, b in raw for i in range(a, b + 1)}
    hits = [_Hit(f, a, b, _negated(tokens, a, in_terms)) for f, a, b in raw]
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


def _ordered(flags: Iterable[RedFlag]) -> tuple[RedFlag, ...]:
    return tuple(sorted(set(flags)))


def find_red_flags(body: str) -> tuple[RedFlag, ...]:
    """Red-flag symptoms mentioned (and not negated) in ``body``, in RedFlag order, no repeats."""
    _, hits = _scan(fold(body), checkin=False)
    return _ordered(h.flag for h in hits if not h.negated)


# --- check-in answers ---------------------------------------------------------------------------

_CHECKIN_FILLER = frozenset(
    _split(
        """
        and y e plus number numbers numero numeros num no nr today hoy only just solo solamente
        yes si the los las el la
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
    folded = fold(body)
    tokens, hits = _scan(folded, checkin=True)
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
