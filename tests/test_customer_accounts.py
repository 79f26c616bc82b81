"""Customer accounts in the web shop (issue 14): sign-in with a one-time code sent by
e-mail, "Mon compte", sign-out, guest orders attached once the e-mail is proven. HTTP
against a real hub (both backends), the domain directly, and a phone in Chromium."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import socketserver
import threading
import time
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from app.core import clock
from app.hub import database as hdb
from app.hub import mailer
from app.hub.domain import customer_sessions, customers, keys, order_people
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing

from .conftest import screenshot
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, hub_db
from .test_hub_orders_http import _SMTPSink

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LEA = "lea.martin@example.com"
T0 = clock.parse_iso("2026-11-22T14:02:00Z")


class Customer:
    """A browser on the shop's account pages."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=15, **kw)

    def post(self, path: str, data: dict, token: bool = True, **kw) -> requests.Response:
        if token:
            page = self.get("/shop/")
            data = {**data, "csrf_token": _CSRF.search(page.text).group(1)}
        return self.http.post(self.base + path, data=data, timeout=15, **kw)

    def ask_code(self, address: str = LEA) -> requests.Response:
        return self.post("/shop/compte/connexion", {"email": address})

    def give_code(self, code: str) -> requests.Response:
        return self.post("/shop/compte/code", {"code": code})


def _place(
    data: Path, address: str, store_id: str = LYON, name: str = "Léa Martin", days_ago: int = 0
) -> dict:
    """An order placed as a guest (as the web shop's checkout or a kiosk does)."""
    db = hub_db(data)
    try:
        sku = hdb.scalar(
            db,
            "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT 1",
            [store_id],
        )
        return create_order(
            db,
            store_id,
            name,
            address,
            [{"sku": sku, "qty": 1}],
            private_key=keys.current_private_key(data),
            now=clock.utcnow() - timedelta(days=days_ago),
        )["order"]
    finally:
        db.close()


def _last_code(data: Path) -> str:
    """The newest sign-in code recorded for the mailer (what the e-mail says)."""
    db = hub_db(data)
    try:
        row = hdb.one(
            db, "SELECT * FROM notifications WHERE kind = 'login_code' ORDER BY id DESC LIMIT 1"
        )
        body = order_people.mail_of(order_people.ring_of(db), row)["body"]  # sealed at rest
    finally:
        db.close()
    return re.search(r"\b(\d{6})\b", body).group(1)


def _owner(data: Path, order_id: str) -> str | None:
    db = hub_db(data)
    try:
        return hdb.scalar(db, "SELECT customer_id FROM orders WHERE id = ?", [order_id])
    finally:
        db.close()


@pytest.fixture
def smtp_sink():
    """A local SMTP server keeping every message (tests/test_hub_orders_http.py's)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPSink)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _cookie_session(http: requests.Session) -> dict:
    """What Flask's signed (not encrypted) session cookie says: anyone can read it."""
    raw = http.cookies["kiosk_hub_session"]
    packed = raw[1:] if raw.startswith(".") else raw
    payload = base64.urlsafe_b64decode(packed.split(".")[0] + "==")
    return json.loads(zlib.decompress(payload) if raw.startswith(".") else payload)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --------------------------------------------------------------------------- end to end


