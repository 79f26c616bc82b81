"""Hub carts: the domain (lines, token, checkout, revocation, import), the signed cart
look-up over HTTP, and ``order.request`` transactions from stores."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from app.core import cart_codec as codec
from app.core import pricing
from app.core.cart_codec import CartLine
from app.core.tokens import TokenError
from app.hub import database as hdb
from app.hub.domain import cart_prices, carts, keys, order_people, ratelimit, shop_stores
from app.hub.domain.orders import OrderError

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import (
    BORDEAUX,
    LYON,
    PARIS,
    HubClient,
    hub_db,
    open_hub_db,
    store_secrets,
    validate,
)

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

NOW_ISO = "2026-11-22T14:02:00Z"


@pytest.fixture
def db(hub_data: Path):
    """The hub database of this test's own data directory."""
    conn = open_hub_db(hub_data)
    yield conn
    conn.close()


def _skus(db, store_id: str = LYON, n: int = 3, min_qty: int = 3) -> list[str]:
    rows = db.execute(
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= ? ORDER BY sku LIMIT ?",
        [store_id, min_qty, n],
    ).fetchall()
    assert len(rows) == n
    return [r[0] for r in rows]


def _base_price(db, sku: str) -> int:
    return db.execute(
        "SELECT coalesce(v.price_cents, p.price_cents) FROM variants v "
        "JOIN products p ON p.pk = v.product_pk WHERE v.sku = ?",
        [sku],
    ).fetchone()[0]


def _level(db, store_id: str, sku: str) -> int:
    row = db.execute(
        "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [store_id, sku]
    ).fetchone()
    return row[0] if row else 0


# --------------------------------------------------------------------------- domain


def test_lines_merge_keep_order_and_take_todays_base_price(db):
    a, b, c = _skus(db)
    cart_id = carts.create_cart(db)
    assert codec.is_cart_id(cart_id) and carts.get_cart(db, cart_id)["status"] == "open"
    carts.add_item(db, cart_id, b, 2)
    carts.add_item(db, cart_id, a)
    line = carts.add_item(db, cart_id, b, 3)
    assert line == {"sku": b, "qty": 5, "price_cents": _base_price(db, b)}
    carts.add_item(db, cart_id, c)
    assert [(ln["sku"], ln["qty"]) for ln in carts.cart_lines(db, cart_id)] == [
        (b, 5),
        (a, 1),
        (c, 1),
    ]
    carts.set_qty(db, cart_id, a, 4)
    carts.set_qty(db, cart_id, b, 0)
    assert [(ln["sku"], ln["qty"]) for ln in carts.cart_lines(db, cart_id)] == [(a, 4), (c, 1)]


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (lambda db, cid, sku: carts.add_item(db, cid, "NOPE-1"), "unknown_sku"),
        (lambda db, cid, sku: carts.add_item(db, cid, sku, 0), "bad_qty"),
        (lambda db, cid, sku: carts.add_item(db, cid, sku, 21), "bad_qty"),
        (lambda db, cid, sku: carts.add_item(db, cid, sku, True), "bad_qty"),
        (lambda db, cid, sku: carts.add_item(db, cid, sku, 20), "bad_qty"),  # 1 already there
        (lambda db, cid, sku: carts.set_qty(db, cid, "NOPE-1", 2), "unknown_sku"),
        (lambda db, cid, sku: carts.set_qty(db, cid, sku, -1), "bad_qty"),
        (lambda db, cid, sku: carts.add_item(db, "c-" + "A" * 20, sku), "unknown_cart"),
        (lambda db, cid, sku: carts.add_item(db, "../etc", sku), "unknown_cart"),
    ],
)
def test_refused_cart_edits_change_nothing(db, action, code):
    [sku] = _skus(db, n=1)
    cart_id = carts.create_cart(db)
    carts.add_item(db, cart_id, sku)
    before = carts.get_cart(db, cart_id), carts.cart_lines(db, cart_id)
    with pytest.raises(carts.CartError) as exc:
        action(db, cart_id, sku)
    assert exc.value.code == code
    assert (carts.get_cart(db, cart_id), carts.cart_lines(db, cart_id)) == before


