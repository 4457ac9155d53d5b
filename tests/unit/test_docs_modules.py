"""docs/architecture.md names modules and functions; these tests fail when the code moves
and the page does not, so the map cannot drift silently."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# A module path as the page writes it: coachbot/services/inbound.py, coachbot/cli/reply.py.
_MODULE_PATH = re.compile(r"coachbot/[A-Za-z0-9_/]+\.py")
# A table row about one folder: | `coachbot/services/` | ... `tick.py`, `dispatch.py` ... |
_FOLDER_ROW = re.compile(r"^\| `(coachbot/[a-z_]+/)` \|(.*)$", re.MULTILINE)
_BARE_MODULE = re.compile(r"`([a-z_]+\.py)`")
# A function or class as the page writes it: `handle_inbound()`, or run_due() in a diagram.
_CALLABLE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\(\)")


def _page() -> str:
    return ARCHITECTURE.read_text(encoding="utf-8")


def _defined_names() -> set[str]:
    """Every function, method and class defined anywhere in the coachbot package."""
    names: set[str] = set()
    for path in (ROOT / "coachbot").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return names


def test_every_coachbot_module_path_named_in_the_architecture_page_exists() -> None:
    paths = sorted(set(_MODULE_PATH.findall(_page())))
    # The page walks both flows through dozens of modules; finding only a few means the
    # pattern stopped matching and the check below would pass on nothing.
    assert len(paths) >= 40, paths
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert missing == [], f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_function_named_with_parentheses_in_the_architecture_page_is_defined() -> None:
    called = sorted(set(_CALLABLE.findall(_page())))
    assert len(called) >= 20, called
    defined = _defined_names()
    # "Pager.kick()" names a method: the last part is what must be defined.
    missing = [c for c in called if c.rsplit(".", 1)[-1] not in defined]
    assert missing == [], f"docs/architecture.md names functions that do not exist: {missing}"


def test_every_module_listed_in_a_folder_row_of_the_architecture_page_is_in_that_folder() -> None:
    rows = _FOLDER_ROW.findall(_page())
    assert len(rows) >= 5, rows  # domain, services, queries, content, sms, web
    missing = [
        folder + name
        for folder, text in rows
        for name in _BARE_MODULE.findall(text)
        if not (ROOT / folder / name).is_file()
    ]
    assert missing == [], f"docs/architecture.md lists modules that do not exist: {missing}"
