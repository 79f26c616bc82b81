"""Promotions from head office to an open kiosk, in Chromium, on real servers.

A real hub and a real store server that follows it (its sync worker long-polls the
feed). Head office makes a promotion with an image in the console (or through the JSON
API); the kiosk's attract screen and product page, already open, show the banner and
the new price without a reload; unpublished, both go back.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from PIL import ExifTags, Image
from playwright.sync_api import expect

from app.core import db as dbmod
from app.web.i18n import format_price

from .conftest import screenshot
from .hq_helpers import make_token, make_user
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, store_env

pytestmark = pytest.mark.browser

LIVE_MS = 5000  # the issue: the kiosk follows head office within 5 s, without reload


def banner_jpeg() -> bytes:
    """A photo-like banner with a GPS position in its EXIF, as a phone would make it."""
    img = Image.new("RGB", (2400, 800), (20, 110, 70))
    for x in range(0, 2400, 40):
        img.paste((240, 200, 40), (x, 600 - x // 6, x + 20, 800))
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (45.0, 45.0, 0.0)})
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=85)
    return buf.getvalue()


def product_in_stock(data) -> tuple[str, str, int]:
    """(ref, sku, base price) of a product in stock in Lyon, without a variant price."""
    db = dbmod.connect(dbmod.db_path(data))
    try:
        return db.execute(
            """SELECT p.ref, v.sku, p.price_cents FROM variants v
               JOIN products p ON p.pk = v.product_pk
               JOIN stock_levels l ON l.sku = v.sku AND l.store_id = ?
               WHERE l.qty > 0 AND v.price_cents IS NULL AND p.price_cents >= 1000
               ORDER BY p.pk LIMIT 1""",
            [LYON],
        ).fetchone()
    finally:
        db.close()


def local_times() -> tuple[str, str]:
    """A schedule that started an hour ago and ends in two days, in Paris time."""
    now = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris"))
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    return start, (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")


def fr_price(cents: int) -> str:
    return format_price(cents, "fr")


@pytest.fixture
def world(hub_server, synced_store, server_factory, browser):
    """The hub, a store following it, and two open kiosk pages (attract, product)."""
    store = server_factory(synced_store, store_env(hub_server.url, hub_server.data))
    ref, sku, base = product_in_stock(synced_store)
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fr-FR")
    errors: list[str] = []
    attract = context.new_page()
    attract.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    attract.goto(store.url + "/")
    product = context.new_page()
    product.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    product.goto(f"{store.url}/product/{ref}?sku={sku}")
    expect(product.locator("#price")).to_contain_text(fr_price(base))
    expect(attract.locator(".promo")).to_have_count(0)
    yield {
        "hub": hub_server,
        "store": store,
        "attract": attract,
        "product": product,
        "ref": ref,
        "sku": sku,
        "base": base,
        "context": context,
        "errors": errors,
    }
    context.close()


def expect_on_kiosk(world, title: str, price_cents: int) -> None:
    attract, product = world["attract"], world["product"]
    banner = attract.locator(".promo", has_text=title)
    expect(banner).to_be_visible(timeout=LIVE_MS)
    price = product.locator("#price")
    expect(price.locator(".price-promo")).to_contain_text(fr_price(price_cents), timeout=LIVE_MS)
    expect(price.locator("del.price-was")).to_contain_text(fr_price(world["base"]))


def expect_gone(world, title: str) -> None:
    expect(world["attract"].locator(".promo", has_text=title)).to_have_count(0, timeout=LIVE_MS)
    price = world["product"].locator("#price")
    expect(price.locator(".price-promo")).to_have_count(0, timeout=LIVE_MS)
    expect(price).to_contain_text(fr_price(world["base"]))


def test_console_promotion_with_image_reaches_an_open_kiosk_and_goes(world, tmp_path):
    hub = world["hub"]
    user = make_user(hub.data, "marketing")
    image = tmp_path / "banniere-rando.jpg"
    image.write_bytes(banner_jpeg())
    start, end = local_times()

    console = world["context"].new_page()
    console.set_viewport_size({"width": 1440, "height": 1000})
    console.goto(f"{hub.url}/hq/promotions")
    console.get_by_label("Adresse e-mail").fill(user["email"])
    console.get_by_label("Mot de passe").fill(user["password"])
    console.get_by_role("button", name="Se connecter").click()
    expect(console).to_have_url(f"{hub.url}/hq/promotions")
    console.get_by_role("link", name="Nouvelle promotion").click()

    # Markup in a title and an end before the start: refused, each field says why.
    console.get_by_label("Titre en français").fill("<b>-30 %</b> rando")
    console.get_by_label("Valeur").fill("30")
    console.get_by_label("Début (heure du magasin)").fill(end)
    console.get_by_label("Fin (heure du magasin)").fill(start)
    console.get_by_role("button", name="Enregistrer le brouillon").click()
    summary = console.get_by_role("alert")
    expect(summary).to_contain_text("pas de balises HTML")
    expect(summary).to_contain_text("La fin doit être après le début.")
    expect(console.get_by_label("Titre en français")).to_have_attribute("aria-invalid", "true")
    screenshot(console, "59-hq-promotion-form-errors")

    console.get_by_label("Titre en français").fill("-30 % sur la sélection rando")
    console.get_by_label("Titre en anglais").fill("30% off our hiking picks")
    console.get_by_label("Texte en français").fill("Jusqu'à dimanche, dans votre magasin.")
    console.get_by_label("Type de remise").select_option("percent")
    console.get_by_label("Valeur").fill("30")
    console.get_by_label("Des produits").check()
    console.get_by_label("Références produit ou SKU").fill(world["ref"])
    console.get_by_label("Début (heure du magasin)").fill(start)
    console.get_by_label("Fin (heure du magasin)").fill(end)
    console.get_by_label("Image (JPEG, PNG ou WebP").set_input_files(str(image))
    console.evaluate("window.scrollTo(0, 0)")
    screenshot(console, "60-hq-promotion-form")
    console.get_by_role("button", name="Enregistrer le brouillon").click()
    expect(console.locator(".flash")).to_contain_text("brouillon")
    expect(console.locator(".badge.phase")).to_have_text("Brouillon")
    expect(console.locator("img.promo-thumb")).to_be_visible()

    # A draft reaches no kiosk.
    console.get_by_role("link", name="Aperçu sur la borne").click()
    expect(console.locator(".promo-title")).to_have_text("-30 % sur la sélection rando")
    expect(console.locator(".promo-badge")).to_have_text("-30\u202f%")
    expect(console.locator("img.promo-image")).to_have_js_property("complete", True)
    assert console.locator("img.promo-image").evaluate("i => i.naturalWidth") == 1920
    screenshot(console, "61-hq-promotion-preview")
    console.get_by_role("link", name="Retour à la promotion").click()
    expect(world["attract"].locator(".promo")).to_have_count(0)

    console.get_by_role("button", name="Publier").click()
    expect(console.locator(".flash")).to_contain_text("Promotion publiée")
    # 30 % off one unit, rounded half up to the cent (app/core/pricing.py).
    expect_on_kiosk(
        world, "-30 % sur la sélection rando", world["base"] - (world["base"] * 30 + 50) // 100
    )
    attract = world["attract"]
    # The image comes from the store's own origin (CSP img-src 'self'), fetched once.
    img = attract.locator(".promo img.promo-image")
    expect(img).to_have_count(1, timeout=LIVE_MS)
    src = re.compile(r"^/promotions/pr-[0-9a-z]+/[0-9a-f]+/banner\.webp$")
    expect(img).to_have_attribute("src", src)
    attract.wait_for_function(
        "() => { const i = document.querySelector('.promo img');"
        " return i && i.complete && i.naturalWidth === 1920; }"
    )
    expect(world["product"].locator(".promo-tag")).to_have_text("-30 % sur la sélection rando")
    screenshot(attract, "62-kiosk-attract-with-banner")
    world["product"].locator("#price").scroll_into_view_if_needed()
    screenshot(world["product"], "63-kiosk-product-promotion-price")
    assert world["errors"] == []  # no CSP refusal, no failed request on the kiosk pages

    console.get_by_role("button", name="Dépublier").click()
    expect(console.locator(".flash")).to_contain_text("dépubliée")
    expect_gone(world, "-30 % sur la sélection rando")
    history = console.locator("table.history")
    expect(history).to_contain_text("Dépublication")
    expect(history).to_contain_text("Publication")
    expect(history).to_contain_text(user["email"])
    history.scroll_into_view_if_needed()
    screenshot(console, "64-hq-promotion-history")
    console.get_by_role("link", name="← Toutes les promotions").click()
    expect(console.locator("table.promo-list")).to_contain_text("Dépubliée")
    screenshot(console, "65-hq-promotion-list")


def test_api_promotion_reaches_an_open_kiosk_and_goes(world):
    hub = world["hub"]
    api = requests.Session()
    api.headers["Authorization"] = "Bearer " + make_token(hub.data, "marketing")
    start, end = local_times()
    r = api.post(
        f"{hub.url}/api/v1/hq/promotions",
        json={
            "title_fr": "Prix choc",
            "title_en": "Price drop",
            "kind": "fixed",
            "value": 999,
            "scope": "sku",
            "targets": [world["sku"]],
            "starts_local": start,
            "ends_local": end,
            "stores": [LYON],
            "priority": 10,
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["promotion"]["id"]
    r = api.post(
        f"{hub.url}/api/v1/hq/promotions/{pid}/image",
        files={"image": ("b.jpg", banner_jpeg(), "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert api.post(f"{hub.url}/api/v1/hq/promotions/{pid}/publish", timeout=10).ok
    expect_on_kiosk(world, "Prix choc", 999)
    expect(world["attract"].locator(".promo-badge")).to_have_text(fr_price(999))
    # Banners and promotion prices keep the kiosk accessible (axe-core), also in the
    # accessible mode.
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    for label, shown in (("attract", world["attract"]), ("product", world["product"])):
        results = axe.run(shown)
        assert results.response["passes"], label
        serious = [
            v["id"]
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], (label, serious)
    attract = world["attract"]
    attract.get_by_role("button", name=re.compile("Mode accessible")).click()
    expect(attract.locator("body")).to_have_class(re.compile("a11y"))
    expect(attract.locator(".promo", has_text="Prix choc")).to_be_visible()
    screenshot(attract, "66-kiosk-attract-banner-accessible")
    assert api.post(f"{hub.url}/api/v1/hq/promotions/{pid}/unpublish", timeout=10).ok
    expect_gone(world, "Prix choc")
