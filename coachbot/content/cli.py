"""`coachbot templates lint|preview`: check and read the message library from a terminal."""

from __future__ import annotations

from pathlib import Path

import click

from coachbot.content.library import MessageLibrary, TemplateError, load_library
from coachbot.content.lint import SAMPLE_VARIABLES, lint_library

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Template directory (default: $COACHBOT_TEMPLATES_DIR or the bundled message_templates/).",
)


def _load(directory: Path | None) -> MessageLibrary:
    try:
        return load_library(directory)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("templates")
def templates() -> None:
    """Lint and preview the SMS message templates."""


@templates.command("lint")
@_DIR_OPTION
def lint_command(directory: Path | None) -> None:
    """Check every template; exit 1 if any problem is found."""
    library = _load(directory)
    problems = lint_library(library)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        raise SystemExit(1)
    variants = sum(len(t.variants) for t in library.templates.values())
    click.echo(
        f"OK: {len(library.template_ids())} templates, {len(library.languages())} languages "
        f"({', '.join(library.languages())}), {variants} variants"
    )


@templates.command("preview")
@_DIR_OPTION
@click.option("--track", default=None, help="Only templates of this track (sleep, diet, ...).")
@click.option("--language", default=None, help="Only this language (en, es).")
@click.option("--id", "template_id", default=None, help="Only this template id.")
def preview_command(
    directory: Path | None, track: str | None, language: str | None, template_id: str | None
) -> None:
    """Render every variant with sample data, with its segment count and encoding."""
    library = _load(directory)
    languages = [language] if language else library.languages()
    shown = 0
    for tid in library.template_ids():
        if template_id and tid != template_id:
            continue
        for lang in languages:
            if not library.has_template(tid, lang):
                continue
            template = library.templates[(tid, lang)]
            if track and template.track != track:
                continue
            for variant in template.variants:
                try:
                    rendered = library.render_variant(tid, lang, variant.id, SAMPLE_VARIABLES)
                except TemplateError as exc:
                    click.echo(f"{tid} [{lang}] {variant.id}: cannot render: {exc}")
                    continue
                seg = rendered.segments
                click.echo(
                    f"{tid} [{lang}] {variant.id}: {seg.segments}/{template.max_segments} "
                    f"segment(s), {seg.encoding}, {seg.units} units"
                )
                click.echo("    " + rendered.body.replace("\n", "\n    "))
                shown += 1
    if not shown:
        raise click.ClickException("no templates match those filters")
