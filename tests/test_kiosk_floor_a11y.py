"""The kiosk on the shop floor: the category grid's stock badge for sized items, the
accessible mode (selection shown without colour, controls within reach from a
wheelchair), promotion banners that fit at both orientations, and prices on an open
category page that follow a publication (issue 13)."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from app.core import db as dbmod
from app.core.cart_codec import CartLine
from app.store.views.kiosk import PAGE_SIZE

from .axe_helpers import assert_axe_clean as _axe_clean
from .cart_helpers import cart_token, stocked_variants
from .conftest import SELF_STORE, screenshot
from .order_helpers import install_hub_key
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, store_env


def _sized_product(db) -> dict:
    """A product in two colours and several sizes, with its category and page there."""
    pk, ref, slug, category_id = db.execute(
        """SELECT p.pk, p.ref, c.slug, c.id FROM products p
           JOIN categories c ON c.id = p.category_id
           WHERE (SELECT COUNT(DISTINCT size) FROM variants v WHERE v.product_pk = p.pk) >= 4
             AND (SELECT COUNT(DISTINCT colour_code) FROM variants v
                  WHERE v.product_pk = p.pk) >= 2
           ORDER BY p.pk LIMIT 1"""
    ).fetchone()
    rank = db.execute(
        """SELECT COUNT(*) FROM products q, products p WHERE p.pk = ?
             AND q.category_id = p.category_id
             AND (q.name_fr < p.name_fr OR (q.name_fr = p.name_fr AND q.pk < p.pk))""",
        [pk],
    ).fetchone()[0]
    variants = db.execute(
        """SELECT sku, size, colour_code FROM variants WHERE product_pk = ?
           ORDER BY colour_code, size_order""",
        [pk],
    ).fetchall()
    return {
        "pk": pk,
        "ref": ref,
        "slug": slug,
        "category_id": category_id,
        "page": rank // PAGE_SIZE + 1,
        "variants": variants,
    }


def _set_levels(db, levels: dict[str, int]) -> None:
    """This store's hub-known level of each SKU (no own movements pending here)."""
    with db.conn:
        for sku, qty in levels.items():
            db.execute(
                """INSERT INTO stock_levels (store_id, sku, qty, as_of)
                   VALUES (?, ?, ?, '2026-01-01T00:00:00Z')
                   ON CONFLICT (store_id, sku) DO UPDATE SET qty = excluded.qty""",
                [SELF_STORE, sku, qty],
            )
        db.execute("DELETE FROM stock_movements")


def _card_badge(client, product: dict, lang: str = "fr") -> str:
    client.post("/lang", data={"lang": lang})
    r = client.get(f"/category/{product['slug']}", query_string={"page": product["page"]})
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    card = re.search(
        rf'<li class="card">\s*<a href="/product/{product["ref"]}">(.*?)</li>', text, re.S
    )
    assert card, "the product's card is on its category page"
    badge = re.search(r'<span class="badge [^"]+">([^<]+)</span>', card.group(1))
    return html.unescape(badge.group(1))


@pytest.fixture
def csrf_free_client(store_data):
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(store_data), "TESTING": True, "WTF_CSRF_ENABLED": False})
    return app.test_client()


def test_a_sized_cards_badge_counts_the_sizes_here_not_the_units(csrf_free_client, store_db):
    product = _sized_product(store_db)
    variants = product["variants"]
    colours = sorted({c for _, _, c in variants})
    by = {(size, colour): sku for sku, size, colour in variants}
    sizes = list(dict.fromkeys(size for _, size, _ in variants))
    # Nothing, then size A in both colours (3 + 5 units) and size B in the second (4):
    # 12 units in two sizes.
    levels = dict.fromkeys((sku for sku, _, _ in variants), 0)
    _set_levels(store_db, levels)
    assert _card_badge(csrf_free_client, product) == "Épuisé"
    levels[by[(sizes[0], colours[0])]] = 3
    levels[by[(sizes[0], colours[1])]] = 5
    levels[by[(sizes[1], colours[1])]] = 4
    _set_levels(store_db, levels)
    assert _card_badge(csrf_free_client, product) == "2 tailles dispo"
    assert _card_badge(csrf_free_client, product, "en") == "2 sizes available"
    # Every size in some colour: the count of sizes, never the 12+ units.
    for size in sizes:
        levels[by.get((size, colours[1])) or by[(size, colours[0])]] = 7
    _set_levels(store_db, levels)
    n = len(sizes)
    assert _card_badge(csrf_free_client, product) == f"{n} tailles dispo"
    # One size left, in one colour: said as such, French typography.
    _set_levels(store_db, dict.fromkeys(levels, 0) | {by[(sizes[2], colours[0])]: 9})
    assert _card_badge(csrf_free_client, product) == f"Dernière taille\u00a0: {sizes[2]}"
    assert _card_badge(csrf_free_client, product, "en") == f"Last size: {sizes[2]}"


