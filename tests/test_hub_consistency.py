"""The hub's consistency, keys and erasure (issue 14, review F2).

A consent change, a card renewal and a name correction are recorded together with the
stores' update, or not at all: a personal-data key that does not open is a clear page
(503), the customer's choice unchanged, never a 500. Two hub processes starting on an
empty data directory end with one key. Rows in clear are sealed once at start-up, not
scanned at every start. The 10-year order deletion keeps a live customer's loyalty
ledger. An erasure whose e-mail does not open says so. Hub parts run on the backend of
the pass (``make test`` runs SQLite then PostgreSQL)."""

from __future__ import annotations

import html
import json
import multiprocessing
import re
import secrets
from pathlib import Path

import pytest

from app.core import clock
from app.core.protocol import CHANGE_CUSTOMER_CARD
from app.hub import database as hdb
from app.hub.domain import (
    cards,
    consent,
    customer_feed,
    customers,
    erasure,
    hq_users,
    keys,
    loyalty,
    order_people,
    pii_rotation,
)
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing, PiiKeyError
from app.hub.protocol import consent as consent_protocol

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_database, hub_db

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BROKEN = "pii1.kdeadbeef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # a key not in the file


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _hub_app(hub_data: Path):
    from app.hub.app import create_hub_app

    return create_hub_app({"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data)})


def _customer(db, hub_data: Path, email: str | None = None) -> tuple[str, str]:
    email = email or f"{secrets.token_hex(4)}.chloe@example.com"
    row, _ = customers.find_or_create(db, KeyRing.open(hub_data), email, "Chloé", "Martin")
    return row["id"], email


def _shopper(hub_data: Path, hub, customer_id: str):
    """A browser signed in to the web shop as the customer (French)."""
    from .test_consent_loyalty import _session

    client = _hub_app(hub_data).test_client()
    with client.session_transaction() as s:
        s["customer"] = _session(hub, customer_id)
        s["lang"] = "fr"
    return client


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _sku(db) -> str:
    return hdb.scalar(
        db, "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku", [LYON]
    )


def _order(db, hub_data: Path, email: str, customer_id: str | None = None) -> str:
    key = keys.current_private_key(hub_data)
    order = create_order(
        db, LYON, "Chloé Martin", email, [{"sku": _sku(db), "qty": 1}], private_key=key
    )["order"]["id"]
    if customer_id:
        customers.claim_order(db, customer_id, order)
    return order


def _card_changes(db, customer_id: str) -> list[dict]:
    return [
        json.loads(r["data"])
        for r in hdb.rows(
            db,
            "SELECT data FROM changes WHERE kind = ? AND key = ? AND store_id = ? ORDER BY seq",
            [CHANGE_CUSTOMER_CARD, customer_id, LYON],
        )
    ]


def _break_first_name(db, customer_id: str) -> str:
    """The first name sealed under a key the file does not hold; the good value back."""
    good = hdb.scalar(db, "SELECT first_name_enc FROM customers WHERE id = ?", [customer_id])
    with hdb.write(db):
        hdb.execute(
            db, "UPDATE customers SET first_name_enc = ? WHERE id = ?", [BROKEN, customer_id]
        )
    return good


# --- 1. one transaction, a clear page on a key error ------------------------------------


def test_consent_and_the_stores_update_are_one_transaction(hub, hub_data):
    customer, email = _customer(hub, hub_data)
    _order(hub, hub_data, email, customer)
    cards.issue_card(hub, customer)
    shop = _shopper(hub_data, hub, customer)
    token = _csrf(shop.get("/shop/compte").get_data(as_text=True))
    given = shop.post(
        "/shop/compte/suggestions", data={"csrf_token": token, "action": "give", "consent": "yes"}
    )
    assert given.status_code == 302 and consent.personal_allowed(hub, customer)
    assert _card_changes(hub, customer)[-1]["personal"] is not None  # the store was told
    sent = len(_card_changes(hub, customer))

    good = _break_first_name(hub, customer)  # the stores cannot be told now
    refused = shop.post("/shop/compte/suggestions", data={"csrf_token": token, "action": "off"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 503
    assert "Votre compte ne peut pas être ouvert pour le moment" in html
    assert "Rien n’a été modifié" in html
    assert refused.headers["Cache-Control"] == "no-store"
    # Nothing half done: consent still given, not journaled, the store still holds it.
    assert consent.personal_allowed(hub, customer)
    assert [h["given"] for h in consent.history(hub, customer)] == [1]
    assert len(_card_changes(hub, customer)) == sent
    assert (
        hdb.scalar(hub, "SELECT count(*) FROM customer_personal WHERE customer_id = ?", [customer])
        == 1
    )

    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET first_name_enc = ? WHERE id = ?", [good, customer])
    withdrawn = shop.post("/shop/compte/suggestions", data={"csrf_token": token, "action": "off"})
    assert withdrawn.status_code == 302 and not consent.personal_allowed(hub, customer)
    assert _card_changes(hub, customer)[-1]["personal"] is None  # the store forgets, now
    assert (
        hdb.scalar(hub, "SELECT count(*) FROM customer_personal WHERE customer_id = ?", [customer])
        == 0
    )


def test_a_card_renewal_is_all_or_nothing(hub, hub_data):
    customer, email = _customer(hub, hub_data)
    _order(hub, hub_data, email, customer)
    card = cards.issue_card(hub, customer)
    shop = _shopper(hub_data, hub, customer)
    token = _csrf(shop.get("/shop/compte/carte").get_data(as_text=True))
    good = _break_first_name(hub, customer)

    renewed = shop.post("/shop/compte/carte/nouvelle", data={"csrf_token": token})
    assert renewed.status_code == 503
    assert "Votre compte ne peut pas être ouvert" in renewed.get_data(as_text=True)
    assert cards.current_card(hub, customer) == card  # the old card still live: rolled back

    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET first_name_enc = ? WHERE id = ?", [good, customer])
    before = len(_card_changes(hub, customer))
    assert shop.post("/shop/compte/carte/nouvelle", data={"csrf_token": token}).status_code == 303
    new = cards.current_card(hub, customer)
    assert new not in (None, card)
    assert _card_changes(hub, customer)[-1]["card_id"] == new  # told in the same write
    assert len(_card_changes(hub, customer)) >= before  # (the superseded one is replaced)


def test_a_name_correction_is_undone_when_the_stores_cannot_be_told(hub, hub_data, monkeypatch):
    customer, email = _customer(hub, hub_data)
    _order(hub, hub_data, email, customer)
    cards.issue_card(hub, customer)
    shop = _shopper(hub_data, hub, customer)
    token = _csrf(shop.get("/shop/compte/donnees").get_data(as_text=True))
    names = "SELECT first_name_enc, last_name_enc FROM customers WHERE id = ?"
    before = hdb.one(hub, names, [customer])

    def cannot_tell(*_args, **_kwargs):
        raise PiiKeyError("no key 'kgone' for this value (rotated away?)")

    monkeypatch.setattr(customer_feed, "card_changed", cannot_tell)
    form = {"csrf_token": token, "first_name": "Zoé", "last_name": "Durand"}
    refused = shop.post("/shop/compte/donnees/nom", data=form)
    assert refused.status_code == 503
    assert "Votre compte ne peut pas être ouvert" in refused.get_data(as_text=True)
    assert hdb.one(hub, names, [customer]) == before  # the correction rolled back too
    monkeypatch.undo()
    assert shop.post("/shop/compte/donnees/nom", data=form).status_code == 303
    ring = KeyRing.open(hub_data)
    sealed = hdb.scalar(hub, "SELECT first_name_enc FROM customers WHERE id = ?", [customer])
    assert ring.decrypt(sealed, "customers.first_name") == "Zoé"
    assert _card_changes(hub, customer)[-1]["first_name"] == "Zoé"  # the store told


def test_a_missing_key_file_is_a_page_not_a_500(hub, hub_data):
    customer, email = _customer(hub, hub_data)
    shop = _shopper(hub_data, hub, customer)
    token = _csrf(shop.get("/shop/compte").get_data(as_text=True))
    (hub_data / "secrets" / "pii-keys.json").rename(hub_data / "secrets" / "elsewhere.json")
    try:
        page = shop.post(
            "/shop/compte/suggestions",
            data={"csrf_token": token, "action": "give", "consent": "yes"},
        )
        assert page.status_code == 503
        assert "Votre compte ne peut pas être ouvert" in page.get_data(as_text=True)
        assert not consent.personal_allowed(hub, customer)
    finally:
        (hub_data / "secrets" / "elsewhere.json").rename(hub_data / "secrets" / "pii-keys.json")


# --- 2. two processes, one key ---------------------------------------------------------


def _open_ring(args: tuple[str, object]) -> tuple[str, str]:
    data_dir, barrier = args
    barrier.wait()  # all at once
    ring = KeyRing.open(data_dir, env={})
    return ring.current, ring.index_key.hex()


def _race(data_dir: str, n: int) -> list[tuple[str, str]]:
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            return pool.map(_open_ring, [(data_dir, barrier)] * n)


def test_hub_processes_racing_on_an_empty_directory_share_one_key(tmp_path):
    for attempt in range(5):
        data_dir = tmp_path / f"d{attempt}"
        seen = _race(str(data_dir), 6)
        assert len(set(seen)) == 1, f"two keys made at once: {seen}"
        on_disk = KeyRing.load(data_dir / "secrets" / "pii-keys.json")
        assert (on_disk.current, on_disk.index_key.hex()) == seen[0]
        assert [p.name for p in (data_dir / "secrets").iterdir()] == ["pii-keys.json"]
        assert (data_dir / "secrets" / "pii-keys.json").stat().st_mode & 0o777 == 0o600


# --- 3. sealing once -------------------------------------------------------------------


def test_clear_rows_are_sealed_once_not_scanned_at_every_start(hub, hub_data):
    _hub_app(hub_data)  # the first start: nothing in clear, said so
    assert hdb.scalar(hub, "SELECT value FROM hub_meta WHERE key = 'pii_clear_rows_sealed'")
    order = _order(hub, hub_data, "late.writer@example.com")
    with hdb.write(hub):  # a row in clear, written behind the hub's back after that
        hdb.execute(
            hub,
            "UPDATE orders SET customer_name = 'Clair Visible', customer_name_enc = NULL "
            "WHERE id = ?",
            [order],
        )
    _hub_app(hub_data)  # the second start does not scan the tables: the row stays
    assert hdb.scalar(hub, "SELECT customer_name FROM orders WHERE id = ?", [order]) == (
        "Clair Visible"
    )
    ring = KeyRing.open(hub_data)
    assert order_people.seal_existing(hub, ring, once=True)["orders"] == 0
    # ``kiosk hub pii reencrypt`` still scans everything and seals it.
    done = pii_rotation.reencrypt_all(hub, ring)
    assert done.get("orders sealed") == 1
    row = hdb.one(hub, "SELECT customer_name, customer_name_enc FROM orders WHERE id = ?", [order])
    assert row["customer_name"] == ""
    assert ring.decrypt(row["customer_name_enc"], "orders.customer_name") == "Clair Visible"


# --- 4. the 10-year deletion keeps the ledger -------------------------------------------


def test_deleting_old_orders_keeps_a_live_customers_loyalty_ledger(hub, hub_data):
    customer, email = _customer(hub, hub_data)
    order = _order(hub, hub_data, email, customer)
    with hdb.write(hub):
        hdb.insert(
            hub,
            "loyalty_ledger",
            {
                "id": "loy_" + secrets.token_hex(10),
                "customer_id": customer,
                "kind": "earned",
                "points": 42,
                "order_id": order,
                "at": clock.now_iso(),
            },
        )
        hdb.execute(hub, "UPDATE customers SET loyalty_points = 42 WHERE id = ?", [customer])
    with hdb.write(hub):
        erasure.delete_orders(hub, [order])
    assert hdb.scalar(hub, "SELECT count(*) FROM orders WHERE id = ?", [order]) == 0
    ledger = hdb.rows(
        hub, "SELECT points, order_id FROM loyalty_ledger WHERE customer_id = ?", [customer]
    )
    assert ledger == [{"points": 42, "order_id": None}]
    assert loyalty.balance(hub, customer) == sum(r["points"] for r in ledger) == 42


# --- 5. an erasure that could not read the e-mail says so --------------------------------


def _hq_admin(hub_data: Path, hub):
    user = hq_users.add_user(
        hub, f"admin.{secrets.token_hex(3)}@example.com", "Admin", "admin", "x" * 12
    )
    client = _hub_app(hub_data).test_client()
    with client.session_transaction() as s:
        s["hq_user"] = user["id"]
        s["hq_login_at"] = clock.utcnow().timestamp()
        s["hq_sid"] = hq_users.open_session(hub, user["id"])
    return client


def test_an_erasure_whose_email_does_not_open_is_reported(hub, hub_data):
    customer, email = _customer(hub, hub_data)
    guest = _order(hub, hub_data, email)  # a guest order with their address, sealed
    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET email_enc = ? WHERE id = ?", [BROKEN, customer])
    hq = _hq_admin(hub_data, hub)
    token = _csrf(hq.get("/hq/clients").get_data(as_text=True))
    done = hq.post(f"/hq/clients/{customer}/effacer", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    page = html.unescape(hq.get("/hq/clients").get_data(as_text=True))
    assert "Compte client effacé" in page
    assert "son adresse e-mail n'a pas pu être déchiffrée" in page
    assert "l'effacement peut être incomplet" in page
    assert customers.get_customer(hub, customer) is None
    # The sealed guest order was still found, by the blind index stored with the account.
    row = hdb.one(
        hub, "SELECT customer_email_enc, customer_email_idx FROM orders WHERE id = ?", [guest]
    )
    assert row == {"customer_email_enc": None, "customer_email_idx": None}
    detail = json.loads(
        hdb.scalar(hub, "SELECT detail FROM hq_audit WHERE action = 'customer.erased'")
    )
    assert detail["customer_id"] == customer and detail["email_unreadable"] == 1
    assert detail["orders_anonymised"] == 1


def test_an_erasure_that_reads_the_email_says_nothing_more(hub, hub_data):
    customer, email = _customer(hub, hub_data)
    _order(hub, hub_data, email)
    done = erasure.erase_customer(hub, KeyRing.open(hub_data), customer)
    assert done == {"orders_anonymised": 1, "deliveries_anonymised": 0}


# --- 6. one card look-up ---------------------------------------------------------------


def test_one_card_lookup_live_or_ever(hub, hub_data):
    customer, _ = _customer(hub, hub_data)
    old = cards.issue_card(hub, customer)
    new = cards.rotate_card(hub, customer)
    assert cards.customer_for_card(hub, new) == customer
    assert cards.customer_for_card(hub, old) is None  # renewed: names nobody live
    assert cards.customer_for_card(hub, old, ever=True) == customer  # a queued action does
    for junk in (None, "", "   ", "x" * 65, 12):
        assert cards.customer_for_card(hub, junk, ever=True) is None
    # consent.revoked maps a renewed card through the same look-up.
    consent.set_consent(hub, customer, True, "web")
    with hdb.write(hub):
        result = consent_protocol.revoked(hub, LYON, {"card_id": old}, "tx-1")
    assert result["applied"] is True and not consent.personal_allowed(hub, customer)
