"""Shopper search: turn what was typed into a safe FTS5 query and run it.

Whatever the shopper types, only letters and digits reach FTS5, each token quoted
and used as a prefix, so ``"``, ``*``, ``OR`` or ``NEAR(`` are searched as words,
never parsed as syntax.
"""

from __future__ import annotations

import re
import unicodedata

from sqlite_utils import Database

MAX_QUERY_CHARS = 100
MAX_TOKENS = 6
RANK_POOL = 300
_TOKEN = re.compile(r"[^\W_]+")


class QueryTooLong(ValueError):
    """The search text is longer than anything a shopper would type."""


def fold(text: str) -> str:
    """Lower-case and strip accents: ``"Vélo"`` -> ``"velo"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def tokens(query: str) -> list[str]:
    """The words of a query, folded; one-letter words are dropped unless alone."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLong(query[:20])
    words = _TOKEN.findall(fold(query))
    longer = [w for w in words if len(w) > 1]
    return (longer or words)[:MAX_TOKENS]


def fts_expression(words: list[str]) -> str:
    """An FTS5 MATCH expression: every word must match as a prefix."""
    return " AND ".join(f'"{w}"*' for w in words)


def search_products(db: Database, query: str, limit: int = 24) -> list[int]:
    """Product primary keys matching ``query``, best first (empty for an empty query)."""
    words = tokens(query)
    if not words or (len(words) == 1 and len(words[0]) < 2):
        return []
    # Rank only the first RANK_POOL matches: a two-letter prefix matches a third of a
    # 100,000-product catalog, and ranking all of it costs ~60 ms for no visible gain.
    rows = db.execute(
        """SELECT rowid FROM (
               SELECT rowid, rank FROM products_fts WHERE products_fts MATCH ? LIMIT ?
           ) ORDER BY rank LIMIT ?""",
        [fts_expression(words), RANK_POOL, limit],
    ).fetchall()
    return [r[0] for r in rows]