def test_a_single_size_cards_badge_keeps_units_with_plural_agreement(csrf_free_client, store_db):
    pk, ref, slug = store_db.execute(
        """SELECT p.pk, p.ref, c.slug FROM products p JOIN categories c ON c.id = p.category_id
           WHERE (SELECT COUNT(*) FROM variants v WHERE v.product_pk = p.pk) = 1
           ORDER BY p.pk LIMIT 1"""
    ).fetchone()
    product = _sized_product(store_db) | {"pk": pk, "ref": ref, "slug": slug}
    rank = store_db.execute(
        """SELECT COUNT(*) FROM products q, products p WHERE p.pk = ?
             AND q.category_id = p.category_id
             AND (q.name_fr < p.name_fr OR (q.name_fr = p.name_fr AND q.pk < p.pk))""",
        [pk],
    ).fetchone()[0]
    product["page"] = rank // PAGE_SIZE + 1
    (sku,) = store_db.execute("SELECT sku FROM variants WHERE product_pk = ?", [pk]).fetchone()
    for qty, fr, en in (
        (1, "Dernier article", "Last one"),
        (2, "Plus que 2", "Only 2 left"),
        (7, "7 en stock", "7 in stock"),
        (0, "Épuisé", "Out of stock"),
    ):
        _set_levels(store_db, {sku: qty})
        assert _card_badge(csrf_free_client, product) == fr
        assert _card_badge(csrf_free_client, product, "en") == en


# --- In Chromium ----------------------------------------------------------------------

PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
# docs/kiosk.md, "Accessible mode and reach": EN 301 549 8.3.2 / ADA §308.2.1, operable
# parts at most 1,220 mm from the floor; on the floor kiosk, below y = 1,000 px of a
# portrait screen's 1,920 and below the top 15 % (162 px) of a landscape one.
REACH_TOP = {"portrait": 1000, "landscape": 162}

# Every control that can be touched now: its box clipped by the viewport and by every
# scrolling ancestor (what is scrolled out of its box cannot be touched).
_TOUCHABLE = """() => {
  const out = [];
  const controls = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])');
  for (const el of controls) {
    if (el.classList.contains('skip') || !el.checkVisibility({visibilityProperty: true})) continue;
    const r = el.getBoundingClientRect();
    let top = Math.max(r.top, 0), bottom = Math.min(r.bottom, innerHeight);
    let left = Math.max(r.left, 0), right = Math.min(r.right, innerWidth);
    for (let a = el.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowY !== 'visible' || s.overflowX !== 'visible') {
        const q = a.getBoundingClientRect();
        top = Math.max(top, q.top); bottom = Math.min(bottom, q.bottom);
        left = Math.max(left, q.left); right = Math.min(right, q.right);
      }
    }
    if (bottom - top > 0.5 && right - left > 0.5) {
      out.push({html: el.outerHTML.slice(0, 90), top: top, bottom: bottom});
    }
  }
  return out;
}"""


def _accessible_page(browser, server, viewport):
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url + "/browse")
    page.get_by_role("button", name=re.compile("Mode accessible")).click()
    expect(page.locator("body")).to_have_class(re.compile("a11y"))
    return context, page, errors


