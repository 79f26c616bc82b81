"""Carts between a real hub and a real store server, over HTTP: a big cart read through
the hub's signed look-up, a checked-out cart refused at the kiosk once the revocation
arrives on the feed, and lines not in the store ordered from the kiosk (queued while
the hub is down, created at the hub once, and sent to the store as a web order)."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from app.core.cart_codec import CartLine
from app.hub import database as hdb
from app.hub.domain import order_people

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_db, store_env, wait_for

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _hub_variants(hub_data: Path, n: int, *, in_lyon: bool) -> list[dict]:
    """``n`` variants with (or without) units in Lyon, with their price."""
    db = hub_db(hub_data)
    try:
        return hdb.rows(
            db,
            f"""SELECT v.sku, COALESCE(v.price_cents, p.price_cents) AS price_cents
                FROM variants v JOIN products p ON p.pk = v.product_pk
                LEFT JOIN stock_levels l ON l.sku = v.sku AND l.store_id = ?
                WHERE COALESCE(l.qty, 0) {">= 1" if in_lyon else "= 0"}
                ORDER BY v.sku LIMIT ?""",  # noqa: S608
            [LYON, n],
        )
    finally:
        db.close()


def _hub_cart(hub_data: Path, lines: list[CartLine]) -> tuple[str, str]:
    """A web cart at the hub and its QR token, as the web shop makes them."""
    from app.hub.domain import carts as hub_carts
    from app.hub.domain.keys import current_private_key

    db = hub_db(hub_data)
    try:
        cart_id = hub_carts.create_cart(db, "web", lines)
        return cart_id, hub_carts.cart_token(db, current_private_key(hub_data), cart_id)
    finally:
        db.close()


def _kiosk_scan(url: str, token: str) -> requests.Response:
    s = requests.Session()
    resp = s.get(f"{url}/scan", params={"code": token}, timeout=10)
    resp.session = s  # type: ignore[attr-defined]
    return resp


def test_a_reference_cart_is_read_through_the_hub_and_refused_once_checked_out(
    hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    variants = _hub_variants(hub_data, 35, in_lyon=True)
    lines = [CartLine(v["sku"], 1, v["price_cents"]) for v in variants]
    cart_id, token = _hub_cart(hub_data, lines)
    assert len(token) < 400  # 35 lines: a reference, the lines stay at the hub
    resp = _kiosk_scan(store.url, token)
    assert resp.status_code == 200 and resp.url.endswith("/panier")
    assert resp.text.count('class="cart-line status-') == 35
    # Scanned again a moment later: the store remembers it, the hub is asked once.
    assert _kiosk_scan(store.url, token).text.count('class="cart-line status-') == 35
    db = hub_db(hub_data)
    try:
        assert db.execute("SELECT count(*) FROM rate_events").fetchone()[0] == 1
    finally:
        db.close()
    # Checked out on the web: the revocation reaches the store, the QR is refused.
    small_id, small_token = _hub_cart(hub_data, lines[:3])
    assert _kiosk_scan(store.url, small_token).status_code == 200
    from app.hub.domain import carts as hub_carts

    db = hub_db(hub_data)
    try:
        hub_carts.close_cart(db, small_id, "ordered")
    finally:
        db.close()

    def refused() -> bool:
        r = _kiosk_scan(store.url, small_token)
        return r.status_code == 400 and 'data-problem="revoked"' in r.text

    wait_for(refused, 10, "the revocation on the feed")
    # A reference cart not seen yet, while the hub is down: a clear message.
    _, unseen = _hub_cart(hub_data, lines[::-1])
    hub.stop()
    resp = _kiosk_scan(store.url, unseen)
    assert resp.status_code == 400 and 'data-problem="offline"' in resp.text


def test_lines_not_here_are_ordered_from_the_kiosk_once_even_across_a_hub_outage(
    hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    absent = _hub_variants(hub_data, 2, in_lyon=False)
    cart_id, token = _hub_cart(hub_data, [CartLine(v["sku"], 1, v["price_cents"]) for v in absent])
    hub.stop()  # the order is made while the link is down: it waits in the outbox
    resp = _kiosk_scan(store.url, token)
    s = resp.session
    page = s.get(f"{store.url}/panier/commander", timeout=10)
    form = {
        "csrf_token": _CSRF.search(page.text).group(1),
        "fulfilment": "pickup",
        "name": "Inès Garnier",
        "email": "ines.garnier@example.org",
    }
    done = s.post(f"{store.url}/panier/commander", data=form, timeout=10)
    assert done.status_code == 200 and 'data-state="queued"' in done.text
    confirmation = done.url
    hub.start()  # the link comes back (same address)

    def number() -> str | None:
        text = s.get(confirmation, timeout=10).text
        found = re.search(r'data-state="sent".*?<strong>(LD-|CC-)?([0-9-]+)</strong>', text, re.S)
        return found.group(0) if found else None

    wait_for(number, 20, "the hub's answer to the order request")
    db = hub_db(hub_data)
    try:
        found = order_people.ids_by_email(  # by blind index: the e-mail is sealed
            db, order_people.ring_of(db), "orders", "ines.garnier@example.org"
        )
        orders = [
            hdb.one(db, "SELECT id, number, store_id FROM orders WHERE id = ?", [i]) for i in found
        ]
    finally:
        db.close()
    assert len(orders) == 1 and orders[0]["store_id"] == LYON
    # The cart brought by QR code was closed with the order: not orderable twice.
    db = hub_db(hub_data)
    try:
        assert db.execute(
            "SELECT status, order_id FROM carts WHERE id = ?", [cart_id]
        ).fetchone() == (
            "ordered",
            orders[0]["id"],
        )
    finally:
        db.close()
    # The order comes back to the store on the feed, to be prepared like any web order.
    wait_for(
        lambda: orders[0]["number"] in _store_order_numbers(synced_store), 20, "the order feed"
    )


def _store_order_numbers(data: Path) -> set[str]:
    from app.core import db as dbmod

    db = dbmod.connect(dbmod.db_path(data))
    try:
        return {row[0] for row in db.execute("SELECT number FROM orders").fetchall()}
    finally:
        db.close()
