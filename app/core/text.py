"""Text that people typed, made safe to print or show: clean characters, initials; and
folded for searching (:func:`fold`)."""

from __future__ import annotations

import re
import unicodedata

MAX_FIELD_CHARS = 240  # a runaway product name must not print a metre of paper


# Bidi embeddings, overrides and isolates: printed as-is they could make a name or a
# reason display in a different order than it reads (the "Trojan Source" trick).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


_SPACES = re.compile(r"[^\S\u00a0\u202f]+")


def clean(text: object) -> str:
    """Any value as printable text: NFC, controls turned to spaces, lone surrogates gone."""
    text = unicodedata.normalize("NFC", str(text if text is not None else ""))
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cs" or ch in _BIDI_CONTROLS:  # lone surrogates crash the font engine
            continue
        out.append(" " if cat == "Cc" else ch)
    # Runs of spaces become one; no-break spaces stay (French typography: « Motif : »).
    text = _SPACES.sub(" ", "".join(out)).strip(" ")
    if len(text) > MAX_FIELD_CHARS:
        text = text[: MAX_FIELD_CHARS - 1] + "…"
    return text


def initials(name: str) -> str:
    """Initials of a person's first and last names: ``"Élodie Martin"`` -> ``"É. M."``."""
    words = [w for w in clean(name).split() if any(c.isalpha() for c in w)]
    if len(words) > 2:
        # First and last only: middle names add identifying detail and nothing useful.
        words = [words[0], words[-1]]
    return " ".join(_word_initial(w) for w in words)


def _word_initial(word: str) -> str:
    """``"Jean-Pierre"`` -> ``"J.-P."``; ``"Élodie"`` -> ``"É."``."""
    parts = [p for p in word.split("-") if any(c.isalpha() for c in p)]
    return "-".join(next(c for c in p if c.isalpha()).upper()[0] + "." for p in parts)


# --- Folding ---------------------------------------------------------------------------
# One folding for every search and every reading of a product's name: the shopper's
# query (app/core/search.py), the vocabulary of typo corrections (whose SQL twin is
# built from this function: the store's migration m011) and the words that pick a
# product's drawing (app/core/picture_kinds.py). It reads Latin letters as the store's
# FTS5 index does (tokenizer ``unicode61 remove_diacritics 2``), so a folded word finds
# the index's token: accents come off ("Vélo" -> "velo", "Ł" -> "ł"... and "ł" stays),
# case goes, and the letters of their own stay themselves: œ, æ, ø, ß, ð, þ, ĳ, ł.
# tests/test_search_typos.py checks all three agree on every letter of Latin-1 and
# Latin Extended-A.

#: What NFD leaves alone but the FTS5 tokenizer folds: the long s.
_FOLD_FIRST = str.maketrans({"ſ": "s"})


def index_fold(text: str) -> str:
    """Lower-case and strip accents exactly as the store's search index (FTS5 unicode61,
    remove_diacritics 2) does: ``"Vélo"`` -> ``"velo"``, ``"Œuf"`` -> ``"œuf"``,
    ``"Straße"`` -> ``"straße"``. For what must meet that index (the shopper's words,
    the typo vocabulary)."""
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_FIRST))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def fold(text: str) -> str:
    """Lower-case, strip accents and unfold compatibility forms, for text compared with
    text folded the same way (the hub's search columns): ``"Vélo"`` -> ``"velo"``,
    ``"Straße"`` -> ``"strasse"``, ``"ﬁ"`` -> ``"fi"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


MAX_STRING = 10_000


#: Control characters (C0 and C1, but tab, LF and CR: a reason typed on two lines) and
#: lone surrogates (what ``"\ud800"`` in JSON gives; no UTF-8 can hold one).
BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(text: str, limit: int = MAX_STRING) -> str | None:
    """What is wrong with ``text`` as a string we keep, or None."""
    if len(text) > limit:
        return f"at most {limit} characters (got {len(text)})"
    found = BAD_CHAR.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}) is not text"
    return f"control character U+{code:04X} refused"


def clean_text(text: str, limit: int) -> str:
    """``text`` made safe to store and show: surrogates and control characters replaced
    by U+FFFD, cut at ``limit`` (for what we accept and mark rather than refuse)."""
    return BAD_CHAR.sub("\ufffd", text[:limit])
