"""Web orders, carts, the catalog's change log, notifications and the mailer on both hub
backends: an SQLite file and a fresh database of the throwaway PostgreSQL cluster
(tests/pg.py), never a mock. The modules are called directly, as the web shop and the
protocol call them."""

from __future__ import annotations

import json
import socketserver
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.cart_codec import CartLine
from app.core.clock import iso, utcnow
from app.demo import seed as store_seed
from app.demo.hub_seed import seed_hub
from app.hub import database as hdb
from app.hub import mailer
from app.hub.domain import carts, catalog, notifications, orders, shop_stores
from app.hub.domain.cart_prices import catalog_rows, priced_lines
from app.hub.domain.changes import changes_since
from app.hub.domain.order_rows import get_order, get_order_by_number, order_lines
from app.hub.storage import open_database

from .pg import *  # noqa: F403

LYON, PARIS = store_seed.DEMO_STORES[0]["id"], store_seed.DEMO_STORES[1]["id"]
PRODUCTS = 50


@pytest.fixture
def hub(target: str, tmp_path):
    """A migrated hub seeded with the demo retailer (3 stores, 50 products); its
    personal-data key (orders' people are sealed) in ``tmp_path``, as open_db says."""
    db = open_database(target)
    db.pii_data_dir = tmp_path
    seed_hub(db, products=PRODUCTS)
    yield db
    db.close()


KEY = Ed25519PrivateKey.generate()


def _in_stock(db, n: int, store_id: str = LYON, at_least: int = 3) -> list[str]:
    found = [
        r["sku"]
        for r in hdb.rows(
            db,
            "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= ? ORDER BY sku LIMIT ?",
            [store_id, at_least, n],
        )
    ]
    assert len(found) == n
    return found


def _level(db, sku: str, store_id: str = LYON) -> int:
    return hdb.scalar(
        db, "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [store_id, sku]
    )


def _feed(db, store_id: str, since: int = 0) -> list[dict]:
    return changes_since(db, store_id, since, limit=2000)["changes"]


def _canonical(text: str) -> str:
    """A change's data as compact JSON, keys in their stored order (dict equality alone
    would not see a reordering)."""
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------------------ orders


def test_an_order_is_placed_reserved_published_to_its_store_and_notified(hub):
    a, b = _in_stock(hub, 2)
    before = {s: _level(hub, s) for s in (a, b)}
    since = hdb.scalar(hub, "SELECT max(seq) FROM changes")
    made = orders.create_order(
        hub,
        LYON,
        "Élodie Martin",
        "elodie@example.com",
        [{"sku": a, "qty": 2}, {"sku": b, "qty": 1}, {"sku": a, "qty": 1}],
        private_key=KEY,
    )
    order = made["order"]
    assert order["status"] == "placed" and order["revision"] == 1
    assert [(ln["sku"], ln["qty"]) for ln in order["lines"]] == [(a, 3), (b, 1)]
    # The store is told the first name only (and its initial), never the e-mail.
    assert (order["customer_name"], order["customer_initials"]) == ("Élodie", "É.")
    assert order["customer_email"] is None
    # Reserved out of the store's level (the qualified upsert), each level on the feed.
    assert (_level(hub, a), _level(hub, b)) == (before[a] - 3, before[b] - 1)
    lyon = _feed(hub, LYON, since)
    assert [(c["kind"], c["key"]) for c in lyon] == [
        ("hub_key", orders.keys.kid_for(KEY)),
        ("stock", f"{LYON}/{a}"),
        ("stock", f"{LYON}/{b}"),
        ("order", order["id"]),
    ]
    assert lyon[1]["data"]["qty"] == before[a] - 3
    assert lyon[-1]["data"] == order
    # Only its store is sent the order; the others see the stock levels.
    assert [c["kind"] for c in _feed(hub, PARIS, since)] == ["hub_key", "stock", "stock"]
    # Read back by id and by number; the shopper's key opens it, nothing else does.
    assert get_order(hub, order["id"])["number"] == order["number"]
    assert get_order_by_number(hub, order["number"])["id"] == order["id"]
    assert get_order(hub, "o-nobody") is None
    assert orders.check_access_key(hub, order["id"], made["access_key"])
    assert not orders.check_access_key(hub, order["id"], "wrong")
    assert made["shop_path"] == f"/orders/{order['number']}?k={made['access_key']}"
    [placed] = notifications.for_order(hub, order["id"])
    assert placed["kind"] == "placed" and order["number"] in placed["subject"]
    assert store_seed.DEMO_STORES[0]["name"] in placed["body"]


