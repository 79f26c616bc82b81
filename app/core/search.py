"""Shopper search: turn what was typed into a safe FTS5 query and run it.

Whatever the shopper types, only letters and digits reach FTS5, each token quoted
and used as a prefix, so ``"``, ``*``, ``OR`` or ``NEAR(`` are searched as words,
never parsed as syntax. Words are folded by :func:`app.core.text.index_fold`, the
folding the FTS5 index and the typo vocabulary share (:func:`fold`, importable from
here, is the hub's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz.distance import DamerauLevenshtein
from sqlite_utils import Database

from app.core.text import fold, index_fold

MAX_QUERY_CHARS = 100
MAX_TOKENS = 6
RANK_POOL = 300
_TOKEN = re.compile(r"[^\W_]+")


class QueryTooLong(ValueError):
    """The search text is longer than anything a shopper would type."""


def tokens(query: str, folding: Callable[[str], str] = fold) -> list[str]:
    """The words of a query, folded (by default as the hub's search columns are: see
    :func:`app.core.text.fold`); one-letter words are dropped unless alone."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLong(query[:20])
    words = _TOKEN.findall(folding(query))
    longer = [w for w in words if len(w) > 1]
    return (longer or words)[:MAX_TOKENS]


def fts_expression(words: list[str]) -> str:
    """An FTS5 MATCH expression: every word must match as a prefix."""
    return " AND ".join(f'"{w}"*' for w in words)


def search_products(db: Database, query: str, limit: int = 24) -> list[int]:
    """Product primary keys matching ``query``, best first (empty for an empty query)."""
    words = tokens(query, index_fold)  # as the store's FTS5 index folds
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


# --- Typos ---------------------------------------------------------------------------
# When nothing matches what was typed, each word that matches nothing is replaced by the
# catalogue word nearest to it: candidates share trigrams with it (``search_words_tri``,
# FTS5's trigram tokenizer over the catalogue's vocabulary, kept by the triggers of the
# store's migration m011), ranked by Damerau-Levenshtein distance (rapidfuzz), then by
# how many products use the word. The corrected query is searched, and shown as a
# suggestion ("Did you mean ...?"). Exact matches never pay for any of this.

MIN_TYPO_CHARS = 3  # shorter words are too ambiguous to correct
TYPO_CANDIDATES = 64  # trigram candidates ranked per word
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


@dataclass(frozen=True)
class Found:
    """What a search found: product keys, best first, and the suggestion it followed."""

    pks: list[int]
    #: The corrected query the results are for ("chaussures" for "chausures"), or None
    #: when they match what was typed.
    suggestion: str | None = None


def max_edits(length: int) -> int:
    """How many typing slips a word of ``length`` letters may hold and still be fixed."""
    return 1 if length <= 4 else 2 if length <= 8 else 3


