"""The customer's rights (issue 14): « Mes données » in the web shop (see it all, download
it as JSON, correct a name, delete the account), the erasure reaching every store through
the change feed, and head office answering a request. Both hub backends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import cards, customer_feed, customers, erasure, keys, order_people
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.store.domain import customer_cards
from app.store.sync import client

from .conftest import run_kiosk
from .hub_fixtures import store_secrets, validate
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_database, hub_db, store_env

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NBSP = "\u00a0"
LEA = "lea.zephyrine@example.com"
OTHER = "bruno.autre@example.com"
FIRST, LAST = "Zéphyrine", "Quellec"


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    yield db
    db.close()


@pytest.fixture
def hub_app(hub_data: Path):
    from app.hub.app import create_hub_app

    return create_hub_app(
        {"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data), "TESTING": True}
    )


def _place(db, data: Path, address: str, name: str) -> dict:
    """A guest order (as the web shop's checkout or a kiosk places one)."""
    sku = hdb.scalar(
        db,
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT 1",
        [LYON],
    )
    return create_order(
        db,
        LYON,
        name,
        address,
        [{"sku": sku, "qty": 1}],
        private_key=keys.current_private_key(data),
    )["order"]


def _csrf(http, path: str = "/shop/") -> str:
    return _CSRF.search(http.get(path).get_data(as_text=True)).group(1)


def _sign_in(http, hub, address: str) -> None:
    """The real sign-in: the address, then the code the e-mail carries."""
    done = http.post("/shop/compte/connexion", data={"email": address, "csrf_token": _csrf(http)})
    assert done.status_code == 302
    row = hdb.one(
        hub, "SELECT * FROM notifications WHERE kind = 'login_code' ORDER BY id DESC LIMIT 1"
    )
    body = order_people.mail_of(order_people.ring_of(hub), row)["body"]  # sealed at rest
    code = re.search(r"\b(\d{6})\b", body).group(1)
    done = http.post("/shop/compte/code", data={"code": code, "csrf_token": _csrf(http)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/shop/compte")


def _customer_id(hub, hub_data: Path, address: str) -> str:
    return customers.find_by_email(hub, KeyRing.open(hub_data), address)["id"]


def _set_names(hub, hub_data: Path, customer_id: str) -> None:
    ring = KeyRing.open(hub_data)
    with hdb.write(hub):
        hdb.execute(
            hub,
            "UPDATE customers SET first_name_enc = ?, last_name_enc = ? WHERE id = ?",
            [
                ring.encrypt(FIRST, "customers.first_name"),
                ring.encrypt(LAST, "customers.last_name"),
                customer_id,
            ],
        )


def test_mes_donnees_and_the_json_export_hold_my_data_and_nobody_elses(hub_app, hub, hub_data):
    mine = _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    theirs = _place(hub, hub_data, OTHER, "Bruno Autre")
    other = hub_app.test_client()
    _sign_in(other, hub, OTHER)
    http = hub_app.test_client()
    assert http.get("/shop/compte/donnees.json").status_code == 302  # signed out: nothing
    _sign_in(http, hub, LEA)
    me = _customer_id(hub, hub_data, LEA)
    _set_names(hub, hub_data, me)
    card = cards.issue_card(hub, me)
    with hdb.write(hub):  # a consent given, then another customer's
        for cid, row_id in ((me, "cl-mine"), (_customer_id(hub, hub_data, OTHER), "cl-theirs")):
            hdb.insert(
                hub,
                "customer_consent_log",
                {
                    "id": row_id,
                    "customer_id": cid,
                    "given": 1,
                    "at": "2026-12-01T10:00:00Z",
                    "channel": "web",
                },
            )

    page = http.get("/shop/compte/donnees", headers={"Accept-Language": "fr"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert LEA in html and mine["number"] in html and FIRST in html
    assert OTHER not in html and theirs["number"] not in html
    assert "style=" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert f"1{NBSP}commande" in html or "1 commande" in html

    got = http.get("/shop/compte/donnees.json")
    assert got.status_code == 200 and got.mimetype == "application/json"
    assert got.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(
        r'attachment; filename="mes-donnees-\d{4}-\d{2}-\d{2}\.json"',
        got.headers["Content-Disposition"],
    )
    data = json.loads(got.get_data(as_text=True))
    assert data["account"]["id"] == me and data["account"]["email"] == LEA
    assert (data["account"]["first_name"], data["account"]["last_name"]) == (FIRST, LAST)
    assert [o["number"] for o in data["orders"]] == [mine["number"]]
    assert data["orders"][0]["lines"][0]["qty"] == 1
    assert [c["card_id"] for c in data["cards"]] == [card]
    assert data["consent"] == {"personal_offers": False, "given_at": None}
    kinds = {m["kind"] for m in data["messages"]}
    assert {"login_code", "placed"} <= kinds
    assert data["sessions"] and data["sessions"][0]["created_at"]
    assert [r["id"] for r in data["records"]["customer_consent_log"]] == ["cl-mine"]
    assert "loyalty_ledger" in data["records"]  # every table keyed by the customer
    text = got.get_data(as_text=True).lower()
    for foreign in (OTHER, "bruno", theirs["number"].lower(), theirs["id"].lower()):
        assert foreign not in text


def test_a_corrected_name_is_stored_sealed_and_bad_names_are_a_clear_400(hub_app, hub, hub_data):
    http = hub_app.test_client()
    _sign_in(http, hub, LEA)
    me = _customer_id(hub, hub_data, LEA)
    csrf = _csrf(http, "/shop/compte/donnees")
    done = http.post(
        "/shop/compte/donnees/nom",
        data={"first_name": f"  {FIRST} ", "last_name": LAST, "csrf_token": csrf},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/shop/compte/donnees")
    row = hdb.one(hub, "SELECT * FROM customers WHERE id = ?", [me])
    for column in ("first_name_enc", "last_name_enc"):
        assert FIRST not in row[column] and LAST not in row[column]
    ring = KeyRing.open(hub_data)
    assert ring.decrypt(row["first_name_enc"], "customers.first_name") == FIRST
    assert ring.decrypt(row["last_name_enc"], "customers.last_name") == LAST

    for first, last, says in (
        ("x" * 81, LAST, "80"),
        (FIRST, "<script>", "&lt; &gt; { }"),
        ("Zé\x00phy", LAST, "&lt; &gt; { }"),
    ):
        bad = http.post(
            "/shop/compte/donnees/nom",
            data={"first_name": first, "last_name": last, "csrf_token": csrf},
            headers={"Accept-Language": "en"},
        )
        error = re.search(
            r'<p class="field-error" id="name-error" role="alert">([^<]*)</p>',
            bad.get_data(as_text=True),
        )
        assert bad.status_code == 400 and error and says in error.group(1)
    assert http.post("/shop/compte/donnees/nom", data={"first_name": "A"}).status_code == 400
    still = hdb.one(hub, "SELECT first_name_enc FROM customers WHERE id = ?", [me])
    assert ring.decrypt(still["first_name_enc"], "customers.first_name") == FIRST


def _personal_traces(hub, needles: list[str]) -> list[tuple]:
    """Every text value of every hub table holding one of ``needles`` (lower case)."""
    found = []
    for table, columns in hdb.table_columns(hub).items():
        for row in hdb.rows(hub, f"SELECT * FROM {table}"):  # noqa: S608 (table names)
            for column in columns:
                value = row[column]
                if isinstance(value, str) and any(n in value.lower() for n in needles):
                    found.append((table, column, value[:80]))
    return found


def test_deleting_my_account_signs_me_out_and_leaves_no_personal_data(hub_app, hub, hub_data):
    order = _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    http = hub_app.test_client()
    _sign_in(http, hub, LEA)
    me = _customer_id(hub, hub_data, LEA)
    _set_names(hub, hub_data, me)
    card = cards.issue_card(hub, me)
    needles = [LEA, FIRST.lower(), json.dumps(FIRST)[1:-1].lower(), LAST.lower()]
    assert _personal_traces(hub, needles)  # the search finds them while they are there

    confirm = http.get("/shop/compte/supprimer", headers={"Accept-Language": "fr"})
    assert confirm.status_code == 200 and "Supprimer mon compte" in confirm.get_data(as_text=True)
    csrf = _CSRF.search(confirm.get_data(as_text=True)).group(1)
    assert http.post("/shop/compte/supprimer", data={"confirm": "yes"}).status_code == 400
    unticked = http.post("/shop/compte/supprimer", data={"csrf_token": csrf})
    assert unticked.status_code == 400 and 'role="alert"' in unticked.get_data(as_text=True)
    assert hdb.one(hub, "SELECT id FROM customers WHERE id = ?", [me]) is not None

    done = http.post("/shop/compte/supprimer", data={"confirm": "yes", "csrf_token": csrf})
    assert done.status_code == 303 and done.headers["Location"].endswith("/shop/compte/connexion")
    assert http.get("/shop/compte").status_code == 302  # signed out
    assert http.get("/shop/compte/donnees.json").status_code == 302
    assert hdb.one(hub, "SELECT id FROM customers WHERE id = ?", [me]) is None
    assert _personal_traces(hub, needles) == []
    kept = hdb.one(hub, "SELECT * FROM orders WHERE id = ?", [order["id"]])
    assert kept["customer_id"] is None and kept["customer_name"] == ""
    assert hdb.scalar(hub, "SELECT count(*) FROM order_lines WHERE order_id = ?", [order["id"]])
    [told] = hdb.rows(hub, "SELECT key, data FROM changes WHERE kind = 'customer_erased'")
    assert told["key"] == me
    assert json.loads(told["data"]) == {
        "customer_id": me,
        "card_ids": [card],
        "order_ids": [order["id"]],
    }


def test_a_store_forgets_an_erased_customers_card_at_its_next_sync(
    hub_factory, hub_data, hub, synced_store
):
    ring = KeyRing.open(hub_data)
    gone, _ = customers.find_or_create(hub, ring, LEA, FIRST, LAST)
    kept, _ = customers.find_or_create(hub, ring, OTHER, "Bruno", "Autre")
    gone_card, kept_card = cards.issue_card(hub, gone["id"]), cards.issue_card(hub, kept["id"])
    order = _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    customers.claim_order(hub, gone["id"], order["id"])
    # The hub's card feed tells Lyon about both cards (app/hub/domain/customer_feed.py).
    with hdb.write(hub):
        customer_feed.publish_card(hub, ring, gone["id"], LYON)
        customer_feed.publish_card(hub, ring, kept["id"], LYON)
    server = hub_factory(hub_data)
    env = store_env(server.url, hub_data)
    assert run_kiosk("sync", "--data", str(synced_store), "--once", env=env).returncode == 0
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        synced = store.execute("SELECT card_id FROM customer_cards ORDER BY card_id").fetchall()
        assert synced == sorted([(gone_card,), (kept_card,)])
        copy = store.execute(
            "SELECT customer_name, customer_email FROM orders WHERE id = ?", [order["id"]]
        ).fetchone()
        assert copy == (FIRST, "")  # the store's copy of the order: her first name only
    finally:
        store.close()

    assert erasure.erase_customer(hub, ring, gone["id"]) is not None
    # As the API sends it (docs/openapi.yaml): ids only.
    lyon = client.HubClient(server.url, LYON, store_secrets(hub_data)[LYON])
    seq = hdb.scalar(hub, "SELECT seq FROM changes WHERE kind = 'customer_erased'")
    page = lyon.get_changes(str(seq - 1), limit=10)
    validate(page, "ChangesPage")
    assert [c["data"] for c in page["changes"] if c["kind"] == "customer_erased"] == [
        {"customer_id": gone["id"], "card_ids": [gone_card], "order_ids": [order["id"]]}
    ]
    done = run_kiosk("sync", "--data", str(synced_store), "--once", env=env)
    assert done.returncode == 0, done.stderr
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        held = store.execute("SELECT card_id, customer_id FROM customer_cards").fetchall()
        copy = store.execute(
            "SELECT customer_name, customer_key, customer_email, customer_initials, number "
            "FROM orders WHERE id = ?",
            [order["id"]],
        ).fetchone()
        lines = store.execute(
            "SELECT count(*) FROM order_lines WHERE order_id = ?", [order["id"]]
        ).fetchone()[0]
    finally:
        store.close()
    assert held == [(kept_card, kept["id"])]
    assert copy == ("", "", "", "", order["number"]) and lines == 1  # detached, amounts kept


def test_head_office_answers_a_request_by_e_mail_journaled_by_id_only(hub_factory, hub_data, hub):
    from .hq_helpers import csrf_token, logged_in, make_user

    ring = KeyRing.open(hub_data)
    customer, _ = customers.find_or_create(hub, ring, LEA, FIRST, LAST)
    order = _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    server = hub_factory(hub_data)
    base = server.url + "/hq/clients"
    marketing = logged_in(server.url, make_user(hub_data, "marketing"))
    assert marketing.get(base, timeout=10).status_code == 403
    admin = logged_in(server.url, make_user(hub_data, "admin"))
    token = csrf_token(admin, base)

    bad = admin.post(base, data={"email": "pas une adresse", "csrf_token": token}, timeout=10)
    assert bad.status_code == 400 and "adresse e-mail valide" in bad.text
    unknown = admin.post(base, data={"email": OTHER, "csrf_token": token}, timeout=10)
    assert unknown.status_code == 404 and "Aucun compte client" in unknown.text
    found = admin.post(base, data={"email": LEA.upper(), "csrf_token": token}, timeout=10)
    assert found.status_code == 200 and customer["id"] in found.text
    assert found.headers["Cache-Control"] == "no-store"

    export = admin.post(f"{base}/{customer['id']}/export", data={"csrf_token": token}, timeout=10)
    assert export.status_code == 200 and export.headers["Cache-Control"] == "no-store"
    assert export.headers["Content-Disposition"].startswith("attachment;")
    held = export.json()
    assert held["account"]["email"] == LEA
    assert [o["number"] for o in held["orders"]] == [order["number"]]

    erase = f"{base}/{customer['id']}/effacer"
    unticked = admin.post(erase, data={"csrf_token": token}, timeout=10, allow_redirects=False)
    assert unticked.status_code == 400 and "Cochez la case" in unticked.text
    assert admin.post(erase, data={"confirm": "yes"}, timeout=10).status_code == 400  # no CSRF
    done = admin.post(
        erase, data={"confirm": "yes", "csrf_token": token}, timeout=10, allow_redirects=False
    )
    assert done.status_code == 303
    assert hdb.one(hub, "SELECT id FROM customers WHERE id = ?", [customer["id"]]) is None
    gone = admin.post(erase, data={"confirm": "yes", "csrf_token": token}, timeout=10)
    assert gone.status_code == 404

    journal = hdb.rows(
        hub,
        "SELECT action, detail FROM hq_audit WHERE action LIKE 'customer.%' ORDER BY id",
    )
    assert [j["action"] for j in journal] == [
        "customer.looked_up",
        "customer.looked_up",
        "customer.exported",
        "customer.erased",
    ]
    assert json.loads(journal[0]["detail"]) == {"customer_id": None}
    assert json.loads(journal[1]["detail"]) == {"customer_id": customer["id"]}
    assert json.loads(journal[3]["detail"])["customer_id"] == customer["id"]
    text = json.dumps(journal).lower()
    assert LEA not in text and OTHER not in text and "zéphyrine" not in text


def test_mes_donnees_on_a_phone(hub_factory, hub_data, hub, browser):
    from axe_playwright_python.sync_playwright import Axe

    from .conftest import screenshot

    def axe(page, label: str) -> None:
        results = Axe().run(page)
        assert results.response["passes"], label
        serious = [
            f"{v['id']}: {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], label

    _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    server = hub_factory(hub_data)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "status of 400" not in m.text else None
        ),
    )
    page.goto(server.url + "/shop/compte/connexion")
    page.fill("#email", LEA)
    page.click("#send-code")
    page.wait_for_url("**/shop/compte/code")
    row = hdb.one(
        hub, "SELECT * FROM notifications WHERE kind = 'login_code' ORDER BY id DESC LIMIT 1"
    )
    body = order_people.mail_of(order_people.ring_of(hub), row)["body"]  # sealed at rest
    page.fill("#code", re.search(r"\b(\d{6})\b", body).group(1))
    page.click("#check-code")
    page.wait_for_url("**/shop/compte")
    page.click("#my-data")
    page.wait_for_url("**/shop/compte/donnees")
    page.fill("#first_name", FIRST)
    page.fill("#last_name", LAST)
    page.click("#name-save")
    page.wait_for_url("**/shop/compte/donnees")
    assert page.input_value("#first_name") == FIRST
    screenshot(page, "account-data-phone")
    axe(page, "mes données")
    for control in page.locator("main input:visible, main button:visible, main .btn").all():
        assert control.bounding_box()["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#data-delete").scroll_into_view_if_needed()
    screenshot(page, "account-data-phone-end")
    page.fill("#first_name", "<b>")
    page.click("#name-save")
    assert page.locator("#name-error").is_visible()
    screenshot(page, "account-data-phone-error")
    page.goto(server.url + "/shop/compte/supprimer")
    screenshot(page, "account-data-delete-phone")
    axe(page, "supprimer")
    page.check("#confirm")
    page.click("#delete-account")
    page.wait_for_url("**/shop/compte/connexion")
    assert "supprimé" in page.inner_text("main")
    assert errors == []
    context.close()


def test_the_store_applier_forgets_cards_and_blanks_orders_by_ids_alone(store_db):
    from app.store.sync.feed import apply_page

    store_db.execute(
        "INSERT INTO orders (id, number, status, customer_name, customer_key, customer_email, "
        "customer_initials, placed_at, promised_at, updated_at) "
        "VALUES ('o-1', 'CC-1', 'collected', ?, 'zephyrine quellec', ?, 'ZQ', ?, ?, ?)",
        [f"{FIRST} {LAST}", LEA, "2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "x"],
    )
    customer_cards.save_card(store_db, "card-old", "cus-1", FIRST)  # a renewed card
    customer_cards.save_card(store_db, "card-new", "cus-1", FIRST)
    customer_cards.save_card(store_db, "card-other", "cus-2", "Bruno")
    erased = {
        "seq": 10**9,
        "kind": "customer_erased",
        "key": "cus-1",
        "data": {"customer_id": "cus-1", "card_ids": ["card-new"], "order_ids": ["o-1"]},
    }
    counts = apply_page(store_db, {"changes": [erased], "cursor": 10**9, "remaining": 0}, LYON)
    assert counts["failed"] == 0 and counts["applied"] >= 3
    cards_left = store_db.execute("SELECT card_id FROM customer_cards").fetchall()
    assert cards_left == [("card-other",)]
    row = store_db.execute(
        "SELECT customer_name, customer_key, customer_email, customer_initials, status "
        "FROM orders WHERE id = 'o-1'"
    ).fetchone()
    assert row == ("", "", "", "", "collected")
    # A malformed change is logged and skipped, never a failed page.
    bad = {**erased, "data": {"card_ids": "x"}}
    assert (
        apply_page(store_db, {"changes": [bad], "cursor": 10**9, "remaining": 0}, LYON)["failed"]
        == 1
    )


def test_mes_donnees_in_english_and_in_french(hub_app, hub, hub_data):
    _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    http = hub_app.test_client()
    _sign_in(http, hub, LEA)
    french = http.get("/shop/compte/donnees").get_data(as_text=True)
    assert '<html lang="fr">' in french and "Mes données" in french
    assert "1 commande, en ligne ou en magasin." in french
    assert f"Je comprends{NBSP}:" not in french  # on the confirmation step only
    confirm = http.get("/shop/compte/supprimer").get_data(as_text=True)
    assert f"Je comprends{NBSP}: supprimer mon compte." in confirm
    http.post("/shop/langue", data={"lang": "en", "next": "/shop/", "csrf_token": _csrf(http)})
    english = http.get("/shop/compte/donnees").get_data(as_text=True)
    assert '<html lang="en">' in english and "My data" in english
    assert "1 order, online or in store." in english and "0 home deliveries." in english
    assert "Download my data (JSON)" in english
    bad = http.post(
        "/shop/compte/donnees/nom",
        data={"first_name": "x" * 81, "last_name": "", "csrf_token": _csrf(http)},
    )
    assert bad.status_code == 400 and "A name holds 80 characters at most." in bad.get_data(
        as_text=True
    )


def test_head_office_customers_page_screenshot(hub_factory, hub_data, hub, browser):
    from .conftest import screenshot
    from .hq_helpers import make_user

    customers.find_or_create(hub, KeyRing.open(hub_data), LEA, FIRST, LAST)
    _place(hub, hub_data, LEA, f"{FIRST} {LAST}")
    server = hub_factory(hub_data)
    admin = make_user(hub_data, "admin")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    page.goto(server.url + "/hq/login")
    page.fill("input[name=email]", admin["email"])
    page.fill("input[name=password]", admin["password"])
    page.click("button[type=submit]")
    page.click("text=Clients")
    page.wait_for_url("**/hq/clients")
    page.fill("#c-email", LEA)
    page.click("text=Trouver")
    page.wait_for_selector("#customer-found")
    screenshot(page, "hq-customers-found")
    assert LEA not in page.url
    context.close()
