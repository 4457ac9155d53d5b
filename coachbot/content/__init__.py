"""The coaching message library: templates on disk, rendering, rotation and lint."""

from coachbot.content.library import (
    ALLOWED_VARIABLES,
    MessageLibrary,
    RenderedMessage,
    Template,
    TemplateError,
    Variant,
    load_library,
    pick_variant,
)
from coachbot.content.lint import LintProblem, lint_library

__all__ = [
    "ALLOWED_VARIABLES",
    "LintProblem",
    "MessageLibrary",
    "RenderedMessage",
    "Template",
    "TemplateError",
    "Variant",
    "lint_library",
    "load_library",
    "pick_variant",
]