def test_a_cart_holds_at_most_fifty_lines(db):
    skus = [r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 51")]
    cart_id = carts.create_cart(db)
    for sku in skus[:50]:
        carts.add_item(db, cart_id, sku)
    with pytest.raises(carts.CartError) as exc:
        carts.add_item(db, cart_id, skus[50])
    assert exc.value.code == "too_many_lines"
    assert len(carts.cart_lines(db, cart_id)) == 50


def test_the_token_carries_the_lines_up_to_twenty_then_only_the_id(db, hub_data):
    private_key = keys.current_private_key(hub_data)
    public = keys.public_keys(db)
    skus = [r[0] for r in db.execute("SELECT sku FROM variants ORDER BY length(sku), sku LIMIT 30")]
    cart_id = carts.create_cart(db)
    for sku in skus[:20]:
        carts.add_item(db, cart_id, sku, 2)
    token = carts.cart_token(db, private_key, cart_id)
    ref = codec.read_cart_token(public, token)
    assert ref.cart_id == cart_id and len(token) <= codec.INLINE_MAX_CHARS
    assert [(ln.sku, ln.qty, ln.price_cents) for ln in ref.lines] == [
        (s, 2, _base_price(db, s)) for s in skus[:20]
    ]
    for sku in skus[20:]:
        carts.add_item(db, cart_id, sku)
    ref = codec.read_cart_token(public, carts.cart_token(db, private_key, cart_id))
    assert ref.cart_id == cart_id and ref.lines is None
    # Another key's signature is refused: only the hub mints cart tokens.
    other = keys.current_private_key(hub_data / "other")
    with pytest.raises(TokenError):
        codec.read_cart_token(public, carts.cart_token(db, other, cart_id))


def test_every_cart_price_goes_through_the_one_pricing_function(db, monkeypatch):
    a, b, _c = _skus(db)
    lines = [
        {"sku": a, "qty": 2, "price_cents": 1},
        {"sku": b, "qty": 1},
        {"sku": "GONE", "qty": 1},
    ]
    plain = cart_prices.priced_lines(db, lines)
    assert [ln["sku"] for ln in plain["lines"]] == [a, b]  # unknown sku left out
    assert plain["total_cents"] == 2 * _base_price(db, a) + _base_price(db, b)
    assert plain["lines"][0]["added_cents"] == 1 and plain["count"] == 3
    # With a promotion rule in force the same lines cost what app.core.pricing says.
    rule = pricing.Rule(id="pr-test", kind="percent", value=10, scope="sku", targets=frozenset({a}))
    monkeypatch.setattr(cart_prices, "promotion_rules", lambda db, store_id=None, now=None: (rule,))
    promo = cart_prices.priced_lines(db, lines)
    expected = pricing.price_cart(
        [
            pricing.Item(ln["sku"], ln["category_slug"], ln["unit_cents"], ln["qty"])
            for ln in plain["lines"]
        ],
        rules=[rule],
    )
    assert promo["total_cents"] == expected.total_cents < plain["total_cents"]
    assert promo["lines"][0]["discount_cents"] > 0 and promo["discount_cents"] > 0
    card = {"ref": a, "category_slug": plain["lines"][0]["category_slug"], "price_cents": 1000}
    assert cart_prices.unit_price(db, card) == 900
    own_price = {"sku": a, "price_cents": 2000}
    assert cart_prices.unit_price(db, {**card, "ref": "P"}, own_price) == 1800


def test_checkout_places_the_order_and_revokes_the_cart_in_one_transaction(db, hub_data):
    a, b, _c = _skus(db)
    cart_id = carts.create_cart(db)
    carts.add_item(db, cart_id, a, 2)
    carts.add_item(db, cart_id, b)
    level_a = _level(db, LYON, a)
    made = carts.checkout(
        db,
        cart_id,
        LYON,
        "Chloé Dubois",
        "chloe@example.com",
        private_key=keys.current_private_key(hub_data),
    )
    order = made["order"]
    assert order["store_id"] == LYON and [(ln["sku"], ln["qty"]) for ln in order["lines"]] == [
        (a, 2),
        (b, 1),
    ]
    assert _level(db, LYON, a) == level_a - 2  # reserved, as any web order
    cart = carts.get_cart(db, cart_id)
    assert cart["status"] == "ordered" and cart["order_id"] == order["id"]
    kind, key, store_id, data = db.execute(
        "SELECT kind, key, store_id, data FROM changes WHERE kind = 'revocation'"
    ).fetchone()
    assert (key, store_id) == (cart_id, None)
    assert json.loads(data) == {"kind": "cart", "id": cart_id, "at": cart["updated_at"]}
    # The cart is closed: no second order, no new token, no more edits.
    for action in (
        lambda: carts.checkout(
            db,
            cart_id,
            LYON,
            "Chloé",
            "chloe@example.com",
            private_key=keys.current_private_key(hub_data),
        ),
        lambda: carts.cart_token(db, keys.current_private_key(hub_data), cart_id),
        lambda: carts.add_item(db, cart_id, a),
        lambda: carts.close_cart(db, cart_id),
    ):
        with pytest.raises(carts.CartError) as exc:
            action()
        assert exc.value.code == "cart_closed"
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("store", "name", "email", "error"),
    [
        (LYON, "Chloé", "not-an-email", "invalid_customer"),
        (LYON, "", "chloe@example.com", "invalid_customer"),
        ("st-nope00", "Chloé", "chloe@example.com", "unknown_store"),
        (LYON, "Chloé", "chloe@example.com", "out_of_stock"),
    ],
)
def test_a_failed_checkout_leaves_the_cart_open_and_nothing_written(
    db, hub_data, store, name, email, error
):
    [sku] = _skus(db, n=1)
    cart_id = carts.create_cart(db)
    carts.add_item(db, cart_id, sku, 1 if error != "out_of_stock" else 20)
    db.execute("UPDATE stock_levels SET qty = 5 WHERE store_id = ? AND sku = ?", [LYON, sku])
    seq = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    with pytest.raises(OrderError) as exc:
        carts.checkout(
            db, cart_id, store, name, email, private_key=keys.current_private_key(hub_data)
        )
    assert exc.value.code == error
    assert carts.get_cart(db, cart_id)["status"] == "open"
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    assert db.execute("SELECT max(seq) FROM changes").fetchone()[0] == seq
    with pytest.raises(carts.CartError) as empty:
        carts.checkout(
            db,
            carts.create_cart(db),
            LYON,
            "Chloé",
            "chloe@example.com",
            private_key=keys.current_private_key(hub_data),
        )
    assert empty.value.code == "empty_cart"