def _typed_words(query: str) -> list[str]:
    """The query's words, folded, hyphenated words kept whole ("t-shirt")."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLong(query[:20])
    return _WORD.findall(index_fold(query))[:MAX_TOKENS]


def _phrase(word: str, prefix: bool = True) -> str:
    """FTS5 for one typed word: its parts in a row ("t-shirt" -> ``"t shirt"*``)."""
    parts = _TOKEN.findall(word)
    return '"' + " ".join(parts) + '"' + ("*" if prefix else "")


def _matches(db: Database, expression: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM products_fts WHERE products_fts MATCH ? LIMIT 1", [expression]
    ).fetchone()
    return row is not None


def _trigrams(word: str, swapped: bool = False) -> list[str]:
    """The word's trigrams; with ``swapped``, those of the word with two neighbours
    swapped ("tnete" shares none with "tente", its swapped "tente" all)."""
    variants = [word]
    if swapped:
        variants += [word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)]
    return sorted({v[i : i + 3] for v in variants for i in range(len(v) - 2)})


def nearest_word(db: Database, word: str) -> str | None:
    """The catalogue word nearest to ``word`` (folded), or None when none is near."""
    plain = word.replace("-", "")
    if len(plain) < MIN_TYPO_CHARS or plain.isdigit():
        return None
    # The candidates sharing the most trigrams first; those of the word with two
    # letters swapped only when none is near enough (each trigram costs a little).
    for swapped in (False, True):
        near = _nearest(db, word, plain, _trigrams(plain, swapped))
        if near is not None:
            return near
    return None


def _nearest(db: Database, word: str, plain: str, trigrams: list[str]) -> str | None:
    rows = db.execute(
        """SELECT w.word, w.docs FROM search_words_tri t JOIN search_words w ON w.id = t.rowid
           WHERE search_words_tri MATCH ? ORDER BY t.rank LIMIT ?""",
        [" OR ".join(f'"{t}"' for t in trigrams), TYPO_CANDIDATES],
    ).fetchall()
    best: tuple[float, int, str] | None = None
    for candidate, docs in rows:
        if not _WORD.fullmatch(candidate):
            continue
        target = candidate.replace("-", "")
        limit = max_edits(min(len(plain), len(target)))
        edits = DamerauLevenshtein.distance(plain, target, score_cutoff=limit)
        if len(target) > len(plain) + 1:
            # Still typing ("chausur"): compare with the word's beginning, for a bit more.
            head = DamerauLevenshtein.distance(plain, target[: len(plain) + 1], score_cutoff=limit)
            edits = min(edits, head + 0.5)
        if edits > limit or candidate == word:
            continue
        key = (edits, -docs, candidate)
        if best is None or key < (best[0], -best[1], best[2]):
            best = (edits, docs, candidate)
    return best[2] if best else None


def spelling(db: Database, word: str) -> str:
    """How the catalogue writes the folded ``word`` ("randonnee" -> "randonnée")."""
    row = db.execute(
        """SELECT name_fr, category_fr, name_en, category_en, brand FROM products_fts
           WHERE products_fts MATCH ? LIMIT 1""",
        [_phrase(word, prefix=False)],
    ).fetchone()
    for text in row or ():
        for written in _WORD.findall(text):
            if index_fold(written) == word:
                return written.lower()
    return word


def correct(db: Database, query: str) -> str | None:
    """``query`` with each word that matches nothing replaced by the nearest catalogue
    word, as the catalogue writes it; None when there is nothing to correct."""
    words = _typed_words(query)
    out: list[str] = []
    changed = False
    for word in words:
        if len(word.replace("-", "")) < MIN_TYPO_CHARS or _matches(db, _phrase(word)):
            out.append(spelling(db, word))
            continue
        near = nearest_word(db, word)
        if near is None:
            out.append(word)
            continue
        out.append(spelling(db, near))
        changed = True
    return " ".join(out) if changed else None


def _search_words(db: Database, words: list[str], limit: int) -> list[int]:
    words = [w for w in words if len(w) > 1] or words
    expression = " AND ".join(_phrase(w) for w in words if _TOKEN.search(w))
    if not expression:
        return []
    rows = db.execute(
        """SELECT rowid FROM (
               SELECT rowid, rank FROM products_fts WHERE products_fts MATCH ? LIMIT ?
           ) ORDER BY rank LIMIT ?""",
        [expression, RANK_POOL, limit],
    ).fetchall()
    return [r[0] for r in rows]


def search_forgiving(db: Database, query: str, limit: int = 24) -> Found:
    """:func:`search_products`, and when it finds nothing, the search for the nearest
    spelling the catalogue knows, with that spelling as the suggestion.

    Raises :class:`QueryTooLong` as :func:`search_products` does.
    """
    pks = search_products(db, query, limit)
    if pks:
        return Found(pks)
    suggestion = correct(db, query)
    if suggestion is None:
        return Found([])
    pks = _search_words(db, _typed_words(suggestion), limit)
    return Found(pks, suggestion) if pks else Found([])
