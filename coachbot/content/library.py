"""The coaching message library: YAML templates on disk, validated, rendered in a sandbox.

File format (one file per message family, both languages side by side)::

    templates:
      - id: nudge.sleep
        kind: nudge            # nudge | tip | system | ack | followup | safety
        track: sleep           # or null
        max_segments: 1
        variables: [first_name]
        variants:
          en:
            - id: sleep-01
              body: "Hi {{ first_name }} ..."
          es:
            - id: sleep-01
              body: "Hola, {{ first_name }} ..."
              allow_ucs2: true     # optional
              source: "..."        # tips: the seed-text quote the tip draws on

Variant ids are unique per language across the whole library, so a caller can keep one list of
"variant ids sent in the last 7 days" per patient without telling families apart.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import jinja2
import yaml
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

from coachbot.domain.segments import SegmentCount, count_segments

logger = logging.getLogger(__name__)

Kind = Literal["nudge", "tip", "system", "ack", "followup", "safety"]
KINDS: tuple[str, ...] = get_args(Kind)
TRACKS = ("sleep", "exercise", "diet", "mindfulness", "rehab", "checkin")
ALLOWED_VARIABLES = frozenset(
    {
        "first_name",
        "homework",
        "clinic_name",
        "clinic_phone",
        "streak",
        "local_time",
        # The safety replies' numbers, from coachbot.domain.emergency (by the sender's country).
        "emergency_number",
        "crisis_line",
        # "Which person?" to a caregiver of several patients: "1 for Ana, 2 for Bo", first
        # names only (coachbot.domain.caregiver_check.patient_choices).
        "patient_choices",
        # The caregiver's daily check: the programme's items, numbered, and how many there are
        # (coachbot.domain.close_watch.items_text); operators' words, linted when saved.
        "check_items",
        "item_count",
    }
)
DEFAULT_LANGUAGE = "en"
TEMPLATES_DIR_ENV = "COACHBOT_TEMPLATES_DIR"
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "message_templates"

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_VARIANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2}$")
_TEMPLATE_KEYS = frozenset({"id", "kind", "track", "max_segments", "variables", "variants"})
_VARIANT_KEYS = frozenset({"id", "body", "allow_ucs2", "source"})


class TemplateError(ValueError):
    """A template file is malformed, or a render request breaks the library's rules."""


@dataclass(frozen=True)
class Variant:
    id: str
    body: str
    allow_ucs2: bool = False
    source: str | None = None


@dataclass(frozen=True)
class Template:
    id: str
    language: str
    kind: Kind
    track: str | None
    max_segments: int
    variables: frozenset[str]
    variants: tuple[Variant, ...]
    path: Path

    def variant(self, variant_id: str) -> Variant:
        for variant in self.variants:
            if variant.id == variant_id:
                return variant
        raise TemplateError(f"{self.id} [{self.language}] has no variant {variant_id!r}")

    def variant_ids(self) -> list[str]:
        return [variant.id for variant in self.variants]


@dataclass(frozen=True)
class RenderedMessage:
    template_id: str
    variant_id: str
    language: str
    body: str
    segments: SegmentCount


def pick_variant(variant_ids: Sequence[str], seed: str, avoid: Collection[str] = ()) -> str:
    """Choose a variant deterministically from `seed`, skipping the ids in `avoid`.

    If every variant is in `avoid` the choice falls back to all variants: a repeat beats silence.
    A stable digest (not `hash()`, which is salted per process) keeps the choice the same across
    processes and restarts, so a retried send renders the same text.
    """
    if not variant_ids:
        raise TemplateError("no variants to choose from")
    avoided = set(avoid)
    candidates = [v for v in variant_ids if v not in avoided] or list(variant_ids)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return candidates[int.from_bytes(digest[:8], "big") % len(candidates)]


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces within each line and drop blank lines; keep deliberate newlines."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def variables_used(body: str) -> frozenset[str]:
    """Every free variable a template body refers to, declared or not."""
    return frozenset(meta.find_undeclared_variables(_make_environment().parse(body)))


def _make_environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    # Templates see only the variables they declare; no range(), dict(), cycler() and friends.
    env.globals.clear()
    return env