def test_throwing_a_cart_away_revokes_it_for_every_store(db):
    cart_id = carts.create_cart(db)
    seq = carts.close_cart(db, cart_id, "revoked")
    assert carts.get_cart(db, cart_id)["status"] == "revoked"
    row = db.execute("SELECT kind, key, store_id FROM changes WHERE seq = ?", [seq]).fetchone()
    assert row == ("revocation", cart_id, None)


def test_import_takes_todays_prices_and_says_what_changed_or_was_dropped(db):
    a, b, _c = _skus(db)
    price_a, price_b = _base_price(db, a), _base_price(db, b)
    lines = [
        CartLine(a, 2, price_a),
        CartLine("M000000-XXX-00", 1, 999),
        CartLine(b, 1, price_b + 50),
    ]
    result = carts.import_lines(db, lines)
    assert result["dropped"] == ["M000000-XXX-00"]
    assert result["changed"] == [{"sku": b, "was_cents": price_b + 50, "now_cents": price_b}]
    cart = carts.get_cart(db, result["cart_id"])
    assert cart["source"] == "kiosk" and cart["status"] == "open"
    assert carts.cart_lines(db, cart["id"]) == [
        {"sku": a, "qty": 2, "price_cents": price_a},
        {"sku": b, "qty": 1, "price_cents": price_b},
    ]
    nothing = carts.import_lines(db, [CartLine("M000000-XXX-00", 1, 1)])
    assert nothing == {"cart_id": None, "dropped": ["M000000-XXX-00"], "changed": []}


