"""Store credit that can really be spent (issue 14: loyalty points "spent as store
credit"; a return refunded as store credit).

Every ``AV-`` code is in ``store_credits`` (app/hub/domain/store_credit.py): points
converted in « Mon compte » and a return's code are spent at the web shop's checkout,
in the order's own transaction (two tabs with one code: one order gets it), the rest of
a code worth more than the order stays on it; refused codes say why, never whose;
typed codes are rate-limited. The store's order change carries the amount (no code)
and the counter's hand-over page says what is left to pay. Hub parts run on the
backend of the pass (``make test`` runs SQLite then PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import uuid
from pathlib import Path

import pytest

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import CHANGE_ORDER
from app.hub import database as hdb
from app.hub.domain import customer_export, customers, erasure, keys, loyalty, store_credit
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.hub.protocol import transactions
from app.store.migrations import migrate
from app.store.sync.pull import pull_once

from .conftest import screenshot, staff_login
from .hub_fixtures import validate
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_database, hub_db, inprocess_client

NBSP = "\u00a0"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODE = re.compile(r"AV-[0-9A-Z]{4}-[0-9A-Z]{4}")


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _customer(db, hub_data: Path, first: str = "Chloé") -> str:
    email = f"{secrets.token_hex(4)}.client@example.com"
    row, _ = customers.find_or_create(db, KeyRing.open(hub_data), email, first, "Martin")
    return row["id"]


def _session(db, customer_id: str) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now_iso()
    with hdb.write(db):
        hdb.insert(
            db,
            "customer_sessions",
            {
                "id": hashlib.sha256(token.encode()).hexdigest(),
                "customer_id": customer_id,
                "created_at": now,
                "last_seen_at": now,
            },
        )
    return token


def _client(hub_data: Path, hub=None, customer_id: str | None = None):
    """A browser on the web shop (French), signed in as the customer when one is given."""
    from app.hub.app import create_hub_app

    app = create_hub_app({"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data)})
    client = app.test_client()
    with client.session_transaction() as s:
        s["lang"] = "fr"
        if customer_id is not None:
            s["customer"] = _session(hub, customer_id)
    return client


def _csrf(client) -> str:
    found = _CSRF.search(client.get("/shop/").get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def _sku(db, n: int = 0) -> str:
    rows = hdb.rows(
        db,
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 5 ORDER BY sku LIMIT 3",
        [LYON],
    )
    return rows[n]["sku"]


def _fill_cart(client, sku: str, qty: int = 1) -> str:
    """Add to the cart; return the checkout page for Lyon (its HTML)."""
    r = client.post(
        "/shop/panier/ajouter", data={"sku": sku, "qty": str(qty), "csrf_token": _csrf(client)}
    )
    assert r.status_code in (200, 302, 303), r.status_code
    page = client.get(f"/shop/commande?magasin={LYON}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _total(html: str) -> str:
    found = re.search(r'name="total" value="(\d+)"', html)
    assert found, "no total on the checkout page"
    return found.group(1)


def _place(client, html: str, *, ticked=(), typed: str = "", **extra):
    data = {
        "csrf_token": _csrf(client),
        "magasin": LYON,
        "name": "Chloé Martin",
        "email": "chloe@example.com",
        "total": _total(html),
        "credit": list(ticked),
        "credit_code": typed,
        **extra,
    }
    return client.post("/shop/commande", data=data)


def _order_by_number(db, text: str) -> dict:
    number = re.search(r"CC-\d{8}", text).group(0)
    return hdb.one(db, "SELECT * FROM orders WHERE number = ?", [number])


def _credit(db, code: str) -> dict:
    return hdb.one(db, "SELECT * FROM store_credits WHERE code = ?", [code])


def _points_code(db, customer_id: str, points: int) -> str:
    with hdb.write(db):
        hdb.execute(
            db, "UPDATE customers SET loyalty_points = ? WHERE id = ?", [points, customer_id]
        )
    return loyalty.convert(db, customer_id).credit_code


def _last_order_change(db, order_id: str) -> dict:
    row = hdb.one(
        db,
        "SELECT data FROM changes WHERE kind = ? AND key = ? ORDER BY seq DESC LIMIT 1",
        [CHANGE_ORDER, order_id],
    )
    return json.loads(row["data"])


# --- points -> code -> spent online ----------------------------------------------------


def test_points_become_a_code_spent_online_the_rest_kept_then_used_up(hub, hub_data):
    customer = _customer(hub, hub_data)
    code = _points_code(hub, customer, 10_000)  # 100 blocks: 500,00 €
    row = _credit(hub, code)
    assert (row["cents"], row["left_cents"], row["customer_id"], row["source"]) == (
        50_000,
        50_000,
        customer,
        "points",
    )
    assert row["spent_at"] is None
    shop = _client(hub_data, hub, customer)
    html = _fill_cart(shop, _sku(hub))
    # The signed-in customer sees their unspent credit, unticked.
    assert code in html and "Vous avez 1 avoir" in html and "500,00" in html
    box = re.search(rf'<input[^>]*value="{code}"[^>]*>', html).group(0)
    assert "checked" not in box
    placed = _place(shop, html, ticked=[code])
    assert placed.status_code == 302, placed.get_data(as_text=True)[:2000]
    order = _order_by_number(hub, placed.headers["Location"])
    due = store_credit.order_due(hub, order["id"])
    assert 0 < due < 50_000
    # The order records what it used; the rest stays on the same code.
    assert order["credit_cents"] == due
    assert json.loads(order["credit_codes"]) == [{"code": code, "cents": due}]
    row = _credit(hub, code)
    assert row["left_cents"] == 50_000 - due and row["spent_at"] is None
    # The store's order change carries the amount, never the code.
    change = _last_order_change(hub, order["id"])
    assert change["credit_cents"] == due and code not in json.dumps(change)
    account = shop.get("/shop/compte").get_data(as_text=True)
    assert "Reste " in account and code in account

    # A small code, worth less than an order: used up, then refused with a clear message.
    small = _points_code(hub, customer, 100)  # 5,00 €
    html = _fill_cart(shop, _sku(hub, 1))
    placed = _place(shop, html, ticked=[], typed=small.lower().replace("-", " "))
    assert placed.status_code == 302
    second = _order_by_number(hub, placed.headers["Location"])
    assert second["credit_cents"] == 500
    assert _credit(hub, small)["left_cents"] == 0 and _credit(hub, small)["spent_at"]
    account = shop.get("/shop/compte").get_data(as_text=True)
    assert "Utilisé le " in account
    html = _fill_cart(shop, _sku(hub, 2))
    assert small not in html  # no longer offered
    before = hdb.scalar(hub, "SELECT count(*) FROM orders")
    again = _place(shop, html, typed=small)
    text = again.get_data(as_text=True)
    assert again.status_code == 409
    assert f"L’avoir {small} a déjà été utilisé{NBSP}: il n’en reste rien." in text
    assert hdb.scalar(hub, "SELECT count(*) FROM orders") == before


def test_two_tabs_with_one_code_make_one_order_with_it(hub, hub_data):
    customer = _customer(hub, hub_data)
    code = _points_code(hub, customer, 100)  # 5,00 €: less than either order
    tabs = [_client(hub_data, hub, customer) for _ in range(2)]
    pages = [_fill_cart(tab, _sku(hub, i)) for i, tab in enumerate(tabs)]
    assert all(code in page for page in pages)
    forms = [
        {
            "csrf_token": _csrf(tab),
            "magasin": LYON,
            "name": "Chloé Martin",
            "email": "chloe@example.com",
            "total": _total(page),
            "credit": [code],
        }
        for tab, page in zip(tabs, pages, strict=True)
    ]
    start = threading.Barrier(2)
    answers: list = [None, None]

    def submit(i: int) -> None:
        start.wait()
        answers[i] = tabs[i].post("/shop/commande", data=forms[i])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [302, 409]
    lost = next(a for a in answers if a.status_code == 409).get_data(as_text=True)
    assert "a déjà été utilisé" in lost
    used = hdb.rows(hub, "SELECT id, credit_cents FROM orders WHERE credit_cents > 0")
    assert [r["credit_cents"] for r in used] == [500]
    assert _credit(hub, code)["left_cents"] == 0


def test_refused_codes_say_why_never_whose_and_guessing_is_limited(hub, hub_data):
    owner = _customer(hub, hub_data, first="Bérénice")
    theirs = _points_code(hub, owner, 100)
    guest = _client(hub_data)
    html = _fill_cart(guest, _sku(hub))
    assert 'id="credit-code"' in html and "Vous avez" not in html
    before = hdb.scalar(hub, "SELECT count(*) FROM orders")

    bad = _place(guest, html, typed="bonjour")
    assert bad.status_code == 400
    assert f"Un code d’avoir ressemble à AV-7KQ2-M9XD{NBSP}: vérifiez-le." in bad.get_data(
        as_text=True
    )
    unknown = "AV-ZZZZ-ZZZZ" if not store_credit.code_taken(hub, "AV-ZZZZ-ZZZZ") else "AV-YYYY-YYYY"
    r = _place(guest, html, typed=unknown)
    assert r.status_code == 400
    assert f"Aucun avoir ne porte le code {unknown}{NBSP}: vérifiez-le." in r.get_data(as_text=True)
    r = _place(guest, html, typed=theirs)
    text = r.get_data(as_text=True)
    assert r.status_code == 400
    assert f"L’avoir {theirs} appartient à un autre compte client{NBSP}:" in text
    assert "Bérénice" not in text and "Martin" not in text.split("credit-error")[1][:400]
    # A guest cannot tick someone's code either (ticked codes are only a customer's own).
    r = _place(guest, html, ticked=[theirs])
    assert r.status_code == 302  # placed without it: ticked boxes are ignored for a guest
    assert _order_by_number(hub, r.headers["Location"])["credit_cents"] == 0
    assert _credit(hub, theirs)["left_cents"] == 500
    assert hdb.scalar(hub, "SELECT count(*) FROM orders") == before + 1

    # Guessing: typed codes are limited per client (3 typed above).
    html = _fill_cart(guest, _sku(hub, 1))
    statuses = [_place(guest, html, typed=f"AV-{i:04d}-QQQQ").status_code for i in range(8)]
    assert statuses[:7] == [400] * 7 and statuses[7] == 429
    limited = _place(guest, html, typed=theirs)
    assert limited.status_code == 429
    assert "Trop de codes d’avoir essayés" in limited.get_data(as_text=True)


# --- a return's code, the store and the counter --------------------------------------


def _tx(tx_type: str, payload: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": tx_type,
        "occurred_at": clock.now_iso(),
        "payload": payload,
    }


def _apply(hub, hub_data, *items):
    results = transactions.apply_batch(hub, LYON, list(items), data_dir=hub_data)
    for res in results:
        assert res["status"] == "accepted", res
    return results


def _collect(hub, hub_data, order_id: str) -> None:
    lines = hdb.rows(hub, "SELECT line, qty FROM order_lines WHERE order_id = ?", [order_id])
    _apply(
        hub,
        hub_data,
        _tx(
            "order.ready",
            {
                "order_id": order_id,
                "lines": [{"line": r["line"], "qty_ready": r["qty"]} for r in lines],
                "shelf_slot": "A-01",
                "staff": "sf-1",
            },
        ),
    )
    handover = {
        "handover_id": str(uuid.uuid4()),
        "order_id": order_id,
        "lines": [{"line": r["line"], "qty": r["qty"]} for r in lines],
        "collector": "customer",
        "method": "code",
        "staff": "sf-1",
    }
    _apply(hub, hub_data, _tx("order.handover", handover))


def test_a_return_code_is_spendable_and_the_counter_says_what_is_left_to_pay(
    hub, hub_data, synced_store, browser
):
    customer = _customer(hub, hub_data)
    sku = _sku(hub)
    first = create_order(
        hub,
        LYON,
        "Chloé Martin",
        "c@example.com",
        [{"sku": sku, "qty": 1}],
        private_key=keys.current_private_key(hub_data),
    )["order"]
    customers.claim_order(hub, customer, first["id"])
    _collect(hub, hub_data, first["id"])
    [res] = _apply(
        hub,
        hub_data,
        _tx(
            "order.return",
            {
                "return_id": str(uuid.uuid4()),
                "order_id": first["id"],
                "lines": [{"line": 1, "sku": sku, "qty": 1, "condition": "resellable"}],
                "reason": "trop petit",
                "refund": "store_credit",
                "staff": "sf-1",
            },
        ),
    )
    code = res["result"]["credit_code"]
    row = _credit(hub, code)
    paid = store_credit.order_due(hub, first["id"])
    assert (row["source"], row["customer_id"], row["cents"], row["left_cents"]) == (
        "return",
        customer,
        paid,
        paid,
    )

    # Spent online on a bigger order (two units of another item): the rest to pay.
    shop = _client(hub_data, hub, customer)
    html = _fill_cart(shop, _sku(hub, 1), qty=2)
    assert code in html
    placed = _place(shop, html, ticked=[code])
    assert placed.status_code == 302
    order = _order_by_number(hub, placed.headers["Location"])
    due = store_credit.order_due(hub, order["id"])
    applied = min(paid, due)
    assert order["credit_cents"] == applied

    # The store learns the amount (the feed as the API sends it: docs/openapi.yaml).
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        migrate(store)
        client, _transport = inprocess_client(hub_data)
        pull_once(store, client, own_store_id=LYON)
        got = store.execute(
            "SELECT credit_cents, total_cents FROM orders WHERE id = ?", [order["id"]]
        ).fetchone()
        assert tuple(got) == (applied, due)
        first_seq = hdb.scalar(hub, "SELECT min(seq) FROM changes WHERE key = ?", [order["id"]])
        page = client.get_changes(str(first_seq - 1), limit=2000)
        validate(page, "ChangesPage")
        sent = [c["data"] for c in page["changes"] if c["key"] == order["id"]]
        assert sent[-1]["credit_cents"] == applied and code not in json.dumps(sent)
    finally:
        store.close()

    # The counter's hand-over page.
    from app.store.app import create_app

    counter = create_app({"DATA_DIR": str(synced_store)}).test_client()
    staff_login(counter, synced_store)
    r = counter.get(f"/staff/orders/{order['id']}/handover")
    text = r.get_data(as_text=True)
    assert r.status_code == 200
    euros = lambda c: f"{c // 100},{c % 100:02d}{NBSP}€"  # noqa: E731
    assert (
        f"Déjà réglé par avoir{NBSP}: {euros(applied)} — reste à payer{NBSP}: "
        f"{euros(due - applied)}" in text.replace("\u202f", NBSP)
    )
    assert code not in text


def test_erasure_detaches_codes_and_export_lists_them(hub, hub_data):
    customer = _customer(hub, hub_data)
    code = _points_code(hub, customer, 200)
    ring = KeyRing.open(hub_data)
    exported = customer_export.export(hub, ring, customer)
    assert [r["code"] for r in exported["records"]["store_credits"]] == [code]
    erasure.erase_customer(hub, ring, customer)
    row = _credit(hub, code)
    assert row["customer_id"] is None and row["left_cents"] == 1000  # still spendable
    guest = _client(hub_data)
    html = _fill_cart(guest, _sku(hub))
    placed = _place(guest, html, typed=code)
    assert placed.status_code == 302
    assert _order_by_number(hub, placed.headers["Location"])["credit_cents"] > 0


# --- the screens ------------------------------------------------------------------------


def test_screens_checkout_on_a_phone_account_and_the_counter(
    hub_server, hub_data, synced_store, server_factory, browser
):
    from .axe_helpers import assert_axe_clean
    from .conftest import staff_login_page
    from .sync_fixtures import store_env
    from .test_customer_accounts import Customer, _last_code

    email = "ines.credit@example.com"
    shopper = Customer(hub_server.url)
    shopper.ask_code(email)
    shopper.give_code(_last_code(hub_data))
    db = hub_db(hub_data)
    try:
        customer = customers.find_by_email(db, KeyRing.open(hub_data), email)["id"]
        big = _points_code(db, customer, 10_000)
        small = _points_code(db, customer, 100)
        sku = _sku(db)
    finally:
        db.close()
    shopper.post("/shop/panier/ajouter", {"sku": sku, "qty": "1"})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    phone.add_cookies(
        [{"name": c.name, "value": c.value, "url": hub_server.url} for c in shopper.http.cookies]
    )
    page = phone.new_page()
    page.goto(f"{hub_server.url}/shop/commande?magasin={LYON}")
    page.locator("#store-credit").scroll_into_view_if_needed()
    assert page.locator(f"input[name=credit][value='{big}']").count() == 1
    screenshot(page, "store-credit-checkout-390x844")
    assert_axe_clean(page, "the checkout with store credit")
    page.fill("#name", "Inès Credit")
    page.fill("#email", email)
    page.check(f"input[name=credit][value='{small}']")
    page.click("#place-order")
    page.wait_for_url(re.compile(r"/orders/CC-\d{8}"))
    number = re.search(r"CC-\d{8}", page.url).group(0)
    page.goto(f"{hub_server.url}/shop/compte#store-credit")
    expect_text = page.locator("#store-credit").inner_text()
    assert "Utilisé le " in expect_text and small in expect_text and big in expect_text
    page.locator("#store-credit").scroll_into_view_if_needed()
    screenshot(page, "store-credit-account-390x844")

    # The counter, on the tablet: what is already paid, what is left to pay.
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        migrate(store)
        client, _transport = inprocess_client(hub_data)
        pull_once(store, client, own_store_id=LYON)
        order_id = store.execute("SELECT id FROM orders WHERE number = ?", [number]).fetchone()[0]
    finally:
        store.close()
    server = server_factory(synced_store, store_env(hub_server.url, hub_data))
    tablet = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    counter = tablet.new_page()
    staff_login_page(counter, server.url, synced_store)
    counter.goto(f"{server.url}/staff/orders/{order_id}/handover")
    paid = counter.locator("#credit-paid").inner_text()
    assert paid.startswith(f"Déjà réglé par avoir{NBSP}: 5,00") and "reste à payer" in paid
    screenshot(counter, "store-credit-handover-1280x800")
    assert_axe_clean(counter, "the hand-over page with store credit")


def test_m018_back_fills_every_code_made_before():
    from sqlite_utils import Database

    from app.hub.migrations import hub_migrations

    db = Database(memory=True)
    hub_migrations.apply(db, stop_before="m018_store_credit")
    at = "2026-03-01T10:00:00Z"
    db["stores"].insert({"id": LYON, "name": "Lyon", "secret": "x", "created_at": at})
    db["categories"].insert({"id": 1, "slug": "run", "name_fr": "Course", "name_en": "Run"})
    db["products"].insert(
        {
            "pk": 1,
            "ref": "P1",
            "category_id": 1,
            "name_fr": "A",
            "name_en": "A",
            "price_cents": 2000,
        }
    )
    db["variants"].insert(
        {
            "sku": "S1",
            "product_pk": 1,
            "ean": "0000000000001",
            "size": "M",
            "colour_code": "B",
            "colour_fr": "bleu",
            "colour_en": "blue",
            "colour_hex": "#00f",
            "price_cents": 1500,  # a markdown on this variant
        }
    )
    db["orders"].insert(
        {
            "id": "o1",
            "number": "CC-00000001",
            "store_id": LYON,
            "status": "collected",
            "customer_name": "",
            "customer_email": "",
            "customer_id": "cus_1",
            "placed_at": at,
            "pickup_code": "",
            "pickup_code_hash": "",
            "pickup_token": "",
            "updated_at": at,
        }
    )
    # 3 units for 30,00 € less a 3,00 € promotion: 9,00 € a unit.
    db["order_lines"].insert(
        {
            "order_id": "o1",
            "line": 1,
            "sku": "S1",
            "qty": 3,
            "price_cents": 1000,
            "discount_cents": 300,
        }
    )
    db["loyalty_ledger"].insert(
        {
            "id": "loy_1",
            "customer_id": "cus_2",
            "kind": "converted",
            "points": -100,
            "credit_code": "AV-AAAA-AAAA",
            "credit_cents": 500,
            "at": at,
        }
    )
    for return_id, order_id, lines, code in (
        ("r1", "o1", [{"line": 1, "sku": "S1", "qty": 2}], "AV-BBBB-BBBB"),
        ("r2", None, [{"line": None, "sku": "S1", "qty": 1}], "AV-CCCC-CCCC"),
    ):
        db["returns"].insert(
            {
                "return_id": return_id,
                "order_id": order_id,
                "store_id": LYON,
                "lines": json.dumps(lines),
                "reason": "",
                "refund": "store_credit",
                "credit_code": code,
                "staff": "sf-1",
                "at": at,
            }
        )
    hub_migrations.apply(db)
    rows = {
        r["code"]: (r["cents"], r["left_cents"], r["customer_id"], r["source"], r["source_id"])
        for r in hdb.rows(db, "SELECT * FROM store_credits")
    }
    assert rows == {
        "AV-AAAA-AAAA": (500, 500, "cus_2", "points", "loy_1"),
        "AV-BBBB-BBBB": (1800, 1800, "cus_1", "return", "r1"),
        "AV-CCCC-CCCC": (1500, 1500, None, "return", "r2"),
    }
    assert hdb.one(db, "SELECT credit_cents, credit_codes FROM orders") == {
        "credit_cents": 0,
        "credit_codes": None,
    }