def test_sign_in_by_e_mail_code_end_to_end_attaches_guest_orders_after_proof(
    hub_factory, hub_data, smtp_sink
):
    mine = _place(hub_data, LEA, days_ago=1)
    older = _place(hub_data, "LEA.martin@example.com ", store_id=PARIS, days_ago=4)
    other = _place(hub_data, "chloe@example.com", name="Chloé Dubois")
    hub = hub_factory(
        hub_data,
        {
            "KIOSK_HUB_SMTP_HOST": "127.0.0.1",
            "KIOSK_HUB_SMTP_PORT": str(smtp_sink.server_address[1]),
        },
    )
    shopper = Customer(hub.url)
    # Not signed in: the account sends to the sign-in page.
    first = shopper.get("/shop/compte", allow_redirects=False)
    assert first.status_code == 302 and first.headers["Location"].endswith("/shop/compte/connexion")
    page = shopper.get("/shop/compte/connexion")
    assert page.status_code == 200 and "Connectez-vous" in page.text and "csrf_token" in page.text

    asked = shopper.ask_code(" Lea.Martin@Example.com ")
    assert asked.status_code == 200 and asked.url.endswith("/shop/compte/code")
    assert "code à 6\u00a0chiffres" in asked.text

    # The code leaves by the mailer, in French then English; nobody is created yet.
    def code_mails() -> list:
        mails = [
            email.message_from_bytes(m, policy=email.policy.default) for m in smtp_sink.messages
        ]
        return [m for m in mails if "code de connexion" in m["Subject"]]

    deadline = time.monotonic() + 15
    while not code_mails() and time.monotonic() < deadline:
        time.sleep(0.1)
    [mail] = code_mails()
    assert mail["To"] == "Lea.Martin@Example.com"
    code = re.search(r"code de connexion\u00a0: (\d{6})", mail["Subject"]).group(1)
    assert code in mail.get_body(("plain",)).get_content()
    db = hub_db(hub_data)
    assert hdb.scalar(db, "SELECT count(*) FROM customers") == 0
    db.close()
    assert _owner(hub_data, mine["id"]) is None  # NOT attached before the proof
    # The browser's cookie names the pending code's row, never the address or the code.
    pending = _cookie_session(shopper.http)
    assert "@" not in json.dumps(pending) and code not in json.dumps(pending)

    wrong = shopper.give_code(_wrong(code))
    assert wrong.status_code == 400 and "4\u00a0essais restants" in wrong.text
    assert _owner(hub_data, mine["id"]) is None

    done = shopper.give_code(code)
    assert done.status_code == 200 and done.url.endswith("/shop/compte"), done.text[:300]
    assert "<h1>Mon compte</h1>" in done.text and "Vous êtes connecté" in done.text
    # Both guest orders with that address, newest first, linked to their pages; not Chloé's.
    assert done.text.index(mine["number"]) < done.text.index(older["number"])
    assert other["number"] not in done.text
    for order in (mine, older):
        assert _owner(hub_data, order["id"]) is not None
        assert re.search(rf'href="/orders/{order["number"]}\?k=[\w-]+"', done.text)
    assert _owner(hub_data, other["id"]) is None
    signed = _cookie_session(shopper.http)
    assert "login_code" not in signed and "@" not in json.dumps(signed)
    opened = shopper.get(re.search(r'href="(/orders/[^"]+)"', done.text).group(1))
    assert opened.status_code == 200

    db = hub_db(hub_data)
    [row] = hdb.rows(db, "SELECT * FROM customers")
    codes = hdb.rows(db, "SELECT * FROM customer_login_codes")
    db.close()
    assert _owner(hub_data, mine["id"]) == row["id"]
    # No plain e-mail in the customers table, nor the code in its table.
    for value in [*row.values(), *(v for c in codes for v in c.values())]:
        assert "@" not in str(value) and code not in str(value)
    ring = KeyRing.open(hub_data)
    assert customers.customer_email(ring, row) == "Lea.Martin@Example.com"
    assert row["email_idx"] == customers.email_index(ring, LEA)  # found again by any case
    assert codes[0]["used_at"] is not None and codes[0]["attempts"] == 2
    # The code is spent: giving it again is refused.
    again = Customer(hub.url)
    assert again.give_code(code).status_code == 400
    assert 'id="sign-out"' not in again.get("/shop/compte").text

    # The hub's log names neither the address nor the code.
    hub.stop()
    log = hub.log.read_text(errors="replace").lower()
    assert LEA not in log and code not in log and "example.com" not in log


def test_account_pages_in_english(hub_server):
    shopper = Customer(hub_server.url)
    shopper.post("/shop/langue", {"lang": "en", "next": "/shop/compte/connexion"})
    page = shopper.get("/shop/compte/connexion")
    assert '<html lang="en">' in page.text and "Sign in to your account" in page.text
    wrong = shopper.ask_code("lea")
    assert "Give a valid e-mail address" in wrong.text
    shopper.ask_code()
    code = _last_code(hub_server.data)
    assert "1 attempt left" in [shopper.give_code(_wrong(code)) for _ in range(4)][-1].text
    done = shopper.give_code(code)
    assert "My account" in done.text and "0 orders, online or in store." in done.text


