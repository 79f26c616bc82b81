"""The manual (README and docs/) stands on its own: every link resolves inside the clone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "kiosk-setup/README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves_inside_the_repository(page: Path):
    for target in LINK.findall(page.read_text()):
        path = target.split("#", 1)[0]
        assert not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I), f"{target} leaves the repo"
        if not path:
            continue  # an anchor on the same page
        resolved = (page.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} points outside the repository"
        assert resolved.exists(), f"{target} (in {page.name}) does not exist"


def test_readme_tables_have_no_blank_line_inside():
    lines = (ROOT / "README.md").read_text().splitlines()
    for i in range(1, len(lines) - 1):
        inside = lines[i - 1].startswith("|") and lines[i + 1].startswith("|")
        assert not (inside and not lines[i].strip()), f"README.md line {i + 1} splits a table"


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text()[:400]
    assert "make demo" in head and "make test" in head


APP_PATH = re.compile(r"(?<![\w/.-])(app/[\w/.-]*\w)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_app_path_named_exists(page: Path):
    """A path into the code (`app/store/domain/outbox.py`, `app/hub/`) names a real place."""
    missing = sorted({p for p in APP_PATH.findall(page.read_text()) if not (ROOT / p).exists()})
    assert not missing, f"{page.name} names paths that do not exist: {missing}"