def test_refused_orders_write_nothing(hub):
    [a] = _in_stock(hub, 1)
    count = hdb.scalar(hub, "SELECT count(*) FROM changes")
    cases = {
        "out_of_stock": [{"sku": a, "qty": _level(hub, a) + 1}],
        "unknown_sku": [{"sku": "NO-SUCH-SKU", "qty": 1}],
        "invalid_lines": [{"sku": a, "qty": 0}],
    }
    for code, lines in cases.items():
        with pytest.raises(orders.OrderError) as err:
            orders.create_order(hub, LYON, "A B", "a@b.example", lines, private_key=KEY)
        assert err.value.code == code
    with pytest.raises(orders.OrderError) as err:
        orders.create_order(
            hub, "st-nobody", "A B", "a@b.example", [{"sku": a, "qty": 1}], private_key=KEY
        )
    assert err.value.code == "unknown_store"
    assert hdb.scalar(hub, "SELECT count(*) FROM orders") == 0
    assert hdb.scalar(hub, "SELECT count(*) FROM changes") == count
    assert hdb.scalar(hub, "SELECT count(*) FROM notifications") == 0
    # The connection is usable again after the rolled-back transactions.
    made = orders.create_order(
        hub, LYON, "A B", "a@b.example", [{"sku": a, "qty": 1}], private_key=KEY
    )
    assert made["order"]["status"] == "placed"


def test_status_transitions_publish_a_new_revision_and_notify(hub):
    a, b = _in_stock(hub, 2)
    made = orders.create_order(
        hub,
        LYON,
        "Chloé Petit",
        "chloe@example.com",
        [{"sku": a, "qty": 2}, {"sku": b, "qty": 1}],
        private_key=KEY,
    )
    order_id = made["order"]["id"]
    since = hdb.scalar(hub, "SELECT max(seq) FROM changes")
    at = iso(utcnow())
    with hdb.write(hub):
        hdb.execute(
            hub,
            "UPDATE order_lines SET qty_ready = CASE WHEN sku = ? THEN qty ELSE 0 END "
            "WHERE order_id = ?",
            [a, order_id],
        )
        orders.set_status(hub, order_id, "ready_partial", at)
        seq = orders.publish(hub, order_id, tx_id="tx-ready-1")
        ready_id = notifications.record(hub, get_order(hub, order_id), "ready")
    [change] = _feed(hub, LYON, since)
    assert change["seq"] == seq and change["kind"] == "order"
    data = change["data"]
    assert (data["status"], data["revision"], data["ready_at"], data["tx"]) == (
        "ready_partial",
        2,
        at,
        "tx-ready-1",
    )
    assert [(ln["qty_ready"]) for ln in data["lines"]] == [2, 0]
    assert data == orders.order_change_data(hub, order_id, "tx-ready-1")
    assert _feed(hub, PARIS, since) == []
    listed = notifications.for_order(hub, order_id)
    assert [n["kind"] for n in listed] == ["placed", "ready"]
    assert listed[1]["id"] == ready_id > listed[0]["id"]
    assert listed[1]["qr_token"] == made["pickup_token"]
    assert made["pickup_code"] in listed[1]["body"] and "manquant" in listed[1]["body"]
    with hdb.write(hub):
        orders.set_status(hub, order_id, "collected", iso(utcnow()))
        orders.publish(hub, order_id)
    assert get_order(hub, order_id)["collected_at"] is not None
    assert _feed(hub, LYON, since)[-1]["data"]["revision"] == 3


def test_publish_many_writes_the_same_data_as_the_python_form(hub):
    skus = _in_stock(hub, 3)
    ids = [
        orders.create_order(
            hub, LYON, name, "x@example.com", [{"sku": s, "qty": 1}], private_key=KEY, notify=False
        )["order"]["id"]
        for name, s in zip(["Zoé Noël", "Ana", "Jean-Luc O'Brien"], skus, strict=True)
    ]
    # An order whose lines were all removed still publishes, with no lines.
    with hdb.write(hub):
        hdb.execute(hub, "DELETE FROM order_lines WHERE order_id = ?", [ids[1]])
    first, last = orders.publish_many(hub, ids)
    assert last - first == 2
    found = hdb.rows(
        hub,
        "SELECT seq, kind, key, store_id, data FROM changes WHERE seq BETWEEN ? AND ? ORDER BY seq",
        [first, last],
    )
    assert [(r["kind"], r["key"], r["store_id"]) for r in found] == [
        ("order", i, LYON) for i in ids
    ]
    for row, order_id in zip(found, ids, strict=True):
        python = orders.order_change_data(hub, order_id)
        assert _canonical(row["data"]) == json.dumps(
            python, ensure_ascii=False, separators=(",", ":")
        )
    assert json.loads(found[1]["data"])["lines"] == []
    assert order_lines(hub, ids[1]) == []


