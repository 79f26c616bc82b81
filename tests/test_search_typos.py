"""Search forgives typos: the vocabulary, the corrections, the kiosk's suggestion."""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlite_utils import Database

from app.core import db as dbmod
from app.core.search import (
    MAX_QUERY_CHARS,
    Found,
    QueryTooLong,
    search_forgiving,
    search_products,
)
from app.core.text import index_fold as fold
from app.store.migrations import m011_search_words, migrate
from app.store.sync.feed import _PRODUCT_SQL
from tests.conftest import screenshot

SUGGESTION = re.compile(r'class="search-suggestion-link" href="([^"]+)">([^<]*)</a>')


def _names(db, pks: list[int]) -> list[str]:
    by_pk = {
        pk: name
        for pk, name in db.execute(
            f"SELECT pk, name_fr FROM products WHERE pk IN ({','.join('?' * len(pks))})",  # noqa: S608
            pks,
        )
    }
    return [by_pk[pk] for pk in pks]


def _vocabulary(db) -> dict[str, int]:
    return dict(db.execute("SELECT word, docs FROM search_words").fetchall())


# --- The corrections, on the demo catalogue ---------------------------------------


@pytest.mark.parametrize(
    ("typed", "suggestion", "word"),
    [
        ("chausures", "chaussures", "chaussures"),
        ("randonée", "randonnée", "randonnée"),
        ("tshirt", "t-shirt", "t-shirt"),
        ("chausettes", "chaussettes", "chaussettes"),
        ("CHAUSURES", "chaussures", "chaussures"),
        # "Sandales de randonnée" too: their category is "Chaussures de randonnée".
        ("chausures randonée", "chaussures randonnée", "randonnée"),
        ("tnete", "tente", "tente"),  # two letters swapped
    ],
)
def test_typos_find_what_was_meant(store_db, typed, suggestion, word):
    assert search_products(store_db, typed) == []  # nothing as typed
    found = search_forgiving(store_db, typed)
    assert found.suggestion == suggestion
    names = _names(store_db, found.pks)
    assert names, typed
    assert all(word in n.lower() for n in names), names


def test_velo_without_accent_is_an_exact_match_with_no_suggestion(store_db):
    found = search_forgiving(store_db, "velo")
    assert found.suggestion is None
    assert found.pks == search_products(store_db, "velo")
    names = _names(store_db, found.pks)
    # "VTT" are "Vélos" too; further down, the brand "Vélocia" matches as well.
    assert all(fold(n).startswith(("velo", "vtt")) for n in names[:3])


@pytest.mark.parametrize("query", ["chaussures", "Chaussures de randonnée", "t-shirt", "tente"])
def test_exact_queries_rank_as_before_and_suggest_nothing(store_db, query):
    found = search_forgiving(store_db, query)
    assert found.pks and found.pks == search_products(store_db, query)
    assert found.suggestion is None


@pytest.mark.parametrize("query", ["zzzzzz", "qwxv", "ab", "x", "12345678", "velo tente"])
def test_nothing_near_suggests_nothing(store_db, query):
    found = search_forgiving(store_db, query)
    assert found.suggestion is None and found.pks == []


def _product_count(db) -> int:
    return db.execute("SELECT count(*) FROM products").fetchone()[0]


@pytest.mark.parametrize(
    "query", ['" OR * NEAR(', '"', "*", "NEAR(", "\" OR '", "'; DROP TABLE products;--", ""]
)
def test_fts_syntax_alone_finds_nothing_and_harms_nothing(store_db, query):
    """Only FTS5 syntax, no catalogue word: nothing found, nothing suggested, no error,
    the catalogue intact."""
    before = _product_count(store_db)
    assert search_forgiving(store_db, query) == Found([])
    assert _product_count(store_db) == before > 0


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ('"chaussures"*', "chaussures"),
        ("tente*", "tente"),
        ("(tente)", "tente"),
        ("chaussures^", "chaussures"),
        ('chausures"', "chausures"),
    ],
)
def test_fts_syntax_is_searched_as_words(store_db, query, words):
    """Quotes, stars, brackets around a word are not syntax: the results are the word's."""
    found = search_forgiving(store_db, query)
    assert found.pks, query
    assert found == search_forgiving(store_db, words)


