"""French as a French shopper reads it (issue 13): the catalogue's typography and plurals.

French typography puts a no-break space (U+00A0, or the narrow U+202F) before ``:``,
``;``, ``?`` and ``!`` and inside « »; an ordinary space lets the sign wrap alone onto
the next line, no space at all is English. Counts go through ``ngettext`` (Jinja: ``{%
trans count=n %}`` or ``ngettext(...)``): "1 article", "2 articles", never
"article(s)" nor "Plus que 1".
"""

from __future__ import annotations

import ast
import html
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


# --- French written outside the catalogue (review of issue 13, finding 6) ---------------
# Python-built texts (messages to customers, printed tickets, status labels) and the
# literal text of templates reach people without going through messages.po: the same
# rules hold there.

# French by its words: a French letter or little word, or « around a word ».
_FRENCH = re.compile(
    r"[àâçéèêëîïôûùüœÀÂÇÉÈÊÎÔÛŒ]|«\s*\w|\b(?:le|la|les|des|du|vous|votre|vos|est|sont|une"
    r"|pour|avec|dans|pas|nous|merci|aux)\b",
    re.IGNORECASE,
)
# French by its signs alone: « » spaced, a space before : ; ? ! (English never puts
# one), or a hedged plural.
_FRENCH_SIGNS = re.compile(r"«\s|\s»|\s[:;?!](?:\s|$)|\w\((?:s|e|es|x)\)")
# "manquant(s)", "remboursé(e)", "prêt(e)s": a hedge, never French a shopper reads.
_HEDGE = re.compile(r"\w\((?:s|e|es|x)\)")
_TAG = re.compile(r"<[^<>]*>")
_CODE = re.compile(r"<code>.*?</code>", re.S)
# Retailer data, not the interface's text: the demo catalogue's descriptions (one of
# them deliberately hostile markup) and generated history.
_NOT_INTERFACE = ("app/demo/",)
# Files whose French the review did not ask the issue-13 part to fix (head-office and
# staff screens, a sync log line, the delivery-request e-mail): each still has ordinary
# spaces before ":" and is listed so the lead sees them; the last test fails once a file
# is clean, so the list only shrinks.
PENDING = {
    "app/hub/domain/promo_images.py": "head-office promotion image errors",
    "app/hub/domain/promotion_schedule.py": "head-office promotion schedule errors",
    "app/hub/domain/promotion_validation.py": "head-office promotion form errors",
    "app/hub/domain/promotions.py": "head-office promotion errors",
    "app/hub/protocol/order_request.py": "the delivery-request e-mail",
    "app/store/sync/push.py": "a sync failure line for staff",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def python_literals(source: str) -> list[tuple[int, str, int]]:
    """The string literals of a module (docstrings aside), f-strings with ``X`` for
    each replacement field, with the index of the top-level statement (a function, a
    class, an assignment) they are in: what the code can show, line by line."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for scope, statement in enumerate(tree.body):
        for node in ast.walk(statement):
            if id(node) in skip or id(node) in parts:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((node.lineno, node.value, scope))
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
                found.append((node.lineno, text, scope))
    return found


def french_text_problems(text: str, signs: bool = False) -> list[str]:
    """Typography and hedged plurals in the French of one text: each run of text between
    tags that reads as French (by its words; with ``signs``, also by its signs), code
    samples and the English half of a bilingual message (after ``---``) left out."""
    problems = []
    for run in _TAG.split(_CODE.sub("X", text.split("\n---\n")[0])):
        if _FRENCH.search(run) or (signs and _FRENCH_SIGNS.search(run)):
            problems += typography_problems(run)
            problems += [f"hedges a plural: {m.group()!r}" for m in _HEDGE.finditer(run)]
    return problems


# SQL is not prose: its "= ?" placeholders are not a French question.
_SQL = re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE|WHERE|CREATE|PRAGMA|MATCH)\b")


def python_french_problems(path: Path) -> list[str]:
    """French texts' problems in a module. A literal is French by its words; or by its
    signs (" : ", "(s)"…) when the function, class or assignment it is in also holds
    French words, as ``"Motif : {r}"`` among a ticket's French labels."""
    literals = [
        (line, text, scope)
        for line, text, scope in python_literals(path.read_text(encoding="utf-8"))
        if not _SQL.search(text)
    ]
    french_scopes = {s for _l, text, s in literals if _FRENCH.search(text.split("\n---\n")[0])}
    problems = []
    for line, text, scope in literals:
        signs = scope in french_scopes
        problems += [f"{line}: {p}" for p in french_text_problems(text, signs=signs)]
    return problems


_JINJA = re.compile(
    r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}|<script\b.*?</script>|<style\b.*?</style>", re.S
)
# French by its signs: « » spaced, a space before : ; ? ! (English never puts one), or
# a hedged plural.
_FRENCH_SIGNS = re.compile(r"«\s|\s»|\s[:;?!](?:\s|$)|\w\((?:s|e|es|x)\)")


