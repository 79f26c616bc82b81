"""The click-and-collect counter over real HTTP (a ``kiosk serve`` process): access
control, CSRF, roles, and bad input at the counter. Every refusal must say what
happened (a 4xx with a sentence, never a 500) and change nothing."""

from __future__ import annotations

import io
import re
import threading
import uuid
from pathlib import Path

import pytest
import requests
from PIL import Image

from app.core import db as dbmod
from app.store.domain import tickets
from app.store.domain.stock import self_store_id

from .counter_client import _CSRF, Counter, _text
from .order_helpers import (
    PICKUP_CODE,
    add_order,
    code_hash,
    install_hub_key,
    pick_variants,
    pickup_token,
)

OTHER_CODE = "731902"


def _db(data: Path):
    return dbmod.connect(dbmod.db_path(data))


def _state(data: Path) -> dict:
    """Everything a counter action may change (the audit log aside: refusals are logged)."""
    db = _db(data)
    try:
        q = {
            "orders": "SELECT * FROM orders ORDER BY id",
            "lines": "SELECT * FROM order_lines ORDER BY order_id, line",
            "outbox": "SELECT id, type, payload FROM outbox ORDER BY rowid",
            "handovers": "SELECT * FROM handovers ORDER BY id",
            "returns": "SELECT * FROM returns ORDER BY id",
            "movements": "SELECT id, sku, delta FROM stock_movements ORDER BY id",
        }
        return {k: db.execute(sql).fetchall() for k, sql in q.items()}
    finally:
        db.close()


@pytest.fixture
def counter_store(store_data, server_factory):
    """A store with orders in every state and a real server; (server, orders)."""
    db = _db(store_data)
    install_hub_key(db)
    v = pick_variants(db, 6)
    made = {
        "placed": add_order(db, variants=v[:2], qtys=[2, 1]),
        "ready": add_order(
            db,
            variants=v[2:4],
            qtys=[2, 1],
            status="ready",
            customer="Zoé Lefèvre",
            email="zoe@example.org",
        ),
        "other": add_order(
            db,
            variants=v[4:5],
            status="ready",
            customer="Hugo Bernard",
            code_hash_value=code_hash(OTHER_CODE),
        ),
        "collected": add_order(
            db,
            variants=v[5:6],
            qtys=[2],
            status="collected",
            customer="Inès Roux",
            email="ines@example.org",
        ),
    }
    made["store_id"] = self_store_id(db)
    made["spare_ean"] = v[5]["ean"]
    db.close()
    return server_factory(store_data), made


# --- Access ------------------------------------------------------------------------

GET_PAGES = [
    "/staff/orders",
    "/staff/orders?view=ready",
    "/staff/orders/scan?code=CC-00000000",
    "/staff/orders/{placed}",
    "/staff/orders/{placed}/prepare",
    "/staff/orders/{placed}/picking",
    "/staff/orders/{ready}/label.png",
    "/staff/orders/handover",
    "/staff/orders/{ready}/handover",
    "/staff/orders/{ready}/handovers/00000000-0000-0000-0000-000000000000",
    "/staff/orders/{ready}/handovers/00000000-0000-0000-0000-000000000000/receipt.pdf",
    "/staff/returns",
    "/staff/returns/scan?code=x",
    "/staff/returns/{collected}",
    "/staff/returns/no-order",
    "/staff/returns/done/00000000-0000-0000-0000-000000000000",
    "/staff/returns/done/00000000-0000-0000-0000-000000000000/receipt.png",
]
POSTS = [
    ("/staff/orders/{placed}/prepare/scan", {"code": "{ean}"}),
    ("/staff/orders/{placed}/lines/1/short", {}),
    ("/staff/orders/{placed}/ready", {"shelf_slot": "A1"}),
    ("/staff/orders/verify/code", {"number": "{ready_number}", "code": "000000"}),
    ("/staff/orders/{ready}/handover", {"override": "1", "override_reason": "x", "qty_1": "1"}),
    ("/staff/orders/{ready}/unlock", {}),
    ("/staff/returns", {"number": "{collected_number}", "who": "Inès"}),
    (
        "/staff/returns/{collected}",
        {"qty_1": "1", "cond_1": "resellable", "reason": "x", "refund": "store_credit"},
    ),
    (
        "/staff/returns/no-order",
        {
            "code": "{ean}",
            "qty": "1",
            "condition": "resellable",
            "reason": "x",
            "refund": "store_credit",
        },
    ),
]


