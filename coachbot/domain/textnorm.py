"""Texting shorthand, symptom emoji and temperature readings, rewritten as plain words.

Pure functions over text already passed through ``keywords.fold`` (lower case, no accents). Both
the red-flag matcher and the reply parser read the result, so "2day" is "today" and 🤒 is
"fever" for both, and neither has to know every spelling.

Temperatures (decided here, once)
---------------------------------
A reading is a number of two or three digits, optionally with a decimal part ("38.5", "38,5").

* With a unit ("38.5c", "101 f", "39 °c", "39 grados", "102 degrees"): Celsius counts from
  38.0 °C, Fahrenheit from 100.4 °F. "degrees" / "°" without a letter read as Celsius for
  34-44 and Fahrenheit for 93-113.
* With a decimal part and no unit: 38.0-44.9 is a Celsius fever and 100.4-109.9 a Fahrenheit
  fever, because no adherence answer (hours, minutes, 1-5) looks like "38.9" or "101.2".
* A whole number without a unit ("39", "102") is a temperature only when the same sentence is
  about temperature: "temp", "temperature", "fever", "fiebre", "calentura", "thermometer",
  "termómetro", "febre" before it, or "de fiebre" / "fever" right after it ("tengo 39 de
  fiebre"). Alone, "102" to an exercise prompt is 102 minutes, not a fever.
* A number followed by another unit (min, hours, kg, lb, %, reps, pasos, ...) is never a
  temperature. Readings below the threshold ("37.2", "temp 99") are normal readings.

A fever reading becomes the word ``feverreading`` and a normal one ``normalreading``, so the
matcher's negation and hypothetical rules apply to them like to any symptom word ("if it goes
over 38.5, do I call?" does not escalate).
"""

from __future__ import annotations

import re

__all__ = ["FEVER_READING", "NORMAL_READING", "expand"]

FEVER_READING = "feverreading"
NORMAL_READING = "normalreading"

# Emoji that say a symptom on their own. Fold has already removed skin tones, variation
# selectors and zero-width joiners, so "😵‍💫" arrives as "😵💫".
_EMOJI: dict[str, str] = {
    "🤒": "fever",
    "🥵": "fever",
    "🌡": "fever",
    "🥶": "chills",
    "🤮": "vomiting",
    "😵": "dizzy",
    "🤕": "head injury",
}

_SHORTHAND: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\b2day\b", "today"),
        (r"\b2nite\b|\b2night\b|\btonite\b", "tonight"),
        (
            r"\b(?:2moro|2morro|2morrow|2mrw|tmrw|tmrrw|tmr|tomoz|tomorow|tommorow|tommorrow)\b",
            "tomorrow",
        ),
        (r"\bb4\b", "before"),
        (r"\bw/o\b", "without"),
        (r"\bw/", "with "),
        (r"\b(?:bc|b/c|bcuz|bcoz|cuz|coz|cos)\b", "because"),
        (r"\b(?:cnt|cnat|cany|caint)\b", "cant"),
        (r"\b(?:dnt|dint)\b", "dont"),
        (r"\b(?:didnt|didint|dident)\b", "didnt"),
        (r"\bidk\b", "i dont know"),
        (r"\brn\b", "right now"),
        (r"\b(?:pls|plz|plse)\b", "please"),
        (r"\bu\b", "you"),
        (r"\bur\b", "your"),
        (r"\b(?:xq|pq|xk|porq)\b", "porque"),
        (r"\b(?:tb|tmb|tmbn)\b", "tambien"),
        (r"\b(?:q)\b", "que"),
        (
            r"\bsob\b(?= (?:when|walking|climbing|at|with|on|after|again|today|all))",
            "short of breath",
        ),
    )
)