def _in_stock_sizes(db) -> tuple[str, str, str]:
    """(ref, sku, sku of another size in stock, same colour) of a product in colours."""
    return db.execute(
        """SELECT p.ref, a.sku, b.sku FROM variants a
           JOIN variants b ON b.product_pk = a.product_pk AND b.colour_code = a.colour_code
                AND b.size_order > a.size_order
           JOIN products p ON p.pk = a.product_pk
           JOIN stock_levels la ON la.sku = a.sku AND la.store_id = ? AND la.qty > 0
           JOIN stock_levels lb ON lb.sku = b.sku AND lb.store_id = ? AND lb.qty > 0
           WHERE (SELECT COUNT(DISTINCT colour_code) FROM variants v
                  WHERE v.product_pk = p.pk) >= 2
           ORDER BY p.pk LIMIT 1""",
        [SELF_STORE, SELF_STORE],
    ).fetchone()


def _ring_and_check(locator) -> dict:
    return locator.evaluate(
        """el => { const s = getComputedStyle(el), a = getComputedStyle(el, '::after');
           return {border: parseFloat(s.borderTopWidth), shadow: s.boxShadow,
                   check: a.content, checkBg: a.backgroundColor, checkColour: a.color,
                   checkWidth: parseFloat(a.width)}; }"""
    )


@pytest.mark.browser
def test_accessible_mode_shows_the_selection_without_colour(browser, store_server, store_db):
    ref, sku, other = _in_stock_sizes(store_db)
    context, page, errors = _accessible_page(browser, store_server, PORTRAIT)
    try:
        page.goto(f"{store_server.url}/product/{ref}?sku={sku}")
        chosen = page.locator(f'.size[data-sku="{sku}"]')
        expect(chosen).to_have_attribute("aria-current", "true")
        plain = page.locator(f'.size[data-sku="{other}"]')
        expect(plain).not_to_have_attribute("aria-current", "true")
        on, off = _ring_and_check(chosen), _ring_and_check(plain)
        # A thick ring (border and an outer black ring: shape, not hue) and a check mark.
        assert on["border"] >= 6 and on["border"] >= 2 * off["border"], (on, off)
        assert "rgb(0, 0, 0)" in on["shadow"] and "10px" in on["shadow"], on
        assert "✓" in on["check"] and on["checkWidth"] >= 24, on
        assert on["checkBg"] == "rgb(0, 0, 0)" and on["checkColour"] == "rgb(255, 255, 255)"
        assert off["check"] == "none" and off["shadow"] == "none", off
        colour = page.locator('.colour[aria-current="true"]')
        expect(colour).to_have_count(1)
        ring = _ring_and_check(colour)
        assert ring["border"] >= 6 and "✓" in ring["check"], ring
        for other_colour in page.locator(".colour:not([aria-current])").all():
            assert _ring_and_check(other_colour)["check"] == "none"
        # Another size chosen: the ring and the check mark move with it.
        plain.click()
        expect(page.locator(f'.size[data-sku="{other}"]')).to_have_attribute("aria-current", "true")
        assert "✓" in _ring_and_check(page.locator(f'.size[data-sku="{other}"]'))["check"]
        assert _ring_and_check(page.locator(f'.size[data-sku="{sku}"]'))["check"] == "none"
        page.locator(".sizes").scroll_into_view_if_needed()
        screenshot(page, "130-a11y-product-selected-size-portrait")
        _axe_clean(page, "product, accessible mode")
        assert errors == []
    finally:
        context.close()


# The box the page scrolls in, scrolled to its end until it is there (a scroll is not
# always immediate, and a page still growing, e.g. results arriving, moves its end).
_MAIN_TO_END = """() => { const m = document.querySelector('main');
  m.scrollTo(0, m.scrollHeight);
  return m.scrollTop + m.clientHeight >= m.scrollHeight - 1; }"""
_MAIN_AT_TOP = "() => document.querySelector('main').scrollTop === 0"