@pytest.mark.parametrize("operator", ["OR", "NEAR", "AND", "NOT"])
def test_fts_operators_are_words_every_one_of_which_must_match(store_db, operator):
    """ "chaussures OR tente" would find both as FTS5 syntax; as words, "or" must match
    too, and no product holds it."""
    chaussures = search_products(store_db, "chaussures", limit=500)
    tente = search_products(store_db, "tente", limit=500)
    assert chaussures and tente and not set(chaussures) & set(tente)
    assert search_forgiving(store_db, f"chaussures {operator} tente") == Found([])
    assert search_forgiving(store_db, f"tente {operator}") == Found([])
    # The word alone is searched as a word too (not a syntax error).
    assert search_forgiving(store_db, operator).pks == search_products(store_db, operator)


def test_overlong_query_is_refused_as_before(store_db):
    with pytest.raises(QueryTooLong):
        search_forgiving(store_db, "chausures " * (MAX_QUERY_CHARS // 5))


# --- The vocabulary stays right when products change -------------------------------


def _product(pk: int, name_fr: str, name_en: str, brand: str = "Rolla") -> list:
    return [pk, f"T{pk:06d}", 1, brand, name_fr, name_en, "", "", 9900]


def test_vocabulary_follows_products_written_by_the_catalogue_feed(store_db):
    before = _vocabulary(store_db)
    assert "trottinette" not in before
    with dbmod.write(store_db):
        store_db.execute(_PRODUCT_SQL, _product(90001, "Trottinette Zéphyr", "Scooter Zéphyr"))
    found = search_forgiving(store_db, "trotinette")
    assert found.suggestion == "trottinette" and found.pks == [90001]
    assert _vocabulary(store_db)["zephyr"] == before["zephyr"] + 1

    # The feed's upsert renames it: the old word leaves the vocabulary.
    with dbmod.write(store_db):
        store_db.execute(_PRODUCT_SQL, _product(90001, "Planche à voile Zéphyr", "Windsurf"))
    assert "trottinette" not in _vocabulary(store_db)
    assert search_forgiving(store_db, "trotinette").pks == []
    assert search_forgiving(store_db, "planshe").suggestion == "planche"

    # An upsert that changes nothing in the names leaves the counts alone.
    with dbmod.write(store_db):
        store_db.execute(_PRODUCT_SQL, _product(90001, "Planche à voile Zéphyr", "Windsurf"))
    with dbmod.write(store_db):
        store_db.execute("DELETE FROM products WHERE pk = 90001")
    assert _vocabulary(store_db) == before


def test_vocabulary_follows_category_names(store_db):
    with dbmod.write(store_db):
        store_db.execute("UPDATE categories SET name_fr = 'Glisse urbaine' WHERE id = 1")
    assert _vocabulary(store_db)["glisse"] == 1


def _rows(db, sql: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(sql).fetchall()]


def test_triggers_backfill_and_fresh_inserts_agree(store_db, tmp_path):
    """The vocabulary kept by the triggers through updates and deletes is the one a
    fresh catalogue gives, and the one the migration's backfill gives."""
    with dbmod.write(store_db):
        for pk in range(95000, 95040):
            store_db.execute(
                _PRODUCT_SQL, _product(pk, f"Trottinette n°{pk} (ÉTÉ)", f"Scooter «{pk}»")
            )
        store_db.execute(
            "UPDATE products SET name_fr = 'Vélo-cargo Électrique ' || pk WHERE pk % 7 = 0"
        )
        store_db.execute("UPDATE products SET brand = 'Ôcéane' WHERE pk % 11 = 0")
        store_db.execute("DELETE FROM products WHERE pk >= 95000 AND pk % 3 = 0")
        store_db.execute("UPDATE categories SET name_en = 'Kick scooters' WHERE id = 2")
    kept = _vocabulary(store_db)
    assert kept["velo-cargo"] > 0 and kept["oceane"] > 0

    categories = _rows(store_db, "SELECT id, slug, name_fr, name_en, position FROM categories")
    products = _rows(
        store_db,
        "SELECT pk, ref, category_id, brand, name_fr, name_en, description_fr, "
        "description_en, price_cents FROM products",
    )
    fresh = Database(sqlite3.connect(tmp_path / "fresh.db"))
    migrate(fresh)
    fresh.conn.executemany("INSERT INTO categories VALUES (?, ?, ?, ?, ?)", categories)
    fresh.conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", products)
    assert _vocabulary(fresh) == kept

    # The backfill: the same rows there before the migration ran.
    for name in ("search_words_tri", "search_words", "search_words_stage"):
        fresh.execute(f"DROP TABLE {name}")  # triggers go with their tables
    for (trigger,) in fresh.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search_words%'"
    ).fetchall():
        fresh.execute(f"DROP TRIGGER {trigger}")
    m011_search_words(fresh)
    assert _vocabulary(fresh) == kept
    # ... and its trigram index answers like the one kept by the triggers.
    trigrams = "SELECT w.word FROM search_words_tri t JOIN search_words w ON w.id = t.rowid "
    trigrams += 'WHERE search_words_tri MATCH \'"aus" OR "arg"\' ORDER BY w.word'
    assert _rows(fresh, trigrams) == _rows(store_db, trigrams)


# --- One folding: Python's, the vocabulary's SQL, the search index's --------------

#: Every letter of Latin-1 and Latin Extended-A: French (œ Œ æ Æ é É ç Ç ÿ Ÿ...), and
#: every other letter the catalogue's names may hold.
LATIN_LETTERS = [chr(i) for i in range(0xC0, 0x180) if chr(i).isalpha()]


def test_latin_letters_cover_french_and_the_demo_catalogue(store_db):
    assert set("œŒæÆøØßéÉèÈêÊëËàÀâÂçÇîÎïÏôÔùÙûÛüÜÿŸ") <= set(LATIN_LETTERS)
    names = store_db.execute("SELECT group_concat(name_fr || name_en || brand, '') FROM products")
    held = {c for c in names.fetchone()[0] if c.isalpha() and not c.isascii()}
    assert held and held <= set(LATIN_LETTERS)


def test_python_and_sql_fold_every_latin_letter_alike(store_db):
    """The vocabulary's triggers (SQL, migration m011) fold each letter as
    app.core.text.index_fold does, and the search index (FTS5 unicode61) finds the folded
    word: a typed word and the catalogue's meet whatever letter they hold."""
    before = _vocabulary(store_db)
    with dbmod.write(store_db):
        for pk, c in enumerate(LATIN_LETTERS, start=96000):
            store_db.execute(_PRODUCT_SQL, _product(pk, f"zq{c}qz", f"zq{c}qz"))
    added = {w: n - before.get(w, 0) for w, n in _vocabulary(store_db).items()}
    by_sql = {w: n for w, n in added.items() if w.startswith("zq") and n}
    by_python: dict[str, int] = {}
    for c in LATIN_LETTERS:
        by_python[fold(f"zq{c}qz")] = by_python.get(fold(f"zq{c}qz"), 0) + 1  # one product
    assert by_sql == by_python
    for pk, c in enumerate(LATIN_LETTERS, start=96000):
        assert pk in search_products(store_db, f"zq{c}qz", limit=100), c
        assert pk in search_products(store_db, fold(f"zq{c}qz"), limit=100), c


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Vélo", "velo"),
        ("ŒUF Cœur", "œuf cœur"),
        ("ÆTHER", "æther"),
        ("Øre", "øre"),
        ("Straße STRASSE", "straße strasse"),
        ("Ça Ÿ ÿ Ł", "ca y y ł"),
        ("ſki", "ski"),
    ],
)
def test_fold_reads_letters_as_the_search_index(text, folded):
    assert fold(text) == folded