@dataclass(frozen=True)
class MessageLibrary:
    templates: Mapping[tuple[str, str], Template]
    _compiled: Mapping[tuple[str, str, str], jinja2.Template] = field(repr=False)

    def template_ids(self) -> list[str]:
        return sorted({template_id for template_id, _ in self.templates})

    def languages(self) -> list[str]:
        return sorted({language for _, language in self.templates})

    def has_template(self, template_id: str, language: str) -> bool:
        return (template_id, language) in self.templates

    def template(self, template_id: str, language: str) -> Template:
        """The template in `language` ("es-MX" finds "es"), else English with a warning."""
        for candidate in dict.fromkeys((language, re.split(r"[-_]", language)[0].lower())):
            found = self.templates.get((template_id, candidate))
            if found is not None:
                return found
        fallback = self.templates.get((template_id, DEFAULT_LANGUAGE))
        if fallback is None:
            raise TemplateError(f"unknown template id {template_id!r}")
        logger.warning(
            "template %s has no %r version; falling back to %r",
            template_id,
            language,
            DEFAULT_LANGUAGE,
        )
        return fallback

    def variant_ids(self, template_id: str, language: str) -> list[str]:
        return self.template(template_id, language).variant_ids()

    def render(
        self,
        template_id: str,
        language: str,
        variables: Mapping[str, object],
        *,
        seed: str = "",
        avoid: Collection[str] = (),
    ) -> RenderedMessage:
        """Render a rotating variant of a template for one patient.

        `seed` (e.g. f"{patient_id}:{local_date}") makes the choice repeatable; `avoid` holds the
        variant ids the patient received recently. With at least 8 variants and one message a
        day, passing the last 7 days' ids means no text repeats within a week.
        """
        _check_allowlist(variables)
        template = self.template(template_id, language)
        variant_id = pick_variant(template.variant_ids(), seed, avoid)
        rendered = self._render(template, template.variant(variant_id), variables)
        if rendered.segments.segments > template.max_segments:
            # Real values can be longer than lint's samples; worth knowing, not worth refusing.
            logger.warning(
                "template %s variant %s rendered to %d segments (max %d)",
                template.id,
                variant_id,
                rendered.segments.segments,
                template.max_segments,
            )
        return rendered

    def render_variant(
        self, template_id: str, language: str, variant_id: str, variables: Mapping[str, object]
    ) -> RenderedMessage:
        """Render one named variant exactly, without fallback: for previews and lint."""
        _check_allowlist(variables)
        template = self.templates.get((template_id, language))
        if template is None:
            raise TemplateError(f"no template {template_id!r} in language {language!r}")
        return self._render(template, template.variant(variant_id), variables)

    def _render(
        self, template: Template, variant: Variant, variables: Mapping[str, object]
    ) -> RenderedMessage:
        # str() first: a template must never reach an object's attributes or methods.
        context = {k: str(v) for k, v in variables.items() if k in template.variables}
        compiled = self._compiled[(template.id, template.language, variant.id)]
        try:
            body = normalise_whitespace(compiled.render(context))
        except jinja2.TemplateError as exc:
            # The exception names the failing expression, never the patient's values.
            raise TemplateError(
                f"{template.id} [{template.language}] {variant.id}: "
                f"{type(exc).__name__}: {exc.message}"
            ) from exc
        return RenderedMessage(
            template.id, variant.id, template.language, body, count_segments(body)
        )


def _check_allowlist(variables: Mapping[str, object]) -> None:
    unknown = sorted(set(variables) - ALLOWED_VARIABLES)
    if unknown:
        raise TemplateError(
            f"variables not on the allowlist: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(ALLOWED_VARIABLES))})"
        )


def _error(path: Path, where: str, problem: str) -> TemplateError:
    return TemplateError(f"{path.name}: {where}: {problem}")


