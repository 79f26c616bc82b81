"""Personal suggestions computed at the hub and shipped to stores (issue 14, hub side).

With consent only: the web shop's product views, the payload (sizes, seen online,
suggested, targeted offers) computed from real orders of every channel and views, the
card change carrying it to the stores holding the customer's orders, sent again when
consent is given or withdrawn (online or at a kiosk), when an order is collected and by
the daily refresh (only where it changed). Head office's targeted offers: the console
form, its refusals (4xx, never 500), the segment at its month limit with a frozen clock.
Hub parts run on the backend of the pass (``make test`` runs SQLite then PostgreSQL).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import CHANGE_CUSTOMER_CARD
from app.hub import database as hdb
from app.hub.domain import (
    cards,
    consent,
    customer_export,
    customer_feed,
    customers,
    erasure,
    hq_users,
    keys,
    offers,
    personal,
    retention,
)
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.hub.protocol import transactions
from app.store.domain import personal as store_personal
from app.store.sync.pull import pull_once

from .axe_helpers import serious_violations as serious_axe_violations
from .conftest import screenshot
from .hub_fixtures import run_hub, validate
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, PARIS, hub_database, hub_db, inprocess_client

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NBSP = "\u00a0"


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _customer(db, hub_data: Path, first: str = "Chloé") -> str:
    email = f"{secrets.token_hex(4)}.chloe@example.com"
    row, _ = customers.find_or_create(db, KeyRing.open(hub_data), email, first, "Martin")
    return row["id"]


def _hub_app(hub_data: Path):
    from app.hub.app import create_hub_app

    return create_hub_app({"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data)})


def _shopper(hub_data: Path, hub, customer_id: str):
    """A browser signed in to the web shop as the customer (French)."""
    import hashlib

    token = secrets.token_urlsafe(32)
    now = clock.now_iso()
    with hdb.write(hub):
        hdb.insert(
            hub,
            "customer_sessions",
            {
                "id": hashlib.sha256(token.encode()).hexdigest(),
                "customer_id": customer_id,
                "created_at": now,
                "last_seen_at": now,
            },
        )
    client = _hub_app(hub_data).test_client()
    with client.session_transaction() as s:
        s["customer"] = token
        s["lang"] = "fr"
    return client


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _tx(tx_type: str, payload: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": tx_type,
        "occurred_at": clock.now_iso(),
        "payload": payload,
    }


def _apply(hub, hub_data, *items, store_id: str = LYON):
    results = transactions.apply_batch(hub, store_id, list(items), data_dir=hub_data)
    for res in results:
        assert res["status"] == "accepted", res
    return results


def _collect(hub, hub_data, order_id: str) -> None:
    """Ready then handed over in full at the store (order.ready, order.handover)."""
    lines = hdb.rows(hub, "SELECT line, qty FROM order_lines WHERE order_id = ?", [order_id])
    ready = [{"line": r["line"], "qty_ready": r["qty"]} for r in lines]
    _apply(
        hub,
        hub_data,
        _tx(
            "order.ready",
            {"order_id": order_id, "lines": ready, "shelf_slot": "A-01", "staff": "sf-1"},
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


def _order(hub, hub_data, skus: list[str], customer_id: str | None = None) -> str:
    """A web order at Lyon (a guest's, or joined to ``customer_id``); its id."""
    order_id = create_order(
        hub,
        LYON,
        "Invité Test",
        f"{secrets.token_hex(3)}@example.com",
        [{"sku": sku, "qty": 1} for sku in skus],
        private_key=keys.current_private_key(hub_data),
    )["order"]["id"]
    if customer_id:
        customers.claim_order(hub, customer_id, order_id)
    return order_id


def _catalog(hub) -> dict:
    """Products to play with, from the seeded catalogue, each with a SKU in stock at
    Lyon: ``a`` and ``c`` in one category with several sizes (``c`` in ``a``'s size),
    ``b``, ``d``, ``e``, ``f`` elsewhere."""
    rows = hdb.rows(
        hub,
        "SELECT p.pk, p.ref, p.category_id, c.slug, v.sku, v.size FROM products p "
        "JOIN categories c ON c.id = p.category_id JOIN variants v ON v.product_pk = p.pk "
        "JOIN stock_levels s ON s.sku = v.sku AND s.store_id = ? AND s.qty >= 5 "
        "WHERE (SELECT count(DISTINCT w.size) FROM variants w WHERE w.product_pk = p.pk) > 1 "
        "ORDER BY p.pk, v.sku",
        [LYON],
    )
    by_product: dict[int, list[dict]] = {}
    for r in rows:
        by_product.setdefault(r["pk"], []).append(r)
    by_category: dict[int, list[int]] = {}
    for pk, variants in by_product.items():
        by_category.setdefault(variants[0]["category_id"], []).append(pk)
    for cat, pks in by_category.items():
        for a in pks:
            for v in by_product[a]:
                others = [
                    pk
                    for pk in pks
                    if pk != a and any(w["size"] == v["size"] for w in by_product[pk])
                ]
                if others:
                    rest = [pk for pk in by_product if by_product[pk][0]["category_id"] != cat]
                    assert len(rest) >= 4
                    pick = {"a": v, "c": by_product[others[0]][0]}
                    for name, pk in zip("bdef", rest, strict=False):
                        pick[name] = by_product[pk][0]
                    return pick
    raise AssertionError("no category with two products sharing a size in stock at Lyon")


def _card_changes(hub, customer_id: str, after: int = 0) -> list[dict]:
    """The customer's card changes in the feed (after seq ``after``), oldest first."""
    return [
        {"seq": r["seq"], "store_id": r["store_id"], **json.loads(r["data"])}
        for r in hdb.rows(
            hub,
            "SELECT seq, store_id, data FROM changes WHERE kind = ? AND key = ? AND seq > ? "
            "ORDER BY seq",
            [CHANGE_CUSTOMER_CARD, customer_id, after],
        )
    ]


def _mark(hub) -> int:
    return int(hdb.scalar(hub, "SELECT coalesce(max(seq), 0) FROM changes"))


def _views(hub, customer_id: str | None = None) -> list[dict]:
    sql = "SELECT customer_id, product_pk, viewed_at FROM customer_product_views"
    if customer_id:
        return hdb.rows(hub, sql + " WHERE customer_id = ? ORDER BY viewed_at", [customer_id])
    return hdb.rows(hub, sql)


def _at(monkeypatch, when: datetime) -> None:
    monkeypatch.setenv("KIOSK_FAKE_NOW", clock.iso(when))


# --- the payload -----------------------------------------------------------------------


def test_payload_from_real_orders_of_every_channel_and_views(hub, hub_data, monkeypatch):
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    consent.set_consent(hub, customer, True, "web")
    card_id = cards.issue_card(hub, customer)
    # Other shoppers bought b with a twice, d with a once: "bought together".
    _order(hub, hub_data, [p["a"]["sku"], p["b"]["sku"]])
    _order(hub, hub_data, [p["a"]["sku"], p["b"]["sku"]])
    _order(hub, hub_data, [p["a"]["sku"], p["d"]["sku"]])
    assert personal.rebuild_pairs(hub) >= 4
    # The customer bought a (a web order, collected in store: the hand-over's hook sends
    # their card with the new payload to Lyon).
    mine = _order(hub, hub_data, [p["a"]["sku"]], customer)
    _collect(hub, hub_data, mine)
    sent = _card_changes(hub, customer)
    assert sent and sent[-1]["store_id"] == LYON and sent[-1]["card_id"] == card_id
    assert sent[-1]["personal"]["sizes"] == {p["a"]["slug"]: p["a"]["size"]}
    # A kiosk order (order.request) joined to the account: every channel counts.
    [res] = _apply(
        hub,
        hub_data,
        _tx(
            "order.request",
            {
                "request_id": str(uuid.uuid4()),
                "fulfilment": "pickup",
                "customer_name": "Chloé Martin",
                "customer_email": "c@example.com",
                "lines": [{"sku": p["e"]["sku"], "qty": 1}],
            },
        ),
    )
    customers.claim_order(hub, customer, res["result"]["order_id"])
    # Views in the web shop, signed in: f then c (c is the newest).
    shop = _shopper(hub_data, hub, customer)
    t0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    _at(monkeypatch, t0)
    assert shop.get(f"/shop/produit/{p['f']['ref']}").status_code == 200
    _at(monkeypatch, t0 + timedelta(minutes=5))
    assert shop.get(f"/shop/produit/{p['c']['ref']}").status_code == 200
    assert [v["product_pk"] for v in _views(hub, customer)] == [p["f"]["pk"], p["c"]["pk"]]

    # A handful of queries, whatever the history's size (a chain's daily refresh).
    asked: list[str] = []
    real_execute = hdb.execute

    def execute(db, sql, params=None):
        asked.append(sql)
        return real_execute(db, sql, params)

    monkeypatch.setattr(personal.hdb, "execute", execute)
    got = personal.payload(hub, customer)
    monkeypatch.undo()
    assert len(asked) <= 6, asked
    assert got is not None
    assert got["sizes"][p["a"]["slug"]] == p["a"]["size"]
    if p["e"]["slug"] != p["a"]["slug"]:  # the kiosk order's size is remembered too
        assert got["sizes"][p["e"]["slug"]] == p["e"]["size"]
    assert got["recent"] == [p["c"]["ref"], p["f"]["ref"]]
    # Bought together first, the most frequent first; then the same categories, in their
    # size; never what they already have.
    assert got["suggested"][:2] == [p["b"]["ref"], p["d"]["ref"]]
    assert p["a"]["ref"] not in got["suggested"] and p["e"]["ref"] not in got["suggested"]
    assert p["c"]["ref"] in got["suggested"]
    assert len(got["suggested"]) == len(set(got["suggested"])) <= personal.SUGGESTED_MAX
    for ref in got["suggested"][2:]:
        row = hdb.one(
            hub,
            "SELECT c.slug FROM products p JOIN categories c ON c.id = p.category_id "
            "WHERE p.ref = ?",
            [ref],
        )
        size = got["sizes"].get(row["slug"])
        assert row["slug"] in (p["a"]["slug"], p["e"]["slug"])
        if size:
            assert hdb.scalar(
                hub,
                "SELECT count(*) FROM variants v JOIN products p ON p.pk = v.product_pk "
                "WHERE p.ref = ? AND v.size = ?",
                [ref, size],
            )
    assert got["offers"] == []
    # What the store's side accepts as it is.
    assert store_personal.validate(got) == got


def test_views_are_bounded_and_pruned_by_retention(hub, hub_data):
    customer = _customer(hub, hub_data)
    consent.set_consent(hub, customer, True, "web")
    pks = [r["pk"] for r in hdb.rows(hub, "SELECT pk FROM products ORDER BY pk LIMIT 60")]
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    for n, pk in enumerate(pks):
        assert personal.record_view(hub, customer, pk, now=t0 + timedelta(minutes=n))
    kept = _views(hub, customer)
    assert len(kept) == personal.VIEWS_KEPT
    assert {v["product_pk"] for v in kept} == set(pks[-personal.VIEWS_KEPT :])
    # 90 days after the newest view, all but the newest go, then the newest too.
    newest = t0 + timedelta(minutes=len(pks) - 1)
    limit = newest + timedelta(days=personal.RECENT_DAYS)
    report = retention.run(hub, dry_run=True, now=limit)
    assert report["rules"]["views_deleted"]["count"] == personal.VIEWS_KEPT - 1
    retention.run(hub, now=limit)
    assert [v["product_pk"] for v in _views(hub, customer)] == [pks[-1]]
    assert personal.payload(hub, customer, now=limit)["recent"] == [
        hdb.scalar(hub, "SELECT ref FROM products WHERE pk = ?", [pks[-1]])
    ]
    retention.run(hub, now=limit + timedelta(seconds=1))
    assert _views(hub, customer) == []


def test_a_product_seen_online_reaches_the_stores_at_most_every_quarter_hour(
    hub, hub_data, monkeypatch
):
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    cards.issue_card(hub, customer)
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    t0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    _at(monkeypatch, t0)
    consent.set_consent(hub, customer, True, "web")
    assert customer_feed.personal_changed(hub, KeyRing.open(hub_data), customer) == 1
    mark = _mark(hub)
    shop = _shopper(hub_data, hub, customer)
    _at(monkeypatch, t0 + timedelta(minutes=14, seconds=59))
    assert shop.get(f"/shop/produit/{p['c']['ref']}").status_code == 200
    assert _card_changes(hub, customer, mark) == []  # sent a moment ago: later
    _at(monkeypatch, t0 + timedelta(minutes=15, seconds=1))
    assert shop.get(f"/shop/produit/{p['f']['ref']}").status_code == 200
    [sent] = _card_changes(hub, customer, mark)
    assert sent["store_id"] == LYON
    assert sent["personal"]["recent"] == [p["f"]["ref"], p["c"]["ref"]]


# --- without consent ---------------------------------------------------------------------


def test_no_consent_no_view_rows_personal_null_and_nothing_computed(hub, hub_data, monkeypatch):
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    card_id = cards.issue_card(hub, customer)
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    shop = _shopper(hub_data, hub, customer)
    assert shop.get(f"/shop/produit/{p['c']['ref']}").status_code == 200
    assert personal.record_view(hub, customer, p["c"]["pk"]) is False
    assert _views(hub) == []  # no row at all
    asked: list[str] = []
    real_rows = hdb.rows

    def rows(db, sql, params=None):
        asked.append(sql)
        return real_rows(db, sql, params)

    monkeypatch.setattr(personal.hdb, "rows", rows)
    monkeypatch.setattr(personal.offers, "live", lambda *a, **k: pytest.fail("offers read"))
    assert personal.payload(hub, customer) is None
    assert personal.payload(hub, None) is None
    # The consent check alone (none for nobody): no order, view or offer was read.
    assert asked == ["SELECT consent_personal FROM customers WHERE id = ?"]
    monkeypatch.undo()
    data = customer_feed.card_data(hub, KeyRing.open(hub_data), customer)
    assert data == {
        "customer_id": customer,
        "card_id": card_id,
        "first_name": "Chloé",
        "personal": None,
        "points": 0,  # their loyalty balance: not personal suggestions, always sent
    }
    # An anonymous visit records nothing either.
    anon = _hub_app(hub_data).test_client()
    assert anon.get(f"/shop/produit/{p['c']['ref']}").status_code == 200
    assert _views(hub) == []


def test_consent_given_then_withdrawn_online_and_at_a_kiosk_publishes_then_null(hub, hub_data):
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    card_id = cards.issue_card(hub, customer)
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    shop = _shopper(hub_data, hub, customer)
    token = _csrf(shop.get("/shop/compte").get_data(as_text=True))
    mark = _mark(hub)
    r = shop.post(
        "/shop/compte/suggestions",
        data={"csrf_token": token, "action": "give", "consent": "yes"},
    )
    assert r.status_code == 302
    sent = _card_changes(hub, customer, mark)
    assert [(c["store_id"], c["card_id"]) for c in sent] == [(LYON, card_id)]
    assert sent[0]["personal"]["sizes"] == {p["a"]["slug"]: p["a"]["size"]}
    shop.get(f"/shop/produit/{p['c']['ref']}")
    assert len(_views(hub, customer)) == 1
    # The view changed the payload: sent once (the daily refresh does it), then nothing.
    assert customer_feed.personal_changed(hub, KeyRing.open(hub_data), customer) == 1
    # The superseded payload left the feed: one change holds what Lyon must know.
    [now_held] = [c for c in _card_changes(hub, customer) if c["personal"] is not None]
    assert now_held["personal"]["recent"] == [p["c"]["ref"]] and now_held["seq"] > sent[0]["seq"]
    assert customer_feed.personal_changed(hub, KeyRing.open(hub_data), customer) == 0
    # Withdrawn online: null to Lyon, the views deleted, nothing computed any more.
    r = shop.post("/shop/compte/suggestions", data={"csrf_token": token, "action": "withdraw"})
    assert r.status_code == 302
    last = _card_changes(hub, customer)[-1]
    assert last["store_id"] == LYON and last["personal"] is None
    assert last["first_name"] == "Chloé" and last["card_id"] == card_id
    assert _views(hub, customer) == []
    assert hdb.rows(hub, "SELECT * FROM customer_personal WHERE customer_id = ?", [customer]) == []
    # Nothing personal stays in the feed either: no change of theirs holds a payload.
    assert [c["personal"] for c in _card_changes(hub, customer)] == [None]

    # Given again, then withdrawn at a kiosk in Paris (consent.revoked, card id only):
    # every store that held the payload is told null, Lyon included.
    r = shop.post(
        "/shop/compte/suggestions",
        data={"csrf_token": token, "action": "give", "consent": "yes"},
    )
    assert _card_changes(hub, customer)[-1]["personal"] is not None
    mark = _mark(hub)
    [res] = _apply(hub, hub_data, _tx("consent.revoked", {"card_id": card_id}), store_id=PARIS)
    assert res["result"] == {"applied": True, "changed": True}
    told = _card_changes(hub, customer, mark)
    assert [(c["store_id"], c["personal"]) for c in told] == [(LYON, None)]
    assert all(c["personal"] is None for c in _card_changes(hub, customer))
    # Withdrawn twice: nothing more.
    mark = _mark(hub)
    _apply(hub, hub_data, _tx("consent.revoked", {"card_id": card_id}), store_id=PARIS)
    assert _card_changes(hub, customer, mark) == []


def test_the_customers_export_holds_their_views_and_erasure_leaves_nothing_personal(hub, hub_data):
    p = _catalog(hub)
    ring = KeyRing.open(hub_data)
    customer = _customer(hub, hub_data)
    cards.issue_card(hub, customer)
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    consent.set_consent(hub, customer, True, "web")
    personal.record_view(hub, customer, p["c"]["pk"])
    assert customer_feed.personal_changed(hub, ring, customer) == 1
    held = customer_export.export(hub, ring, customer)
    text = json.dumps(held, ensure_ascii=False)
    assert "customer_product_views" in text and str(p["c"]["pk"]) in text
    assert erasure.erase_customer(hub, ring, customer) is not None
    for table in ("customer_product_views", "customer_personal"):
        assert hdb.rows(hub, f"SELECT * FROM {table} WHERE customer_id = ?", [customer]) == []  # noqa: S608
    assert _card_changes(hub, customer) == []  # the payloads sent went with the account


# --- targeted offers -------------------------------------------------------------------


def _offer(hub, slug: str, months: int = 6, starts: str = "2026-01-01", ends: str = "") -> str:
    form = {
        "title": "Textile running -15 %",
        "text": "Sur présentation de votre carte.",
        "category": slug,
        "months": str(months),
        "starts": starts,
        "ends": ends,
    }
    return offers.create(hub, offers.parse(hub, form, now=datetime(2026, 1, 1, tzinfo=UTC)))


def test_offer_segment_with_a_frozen_clock_at_the_month_limit(hub, hub_data, monkeypatch):
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    consent.set_consent(hub, customer, True, "web")
    order = _order(hub, hub_data, [p["a"]["sku"]], customer)
    now = datetime(2026, 8, 31, 12, 0, tzinfo=UTC)
    _at(monkeypatch, now)
    offer_id = _offer(hub, p["a"]["slug"], months=6)
    other = _offer(hub, p["b"]["slug"], months=6)  # a category they never bought in
    limit = offers.months_before(now, 6)
    assert limit == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)  # 31 August - 6 months
    [offer] = [o for o in offers.live(hub, now) if o["id"] == offer_id]

    def placed(at: datetime) -> None:
        with hdb.write(hub):
            hdb.execute(hub, "UPDATE orders SET placed_at = ? WHERE id = ?", [clock.iso(at), order])
        personal.remember_categories(hub, customer)  # as the daily refresh does

    placed(limit)  # exactly N months ago: in
    got = personal.payload(hub, customer, now=now)
    assert [o["id"] for o in got["offers"]] == [offer_id]
    assert got["offers"][0] == {
        "id": offer_id,
        "title": "Textile running -15 %",
        "text": "Sur présentation de votre carte.",
        "ends_at": None,
    }
    assert offers.reach(hub, offer, now) == 1
    assert other not in [o["id"] for o in got["offers"]]
    placed(limit - timedelta(seconds=1))  # one second earlier: out
    assert personal.payload(hub, customer, now=now)["offers"] == []
    assert offers.reach(hub, offer, now) == 0
    placed(limit)
    # The consent withdrawn: out of the reach count at once, and nothing computed.
    consent.set_consent(hub, customer, False, "web")
    assert offers.reach(hub, offer, now) == 0
    personal.remember_categories(hub, customer)
    assert (
        hdb.rows(hub, "SELECT * FROM customer_categories WHERE customer_id = ?", [customer]) == []
    )
    assert personal.payload(hub, customer, now=now) is None
    consent.set_consent(hub, customer, True, "web")
    # An offer that ended (its last day passed) or was withdrawn is not sent.
    ended = offers.create(
        hub,
        offers.parse(
            hub,
            {
                "title": "Fini",
                "text": "x",
                "category": p["a"]["slug"],
                "months": "6",
                "starts": "2026-08-01",
                "ends": "2026-08-31",
            },
            now=datetime(2026, 8, 1, tzinfo=UTC),
        ),
    )
    assert ended in [o["id"] for o in personal.payload(hub, customer, now=now)["offers"]]
    after = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)  # the end day is included, not the next
    assert ended not in [o["id"] for o in personal.payload(hub, customer, now=after)["offers"]]
    assert offers.end(hub, offer_id, now=now)
    assert personal.payload(hub, customer, now=now)["offers"] == [
        o for o in personal.payload(hub, customer, now=now)["offers"] if o["id"] == ended
    ]
    # Returned in full: not "bought" any more, out of the segment.
    with hdb.write(hub):
        hdb.execute(
            hub,
            "UPDATE order_lines SET qty_ready = qty, qty_collected = qty, qty_returned = qty "
            "WHERE order_id = ?",
            [order],
        )
        hdb.execute(hub, "UPDATE orders SET status = 'collected' WHERE id = ?", [order])
    assert personal.payload(hub, customer, now=now)["offers"] == []