def test_an_order_placed_while_signed_in_joins_the_account(hub_server):
    shopper = Customer(hub_server.url)
    shopper.ask_code()
    shopper.give_code(_last_code(hub_server.data))
    db = hub_db(hub_server.data)
    with hdb.write(db):
        hdb.execute(db, "UPDATE customers SET last_contact_at = '2026-01-01T00:00:00Z'")
    sku = hdb.scalar(
        db, "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku", [LYON]
    )
    db.close()
    shopper.post("/shop/panier/ajouter", {"sku": sku, "qty": "1"})
    details = {"magasin": LYON, "name": "Léa", "email": "lea.work@example.com"}
    placed = shopper.post("/shop/commande", details)
    number = re.search(r"CC-\d{8}", placed.url).group(0)
    db = hub_db(hub_server.data)
    customer = hdb.one(db, "SELECT id, last_contact_at FROM customers")
    owner = hdb.scalar(db, "SELECT customer_id FROM orders WHERE number = ?", [number])
    db.close()
    assert owner == customer["id"] and customer["last_contact_at"] > "2026-01-01T00:00:00Z"
    assert number in shopper.get("/shop/compte").text
    # Placed as a guest (nobody signed in): nobody's until the address is proven.
    guest = Customer(hub_server.url)
    guest.post("/shop/panier/ajouter", {"sku": sku, "qty": "1"})
    number = re.search(r"CC-\d{8}", guest.post("/shop/commande", details).url).group(0)
    db = hub_db(hub_server.data)
    assert hdb.scalar(db, "SELECT customer_id FROM orders WHERE number = ?", [number]) is None
    db.close()


def test_a_second_sign_in_finds_the_same_customer(hub_server):
    for _ in range(2):
        shopper = Customer(hub_server.url)
        shopper.ask_code(LEA.upper())
        assert shopper.give_code(_last_code(hub_server.data)).url.endswith("/shop/compte")
    db = hub_db(hub_server.data)
    assert hdb.scalar(db, "SELECT count(*) FROM customers") == 1
    assert hdb.scalar(db, "SELECT count(*) FROM customer_sessions") == 2
    db.close()


# --------------------------------------------------------------------------- refusals


def test_attempts_are_limited_per_code(hub_server):
    shopper = Customer(hub_server.url)
    shopper.ask_code()
    code = _last_code(hub_server.data)
    for left in (4, 3, 2, 1):
        wrong = shopper.give_code(_wrong(code))
        assert wrong.status_code == 400
        expected = f"{left}\u00a0essai restant" if left == 1 else f"{left}\u00a0essais restants"
        assert expected in wrong.text
    last = shopper.give_code(_wrong(code))
    assert last.status_code == 400 and "Trop d’essais" in last.text
    assert 'id="new-code"' in last.text
    # The right code no longer opens anything: the account stays closed.
    late = shopper.give_code(code)
    assert late.status_code == 400 and 'id="sign-out"' not in late.text
    assert shopper.get("/shop/compte", allow_redirects=False).status_code == 302
    db = hub_db(hub_server.data)
    row = hdb.one(db, "SELECT attempts, used_at FROM customer_login_codes")
    assert row == {"attempts": 5, "used_at": None}
    assert hdb.scalar(db, "SELECT count(*) FROM customers") == 0
    db.close()


def test_the_domain_refuses_a_code_past_its_attempts_even_if_right(hub_data):
    db = hub_db(hub_data)
    ring = KeyRing.open(hub_data)
    code_id = customers.request_code(db, ring, LEA, "10.0.0.1", now=T0)
    code = _last_code(hub_data)
    for _ in range(customers.MAX_ATTEMPTS):
        with pytest.raises(customers.CustomerError):
            customers.verify_code(db, ring, code_id, _wrong(code), now=T0)
    with pytest.raises(customers.CustomerError) as exc:
        customers.verify_code(db, ring, code_id, code, now=T0)
    assert exc.value.code == "too_many_attempts"
    # A new code voids the old one; the new one works once.
    new_id = customers.request_code(db, ring, LEA, "10.0.0.1", now=T0)
    with pytest.raises(customers.CustomerError) as exc:
        customers.verify_code(db, ring, code_id, code, now=T0)
    assert exc.value.code == "used"
    done = customers.verify_code(db, ring, new_id, _last_code(hub_data), now=T0)
    opened = customer_sessions.session_customer(db, done.session_token, now=T0)
    assert opened["id"] == done.customer_id
    with pytest.raises(customers.CustomerError) as exc:
        customers.verify_code(db, ring, new_id, _last_code(hub_data), now=T0)
    assert exc.value.code == "used"
    # A session unused for too long ends on its own.
    idle = T0 + customer_sessions.SESSION_IDLE + timedelta(seconds=1)
    assert customer_sessions.session_customer(db, done.session_token, now=idle) is None
    db.close()