class _Loader:
    """Builds a library from a directory, naming file and field in every error."""

    def __init__(self) -> None:
        self.env = _make_environment()
        self.templates: dict[tuple[str, str], Template] = {}
        self.compiled: dict[tuple[str, str, str], jinja2.Template] = {}
        self.variant_owner: dict[tuple[str, str], str] = {}
        self.template_file: dict[str, Path] = {}

    def load_directory(self, directory: Path) -> MessageLibrary:
        if not directory.is_dir():
            raise TemplateError(f"{directory}: template directory does not exist")
        paths = sorted(directory.glob("*.yaml"))
        if not paths:
            raise TemplateError(f"{directory}: no *.yaml template files")
        for path in paths:
            self.load_file(path)
        return MessageLibrary(dict(self.templates), dict(self.compiled))

    def load_file(self, path: Path) -> None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TemplateError(f"{path.name}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict) or set(data) != {"templates"}:
            raise TemplateError(f"{path.name}: expected a mapping with one key, 'templates'")
        entries = data["templates"]
        if not isinstance(entries, list) or not entries:
            raise _error(path, "templates", "expected a non-empty list")
        for index, entry in enumerate(entries):
            self.load_template(path, f"templates[{index}]", entry)

    def load_template(self, path: Path, where: str, entry: object) -> None:
        if not isinstance(entry, dict):
            raise _error(path, where, "expected a mapping")
        entry = cast(dict[str, Any], entry)
        if isinstance(entry.get("id"), str):
            where = f"{where} ({entry['id']})"
        extra = sorted(set(entry) - _TEMPLATE_KEYS, key=str)
        if extra:
            raise _error(path, f"{where}.{extra[0]}", "unknown field")
        missing = sorted(_TEMPLATE_KEYS - set(entry))
        if missing:
            raise _error(path, f"{where}.{missing[0]}", "required field is missing")

        template_id = entry["id"]
        if not isinstance(template_id, str) or not _ID_RE.match(template_id):
            raise _error(path, f"{where}.id", "expected a dotted lower-case id like nudge.sleep")
        if template_id in self.template_file:
            other = self.template_file[template_id].name
            raise _error(path, f"{where}.id", f"duplicate of the template in {other}")
        self.template_file[template_id] = path

        kind = entry["kind"]
        if kind not in KINDS:
            raise _error(path, f"{where}.kind", f"expected one of {', '.join(KINDS)}")
        track = entry["track"]
        if track is not None and track not in TRACKS:
            raise _error(path, f"{where}.track", f"expected null or one of {', '.join(TRACKS)}")
        max_segments = entry["max_segments"]
        if type(max_segments) is not int or not 1 <= max_segments <= 10:
            raise _error(path, f"{where}.max_segments", "expected an integer from 1 to 10")
        declared = entry["variables"]
        if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
            raise _error(path, f"{where}.variables", "expected a list of variable names")
        by_language = entry["variants"]
        if not isinstance(by_language, dict) or not by_language:
            raise _error(path, f"{where}.variants", "expected a mapping of language to variants")

        for language, variants in by_language.items():
            at = f"{where}.variants.{language}"
            if not isinstance(language, str) or not _LANGUAGE_RE.match(language):
                raise _error(path, at, "expected a two-letter language code")
            if not isinstance(variants, list) or not variants:
                raise _error(path, at, "expected a non-empty list of variants")
            parsed = tuple(
                self.load_variant(path, f"{at}[{i}]", template_id, language, raw)
                for i, raw in enumerate(variants)
            )
            self.templates[(template_id, language)] = Template(
                id=template_id,
                language=language,
                kind=cast(Kind, kind),
                track=track,
                max_segments=max_segments,
                variables=frozenset(declared),
                variants=parsed,
                path=path,
            )

    def load_variant(
        self, path: Path, where: str, template_id: str, language: str, raw: object
    ) -> Variant:
        if not isinstance(raw, dict):
            raise _error(path, where, "expected a mapping with id and body")
        raw = cast(dict[str, Any], raw)
        extra = sorted(set(raw) - _VARIANT_KEYS, key=str)
        if extra:
            raise _error(path, f"{where}.{extra[0]}", "unknown field")
        variant_id, body = raw.get("id"), raw.get("body")
        if not isinstance(variant_id, str) or not _VARIANT_ID_RE.match(variant_id):
            raise _error(path, f"{where}.id", "expected a lower-case id like sleep-01")
        if not isinstance(body, str) or not body.strip():
            raise _error(path, f"{where}.body", "expected a non-empty string")
        allow_ucs2 = raw.get("allow_ucs2", False)
        if not isinstance(allow_ucs2, bool):
            raise _error(path, f"{where}.allow_ucs2", "expected true or false")
        source = raw.get("source")
        if source is not None and (not isinstance(source, str) or not source.strip()):
            raise _error(path, f"{where}.source", "expected a non-empty string")
        owner = self.variant_owner.get((language, variant_id))
        if owner is not None:
            raise _error(
                path, f"{where}.id", f"variant id {variant_id!r} is already used by {owner}"
            )
        self.variant_owner[(language, variant_id)] = template_id
        try:
            compiled = self.env.from_string(body)
        except jinja2.TemplateSyntaxError as exc:
            raise _error(path, f"{where}.body", f"template syntax error: {exc.message}") from exc
        self.compiled[(template_id, language, variant_id)] = compiled
        return Variant(variant_id, body, allow_ucs2, source)


@functools.cache
def _load_cached(directory: Path) -> MessageLibrary:
    return _Loader().load_directory(directory)


def load_library(directory: Path | None = None) -> MessageLibrary:
    """Load and validate a template directory.

    With no argument: `$COACHBOT_TEMPLATES_DIR` if set, else the repository's `message_templates/`,
    loaded once per process. An explicit directory is always read afresh.
    """
    if directory is not None:
        return _Loader().load_directory(directory)
    configured = os.environ.get(TEMPLATES_DIR_ENV)
    return _load_cached(Path(configured) if configured else DEFAULT_TEMPLATES_DIR)
