"""The tree is the architecture (docs/architecture.md): the rules that keep it so.

`lint-imports` (import-linter, contracts in pyproject.toml) checks the layers and the
forbidden imports; these tests check what a static contract cannot, or says less
clearly: what a fresh interpreter really loads, a cycle through any module (package
`__init__` modules included), module size, formatter switches, and registration by a
list rather than by an import's side effect.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"

FLASK_FAMILY = {"flask", "werkzeug", "flask_babel", "flask_wtf", "flask_htmx", "waitress"}

# Code that runs without Flask: the shared core and the domain of each side. A domain
# function takes the database first and knows nothing of requests, so the CLI, the sync
# worker, the benchmarks and the tests can call it without an application. The store's
# sync (worker threads, `kiosk sync`) and the hub's protocol (a batch of transactions)
# need no request either.
FLASK_FREE = [
    "app.core",
    "app.store.domain",
    "app.hub.domain",
    "app.store.sync",
    "app.hub.protocol",
]

IMPORT_ALL_AND_REPORT = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(info.name)
family = set(sys.argv[2].split(","))
print(sorted(m for m in sys.modules if m.split(".")[0] in family))
"""


@pytest.mark.parametrize("package", FLASK_FREE)
def test_flask_free_packages_load_no_flask_in_a_fresh_interpreter(package: str):
    """Importing every module of the package in a new Python loads nothing of Flask's."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_AND_REPORT, package, ",".join(sorted(FLASK_FAMILY))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{package} loads {result.stdout.strip()}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other (size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_strongly_connected_finds_a_cycle_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere_in_app():
    """No module reaches itself through imports, counting imports inside functions.

    import-linter's acyclic_siblings contract checks the packages' children; this one
    follows module to module, so a cycle through a package's `__init__` counts too. A
    cycle means two modules that cannot be understood, tested or moved one without the
    other: break it by moving the shared part down a layer.
    """
    graph = grimp.build_graph("app", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    problems = []
    for group in _strongly_connected(edges):
        members = set(group)
        lines = [f"cycle between {', '.join(group)}:"]
        for importer in group:
            for imported in sorted(edges[importer] & members):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    where = f"{importer.replace('.', '/')}.py:{detail['line_number']}"
                    lines.append(f"  {where}: {detail['line_contents']}")
        problems.append("\n".join(lines))
    assert not problems, "\n".join(problems)


# A module holding logic stays under this many lines: past it, it does more than one job
# and should be split by job, each module named for what it holds.
MAX_LINES = 400

# Longer modules that read better whole, and why.
LONG_BY_NATURE = {
    # ~450 lines of catalogue tables (categories, sizes, brands, models, colours, uses)
    # and the ~390 lines of generators that draw from them: the recipe reads as one.
    "app/demo/seed.py": "data tables: the demo retailer's catalogue, and its generators",
    "app/core/picture_drawings.py": "drawing code: one function per drawn product picture",
    "app/store/migrations.py": "schema history: one named migration per change, never edited",
    "app/hub/migrations.py": "schema history: one named migration per change, never edited",
}


def test_long_modules_allowed_by_nature_exist():
    for path in LONG_BY_NATURE:
        assert (ROOT / path).is_file(), f"{path} is allowed to be long but does not exist"


def test_no_module_over_the_size_limit():
    too_long = []
    for path in sorted(APP.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        count = len(path.read_text().splitlines())
        if count > MAX_LINES and name not in LONG_BY_NATURE:
            too_long.append(f"{name}: {count} lines")
    assert not too_long, f"over {MAX_LINES} lines, split by job: {too_long}"


# Written in two halves so that this file does not count itself.
FORMATTER_OFF = re.compile("#" + r"\s*fmt:\s*(skip|off)\b")
MAX_FORMATTER_OFF = 5


def test_the_formatter_is_switched_off_only_a_handful_of_times():
    """ruff formats everything; a table of data that reads better aligned may opt out."""
    found = []
    for folder in ("app", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if FORMATTER_OFF.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}")
    assert len(found) <= MAX_FORMATTER_OFF, found


NOQA_UNUSED_IMPORT = re.compile(r"#\s*noqa\s*:[^#]*\bF401\b")


def test_nothing_is_imported_for_its_side_effect():
    """Routes and handlers are registered by a list that names them, never by an import.

    An import kept only for what it does when it runs (registering routes or handlers)
    hides the list of what is registered, and ties the order of imports to behaviour:
    such imports are marked `noqa: F401`, or come after the module's code at the bottom
    of a file. Neither may appear under app/.
    """
    found = []
    for path in sorted(APP.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            if NOQA_UNUSED_IMPORT.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
        code_started = False
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                code_started = True
            elif code_started and isinstance(node, ast.Import | ast.ImportFrom):
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)} (after the code)")
    assert not found, "\n".join(found)
