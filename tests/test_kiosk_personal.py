"""« Pour vous » at the kiosk (issue 14): a recognised shopper who consented sees what
the hub's card feed says is personal, evaluated with this store's stock; without
consent nothing personal is shown, nor computed."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.core import clock
from app.core import db as dbmod
from app.store.domain import personal
from app.store.sync import feed

from .axe_helpers import assert_axe_clean
from .conftest import screenshot

NBSP = "\u00a0"
CUSTOMER = "cus_personal_test"
CARD = "crd_personal_test"
FIRST = "Chloé"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_seq = iter(range(1_000_000, 2_000_000))


def _send_card(db, payload, *, card_id: str = CARD, customer: str = CUSTOMER, **extra) -> dict:
    """A ``customer_card`` change as the hub's feed sends it, through the real applier."""
    data = {"customer_id": customer, "card_id": card_id, "first_name": FIRST, **extra}
    if payload is not ...:
        data["personal"] = payload
    seq = next(_seq)
    page = {
        "changes": [{"seq": seq, "kind": "customer_card", "key": customer, "data": data}],
        "cursor": seq,
        "remaining": 0,
    }
    return feed.apply_page(db, page, None)


def _held(db, card_id: str = CARD):
    return db.execute(
        "SELECT personal, consent_personal FROM customer_cards WHERE card_id = ?", [card_id]
    ).fetchone()


def _product_sizes(db) -> dict[str, dict]:
    """Per product of a sized category: its category, and its stock here per size."""
    rows = db.execute(
        """SELECT p.ref, c.slug, v.size, coalesce(l.qty, 0)
           FROM products p JOIN categories c ON c.id = p.category_id
           JOIN variants v ON v.product_pk = p.pk
           LEFT JOIN stock_levels l ON l.sku = v.sku
                AND l.store_id = (SELECT id FROM stores WHERE is_self = 1)
           WHERE c.slug IN ('chaussures-running', 'baskets', 'chaussures-randonnee')"""
    ).fetchall()
    out: dict[str, dict] = {}
    for ref, slug, size, qty in rows:
        p = out.setdefault(ref, {"slug": slug, "sizes": {}})
        p["sizes"][size] = p["sizes"].get(size, 0) + qty
    return out


@pytest.fixture
def cast(store_db) -> dict[str, str]:
    """Products of one shoe category: in stock here in 42; in stock here but not in 42;
    not in stock here at all; and one of another sized category, in stock."""
    products = _product_sizes(store_db)
    slug = "chaussures-running"
    shoes = {ref: p["sizes"] for ref, p in products.items() if p["slug"] == slug}
    in_42 = [r for r, s in shoes.items() if s.get("42", 0) > 0]
    not_42 = [r for r, s in shoes.items() if s.get("42", 0) == 0 and sum(s.values()) > 0]
    if len(in_42) < 3 or not not_42:
        pytest.fail("the seeded catalogue lacks running shoes in and out of size 42 here")
    # One product with nothing here: empty its levels (as a sold-out shelf is).
    gone = in_42[2]
    store_db.execute(
        """UPDATE stock_levels SET qty = 0 WHERE sku IN (SELECT v.sku FROM variants v
           JOIN products p ON p.pk = v.product_pk WHERE p.ref = ?)""",
        [gone],
    )
    other = next(
        r for r, p in products.items() if p["slug"] == "baskets" and sum(p["sizes"].values()) > 0
    )
    return {
        "slug": slug,
        "in_42": in_42[0],
        "in_42_b": in_42[1],
        "not_42": not_42[0],
        "gone": gone,
        "other": other,
    }


def _payload(cast: dict[str, str]) -> dict:
    later = clock.iso(clock.utcnow() + timedelta(days=5))
    ended = clock.iso(clock.utcnow() - timedelta(minutes=1))
    return {
        "sizes": {cast["slug"]: "42"},
        "recent": [cast["not_42"], cast["in_42"], cast["gone"], "NO-SUCH-REF"],
        "suggested": [cast["gone"], cast["other"], cast["in_42_b"], cast["in_42"]],
        "offers": [
            {
                "id": "off-run",
                "title": "Offre running",
                "text": "-15\u00a0% ce mois-ci",
                "ends_at": later,
            },
            {"id": "off-old", "title": "Offre finie", "text": "passée", "ends_at": ended},
            {"id": "off-always", "title": "Livraison offerte", "text": "", "ends_at": None},
        ],
    }