def test_the_store_chooser_counts_the_lines_each_store_can_serve(db):
    a, b, _c = _skus(db)
    db.execute("UPDATE stock_levels SET qty = 0 WHERE store_id = ? AND sku = ?", [PARIS, a])
    db.execute(
        "UPDATE stock_levels SET qty = 9 WHERE sku IN (?, ?) AND store_id != ?", [a, b, PARIS]
    )
    db.execute("UPDATE stock_levels SET qty = 9 WHERE store_id = ? AND sku = ?", [PARIS, b])
    page = shop_stores.chooser(db, {a: 2, b: 1}, [], 1, size=1000)
    counts = {s["id"]: s["lines_ok"] for s in page.items}
    assert counts[LYON] == 2 and counts[BORDEAUX] == 2 and counts[PARIS] == 1
    # The stores that can serve the whole cart come first.
    assert {s["id"] for s in page.items[: page.extra["complete"]]} >= {LYON, BORDEAUX}
    assert PARIS not in {s["id"] for s in page.items[: page.extra["complete"]]}
    assert carts.store_levels(db, PARIS, [a, b, "NOPE"]) == {a: 0, b: 9, "NOPE": 0}


def test_the_rate_log_allows_the_limit_in_any_window_and_says_when_to_retry(db):
    t0 = 1_000_000.0
    assert all(ratelimit.hit(db, "cart_lookup:x", 30, now=t0 + i)[0] for i in range(30))
    assert ratelimit.hit(db, "cart_lookup:x", 30, now=t0 + 30) == (False, 30)
    assert ratelimit.hit(db, "cart_lookup:y", 30, now=t0 + 30) == (True, 0)  # per bucket
    assert ratelimit.hit(db, "cart_lookup:x", 30, now=t0 + 59.5) == (False, 1)
    assert ratelimit.hit(db, "cart_lookup:x", 30, now=t0 + 60.5) == (True, 0)  # t0 left
    assert ratelimit.hit(db, "cart_lookup:x", 30, now=t0 + 60.6) == (False, 1)


# --------------------------------------------------------------------------- HTTP API


def _cart_with(data: Path, n: int) -> tuple[str, list[str]]:
    conn = open_hub_db(data)
    try:
        skus = [
            r[0]
            for r in conn.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 1 ORDER BY sku LIMIT ?",
                [PARIS, n],
            )
        ]
        cart_id = carts.create_cart(conn)
        for sku in skus:
            carts.add_item(conn, cart_id, sku)
        return cart_id, skus
    finally:
        conn.close()


