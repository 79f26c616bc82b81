"""Orders' names and e-mails sealed at rest at the hub (issue 14, RGPD by design), and
the stores told the first name only. A real hub (``kiosk hub serve``), on both hub
backends (KIOSK_TEST_HUB_BACKEND=postgresql for the second pass): a web-shop order, a
kiosk order to collect and a home delivery asked for at a kiosk, then every text column
of every table of the real database searched for the people's names, e-mails and
address."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from app.cli import main
from app.hub import database as hdb
from app.hub import mailer
from app.hub.domain import order_people
from app.hub.domain.pii import KeyRing

from .conftest import screenshot
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, hub_database, hub_db, store_secrets, validate

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

WEB = ("Zéphyrine Quellecweb", "zephyrine.quellecweb@example.com")
KIOSK = ("Aurélien Kiosquier", "aurelien.kiosquier@example.com")
HOME = ("Bérénice Livreuse", "berenice.livreuse@example.com")
STREET = "17 impasse des Secrets"


class Shopper:
    """A phone on the web shop, following its forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=20)

    def post(self, path: str, data: dict) -> requests.Response:
        token = _CSRF.search(self.get("/shop/").text).group(1)
        return self.http.post(self.base + path, data={**data, "csrf_token": token}, timeout=20)


def _skus(data: Path, qty_clause: str, n: int) -> list[str]:
    db = hub_db(data)
    try:
        return [
            r[0]
            for r in hdb.execute(
                db,
                f"SELECT sku FROM stock_levels WHERE store_id = ? AND {qty_clause} "  # noqa: S608
                "ORDER BY sku LIMIT ?",
                [LYON, n],
            ).fetchall()
        ]
    finally:
        db.close()


def _order_request(client, name: str, email: str, skus: list[str], address=None) -> dict:
    payload = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": "home" if address else "pickup",
        "customer_name": name,
        "customer_email": email,
        "lines": [{"sku": s, "qty": 1} for s in skus],
    }
    if address:
        payload["address"] = address
    tx = {
        "id": str(uuid.uuid4()),
        "type": "order.request",
        "occurred_at": "2026-11-22T14:02:00Z",
        "payload": payload,
    }
    resp = client.post_transactions([tx])
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    assert result["status"] == "accepted", result
    return result["result"]


def _web_order(hub_server) -> str:
    """A web-shop order placed by a phone; the URL of its page (number and access key)."""
    shopper = Shopper(hub_server.url)
    [web_sku] = _skus(hub_server.data, "qty >= 3", 1)
    assert shopper.post("/shop/panier/ajouter", {"sku": web_sku, "qty": "1"}).status_code == 200
    placed = shopper.post("/shop/commande", {"magasin": LYON, "name": WEB[0], "email": WEB[1]})
    assert placed.status_code == 200, placed.text[:500]
    assert WEB[1] not in placed.url and "Quellecweb" not in placed.url  # nothing in URLs
    return placed.url


def _place_all(hub_server, hub_client) -> dict[str, str]:
    """A web-shop order (Lyon), a kiosk order to collect and a kiosk home delivery."""
    web_number = re.search(r"CC-\d{8}", _web_order(hub_server)).group(0)
    skus = _skus(hub_server.data, "qty = 0", 2)
    kiosk = _order_request(hub_client, *KIOSK, skus)
    home = _order_request(
        hub_client, *HOME, skus, address={"line1": STREET, "postcode": "69003", "city": "Lyon"}
    )
    db = hub_db(hub_server.data)
    try:
        web_id = hdb.scalar(db, "SELECT id FROM orders WHERE number = ?", [web_number])
    finally:
        db.close()
    return {"web": web_id, "kiosk": kiosk["order_id"], "home": home["delivery_id"]}


def _clear_traces(db, needles: list[str]) -> list[tuple[str, str, str]]:
    """Every text value of every table of the hub's database holding one of ``needles``
    (lower case): the tables and columns as the database itself lists them."""
    found = []
    for table, columns in hdb.table_columns(db).items():
        for row in hdb.rows(db, f"SELECT * FROM {table}"):  # noqa: S608 (the catalogue's names)
            for column in columns:
                value = row[column]
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                if isinstance(value, str) and any(n in value.lower() for n in needles):
                    found.append((table, column, value[:100]))
    return found


