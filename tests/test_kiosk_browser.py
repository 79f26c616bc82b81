"""The kiosk as a shopper sees it: Playwright driving Debian's Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import run_kiosk, screenshot

pytestmark = pytest.mark.browser


def _in_stock(db, min_qty=5):
    return db.execute(
        """SELECT v.sku, v.ean, p.ref, l.qty FROM variants v
           JOIN products p ON p.pk = v.product_pk
           JOIN stock_levels l ON l.sku = v.sku
           JOIN stores s ON s.id = l.store_id AND s.is_self = 1
           WHERE l.qty >= ? ORDER BY p.pk, v.sku LIMIT 1""",
        [min_qty],
    ).fetchone()


def test_search_as_you_type_to_product_with_stock(page, store_server):
    page.goto(store_server.url + "/")
    screenshot(page, "01-attract-landscape")
    page.get_by_text("Touchez l'écran ou scannez un article").click()
    expect(page).to_have_url(re.compile(r"/browse$"))
    page.locator("#q").press_sequentially("velo", delay=120)  # a person, not a scanner
    cards = page.locator("#results .card")
    expect(cards.first).to_be_visible(timeout=5000)
    expect(cards.first).to_contain_text("Vélo")
    screenshot(page, "02-search-results")
    cards.first.locator("a").click()
    expect(page).to_have_url(re.compile(r"/product/"))
    expect(page.locator(".here")).to_contain_text("Dans ce magasin")
    expect(page.locator(".here .badge")).to_have_text(
        re.compile(r"en stock|Plus que|Dernier article|Épuisé")
    )
    expect(page.locator(".others li")).to_have_count(2)
    screenshot(page, "03-product")
    assert page.console_errors == []


def test_scanner_burst_opens_the_product(page, store_server, store_db):
    sku, ean, ref, qty = _in_stock(store_db)
    page.goto(store_server.url + "/browse")
    page.keyboard.type(ean, delay=5)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/product/{ref}\?sku={re.escape(sku)}"))
    expect(page.locator(".here")).to_have_attribute("data-sku", sku)
    # On the attract screen too, with the search box nowhere in sight.
    page.goto(store_server.url + "/")
    page.keyboard.type(ean, delay=5)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/product/{ref}"))


def test_scanner_burst_in_the_search_box_still_opens_the_product(page, store_server, store_db):
    sku, ean, ref, qty = _in_stock(store_db)
    page.goto(store_server.url + "/browse")
    page.locator("#q").focus()
    page.keyboard.type(ean, delay=5)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/product/{ref}"))


def test_unknown_scan_is_a_friendly_message(page, store_server):
    page.goto(store_server.url + "/browse")
    page.keyboard.type("4006381333931", delay=5)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Nous ne trouvons pas cet article")
    expect(page.get_by_role("link", name="Rechercher un article")).to_be_visible()
    screenshot(page, "04-unknown-scan")


def test_a_scanner_burst_that_stalls_early_is_still_one_scan(page, store_server, store_db):
    """A busy tablet may hold a scanner's keys back for a moment, even in the first few:
    the code is read whole, not from the stall on."""
    sku, ean, ref, qty = _in_stock(store_db)
    page.goto(store_server.url + "/browse")
    page.keyboard.type(ean[:5], delay=5)
    page.wait_for_timeout(300)  # the stall itself: what this test is about
    page.keyboard.type(ean[5:], delay=5)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/product/{re.escape(ref)}"))
    expect(page.locator(".here")).to_have_attribute("data-sku", sku)


def test_slow_typing_is_not_a_scan(page, store_server, store_db):
    sku, ean, ref, qty = _in_stock(store_db)
    page.goto(store_server.url + "/browse")
    page.locator("#q").press_sequentially(ean, delay=120)
    page.keyboard.press("Enter")
    # A person typing and pressing Enter gets the search page, not a scan.
    expect(page).to_have_url(re.compile(r"/search\?q="))


def test_stock_change_from_another_process_appears_within_5s(
    page, store_server, store_data, store_db
):
    sku, ean, ref, qty = _in_stock(store_db)
    page.goto(store_server.url + f"/product/{ref}?sku={sku}")
    here = page.locator(".here")
    expect(here).to_have_attribute("data-qty", str(qty))
    done = run_kiosk("stock", "adjust", sku, "-2", "--data", str(store_data))
    assert done.returncode == 0, done.stderr
    expect(here).to_have_attribute("data-qty", str(qty - 2), timeout=5000)
    expect(here).to_contain_text(f"{qty - 2} en stock" if qty - 2 > 2 else "Plus que")
    # Run it down to zero: the size shows "Épuisé" without a reload.
    run_kiosk("stock", "adjust", sku, "0", "--count", "--data", str(store_data))
    expect(here.locator(".badge")).to_have_text("Épuisé", timeout=5000)


def test_language_toggle(page, store_server, store_db):
    sku, ean, ref, qty = _in_stock(store_db)
    page.goto(store_server.url + f"/product/{ref}")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    price_fr = page.locator(".price").inner_text()
    assert re.fullmatch(r"\d[\d\u202f\u00a0 ]*,\d\d\s€", price_fr), price_fr
    page.get_by_role("button", name=re.compile("EN")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".here")).to_contain_text("In this store")
    price_en = page.locator(".price").inner_text()
    assert re.fullmatch(r"€\d[\d,]*\.\d\d", price_en), price_en
    screenshot(page, "05-product-english")
    page.get_by_role("button", name=re.compile("FR")).click()
    expect(page.locator(".here")).to_contain_text("Dans ce magasin")


def test_idle_reset_forgets_the_shopper(browser, server_factory, store_data, store_db):
    server = server_factory(
        store_data, env={"KIOSK_IDLE_SECONDS": "2", "KIOSK_IDLE_COUNTDOWN_SECONDS": "2"}
    )
    sku, ean, ref, qty = _in_stock(store_db)
    context = browser.new_context(viewport={"width": 1080, "height": 1920})
    page = context.new_page()
    page.goto(server.url + f"/product/{ref}")
    page.get_by_role("button", name=re.compile("EN")).click()
    page.get_by_role("button", name=re.compile("Accessible mode")).click()
    expect(page.locator("body")).to_have_class(re.compile("a11y"))
    page.goto(server.url + "/browse")
    expect(page.locator(".recent")).to_contain_text("Recently viewed")
    # Untouched: the question appears, then the kiosk goes back to its attract screen.
    expect(page.locator("#idle")).to_be_visible(timeout=5000)
    expect(page.locator("#idle-title")).to_have_text("Still there?")
    screenshot(page, "06-idle-question")
    expect(page).to_have_url(re.compile(r":\d+/$"), timeout=6000)
    expect(page.get_by_text("Touchez l'écran ou scannez un article")).to_be_visible()
    expect(page.locator("body")).not_to_have_class(re.compile("a11y"))
    page.goto(server.url + "/browse")
    expect(page.locator(".recent")).to_have_count(0)
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    context.close()


def test_idle_question_can_be_dismissed(browser, server_factory, store_data):
    server = server_factory(
        store_data, env={"KIOSK_IDLE_SECONDS": "1", "KIOSK_IDLE_COUNTDOWN_SECONDS": "3"}
    )
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(server.url + "/browse")
    expect(page.locator("#idle")).to_be_visible(timeout=4000)
    page.get_by_role("button", name="Oui, je suis là").click()
    expect(page.locator("#idle")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/browse$"))
    context.close()


VIEWPORTS = {
    "portrait-1080x1920": {"width": 1080, "height": 1920},
    "landscape-1920x1080": {"width": 1920, "height": 1080},
    "tablet-1280x800": {"width": 1280, "height": 800},
}


@pytest.mark.parametrize("name", VIEWPORTS)
def test_screens_fit_and_targets_are_touch_sized(browser, store_server, store_db, name):
    sku, ean, ref, qty = _in_stock(store_db)
    context = browser.new_context(viewport=VIEWPORTS[name])
    page = context.new_page()
    for path, label in (
        ("/", "attract"),
        ("/browse", "browse"),
        (f"/product/{ref}?sku={sku}", "product"),
    ):
        page.goto(store_server.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{label} scrolls sideways at {name}"
        small = page.evaluate(
            """() => [...document.querySelectorAll('a, button, input, select')]
                .filter(e => e.offsetParent !== null && !e.classList.contains('skip'))
                .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect()])
                .filter(([_, r]) => r.width < 48 || r.height < 48)
                .map(([h, r]) => `${h} ${Math.round(r.width)}x${Math.round(r.height)}`)"""
        )
        assert small == [], f"{label} at {name}: {small}"
        screenshot(page, f"10-{label}-{name}")
    context.close()


def _serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("accessible", [False, True], ids=["standard", "accessible-mode"])
def test_axe_core_finds_no_serious_violation(page, store_server, store_db, accessible):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    sku, ean, ref, qty = _in_stock(store_db)
    slug = store_db.execute("SELECT slug FROM categories LIMIT 1").fetchone()[0]
    if accessible:
        page.goto(store_server.url + "/browse")
        page.get_by_role("button", name=re.compile("Mode accessible")).click()
        expect(page.locator("body")).to_have_class(re.compile("a11y"))
    screens = {
        "attract": "/",
        "browse": "/browse",
        "search": "/search?q=chaussures",
        "category": f"/category/{slug}",
        "product": f"/product/{ref}?sku={sku}",
        "not-found": "/scan?code=4006381333931",
    }
    problems = {}
    for label, path in screens.items():
        page.goto(store_server.url + path)
        found = _serious(axe.run(page))
        if found:
            problems[label] = found
        if accessible:
            screenshot(page, f"20-{label}-accessible")
    assert problems == {}