def _pk(db, ref: str) -> int:
    return db.execute("SELECT pk FROM products WHERE ref = ?", [ref]).fetchone()[0]


# --- the store keeps what the feed says, validated ------------------------------------


def test_feed_keeps_the_payload_replaces_it_and_forgets_it_with_null(store_db, cast):
    counts = _send_card(store_db, _payload(cast))
    assert counts["applied"] == 1 and counts["failed"] == 0
    held, consented = _held(store_db)
    assert consented == 1 and f'"{cast["in_42"]}"' in held
    # Replaced on each change.
    _send_card(store_db, {"sizes": {}, "recent": [cast["other"]], "suggested": [], "offers": []})
    held, consented = _held(store_db)
    assert consented == 1 and cast["in_42"] not in held and cast["other"] in held
    # null: no consent (withdrawn at the hub): forgotten; an old hub sending no key too.
    _send_card(store_db, None)
    assert _held(store_db) == (None, 0)
    _send_card(store_db, _payload(cast))
    _send_card(store_db, ...)
    assert _held(store_db) == (None, 0)
    assert personal.for_you(store_db, CARD) is None


@pytest.mark.parametrize(
    "bad",
    [
        "everything",
        {"recent": "REF-1"},
        {"recent": ["R"] * 13},
        {"suggested": [1, 2]},
        {"sizes": ["42"]},
        {"offers": [{"id": "x", "title": "", "text": "t"}]},
        {"offers": [{"id": "x", "title": "t", "ends_at": "tomorrow"}]},
    ],
)
def test_a_malformed_payload_is_dropped_with_the_customer_id_logged_only(
    store_db, cast, caplog, bad
):
    _send_card(store_db, _payload(cast))
    with caplog.at_level(logging.WARNING):
        counts = _send_card(store_db, bad)
    # The card itself is applied (its first name kept); what was held is forgotten.
    assert counts["applied"] == 1 and counts["failed"] == 0
    assert _held(store_db) == (None, 0)
    assert store_db.execute(
        "SELECT first_name FROM customer_cards WHERE card_id = ?", [CARD]
    ).fetchone() == (FIRST,)
    lines = [r.getMessage() for r in caplog.records if "personal" in r.getMessage()]
    # Named by the customer id, as every customer log line; never the card id that
    # recognises them, nor their name.
    assert lines and all(CUSTOMER in line for line in lines)
    assert not any(FIRST in line or CARD in line for line in lines)


def test_forgotten_with_the_card_and_on_erasure(store_db, cast):
    _send_card(store_db, _payload(cast))
    # A renewed card: the old card's row (and what it held) goes.
    _send_card(store_db, _payload(cast), card_id="crd_renewed")
    assert _held(store_db) is None and _held(store_db, "crd_renewed")[1] == 1
    seq = next(_seq)
    erased = {
        "seq": seq,
        "kind": "customer_erased",
        "key": CUSTOMER,
        "data": {"customer_id": CUSTOMER, "card_ids": ["crd_renewed"], "order_ids": []},
    }
    feed.apply_page(store_db, {"changes": [erased], "cursor": seq}, None)
    assert store_db.execute("SELECT count(*) FROM customer_cards").fetchone()[0] == 0


# --- what the kiosk shows: in stock here, in their size ------------------------------


def test_for_you_is_what_is_in_stock_here_in_the_remembered_size(store_db, cast):
    _send_card(store_db, _payload(cast))
    shown = personal.for_you(store_db, CARD)
    # Seen online: not_42 (no 42 here), gone (nothing here), an unknown ref: left out.
    assert shown.recent == [_pk(store_db, cast["in_42"])]
    # Suggested: gone left out; another category with no remembered size: any size here;
    # already shown as seen online: not twice.
    assert shown.suggested == [_pk(store_db, cast["other"]), _pk(store_db, cast["in_42_b"])]
    # Offers: the ended one is not shown by the store's clock.
    assert [o["id"] for o in shown.offers] == ["off-run", "off-always"]
    assert personal.usual_size(store_db, CARD, cast["slug"]) == "42"
    assert personal.usual_size(store_db, CARD, "baskets") is None


def test_an_offer_ends_by_the_stores_clock(store_db, cast, fake_clock):
    _send_card(store_db, _payload(cast))
    assert "off-run" in [o["id"] for o in personal.for_you(store_db, CARD).offers]
    fake_clock.advance(5 * 86400 + 1)
    assert [o["id"] for o in personal.for_you(store_db, CARD).offers] == ["off-always"]


