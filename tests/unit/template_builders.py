"""Builders for small template directories written to a test's tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def make_template(
    template_id: str = "ack.done",
    *,
    kind: str = "ack",
    track: str | None = None,
    max_segments: int = 1,
    variables: tuple[str, ...] = ("first_name",),
    en: list[dict[str, Any]] | None = None,
    es: list[dict[str, Any]] | None = None,
    languages: tuple[str, ...] = ("en", "es"),
) -> dict[str, Any]:
    bodies = {
        "en": en
        or [{"id": f"{template_id.replace('.', '-')}-01", "body": "Nice, {{ first_name }}."}],
        "es": es
        or [{"id": f"{template_id.replace('.', '-')}-01", "body": "Bien, {{ first_name }}."}],
    }
    return {
        "id": template_id,
        "kind": kind,
        "track": track,
        "max_segments": max_segments,
        "variables": list(variables),
        "variants": {language: bodies[language] for language in languages},
    }


def write_templates(directory: Path, *templates: dict[str, Any], name: str = "t.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        yaml.safe_dump({"templates": list(templates)}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return directory