def _needles() -> list[str]:
    """The people's e-mails, surnames and full names, and the street (JSON-escaped too)."""
    words = [WEB[1], KIOSK[1], HOME[1], "quellecweb", "kiosquier", "livreuse", STREET]
    words += [WEB[0], KIOSK[0], HOME[0]]
    return sorted({w.lower() for w in words} | {json.dumps(w)[1:-1].lower() for w in words})


def test_no_table_holds_an_orders_name_or_email_in_clear(hub_server, hub_client):
    ids = _place_all(hub_server, hub_client)
    db = hub_db(hub_server.data)
    try:
        assert _clear_traces(db, _needles()) == []
        # The first names are all a store is told: found in the change feed only.
        firsts = ["zéphyrine", "aurélien", "bérénice"]
        firsts += [json.dumps(w)[1:-1] for w in firsts]
        assert {t for t, _c, _v in _clear_traces(db, firsts)} <= {"changes"}
        # ... and every reader opens them with the key, outside the database.
        ring = KeyRing.open(hub_server.data)
        people = order_people.names_of(db, ring, [ids["web"], ids["kiosk"]])
        assert people[ids["web"]] == order_people.Person(*WEB)
        assert people[ids["kiosk"]] == order_people.Person(*KIOSK)
        delivery = hdb.one(db, "SELECT * FROM delivery_orders WHERE id = ?", [ids["home"]])
        opened = order_people.delivery_person(ring, delivery)
        assert (opened["customer_name"], opened["customer_email"]) == HOME
        assert opened["address"] == {"line1": STREET, "postcode": "69003", "city": "Lyon"}
        # The mails go to the right address, greeting by name (opened for the mailer).
        pending = {m["customer_email"]: m for m in mailer.pending(db, 500, ring)}
        assert set(pending) >= {WEB[1], KIOSK[1], HOME[1]}
        assert pending[WEB[1]]["body"].startswith(f"Bonjour {WEB[0]},")
        assert STREET in pending[HOME[1]]["body"]
    finally:
        db.close()
    # Nor in the hub's log (what the server wrote while taking these orders).
    log = hub_server.log.read_text(errors="replace").lower()
    assert not [n for n in _needles() if n in log]


def _last_seq(data: Path) -> int:
    db = hub_db(data)
    try:
        return int(hdb.scalar(db, "SELECT max(seq) FROM changes") or 0)
    finally:
        db.close()


