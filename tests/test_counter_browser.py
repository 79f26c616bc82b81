"""The click-and-collect counter in Chromium on a 1280×800 tablet: prepare by scanning
(a wrong item included), ready, hand over by QR photo and by code, a partial hand-over
with a proxy, a return; every transaction queued once in the outbox."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from app.core import db as dbmod
from app.store.domain import tickets
from app.store.domain.stock import self_store_id

from .conftest import replaced, screenshot, staff_login_page
from .order_helpers import PICKUP_CODE, add_order, install_hub_key, pick_variants, pickup_token

pytestmark = pytest.mark.browser

TABLET = {"width": 1280, "height": 800}


def _outbox_types(data) -> list[str]:
    db = dbmod.connect(dbmod.db_path(data))
    try:
        return [r[0] for r in db.execute("SELECT type FROM outbox ORDER BY rowid").fetchall()]
    finally:
        db.close()


def scanner(page, code: str) -> None:
    """A handheld scanner: a fast burst of keys ending with Enter."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def test_counter_journey(browser, store_data, server_factory, tmp_path):
    db = dbmod.connect(dbmod.db_path(store_data))
    install_hub_key(db)
    variants = pick_variants(db, 5)
    to_prepare = add_order(db, variants=variants[:2], qtys=[2, 1], customer="Élodie Martin")
    by_qr = add_order(db, variants=variants[2:3], status="ready", customer="Hugo Bernard")
    by_code = add_order(
        db,
        variants=variants[3:5],
        qtys=[1, 2],
        status="ready",
        customer="Zoé Lefèvre",
        email="zoe@example.org",
    )
    store_id = self_store_id(db)
    db.close()
    server = server_factory(store_data)
    context = browser.new_context(viewport=TABLET, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"{page.url} {m.text}") if m.type == "error" else None
    )
    try:
        staff_login_page(page, server.url, store_data)
        page.goto(server.url + "/staff/orders")
        expect(page.locator('[data-count="to_prepare"]')).to_have_text("1")
        expect(page.locator('[data-count="ready"]')).to_have_text("2")
        screenshot(page, "40-counter-to-prepare")

        # Search by name, accents ignored.
        page.locator("#order-q").fill("elodie")
        expect(page.locator(".order-row")).to_have_count(1)
        page.locator(".order-row").click()
        expect(page).to_have_url(re.compile(r"/staff/orders/o-"))
        screenshot(page, "41-counter-order")
        page.locator("a[href$='/prepare']").click()

        # Prepare: a wrong item first (red), then the right ones (green).
        # Each scan waits for its own answer: the #prep section that replaces this one.
        page.locator("#scan-code").focus()
        prep = replaced(page, "#prep")
        scanner(page, variants[4]["ean"])
        expect(prep.locator(".feedback-error")).to_be_visible()
        expect(page.locator("body")).to_have_attribute("data-last-cue", "error")
        screenshot(page, "42-counter-prepare-wrong-item")
        first, second = to_prepare["lines"][0], to_prepare["lines"][1]
        for picked in (1, 2):
            prep = replaced(page, "#prep")
            scanner(page, first["ean"])
            expect(prep.locator(".feedback-ok")).to_be_visible()
            expect(prep.locator(f'[data-line="{first["line"]}"] .pick-count')).to_have_text(
                f"{picked}/2"
            )
        prep = replaced(page, "#prep")
        scanner(page, first["ean"])  # one too many
        expect(prep.locator(".feedback-error")).to_be_visible()
        expect(prep.locator(f'[data-line="{first["line"]}"] .pick-count')).to_have_text("2/2")
        prep = replaced(page, "#prep")
        scanner(page, second["ean"])
        expect(prep.locator(".feedback-ok")).to_be_visible()
        expect(prep.locator(".pick-line.is-done")).to_have_count(2)
        screenshot(page, "43-counter-prepare-done")
        page.locator("#shelf-slot").fill("B12")
        page.locator(".ready-form button").click()
        expect(page.locator(".status-ready")).to_be_visible()
        screenshot(page, "44-counter-ready")
        # The bag label opens in its print view, which shows the label's PNG.
        page.locator("[data-print-view]").click()
        label = page.request.get(
            server.url + page.locator("img.print-ticket-img").get_attribute("src")
        )
        assert label.ok and label.headers["content-type"] == "image/png"
        page.go_back()

        # Hand-over by a photo of the QR code.
        qr = tmp_path / "qr.png"
        tickets.render_qr(pickup_token(by_qr["id"], store_id)).save(qr)
        page.goto(server.url + "/staff/orders/handover")
        screenshot(page, "45-counter-desk")
        page.locator("#qr-photo").set_input_files(str(qr))
        page.locator(".photo-form button").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        screenshot(page, "46-counter-handover-verified")
        page.locator(".handover-form button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/handovers/"))
        screenshot(page, "47-counter-handover-done")
        page.locator("[data-print-view]").click()  # the receipt's print view links its PDF
        receipt = page.request.get(
            server.url + page.locator("a[href$='receipt.pdf']").get_attribute("href")
        )
        assert receipt.ok and receipt.body().startswith(b"%PDF")

        # A wrong code, then the right one; a partial hand-over to a proxy.
        page.goto(server.url + "/staff/orders/handover")
        page.locator("#order-number").fill(by_code["number"])
        page.locator("#pickup-code").fill("000000")
        page.locator(".code-form button").click()
        expect(page.locator(".notice-error")).to_contain_text("4")
        screenshot(page, "48-counter-wrong-code")
        page.locator("#order-number").fill(by_code["number"])
        page.locator("#pickup-code").fill(PICKUP_CODE)
        page.locator(".code-form button").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        page.locator("#qty-2").fill("1")
        page.locator("input[value=proxy]").check()
        page.locator("#collector-name").fill("Jean Dupont")
        screenshot(page, "49-counter-partial-handover")
        page.locator(".handover-form button[type=submit]").click()
        expect(page.locator(".notice-ok")).to_contain_text("Jean Dupont")

        # A return of one collected unit.
        page.goto(server.url + "/staff/returns")
        page.locator("#ret-number").fill(by_code["number"])
        page.locator("#ret-who").fill("ZOE")  # the first name: all the store holds
        page.locator(".code-form button").click()
        expect(page.locator(".return-form")).to_be_visible()
        # Each quantity starts at what can come back (line 2: its one collected unit).
        expect(page.locator("#rqty-2")).to_have_value("1")
        page.locator("#rqty-1").fill("1")
        page.locator("#rqty-2").fill("0")
        page.locator("#ret-reason").fill("Trop petit")
        screenshot(page, "50-counter-return")
        page.locator(".return-form button[type=submit]").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        screenshot(page, "51-counter-return-done")
        assert not [e for e in errors if "Content Security Policy" in e]
    finally:
        context.close()
    types = _outbox_types(store_data)
    assert types.count("order.ready") == 1
    assert types.count("order.handover") == 2
    assert types.count("order.return") == 1
    assert types.count("stock.movement") == 1  # the resellable return
    db = dbmod.connect(dbmod.db_path(store_data))
    payload = json.loads(
        db.execute(
            "SELECT payload FROM outbox WHERE type = 'order.handover' ORDER BY rowid"
        ).fetchall()[1][0]
    )
    db.close()
    assert payload["collector"] == "proxy" and payload["lines"] == [
        {"line": 1, "qty": 1},
        {"line": 2, "qty": 1},
    ]


def test_scans_faster_than_the_answers_are_all_counted(browser, store_data, server_factory):
    """A scanner does not wait for the screen: back-to-back scans are queued, none lost."""
    db = dbmod.connect(dbmod.db_path(store_data))
    install_hub_key(db)
    variants = pick_variants(db, 2)
    order = add_order(db, variants=variants, qtys=[2, 1], customer="Inès Moreau")
    db.close()
    server = server_factory(store_data)
    context = browser.new_context(viewport=TABLET, locale="fr-FR")
    page = context.new_page()
    try:
        staff_login_page(page, server.url, store_data)
        page.goto(server.url + f"/staff/orders/{order['id']}/prepare")
        page.locator("#scan-code").focus()
        codes = [order["lines"][0]["ean"], order["lines"][0]["ean"], order["lines"][1]["ean"]]
        for code in codes:  # no wait between scans
            scanner(page, code)
        expect(page.locator(".pick-line.is-done")).to_have_count(2, timeout=10000)
    finally:
        context.close()
    db = dbmod.connect(dbmod.db_path(store_data))
    picked = db.execute(
        "SELECT sum(qty_picked) FROM order_lines WHERE order_id = ?", [order["id"]]
    ).fetchone()[0]
    db.close()
    assert picked == 3