def test_an_expired_code_is_refused(hub_factory, hub_data):
    start = hub_factory(hub_data, {"KIOSK_FAKE_NOW": clock.iso(T0)})
    shopper = Customer(start.url)
    shopper.ask_code()
    code = _last_code(hub_data)
    start.stop()
    # Ten minutes later (the clock frozen there): refused, and a new code is offered.
    later = hub_factory(hub_data, {"KIOSK_FAKE_NOW": clock.iso(T0 + timedelta(minutes=10))})
    shopper.base = later.url
    expired = shopper.give_code(code)
    assert expired.status_code == 400 and "Ce code a expiré" in expired.text
    assert 'id="new-code"' in expired.text
    assert shopper.get("/shop/compte", allow_redirects=False).status_code == 302
    # A fresh code at that time works: it is the clock, not the code.
    shopper.ask_code()
    assert shopper.give_code(_last_code(hub_data)).url.endswith("/shop/compte")
    db = hub_db(hub_data)
    contact = hdb.scalar(db, "SELECT last_contact_at FROM customers")
    db.close()
    assert contact == clock.iso(T0 + timedelta(minutes=10))  # touched at sign-in


def test_codes_are_rate_limited_per_address_and_per_client(hub_server):
    shopper = Customer(hub_server.url)
    for _ in range(customers.EMAIL_LIMIT):
        assert shopper.ask_code().url.endswith("/shop/compte/code")
    refused = shopper.ask_code()
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Trop de codes demandés" in refused.text
    # Another address from the same client still may, up to the client's limit.
    for i in range(customers.CLIENT_LIMIT - customers.EMAIL_LIMIT):
        assert shopper.ask_code(f"client{i}@example.com").status_code == 200
    assert shopper.ask_code("someone.else@example.com").status_code == 429
    db = hub_db(hub_server.data)
    assert hdb.scalar(db, "SELECT count(*) FROM customer_login_codes") == customers.CLIENT_LIMIT
    assert hdb.scalar(db, "SELECT count(*) FROM notifications") == customers.CLIENT_LIMIT
    db.close()


@pytest.mark.parametrize(
    "address",
    [
        "lea",
        "",
        "@example.com",
        "lea@",
        "a@b",
        "lé a@example.com",
        "x\x00@example.com",
        "a" * 10240,
    ],
)
def test_garbage_addresses_are_a_friendly_400(hub_server, address):
    shopper = Customer(hub_server.url)
    resp = shopper.ask_code(address)
    assert resp.status_code == 400 and 'id="email-error"' in resp.text
    assert "adresse e-mail valide" in resp.text


def test_garbage_codes_and_missing_steps_never_fail(hub_server):
    shopper = Customer(hub_server.url)
    # No code asked yet: the code page sends back to step 1; a code posted is refused.
    assert shopper.get("/shop/compte/code").url.endswith("/shop/compte/connexion")
    assert shopper.give_code("123456").status_code == 400
    shopper.ask_code()
    for garbage in ("", "abc", "1" * 10240, "12 34 56\x00", "é" * 50):
        resp = shopper.give_code(garbage)
        assert resp.status_code == 400, garbage[:20]
    assert shopper.post("/shop/compte/code", {"code": "1"}, token=False).status_code == 400
    big = shopper.post("/shop/compte/connexion", {"email": LEA, "x": "y" * 300_000})
    assert big.status_code == 413
    out = shopper.post("/shop/compte/deconnexion", {})  # signed out already: fine
    assert out.status_code == 200 and out.url.endswith("/shop/compte/connexion")


