"""The store's consent and erasure (issue 14 review, group F1).

A kiosk withdrawal of consent is held on its own indexed table (m018_card_revoked),
never found by scanning the outbox; it holds until the hub sends the card again after
acknowledging it, so a stale card change pulled first does not undo it. The store's
erasure and forgetting job forget an order through one helper; the staff audit log is
bounded; a second card scanned starts a fresh visit; the counter says plainly when a
valid card's customer has no order here.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import CONSENT_REVOKED, ORDER_HANDOVER
from app.hub.domain import cards, customers, keys
from app.hub.domain.pii import KeyRing
from app.store.domain import acks, consent, customer_erasure, forgetting, outbox, personal
from app.store.domain.hub_keys import apply_hub_key_changes
from app.store.sync import feed

from .conftest import staff_login
from .order_helpers import apply_orders, order_data
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import hub_db

CUSTOMER = "cus_hold_test"
CARD = "crd_hold_test"
FIRST = "Chloé"
SUGGESTED = {"sizes": {"baskets": "42"}, "recent": [], "suggested": [], "offers": []}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_seq = iter(range(3_000_000, 4_000_000))


def _send_card(db, payload, *, card_id: str = CARD, customer: str = CUSTOMER) -> None:
    """A ``customer_card`` change as the hub's feed sends it, through the real applier."""
    data = {"customer_id": customer, "card_id": card_id, "first_name": FIRST}
    data["personal"] = payload
    seq = next(_seq)
    page = {
        "changes": [{"seq": seq, "kind": "customer_card", "key": customer, "data": data}],
        "cursor": seq,
        "remaining": 0,
    }
    feed.apply_page(db, page, None)


def _ack(db, tx_id: str, result: dict) -> None:
    assert outbox.mark_acked(db, tx_id, result, hooks=acks.ACK_HOOKS)


def _payload(db, tx_id: str) -> dict:
    return json.loads(db.execute("SELECT payload FROM outbox WHERE id = ?", [tx_id]).fetchone()[0])


# --- 1. one indexed lookup, never the outbox ------------------------------------------


