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
  Anything inside the core breaks the match: ``"stop texting me"`` is not a keyword (it is a
  revocation), and neither is ``"stop 2"``.
* Accents are folded, so ``SÍ`` and ``si`` are YES and ``stöp`` opts out: for the opt-out family a
  false match errs on the side the law wants.
* YES is reported for ``yes`` and Spanish ``si``/``sí``. The caller decides what it means: it
  opts a patient in (double opt-in, or after STOP) and otherwise falls through to reply parsing.
* ``is_revocation`` never fires on an exact keyword (``classify_compliance`` owns those), so a
  caller that checks both never handles one message twice. Spanish ``para``/``pare``/``basta``/
  ``no más`` are revocations, not keywords: carriers do not honour them, so we pause the patient
  and alert the clinician rather than send the carrier-style STOP confirmation.
* ``"wrong number"`` is a revocation: texting health nudges to a stranger must pause at once.
* Complaints such as ``"stop texting me so early"`` count as revocations: pausing and letting a
  clinician call back is the safe reading. ``"don't stop the messages"`` is not.
"""

from __future__ import annotations

import enum
import re
import unicodedata

__all__ = [
    "STOP_FAMILY",
    "ComplianceKeyword",
    "classify_compliance",
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


def _trim(folded: str) -> str:
    start, end = 0, len(folded)
    while start < end and not folded[start].isalnum():
        start += 1
    while end > start and not folded[end - 1].isalnum():
        end -= 1
    return folded[start:end]


def classify_compliance(body: str) -> ComplianceKeyword | None:
    """The carrier-style keyword this message is, or None. See the module docstring."""
    return _KEYWORDS.get(_trim(fold(body)))


def _clean(body: str) -> str:
    """Folded words separated by single spaces; punctuation and emoji become separators."""
    return " ".join(re.findall(r"[^\W_]+", fold(body)))


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
        r"\bequivocad[oa]s? de numero\b",
        r"\b(?:basta|suficiente) (?:de|con) (?:los |estos |tus |sus )?(?:mensajes|textos)\b",
        r"\b(?:suspender|suspendan|pausar|pausen|detener|detengan) (?:los |estos |sus )?"
        r"(?:mensajes|textos|recordatorios)\b",
    )
)

# Messages that revoke only when they are the whole message: "para" is a preposition inside a
# sentence ("para mañana lo hago") but a command on its own.
_POLITE = r"(?:please|pls|plz|ok|okay|just|now|already|ya|por favor|porfa|porfavor|pf|x favor|oye)"
_WHOLE = re.compile(
    rf"(?:{_POLITE} )*"
    r"(?:stop|stop it|quit|quit it|cancel|end|unsubscribe|enough|enough already|no more"
    r"|go away|not interested|leave me alone|para|pare|paren|parale|parenle|basta|ya basta|alto"
    r"|baja|no mas|cancelar|cancela|detente|detenganse|es suficiente|suficiente|ya no quiero"
    r"|no me interesa|no estoy interesad[oa])"
    rf"(?: (?:{_POLITE}|it|asap|thanks|thank you|gracias|de una vez|no mas))*"
)
_NEGATORS_BEFORE = frozenset(("dont", "not", "never", "didnt", "wont", "doesnt", "no"))


def is_revocation(body: str) -> bool:
    """True when the patient (or caregiver) asks in their own words to stop being texted."""
    if classify_compliance(body) is not None:
        return False
    text = _clean(body)
    if not text:
        return False
    if _WHOLE.fullmatch(text):
        return True
    for pattern in _NEGATABLE:
        for m in pattern.finditer(text):
            before = text[: m.start()].split()[-2:]
            if not _NEGATORS_BEFORE.intersection(before):
                return True
    return any(p.search(text) for p in _ANYWHERE)