def test_picture_kinds_read_names_with_the_same_fold():
    from app.core import picture_kinds

    name = "Protège-tibias ŒUF Æ Straße d’été"
    assert picture_kinds._plain(name) == fold(name).replace("’", " ")
    assert picture_kinds.kind_from_name("PROTÈGE-TIBIAS Élan") == "shinguard"


# --- The kiosk's search page --------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_kiosk_suggests_and_the_suggestion_runs_its_search(client, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    r = client.get("/search", query_string={"q": "chausures"}, headers=headers)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert ("<html" in html) is not htmx
    match = SUGGESTION.search(html)
    assert match, html[:2000]
    href, text = match.groups()
    assert text == "Vouliez-vous dire «\u00a0chaussures\u00a0»\u00a0?"
    assert "«\u00a0chausures\u00a0»\u00a0: voici les articles les plus proches" in html
    # The suggestion sits above the best guesses, which are shown.
    assert html.index("search-suggestion") < html.index('class="grid"')
    assert html.count('class="card"') > 0
    assert parse_qs(urlsplit(href).query) == {"q": ["chaussures"]}

    followed = client.get(href.replace("&amp;", "&"), headers=headers)
    assert followed.status_code == 200
    again = followed.get_data(as_text=True)
    assert "search-suggestion" not in again and again.count('class="card"') > 0