def _within_reach(page, label: str, orientation: str) -> None:
    """Every control of the page, at the top of its scroll and at its end, is below
    the reach line and on screen; the top bar's controls are at the foot."""
    reach_top = REACH_TOP[orientation]
    height = page.viewport_size["height"]
    for where in ("top", "bottom"):
        if where == "bottom":  # the page scrolls in its own box, never out of reach
            page.wait_for_function(_MAIN_TO_END)
        shown = page.evaluate(_TOUCHABLE)
        assert len(shown) >= 4, (label, where, shown)  # the home, cart, FR/EN, ♿...
        out = [c for c in shown if c["top"] < reach_top - 0.5]
        assert out == [], (label, where, out)
        assert max(c["bottom"] for c in shown) <= height + 0.5, (label, where)
    toggle = page.locator("#a11y-toggle").bounding_box()
    assert toggle["y"] >= height * 0.8, (label, toggle)
    page.locator("main").evaluate("m => m.scrollTo(0, 0)")
    page.wait_for_function(_MAIN_AT_TOP)


@pytest.mark.browser
@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_accessible_mode_keeps_every_control_within_reach(
    browser, store_server, store_db, orientation
):
    install_hub_key(store_db)  # the store can read a phone cart's QR code
    ref, sku, _ = _in_stock_sizes(store_db)
    slug = store_db.execute(
        "SELECT c.slug FROM categories c JOIN products p ON p.category_id = c.id WHERE p.ref = ?",
        [ref],
    ).fetchone()[0]
    reach_top = REACH_TOP[orientation]
    viewport = PORTRAIT if orientation == "portrait" else LANDSCAPE
    phone = stocked_variants(store_db, 2)
    phone_cart = cart_token([CartLine(v["sku"], 1, v["price_cents"]) for v in phone])
    context, page, errors = _accessible_page(browser, store_server, viewport)
    try:
        for label, path in (
            ("browse", "/browse"),
            ("category", f"/category/{slug}"),
            ("product", f"/product/{ref}?sku={sku}"),
            ("cart", "/panier"),
            ("scan", "/panier/scanner"),
            ("merge", "/scan?code=" + quote(phone_cart)),
            ("search-keyboard", "/search"),
        ):
            page.goto(store_server.url + path)
            if label == "category":  # the larger type's badges stay inside their cards
                spill = page.evaluate(
                    """() => [...document.querySelectorAll('.card a')].filter(a => {
                         const b = a.querySelector('.badge').getBoundingClientRect(),
                               r = a.getBoundingClientRect();
                         return b.right > r.right + .5 || b.left < r.left - .5
                             || a.querySelector('.badge').scrollWidth
                                > a.querySelector('.badge').clientWidth + 1;
                       }).map(a => a.textContent.trim().slice(0, 60))"""
                )
                assert spill == [], spill
            if label == "cart":  # a cart with a line: its quantity and actions too
                expect(page.locator(".cart-line")).to_have_count(1)
            if label == "merge":  # the phone cart over the kiosk's: merge or replace
                page.wait_for_url("**/panier/fusion")
                expect(page.get_by_role("button", name=re.compile("Fusionner"))).to_be_visible()
            if label == "search-keyboard":  # the on-screen keyboard open, results above
                page.locator("#q").click()
                expect(page.locator("#osk")).to_be_visible()
                for ch in "velo":
                    page.locator(f"#osk .osk-key[data-key='{ch}']").click()
                expect(page.locator("#results .card").first).to_be_visible(timeout=5000)
                page.wait_for_load_state("networkidle")  # the last search answered
            _within_reach(page, label, orientation)
            if label == "search-keyboard":
                expect(page.locator("#osk")).to_be_visible()  # still open once measured
            screenshot(page, f"131-a11y-{label}-{orientation}")
            if orientation == "portrait":
                _axe_clean(page, f"{label}, accessible mode")
            if label == "product":
                page.get_by_role("button", name=re.compile("Ajouter")).click()
                expect(page.locator(".topbar .count")).to_have_text("1")
            if label == "merge":
                page.get_by_role("button", name=re.compile("Fusionner")).click()
                page.wait_for_url("**/panier")
                expect(page.locator(".cart-line")).to_have_count(3)
        # The reservation ticket, the cart reserved.
        page.goto(store_server.url + "/panier")
        page.get_by_role("button", name=re.compile("Réserver ce qui est ici")).click()
        page.wait_for_url("**/panier/reservation/*")
        expect(page.get_by_role("button", name="Terminé")).to_be_visible()
        _within_reach(page, "ticket", orientation)
        screenshot(page, f"131-a11y-ticket-{orientation}")
        if orientation == "portrait":
            _axe_clean(page, "ticket, accessible mode")
        # The attract screen (a shopper who turned the mode on there): the cart scan and
        # the toggles within reach; the way in ("Touchez l'écran", one big link) reaches
        # down into the reach zone, with and without banners above it.
        for banners in (False, True):
            if banners:
                _add_promotions(store_db, LONG_PROMOTIONS)
            page.goto(store_server.url + "/")
            expect(page.locator(".promo")).to_have_count(3 if banners else 0)
            shown = page.evaluate(_TOUCHABLE)
            assert len(shown) >= 5, shown
            way_in = [c for c in shown if 'class="attract"' in c["html"]]
            assert len(way_in) == 1, shown
            assert way_in[0]["bottom"] - max(way_in[0]["top"], reach_top) >= 96, way_in
            out = [c for c in shown if c not in way_in and c["top"] < reach_top - 0.5]
            assert out == [], out
            screenshot(page, f"131-a11y-attract{'-promotions' if banners else ''}-{orientation}")
        assert errors == []
    finally:
        context.close()