def _hq(hub_data: Path, hub, role: str):
    """A console browser logged in with ``role``."""
    user = hq_users.add_user(
        hub, f"{role}.{secrets.token_hex(3)}@example.com", role.title(), role, "x" * 12
    )
    client = _hub_app(hub_data).test_client()
    with client.session_transaction() as s:
        s["hq_user"] = user["id"]
        s["hq_login_at"] = clock.utcnow().timestamp()
        s["hq_sid"] = hq_users.open_session(hub, user["id"])
    return client


def test_hq_offers_form_refusals_are_4xx_pages_and_creation_is_journaled(
    hub, hub_data, monkeypatch
):
    p = _catalog(hub)
    _at(monkeypatch, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    customer = _customer(hub, hub_data)
    consent.set_consent(hub, customer, True, "web")
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    unwilling = _customer(hub, hub_data, "Bruno")  # bought too, but no consent
    _order(hub, hub_data, [p["a"]["sku"]], unwilling)
    customer_feed.refresh(hub, KeyRing.open(hub_data))  # the daily job: segments known

    ops = _hq(hub_data, hub, "operations")
    assert ops.get("/hq/offres").status_code == 403
    marketing = _hq(hub_data, hub, "marketing")
    page = marketing.get("/hq/offres")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="no-offers"' in html
    assert 'href="/hq/offres" aria-current="page">Offres</a>' in html
    assert "style=" not in html and "<script>" not in html
    token = _csrf(html)
    form = {
        "title": "Textile running -15 %",
        "text": "Pour vos prochaines sorties.",
        "category": p["a"]["slug"],
        "months": "6",
        "starts": "2026-11-20",
        "ends": "2026-12-31",
    }
    assert ops.post("/hq/offres", data={**form, "csrf_token": token}).status_code in (400, 403)
    assert marketing.post("/hq/offres", data=form).status_code == 400  # no CSRF token
    for bad, field in (
        ({"title": "  "}, "Titre"),
        ({"title": "x" * 81}, "Titre"),
        ({"text": ""}, "Texte"),
        ({"text": "a\x00b"}, "Texte"),
        ({"category": "nope"}, "Catégorie"),
        ({"category": ""}, "Catégorie"),
        ({"months": "0"}, "Période"),
        ({"months": "37"}, "Période"),
        ({"months": "six"}, "Période"),
        ({"months": "1e3"}, "Période"),
        ({"months": "²"}, "Période"),
        ({"months": "٣"}, "Période"),
        ({"starts": "２０２６-11-20"}, "Début"),
        ({"starts": ""}, "Début"),
        ({"starts": "2026-13-45"}, "Début"),
        ({"starts": "20/11/2026"}, "Début"),
        ({"starts": "9999-01-01"}, "Début"),
        ({"ends": "2026-11-19"}, "Fin"),
        ({"ends": "2026-11-01", "starts": "2026-10-01"}, "Fin"),
        ({"ends": "demain"}, "Fin"),
    ):
        r = marketing.post("/hq/offres", data={**form, **bad, "csrf_token": token})
        text = r.get_data(as_text=True)
        assert r.status_code == 422, (bad, r.status_code)
        assert 'role="alert"' in text and f"{field}" in text, bad
        assert 'aria-invalid="true"' in text
    r = marketing.post("/hq/offres", data={**form, "title": "x" * 5000, "csrf_token": token})
    assert r.status_code in (413, 422)
    assert hdb.rows(hub, "SELECT id FROM offers") == []

    r = marketing.post("/hq/offres", data={**form, "csrf_token": token})
    assert r.status_code == 303
    [offer] = hdb.rows(hub, "SELECT * FROM offers")
    assert offer["starts_at"] == "2026-11-20T00:00:00Z"
    assert offer["ends_at"] == "2027-01-01T00:00:00Z"  # the whole last day
    html = marketing.get("/hq/offres").get_data(as_text=True)
    assert "Textile running -15 %" in html and "En cours" in html
    assert "1 client<" in html  # only the customer who consented
    assert "depuis 6 mois" in html and f"«{NBSP}" in html
    [entry] = hdb.rows(hub, "SELECT action, detail FROM hq_audit WHERE action LIKE 'offer.%'")
    assert entry["action"] == "offer.created" and offer["id"] in entry["detail"]
    # Withdrawn: journaled; an unknown offer is a 404 page.
    r = marketing.post(f"/hq/offres/{offer['id']}/retirer", data={"csrf_token": token})
    assert r.status_code == 303
    assert (
        marketing.post("/hq/offres/of-nope/retirer", data={"csrf_token": token}).status_code == 404
    )
    assert "Retirée" in marketing.get("/hq/offres").get_data(as_text=True)
    actions = [r["action"] for r in hdb.rows(hub, "SELECT action FROM hq_audit ORDER BY id")]
    assert actions[-2:] == ["offer.created", "offer.ended"]
    assert "Offre ciblée créée" in marketing.get("/hq/journal").get_data(as_text=True)
    assert _hub_app(hub_data).test_client().get("/hq/offres").status_code == 302


# --- shipping ----------------------------------------------------------------------------


def test_a_store_feed_receives_the_payload_then_forgets_it_and_refresh_sends_only_changes(
    hub, hub_data, synced_store, monkeypatch
):
    p = _catalog(hub)
    ring = KeyRing.open(hub_data)
    customer = _customer(hub, hub_data)
    card_id = cards.issue_card(hub, customer)
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    consent.set_consent(hub, customer, True, "web")
    assert customer_feed.personal_changed(hub, ring, customer) == 1
    lyon, _ = inprocess_client(hub_data, LYON)
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        pull_once(store, lyon, own_store_id=LYON)
        held = json.loads(
            store.execute(
                "SELECT personal FROM customer_cards WHERE card_id = ?", [card_id]
            ).fetchone()[0]
        )
        assert held["sizes"] == {p["a"]["slug"]: p["a"]["size"]}
        # The feed page, as the API sends it, matches the documented schema.
        first = hdb.scalar(hub, "SELECT min(seq) FROM changes WHERE key = ?", [customer])
        page = lyon.get_changes(str(first - 1), limit=2000)
        validate(page, "ChangesPage")
        [change] = [c for c in page["changes"] if c["key"] == customer]
        assert change["data"]["personal"] == personal.payload(hub, customer)

        # The daily refresh: a new offer for their segment changes the payload once.
        _at(monkeypatch, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
        nothing = customer_feed.refresh(hub, ring)
        assert nothing["changed"] == 0 and nothing["changes"] == 0
        assert nothing["customers"] >= 1
        offer_id = _offer(hub, p["a"]["slug"], months=12, starts="2026-11-01")
        seen = []
        once = customer_feed.refresh(hub, ring, lambda done, total: seen.append((done, total)))
        assert once["changed"] == 1 and once["changes"] == 1
        assert seen and seen[-1][0] == seen[-1][1] == once["customers"]
        assert customer_feed.refresh(hub, ring)["changes"] == 0
        # The command does the same, with a JSON summary (counts only).
        cli = run_hub("personal", "refresh", "--json", "--data", str(hub_data))
        assert cli.returncode == 0, cli.stderr
        summary = json.loads(cli.stdout)
        assert summary["changes"] == 0 and summary["customers"] == once["customers"]
        assert "@" not in cli.stdout and "Chloé" not in cli.stdout
        pull_once(store, lyon, own_store_id=LYON)
        held = json.loads(
            store.execute(
                "SELECT personal FROM customer_cards WHERE card_id = ?", [card_id]
            ).fetchone()[0]
        )
        assert [o["id"] for o in held["offers"]] == [offer_id]
        # What the kiosk's « Pour vous » then shows (app/store/domain/personal.py).
        shown = store_personal.for_you(store, card_id)
        assert shown is not None and [o["id"] for o in shown.offers] == [offer_id]

        # Withdrawn: the store forgets what it had, the card stays (the greeting).
        consent.set_consent(hub, customer, False, "web")
        assert customer_feed.personal_changed(hub, ring, customer) == 1
        pull_once(store, lyon, own_store_id=LYON)
        row = store.execute(
            "SELECT first_name, personal FROM customer_cards WHERE card_id = ?", [card_id]
        ).fetchone()
        assert tuple(row) == ("Chloé", None)
        assert store_personal.for_you(store, card_id) is None
    finally:
        store.close()


# --- the console's screen ------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1440, 900), (1280, 800), (390, 844)], ids=str)
def test_hq_offers_screen_axe_clean_and_tappable(hub, hub_data, hub_factory, browser, size):
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    consent.set_consent(hub, customer, True, "web")
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    customer_feed.refresh(hub, KeyRing.open(hub_data))
    _offer(hub, p["a"]["slug"], months=6, starts=clock.utcnow().date().isoformat())
    user = hq_users.add_user(
        hub, f"m.{secrets.token_hex(3)}@example.com", "Marie", "marketing", "x" * 12
    )
    server = hub_factory(hub_data)
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(server.url + "/hq/login")
        page.fill("#email", user["email"])
        page.fill("#password", "x" * 12)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(re.compile(r".*/hq/(?!login).*"))
        page.goto(server.url + "/hq/offres")
        # A refused form first: the error is said, the field marked, what was typed kept.
        page.fill("#o-title", "Chaussettes offertes")
        page.fill("#o-text", "Pour l'achat d'une paire de chaussures.")
        page.select_option("#o-category", p["a"]["slug"])
        page.fill("#o-months", "40")
        page.fill("#o-starts", "2026-11-20")
        page.get_by_role("button", name="Créer l'offre").click()
        page.wait_for_selector("#offer-error")
        assert page.locator("#o-months").get_attribute("aria-invalid") == "true"
        assert page.input_value("#o-title") == "Chaussettes offertes"
        assert "Période d'achat" in page.inner_text("#offer-error")
        screenshot(page, f"hq-offers-error-{width}x{height}")
        assert serious_axe_violations(page) == []
        page.fill("#o-months", "6")
        page.get_by_role("button", name="Créer l'offre").click()
        made = hdb.scalar(hub, "SELECT id FROM offers WHERE title = ?", ["Chaussettes offertes"])
        page.wait_for_selector(f"tr#offer-{made}")
        screenshot(page, f"hq-offers-{width}x{height}")
        page.screenshot(path=f"test-artifacts/hq-offers-{width}x{height}-full.png", full_page=True)
        assert serious_axe_violations(page) == []
        assert "1 client" in page.inner_text("#offers")
        small = [
            (sel, box)
            for sel in ("main button", "main select", "main input:visible", "main textarea")
            for box in (el.bounding_box() for el in page.locator(sel).all())
            if box and box["height"] < 44
        ]
        assert small == []
        # The page never scrolls sideways (on a phone the table scrolls in its box).
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert [e for e in errors if "status of 422" not in e] == []  # the refusal itself
    finally:
        context.close()