def test_kiosk_suggestion_in_english(client):
    with client.session_transaction() as s:
        s["lang"] = "en"
    html = client.get("/search", query_string={"q": "randonée"}).get_data(as_text=True)
    assert SUGGESTION.search(html).group(2) == "Did you mean “randonnée”?"


@pytest.mark.parametrize("q", ["chaussures", "velo", "t-shirt"])
def test_exact_search_page_has_no_suggestion(client, q):
    html = client.get("/search", query_string={"q": q}).get_data(as_text=True)
    assert 'class="card"' in html and "search-suggestion" not in html


@pytest.mark.parametrize(
    "q",
    ["", "   ", '" OR * NEAR(', "NEAR(chausures", '"chausures"*', "x" * 10_000, "é" * 5_000],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_search_input_gives_a_normal_page(client, q, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    r = client.get("/search", query_string={"q": q}, headers=headers)
    assert r.status_code in (200, 400)
    html = r.get_data(as_text=True)
    assert 'id="results"' in html
    if not htmx:
        assert 'role="search"' in html
    if r.status_code == 400:
        assert len(q) > MAX_QUERY_CHARS and "trop longue" in html


# --- In a browser ------------------------------------------------------------------


@pytest.mark.parametrize(
    "viewport", [{"width": 1080, "height": 1920}, {"width": 1920, "height": 1080}]
)
def test_typing_a_typo_shows_a_tappable_suggestion(browser, store_server, viewport):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=viewport, locale="fr-FR", has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(store_server.url + "/search")
        page.locator("#q").fill("chausures")
        page.locator("#q").dispatch_event("input")
        link = page.locator(".search-suggestion-link")
        expect(link).to_have_text("Vouliez-vous dire «\u00a0chaussures\u00a0»\u00a0?")
        expect(page.locator("#results .card").first).to_be_visible()
        box = link.bounding_box()
        assert box and box["height"] >= 44  # a finger's target
        name = f"search-typo-{viewport['width']}x{viewport['height']}"
        screenshot(page, name)
        link.tap()
        expect(page).to_have_url(re.compile(r"/search\?q=chaussures$"))
        expect(page.locator("#q")).to_have_value("chaussures")
        expect(page.locator(".search-suggestion")).to_have_count(0)
        expect(page.locator("#results .card").first).to_be_visible()
        assert not errors
    finally:
        context.close()


@pytest.mark.parametrize("accessible", [False, True], ids=["standard", "accessible-mode"])
def test_axe_core_finds_no_serious_violation_on_the_suggestion(page, store_server, accessible):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    if accessible:
        page.goto(store_server.url + "/browse")
        page.get_by_role("button", name=re.compile("Mode accessible")).click()
        expect(page.locator("body")).to_have_class(re.compile("a11y"))
    page.goto(store_server.url + "/search?q=chausures")
    expect(page.locator(".search-suggestion-link")).to_be_visible()
    results = Axe().run(page)
    serious = [
        f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    if accessible:
        screenshot(page, "search-typo-accessible")