# --- Promotion banners ------------------------------------------------------------------

LONG_PROMOTIONS = [
    # (title, rule, text): the longest badge there is, titles at the 80-character cap
    # (one with a very long word), a long text, and a short one beside them.
    (
        "Deuxième paire de chaussures de randonnée imperméables à moitié prix ce week-end",
        {"kind": "nth_percent", "value": 50, "nth": 2, "scope": "all", "min_qty": 3},
        "Jusqu'à dimanche soir, dans votre magasin et sur le site, dans la limite des "
        "stocks disponibles. Voir conditions à l'accueil du magasin.",
    ),
    (
        "Anticonstitutionnellement bas : sports d'hiver et montagne pour toute la famille",
        {"kind": "amount", "value": 12345, "scope": "all", "min_qty": 2},
        "",
    ),
    ("Prix choc", {"kind": "percent", "value": 30, "scope": "all"}, ""),
]


def _add_promotions(db, promotions_: list[tuple[str, dict, str]]) -> None:
    from datetime import timedelta

    from app.core import clock
    from app.store.domain import promotions

    now = clock.utcnow()
    changes = [
        {
            "data": {
                "id": f"pr-floor{n:04d}",
                "revision": 1,
                "status": "published",
                "title": {"fr": title, "en": title},
                "text": {"fr": text, "en": text},
                "rule": rule,
                "priority": 10 - n,
                "starts_at": clock.iso(now - timedelta(hours=1)),
                "ends_at": clock.iso(now + timedelta(days=1)),
                "timezone": "Europe/Paris",
                "stores": None,
            }
        }
        for n, (title, rule, text) in enumerate(promotions_)
    ]
    with db.conn:
        promotions.apply_promotion_changes(db, changes, None)


_FIT = """() => [...document.querySelectorAll('.promo')].map(b => {
  const box = b.getBoundingClientRect();
  const part = s => { const e = b.querySelector(s); if (!e) return null;
    const r = e.getBoundingClientRect();
    return {inside: r.top >= box.top - .5 && r.bottom <= box.bottom + .5
                    && r.left >= box.left - .5 && r.right <= box.right + .5,
            unclipped: e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1,
            size: parseFloat(getComputedStyle(e).fontSize), text: e.textContent}; };
  return {badge: part('.promo-badge'), title: part('.promo-title'), text: part('.promo-text'),
          onScreen: box.left >= 0 && box.right <= innerWidth};
})"""


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PORTRAIT, LANDSCAPE], ids=["portrait", "landscape"])
def test_long_promotions_fit_their_banners(browser, store_server, store_db, viewport):
    _add_promotions(store_db, LONG_PROMOTIONS)
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(store_server.url + "/")
        expect(page.locator(".promo")).to_have_count(3)
        expect(page.locator(".promo-badge").first).to_have_text("2e à -50\u202f% dès 3 articles")
        banners = page.evaluate(_FIT)
        for banner in banners:
            assert banner["onScreen"], banner
            for part in ("badge", "title", "text"):
                shown = banner[part]
                if shown is None:
                    continue
                assert shown["inside"] and shown["unclipped"], (part, shown)
            # Shrunk to fit a narrow banner, never below readable kiosk type.
            assert banner["title"]["size"] >= 24, banner["title"]
        orientation = "portrait" if viewport is PORTRAIT else "landscape"
        screenshot(page, f"132-attract-long-promotions-{orientation}")
        _axe_clean(page, f"attract with promotions, {orientation}")
    finally:
        context.close()


