"""Render less (issue 15): static files under versioned, immutable addresses; the store's
pages doing only the work they show (counted, never timed)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from app.web.factory import ROOT
from app.web.static_files import IMMUTABLE

STATIC = ROOT / "static"


def _digest(relative: str) -> str:
    return hashlib.sha256((STATIC / relative).read_bytes()).hexdigest()[:12]


def _static_links(html: str) -> dict[str, str]:
    """``{'css/kiosk.css': '<v>'}`` for every /static/ address of a page."""
    return dict(re.findall(r'"/static/([^"?]+)\?v=([0-9a-f]+)"', html))


def test_every_static_address_of_the_kiosk_page_names_its_files_hash(client):
    html = client.get("/").get_data(as_text=True)
    links = _static_links(html)
    assert {"css/kiosk.css", "vendor/htmx.min.js", "js/kiosk.js", "favicon.svg"} <= set(links)
    for filename, version in links.items():
        assert version == _digest(filename), filename
    assert not re.search(r'"/static/[^"?]+"', html)  # no unversioned address left


def test_a_versioned_stylesheet_is_immutable_for_a_year(client):
    version = _digest("css/kiosk.css")
    r = client.get(f"/static/css/kiosk.css?v={version}")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == IMMUTABLE
    assert r.get_data() == (STATIC / "css/kiosk.css").read_bytes()


def test_an_old_or_missing_version_is_revalidated_not_pinned(client):
    for address in ("/static/css/kiosk.css", "/static/css/kiosk.css?v=000000000000"):
        r = client.get(address)
        assert r.status_code == 200
        cache = r.headers["Cache-Control"]
        assert "immutable" not in cache and "max-age=31536000" not in cache
        assert "no-cache" in cache


def test_other_spellings_of_a_file_are_not_remembered(app):
    """``css/./kiosk.css`` serves the same file: it is answered (re-validated), and the
    versions kept stay one per file on disk, whatever spellings clients send."""
    versions = app.extensions["static_versions"]
    client = app.test_client()
    version = _digest("css/kiosk.css")
    client.get(f"/static/css/kiosk.css?v={version}")
    before = len(versions._known)
    for i in range(1, 30):
        r = client.get(f"/static/css/{'./' * i}kiosk.css?v={version}")
        assert r.status_code == 200
        assert "immutable" not in r.headers["Cache-Control"]
    assert len(versions._known) == before


def test_a_changed_file_gets_a_new_address(app, tmp_path: Path):
    from app.web.static_files import StaticVersions

    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "a.css").write_text("body { color: red }")
    versions = StaticVersions(str(folder))
    first = versions.version("a.css")
    (folder / "a.css").write_text("body { color: blue; }")
    second = versions.version("a.css")
    assert first and second and first != second
    assert versions.version("../outside.css") is None
    assert versions.version("missing.css") is None


def test_the_hub_pages_get_versioned_immutable_static_files_too(tmp_path: Path):
    from app.hub.app import create_hub_app

    hub = create_hub_app({"DATA_DIR": str(tmp_path), "TESTING": True})
    with hub.test_request_context():
        from flask import url_for

        address = url_for("static", filename="css/hq.css")
    assert address == f"/static/css/hq.css?v={_digest('css/hq.css')}"
    r = hub.test_client().get(address)
    assert r.status_code == 200 and r.headers["Cache-Control"] == IMMUTABLE


def _count_translation_lookups(monkeypatch) -> list[int]:
    """Count Flask-Babel's look-ups of the request's translations (each walks the
    request context several times)."""
    import flask_babel

    calls = [0]
    original = flask_babel.Domain.get_translations

    def counted(self):
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", counted)
    return calls


def test_a_page_looks_its_translations_up_once_not_per_string(app, monkeypatch):
    from flask import render_template_string

    page = (
        "{% for i in range(40) %}{{ _('Home') }}|"
        "{{ ngettext('%(num)d item', '%(num)d items', i) }};{% endfor %}"
    )
    calls = _count_translation_lookups(monkeypatch)
    with app.test_request_context("/"):
        html = render_template_string(page)
        assert calls[0] <= 2, calls[0]  # 80 strings: one look-up for the page
        from flask_babel import gettext, ngettext

        assert html.count(f"{gettext('Home')}|") == 40
        assert f"{ngettext('%(num)d item', '%(num)d items', 3)};" in html
    assert "Accueil|" in html and "3 articles;" in html  # French, as before


def test_the_kiosk_speaks_english_when_chosen_and_french_by_default(client):
    fr = client.get("/").get_data(as_text=True)
    assert ">Recommencer</button>" in fr and "Start over" not in fr
    with client.session_transaction() as s:
        s["lang"] = "en"
    en = client.get("/").get_data(as_text=True)
    assert ">Start over</button>" in en and "Recommencer" not in en


def test_the_to_prepare_list_translates_its_rows_without_a_lookup_per_row(
    app, store_db, store_data, monkeypatch
):
    from datetime import timedelta

    from app.core import clock

    from .conftest import staff_login
    from .order_helpers import add_order

    now = clock.utcnow()
    for k in range(25):  # a full page, each promised at its own time, some late
        add_order(store_db, placed_at=now - timedelta(minutes=150 + 7 * k), customer=f"Client {k}")
    client = app.test_client()
    staff_login(client, store_data)
    first = client.get("/staff/orders?view=to_prepare").get_data(as_text=True)
    assert first.count('class="order-row"') == 25
    assert "promise pour" in first and "en retard de" in first
    calls = _count_translation_lookups(monkeypatch)
    again = client.get("/staff/orders?view=to_prepare").get_data(as_text=True)
    assert again.count('class="order-row"') == 25
    assert calls[0] <= 5, calls[0]  # was about two a row (55 for this page)
    rows = lambda html: re.findall(r'<a class="order-row".*?</a>', html, re.S)  # noqa: E731
    assert rows(again) == rows(first)  # the same words, from memory


def _statements(app) -> list[str]:
    """Every SQL statement the app's connection on this thread runs from now on (the
    statements SQLite runs inside FTS5 for one of them, "-- …", left out)."""
    from app.store.storage import get_db

    seen: list[str] = []

    def statement(sql: str) -> None:
        if not sql.lstrip().startswith("--"):
            seen.append(sql)

    with app.app_context():
        get_db().conn.set_trace_callback(statement)
    return seen


def test_search_results_read_their_sizes_in_one_query_not_one_per_card(app, client):
    from app.core import catalog
    from app.store.storage import get_db

    with app.app_context():
        db = get_db()
        word = db.execute("SELECT name_fr FROM products LIMIT 1").fetchone()[0].split()[0]
        shown = len(catalog.products_by_pks(db, catalog_pks(db, word), "fr"))
    assert shown >= 5, shown  # a page of several cards, each a sized product
    seen = _statements(app)
    r = client.get(f"/search?q={word}&n=1", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.get_data(as_text=True).count('class="card') >= 5
    per_card = [s for s in seen if "FROM variants WHERE product_pk = ?" in s]
    assert per_card == []
    assert sum("size_order FROM variants" in s and "product_pk IN" in s for s in seen) == 1
    assert len(seen) <= 20, len(seen)  # was 35 for a page of 24 cards


def catalog_pks(db, word: str) -> list[int]:
    from app.core.search import search_forgiving

    return search_forgiving(db, word, limit=24).pks
