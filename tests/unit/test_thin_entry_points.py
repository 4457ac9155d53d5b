"""Entry points are thin (docs/architecture.md, "The layers"): `coachbot/web/`, `coachbot/cli/`,
`coachbot/clock.py` and `coachbot/app.py` parse input, call a service (which owns its one
transaction) or a query (the read side), and render. Checked on the syntax tree: an entry point
that runs SQL on a session or connection, commits, rolls back, or imports SQLAlchemy's statement
builders fails here with the module and the line named.

What counts as a session: the names the code gives one (`session`, `s`, `connection`, ...) and
the request's sessions of `coachbot/web/common.py` (`db()`, `read_db()`); `.add(` on a set or
a form is not SQL and is not looked at.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "coachbot"

SESSION_NAMES = {"session", "s", "db_session", "read_session", "connection", "conn"}
SESSION_CALLS = {"db", "read_db"}
# Methods of a Session or Connection that run SQL or end a transaction.
SQL_METHODS = {
    "commit",
    "rollback",
    "execute",
    "scalar",
    "scalars",
    "add",
    "add_all",
    "delete",
    "flush",
    "merge",
}
STATEMENT_BUILDERS = {"select", "insert", "update", "delete", "text"}

# The request's own sessions (web/common.py) end a transaction that holds nothing to keep: the
# read session's snapshot, a write session that has only read before a service takes over, and
# both after an unhandled error. That is the request's plumbing, not a use case's transaction.
ALLOWED = {
    ("web/common.py", "fresh_reads", "rollback"),
    ("web/common.py", "write_sessions", "rollback"),
    ("app.py", "server_error", "rollback"),
}


def _entry_points() -> list[Path]:
    folders = [p for d in ("web", "cli") for p in (PACKAGE / d).rglob("*.py")]
    return sorted([*folders, PACKAGE / "clock.py", PACKAGE / "app.py"])


def _is_session(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in SESSION_NAMES
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in SESSION_CALLS
    return False


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    """Each node's innermost enclosing function name ('' at module level)."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else name
            )
            owner[child] = inner
            visit(child, inner)

    visit(tree, "")
    return owner


def violations(path: Path, relative: str) -> list[str]:
    """`relative:line: what` for every SQL call or statement-builder import in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    owner = _enclosing_functions(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
            and _is_session(node.func.value)
            and (relative, owner.get(node, ""), node.func.attr) not in ALLOWED
        ):
            found.append((node.lineno, f".{node.func.attr}() on a session"))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in STATEMENT_BUILDERS:
                    found.append((node.lineno, f"imports {alias.name} from {node.module}"))
    return [f"{relative}:{line}: {what}" for line, what in sorted(found)]


@pytest.mark.parametrize(
    "module", _entry_points(), ids=lambda p: str(p.relative_to(PACKAGE)).replace("/", ".")
)
def test_entry_point_runs_no_sql(module: Path) -> None:
    found = violations(module, module.relative_to(PACKAGE).as_posix())
    assert not found, "entry points call a service or a query instead:\n" + "\n".join(found)


def test_every_allowed_place_still_exists() -> None:
    # An exception that no longer matches anything is removed, not left to hide a new one.
    for relative, function, method in ALLOWED:
        tree = ast.parse((PACKAGE / relative).read_text(encoding="utf-8"))
        owner = _enclosing_functions(tree)
        assert any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
            and owner.get(node) == function
            for node in ast.walk(tree)
        ), f"{relative} {function}() no longer calls .{method}(): drop it from ALLOWED"


def test_the_check_sees_sql_in_an_entry_point(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "from sqlalchemy import select, func\n"
        "from sqlalchemy.sql import text\n"
        "from coachbot.web.common import db, read_db\n"
        "def view(session, form, seen: set[int]):\n"
        "    seen.add(1)\n"
        "    form.add('x')\n"
        "    session.add(object())\n"
        "    rows = read_db().scalars(select(1))\n"
        "    db().execute(text('SELECT 1'))\n"
        "    session.commit()\n"
        "    def fresh_reads():\n"
        "        session.rollback()\n"
        "    return rows\n"
    )
    assert violations(module, "web/bad.py") == [
        "web/bad.py:1: imports select from sqlalchemy",
        "web/bad.py:2: imports text from sqlalchemy.sql",
        "web/bad.py:7: .add() on a session",
        "web/bad.py:8: .scalars() on a session",
        "web/bad.py:9: .execute() on a session",
        "web/bad.py:10: .commit() on a session",
        "web/bad.py:12: .rollback() on a session",
    ]
