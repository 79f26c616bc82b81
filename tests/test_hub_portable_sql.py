"""No SQLite-only SQL left in the hub (issue 11): every hub module goes through the DB
layer (app/hub/database.py), and SQL written for one dialect only sits in a place that
chooses by dialect, listed here with its reason."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import ROOT

HUB_CODE = [
    *sorted((ROOT / "app" / "hub").rglob("*.py")),
    ROOT / "app" / "demo" / "hub_seed.py",
    ROOT / "app" / "demo" / "hub_orders.py",
    ROOT / "app" / "demo" / "hub_year.py",
]
#: The DB layer and the migrations translate for each dialect themselves; the move from
#: hub.db to PostgreSQL reads SQLite by nature.
DIALECT_LAYER = {"app/hub/database.py", "app/hub/migrations.py", "app/hub/transfer.py"}

#: SQL that runs on SQLite only, by what it is.
SQLITE_ONLY = {
    "json1": re.compile(r"\bjson_(object|group_array|group_object|each|extract|array)\s*\(", re.I),
    "rowid": re.compile(r"\browid\b", re.I),
    "pragma": re.compile(r"^\s*PRAGMA\b", re.I),
    "insert or": re.compile(r"\bINSERT\s+OR\s+(IGNORE|REPLACE)\b", re.I),
    "replace into": re.compile(r"^\s*REPLACE\s+INTO\b", re.I),
    "planner hint": re.compile(r"\+\s*store_id\b"),
    "total()": re.compile(r"\btotal\s*\(", re.I),
    "group_concat": re.compile(r"\bgroup_concat\s*\(", re.I),
    "ifnull": re.compile(r"\bifnull\s*\(", re.I),
    "strftime/datetime in SQL": re.compile(r"\b(strftime|julianday|datetime)\s*\(\s*'", re.I),
    "autoincrement": re.compile(r"\bAUTOINCREMENT\b", re.I),
}
#: (file, kind): SQLite's variant of a statement that has a PostgreSQL one beside it,
#: chosen by ``hdb.dialect(db)``.
ALLOWED = {
    ("app/hub/domain/changes.py", "planner hint"): "the feed page: SQLite's plan hint",
    ("app/hub/domain/catalog.py", "json1"): "catalog JSON built in SQL per dialect",
}
#: sqlite3 / sqlite_utils APIs that a PostgreSQL connection does not have.
SQLITE_API = re.compile(
    r"execute_returning_dicts|\.conn\.executemany|\blastrowid\b|\bcreate_function\b"
    r"|\bdb\[\s*[\"']|\.atomic\(\)"
)


def _sql_strings(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            found.append((node.lineno, text))
    return found


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_no_sqlite_only_sql_in_the_hub():
    problems, used = [], set()
    for path in HUB_CODE:
        where = _relative(path)
        if where in DIALECT_LAYER or not path.exists():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node_line, text in _sql_strings(tree):
            for kind, pattern in SQLITE_ONLY.items():
                if pattern.search(text) and not _is_docstring(tree, node_line, docstrings):
                    if (where, kind) in ALLOWED:
                        used.add((where, kind))
                    else:
                        problems.append(f"{where}:{node_line}: {kind}: {text.strip()[:80]!r}")
    assert not problems, "SQLite-only SQL in the hub:\n" + "\n".join(problems)
    assert used == set(ALLOWED), f"allowances no longer needed: {set(ALLOWED) - used}"


def _is_docstring(tree: ast.AST, line: int, docstrings: set[int]) -> bool:
    return any(
        isinstance(n, ast.Constant) and id(n) in docstrings and n.lineno == line
        for n in ast.walk(tree)
    )


def test_hub_modules_use_the_db_layer_not_sqlite_apis():
    problems = []
    for path in HUB_CODE:
        where = _relative(path)
        if where in DIALECT_LAYER or not path.exists():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                if "sqlite3" in names or module.startswith(("sqlite3", "sqlite_utils")):
                    problems.append(f"{where}:{node.lineno}: imports {module or names}")
                if module == "app.core" and "db" in names or module == "app.core.db":
                    problems.append(f"{where}:{node.lineno}: the store's SQLite layer app.core.db")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if SQLITE_API.search(code):
                problems.append(f"{where}:{number}: {line.strip()[:90]}")
    assert not problems, "sqlite-only APIs in the hub:\n" + "\n".join(problems)