def template_text(source: str) -> list[tuple[int, str]]:
    """A template's literal text, line by line: ``{{ … }}`` read as ``X``, statements,
    comments and code samples left out (line numbers kept)."""

    def blank(match: re.Match) -> str:
        kept = "X" if match.group().startswith("{{") else ""
        return kept + "\n" * match.group().count("\n")

    text = html.unescape(_CODE.sub("X", _JINJA.sub(blank, source)))
    return [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def template_french_problems(path: Path) -> list[str]:
    problems = []
    for line, text in template_text(path.read_text(encoding="utf-8")):
        problems += [f"{line}: {p}" for p in french_text_problems(text, signs=True)]
    return problems


def test_the_code_and_template_checkers_find_what_the_review_found():
    nb = "\u00a0"
    # Finding 6 as it was: the messages, the ticket, the order status, the shop pages.
    body = 'f"Code de retrait : {code}\\n{n} manquant(s), vous serez remboursé(e)"'
    assert len(python_french_problems_of(body)) == 3
    assert python_french_problems_of('x = "Merci de votre visite !"')
    assert python_french_problems_of('x = {"reason": "Motif : {r}", "qty": "Qté"}')
    assert python_french_problems_of('def f(n):\n    return [f"{n} manquant(s)", "Prête"]')
    # English in English code: "(s)" or "a : b" there is not French.
    assert python_french_problems_of('x = "%(n)d item(s)"\ny = "Prête"') == []
    assert python_french_problems_of('LABEL = ("Expirée : non retirée à temps", "Expired")')
    assert python_french_problems_of('x = "Magasin « Lyon »"')
    assert template_french_problems_of('<h1>{{ _("Search") }}{% if q %} : « {{ q }} »{% endif %}')
    assert template_french_problems_of("<p>{{ name }} : <del>{{ was }}</del></p>")
    assert template_french_problems_of("<p>Revenez en arrière : le formulaire est là.</p>")
    # What is right, or not French, passes.
    assert (
        python_french_problems_of(f'f"Code de retrait{nb}: {{code}}\\n---\\nPickup code: {{c}}"')
        == []
    )
    assert (
        python_french_problems_of(
            '"""Docstring : pas montrée."""\nSQL = "SELECT a FROM t WHERE b = :b"'
        )
        == []
    )
    assert python_french_problems_of('"%d/%m/%Y %H:%M"') == []
    assert python_french_problems_of('q = "SELECT nom FROM t WHERE prénom = ? AND id = ?"') == []
    assert (
        template_french_problems_of(f"<p>{{{{ _('Search') }}}}{nb}: «{nb}{{{{ q }}}}{nb}»</p>")
        == []
    )
    assert (
        template_french_problems_of('{# Commentaire : pas montré #}<p title="a">Note: {{ x }}</p>')
        == []
    )
    assert template_french_problems_of("<p>{{ _('Ready: %(n)s', n=1) }}</p>") == []


def python_french_problems_of(source: str) -> list[str]:
    path = _scratch("module.py", source)
    return python_french_problems(path)


def template_french_problems_of(source: str) -> list[str]:
    return template_french_problems(_scratch("page.html", source))


def _scratch(name: str, text: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / name
    path.write_text(text, encoding="utf-8")
    return path


def _app_modules() -> list[Path]:
    return [
        p
        for p in sorted((ROOT / "app").rglob("*.py"))
        if not str(p.relative_to(ROOT)).startswith(_NOT_INTERFACE)
    ]


def test_french_built_in_python_follows_french_typography_and_never_hedges():
    problems = [
        f"{path.relative_to(ROOT)}:{problem}"
        for path in _app_modules()
        if str(path.relative_to(ROOT)) not in PENDING
        for problem in python_french_problems(path)
    ]
    assert problems == [], "\n".join(problems)


def test_french_written_in_templates_follows_french_typography_and_never_hedges():
    problems = [
        f"{path.relative_to(ROOT)}:{problem}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for problem in template_french_problems(path)
    ]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", sorted(PENDING))
def test_a_pending_file_leaves_the_list_once_its_french_is_right(name):
    assert python_french_problems(ROOT / name), f"{name} is clean now: remove it from PENDING"


# --- One word, several French agreements (review of issue 13, finding 5) ---------------


def _render_fr(source: str, lang: str = "fr") -> str:
    from flask import Flask, render_template_string, session

    from app.web import i18n

    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.secret_key = "test"
    i18n.init_app(app)
    with app.test_request_context("/"):
        session["lang"] = lang
        return render_template_string(source).strip()


def _status_badge(status: str, lang: str = "fr") -> str:
    include = '{% include "orders/_status.html" %}{% endwith %}'
    return _render_fr(f"{{% with status={status!r} %}}{include}", lang)


def test_one_orders_status_agrees_with_la_commande():
    assert _status_badge("ready").endswith(">Prête</span>")
    assert _status_badge("expired").endswith(">Expirée</span>")
    assert _status_badge("cancelled").endswith(">Annulée</span>")
    assert _status_badge("ready", "en").endswith(">Ready</span>")
    # The list of orders ready to hand over is plural: its tab keeps "Prêtes".
    assert _render_fr('{{ _("Ready") }} {{ _("Expired") }}') == "Prêtes Expirées"


def test_the_order_pages_quantity_columns_and_ready_button_read_as_french():
    order = (ROOT / "templates/orders/order.html").read_text(encoding="utf-8")
    prep = (ROOT / "templates/orders/_prep.html").read_text(encoding="utf-8")
    columns = ("Ordered", "Ready", "Collected", "Returned")
    for english in columns:
        assert f'pgettext("quantity column", "{english}")' in order
    assert 'pgettext("prepare button", "Ready")' in prep
    shown = _render_fr(
        " | ".join(f'{{{{ pgettext("quantity column", "{e}") }}}}' for e in columns)
        + ' / {{ pgettext("prepare button", "Ready") }}'
    )
    assert shown == "Commandés | Prêts | Retirés | Retournés / Commande prête"
