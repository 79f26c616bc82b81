"""The click-and-collect counter in Chromium on a 1280×800 tablet, against a REAL hub
process and a store server synced to it: orders placed at the hub reach the store on
the change feed; staff prepare them by scanning (a wrong item included), make them
ready, hand them over by a photo of the hub's pickup QR code and by number + code
(partially, to a proxy), and take a return; the hub holds each of the store's
transactions exactly once. Then the same with the hub stopped once the orders arrived,
started again, and "Réessayer maintenant" pressed on the sync status screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.core import db as dbmod
from app.hub.domain import order_people
from app.hub.domain.pii import KeyRing
from app.store.domain import tickets

from .conftest import replaced, screenshot, staff_login_page
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_levels, hub_transactions, store_env, wait_for
from .test_counter_hub import _drained, _hub, _hub_status, _skus, _store_order

pytestmark = pytest.mark.browser

TABLET = {"width": 1280, "height": 800}
WAIT = 15_000  # ms: the change feed and the outbox worker run in the background


def _place(hub_data: Path, lines: list[dict], customer: str, email: str) -> dict:
    """A web order placed at the hub (the web shop's side), in this process."""
    from app.hub.domain.keys import current_private_key
    from app.hub.domain.orders import create_order
    from tests.hub_fixtures import open_hub_db

    db = open_hub_db(hub_data)
    try:
        return create_order(
            db, LYON, customer, email, lines, private_key=current_private_key(hub_data)
        )
    finally:
        db.close()


def _outbox(data: Path) -> dict[str, str]:
    """id -> type of every transaction the store queued."""
    db = dbmod.connect(dbmod.db_path(data))
    try:
        return dict(db.execute("SELECT id, type FROM outbox ORDER BY rowid").fetchall())
    finally:
        db.close()


def _assert_hub_holds_each_once(hub_data: Path, store: Path, kinds: list[str]) -> None:
    """Every transaction the store queued is at the hub once, accepted; nothing more."""
    sent = _outbox(store)
    assert sorted(sent.values()) == sorted(kinds), sent
    assert set(hub_transactions(hub_data, list(sent)).values()) == {1}
    at_hub = dict(
        (tx_id, (tx_type, status))
        for tx_id, tx_type, status in _hub(
            hub_data, "SELECT id, type, status FROM transactions WHERE store_id = ?", [LYON]
        )
    )
    assert at_hub == {tx_id: (tx_type, "accepted") for tx_id, tx_type in sent.items()}


def _hub_lines(hub_data: Path, order_id: str) -> list[tuple]:
    return _hub(
        hub_data,
        "SELECT line, qty_ready, qty_collected, qty_returned FROM order_lines "
        "WHERE order_id = ? ORDER BY line",
        [order_id],
    )


def _open_page(browser):
    context = browser.new_context(viewport=TABLET, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def scanner(page, code: str) -> None:
    """A handheld scanner: a fast burst of keys ending with Enter."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def _scan_all(page, order: dict) -> None:
    """Scan every unit of every line on the prepare screen, each one green. Each scan
    waits for its answer, as a person moving the next item to the scanner does."""
    for ln in order["lines"]:
        for picked in range(1, ln["qty"] + 1):
            prep = replaced(page, "#prep")  # this scan's answer, not the last one's
            scanner(page, ln["ean"])
            count = prep.locator(f'.pick-line[data-line="{ln["line"]}"] .pick-count')
            expect(count).to_have_text(f"{picked}/{ln['qty']}")
            expect(prep.locator(".feedback-ok")).to_be_visible()
    expect(page.locator(".pick-line.is-done")).to_have_count(len(order["lines"]))


def _settled(page) -> None:
    """htmx is done: no request in flight, the last swap settled (htmx then focuses the
    autofocus scan field, which would steal the keys of a field being filled)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)
    expect(page.locator("#scan-code")).to_be_focused()


def _ready(page, slot: str) -> None:
    _settled(page)
    page.locator("#shelf-slot").fill(slot)
    expect(page.locator("#shelf-slot")).to_have_value(slot)
    page.locator(".ready-form button").click()
    expect(page.locator(".status-ready")).to_be_visible()


def _by_code(page, url: str, number: str, code: str) -> None:
    page.goto(url + "/staff/orders/handover")
    page.locator("#order-number").fill(number)
    page.locator("#pickup-code").fill(code)
    page.locator(".code-form button").click()
    expect(page.locator(".notice-ok")).to_be_visible()


def test_counter_journey_against_a_real_hub(
    browser, hub_data, synced_store, hub_factory, server_factory, tmp_path
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    skus = _skus(hub_data, 4)
    before = hub_levels(hub_data)
    first = _place(
        hub_data,
        [{"sku": skus[0], "qty": 2}, {"sku": skus[1], "qty": 1}],
        "Élodie Martin",
        "elodie.martin@example.org",
    )
    second = _place(
        hub_data,
        [{"sku": skus[2], "qty": 1}, {"sku": skus[3], "qty": 2}],
        "Zoé Lefèvre",
        "zoe@example.org",
    )
    a, b = first["order"], second["order"]
    # The change feed brings both to the store.
    for o in (a, b):
        local = wait_for(lambda o=o: _store_order(synced_store, o["id"]), 15, o["number"])
        assert local["status"] == "placed" and local["number"] == o["number"]

    context, page, errors = _open_page(browser)
    try:
        staff_login_page(page, store.url, synced_store)
        page.goto(store.url + "/staff/orders")
        expect(page.locator('[data-count="to_prepare"]')).to_have_text("2")
        expect(page.locator('[data-count="ready"]')).to_have_text("0")
        expect(page.locator(".order-row", has_text=a["number"])).to_be_visible()
        screenshot(page, "70-counter-hub-to-prepare")

        # Prepare the first order: a wrong item (red, with a message), then the rest.
        page.locator(".order-row", has_text=a["number"]).click()
        expect(page).to_have_url(re.compile(rf"/staff/orders/{a['id']}$"))
        page.locator("a[href$='/prepare']").click()
        page.locator("#scan-code").focus()
        prep = replaced(page, "#prep")
        scanner(page, b["lines"][0]["ean"])
        expect(prep.locator(".feedback-error")).to_be_visible()
        expect(prep.locator(".feedback-error")).not_to_be_empty()
        expect(page.locator("body")).to_have_attribute("data-last-cue", "error")
        expect(page.locator(".pick-line.is-done")).to_have_count(0)
        screenshot(page, "71-counter-hub-wrong-item")
        _scan_all(page, a)
        _ready(page, "B12")
        screenshot(page, "72-counter-hub-ready")

        # The second order, prepared too.
        page.goto(store.url + f"/staff/orders/{b['id']}/prepare")
        page.locator("#scan-code").focus()
        _scan_all(page, b)
        _ready(page, "C3")
        page.goto(store.url + "/staff/orders")
        expect(page.locator('[data-count="to_prepare"]')).to_have_text("0")
        expect(page.locator('[data-count="ready"]')).to_have_text("2")
        for o in (a, b):
            wait_for(lambda o=o: _hub_status(hub_data, o["id"]) == "ready", 15, "ready at hub")

        # Hand-over of the first order by a photo of the QR code the hub sent.
        qr = tmp_path / "qr.png"
        tickets.render_qr(first["pickup_token"]).save(qr)
        page.goto(store.url + "/staff/orders/handover")
        page.locator("#qr-photo").set_input_files(str(qr))
        page.locator(".photo-form button").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        expect(page).to_have_url(re.compile(rf"/staff/orders/{a['id']}/handover"))
        screenshot(page, "73-counter-hub-qr-verified")
        page.locator(".handover-form button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/handovers/"))

        # The second one by number + code, partially, to a proxy.
        _by_code(page, store.url, b["number"], second["pickup_code"])
        expect(page).to_have_url(re.compile(rf"/staff/orders/{b['id']}/handover"))
        page.locator("#qty-2").fill("1")
        page.locator("input[value=proxy]").check()
        page.locator("#collector-name").fill("Jean Dupont")
        screenshot(page, "74-counter-hub-partial")
        page.locator(".handover-form button[type=submit]").click()
        expect(page.locator(".notice-ok")).to_contain_text("Jean Dupont")

        # A return of the one unit of line 1, resellable.
        page.goto(store.url + "/staff/returns")
        page.locator("#ret-number").fill(b["number"])
        page.locator("#ret-who").fill("ZOE")  # the first name: all the store holds
        page.locator(".code-form button").click()
        expect(page.locator(".return-form")).to_be_visible()
        page.locator("#rqty-1").fill("1")
        page.locator("#rqty-2").fill("0")  # it starts at what can come back: 1
        page.locator("#ret-reason").fill("Trop petit")
        page.locator(".return-form button[type=submit]").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        screenshot(page, "75-counter-hub-return")
        assert not [e for e in errors if "Content Security Policy" in e]
    finally:
        context.close()

    wait_for(lambda: _drained(store.url), 20, "the outbox to drain")
    _assert_hub_holds_each_once(
        hub_data,
        synced_store,
        [
            "order.ready",
            "order.ready",
            "order.handover",
            "order.handover",
            "order.return",
            "stock.movement",
        ],
    )
    assert _hub_status(hub_data, a["id"]) == "collected"
    assert _hub_status(hub_data, b["id"]) == "partially_collected"
    assert _hub_lines(hub_data, a["id"]) == [(1, 2, 2, 0), (2, 1, 1, 0)]
    assert _hub_lines(hub_data, b["id"]) == [(1, 1, 1, 1), (2, 2, 1, 0)]
    handovers = "SELECT method, collector, collector_name FROM handovers WHERE order_id = ?"
    assert _hub(hub_data, handovers, [a["id"]]) == [("qr", "customer", None)]
    [(method, collector, sealed)] = _hub(hub_data, handovers, [b["id"]])
    # The proxy's name is kept sealed at the hub (issue 14), and opens with its key.
    assert (method, collector) == ("code", "proxy") and "Jean" not in sealed
    assert order_people.collector_of(KeyRing.open(hub_data), sealed) == "Jean Dupont"
    assert _hub(hub_data, "SELECT count(*) FROM returns WHERE order_id = ?", [b["id"]]) == [(1,)]
    # Reserved at the order, nothing more at the hand-overs, one unit back with the return.
    levels = hub_levels(hub_data)
    assert [levels[s] - before[s] for s in skus] == [-2, -1, 0, -2]
    assert _store_order(synced_store, a["id"])["status"] == "collected"
    assert _store_order(synced_store, b["id"])["status"] == "partially_collected"


def test_counter_with_the_hub_stopped_then_retry_now(
    browser, hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data, timeout=1))
    made = _place(
        hub_data,
        [{"sku": s, "qty": 1} for s in _skus(hub_data, 2)],
        "Hugo Bernard",
        "hugo@example.org",
    )
    order = made["order"]
    wait_for(lambda: _store_order(synced_store, order["id"]), 15, "the order at the store")
    hub.stop()

    context, page, _errors = _open_page(browser)
    try:
        staff_login_page(page, store.url, synced_store)
        page.goto(store.url + f"/staff/orders/{order['id']}/prepare")
        page.locator("#scan-code").focus()
        _scan_all(page, order)
        _ready(page, "A1")
        _by_code(page, store.url, order["number"], made["pickup_code"])
        page.locator(".handover-form button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/handovers/"))

        page.goto(store.url + "/staff/status")
        status = page.locator("#sync-status")
        expect(status.locator("#sync-state")).to_have_class(re.compile("is-offline"), timeout=WAIT)
        waiting = status.locator('[data-field="outbox_depth"]')
        expect(waiting).to_have_attribute("data-count", "2")
        expect(waiting).to_have_text("2 opérations en attente (ventes, stock, commandes)")
        expect(status.locator(".sync-tech")).to_be_visible()  # "tell your manager if it lasts"
        screenshot(page, "76-counter-hub-offline")
        assert _hub_status(hub_data, order["id"]) == "placed"

        hub.start()  # same port: the store's configuration still points at it
        page.get_by_role("button", name="Réessayer maintenant").click()
        expect(page.locator(".sync-retried")).to_be_visible()
        expect(status.locator("#sync-state")).to_have_class(re.compile("is-online"), timeout=WAIT)
        expect(waiting).to_have_attribute("data-count", "0", timeout=WAIT)
        expect(waiting).to_have_text("Rien\u00a0: tout a été envoyé.")
        expect(status.locator('[data-field="parked"]')).to_have_attribute("data-count", "0")
        screenshot(page, "77-counter-hub-back-online")
    finally:
        context.close()

    db = dbmod.connect(dbmod.db_path(synced_store))
    try:
        retries = db.execute("SELECT count(*) FROM audit_log WHERE action = 'sync.retry'")
        assert retries.fetchone()[0] == 1
    finally:
        db.close()
    wait_for(lambda: _drained(store.url), 15, "the outbox to drain")
    _assert_hub_holds_each_once(hub_data, synced_store, ["order.ready", "order.handover"])
    assert _hub_status(hub_data, order["id"]) == "collected"
    assert _hub_lines(hub_data, order["id"]) == [(1, 1, 1, 0), (2, 1, 1, 0)]
    kinds = [
        k
        for (k,) in _hub(
            hub_data, "SELECT kind FROM notifications WHERE order_id = ?", [order["id"]]
        )
    ]
    assert kinds.count("ready") == 1
    assert _store_order(synced_store, order["id"])["status"] == "collected"
