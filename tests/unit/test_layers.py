"""The layers of docs/architecture.md, checked on the imports: dependencies point down.

Each package (or top-level module) of `coachbot` may import only the layers the table below
allows; a module-level or function-level import that breaks it fails here with the module
and the import named, so the drawing in the docs cannot drift from the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "coachbot"

ENTRY_POINTS = {"web", "cli", "clock", "app"}
# What each layer must never import. The domain is pure; the store writes and decides nothing;
# the read side and the adapters know no use case; entry points reach the store only through
# a service; nothing below the entry points knows them.
FORBIDDEN: dict[str, set[str]] = {
    "domain": {
        "models",
        "db",
        "store",
        "queries",
        "services",
        "sms",
        "content",
        "settings",
        "runtime",
        *ENTRY_POINTS,
    },
    "store": {"queries", "services", "sms", "content", "runtime", *ENTRY_POINTS},
    "queries": {"store", "services", "sms", "runtime", *ENTRY_POINTS},
    "sms": {"models", "db", "store", "queries", "services", "content", "runtime", *ENTRY_POINTS},
    "content": {"models", "db", "store", "queries", "services", "sms", "runtime", *ENTRY_POINTS},
    "services": {"runtime", *ENTRY_POINTS},
    "web": {"store"},
    "cli": {"store"},
    "clock": {"store"},
}


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> list[tuple[int, str]]:
    """(line, layer) of every `coachbot.<layer>` this module imports, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "coachbot":
                names = [f"coachbot.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("coachbot.")]
    return sorted(found)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if _layer(p) in FORBIDDEN)


def test_every_layer_named_in_the_rules_exists() -> None:
    layers = {_layer(p) for p in PACKAGE.rglob("*.py")}
    named = set(FORBIDDEN) | {layer for banned in FORBIDDEN.values() for layer in banned}
    assert named <= layers, f"rules name layers the package no longer has: {named - layers}"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(module: Path) -> None:
    layer = _layer(module)
    broken = [
        f"line {line}: coachbot.{target}"
        for line, target in _imported_layers(module)
        if target in FORBIDDEN[layer]
    ]
    assert not broken, f"{layer}/ must not import {', '.join(broken)}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # The checker itself: an sms module that reaches for a service is caught, both spellings.
    module = tmp_path / "bad.py"
    module.write_text(
        "from coachbot.services.consent import suppressed_among\n"
        "def f():\n    import coachbot.queries.dashboard\n"
        "from coachbot import store\n"
    )
    assert [t for _, t in _imported_layers(module)] == ["services", "queries", "store"]
