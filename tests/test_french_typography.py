"""French as a French shopper reads it (issue 13): the catalogue's typography and plurals.

French typography puts a no-break space (U+00A0, or the narrow U+202F) before ``:``,
``;``, ``?`` and ``!`` and inside « »; an ordinary space lets the sign wrap alone onto
the next line, no space at all is English. Counts go through ``ngettext`` (Jinja: ``{%
trans count=n %}`` or ``ngettext(...)``): "1 article", "2 articles", never
"article(s)" nor "Plus que 1".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "app/web/translations/fr/LC_MESSAGES/messages.po"
NO_BREAK = "\u00a0\u202f"

# What is not prose: placeholders, addresses, times, command lines' options.
_NOT_PROSE = re.compile(
    r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}|https?://\S+|\b\d{1,2}:\d{2}\b|--[\w-]+|\w+://"
)
_SIGN = re.compile(r"[:;?!]")
# A count (a %(…)d, or a %(n)s-like name) rendered before an English plural noun.
_COUNT = r"%\(\w+\)d|%\((?:n|num|count|qty|total|done|ok|left)\)s"
_COUNTED = re.compile(rf"(?:{_COUNT})\s+(?:[a-z-]+\s+)?[a-z]+s\b")
# Counts that never change: the plural is always right. Say why.
CONSTANT_COUNTS = {
    "Your cart is full (%(n)d items at most).": "n is carts.MAX_LINES, a constant over 1",
}


def french_messages() -> list[tuple[int, str, list[str], bool]]:
    """Every translated message: (line, msgid, its French forms, pluralizable)."""
    with PO.open("rb") as f:
        catalog = read_po(f)
    found = []
    for message in catalog:
        if not message.id:  # the header: metadata, not prose
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        found.append((message.lineno, msgid, [s for s in strings if s], message.pluralizable))
    return found


def typography_problems(text: str) -> list[str]:
    """What breaks French typography in one French string (empty: nothing)."""
    prose = _NOT_PROSE.sub("X", text)
    problems = []
    for sign in _SIGN.finditer(prose):
        before = prose[sign.start() - 1] if sign.start() else ""
        if before in NO_BREAK or (
            before in "?!" and prose[sign.start() - 2 : sign.start() - 1] in NO_BREAK
        ):
            continue
        kind = "an ordinary space" if before == " " else "no space"
        where = prose[max(0, sign.start() - 15) : sign.end() + 5]
        problems.append(f"{kind} before {sign.group()!r} in …{where}…")
    for match in re.finditer(r"«(.)", prose):
        if match.group(1) not in NO_BREAK:
            problems.append(
                f"« without a no-break space after it: …{prose[match.start() : match.end() + 15]}…"
            )
    for match in re.finditer(r"(.)»", prose):
        if match.group(1) not in NO_BREAK:
            where = prose[max(0, match.start() - 15) : match.end()]
            problems.append(f"» without a no-break space before it: …{where}…")
    if re.search(r"[“”]", prose):
        problems.append("English quotation marks “ ”: French uses « »")
    return problems


def test_the_checker_tells_french_typography_from_the_rest():
    nb = "\u00a0"
    assert typography_problems(f"Toujours là{nb}?") == []
    assert typography_problems(f"Code lu{nb}: %(code)s, à 15:22, sur http://x.test/a") == []
    assert typography_problems(f"Résultats pour «{nb}%(q)s{nb}»") == []
    assert typography_problems("Toujours là ?")  # an ordinary space
    assert typography_problems("Toujours là?")  # no space
    assert typography_problems(f"Trop long{nb}; réessayez ! ")
    assert typography_problems("Résultats pour « %(q)s »")
    assert typography_problems("Résultats pour “%(q)s”")
    assert not _COUNTED.search("Your cart is full.")
    assert _COUNTED.search("%(n)d items left") and _COUNTED.search("%(done)s of %(total)s changes")
    assert not _COUNTED.search("Reference %(sku)s is not in our catalog")


def test_every_french_message_follows_french_typography():
    problems = [
        f"messages.po:{line} {msgid!r}: {problem}"
        for line, msgid, strings, _plural in french_messages()
        for text in strings
        for problem in typography_problems(text)
    ]
    assert problems == [], "\n".join(problems)


def test_counts_go_through_ngettext_and_french_never_hedges_a_plural():
    problems = []
    for line, msgid, strings, plural in french_messages():
        if not plural and _COUNTED.search(msgid) and msgid not in CONSTANT_COUNTS:
            problems.append(f"messages.po:{line} {msgid!r} renders a count without ngettext")
        for text in strings:
            if re.search(r"\w\(s\)", text):
                problems.append(f"messages.po:{line} {text!r} hedges a plural: use ngettext")
            if not plural and re.search(r"\bPlus que %\(", text):  # "Plus que 1"
                problems.append(
                    f"messages.po:{line} {text!r}: ngettext (1 is not «\u00a0plus que\u00a0»)"
                )
    assert problems == [], "\n".join(problems)


# gettext calls in the templates and the code: _("…"), gettext("…"), lazy_gettext("…").
_GETTEXT_CALL = re.compile(r"""\b(?:_|gettext|lazy_gettext)\(\s*(["'])((?:(?!\1).)*)\1""")


@pytest.mark.parametrize("where", ["templates", "app"])
def test_no_template_or_view_renders_a_count_with_plain_gettext(where):
    problems = []
    for path in sorted((ROOT / where).rglob("*")):
        if path.suffix not in (".html", ".py") or not path.is_file():
            continue
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for call in _GETTEXT_CALL.finditer(text):
                msgid = call.group(2)
                if _COUNTED.search(msgid) and msgid not in CONSTANT_COUNTS:
                    problems.append(f"{path.relative_to(ROOT)}:{n} {msgid!r}: use ngettext")
    assert problems == [], "\n".join(problems)
