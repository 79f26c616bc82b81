"""Orders record the prices the shopper was shown (DESIGN.md, invariant 4): the web
shop's checkout with the web promotions, a kiosk's ``order.request`` with the sending
store's promotions at its ``priced_at``; ``discount_cents`` on the order's lines."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from app.core import clock, pricing
from app.core.pricing import PricedCart, PricedLine
from app.hub import database as hdb
from app.hub.domain import keys, promotions
from app.hub.domain import orders as hub_orders
from app.hub.domain.cart_prices import catalog_rows, price_items
from app.hub.domain.orders import OrderError, create_order
from app.hub.migrations import hub_migrations
from app.store.domain import order_requests
from app.web.i18n import format_price

from .conftest import screenshot
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, HubClient, hub_db, open_hub_db, store_secrets, validate
from .test_webshop import Shopper

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

# Half up, once per line: app/core/pricing.py.


def _pct(cents: int, percent: int) -> int:
    return (cents * percent + 50) // 100


def _local(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _promote(db: hdb.Db, *, start, end, publish_at=None, **fields) -> str:
    """Create and publish a promotion through the domain (as head office would)."""
    data = {
        "title_fr": "Promo test",
        "title_en": "Test offer",
        "scope": "sku",
        "starts_local": _local(start),
        "ends_local": _local(end),
        "timezone": "UTC",
        **fields,
    }
    row = promotions.create(db, data, "test")
    promotions.publish(db, row["id"], "test", now=publish_at)
    return row["id"]


def _variants(db: hdb.Db, store_id: str = LYON, n: int = 2, min_qty: int = 3) -> list[dict]:
    """Variants the store holds at least ``min_qty`` of; odd prices first (rounding)."""
    rows = hdb.rows(
        db,
        "SELECT s.sku, coalesce(v.price_cents, p.price_cents) AS price FROM stock_levels s "
        "JOIN variants v ON v.sku = s.sku JOIN products p ON p.pk = v.product_pk "
        "WHERE s.store_id = ? AND s.qty >= ? "
        "ORDER BY coalesce(v.price_cents, p.price_cents) % 2 DESC, s.sku LIMIT ?",
        [store_id, min_qty, n],
    )
    assert len(rows) == n
    return rows


def _lines(db: hdb.Db, order_id: str) -> dict[str, tuple[int, int, int]]:
    """sku -> (qty, price_cents, discount_cents) as recorded at the hub."""
    return {
        sku: (qty, price, discount)
        for sku, qty, price, discount in db.execute(
            "SELECT sku, qty, price_cents, discount_cents FROM order_lines WHERE order_id = ?",
            [order_id],
        )
    }


def _paid(lines: dict[str, tuple[int, int, int]]) -> int:
    return sum(qty * price - discount for qty, price, discount in lines.values())


# --------------------------------------------------------------------------- web shop


def test_web_checkout_records_the_discounted_prices_the_cart_showed(
    hub_server, hub_client, browser
):
    db = hub_db(hub_server.data)
    a, b = _variants(db)
    now = clock.utcnow()
    start, end = now - timedelta(days=1), now + timedelta(days=5)
    _promote(db, start=start, end=end, kind="percent", value=15, targets=[a["sku"]])
    _promote(db, start=start, end=end, kind="nth_percent", value=50, nth=2, targets=[b["sku"]])
    # A store-only offer, better and of higher priority: the web price never gets it.
    _promote(
        db,
        start=start,
        end=end,
        kind="percent",
        value=40,
        priority=5,
        targets=[a["sku"]],
        stores=[LYON],
    )
    seq = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    db.close()

    shopper = Shopper(hub_server.url)
    shopper.add(a["sku"], 2)
    page = shopper.add(b["sku"], 3)
    shown = re.search(r'id="cart-total">([^<]+)<', page.text).group(1)
    a_discount = _pct(2 * a["price"], 15)
    b_discount = _pct(b["price"], 50)  # "2e à -50 %" on 3 units: one unit at half price
    expected = 2 * a["price"] + 3 * b["price"] - a_discount - b_discount
    assert shown == format_price(expected, "fr")

    details = {"magasin": LYON, "name": "Léa Martin", "email": "lea@example.com"}
    placed = shopper.post("/shop/commande", details)
    assert placed.status_code == 200, placed.text[:500]
    number = re.search(r"CC-\d{8}", placed.url).group(0)
    db = hub_db(hub_server.data)
    order_id = db.execute("SELECT id FROM orders WHERE number = ?", [number]).fetchone()[0]
    lines = _lines(db, order_id)
    db.close()
    # Base unit prices, and each line's whole discount: 3 units, one at -50 %, is exact.
    assert lines == {a["sku"]: (2, a["price"], a_discount), b["sku"]: (3, b["price"], b_discount)}
    assert _paid(lines) == expected

    # The shopper's order page: struck base line totals, the paid total.
    assert f"<del>{hub_orders_euros(3 * b['price'])}</del>" in placed.text
    total = re.search(r'id="order-total">.*?<strong>([^<]+)</strong>', placed.text, re.S)
    assert total.group(1) == hub_orders_euros(expected)
    assert f"Vous économisez {hub_orders_euros(a_discount + b_discount)}" in placed.text

    # The store learns the lines with their discount, as openapi.yaml says.
    page = hub_client.changes(since=seq).json()
    validate(page, "ChangesPage")
    [change] = [c for c in page["changes"] if c["kind"] == "order"]
    got = {
        ln["sku"]: (ln["qty"], ln["price_cents"], ln["discount_cents"])
        for ln in change["data"]["lines"]
    }
    assert got == lines

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    try:
        phone = context.new_page()
        phone.goto(placed.url)
        assert phone.locator("#order-total strong").inner_text() == hub_orders_euros(expected)
        assert phone.locator(".lines del").count() == 2
        phone.locator("#order-total").scroll_into_view_if_needed()
        screenshot(phone, "order-page-discounts")
    finally:
        context.close()


def hub_orders_euros(cents: int) -> str:
    """The order page's price format (app/hub/views/shop.py, euros)."""
    from app.hub.views.shop import euros

    return euros(cents)


