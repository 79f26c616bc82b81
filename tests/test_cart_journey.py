"""Playwright, end to end: a shopper fills a cart on a phone-sized page of the hub's web
shop and brings it to a real kiosk (store server synced to a real hub) as a photo of
the QR code decoded by the kiosk's server. The kiosk shows what is here; reserving
holds the stock at once, another open kiosk page shows it within 5 s, the hub learns of
it, and the expiry gives it back; the used cart does not open again. Another cart is
typed by the handheld scanner, then opened and reserved with the hub stopped: the token
is self-contained."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from app.core import cart_codec, clock
from app.hub import database as hdb

from .conftest import run_kiosk, screenshot, staff_login_page
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_db, hub_levels, store_env, wait_for

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
KIOSK = {"width": 1920, "height": 1080}
QR = zxingcpp.BarcodeFormat.QRCode


def _variants_in_lyon(hub_data: Path, n: int) -> list[dict]:
    """``n`` variants of different products with at least 3 units in Lyon at the hub."""
    db = hub_db(hub_data)
    try:
        found = hdb.rows(
            db,
            """SELECT p.pk, v.sku, p.ref, v.colour_code, l.qty FROM variants v
               JOIN products p ON p.pk = v.product_pk
               JOIN stock_levels l ON l.sku = v.sku AND l.store_id = ?
               WHERE l.qty >= 3 ORDER BY v.sku""",
            [LYON],
        )
    finally:
        db.close()
    # One per product, the first by sku (SQL's GROUP BY p.pk with bare columns is SQLite's).
    chosen: dict[int, dict] = {}
    for row in found:
        pk = row.pop("pk")
        chosen.setdefault(pk, row)
    return sorted(chosen.values(), key=lambda row: row["sku"])[:n]


def _phone_cart(browser, hub_url: str, items: list[tuple[dict, int]]) -> tuple[bytes, str]:
    """Build a cart in the web shop on a phone; its QR code PNG and the token it holds."""
    ctx = browser.new_context(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    try:
        phone = ctx.new_page()
        for variant, qty in items:
            phone.goto(f"{hub_url}/shop/produit/{variant['ref']}?couleur={variant['colour_code']}")
            size = phone.locator(f'input[name="sku"][value="{variant["sku"]}"]')
            phone.locator(f'label[for="{size.get_attribute("id")}"]').click()
            expect(size).to_be_checked()
            phone.locator("#qty").fill(str(qty))
            phone.locator("#add-to-cart").click()
            phone.wait_for_url("**/shop/panier")
        qr = phone.locator("#cart-qr")
        qr.scroll_into_view_if_needed()
        expect(qr).to_be_visible()
        phone.wait_for_function("() => document.querySelector('#cart-qr').naturalWidth > 0")
        screenshot(phone, "cart-journey-phone")
        png = ctx.request.get(hub_url + qr.get_attribute("src")).body()
    finally:
        ctx.close()
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=QR)
    return png, decoded.text


def _kiosk(browser):
    ctx = browser.new_context(viewport=KIOSK, locale="fr-FR")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return ctx, page, errors


def _here(page) -> int:
    return int(page.locator(".here").get_attribute("data-qty"))


def _wait_here(page, qty: int) -> None:
    page.wait_for_function(
        f"() => +document.querySelector('.here').dataset.qty === {qty}", timeout=5000
    )


def _scan(page, text: str) -> None:
    page.wait_for_load_state("networkidle")  # a kiosk waiting for a shopper, not loading
    page.keyboard.type(text, delay=1)
    page.keyboard.press("Enter")


def _expire(store: Path) -> None:
    later = clock.iso(clock.utcnow() + timedelta(hours=3))
    done = run_kiosk("reservations", "expire", "--data", str(store), env={"KIOSK_FAKE_NOW": later})
    assert done.returncode == 0, done.stderr


def test_phone_cart_to_kiosk_reserve_live_then_expire_online_and_offline(
    browser, hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    first, second = _variants_in_lyon(hub_data, 2)
    png, token = _phone_cart(browser, hub.url, [(first, 2), (second, 1)])
    ref = cart_codec.read_cart_token(_hub_keys(hub_data), token)
    assert [(ln.sku, ln.qty) for ln in ref.lines] == [(first["sku"], 2), (second["sku"], 1)]

    watch_ctx, watcher, watch_errors = _kiosk(browser)
    watcher.goto(f"{store.url}/product/{first['ref']}?sku={first['sku']}")
    start = _here(watcher)
    hub_start = hub_levels(hub_data)[first["sku"]]

    # 1. A photo of the phone's QR code, decoded by the kiosk's server: sent from a
    # staff tablet without a camera (a shopper's kiosk offers no file picker).
    shop_ctx, shopper, errors = _kiosk(browser)
    staff_login_page(shopper, store.url, synced_store)
    shopper.goto(store.url + "/panier/scanner")
    shopper.locator("#cart-photo").set_input_files(
        files=[{"name": "panier.png", "mimeType": "image/png", "buffer": png}]
    )
    shopper.locator(".photo-form button").click()
    shopper.wait_for_url("**/panier")
    for v in (first, second):
        expect(shopper.locator(f'[data-sku="{v["sku"]}"]')).to_have_attribute("data-status", "here")
    screenshot(shopper, "cart-journey-kiosk")
    shopper.get_by_role("button", name="Réserver ce qui est ici").click()
    shopper.wait_for_url("**/panier/reservation/*")
    _wait_here(watcher, start - 2)  # held at once, shown on the other page within 5 s
    wait_for(lambda: hub_levels(hub_data)[first["sku"]] == hub_start - 2, 15, "the hold at the hub")
    _expire(synced_store)
    _wait_here(watcher, start)
    wait_for(lambda: hub_levels(hub_data)[first["sku"]] == hub_start, 15, "the release at the hub")
    shop_ctx.close()

    # 2. The same cart again, by the handheld scanner: used here, it opens nothing more.
    shop_ctx, shopper, errors2 = _kiosk(browser)
    shopper.goto(store.url + "/")
    _scan(shopper, token)
    expect(shopper.locator('[data-problem="revoked"]')).to_be_visible()
    # Another shopper's cart typed by the scanner on the attract screen.
    _, token2 = _phone_cart(browser, hub.url, [(first, 2), (second, 1)])
    shopper.goto(store.url + "/")
    _scan(shopper, token2)
    shopper.wait_for_url("**/panier")
    expect(shopper.locator(".cart-line")).to_have_count(2)
    shop_ctx.close()

    # 3. Hub stopped: the self-contained token still opens, reserving still holds.
    hub.stop()
    shop_ctx, shopper, errors3 = _kiosk(browser)
    shopper.goto(store.url + "/")
    _scan(shopper, token2)
    shopper.wait_for_url("**/panier")
    expect(shopper.locator(f'[data-sku="{first["sku"]}"]')).to_have_attribute("data-status", "here")
    shopper.get_by_role("button", name="Réserver ce qui est ici").click()
    shopper.wait_for_url("**/panier/reservation/*")
    _wait_here(watcher, start - 2)
    _expire(synced_store)
    _wait_here(watcher, start)
    shop_ctx.close()
    watch_ctx.close()
    assert errors == errors3 == []
    # Only the refused scan's own page, answered 400 on purpose.
    assert [e for e in errors2 if "status of 400" not in e] == []
    assert [e for e in watch_errors if "Failed to load resource" not in e] == []


def _hub_keys(hub_data: Path) -> dict[str, bytes]:
    from app.core.tokens import public_key_from_b64

    db = hub_db(hub_data)
    try:
        rows = db.execute("SELECT kid, public_key FROM hub_keys").fetchall()
    finally:
        db.close()
    return {kid: public_key_from_b64(public) for kid, public in rows}