# ------------------------------------------------------------------------------- carts


def test_a_cart_is_filled_priced_checked_out_once_and_revoked(hub):
    a, b = _in_stock(hub, 2, at_least=4)
    cart_id = carts.create_cart(hub)
    assert carts.cart_lines(hub, cart_id) == []
    carts.add_item(hub, cart_id, a, 1)
    line = carts.add_item(hub, cart_id, a, 2)  # added to the line already there
    unit = catalog_rows(hub, [a])[a]["unit_cents"]
    assert line == {"sku": a, "qty": 3, "price_cents": unit}
    carts.add_item(hub, cart_id, b)
    carts.set_qty(hub, cart_id, b, 2)
    with pytest.raises(carts.CartError) as err:
        carts.add_item(hub, cart_id, "NO-SUCH-SKU")
    assert err.value.code == "unknown_sku"
    with pytest.raises(carts.CartError) as err:
        carts.set_qty(hub, cart_id, "NO-SUCH-SKU", 1)
    assert err.value.code == "unknown_sku"
    lines = carts.cart_lines(hub, cart_id)
    assert [(ln["sku"], ln["qty"]) for ln in lines] == [(a, 3), (b, 2)]
    assert carts.lookup_data(hub, carts.get_cart(hub, cart_id))["lines"] == lines
    assert carts.check_access_key(hub, cart_id, carts.access_key(hub, cart_id))
    assert carts.cart_token(hub, KEY, cart_id)
    priced = priced_lines(hub, lines)
    assert priced["count"] == 5 and [ln["sku"] for ln in priced["lines"]] == [a, b]
    assert carts.store_levels(hub, LYON, [a, b, "NO-SUCH-SKU"])["NO-SUCH-SKU"] == 0
    served = shop_stores.chooser(hub, {ln["sku"]: ln["qty"] for ln in lines}, [], 1, size=1000)
    assert {s["id"]: s["lines_ok"] for s in served.items}[LYON] == 2
    assert {s["id"] for s in served.items} >= {LYON, PARIS}
    since = hdb.scalar(hub, "SELECT max(seq) FROM changes")
    with pytest.raises(carts.CartError) as err:
        carts.checkout(
            hub,
            cart_id,
            LYON,
            "Ana Lopez",
            "ana@example.com",
            private_key=KEY,
            expected_total=priced["total_cents"] + 1,
        )
    assert err.value.code == "price_changed"
    assert hdb.scalar(hub, "SELECT max(seq) FROM changes") == since  # nothing written
    made = carts.checkout(
        hub,
        cart_id,
        LYON,
        "Ana Lopez",
        "ana@example.com",
        private_key=KEY,
        expected_total=priced["total_cents"],
    )
    assert [(ln["sku"], ln["qty"]) for ln in made["order"]["lines"]] == [(a, 3), (b, 2)]
    assert carts.get_cart(hub, cart_id)["status"] == "ordered"
    assert carts.get_cart(hub, cart_id)["order_id"] == made["order"]["id"]
    kinds = [(c["kind"], c["key"]) for c in _feed(hub, LYON, since)]
    assert ("order", made["order"]["id"]) in kinds and kinds[-1] == ("revocation", cart_id)
    # Every store is told to refuse the cart's QR code; only Lyon gets the order.
    paris = [(c["kind"], c["key"]) for c in _feed(hub, PARIS, since)]
    assert ("revocation", cart_id) in paris and ("order", made["order"]["id"]) not in paris
    with pytest.raises(carts.CartError) as err:
        carts.checkout(hub, cart_id, LYON, "Ana Lopez", "ana@example.com", private_key=KEY)
    assert err.value.code == "cart_closed"
    assert hdb.scalar(hub, "SELECT count(*) FROM orders") == 1