_OTHER_UNITS = re.compile(
    r"\s*(?:min|mins|minute|minutes|minuto|minutos|m|h|hr|hrs|hour|hours|hora|horas|kg|kgs|kilo"
    r"|kilos|lb|lbs|pound|pounds|libras|%|percent|reps|rep|times|veces|steps|pasos|km|miles"
    r"|mile|mg|ml|mmhg|bpm|years|year|anos|ano|days|dias|am|pm|servings|porciones|glasses"
    r"|vasos|cups|tazas|pills|pastillas|x|of|de|out|sobre)(?![a-z])"
)
_READING = re.compile(
    r"(?<![\d.,/:])(\d{2,3})(?:[.,](\d{1,2}))?(?![\d:/])"
    r"(?:\s*[°º˚]?\s*(c|f|celsius|centigrados?|centigrade|fahrenheit|farenheit|faranheit)\b"
    r"|\s*([°º˚]|degrees?\b|degs?\b|grados?\b))?"
)
_CONTEXT = (
    r"(?:temp|temps|temperature|temprature|tempreture|temperture|fever|fevers|feaver|fiebre"
    r"|calentura|temperatura|thermometer|termometro|febre|febril)"
)
_CONTEXT_BEFORE = re.compile(rf"\b{_CONTEXT}\b")
_CONTEXT_AFTER = re.compile(rf"^\s*(?:de |of )?{_CONTEXT}\b")
_SENTENCE_END = re.compile(r"[!?\n;]|\.(?!\d)")


_ORDINAL_DEGREE = re.compile(r"\b(\d{2,3}(?:[.,]\d{1,2})?)o\b")
_HALF = re.compile(
    r"\b(\d{2,3}) (?:y medio|y media|con (?:5|cinco)|and a half|point (?:5|five)"
    r"|punto (?:5|cinco))\b"
)


def _classify(value: float, fahrenheit: bool | None) -> str | None:
    """The reading word for ``value``; ``fahrenheit`` None means the unit is to be guessed."""
    if fahrenheit is not True and 34 <= value < 45:
        return FEVER_READING if value >= 38.0 else NORMAL_READING
    if fahrenheit is not False and 93 <= value < 113:
        return FEVER_READING if value >= 100.4 else NORMAL_READING
    return None


def _reading(m: re.Match[str], text: str) -> str | None:
    whole, decimals, letter_unit, word_unit = m.groups()
    value = float(f"{whole}.{decimals}" if decimals else whole)
    if letter_unit is not None:
        return _classify(value, letter_unit.startswith("f"))
    if word_unit is not None:
        return _classify(value, None)
    if _CONTEXT_AFTER.match(text[m.end() :]):
        return _classify(value, None)  # "39 de fiebre", "101 fever"
    if _OTHER_UNITS.match(text, m.end()):
        return None  # "38 min", "40 kg", "2 of 3": another quantity
    sentence = _SENTENCE_END.split(text[max(0, m.start() - 48) : m.start()])[-1]
    about_temperature = bool(_CONTEXT_BEFORE.search(sentence))
    if decimals is None and not about_temperature:
        return None
    return _classify(value, None)


def _readings(text: str) -> str:
    out: list[str] = []
    last = 0
    for m in _READING.finditer(text):
        word = _reading(m, text)
        if word is None:
            continue
        out.append(text[last : m.start()])
        out.append(f" {word} ")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def expand(folded: str) -> str:
    """``folded`` with emoji as words, shorthand spelled out and temperatures replaced."""
    text = folded
    if any(ch in text for ch in _EMOJI):
        text = "".join(f" {_EMOJI[ch]} " if ch in _EMOJI else ch for ch in text)
    for pattern, repl in _SHORTHAND:
        text = pattern.sub(repl, text)
    if any(ch.isdigit() for ch in text):
        text = _HALF.sub(r"\1.5", text)  # "38 y medio", "38 con 5", "101 and a half"
        text = _ORDINAL_DEGREE.sub(r"\1°", text)  # "38º" folds to "38o"
        text = _readings(text)
    return text