def test_without_consent_nothing_is_computed(store_db, cast):
    _send_card(store_db, None)
    statements: list[str] = []
    store_db.conn.set_trace_callback(statements.append)
    try:
        assert personal.for_you(store_db, CARD) is None
        assert personal.usual_size(store_db, CARD, cast["slug"]) is None
        assert personal.for_you(store_db, None) is None
    finally:
        store_db.conn.set_trace_callback(None)
    # Only the consent check ran: no catalogue, stock or payload read.
    assert statements and all("customer_cards" in s for s in statements)
    assert not any("SELECT personal" in s or "stock" in s for s in statements)


# --- the kiosk's pages ---------------------------------------------------------------


def _kiosk(app, card_id: str | None = CARD, lang: str | None = None):
    http = app.test_client()
    with http.session_transaction() as s:
        if card_id:
            s["card"] = card_id
        if lang:
            s["lang"] = lang
    return http


def _selected_size(html: str) -> str | None:
    m = re.search(r'class="size [^"]*is-on"[^>]*>\s*<span class="size-label">([^<]+)<', html)
    return m.group(1) if m else None


def test_browse_shows_for_you_with_consent_in_french_and_english(app, store_db, cast):
    _send_card(store_db, _payload(cast))
    html = _kiosk(app).get("/browse").get_data(as_text=True)
    assert 'id="for-you"' in html and f"Pour vous, {FIRST}" in html
    assert "Vu récemment en ligne, en stock ici" in html
    assert "Des suggestions en stock ici" in html
    block = html.split('id="for-you"')[1].split("</section>")[0]
    for ref in (cast["in_42"], cast["other"], cast["in_42_b"]):
        assert f'href="/product/{ref}"' in block
    for ref in (cast["not_42"], cast["gone"]):
        assert f'href="/product/{ref}"' not in block
    assert "Offre running" in block and "Jusqu'au " in block
    assert "Livraison offerte" in block and "Offre finie" not in html
    english = _kiosk(app, lang="en").get("/browse").get_data(as_text=True)
    assert f"For you, {FIRST}" in english and "Seen recently online, in stock here" in english
    assert "Until " in english


def test_an_offer_says_its_last_day_not_the_day_it_no_longer_runs(app, store_db, cast):
    from babel.dates import format_date

    last = (clock.utcnow() + timedelta(days=5)).date()
    payload = _payload(cast)
    # The hub's end is exclusive: the next day's midnight, in UTC or in the store's zone.
    utc_midnight = datetime.combine(last + timedelta(days=1), time(), UTC)
    paris_midnight = datetime.combine(last + timedelta(days=1), time(), ZoneInfo("Europe/Paris"))
    payload["offers"] = [
        {"id": "utc", "title": "A", "text": "", "ends_at": clock.iso(utc_midnight)},
        {"id": "paris", "title": "B", "text": "", "ends_at": clock.iso(paris_midnight)},
    ]
    _send_card(store_db, payload)
    html = _kiosk(app).get("/browse").get_data(as_text=True)
    said = f"Jusqu'au {format_date(last, 'medium', locale='fr')}<"
    assert html.count(said) == 2, said


def test_product_page_preselects_the_usual_size_said_in_words(app, store_db, cast):
    _send_card(store_db, _payload(cast))
    http = _kiosk(app)
    html = http.get(f"/product/{cast['in_42']}").get_data(as_text=True)
    assert f"Votre taille habituelle{NBSP}: 42" in html and _selected_size(html) == "42"
    # The shopper's own choice wins.
    sku = store_db.execute(
        """SELECT v.sku FROM variants v JOIN products p ON p.pk = v.product_pk
           WHERE p.ref = ? AND v.size != '42' LIMIT 1""",
        [cast["in_42"]],
    ).fetchone()[0]
    chosen = http.get(f"/product/{cast['in_42']}?sku={sku}").get_data(as_text=True)
    assert _selected_size(chosen) != "42"
    # Another category: no usual size said.
    other = http.get(f"/product/{cast['other']}").get_data(as_text=True)
    assert 'id="usual-size"' not in other
    english = _kiosk(app, lang="en").get(f"/product/{cast['in_42']}").get_data(as_text=True)
    assert "Your usual size: 42" in english


def _nothing_personal(html: str) -> None:
    assert 'id="for-you"' not in html and "Pour vous" not in html
    assert "Offre running" not in html and 'id="usual-size"' not in html
    assert "taille habituelle" not in html