def test_the_store_is_told_the_first_name_only(hub_server, hub_client):
    since = _last_seq(hub_server.data)
    ids = _place_all(hub_server, hub_client)
    page = hub_client.changes(since=since, limit=1000).json()
    validate(page, "ChangesPage")
    orders = {c["key"]: c["data"] for c in page["changes"] if c["kind"] == "order"}
    assert orders[ids["web"]]["customer_name"] == "Zéphyrine"
    assert orders[ids["kiosk"]]["customer_name"] == "Aurélien"
    for order_id in (ids["web"], ids["kiosk"]):
        data = orders[order_id]
        assert data["customer_email"] is None and data["customer_initials"] in ("Z.", "A.")
    text = json.dumps(page, ensure_ascii=False).lower()
    assert not [n for n in _needles() if n in text]
    # Paris hears nothing of Lyon's orders.
    paris = type(hub_client)(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    theirs = paris.changes(since=since, limit=1000).json()["changes"]
    assert not [c for c in theirs if c["key"] in ids.values()]


def _cli(data: Path, *args: str) -> dict:
    url = hub_database(data)
    env = {"KIOSK_HUB_DATABASE": url} if url else {}
    done = CliRunner().invoke(main, ["hub", "pii", *args, "--data", str(data), "--json"], env=env)
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_rotation_then_reencrypt_keeps_every_order_readable(hub_server, hub_client):
    since = _last_seq(hub_server.data)
    ids = _place_all(hub_server, hub_client)
    before = KeyRing.open(hub_server.data).current
    rotated = _cli(hub_server.data, "rotate", "--no-reencrypt")
    assert rotated["current"] != before and rotated["keys_in_use"][before] > 0
    # Orders placed between the new key and the re-encryption are sealed with it.
    skus = _skus(hub_server.data, "qty = 0", 1)
    late = _order_request(hub_client, "Léonie Tardive", "leonie.tardive@example.com", skus)
    done = _cli(hub_server.data, "reencrypt")
    rewritten = done["rewritten"]
    for column in (
        "orders.customer_name_enc",
        "orders.customer_email_enc",
        "delivery_orders.address_enc",
        "notifications.customer_email_enc",
        "notifications.body_enc",
    ):
        assert rewritten[column] > 0, (column, rewritten)
    assert done["keys_in_use"][before] == 0  # the old key names nothing any more
    ring = KeyRing.open(hub_server.data)
    db = hub_db(hub_server.data)
    try:
        people = order_people.names_of(db, ring, [ids["web"], ids["kiosk"], late["order_id"]])
        assert [people[i] for i in (ids["web"], ids["kiosk"], late["order_id"])] == [
            order_people.Person(*WEB),
            order_people.Person(*KIOSK),
            order_people.Person("Léonie Tardive", "leonie.tardive@example.com"),
        ]
        # Without the old key in the ring, every value still opens: nothing names it.
        del ring.keys[before]
        assert order_people.names_of(db, ring, [ids["web"]])[ids["web"]].email == WEB[1]
        assert {m["customer_email"] for m in mailer.pending(db, 500, ring)} >= {WEB[1], HOME[1]}
        assert _clear_traces(db, _needles()) == []
    finally:
        db.close()
    # The running hub reads the new key file: the web order's page and the feed work.
    page = hub_client.changes(since=since, limit=1000).json()
    assert any(c["key"] == late["order_id"] for c in page["changes"])


def test_rows_written_in_clear_before_are_sealed_at_start_up(hub_data):
    """A hub upgraded past m016: its clear rows (orders, a delivery, mails, the old
    order changes naming the whole person) are sealed by the start-up step."""
    from app.hub.app import create_hub_app

    db = hub_db(hub_data)
    try:
        sku = hdb.scalar(db, "SELECT sku FROM variants ORDER BY sku LIMIT 1")
        with hdb.write(db):
            hdb.insert(
                db,
                "orders",
                {
                    "id": "o-old0000000000000",
                    "number": "CC-00000001",
                    "store_id": LYON,
                    "status": "placed",
                    "customer_name": "Anatole Ancien",
                    "customer_email": "anatole.ancien@example.com",
                    "placed_at": "2026-11-01T10:00:00Z",
                    "pickup_code": "123456",
                    "pickup_code_hash": "x",
                    "pickup_token": "t",
                    "updated_at": "2026-11-01T10:00:00Z",
                },
            )
            hdb.insert(
                db,
                "notifications",
                {
                    "order_id": "o-old0000000000000",
                    "customer_email": "anatole.ancien@example.com",
                    "kind": "placed",
                    "subject": "Commande CC-00000001 reçue",
                    "body": "Bonjour Anatole Ancien,",
                    "created_at": "2026-11-01T10:00:00Z",
                },
            )
            hdb.insert(
                db,
                "delivery_orders",
                {
                    "id": "d-old0000000000000",
                    "number": "LD-00000001",
                    "request_id": str(uuid.uuid4()),
                    "origin_store_id": LYON,
                    "customer_name": "Anatole Ancien",
                    "customer_email": "anatole.ancien@example.com",
                    "address_line1": "3 allée Ancienne",
                    "address_postcode": "69001",
                    "address_city": "Lyon",
                    "lines": json.dumps([{"sku": sku, "qty": 1}]),
                    "total_cents": 100,
                    "status": "requested",
                    "created_at": "2026-11-01T10:00:00Z",
                    "updated_at": "2026-11-01T10:00:00Z",
                },
            )
            hdb.insert(
                db,
                "handovers",
                {
                    "handover_id": str(uuid.uuid4()),
                    "order_id": "o-old0000000000000",
                    "lines": "[]",
                    "collector": "proxy",
                    "collector_name": "Hortense Mandataire",
                    "method": "code",
                    "staff": "sf-1",
                    "at": "2026-11-01T10:00:00Z",
                },
            )
            old = {"id": "o-old0000000000000", "customer_name": "Anatole Ancien"}
            old["customer_email"] = "anatole.ancien@example.com"
            hdb.insert(
                db,
                "changes",
                {
                    "kind": "order",
                    "key": "o-old0000000000000",
                    "store_id": LYON,
                    "data": json.dumps(old, separators=(",", ":")),
                    "created_at": "2026-11-01T10:00:00Z",
                },
            )
        needles = ["anatole ancien", "anatole.ancien@example.com", "ancien@", "allée ancienne"]
        needles.append("mandataire")
        assert _clear_traces(db, needles)  # the search finds them while they are there
        create_hub_app(
            {"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data), "TESTING": True}
        )
        assert _clear_traces(db, needles) == []
        ring = KeyRing.open(hub_data)
        person = order_people.person_of(db, ring, "o-old0000000000000")
        assert person == order_people.Person("Anatole Ancien", "anatole.ancien@example.com")
        assert order_people.ids_by_email(db, ring, "orders", "Anatole.Ancien@example.com ") == [
            "o-old0000000000000"
        ]
        delivery = hdb.one(db, "SELECT * FROM delivery_orders WHERE id = 'd-old0000000000000'")
        assert order_people.delivery_person(ring, delivery)["address"]["line1"] == (
            "3 allée Ancienne"
        )
        proxy = hdb.scalar(
            db, "SELECT collector_name FROM handovers WHERE order_id = 'o-old0000000000000'"
        )
        assert order_people.collector_of(ring, proxy) == "Hortense Mandataire"
        change = hdb.scalar(db, "SELECT data FROM changes WHERE key = 'o-old0000000000000'")
        assert json.loads(change) == {
            "id": "o-old0000000000000",
            "customer_name": "Anatole",
            "customer_email": None,
        }
        # A second start finds nothing left to seal.
        assert order_people.seal_existing(db, ring) == dict.fromkeys(
            ("orders", "delivery_orders", "notifications", "handovers", "changes"), 0
        )
    finally:
        db.close()


@pytest.mark.parametrize("bad", ["", "   ", "not-an-email"])
def test_looking_a_person_up_by_a_bad_address_finds_nothing(hub_data, bad):
    db = hub_db(hub_data)
    try:
        ring = KeyRing.open(hub_data)
        assert order_people.ids_by_email(db, ring, "orders", bad) == []
    finally:
        db.close()


def test_a_proxys_name_on_a_hand_over_is_sealed_and_rotates(hub_data):
    """A store's ``order.handover`` to a proxy: the name the staff typed is kept sealed."""
    from app.hub.domain import keys, pii_rotation
    from app.hub.domain.orders import create_order
    from app.hub.protocol import transactions

    db = hub_db(hub_data)
    try:
        sku = hdb.scalar(
            db, "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 LIMIT 1", [LYON]
        )
        key = keys.current_private_key(hub_data)
        made = create_order(db, LYON, *WEB, [{"sku": sku, "qty": 1}], private_key=key)
        oid = made["order"]["id"]

        def tx(kind: str, payload: dict) -> dict:
            occurred = "2026-11-22T14:02:00Z"
            return {
                "id": str(uuid.uuid4()),
                "type": kind,
                "occurred_at": occurred,
                "payload": payload,
            }

        ready = {"order_id": oid, "lines": [{"line": 1, "qty_ready": 1}], "shelf_slot": "A-01"}
        handover = {
            "handover_id": str(uuid.uuid4()),
            "order_id": oid,
            "lines": [{"line": 1, "qty": 1}],
            "collector": "proxy",
            "collector_name": "Hortense Mandataire",
            "method": "code",
            "staff": "sf-1",
        }
        results = transactions.apply_batch(
            db,
            LYON,
            [tx("order.ready", {**ready, "staff": "sf-1"}), tx("order.handover", handover)],
            data_dir=hub_data,
        )
        assert [r["status"] for r in results] == ["accepted", "accepted"], results
        assert _clear_traces(db, ["mandataire", *_needles()]) == []
        ring = KeyRing.open(hub_data)
        sealed = hdb.scalar(db, "SELECT collector_name FROM handovers WHERE order_id = ?", [oid])
        assert order_people.collector_of(ring, sealed) == "Hortense Mandataire"
        report = pii_rotation.rotate(db, ring)
        assert report["rewritten"]["handovers.collector_name"] >= 1
        assert report["keys_in_use"][report["previous"]] == 0
        again = hdb.scalar(db, "SELECT collector_name FROM handovers WHERE order_id = ?", [oid])
        assert ring.kid_of(again) == report["current"]
        assert order_people.collector_of(ring, again) == "Hortense Mandataire"
    finally:
        db.close()


def test_the_shoppers_order_page_still_shows_its_message_on_a_phone(hub_server, browser):
    """The order page reads the mails through the key: the greeting by name is there."""
    url = _web_order(hub_server)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(url)
        message = page.locator(
            "#messages-title + * pre, section[aria-labelledby=messages-title] pre"
        )
        message.first.wait_for()
        assert message.first.inner_text().startswith(f"Bonjour {WEB[0]},")
        message.first.scroll_into_view_if_needed()
        screenshot(page, "hub-order-page-sealed-messages-phone")
        assert errors == []
    finally:
        context.close()


def test_retention_finds_sealed_orders_by_the_address_and_blanks_them(hub_data, monkeypatch):
    """The retention job on sealed orders (its frozen clock): a guest order placed with
    an account's address (another case) is a contact, found by the blind index; an old
    guest order is anonymised, its sealed columns emptied."""
    from datetime import timedelta

    from app.core.clock import iso, parse_iso
    from app.hub.domain import keys, retention
    from app.hub.domain.orders import create_order

    now = parse_iso("2026-12-05T12:00:00Z")
    monkeypatch.setenv("KIOSK_FAKE_NOW", iso(now))
    day = timedelta(days=1)
    db = hub_db(hub_data)
    try:
        ring = order_people.ring_of(db)
        key = keys.current_private_key(hub_data)
        sku = hdb.scalar(
            db, "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 LIMIT 1", [LYON]
        )

        def order(name: str, email: str, placed) -> str:
            made = create_order(
                db, LYON, name, email, [{"sku": sku, "qty": 1}], private_key=key, now=placed
            )
            return made["order"]["id"]

        def customer(cid: str, email: str) -> None:
            last = iso(retention.years_before(now, 4))
            hdb.insert(
                db,
                "customers",
                {
                    "id": cid,
                    "email_enc": ring.encrypt(email, "customers.email"),
                    "email_idx": ring.blind_index(email, "customers.email"),
                    "created_at": last,
                    "last_contact_at": last,
                    "retention_warned_at": iso(now - 40 * day),
                },
            )

        customer("cu-back", "gaspard.revenant@example.com")
        recent = order("Gaspard Revenant", "Gaspard.Revenant@Example.com ", now - 300 * day)
        customer("cu-gone", "ysolde.partiequinze@example.com")
        old = order(
            "Ysolde Partiequinze", "ysolde.partiequinze@example.com", retention.years_before(now, 4)
        )
        report = retention.run(db, ring=ring)
        rules = report["rules"]
        assert rules["customers_deleted"]["ids"] == ["cu-gone"]
        assert rules["customers_contact_found"]["ids"] == ["cu-back"]
        assert (
            old in rules["orders_anonymised"]["ids"]
            and recent not in (rules["orders_anonymised"]["ids"])
        )
        blank = hdb.one(db, "SELECT * FROM orders WHERE id = ?", [old])
        sealed = ("customer_name_enc", "customer_email_enc", "customer_email_idx")
        assert [blank[c] for c in sealed] == [None, None, None]
        assert _clear_traces(db, ["ysolde", "partiequinze"]) == []
        people = order_people.names_of(db, ring, [old, recent])
        assert people[old] == order_people.Person("", "")
        assert people[recent].name == "Gaspard Revenant"
    finally:
        db.close()
