"""Issue #17's sizes, kept: no module over 500 lines and no function over 80, in the package,
the benchmarks, the proof, the migrations and the tests, except the declarative ones named
below (docs/architecture.md, "Sizes: the declarative exceptions", says why each is one).

An exception that is no longer needed fails too, so the list only ever shrinks to the truth.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("coachbot", "bench", "proof", "migrations", "tests")
MODULE_LINES = 500
FUNCTION_LINES = 80

# Modules that are mostly tables or declarations.
LONG_MODULES = {
    "coachbot/domain/red_flags.py",  # the red-flag pattern tables, English and Spanish
    "coachbot/models.py",  # mapped classes: columns, constraints, indexes
    "tests/unit/test_reply_parsing.py",  # the tables of replies the parametrized tests read
}
# Migrations' upgrade steps: DDL, one statement after another, frozen once released.
LONG_FUNCTIONS = {
    "migrations/versions/0001_initial_schema.py:upgrade",
    "migrations/versions/0005_operator_programs_and_versions.py:upgrade",
    "migrations/versions/0013_caregivers.py:upgrade",
}


def _python_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _long_modules() -> set[str]:
    return {
        _name(p)
        for p in _python_files()
        if p.read_text(encoding="utf-8").count("\n") > MODULE_LINES
    }


def _long_functions() -> set[str]:
    found = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > FUNCTION_LINES:
                    found.add(f"{_name(path)}:{node.name}")
    return found


def test_no_module_over_the_limit_but_the_declared_ones() -> None:
    long = _long_modules()
    assert long - LONG_MODULES == set(), f"over {MODULE_LINES} lines: split them"
    assert LONG_MODULES - long == set(), "no longer over the limit: take them off the list"


def test_no_function_over_the_limit_but_the_migrations() -> None:
    long = _long_functions()
    assert long - LONG_FUNCTIONS == set(), f"over {FUNCTION_LINES} lines: name the steps"
    assert LONG_FUNCTIONS - long == set(), "no longer over the limit: take them off the list"