@pytest.fixture
def not_called(monkeypatch):
    """The domain's entry points fail the test if a page calls them."""

    def boom(*_a, **_k):
        raise AssertionError("personal computed without consent")

    monkeypatch.setattr(personal, "for_you", boom)
    monkeypatch.setattr(personal, "usual_size", boom)


def _pages(http, cast) -> list[str]:
    out = []
    for url in ("/browse", f"/product/{cast['in_42']}"):
        r = http.get(url)
        assert r.status_code == 200, url
        out.append(r.get_data(as_text=True))
    return out


def test_no_consent_nothing_personal_and_nothing_computed(app, store_db, cast, not_called):
    _send_card(store_db, None)  # consent never given (or withdrawn at the hub)
    for html in _pages(_kiosk(app), cast):
        _nothing_personal(html)
        assert f"Bonjour {FIRST}" in html  # still recognised: greeted, nothing more
    # An anonymous shopper: as today.
    for html in _pages(_kiosk(app, card_id=None), cast):
        _nothing_personal(html)


def test_ne_plus_me_proposer_hides_everything_at_once(app, store_db, cast, monkeypatch):
    _send_card(store_db, _payload(cast))
    http = _kiosk(app)
    page = http.get("/browse").get_data(as_text=True)
    assert 'id="for-you"' in page
    r = http.post(
        "/carte/suggestions/non",
        data={"csrf_token": _CSRF.search(page).group(1)},
        headers={"Referer": "http://localhost/browse"},
    )
    assert r.status_code == 302
    monkeypatch.setattr(personal, "for_you", lambda *a: pytest.fail("computed"))
    monkeypatch.setattr(personal, "usual_size", lambda *a: pytest.fail("computed"))
    for html in _pages(http, cast):
        _nothing_personal(html)
        assert 'id="personal-off"' in html
    # A new visit with the same card at this store: still withdrawn (until the hub says).
    for html in _pages(_kiosk(app), cast):
        _nothing_personal(html)


def test_the_idle_reset_forgets_the_shopper(app, store_db, cast):
    _send_card(store_db, _payload(cast))
    http = _kiosk(app)
    page = http.get("/browse").get_data(as_text=True)
    assert 'id="for-you"' in page
    http.post("/session/reset", data={"csrf_token": _CSRF.search(page).group(1)})
    for html in _pages(http, cast):
        _nothing_personal(html)
        assert "reconnu" not in html


# --- screenshots, portrait and landscape ---------------------------------------------


def _session_cookie(data: Path, values: dict) -> tuple[str, str]:
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(data)})
    value = app.session_interface.get_signing_serializer(app).dumps(values)
    return app.config["SESSION_COOKIE_NAME"], value


def test_screenshots_for_you_portrait_and_landscape(browser, server_factory, store_data, cast):
    db = dbmod.connect(dbmod.db_path(store_data))
    try:
        _send_card(db, _payload(cast))
    finally:
        db.close()
    server = server_factory(store_data)
    name, value = _session_cookie(store_data, {"card": CARD})
    context = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    context.add_cookies([{"name": name, "value": value, "url": server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url + "/browse")
    expect(page.locator("#for-you-title")).to_have_text(f"Pour vous, {FIRST}")
    expect(page.locator("#for-you .card")).to_have_count(3)
    screenshot(page, "kiosk-for-you-1080x1920")
    assert_axe_clean(page, "Pour vous, portrait")
    page.locator("#a11y-toggle").click()
    expect(page.locator("#for-you")).to_be_visible()
    screenshot(page, "kiosk-for-you-1080x1920-accessible")
    assert_axe_clean(page, "Pour vous, portrait, accessible mode")
    page.locator("#a11y-toggle").click()
    page.goto(server.url + f"/product/{cast['in_42']}")
    expect(page.locator("#usual-size")).to_have_text(f"Votre taille habituelle{NBSP}: 42")
    expect(page.locator(".size.is-on .size-label")).to_have_text("42")
    screenshot(page, "kiosk-usual-size-1080x1920")
    assert_axe_clean(page, "usual size, portrait")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.url + "/browse")
    expect(page.locator("#for-you")).to_be_visible()
    screenshot(page, "kiosk-for-you-1920x1080")
    assert_axe_clean(page, "Pour vous, landscape")
    page.goto(server.url + f"/product/{cast['in_42']}")
    expect(page.locator("#usual-size")).to_be_visible()
    screenshot(page, "kiosk-usual-size-1920x1080")
    assert_axe_clean(page, "usual size, landscape")
    assert errors == []
    context.close()
