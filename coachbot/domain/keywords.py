"""Compliance keywords, plain-language revocations, and the text folding every reply parser shares.

Pure functions: no I/O, no logging (message bodies are health data and never reach a log line).

Decisions
---------
* ``fold`` is the one normalisation: invisible characters (zero-width joiners, bidi marks,
  variation selectors, skin-tone modifiers, NUL and other controls) are removed or become spaces,
  then NFKC (so fullwidth ``ＳＴＯＰ`` and styled letters read as ASCII), then casefold, then
  accents are dropped (``sí`` -> ``si``, ``mañana`` -> ``manana``), and apostrophes vanish so
  ``don't`` / ``don’t`` / ``dont`` are one word.
* A compliance keyword is the whole message once everything that is not a letter or digit is
  trimmed from both ends. Surrounding emoji count as punctuation: ``"STOP 🛑"`` opts out, because
  a patient who adds an emoji to STOP still means STOP and carriers honour it too.
* Phones space and decorate keywords: when the trimmed message is not a keyword, its letters are
  joined with every space, dot, dash or emoji between them removed (``"S T O P"``, ``"s.t.o.p"``,
  ``"stop all"``, ``"opt out"``, ``"un subscribe"``), Cyrillic and Greek look-alike letters read
  as Latin, a zero between letters as an o (``"ST0P"``), and a held-down letter once
  (``"stoooop"``, ``"helppp"``). The same word repeated (``"stop stop"``) is that word.
  Anything else in the message breaks the match: ``"stop texting me"`` is not a keyword (it is a
  revocation), and neither is ``"stop 2"``.
* Misspellings: a one-letter mistake (insert, delete, substitute, swap) in an opt-out keyword of
  six letters or more (STOPALL, UNSUBSCRIBE, CANCEL, REVOKE, OPTOUT, CANCELAR, DETENER) opts out:
  ``"unsubscibe"``, ``"cancle"``, ``"revok"``. For the four-letter STOP and QUIT only a swap or a
  doubled letter counts (``"stpo"``, ``"sotp"``, ``"stopp"``, ``"quti"``): their other one-edit
  neighbours are everyday words ("step", "shop", "quiz"), while a swapped STOP is never an
  answer to anything. ``"cancer"`` is one edit from CANCEL and is excluded. END and the short
  Spanish words (BAJA, ALTO, PARA) are exact only ("alot" is not ALTO).
* Spanish one-word stops are full opt-outs, exactly like STOP: PARAR, PARA, PARE, PAREN, ALTO,
  BAJA, CANCELAR, CANCELA, DETENER, DETENTE, BASTA, DESUSCRIBIR(ME), REVOCAR. A carrier keyword
  with "all"/"todo" ("cancel all", "parar todo"), "remove me", "salir" and "quitar" are
  revocations. Two or more words in plain
  language (``"ya no quiero mensajes"``, ``"dame de baja"``) are revocations.
* Accents are folded, so ``SÍ`` and ``si`` are YES and ``stöp`` opts out: for the opt-out family a
  false match errs on the side the law wants.
* YES is reported for ``yes`` and Spanish ``si``/``sí``. The caller decides what it means: it
  opts a patient in (double opt-in, or after STOP) and otherwise falls through to reply parsing.
* ``is_revocation`` never fires on an exact keyword (``classify_compliance`` owns those), so a
  caller that checks both never handles one message twice. It reads the message with misspelled
  opt-out words corrected (``"stpo texting me"``, ``"unsubscibe me"``).
* ``"wrong number"`` is a revocation: texting health nudges to a stranger must pause at once.
* Complaints such as ``"stop texting me so early"`` count as revocations: pausing and letting a
  clinician call back is the safe reading. ``"don't stop the messages"`` is not.
* ``"cancel my subscription"``, ``"I'm done with these texts"``, ``"quiero darme de baja"``,
  ``"sáquenme de la lista"`` are revocations.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from functools import lru_cache

__all__ = [
    "STOP_FAMILY",
    "ComplianceKeyword",
    "classify_compliance",
    "collapse_repeats",
    "damerau_levenshtein_1",
    "fold",
    "is_revocation",
]


class ComplianceKeyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    YES = "yes"


_KEYWORDS: dict[str, ComplianceKeyword] = {
    **dict.fromkeys(
        ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"),
        ComplianceKeyword.OPT_OUT,
    ),
    # The Spanish one-word stops: full opt-outs, exactly like STOP.
    **dict.fromkeys(
        (
            "parar",
            "para",
            "pare",
            "paren",
            "alto",
            "baja",
            "cancelar",
            "cancela",
            "detener",
            "detente",
            "detengan",
            "basta",
            "desuscribir",
            "desuscribirme",
            "desuscribirse",
            "revocar",
        ),
        ComplianceKeyword.OPT_OUT,
    ),
    **dict.fromkeys(("start", "unstop"), ComplianceKeyword.OPT_IN),
    **dict.fromkeys(("yes", "si"), ComplianceKeyword.YES),
    **dict.fromkeys(("help", "info", "ayuda"), ComplianceKeyword.HELP),
}

# Words the reply parser's typo matching must never produce or start from.
STOP_FAMILY: frozenset[str] = frozenset(
    w for w, k in _KEYWORDS.items() if k in (ComplianceKeyword.OPT_OUT, ComplianceKeyword.OPT_IN)
)

_APOSTROPHES = frozenset("'’‘`´ʼʹ′＇")
_SKIN_TONES = range(0x1F3FB, 0x1F400)
# Line and paragraph separators must keep separating sentences (negation scope ends there).
_AS_NEWLINE = frozenset("\u2028\u2029\u0085\r\v\f")


@lru_cache(maxsize=32)  # one inbound text is folded by several readers: fold it once
def fold(text: str) -> str:
    """Lower-case, accent-free, NFKC text with invisible characters removed; never raises."""
    # Apostrophes go before NFKC too: NFKC turns U+00B4 into a space plus a combining accent.
    pre = "".join(ch for ch in text if ch not in _APOSTROPHES)
    try:
        composed = unicodedata.normalize("NFKC", pre).casefold()
    except ValueError:  # pragma: no cover - defensive; normalize accepts any str today
        composed = pre.casefold()
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", composed):
        if ch in _APOSTROPHES or ord(ch) in _SKIN_TONES:
            continue
        if ch in _AS_NEWLINE:
            out.append("\n")
            continue
        if ch in "\n\t":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Mn", "Me", "Cf"):
            continue
        if cat in ("Cc", "Cs", "Co", "Zl", "Zp", "Zs"):
            out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


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


# Opt-out words whose one-letter misspellings still opt out (see the module docstring).
_TYPO_LONG = tuple(
    w for w, k in _KEYWORDS.items() if k is ComplianceKeyword.OPT_OUT and len(w) >= 6
)
_TYPO_SHORT = ("stop", "quit")
_NOT_TYPOS = frozenset(("cancer", "canceled", "cancels", "revoked", "detenerse", "stopall"))
# Cyrillic and Greek capitals that look like Latin ones, as they are after casefold.
_LOOKALIKES = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
        "і": "i", "ј": "j", "к": "k", "м": "m", "т": "t", "н": "h", "в": "b", "ο": "o",
        "ρ": "p", "τ": "t", "ν": "v", "ι": "i", "κ": "k", "ε": "e", "α": "a", "υ": "u",
    }
)  # fmt: skip


def collapse_repeats(word: str) -> str:
    """``word`` with runs of one letter made single: "stoooop" -> "stop"."""
    return "".join(ch for i, ch in enumerate(word) if i == 0 or word[i - 1] != ch)


# Keywords by their collapsed spelling, so a stretched keyword ("stoooop", "helppp") still reads.
_STRETCHED: dict[str, ComplianceKeyword] = {collapse_repeats(w): k for w, k in _KEYWORDS.items()}


def _swap_or_double(word: str, target: str) -> bool:
    if len(word) == len(target) + 1:
        return any(
            word[:i] + word[i + 1 :] == target and word[i] == word[i - 1]
            for i in range(1, len(word))
        )
    if len(word) == len(target):
        return damerau_levenshtein_1(word, target) and sorted(word) == sorted(target)
    return False


@lru_cache(maxsize=8192)  # words repeat across texts; a bounded cache of single words
def _opt_out_typo(word: str) -> str | None:
    """The opt-out keyword ``word`` misspells, if any (never for an exact keyword)."""
    if word in _KEYWORDS or word in _NOT_TYPOS or not word.isalpha():
        return None
    if not 3 <= len(word) <= 14:
        return None  # one edit from any opt-out keyword keeps the length within one
    for target in _TYPO_LONG:
        if abs(len(target) - len(word)) <= 1 and damerau_levenshtein_1(word, target):
            return target
    for target in _TYPO_SHORT:
        if _swap_or_double(word, target):
            return target
    return None


def _trim(folded: str) -> str:
    start, end = 0, len(folded)
    while start < end and not folded[start].isalnum():
        start += 1
    while end > start and not folded[end - 1].isalnum():
        end -= 1
    return folded[start:end]


def _compact(core: str) -> str:
    letters = core.translate(_LOOKALIKES)
    letters = re.sub(r"(?<=[a-z])0(?=[a-z]|$)", "o", letters)
    return "".join(ch for ch in letters if ch.isalnum())


# Asked several times per inbound text (triage, the reply parser's stop defence, revocation):
# a few-entry cache makes the repeats free without keeping message text around.
@lru_cache(maxsize=16)
def classify_compliance(body: str) -> ComplianceKeyword | None:
    """The carrier-style keyword this message is, or None. See the module docstring."""
    core = _trim(fold(body))
    found = _KEYWORDS.get(core)
    if found is not None or not core:
        return found
    compact = _compact(core)
    found = _KEYWORDS.get(compact) or _STRETCHED.get(collapse_repeats(compact))
    if found is not None:
        return found  # "S T O P", "stop all", "stoooop"
    words = re.findall(r"[^\W_]+", core.translate(_LOOKALIKES))
    if len(words) > 1 and len(set(words)) == 1:
        return _KEYWORDS.get(words[0])  # "stop stop"
    if _opt_out_typo(compact) is not None:
        return ComplianceKeyword.OPT_OUT
    return None


def _clean(body: str) -> str:
    """Folded words separated by single spaces; punctuation and emoji become separators;
    misspelled opt-out words are corrected."""
    words = re.findall(r"[^\W_]+", fold(body))
    return " ".join(_opt_out_typo(w) or w for w in words)


_MSG_NOUN = (
    r"(?:texts?|texting|txts?|txting|texing|text messages?|messages?|messaging|msgs?|reminders?"
    r"|sms|nudges?|notifications?|program|programme|service|contacting|calling|bothering"
    r"|sending|emails?)"
)
_STOP_VERB = r"(?:stop|quit|cease|end|cancel|pause|halt)"
_STOP_FILL = (
    r"(?:all|the|these|those|this|that|your|ur|sending|send|me|us|her|him|any|of|more|with"
    r"|getting|receiving|daily|them)"
)

# Phrases that revoke wherever they appear. The first group is checked for a negation in front
# ("please don't stop the messages") because its verb alone is a normal word.
_NEGATABLE = (re.compile(rf"\b{_STOP_VERB} (?:{_STOP_FILL} ){{0,4}}{_MSG_NOUN}\b"),)
_ANYWHERE = tuple(
    re.compile(p)
    for p in (
        rf"\bno more {_MSG_NOUN}\b",
        r"\b(?:dont|do not|never) (?:text|txt|message|msg|contact|sms|send|call)(?:ing)?"
        r" (?:me|us|her|him|them|this number|my mom|my dad)\b",
        rf"\b(?:dont|do not|no longer|never) (?:want|need) (?:(?:to|get|receive|receiving|getting"
        rf"|any|more|these|this|your|the|of|those|them) )*{_MSG_NOUN}\b",
        r"\bleave (?:me|us|her|him|them|my mom|my dad) alone\b",
        r"\bunsubscribe\b",
        r"\bunsub\b",
        r"\bopt (?:me |us |her |him )?out\b",
        r"\boptout\b",
        r"\b(?:take|remove|delete|drop|get) (?:me|us|her|him|them|my number|this number)"
        r" (?:off|out of|from)\b",
        r"\bwrong (?:number|person)\b",
        r"\b(?:cancel|end|stop|quit) (?:(?:my|the|this|our|her|his) )?(?:subscription|membership"
        r"|account|enrol+ment|registration|plan|participation)\b",
        rf"\b(?:im|i am|we are|were) (?:done|finished|through) with (?:the |these |this |your |all"
        rf" (?:the |these )?)?(?:{_MSG_NOUN}|program|programme|study|coaching)\b",
        r"\b(?:i|we) (?:quit|want out|am out|m out)\b(?! (?:smoking|drinking|my job|work))",
        r"\bi want out\b|\bcount me out\b|\bsign me out\b|\bsign (?:me|us) off\b",
        r"\b(?:delete|remove|erase) my (?:number|info|data|details)\b",
        r"\b(?:want|wanna|like|need) to (?:stop|quit|unsubscribe|cancel|opt out|end)"
        rf" (?:(?:the|these|this|getting|receiving|all|your) )*{_MSG_NOUN}\b",
        rf"\benough (?:of )?(?:the |these |your )?{_MSG_NOUN}\b",
        # Spanish.
        r"\bno mas (?:mensajes?|mensajitos|textos?|msjs?|msj|sms|recordatorios?|notificaciones?"
        r"|avisos?)\b",
        r"\bno (?:quiero|queremos|quiere|deseo|deseamos) (?:(?:recibir|mas|estos|esos|sus|los|tus"
        r"|ningun|ninguno|que me|que le) )*(?:mensajes?|textos?|msjs?|sms|recordatorios?"
        r"|notificaciones?|seguir|participar|el programa)\b",
        r"\bno (?:me |le |nos )?(?:manden|mande|mandes|envien|envie|envies|escriban|escriba"
        r"|escribas|molesten|moleste|molestes|contacten|contacte|textees)\b",
        r"\bdej(?:en|e|a|ar) de (?:escribir|mandar|enviar|molestar|textear|contactar)\w*",
        r"\b(?:para|pare|paren|parale) de (?:escribir|mandar|enviar|molestar|textear)\w*",
        r"\b(?:dejame|dejeme|dejenme|dejanos|dejala|dejalo|dejenla|dejenlo) en paz\b",
        r"\b(?:dar|darme|dame|denme|deme|darnos|darla|darlo|darle) de baja\b",
        r"\bcancel(?:ar|en|a) (?:la |mi |los |el |sus |las )?(?:suscripcion|mensajes|servicio"
        r"|programa|textos|recordatorios)\b",
        r"\bdes(?:uscrib|inscrib|suscrib)\w*",
        r"\bnumero equivocado\b",
        r"\b(?:quiero|queremos|quisiera|deseo) (?:darme de baja|darnos de baja|cancelar"
        r"|salirme|salir del programa|dejar el programa|desuscribirme|que (?:me )?(?:borren"
        r"|saquen|quiten|dejen))\b",
        r"\b(?:borr|saqu|quit|elimin)(?:en|e|a)(?:me|nos|la|lo)? (?:de (?:la|su|esta) lista|mi"
        r" numero|del programa)\b",
        r"\bya no (?:quiero|deseo) (?:participar|seguir|recibir|mas)\b",
        r"\bequivocad[oa]s? de numero\b",
        r"\b(?:basta|suficiente) (?:de|con) (?:los |estos |tus |sus )?(?:mensajes|textos)\b",
        r"\b(?:suspender|suspendan|pausar|pausen|detener|detengan|parar|paren|pare|cancelar"
        r"|cancelen|cancele) (?:los |estos |sus |mis |tus )?"
        r"(?:mensajes|textos|recordatorios)\b",
    )
)

# Messages that revoke only when they are the whole message: "para" is a preposition inside a
# sentence ("para mañana lo hago") but a command on its own.
_POLITE = (
    r"(?:please|pls|plz|ok|okay|just|now|already|ya|por favor|porfa|porfavor|pf|x favor|oye"
    r"|yes|yeah|no|nope|thanks|no thanks|no thank you|si|no gracias)"
)
_WHOLE = re.compile(
    rf"(?:{_POLITE} )*"
    r"(?:stop|stop it|quit|quit it|cancel|cancel it|end|unsubscribe|enough|enough already"
    r"|no more|go away|not interested|leave me alone|para|pare|paren|parale|parenle|basta"
    r"|ya basta|alto|baja|no mas|cancelar|cancela|detente|detenganse|es suficiente|suficiente"
    r"|ya no quiero|no me interesa|no estoy interesad[oa]|stop all|stopall|stop everything"
    r"|opt out|optout|parar|detener|de baja|remove|remove me|remove us|remove my number"
    r"|take me off|salir|quitar|darme de baja"
    r"|(?:stop|end|quit|cancel|parar|para|detener|detengan|cancelar|cancela|cancelen) (?:all"
    r"|everything|todo|todos|ya todo))"
    rf"(?: (?:{_POLITE}|it|asap|thanks|thank you|gracias|de una vez|no mas))*"
)
_NEGATORS_BEFORE = frozenset(("dont", "not", "never", "didnt", "wont", "doesnt", "no"))


_CLAUSE_BREAK = re.compile(r"[.!?;:,\n]+")


def _a_clause_asks_to_stop(body: str) -> bool:
    """A clause of its own that is a stop request, whatever stands beside it: "no thanks,
    stop", "please stop!! enough", "STOP. I fell" (the red flag is read separately)."""
    clauses = [_clean(part) for part in _CLAUSE_BREAK.split(fold(body))]
    clauses = [c for c in clauses if c]
    if len(clauses) < 2:
        return False
    return any(
        _WHOLE.fullmatch(c) or _KEYWORDS.get(c.replace(" ", "")) is ComplianceKeyword.OPT_OUT
        for c in clauses
    )


@lru_cache(maxsize=16)
def is_revocation(body: str) -> bool:
    """True when the patient (or caregiver) asks in their own words to stop being texted."""
    if classify_compliance(body) is not None:
        return False
    text = _clean(body)
    if not text:
        return False
    if _WHOLE.fullmatch(text) or _a_clause_asks_to_stop(body):
        return True
    for pattern in _NEGATABLE:
        for m in pattern.finditer(text):
            before = text[: m.start()].split()[-2:]
            if not _NEGATORS_BEFORE.intersection(before):
                return True
    return any(p.search(text) for p in _ANYWHERE)
