"""Checks every message in the library against the rules a patient-facing SMS must obey."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from coachbot.content.library import (
    ALLOWED_VARIABLES,
    MessageLibrary,
    RenderedMessage,
    Template,
    TemplateError,
    Variant,
    variables_used,
)
from coachbot.domain.close_watch import DEFAULT_ITEMS, items_text
from coachbot.domain.segments import count_segments

# Long on purpose: a template that fits with these values fits for nearly every patient.
SAMPLE_VARIABLES: Mapping[str, object] = {
    "first_name": "Alexandria",
    "homework": "10 minutes of the word-finding cards",
    "clinic_name": "Riverside Recovery Clinic",
    "clinic_phone": "+1 555 010 0199",
    "streak": 12,
    "local_time": "08:30",
    # The longest numbers in coachbot.domain.emergency's table, so the safety replies fit.
    "emergency_number": "999",
    "crisis_line": "0800 111 0 111",
    "patient_choices": "1 for Alexandria, 2 for Bartholomew, 3 for Christopher",
    # The built-in Spanish items, the longest of the defaults.
    "check_items": items_text(DEFAULT_ITEMS["es"]),
    "item_count": len(DEFAULT_ITEMS["es"]),
}

# An SMS can sit on a lock screen or a shared phone: nothing may hint at a diagnosis, cause or
# drug. Matched case-insensitively on word boundaries, with a plural "s"/"es" allowed.
PRIVACY_TERMS: tuple[str, ...] = (
    # diagnoses and syndromes
    "neurotoxicity",
    "neurotoxic",
    "neurotoxicant",
    "neurotoxin",
    "ICANS",
    "CRS",
    "cytokine release",
    "neuropathy",
    "chemo brain",
    "cancer",
    "tumor",
    "tumour",
    "oncology",
    "lymphoma",
    "leukemia",
    "leukaemia",
    "myeloma",
    "encephalopathy",
    # causes and exposures
    "chemotherapy",
    "chemo",
    "CAR-T",
    "CAR T",
    "CAR T-cell",
    "lead poisoning",
    "lead exposure",
    "heavy metal",
    "mercury",
    "arsenic",
    "solvent",
    "pesticide",
    "toxic",
    "toxin",
    # treatments and drugs
    "chelation",
    "detox",
    "corticosteroid",
    "steroid",
    "dexamethasone",
    "tocilizumab",
    "anakinra",
    "cisplatin",
    "carboplatin",
    "oxaliplatin",
    "paclitaxel",
    "docetaxel",
    "vincristine",
    "vinblastine",
    "bortezomib",
    "thalidomide",
    "ifosfamide",
    "methotrexate",
    "cytarabine",
    "fludarabine",
    "cyclophosphamide",
    "lenalidomide",
    "pomalidomide",
    "rituximab",
    "blinatumomab",
    "pembrolizumab",
    "nivolumab",
    "ipilimumab",
    "bendamustine",
    "carmustine",
    "temozolomide",
    "levetiracetam",
    "Keppra",
    # CAR-T products, named as patients know them
    "Yescarta",
    "Kymriah",
    "Tecartus",
    "Breyanzi",
    "Abecma",
    "Carvykti",
    "axicabtagene",
    "tisagenlecleucel",
    "lisocabtagene",
    "idecabtagene",
    "ciltacabtagene",
    "brexucabtagene",
    # Spanish
    "neurotoxicidad",
    "neurotóxico",
    "neurotoxico",
    "quimioterapia",
    "quimio",
    "cáncer",
    "tumores",
    "oncología",
    "oncologia",
    "leucemia",
    "linfoma",
    "mieloma",
    "neuropatía",
    "neuropatia",
    "plomo",
    "mercurio",
    "solvente",
    "disolvente",
    "pesticida",
    "plaguicida",
    "metales pesados",
    "tóxico",
    "toxico",
    "quelación",
    "quelacion",
    "esteroide",
    "corticoide",
)
_PRIVACY_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(term) for term in PRIVACY_TERMS) + r")(?:s|es)?\b",
    re.IGNORECASE,
)

_CLINIC = re.escape(str(SAMPLE_VARIABLES["clinic_name"]))
_PHONE = re.escape(str(SAMPLE_VARIABLES["clinic_phone"]))

Requirement = tuple[str, re.Pattern[str]]


def _req(label: str, pattern: str) -> Requirement:
    return label, re.compile(pattern, re.IGNORECASE)


# What a double opt-in request must say (CTIA), per language.
_OPT_IN_DISCLOSURES: Mapping[str, tuple[Requirement, ...]] = {
    "en": (
        _req("clinic name", _CLINIC),
        _req("YES to start", r"\bYES\b"),
        _req("HELP for help", r"\bHELP\b"),
        _req("STOP to opt out", r"\bSTOP\b"),
        _req("message frequency", r"\bup to \d+ msgs?/(?:day|week)"),
        _req("rates notice", r"msg\s*&\s*data rates may apply"),
    ),
    "es": (
        _req("clinic name", _CLINIC),
        _req("SI to start", r"\bS[IÍ]\b"),
        _req("HELP for help", r"\bHELP\b"),
        _req("STOP to opt out", r"\bSTOP\b"),
        _req("message frequency", r"\bhasta \d+ mensajes (?:diarios|semanales|al d[ií]a)"),
        _req("rates notice", r"pueden aplicarse tarifas de mensajes y datos"),
    ),
}

# What carriers (CTIA, Twilio A2P review) expect in these messages, per language. Checked on
# the rendered sample, so a phrase hidden behind a condition still counts as missing.
CARRIER_REQUIREMENTS: Mapping[str, Mapping[str, tuple[Requirement, ...]]] = {
    "help": {
        "en": (
            _req("program or clinic name", rf"coachbot|{_CLINIC}"),
            _req("clinic phone", _PHONE),
            _req("STOP to opt out", r"\bSTOP\b"),
            _req("message frequency", r"\bup to \d+ msgs?/(?:day|week)"),
            _req("rates notice", r"msg\s*&\s*data rates may apply"),
        ),
        "es": (
            _req("program or clinic name", rf"coachbot|{_CLINIC}"),
            _req("clinic phone", _PHONE),
            _req("STOP to opt out", r"\bSTOP\b"),
            _req("message frequency", r"\bhasta \d+ mensajes (?:diarios|semanales|al d[ií]a)"),
            _req("rates notice", r"pueden aplicarse tarifas de mensajes y datos"),
        ),
    },
    "welcome": _OPT_IN_DISCLOSURES,
    # A caregiver's own double opt-in discloses the same as the patient's welcome.
    "caregiver.welcome": _OPT_IN_DISCLOSURES,
    "stop_confirmation": {
        "en": (
            _req("no more messages", r"\bno (?:more|further) (?:messages|msgs|texts)\b"),
            _req("START to resume", r"\bSTART\b"),
        ),
        "es": (
            _req("no more messages", r"\bno le enviaremos (?:m[aá]s )?mensajes\b"),
            _req("START to resume", r"\bSTART\b"),
        ),
    },
}

# Replies the parser understands only help if the nudge says how to answer.
REPLY_INSTRUCTION: Mapping[str, re.Pattern[str]] = {
    "en": re.compile(r"\breply\b", re.IGNORECASE),
    "es": re.compile(r"\bresponda\b", re.IGNORECASE),
}

# Safety replies must name these (by variable: the numbers differ by country); the crisis reply
# for a country without a crisis line names the clinic instead. Other safety templates need both
# the clinic phone and the emergency number.
SAFETY_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "red_flag": ("clinic_phone", "emergency_number"),
    "crisis": ("crisis_line", "emergency_number"),
    "crisis_no_line": ("clinic_phone", "emergency_number"),
}
SAFETY_REQUIRED_DEFAULT = ("clinic_phone", "emergency_number")
# A phone or emergency number written into a template is wrong for some patient (a UK patient
# told "call 911"): three or more digits in a row, spaced or not, outside a {{ variable }}.
_LITERAL_NUMBER_RE = re.compile(r"\d(?:[ \u00a0.\-]?\d){2,}")
_JINJA_CODE_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
MIN_VARIANTS = {"nudge": 8, "tip": 10}
# Tracks whose clinical wording is fixed, so rotation is not required.
ROTATION_EXEMPT_TRACKS = frozenset({"checkin"})
# The most segments a kind may declare; the symptom check-in's fixed list needs two.
SEGMENT_CEILING = {"nudge": 1, "tip": 1, "ack": 1, "followup": 1, "system": 2, "safety": 2}
SEGMENT_CEILING_OVERRIDES = {"nudge.checkin": 2}


@dataclass(frozen=True)
class LintProblem:
    template_id: str
    language: str
    variant_id: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.template_id} [{self.language}]"
        if self.variant_id:
            where += f" {self.variant_id}"
        return f"{where} {self.rule}: {self.message}"


_ProblemFactory = Callable[[str, str], LintProblem]


def privacy_terms_in(text: str) -> list[str]:
    """The privacy terms found in `text`, as written there, each once."""
    return list(dict.fromkeys(match.group(0) for match in _PRIVACY_RE.finditer(text)))


def literal_numbers_in(source: str) -> list[str]:
    """Runs of three or more digits (spaces, dots or hyphens allowed between them) in a template
    body outside its Jinja expressions and tags: a phone number nobody can localise."""
    text = _JINJA_CODE_RE.sub(" ", source)
    return list(dict.fromkeys(match.group(0) for match in _LITERAL_NUMBER_RE.finditer(text)))


def clinician_text_problem(text: str) -> str | None:
    """Why free text a clinician typed (a homework item, anything else that goes into an SMS)
    may not be texted, naming the offending words; None when it passes. The same term list
    as the templates: one place decides what an SMS must not say."""
    found = privacy_terms_in(text)
    if not found:
        return None
    words = ", ".join(f'"{term}"' for term in found)
    return f"texts must not name a diagnosis, cause or drug (privacy): remove {words}"


def lint_library(library: MessageLibrary) -> list[LintProblem]:
    problems: list[LintProblem] = []
    problems.extend(_check_languages(library))
    for template_id in library.template_ids():
        for language in library.languages():
            if library.has_template(template_id, language):
                template = library.templates[(template_id, language)]
                problems.extend(_check_template(library, template))
    return problems


def _check_languages(library: MessageLibrary) -> Iterator[LintProblem]:
    languages = library.languages()
    for template_id in library.template_ids():
        present = [lang for lang in languages if library.has_template(template_id, lang)]
        for language in languages:
            if language not in present:
                yield LintProblem(
                    template_id,
                    language,
                    None,
                    "languages",
                    f"missing; present in {', '.join(present)}",
                )
        for language in present:
            template = library.templates[(template_id, language)]
            minimum = MIN_VARIANTS.get(template.kind, 1)
            if template.track in ROTATION_EXEMPT_TRACKS:
                minimum = 1
            if len(template.variants) < minimum:
                yield LintProblem(
                    template_id,
                    language,
                    None,
                    "languages",
                    f"{len(template.variants)} variants, {template.kind} templates need {minimum}",
                )


def _check_template(library: MessageLibrary, template: Template) -> Iterator[LintProblem]:
    ceiling = SEGMENT_CEILING_OVERRIDES.get(template.id, SEGMENT_CEILING[template.kind])
    if template.max_segments > ceiling:
        yield LintProblem(
            template.id,
            template.language,
            None,
            "segments",
            f"declares max_segments {template.max_segments}; {template.kind} allows {ceiling}",
        )
    not_allowed = sorted(template.variables - ALLOWED_VARIABLES)
    if not_allowed:
        yield LintProblem(
            template.id,
            template.language,
            None,
            "variables",
            f"declares variables not on the allowlist: {', '.join(not_allowed)}",
        )
    if template.kind == "safety" and len(template.variants) != 1:
        yield LintProblem(
            template.id,
            template.language,
            None,
            "safety",
            f"fixed text must have exactly 1 variant, found {len(template.variants)}",
        )
    for variant in template.variants:
        yield from _check_variant(library, template, variant)


def _check_variant(
    library: MessageLibrary, template: Template, variant: Variant
) -> Iterator[LintProblem]:
    def problem(rule: str, message: str) -> LintProblem:
        return LintProblem(template.id, template.language, variant.id, rule, message)

    used = variables_used(variant.body)
    undeclared = sorted(used - template.variables)
    if undeclared:
        yield problem("variables", f"uses undeclared variables: {', '.join(undeclared)}")

    rendered: RenderedMessage | None = None
    try:
        rendered = library.render_variant(
            template.id, template.language, variant.id, SAMPLE_VARIABLES
        )
    except TemplateError as exc:
        yield problem("render", str(exc))

    segments = rendered.segments if rendered else count_segments(variant.body)
    if segments.non_gsm_chars and not variant.allow_ucs2:
        chars = " ".join(repr(c) for c in segments.non_gsm_chars)
        yield problem("ucs2", f"characters outside GSM-7 force UCS-2: {chars}")

    # The raw source too: a term inside a branch the sample data never takes still ships.
    texts = {"source": variant.body, "rendered text": rendered.body if rendered else ""}
    for where, text in texts.items():
        found = privacy_terms_in(text)
        if found:
            yield problem("privacy", f"{where} contains {', '.join(found)}")

    numbers = literal_numbers_in(variant.body)
    if numbers:
        yield problem(
            "number",
            f"literal number {', '.join(numbers)}: use a variable "
            "({{ clinic_phone }}, {{ emergency_number }}, {{ crisis_line }})",
        )
    if template.kind == "safety" and "first_name" in used:
        # Safety replies also answer numbers we do not know, where there is no name to use.
        yield problem("safety", "must not use first_name (also sent to unknown numbers)")

    if template.kind == "tip" and not variant.source:
        yield problem("source", "tips must quote the seed text they draw on in `source`")

    if rendered is None:
        return
    if segments.segments > template.max_segments:
        yield problem(
            "segments",
            f"{segments.segments} segments ({segments.encoding}, {segments.units} units) "
            f"with sample data; max_segments is {template.max_segments}",
        )
    yield from _check_phrases(template, rendered, problem)


def _check_phrases(
    template: Template, rendered: RenderedMessage, problem: _ProblemFactory
) -> Iterator[LintProblem]:
    body = rendered.body
    by_language = CARRIER_REQUIREMENTS.get(template.id)
    if by_language is not None:
        requirements = by_language.get(template.language)
        if requirements is None:
            yield problem("carrier", f"no required phrases defined for {template.language!r}")
        else:
            for label, pattern in requirements:
                if not pattern.search(body):
                    yield problem("carrier", f"missing {label}")

    if template.kind == "nudge":
        instruction = REPLY_INSTRUCTION.get(template.language)
        if instruction is not None and not instruction.search(body):
            yield problem("reply", "a nudge must say how to reply")

    if template.kind == "safety":
        for variable in SAFETY_REQUIRED.get(template.id, SAFETY_REQUIRED_DEFAULT):
            if str(SAMPLE_VARIABLES[variable]) not in body:
                yield problem("safety", f"missing {variable.replace('_', ' ')}")