def test_the_recognised_shopper_s_consent_is_read_without_scanning_the_outbox(store_db, fake_clock):
    _send_card(store_db, SUGGESTED)
    # A store's outbox after a long time: 200 000 settled rows, withdrawals included.
    now = clock.now_iso()
    rows = (
        (
            f"tx{i}",
            CONSENT_REVOKED if i % 2 else "stock.movement",
            now,
            json.dumps({"card_id": f"crd_other_{i}"}),
            now,
            now,
        )
        for i in range(200_000)
    )
    with dbmod.write(store_db):
        store_db.conn.executemany(
            "INSERT INTO outbox (id, type, occurred_at, payload, created_at, acked_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    assert consent.personal_allowed(store_db, CARD) is True
    assert consent.revoke(store_db, CARD) is not None

    statements: list[str] = []
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store_db.conn.set_trace_callback(statements.append)
    store_db.conn.set_progress_handler(count, 1000)
    try:
        # What every recognised page asks (kiosk_card.recognised_globals,
        # personal_allowed, personal.for_you).
        assert consent.revoked_here(store_db, CARD) is True
        assert consent.personal_allowed(store_db, CARD) is False
        assert personal.for_you(store_db, CARD) is None
        assert consent.revoked_here(store_db, "crd_nobody") is False
    finally:
        store_db.conn.set_progress_handler(None, 1000)
        store_db.conn.set_trace_callback(None)
    assert statements and not [s for s in statements if "outbox" in s.lower()], statements
    # A scan of 200 000 rows runs millions of VM steps; indexed lookups a few hundred.
    assert steps[0] < 20, steps[0]


# --- 2. a withdrawal holds until the hub sends the card again after it -------------------


def test_a_stale_card_change_does_not_undo_a_withdrawal_made_offline(store_db, fake_clock):
    _send_card(store_db, SUGGESTED)
    assert consent.personal_allowed(store_db, CARD) is True
    assert personal.for_you(store_db, CARD) is not None
    tx_id = consent.revoke(store_db, CARD)  # offline: queued, not sent
    assert tx_id and consent.personal_allowed(store_db, CARD) is False
    assert consent.revoke(store_db, CARD) is None  # a second tap sends nothing more

    # A card change the hub made before it knew (pulled before the push), later here.
    fake_clock.advance(60)
    _send_card(store_db, SUGGESTED)
    assert store_db.execute(
        "SELECT consent_personal FROM customer_cards WHERE card_id = ?", [CARD]
    ).fetchone() == (1,)
    assert consent.personal_allowed(store_db, CARD) is False
    assert consent.revoked_here(store_db, CARD) is True
    assert personal.for_you(store_db, CARD) is None
    assert personal.usual_size(store_db, CARD, "baskets") is None

    # The hub has it now (applied): the queued row forgets the card id; still held
    # until the card is sent again.
    fake_clock.advance(60)
    _ack(store_db, tx_id, {"applied": True, "changed": True})
    assert "card_id" not in _payload(store_db, tx_id)
    assert consent.personal_allowed(store_db, CARD) is False

    # Consent given again online, later: the hub's next card change carries suggestions.
    fake_clock.advance(60)
    _send_card(store_db, SUGGESTED)
    assert consent.personal_allowed(store_db, CARD) is True
    assert consent.revoked_here(store_db, CARD) is False
    assert personal.usual_size(store_db, CARD, "baskets") == "42"
    # The forgetting job drops the withdrawal that no longer holds.
    assert forgetting.forget_due(store_db)["withdrawals"] == 1
    assert store_db.execute("SELECT count(*) FROM card_revocations").fetchone() == (0,)


def test_a_withdrawal_holds_for_the_customer_s_renewed_card(store_db, fake_clock):
    _send_card(store_db, SUGGESTED)
    consent.revoke(store_db, CARD)
    fake_clock.advance(60)
    # The card renewed online before the withdrawal reached the hub: a new card id.
    _send_card(store_db, SUGGESTED, card_id="crd_hold_renewed")
    assert consent.personal_allowed(store_db, "crd_hold_renewed") is False
    assert consent.revoked_here(store_db, "crd_hold_renewed") is True


def test_a_withdrawal_the_hub_found_superseded_is_released_at_once(store_db, fake_clock):
    _send_card(store_db, SUGGESTED)
    tx_id = consent.revoke(store_db, CARD)
    fake_clock.advance(60)
    # Consent given online after the tap: the hub keeps it and says so.
    _ack(store_db, tx_id, {"applied": False, "superseded": True})
    assert consent.personal_allowed(store_db, CARD) is True
    assert "card_id" not in _payload(store_db, tx_id)


# --- 3 and 4. erasure: one per-order helper, no card id left in the outbox ------------


def _order(db, customer_id: str) -> tuple[str, str]:
    """An order of the customer's arrived from the hub, collected by a proxy; its id and
    its acknowledged hand-over transaction's id."""
    data = order_data(db, customer=FIRST, email="", status="collected")
    data["customer_id"] = customer_id
    apply_orders(db, [data])
    with dbmod.write(db):
        tx_id = outbox.enqueue(
            db,
            ORDER_HANDOVER,
            {"order_id": data["id"], "collector_name": "Paul Proxy"},
            order_id=data["id"],
        )
        db.execute(
            "UPDATE handovers SET collector_name = 'Paul Proxy' WHERE order_id = ?", [data["id"]]
        )
    _ack(db, tx_id, {"applied": True})
    return data["id"], tx_id


def test_erasure_forgets_orders_as_the_forgetting_job_does_and_every_card_id(store_db, fake_clock):
    order_id, handover = _order(store_db, CUSTOMER)
    assert store_db.execute(
        "SELECT customer_id FROM orders WHERE id = ?", [order_id]
    ).fetchone() == (CUSTOMER,)
    _send_card(store_db, SUGGESTED)
    acked = consent.revoke(store_db, CARD)
    _ack(store_db, acked, {"applied": True})
    fake_clock.advance(60)
    unsent = consent.revoke(store_db, CARD)
    cart = outbox.enqueue(store_db, "cart.sent", {"sent_id": "s1", "card_id": CARD, "lines": []})

    with dbmod.write(store_db):
        customer_erasure.forget(store_db, CUSTOMER, [CARD], [order_id])
    row = store_db.execute(
        "SELECT customer_name, customer_key, customer_initials, customer_id FROM orders "
        "WHERE id = ?",
        [order_id],
    ).fetchone()
    assert row == ("", "", "", None)
    assert "collector_name" not in _payload(store_db, handover)
    assert store_db.execute("SELECT 1 FROM outbox WHERE id = ?", [unsent]).fetchone() is None
    assert _payload(store_db, cart) == {"sent_id": "s1", "lines": []}
    assert store_db.execute("SELECT count(*) FROM card_revocations").fetchone() == (0,)
    held = store_db.execute("SELECT payload FROM outbox").fetchall()
    assert not [p for (p,) in held if CARD in p or CUSTOMER in p]


# --- 5. the staff audit log is bounded ----------------------------------------------


def test_the_staff_audit_log_keeps_a_year(store_db, fake_clock):
    start = fake_clock.now
    with dbmod.write(store_db):
        store_db.execute(
            "INSERT INTO audit_log (at, staff_id, device, action) VALUES (?, NULL, '', ?)",
            [clock.iso(start), "login"],
        )
    limit = timedelta(days=forgetting.AUDIT_LOG_DAYS)
    assert forgetting.AUDIT_LOG_DAYS == 365
    fake_clock.set(start + limit)  # exactly a year: kept
    assert forgetting.forget_due(store_db)["audit"] == 0
    assert store_db.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
    fake_clock.set(start + limit + timedelta(seconds=1))  # just over: forgotten
    assert forgetting.forget_due(store_db)["audit"] == 1
    assert store_db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


# --- 6 and 7. the kiosk and the counter, with real signed cards ------------------------


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _store_with_keys(hub, store_data: Path):
    from app.hub import database as hdb
    from app.store.app import create_app

    db = dbmod.connect(dbmod.db_path(store_data))
    try:
        rows = hdb.rows(hub, "SELECT kid, public_key FROM hub_keys")
        changes = [{"data": {"kid": r["kid"], "public_key": r["public_key"]}} for r in rows]
        with dbmod.write(db):
            apply_hub_key_changes(db, changes, None)
    finally:
        db.close()
    return create_app({"DATA_DIR": str(store_data), "TESTING": True})


def _token(hub, hub_data: Path, first: str) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    row, _ = customers.find_or_create(hub, KeyRing.open(hub_data), email, first, "Martin")
    token = cards.card_token(hub, hub_data, row["id"])
    return token, cards.current_card(hub, row["id"])


def test_another_card_scanned_starts_a_fresh_visit(hub, hub_data, store_data):
    app = _store_with_keys(hub, store_data)
    kiosk = app.test_client()
    first, first_id = _token(hub, hub_data, "Chloé")
    second, second_id = _token(hub, hub_data, "Bruno")
    csrf = _CSRF.search(kiosk.get("/browse").get_data(as_text=True)).group(1)
    assert kiosk.post("/scan", data={"csrf_token": csrf, "code": first}).status_code == 302
    with kiosk.session_transaction() as s:
        assert s["card"] == first_id
        s["cart"] = {"id": "cart1", "lines": [["SKU-1", 1, 1999]]}
        s["sent_carts"] = ["digest"]
        s["card_no_personal"] = True
        s["reservations"] = ["res1"]
        s["lang"] = "fr"
    # The same card again: the same visit.
    kiosk.post("/scan", data={"csrf_token": csrf, "code": first})
    with kiosk.session_transaction() as s:
        assert s["cart"]["lines"] and s["sent_carts"] == ["digest"]
    # Another shopper's card: nothing of the first stays, the screen's language does.
    assert kiosk.post("/scan", data={"csrf_token": csrf, "code": second}).status_code == 302
    with kiosk.session_transaction() as s:
        assert s["card"] == second_id
        for key in ("cart", "sent_carts", "card_no_personal", "reservations"):
            assert key not in s, key
        assert s["lang"] == "fr"
    page = kiosk.get("/cart").get_data(as_text=True)
    assert "SKU-1" not in page


def test_a_valid_card_with_no_order_here_is_said_plainly_at_the_counter(hub, hub_data, store_data):
    app = _store_with_keys(hub, store_data)
    http = app.test_client()
    staff_login(http, store_data)
    token, card_id = _token(hub, hub_data, "Chloé")
    csrf = _CSRF.search(http.get("/staff/scan?code=x").get_data(as_text=True)).group(1)
    page = http.post("/staff/scan", data={"csrf_token": csrf, "code": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "ce client n’a aucune commande dans ce magasin" in text
    assert "«\u00a0Ma carte\u00a0»" in text
    assert "pas un code de retrait" not in text and card_id not in text
    # A card that is not valid (tampered) is still refused as before.
    page = http.post("/staff/scan", data={"csrf_token": csrf, "code": token[:-4] + "AAAA"})
    assert page.status_code == 400 and "aucune commande" not in page.get_data(as_text=True)


def test_the_counter_tablet_says_a_card_s_customer_has_no_order_here(
    hub, hub_data, store_data, server_factory, browser
):
    from .axe_helpers import assert_axe_clean
    from .card_scan import scan_card
    from .conftest import screenshot, staff_login_page

    _store_with_keys(hub, store_data)
    token, _card_id = _token(hub, hub_data, "Chloé")
    server = server_factory(store_data)
    tablet = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = tablet.new_page()
    staff_login_page(page, server.url, store_data)
    page.goto(server.url + "/staff/orders")
    scan_card(page, token)  # the handheld scanner's burst on the counter
    text = page.locator("body").inner_text()
    assert "ce client n’a aucune commande dans ce magasin" in text
    screenshot(page, "counter-card-no-order-here-1280x800")
    assert_axe_clean(page, "the counter, a valid card with no order here")
    tablet.close()