def test_sign_out_revokes_the_session_at_the_hub(hub_server):
    shopper = Customer(hub_server.url)
    shopper.ask_code()
    assert shopper.give_code(_last_code(hub_server.data)).url.endswith("/shop/compte")
    db = hub_db(hub_server.data)
    sku = hdb.scalar(db, "SELECT sku FROM stock_levels WHERE qty >= 3 ORDER BY sku LIMIT 1")
    db.close()
    shopper.post("/shop/panier/ajouter", {"sku": sku, "qty": "1"})
    assert "cart" in _cookie_session(shopper.http)
    kept = requests.utils.dict_from_cookiejar(shopper.http.cookies)  # a copy of the cookie
    out = shopper.post("/shop/compte/deconnexion", {})
    assert out.url.endswith("/shop/compte/connexion") and "Vous êtes déconnecté" in out.text
    # Nothing of this shopper is left for the next person at a shared device: no cart,
    # no order keys, no code, no session (the language choice may stay).
    left = set(_cookie_session(shopper.http)) - {"lang", "_flashes", "csrf_token"}
    assert not left, left
    assert shopper.get("/shop/compte", allow_redirects=False).status_code == 302
    replay = Customer(hub_server.url)
    replay.http.cookies.update(kept)
    resp = replay.get("/shop/compte", allow_redirects=False)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/shop/compte/connexion")
    db = hub_db(hub_server.data)
    assert hdb.scalar(db, "SELECT revoked_at FROM customer_sessions") is not None
    db.close()


def test_the_mailer_sends_a_sign_in_code(hub_data, smtp_sink):
    db = hub_db(hub_data)
    customers.request_code(db, KeyRing.open(hub_data), LEA, "10.0.0.1")
    settings = mailer.smtp_settings(
        {
            "KIOSK_HUB_SMTP_HOST": "127.0.0.1",
            "KIOSK_HUB_SMTP_PORT": str(smtp_sink.server_address[1]),
        }
    )
    code = _last_code(hub_data)  # what the row said before it was mailed
    assert mailer.send_pending(db, settings) == 1
    [raw] = smtp_sink.messages
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["To"] == LEA and code in mail["Subject"]
    # Mailed: the code is no longer readable in the database (its hash only).
    left = hdb.rows(
        db, "SELECT subject, body, body_enc FROM notifications WHERE kind = 'login_code'"
    )
    assert left == [{"subject": "", "body": "", "body_enc": None}]  # not even sealed
    db.close()
    assert "Your sign-in code" in mail.get_body(("plain",)).get_content()


# --------------------------------------------------------------------------- on a phone


def test_account_pages_on_a_phone(hub_server, browser):
    from axe_playwright_python.sync_playwright import Axe

    problems: dict[str, list[str]] = {}

    def axe(label: str) -> None:
        results = Axe().run(page)
        assert results.response["passes"], label  # axe really looked at the page
        found = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if found:
            problems[label] = found

    _place(hub_server.data, LEA)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    # The wrong code's answer is a 400 on purpose; any other console error is a fault.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "status of 400" not in m.text else None
        ),
    )
    page.goto(hub_server.url + "/shop/")
    page.click("#account-link")
    page.wait_for_url("**/shop/compte/connexion")
    screenshot(page, "account-signin-phone")
    axe("sign-in")
    for control in page.locator("main input:visible, main button:visible").all():
        assert control.bounding_box()["height"] >= 44
    page.fill("#email", LEA)
    page.click("#send-code")
    page.wait_for_url("**/shop/compte/code")
    page.fill("#code", _wrong(_last_code(hub_server.data)))
    page.click("#check-code")
    assert page.locator("#code-error").is_visible()
    screenshot(page, "account-code-phone")
    axe("code-wrong")
    page.fill("#code", _last_code(hub_server.data))
    page.click("#check-code")
    page.wait_for_url("**/shop/compte")
    assert page.locator(".account-orders li").count() == 1
    screenshot(page, "account-phone")
    assert page.locator("#my-card").get_attribute("href") == "/shop/compte/carte"
    axe("account")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#sign-out")
    page.wait_for_url("**/shop/compte/connexion")
    assert errors == [] and problems == {}
    context.close()
