"""Text that people typed, made safe to print or show: clean characters, initials."""

from __future__ import annotations

import unicodedata

MAX_FIELD_CHARS = 240  # a runaway product name must not print a metre of paper


# Bidi embeddings, overrides and isolates: printed as-is they could make a name or a
# reason display in a different order than it reads (the "Trojan Source" trick).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(text: object) -> str:
    """Any value as printable text: NFC, controls turned to spaces, lone surrogates gone."""
    text = unicodedata.normalize("NFC", str(text if text is not None else ""))
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cs" or ch in _BIDI_CONTROLS:  # lone surrogates crash the font engine
            continue
        out.append(" " if cat == "Cc" else ch)
    text = " ".join("".join(out).split())
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
