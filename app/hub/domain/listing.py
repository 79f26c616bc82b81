"""Pages of a long list, and the folded text searches (domain code, no Flask).

Every list of the console and the web shop that grows with the chain (stores, orders,
promotions, the audit log) is read a page at a time: a ``count(*)`` and one page of
rows, ``LIMIT``/``OFFSET`` in SQL, never the whole list in Python. :class:`Page` is what
the templates draw (the rows, the total, the links around the current page).

Page numbers come from the address bar: :func:`page_number` reads anything (``abc``,
``-5``, 30 digits) as a page, the first when it is not one; :func:`paginate` moves a page
past the end back to the last page. So a wrong number is never an error page.

Store searches look in ``stores.search_text`` (the folded name, city and id kept by
app/hub/migrations.py): every word typed must appear, accents and case aside, on both
backends (a plain LIKE: both sides are folded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from app.core.search import MAX_QUERY_CHARS, tokens
from app.hub.database import Db
from app.hub.migrations import fill_store_search

PAGE_SIZE = 50
#: Past this many digits a "page number" is not one (and SQL's OFFSET stays small).
MAX_PAGE_DIGITS = 7


@dataclass
class Page:
    """One page of a list: ``items``, the ``total`` count, this page's ``number``
    (1-based) and ``size``."""

    items: list[dict[str, Any]]
    total: int
    number: int
    size: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first(self) -> int:
        """The position of the page's first item in the list (1-based; 0 when empty)."""
        return (self.number - 1) * self.size + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def window(self, around: int = 2) -> list[int | None]:
        """The page numbers to link: the first, the last, and ``around`` either side of
        this one; None where pages are skipped (drawn as "…")."""
        shown = {1, self.pages, *range(self.number - around, self.number + around + 1)}
        out: list[int | None] = []
        for n in sorted(p for p in shown if 1 <= p <= self.pages):
            if out and out[-1] is not None and n > out[-1] + 1:
                out.append(None)
            out.append(n)
        return out


def page_number(raw: object) -> int:
    """The page asked for in the address (``?page=``): 1 unless it is a positive number
    of at most :data:`MAX_PAGE_DIGITS` digits."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return 1
    if len(raw) > MAX_PAGE_DIGITS:
        return 1
    return max(1, int(raw))


def paginate(total: int, wanted: int, size: int = PAGE_SIZE) -> tuple[int, int]:
    """``(page, offset)``: the page asked for, or the last one when it is past the end."""
    pages = max(1, math.ceil(total / size))
    number = min(max(1, wanted), pages)
    return number, (number - 1) * size


def search_words(text: object) -> list[str]:
    """The folded words of a search box (at most the first 100 characters are read)."""
    if not isinstance(text, str):
        return []
    return tokens(text[:MAX_QUERY_CHARS])


def like_pattern(word: str) -> str:
    """``%word%`` with LIKE's wildcards in ``word`` escaped (``ESCAPE '\\'``)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_match(column: str, words: list[str]) -> tuple[str, list[str]]:
    """SQL (and its parameters) true when ``column`` (folded text) holds every word."""
    if not words:
        return "1 = 1", []
    clause = " AND ".join(f"{column} LIKE ? ESCAPE '\\'" for _w in words)
    return f"({clause})", [like_pattern(w) for w in words]


def store_match(db: Db, words: list[str], alias: str = "s") -> tuple[str, list[str]]:
    """SQL for "this store matches the search" (name, city or id; every word), after
    folding any store registered since the last search (usually none: one index look-up)."""
    if not words:
        return "1 = 1", []
    fill_store_search(db)
    return text_match(f"{alias}.search_text", words)