def test_signed_cart_lookup_open_unknown_revoked_unsigned(hub_server, hub_client):
    cart_id, skus = _cart_with(hub_server.data, 30)
    resp = hub_client.request("GET", f"/api/v1/carts/{cart_id}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    validate(body, "CartLookup")
    assert body["cart"]["id"] == cart_id and body["cart"]["status"] == "open"
    assert [ln["sku"] for ln in body["cart"]["lines"]] == skus
    for bad in ("c-" + "A" * 20, "c-short", "nothing", "c-" + "a" * 20, "c-%C3%A9" + "A" * 19):
        resp = hub_client.request("GET", f"/api/v1/carts/{bad}")
        assert resp.status_code == 404, bad
        validate(resp.json(), "Error")
        assert resp.json()["error"] == "unknown_cart"
    unsigned = hub_client.session.get(f"{hub_server.url}/api/v1/carts/{cart_id}", timeout=10)
    assert unsigned.status_code == 401
    validate(unsigned.json(), "AuthError")
    # Checked out: every store is told (revocation change) and the look-up says gone.
    conn = open_hub_db(hub_server.data)
    try:
        carts.checkout(
            conn,
            cart_id,
            PARIS,
            "Léa",
            "lea@example.com",
            private_key=keys.current_private_key(hub_server.data),
        )
    finally:
        conn.close()
    resp = hub_client.request("GET", f"/api/v1/carts/{cart_id}")
    assert resp.status_code == 410 and resp.json()["error"] == "cart_revoked"
    validate(resp.json(), "Error")
    seq = (
        hub_db(hub_server.data)
        .execute("SELECT seq FROM changes WHERE kind = 'revocation' AND key = ?", [cart_id])
        .fetchone()[0]
    )
    page = hub_client.changes(since=seq - 1, limit=1).json()  # LYON hears of PARIS's order
    validate(page, "ChangesPage")
    assert page["changes"][0]["kind"] == "revocation"
    assert page["changes"][0]["data"]["id"] == cart_id


def test_cart_lookups_are_rate_limited_per_store(hub_server, hub_client):
    cart_id, _skus = _cart_with(hub_server.data, 2)
    statuses = [
        hub_client.request("GET", f"/api/v1/carts/{cart_id}").status_code for _ in range(30)
    ]
    assert statuses == [200] * 30
    # Look-ups of unknown carts count too: probing ids is what the limit stops.
    resp = hub_client.request("GET", "/api/v1/carts/c-" + "B" * 20)
    assert resp.status_code == 429
    validate(resp.json(), "Error")
    assert resp.json()["error"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Another store has its own budget.
    paris = HubClient(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    assert paris.request("GET", f"/api/v1/carts/{cart_id}").status_code == 200


# --------------------------------------------------------------------------- order.request


def _tx(payload: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "order.request",
        "occurred_at": NOW_ISO,
        "payload": payload,
    }


def _request(skus: list[str], fulfilment: str = "pickup", **extra) -> dict:
    payload = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": fulfilment,
        "customer_name": "Inès Moreau",
        "customer_email": "ines.moreau@example.com",
        "lines": [{"sku": s, "qty": 1 + i} for i, s in enumerate(skus)],
    }
    if fulfilment == "home":
        payload["address"] = {"line1": "12 rue de la Paix", "postcode": "69002", "city": "Lyon"}
    return {**payload, **extra}


def _post(client, *items):
    resp = client.post_transactions(list(items))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    validate(body, "TransactionResults")
    return body["results"]


def test_pickup_request_becomes_an_order_for_the_sending_store_once(hub_server, hub_client):
    conn = hub_db(hub_server.data)
    skus = [
        r[0]
        for r in conn.execute(
            "SELECT sku FROM stock_levels WHERE store_id = ? AND qty = 0 ORDER BY sku LIMIT 2",
            [LYON],
        )
    ]
    levels = [_level(conn, LYON, s) for s in skus]
    seq = conn.execute("SELECT max(seq) FROM changes").fetchone()[0]
    payload = _request(skus)
    first = _tx(payload)
    [accepted] = _post(hub_client, first)
    assert accepted["status"] == "accepted", accepted
    result = accepted["result"]
    assert set(result) == {"order_id", "number"}
    # Retried under the same transaction id, and sent again under a new one: one order.
    [dup] = _post(hub_client, first)
    assert dup["status"] == "duplicate" and dup["result"] == result
    [again] = _post(hub_client, _tx(payload))
    assert again["status"] == "accepted" and again["result"] == result
    order = conn.execute(
        "SELECT store_id, status, customer_email FROM orders WHERE id = ?", [result["order_id"]]
    ).fetchone()
    assert order == (LYON, "placed", "")  # the e-mail is kept sealed (order_people)
    ring = order_people.ring_of(conn)
    assert order_people.person_of(conn, ring, result["order_id"]).email == "ines.moreau@example.com"
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    # Shipped to the store: nothing was reserved out of its (empty) stock.
    assert [_level(conn, LYON, s) for s in skus] == levels
    kinds = [
        r[0]
        for r in conn.execute(
            "SELECT kind FROM notifications WHERE order_id = ?", [result["order_id"]]
        )
    ]
    assert kinds == ["placed"]
    conn.close()
    # The order reaches the sending store's feed, and no other store's.
    page = hub_client.changes(since=seq).json()
    validate(page, "ChangesPage")
    mine = [c for c in page["changes"] if c["kind"] == "order"]
    assert [c["key"] for c in mine] == [result["order_id"]]
    assert [(ln["sku"], ln["qty"]) for ln in mine[0]["data"]["lines"]] == [
        (skus[0], 1),
        (skus[1], 2),
    ]
    paris = HubClient(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    assert not [c for c in paris.changes(since=seq).json()["changes"] if c["kind"] == "order"]
    # The same request_id from another store, or with another body, is a conflict.
    [other_store] = _post(paris, _tx(payload))
    assert other_store["status"] == "rejected" and other_store["reason"] == "conflict"
    [other_body] = _post(hub_client, _tx({**payload, "customer_name": "Someone Else"}))
    assert other_body["status"] == "rejected" and other_body["reason"] == "conflict"


def test_home_request_records_a_delivery_and_a_message(hub_server, hub_client):
    conn = hub_db(hub_server.data)
    skus = _skus(conn, n=2)
    payload = _request(skus, "home")
    [accepted] = _post(hub_client, _tx(payload))
    assert accepted["status"] == "accepted", accepted
    result = accepted["result"]
    row = conn.execute(
        "SELECT number, origin_store_id, address_postcode, lines, total_cents, status "
        "FROM delivery_orders WHERE id = ?",
        [result["delivery_id"]],
    ).fetchone()
    assert row[0] == result["number"] and row[1:3] == (LYON, "") and row[5] == "requested"
    # The name, e-mail and address are kept sealed (order_people), and open with the key.
    ring = order_people.ring_of(conn)
    sealed = hdb.one(conn, "SELECT * FROM delivery_orders WHERE id = ?", [result["delivery_id"]])
    person = order_people.delivery_person(ring, sealed)
    assert person["customer_email"] == "ines.moreau@example.com"
    assert person["address"]["postcode"] == "69002"
    lines = json.loads(row[3])
    assert [(ln["sku"], ln["qty"]) for ln in lines] == [(skus[0], 1), (skus[1], 2)]
    assert row[4] == _base_price(conn, skus[0]) + 2 * _base_price(conn, skus[1])
    [mail_id] = order_people.ids_by_email(
        conn, ring, "notifications", "ines.moreau@example.com", "order_id IS NULL"
    )
    mail = order_people.mail_of(
        ring, hdb.one(conn, "SELECT * FROM notifications WHERE id = ?", [mail_id])
    )
    subject, body = mail["subject"], mail["body"]
    assert result["number"] in subject and "69002 Lyon" in body
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    [again] = _post(hub_client, _tx(payload))
    assert again["result"] == result
    assert conn.execute("SELECT count(*) FROM delivery_orders").fetchone()[0] == 1
    conn.close()


def test_bad_order_requests_are_rejected_and_nothing_is_half_applied(hub_server, hub_client):
    conn = hub_db(hub_server.data)
    skus = _skus(conn, n=2)
    good = _request(skus)
    home = _request(skus, "home")
    cases = {
        "unknown_sku": _request([skus[0], "M000000-XXX-00"]),
        "invalid_payload": [
            {**good, "request_id": "not-a-uuid"},
            {**good, "fulfilment": "drone"},
            {**good, "customer_email": "nobody"},
            {**good, "customer_email": "a@b@example.com"},
            {**good, "customer_name": ""},
            {**good, "customer_name": "x" * 81},
            {**good, "lines": []},
            {**good, "lines": [{"sku": skus[0], "qty": 0}]},
            {**good, "lines": [{"sku": skus[0], "qty": 21}]},
            {**good, "lines": [{"sku": skus[0], "qty": True}]},
            {**good, "lines": [{"sku": skus[0], "qty": 1}, {"sku": skus[0], "qty": 1}]},
            {**good, "lines": [{"sku": skus[0], "qty": 1}] * 51},
            {**good, "lines": "everything"},
            {**good, "address": {"line1": "1 rue", "postcode": "69001", "city": "Lyon"}},
            {**home, "address": None},
            {**home, "address": {"line1": "", "postcode": "69001", "city": "Lyon"}},
            {**home, "address": {"line1": "1 rue", "postcode": "6", "city": "Lyon"}},
            {**home, "address": {"line1": "1 rue", "postcode": "69001"}},
            {**good, "cart_id": "c-../../etc"},
            {**good, "cart_id": 42},
        ],
    }
    items = [_tx(cases["unknown_sku"])] + [_tx(p) for p in cases["invalid_payload"]]
    results = _post(hub_client, *items)
    assert results[0]["status"] == "rejected" and results[0]["reason"] == "unknown_sku"
    for payload, res in zip(cases["invalid_payload"], results[1:], strict=True):
        assert res["status"] == "rejected" and res["reason"] == "invalid_payload", (payload, res)
    for table in ("orders", "delivery_orders", "order_requests", "notifications"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table  # noqa: S608
    # A good one in the same batch still goes through.
    [ok] = _post(hub_client, _tx(good))
    assert ok["status"] == "accepted"
    conn.close()