# --- Prices on an open category page ------------------------------------------------------


@pytest.fixture
def live_world(hub_server, synced_store, server_factory, browser):
    """The hub, a store following it, and an open category page (landscape kiosk)."""
    from .test_promotions_browser import product_in_stock

    store = server_factory(synced_store, store_env(hub_server.url, hub_server.data))
    ref, _, base = product_in_stock(synced_store)
    db = dbmod.connect(dbmod.db_path(synced_store))
    try:
        slug, rank = db.execute(
            """SELECT c.slug, (SELECT COUNT(*) FROM products q WHERE q.category_id = p.category_id
                   AND (q.name_fr < p.name_fr OR (q.name_fr = p.name_fr AND q.pk < p.pk)))
               FROM products p JOIN categories c ON c.id = p.category_id WHERE p.ref = ?""",
            [ref],
        ).fetchone()
    finally:
        db.close()
    context = browser.new_context(viewport=LANDSCAPE, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{store.url}/category/{slug}?page={rank // PAGE_SIZE + 1}")
    yield {
        "hub": hub_server,
        "page": page,
        "card": page.locator(f'.card:has(a[href="/product/{ref}"])'),
        "slug": slug,
        "base": base,
        "store_id": LYON,
        "errors": errors,
    }
    context.close()


@pytest.mark.browser
def test_a_publication_changes_prices_on_an_open_category_page(live_world):
    import requests

    from .hq_helpers import make_token
    from .test_promotions_browser import LIVE_MS, fr_price, local_times

    hub, page, card, base = (live_world[k] for k in ("hub", "page", "card", "base"))
    expect(card.locator(".card-price")).to_have_text(fr_price(base))
    expect(card.locator(".card-promo")).to_have_count(0)
    page.evaluate("window.__notReloaded = true")
    api = requests.Session()
    api.headers["Authorization"] = "Bearer " + make_token(hub.data, "marketing")
    start, end = local_times()
    r = api.post(
        f"{hub.url}/api/v1/hq/promotions",
        json={
            "title_fr": "-30 % sur tout le rayon",
            "title_en": "30% off the whole department",
            "kind": "percent",
            "value": 30,
            "scope": "category",
            "targets": [live_world["slug"]],
            "starts_local": start,
            "ends_local": end,
            "stores": [live_world["store_id"]],
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["promotion"]["id"]
    assert api.post(f"{hub.url}/api/v1/hq/promotions/{pid}/publish", timeout=10).ok
    # 30 % off one unit, rounded half up to the cent (app/core/pricing.py).
    now = base - (base * 30 + 50) // 100
    expect(card.locator(".card-promo")).to_have_text(fr_price(now), timeout=LIVE_MS)
    expect(card.locator(".card-was")).to_have_text(fr_price(base))
    assert page.evaluate("window.__notReloaded") is True  # swapped in place, no reload
    screenshot(page, "133-category-live-promotion-price")
    _axe_clean(page, "category with promotion prices")
    assert api.post(f"{hub.url}/api/v1/hq/promotions/{pid}/unpublish", timeout=10).ok
    expect(card.locator(".card-promo")).to_have_count(0, timeout=LIVE_MS)
    expect(card.locator(".card-price")).to_have_text(fr_price(base))
    assert page.evaluate("window.__notReloaded") is True
    assert live_world["errors"] == []
