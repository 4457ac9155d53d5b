"""The message library as the operator console browses it: a contents list of tracks, and
each track's template families rendered with the linter's made-up sample values, their
segment counts, encodings and lint problems. Read-only; nothing here touches a patient."""

from __future__ import annotations

from dataclasses import dataclass

from coachbot.content.library import MessageLibrary, Template, TemplateError
from coachbot.content.lint import SAMPLE_VARIABLES, LintProblem, lint_library

GENERAL = "general"  # the track name shown for templates that belong to no track


@dataclass(frozen=True)
class SampleVariant:
    id: str
    body: str = ""
    segments: int = 0
    encoding: str = ""
    units: int = 0
    over: bool = False  # more segments than the template allows
    error: str | None = None  # the variant cannot render


@dataclass(frozen=True)
class Family:
    """One template in one language."""

    id: str
    language: str
    track: str
    kind: str
    max_segments: int
    variants: list[SampleVariant]
    problems: list[LintProblem]


@dataclass(frozen=True)
class TrackEntry:
    """A line of the contents list: a track, its families per language and its problems."""

    track: str
    families: list[tuple[str, str]]  # (template id, language), sorted
    problem_count: int


def track_of(template: Template) -> str:
    return template.track or GENERAL


def tracks(library: MessageLibrary) -> list[str]:
    return sorted({track_of(t) for t in library.templates.values()})


def contents(library: MessageLibrary, problems: list[LintProblem]) -> list[TrackEntry]:
    by_track: dict[str, list[tuple[str, str]]] = {t: [] for t in tracks(library)}
    for (tid, lang), template in sorted(library.templates.items()):
        by_track[track_of(template)].append((tid, lang))
    return [
        TrackEntry(
            track=track,
            families=families,
            problem_count=sum(1 for p in problems if (p.template_id, p.language) in families),
        )
        for track, families in by_track.items()
    ]


def _sample(library: MessageLibrary, template: Template, language: str) -> list[SampleVariant]:
    samples: list[SampleVariant] = []
    for variant in template.variants:
        try:
            rendered = library.render_variant(template.id, language, variant.id, SAMPLE_VARIABLES)
        except TemplateError as exc:
            samples.append(SampleVariant(id=variant.id, error=str(exc)))
            continue
        samples.append(
            SampleVariant(
                id=variant.id,
                body=rendered.body,
                segments=rendered.segments.segments,
                encoding=rendered.segments.encoding,
                units=rendered.segments.units,
                over=rendered.segments.segments > template.max_segments,
            )
        )
    return samples


def families(
    library: MessageLibrary, problems: list[LintProblem], *, track: str, language: str = ""
) -> list[Family]:
    """The track's families (every language, or only `language`), sorted by id then language."""
    return [
        Family(
            id=tid,
            language=lang,
            track=track_of(template),
            kind=template.kind,
            max_segments=template.max_segments,
            variants=_sample(library, template, lang),
            problems=[p for p in problems if p.template_id == tid and p.language == lang],
        )
        for (tid, lang), template in sorted(library.templates.items())
        if track_of(template) == track and (not language or lang == language)
    ]


def browse(library: MessageLibrary) -> tuple[list[LintProblem], list[TrackEntry]]:
    """The whole library's lint problems and its contents list."""
    problems = lint_library(library)
    return problems, contents(library, problems)