def _fill(template: str, made: dict) -> str:
    return template.format(
        placed=made["placed"]["id"],
        ready=made["ready"]["id"],
        collected=made["collected"]["id"],
        ean=made["placed"]["lines"][0]["ean"],
        ready_number=made["ready"]["number"],
        collected_number=made["collected"]["number"],
    )


def test_every_counter_page_needs_a_staff_login(counter_store, store_data):
    server, made = counter_store
    anon = requests.Session()
    before = _state(store_data)
    for template in GET_PAGES:
        path = _fill(template, made)
        r = anon.get(server.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 302, path
        assert r.headers["Location"].startswith("/staff/login"), path
        assert "next=" in r.headers["Location"], path  # back to the page after login
        hx = anon.get(
            server.url + path, headers={"HX-Request": "true"}, timeout=10, allow_redirects=False
        )
        assert hx.status_code == 200 and hx.text == "", path
        assert hx.headers["HX-Redirect"].startswith("/staff/login"), path
    # A POST carrying a valid CSRF token (from the login page) but no login: to the login.
    token = _CSRF.search(anon.get(server.url + "/staff/login", timeout=10).text).group(1)
    for template, form in POSTS:
        path = _fill(template, made)
        data = {k: _fill(v, made) for k, v in form.items()} | {"csrf_token": token}
        r = anon.post(server.url + path, data=data, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login"), path
        hx = anon.post(
            server.url + path,
            data=data,
            headers={"HX-Request": "true"},
            allow_redirects=False,
            timeout=10,
        )
        assert hx.headers.get("HX-Redirect", "").startswith("/staff/login"), path
    assert _state(store_data) == before


def test_every_post_without_csrf_token_is_refused_and_changes_nothing(counter_store, store_data):
    server, made = counter_store
    staff = Counter(server.url, store_data, role="manager")  # allowed everything
    staff.verify_code(made["ready"]["number"])  # so a hand-over would otherwise go through
    staff.post("/staff/returns", {"number": made["collected"]["number"], "who": "Inès"})
    before = _state(store_data)
    for template, form in POSTS:
        path = _fill(template, made)
        data = {k: _fill(v, made) for k, v in form.items()}
        r = staff.post(path, data, csrf=False)
        assert r.status_code == 400, (path, r.status_code)
        # A stale form says so, and what to do.
        assert "Cette page a expiré" in _text(r), path
        wrong = staff.post(path, data | {"csrf_token": "forged"}, csrf=False)
        assert wrong.status_code == 400, path
    photo = io.BytesIO()
    tickets.render_qr(pickup_token(made["ready"]["id"], made["store_id"])).save(photo, "PNG")
    r = staff.http.post(
        server.url + "/staff/orders/verify/photo",
        files={"photo": ("qr.png", photo.getvalue(), "image/png")},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 400
    assert staff.post("/staff/sync/retry", csrf=False).status_code == 400
    assert _state(store_data) == before


def test_manager_only_actions_are_403_for_staff(counter_store, store_data):
    server, made = counter_store
    ready = made["ready"]
    staff = Counter(server.url, store_data)
    for _ in range(5):
        staff.verify_code(ready["number"], "000000")
    db = _db(store_data)
    assert db.execute("SELECT code_locked FROM orders WHERE id = ?", [ready["id"]]).fetchone()[0]
    db.close()
    before = _state(store_data)

    # Unlock a pickup-code lockout.
    page = staff.get(f"/staff/orders/{ready['id']}")
    assert "bloquée" in _text(page) and f"/{ready['id']}/unlock" not in page.text
    assert staff.post(f"/staff/orders/{ready['id']}/unlock").status_code == 403
    # A hand-over without verification (the override a manager may make).
    form = staff.get(f"/staff/orders/{ready['id']}/handover")
    assert "handover-form" not in form.text  # no form offered to staff without a check
    r = staff.post(
        f"/staff/orders/{ready['id']}/handover",
        {
            "override": "1",
            "override_reason": "known customer",
            "qty_1": "2",
            "qty_2": "1",
            "handover_id": str(uuid.uuid4()),
        },
    )
    assert r.status_code == 403 and "Vérifiez d'abord" in _text(r)
    # A return with no order found.
    assert staff.get("/staff/returns/no-order").status_code == 403
    r = staff.post(
        "/staff/returns/no-order",
        {
            "code": made["spare_ean"],
            "qty": "1",
            "condition": "resellable",
            "reason": "no receipt",
            "refund": "store_credit",
        },
    )
    assert r.status_code == 403
    assert "no-order" not in staff.get("/staff/returns").text  # not even offered
    assert _state(store_data) == before

    # The same three for a manager go through.
    manager = Counter(server.url, store_data, role="manager")
    assert manager.post(f"/staff/orders/{ready['id']}/unlock").status_code == 302
    r = manager.post(
        f"/staff/orders/{ready['id']}/handover",
        {
            "override": "1",
            "override_reason": "known customer",
            "qty_1": "2",
            "qty_2": "1",
            "handover_id": manager.handover_id(ready["id"]),
        },
    )
    assert r.status_code == 302 and "/handovers/" in r.headers["Location"]
    r = manager.post(
        "/staff/returns/no-order",
        {
            "code": made["spare_ean"],
            "qty": "1",
            "condition": "damaged",
            "reason": "no receipt",
            "refund": "store_credit",
        },
    )
    assert r.status_code == 302 and "/staff/returns/done/" in r.headers["Location"]


# --- Photos of QR codes ------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_bad_photos_get_a_clear_message_never_a_500(counter_store, store_data):
    server, made = counter_store
    staff = Counter(server.url, store_data)
    other_store = pickup_token(made["ready"]["id"], "st-elsewhere")
    cases = {
        "not an image": (b"%PDF-1.4 this is no picture", "Aucun QR code"),
        "empty file": (b"", "Aucun QR code"),
        "truncated png": (_png(Image.new("RGB", (50, 50)))[:40], "Aucun QR code"),
        "image without QR": (_png(Image.new("RGB", (400, 300), "white")), "Aucun QR code"),
        "QR of garbage": (_png(tickets.render_qr("hello, not a token")), "pas un QR code"),
        "QR of a forged token": (_png(tickets.render_qr("KQ1.eyJ4IjoxfQ.AAAA")), "QR code"),
        "QR for another store": (_png(tickets.render_qr(other_store)), "autre magasin"),
    }
    before = _state(store_data)
    for label, (body, message) in cases.items():
        r = staff.http.post(
            server.url + "/staff/orders/verify/photo",
            data={"csrf_token": staff.token()},
            files={"photo": ("photo.png", body, "image/png")},
            allow_redirects=False,
            timeout=15,
        )
        assert r.status_code == 400, (label, r.status_code)
        assert message in _text(r), (label, _text(r)[-600:])
        assert 'role="alert"' in r.text, label
    # No verification was remembered: a hand-over is still refused.
    r = staff.post(f"/staff/orders/{made['ready']['id']}/handover", {"qty_1": "1"})
    assert r.status_code == 403
    assert _state(store_data) == before
    # The right photo opens the hand-over.
    good = _png(tickets.render_qr(pickup_token(made["ready"]["id"], made["store_id"])))
    r = staff.http.post(
        server.url + "/staff/orders/verify/photo",
        data={"csrf_token": staff.token()},
        files={"photo": ("qr.png", good, "image/png")},
        allow_redirects=False,
        timeout=15,
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/staff/orders/{made['ready']['id']}/handover"
    )


def test_scanned_pickup_qr_for_another_store_or_forged_is_refused(counter_store, store_data):
    server, made = counter_store
    staff = Counter(server.url, store_data)
    ready = made["ready"]
    other = pickup_token(ready["id"], "st-elsewhere")
    r = staff.get("/staff/orders/scan", params={"code": other})
    assert r.status_code == 400 and "autre magasin" in _text(r)
    good = pickup_token(ready["id"], made["store_id"])
    forged = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    r = staff.get("/staff/orders/scan", params={"code": forged})
    assert r.status_code == 400 and "refusé" in _text(r)
    expired = pickup_token(ready["id"], made["store_id"], ttl_s=60, now=1_000_000_000)
    r = staff.get("/staff/orders/scan", params={"code": expired})
    assert r.status_code == 400 and "expiré" in _text(r)
    r = staff.get("/staff/orders/scan", params={"code": "CC-99999999"})
    assert r.status_code == 404 and "CC-99999999" in r.text
    # Same for the returns screen.
    r = staff.get("/staff/returns/scan", params={"code": other})
    assert r.status_code == 400 and "autre magasin" in _text(r)


# --- Codes, quantities, double actions ---------------------------------------------


def test_another_orders_code_is_a_wrong_code(counter_store, store_data):
    server, made = counter_store
    staff = Counter(server.url, store_data)
    ready, other = made["ready"], made["other"]
    r = staff.verify_code(ready["number"], OTHER_CODE)  # the code of another order
    assert r.status_code == 400 and "Code de retrait erroné" in _text(r) and "4" in _text(r)
    r = staff.verify_code(ready["number"], "12345")
    assert r.status_code == 400 and "6 chiffres" in _text(r)
    r = staff.verify_code("CC-99999999", PICKUP_CODE)
    assert r.status_code == 400 and "Aucune commande trouvée" in _text(r)
    # Verified for one order, then trying to hand over another one: refused.
    assert staff.verify_code(other["number"], OTHER_CODE).status_code == 302
    before = _state(store_data)
    r = staff.post(
        f"/staff/orders/{ready['id']}/handover",
        {"qty_1": "2", "qty_2": "1", "handover_id": str(uuid.uuid4())},
    )
    assert r.status_code == 403 and "Vérifiez d'abord" in _text(r)
    # A QR checked for one order does not open another either.
    staff.get("/staff/orders/scan", params={"code": pickup_token(other["id"], made["store_id"])})
    r = staff.post(f"/staff/orders/{ready['id']}/handover", {"qty_1": "2", "qty_2": "1"})
    assert r.status_code == 403
    assert _state(store_data) == before


@pytest.mark.parametrize(
    "qty, message",
    [
        ("-1", "nombres entiers"),
        ("3", "hors limites"),  # 2 ready on line 1
        ("abc", "nombres entiers"),
        ("1.5", "nombres entiers"),
        ("1e3", "nombres entiers"),
        ("99999999999999999999", "hors limites"),
    ],
)
def test_handover_quantities_out_of_range(counter_store, store_data, qty, message):
    server, made = counter_store
    staff = Counter(server.url, store_data)
    ready = made["ready"]
    assert staff.verify_code(ready["number"]).status_code == 302
    hid = staff.handover_id(ready["id"])
    before = _state(store_data)
    r = staff.post(
        f"/staff/orders/{ready['id']}/handover", {"qty_1": qty, "qty_2": "1", "handover_id": hid}
    )
    assert 400 <= r.status_code < 500, r.status_code
    assert message in _text(r), _text(r)[-500:]
    assert _state(store_data) == before
    # Still verified: a right quantity goes through afterwards.
    r = staff.post(
        f"/staff/orders/{ready['id']}/handover", {"qty_1": "1", "qty_2": "0", "handover_id": hid}
    )
    assert r.status_code == 302


def test_a_refused_handover_comes_back_as_it_was_sent(counter_store, store_data):
    """A refusal must not reset a partial hand-over to "everything, to the customer"."""
    server, made = counter_store
    staff = Counter(server.url, store_data)
    ready = made["ready"]
    assert staff.verify_code(ready["number"]).status_code == 302
    hid = staff.handover_id(ready["id"])
    form = {
        "qty_1": "1",
        "qty_2": "0",
        "collector": "proxy",
        "collector_name": "",
        "handover_id": hid,
    }
    r = staff.post(f"/staff/orders/{ready['id']}/handover", form)
    assert r.status_code == 409 and "nom de la personne" in _text(r).lower()
    assert re.search(r'name="qty_1"[^>]*value="1"', r.text)
    assert re.search(r'name="qty_2"[^>]*value="0"', r.text)
    assert re.search(r'value="proxy" checked', r.text)
    assert not re.search(r'value="customer" checked', r.text)
    assert f'value="{hid}"' in r.text  # the same hand-over id: a resend stays one hand-over
    r = staff.post(f"/staff/orders/{ready['id']}/handover", form | {"collector_name": "Jean"})
    assert r.status_code == 302


def test_return_quantities_out_of_range_and_nothing_chosen(counter_store, store_data):
    server, made = counter_store
    staff = Counter(server.url, store_data)
    collected = made["collected"]  # 2 collected on line 1
    r = staff.post("/staff/returns", {"number": collected["number"], "who": "Roux"})
    assert r.status_code == 400 and "ne correspond" in _text(r)  # no surname held here
    r = staff.post("/staff/returns", {"number": collected["number"], "who": "INES"})
    assert r.status_code == 302
    path = f"/staff/returns/{collected['id']}"
    before = _state(store_data)
    form = {"cond_1": "resellable", "reason": "Trop petit", "refund": "original_payment"}
    for qty, message in [
        ("-1", "nombres entiers"),
        ("3", "hors limites"),
        ("deux", "nombres entiers"),
        ("0", "au moins un"),
    ]:
        r = staff.post(path, form | {"qty_1": qty})
        assert r.status_code == 400, qty
        assert message in _text(r), (qty, _text(r)[-500:])
    r = staff.post(path, form | {"qty_1": "1", "cond_1": "new"})
    assert r.status_code == 400 and "état" in _text(r)
    r = staff.post(path, form | {"qty_1": "1", "refund": "cash"})
    assert r.status_code == 400 and "remboursé" in _text(r)
    assert _state(store_data) == before
    assert staff.post(path, form | {"qty_1": "2"}).status_code == 302
    # Everything collected is back: a second return of it is out of range.
    staff.post("/staff/returns", {"number": collected["number"], "who": "inès"})
    r = staff.post(path, form | {"qty_1": "1"})
    assert r.status_code == 400 and "hors limites" in _text(r)


def test_double_scans_and_double_taps(counter_store, store_data):
    server, made = counter_store
    staff = Counter(server.url, store_data)
    placed, ready = made["placed"], made["ready"]
    ean1, ean2 = placed["lines"][0]["ean"], placed["lines"][1]["ean"]  # qty 2 and 1
    scan = f"/staff/orders/{placed['id']}/prepare/scan"
    hx = {"HX-Request": "true", "HX-Target": "prep"}
    assert staff.post(scan, {"code": ean2}, headers=hx).status_code == 200
    r = staff.post(scan, {"code": ean2}, headers=hx)  # the same unit scanned twice
    assert r.status_code == 409 and "Un de trop" in _text(r) and 'data-cue="error"' in r.text
    assert "<html" not in r.text  # the partial alone, for htmx
    r = staff.post(scan, {"code": made["spare_ean"]}, headers=hx)
    assert r.status_code == 409 and "Mauvais produit" in _text(r)
    r = staff.post(scan, {"code": "0000000000000"}, headers=hx)
    assert r.status_code == 409 and "ne correspond à aucun produit" in _text(r)
    r = staff.post(scan, {"code": ""}, headers=hx)
    assert r.status_code == 409 and "Rien n'a été scanné" in _text(r)
    db = _db(store_data)
    picked = db.execute(
        "SELECT line, qty_picked FROM order_lines WHERE order_id = ? ORDER BY line", [placed["id"]]
    ).fetchall()
    db.close()
    assert picked == [(1, 0), (2, 1)]
    for _ in range(2):
        assert staff.post(scan, {"code": ean1}, headers=hx).status_code == 200
    r = staff.post(f"/staff/orders/{placed['id']}/ready", {"shelf_slot": "A1"}, headers=hx)
    assert r.headers["HX-Redirect"].endswith(f"/staff/orders/{placed['id']}?ready=1")
    r = staff.post(f"/staff/orders/{placed['id']}/ready", {"shelf_slot": "A1"}, headers=hx)
    assert r.status_code == 409 and "état actuel" in _text(r)  # ready twice: refused
    r = staff.post(scan, {"code": ean1}, headers=hx)  # a scan after ready
    assert r.status_code == 409

    # The pickup QR scanned twice opens the same hand-over; a double tap on "hand over"
    # records it once and shows the same receipt.
    token = pickup_token(ready["id"], made["store_id"])
    for _ in range(2):
        r = staff.get("/staff/orders/scan", params={"code": token})
        assert r.headers["Location"].endswith(f"/staff/orders/{ready['id']}/handover")
    hid = staff.handover_id(ready["id"])
    form = {"qty_1": "2", "qty_2": "1", "handover_id": hid}
    first = staff.post(f"/staff/orders/{ready['id']}/handover", form)
    second = staff.post(f"/staff/orders/{ready['id']}/handover", form)
    assert first.status_code == 302 and first.headers["Location"].endswith(f"/handovers/{hid}")
    assert second.status_code == 302 and second.headers["Location"] == first.headers["Location"]
    # A new hand-over of a collected order: refused with the reason.
    staff.get("/staff/orders/scan", params={"code": token})
    page = staff.get(f"/staff/orders/{ready['id']}/handover")
    assert "Déjà remise" in _text(page) and "handover-form" not in page.text
    r = staff.post(
        f"/staff/orders/{ready['id']}/handover", {"qty_1": "1", "handover_id": str(uuid.uuid4())}
    )
    assert r.status_code == 409 and "Déjà remise" in _text(r)
    db = _db(store_data)
    types = [t for (t,) in db.execute("SELECT type FROM outbox ORDER BY rowid").fetchall()]
    db.close()
    assert types.count("order.handover") == 1 and types.count("order.ready") == 1


def test_two_tablets_hand_over_the_same_order_at_the_same_second(counter_store, store_data):
    server, made = counter_store
    ready = made["ready"]
    tablets = [Counter(server.url, store_data) for _ in range(2)]
    forms = []
    for t in tablets:
        assert t.verify_code(ready["number"]).status_code == 302
        forms.append(
            {
                "qty_1": "2",
                "qty_2": "1",
                "handover_id": t.handover_id(ready["id"]),
                "csrf_token": t.token(),
            }
        )
    assert forms[0]["handover_id"] != forms[1]["handover_id"]
    barrier = threading.Barrier(2)
    answers: list[requests.Response | None] = [None, None]

    def press(i: int) -> None:
        barrier.wait()
        answers[i] = tablets[i].post(f"/staff/orders/{ready['id']}/handover", forms[i], csrf=False)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    codes = sorted(a.status_code for a in answers)
    assert codes == [302, 409], codes
    loser = next(a for a in answers if a.status_code == 409)
    assert "Déjà remise" in _text(loser)
    db = _db(store_data)
    try:
        assert db.execute("SELECT count(*) FROM handovers").fetchone()[0] == 1
        assert (
            db.execute("SELECT count(*) FROM outbox WHERE type = 'order.handover'").fetchone()[0]
            == 1
        )
        assert db.execute(
            "SELECT qty_collected FROM order_lines WHERE order_id = ? ORDER BY line", [ready["id"]]
        ).fetchall() == [(2,), (1,)]
    finally:
        db.close()