def test_a_kiosk_cart_is_imported_at_todays_prices(hub):
    a, b = _in_stock(hub, 2)
    unit = catalog_rows(hub, [a])[a]["unit_cents"]
    made = carts.import_lines(
        hub, [CartLine(a, 2, unit + 100), CartLine("NO-SUCH-SKU", 1, 5), CartLine(b, 1, 0)]
    )
    assert made["dropped"] == ["NO-SUCH-SKU"]
    assert made["changed"][0] == {"sku": a, "was_cents": unit + 100, "now_cents": unit}
    assert [ln["sku"] for ln in carts.cart_lines(hub, made["cart_id"])] == [a, b]
    seq = carts.close_cart(hub, made["cart_id"])
    assert _feed(hub, PARIS, seq - 1)[0]["data"]["id"] == made["cart_id"]


# ----------------------------------------------------------------------------- catalog


def _catalog_log(target: str, created_at: str) -> list[tuple]:
    """The catalog's change log as the seeder writes it, written again on an equal state
    (stock dated ``created_at`` too): (kind, key, store_id, canonical data)."""
    db = open_database(target)
    try:
        seed_hub(db, products=PRODUCTS)
        with hdb.write(db):
            hdb.execute(db, "DELETE FROM changes")
            hdb.execute(db, "UPDATE stock_levels SET as_of = ?", [created_at])
            n = catalog.log_categories(db, created_at)
            n += catalog.log_products(db, created_at, 1, 20)
            n += catalog.log_products(db, created_at, 21, PRODUCTS)
            for store in store_seed.DEMO_STORES:
                n += catalog.log_stock(db, created_at, store["id"])
        found = hdb.rows(
            db, "SELECT kind, key, store_id, data, created_at FROM changes ORDER BY seq"
        )
        assert len(found) == n and {r["created_at"] for r in found} == {created_at}
        return [(r["kind"], r["key"], r["store_id"], _canonical(r["data"])) for r in found]
    finally:
        db.close()


def test_the_catalog_publish_writes_the_same_change_data_on_both(tmp_path, pg_database):
    at = "2026-11-22T14:02:00Z"
    on_sqlite = _catalog_log(str(tmp_path / "hub.db"), at)
    on_pg = _catalog_log(pg_database, at)
    kinds = [k for k, *_ in on_sqlite]
    assert kinds.count("product") == PRODUCTS and "category" in kinds and "stock" in kinds
    assert on_pg == on_sqlite  # same changes, same order, same keys in the same order
    product = json.loads(next(d for k, _key, _s, d in on_sqlite if k == "product"))
    assert list(product)[-1] == "variants" and product["variants"]
    assert list(product["variants"][0]) == list(catalog._VARIANT_KEYS)
    # Variants in display order: colour (bytewise), then size.
    order = [(v["colour_code"], v["size_order"]) for v in product["variants"]]
    assert order == sorted(order)


# ------------------------------------------------------------------------------ mailer


class _SMTPSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept messages (no TLS, no login)."""

    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._say("220 sink")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "EHLO":
                self._say("250 sink")
            elif verb == "DATA":
                self._say("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.server.messages.append(data)
                self._say("250 queued")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("250 ok")


@pytest.fixture
def smtp_sink():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPSink)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_mailer_sends_each_notification_once(hub, target, smtp_sink):
    [a] = _in_stock(hub, 1)
    orders.create_order(
        hub, LYON, "Ana", "ana@example.com", [{"sku": a, "qty": 1}], private_key=KEY
    )
    settings = mailer.smtp_settings(
        {
            "KIOSK_HUB_SMTP_HOST": "127.0.0.1",
            "KIOSK_HUB_SMTP_PORT": str(smtp_sink.server_address[1]),
        }
    )
    [pending] = mailer.pending(hub)
    if hdb.is_pg(hub):
        # Another hub process mailing right now: this one leaves the round to it.
        other = hdb.connect(target)
        try:
            with mailer._sole_mailer(other) as mine:
                assert mine
                assert mailer.send_pending(hub, settings) == 0
        finally:
            other.close()
    assert mailer.send_pending(hub, settings) == 1
    assert mailer.send_pending(hub, settings) == 0
    assert len(smtp_sink.messages) == 1 and b"ana@example.com" in smtp_sink.messages[0]
    row = hdb.one(
        hub, "SELECT sent_at, attempts, error FROM notifications WHERE id = ?", [pending["id"]]
    )
    assert row["sent_at"] and row["attempts"] == 1 and row["error"] is None