# --------------------------------------------------------------------------- order.request


def _request(skus: list[tuple[str, int]], fulfilment: str = "pickup", **extra) -> dict:
    payload = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": fulfilment,
        "customer_name": "Inès Moreau",
        "customer_email": "ines.moreau@example.com",
        "lines": [{"sku": sku, "qty": qty} for sku, qty in skus],
        **extra,
    }
    if fulfilment == "home":
        payload["address"] = {"line1": "12 rue de la Paix", "postcode": "69002", "city": "Lyon"}
    return payload


def _send(client: HubClient, *payloads: dict) -> list[dict]:
    items = [
        {
            "id": str(uuid.uuid4()),
            "type": "order.request",
            "occurred_at": clock.now_iso(),
            "payload": p,
        }
        for p in payloads
    ]
    resp = client.post_transactions(items)
    assert resp.status_code == 200, resp.text
    validate(resp.json(), "TransactionResults")
    return resp.json()["results"]


@pytest.fixture
def ended_store_offer(hub_server):
    """A -30 % for Lyon only that ran from 3 days ago to 1 day ago (published while it
    ran), and a -10 % web offer on the same sku since an hour ago."""
    db = hub_db(hub_server.data)
    x, y = (r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 2 OFFSET 40"))
    now = clock.utcnow().replace(second=0, microsecond=0)
    _promote(
        db,
        start=now - timedelta(days=3),
        end=now - timedelta(days=1),
        publish_at=now - timedelta(days=2),
        kind="percent",
        value=30,
        targets=[x],
        stores=[LYON],
    )
    _promote(
        db,
        start=now - timedelta(hours=1),
        end=now + timedelta(days=3),
        kind="percent",
        value=10,
        targets=[x],
    )
    price = {sku: row["unit_cents"] for sku, row in catalog_rows(db, [x, y]).items()}
    db.close()
    return {"x": x, "y": y, "price": price, "during": now - timedelta(days=2), "now": now}


def test_a_kiosk_request_is_priced_for_its_store_when_the_kiosk_showed_it(
    hub_server, hub_client, ended_store_offer
):
    o = ended_store_offer
    x, y, price = o["x"], o["y"], o["price"]
    during = clock.iso(o["during"])
    paris = HubClient(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    db = hub_db(hub_server.data)
    seq = db.execute("SELECT max(seq) FROM changes").fetchone()[0]

    # Queued while the Lyon offer ran, received after it ended: priced as shown then.
    shown = _request([(x, 2), (y, 1)], priced_at=during)
    [first] = _send(hub_client, shown)
    assert first["status"] == "accepted", first
    lines = _lines(db, first["result"]["order_id"])
    assert lines == {x: (2, price[x], _pct(2 * price[x], 30)), y: (1, price[y], 0)}
    # Sent again under another transaction id: the first order, nothing new.
    [again] = _send(hub_client, shown)
    assert again["result"] == first["result"]
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 1

    # No priced_at: the hub's now (the web offer is on, the Lyon one is over).
    [today] = _send(hub_client, _request([(x, 2)]))
    assert _lines(db, today["result"]["order_id"]) == {x: (2, price[x], _pct(2 * price[x], 10))}
    # Another store at the same instant: the Lyon-only offer is not its price.
    [other] = _send(paris, _request([(x, 2)], priced_at=during))
    assert other["status"] == "accepted", other
    assert _lines(db, other["result"]["order_id"]) == {x: (2, price[x], 0)}

    # Home delivery: the same prices in the delivery's lines and total.
    [home] = _send(hub_client, _request([(x, 3), (y, 2)], "home", priced_at=during))
    assert home["status"] == "accepted", home
    stored, total = db.execute(
        "SELECT lines, total_cents FROM delivery_orders WHERE id = ?",
        [home["result"]["delivery_id"]],
    ).fetchone()
    discount = _pct(3 * price[x], 30)
    assert [(ln["sku"], ln["qty"], ln["discount_cents"]) for ln in json.loads(stored)] == [
        (x, 3, discount),
        (y, 2, 0),
    ]
    assert total == 3 * price[x] + 2 * price[y] - discount

    # Lyon's feed carries its orders with the discounts; the data fits openapi.yaml.
    page = hub_client.changes(since=seq).json()
    validate(page, "ChangesPage")
    mine = {c["key"]: c["data"] for c in page["changes"] if c["kind"] == "order"}
    assert set(mine) == {first["result"]["order_id"], today["result"]["order_id"]}
    assert {
        ln["sku"]: ln["discount_cents"] for ln in mine[first["result"]["order_id"]]["lines"]
    } == {x: _pct(2 * price[x], 30), y: 0}
    db.close()


@pytest.mark.parametrize(
    "priced_at",
    [
        "too_old",
        "ahead",
        "yesterday",
        "2026-11-22T14:02:00",  # no time zone
        20261122,
    ],
)
def test_a_priced_at_out_of_range_is_refused_and_nothing_is_written(
    hub_server, hub_client, ended_store_offer, priced_at
):
    now = clock.utcnow()
    value = {
        "too_old": clock.iso(now - timedelta(days=14, minutes=5)),
        "ahead": clock.iso(now + timedelta(minutes=10)),
    }.get(priced_at, priced_at)
    for fulfilment in ("pickup", "home"):
        payload = _request([(ended_store_offer["x"], 1)], fulfilment, priced_at=value)
        [res] = _send(hub_client, payload)
        assert res["status"] == "rejected" and res["reason"] == "invalid_payload", res
        assert "priced_at" in res["message"], res
    db = hub_db(hub_server.data)
    for table in ("orders", "delivery_orders", "order_requests"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table  # noqa: S608
    db.close()


def test_the_kiosk_stamps_its_order_request_with_when_it_showed_the_prices(store_db, monkeypatch):
    monkeypatch.setenv("KIOSK_FAKE_NOW", "2026-11-22T14:02:00Z")
    customer = order_requests.check_customer("pickup", "Léa Roux", "lea@example.org", None)
    request_id = order_requests.queue_order_request(store_db, [("M000001-BLK-40", 1)], customer)
    row = store_db.execute("SELECT payload FROM outbox WHERE id = ?", [request_id]).fetchone()
    payload = json.loads(row[0])
    assert payload["priced_at"] == "2026-11-22T14:02:00Z"
    validate(payload, "OrderRequestPayload")


# --------------------------------------------------------------------------- domain


@pytest.fixture
def db(hub_data: Path):
    conn = open_hub_db(hub_data)
    yield conn
    conn.close()


def _priced(db: Database, pairs: list[tuple[str, int]]) -> PricedCart:
    return price_items(db, pricing.cart_items(db, pairs))


def test_create_order_refuses_prices_that_do_not_cover_its_lines(db, hub_data):
    a, b = (v["sku"] for v in _variants(db))
    key = keys.current_private_key(hub_data)

    def place(lines, priced):
        return create_order(
            db,
            LYON,
            "Léa",
            "lea@example.com",
            lines,
            private_key=key,
            priced=priced,
            code_hasher=hub_orders.demo_code_hash,
        )

    wrong = {
        "qty": _priced(db, [(a, 1)]),
        "missing": _priced(db, [(a, 2)]),
        "extra": PricedCart((*_priced(db, [(a, 2)]).lines, PricedLine(b, 1, 100, 100)), 0, 0),
        "twice": PricedCart((*_priced(db, [(a, 2)]).lines, *_priced(db, [(a, 2)]).lines), 0, 0),
        "over": PricedCart((PricedLine(a, 2, 100, 150, 250),), -50, 250),
    }
    for name, priced in wrong.items():
        lines = [{"sku": a, "qty": 2}] + ([{"sku": b, "qty": 1}] if name == "missing" else [])
        with pytest.raises(OrderError) as err:
            place(lines, priced)
        assert err.value.code == "invalid_lines", name
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    # The same sku on two lines is merged before matching the priced cart.
    shown = PricedCart((PricedLine(a, 3, 1999, 2998, 1000, "pr-x"),), 2998, 1000)
    made = place([{"sku": a, "qty": 1}, {"sku": a, "qty": 2}], shown)
    assert [
        (ln["qty"], ln["price_cents"], ln["discount_cents"]) for ln in made["order"]["lines"]
    ] == [(3, 1999, 1000)]
    # Without priced: today's base price, no discount (seed, bench and demo orders).
    plain = place([{"sku": b, "qty": 1}], None)
    [line] = plain["order"]["lines"]
    base = catalog_rows(db, [b])[b]["unit_cents"]
    assert (line["price_cents"], line["discount_cents"]) == (base, 0)
    # The SQL form of the change data (publish_many) says the same as the Python one.
    first, last = hub_orders.publish_many(db, [made["order"]["id"]])
    assert first == last
    data = json.loads(db.execute("SELECT data FROM changes WHERE seq = ?", [last]).fetchone()[0])
    assert data == hub_orders.order_change_data(db, made["order"]["id"])


def test_m006_adds_discount_cents_defaulting_to_zero():
    db = Database(memory=True)
    hub_migrations.apply(db, stop_before="m006_order_discounts")
    assert "discount_cents" not in db["order_lines"].columns_dict
    hub_migrations.apply(db)
    column = next(c for c in db["order_lines"].columns if c.name == "discount_cents")
    assert (column.type, column.notnull, column.default_value) == ("INTEGER", 1, "0")
    assert [m.name for m in hub_migrations.pending(db)] == []


def test_a_kiosk_request_pays_the_price_shown_when_a_promotion_was_withdrawn_since(
    hub_server, hub_client
):
    db = hub_db(hub_server.data)
    x, y = (r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 2 OFFSET 60"))
    price = {sku: row["unit_cents"] for sku, row in catalog_rows(db, [x, y]).items()}
    now = clock.utcnow().replace(second=0, microsecond=0)
    offer = _promote(
        db,
        start=now - timedelta(hours=2),
        end=now + timedelta(days=1),
        kind="percent",
        value=25,
        targets=[x],
        stores=[LYON],
    )
    # The kiosk showed -25 % on x, then head office withdrew the offer before the
    # store (offline meanwhile) sent the order: the hub's rules no longer have it.
    promotions.unpublish(db, offer, "test")
    shown_x = 2 * price[x] - _pct(2 * price[x], 25)
    request = _request([(x, 2), (y, 1)], priced_at=clock.iso(now - timedelta(minutes=30)))
    request["lines"][0]["shown_total_cents"] = shown_x
    request["lines"][1]["shown_total_cents"] = price[y] + 500  # more than the hub's price
    [res] = _send(hub_client, request)
    assert res["status"] == "accepted", res
    lines = _lines(db, res["result"]["order_id"])
    # Lower shown price honoured; a higher one is not: never more than the hub's price.
    assert lines == {x: (2, price[x], 2 * price[x] - shown_x), y: (1, price[y], 0)}
    assert _paid(lines) == shown_x + price[y]
    for bad in (-1, 1.5, True, "12"):
        payload = _request([(x, 1)])
        payload["lines"][0]["shown_total_cents"] = bad
        [refused] = _send(hub_client, payload)
        assert refused["status"] == "rejected" and refused["reason"] == "invalid_payload", bad
    db.close()
