"""Playwright: a cart QR brought to a real kiosk server by the handheld scanner (a
keyboard burst) and by the live camera; reserve; the hold shows on another open kiosk
page within 5 s; the expiry releases it. No hub runs: the tokens are self-contained."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import qrcode
from PIL import Image

from app.core import clock
from app.core.cart_codec import CartLine

from .cart_helpers import cart_token, stocked_variants
from .conftest import CHROMIUM, CHROMIUM_ARGS, run_kiosk, screenshot, staff_login_page
from .order_helpers import install_hub_key

pytestmark = pytest.mark.browser


@pytest.fixture
def cart_store(store_db, store_data, server_factory):
    """A store server that knows the hub's public key (as after its first sync)."""
    install_hub_key(store_db)
    return server_factory(store_data)


def _here_qty(page) -> int:
    return int(page.locator(".here").get_attribute("data-qty"))


def _type_burst(page, text: str) -> None:
    page.wait_for_load_state("networkidle")  # a kiosk waiting for a shopper, not loading
    page.keyboard.type(text, delay=1)
    page.keyboard.press("Enter")


def test_scanner_burst_opens_the_cart_reserve_holds_stock_live_and_expiry_releases(
    browser, cart_store, store_db, store_data
):
    [item, other] = stocked_variants(store_db, 2, here_min=3)
    lines = [
        CartLine(item["sku"], 2, item["price_cents"] + 300),
        CartLine(other["sku"], 1, other["price_cents"]),
    ]
    token = cart_token(lines)
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fr-FR")
    watcher = ctx.new_page()  # another kiosk page left open on the product
    watcher.goto(f"{cart_store.url}/product/{item['ref']}?sku={item['sku']}")
    start = _here_qty(watcher)
    shopper_ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fr-FR")
    shopper = shopper_ctx.new_page()
    errors: list[str] = []
    shopper.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    shopper.goto(cart_store.url + "/")
    _type_burst(shopper, token)
    shopper.wait_for_url("**/panier")
    assert shopper.locator(f'[data-sku="{item["sku"]}"]').get_attribute("data-status") == "here"
    assert shopper.locator(".change-down").count() == 1  # cheaper than when it went in
    screenshot(shopper, "cart-kiosk")
    shopper.get_by_role("button", name="Réserver ce qui est ici").click()
    shopper.wait_for_url("**/panier/reservation/*")
    code = shopper.locator(".ticket-code strong").inner_text()
    assert code.startswith("R-")
    shopper.wait_for_function("() => document.querySelector('.ticket-qr').naturalWidth > 0")
    screenshot(shopper, "cart-reservation-ticket")
    # The other open page shows the held units within 5 s, without a reload.
    watcher.wait_for_function(
        f"() => +document.querySelector('.here').dataset.qty === {start - 2}", timeout=5000
    )
    # Past the hold time the timer (here: the CLI, at a later fake clock) releases it.
    later = clock.iso(clock.utcnow() + timedelta(hours=3))
    out = run_kiosk(
        "reservations", "expire", "--data", str(store_data), env={"KIOSK_FAKE_NOW": later}
    )
    assert out.returncode == 0, out.stderr
    watcher.wait_for_function(
        f"() => +document.querySelector('.here').dataset.qty === {start}", timeout=5000
    )
    assert errors == []
    ctx.close()
    shopper_ctx.close()


def _y4m(path: Path, text: str, frames: int = 4) -> Path:
    """A tiny Y4M video of a QR code, for Chromium's fake camera."""
    width, height = 640, 480
    frame = Image.new("RGB", (width, height), "white")
    qr = qrcode.make(text, box_size=3, border=4).convert("RGB")
    qr.thumbnail((460, 460))
    frame.paste(qr, ((width - qr.width) // 2, (height - qr.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + planes)
    return path


def test_the_live_camera_reads_a_cart_qr(browser, cart_store, store_db, tmp_path):
    item = stocked_variants(store_db, 1)[0]
    token = cart_token([CartLine(item["sku"], 1, item["price_cents"])])
    video = _y4m(tmp_path / "qr.y4m", token)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    # A second Chromium with a fake camera that films the QR code (browser-wide flags).
    camera_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=args)
    try:
        ctx = camera_browser.new_context(viewport={"width": 1920, "height": 1080})
        ctx.grant_permissions(["camera"], origin=cart_store.url)
        page = ctx.new_page()
        page.goto(cart_store.url + "/panier/scanner")
        # Nobody types or clicks: only the camera can bring the page to the cart.
        page.wait_for_url("**/panier", timeout=15000)
        assert page.locator(f'[data-sku="{item["sku"]}"]').count() == 1
    finally:
        camera_browser.close()


def test_without_a_camera_the_scan_page_offers_the_photo_and_the_scanner(
    page, cart_store, store_db, store_data
):
    # A staff tablet (a staff member logged in): a shopper's kiosk has no file picker.
    staff_login_page(page, cart_store.url, store_data)
    page.goto(cart_store.url + "/panier/scanner")
    assert page.locator("#cart-photo").is_visible()
    # Chromium here has no camera: the page says so and keeps the other ways in.
    page.wait_for_function("() => document.querySelector('.camera-status').textContent.length")
    assert page.locator(".camera-start").is_visible()
    assert page.locator("video.camera-view").is_hidden()
    screenshot(page, "cart-scan-page")
