"""The store staff's screens as a person reads them (issue 13): lateness said in minutes,
hours or days with the promised date, the bag label's print view, a return's quantity
starting at what can still come back, and the sync page in plain words.

The business clock is ``KIOSK_FAKE_NOW`` (app/core/clock.py): never today's date."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from flask import session

from app.core import clock
from app.core import db as dbmod
from app.store.domain import outbox
from app.store.domain.orders import preparation, returns
from app.store.domain.stock import adjust
from app.store.views.counter_common import lateness, promised_when

from .axe_helpers import serious_violations
from .conftest import add_staff_member, screenshot, staff_login, staff_login_page
from .order_helpers import add_order, pick_variants

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

# A Wednesday, 10:00 in Paris.
NOW = "2026-11-18T09:00:00Z"
HUB = "http://127.0.0.1:9"  # nothing listens: the store is offline
TABLET = {"width": 1280, "height": 800}


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setenv("KIOSK_FAKE_NOW", NOW)
    return clock.utcnow()


def _in(app, lang: str, fn):
    """``fn()`` inside a request whose shown language is ``lang``."""
    with app.test_request_context("/staff/orders"):
        session["lang"] = lang
        return fn()


# --- Lateness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "fr", "en"),
    [
        (0, "", ""),
        (-5, "", ""),
        (1, "en retard de 1\u00a0min", "1 min late"),
        (25, "en retard de 25\u00a0min", "25 min late"),
        (59, "en retard de 59\u00a0min", "59 min late"),
        (60, "en retard de 1\u00a0h", "1 hour late"),
        (180, "en retard de 3\u00a0h", "3 hours late"),
        (1409, "en retard de 23\u00a0h", "23 hours late"),
        (1440, "en retard de 1\u00a0j", "1 day late"),
        (2621, "en retard de 2\u00a0j", "2 days late"),  # 1 day 19 h: "2 days"
        (3 * 1440, "en retard de 3\u00a0j", "3 days late"),
    ],
)
def test_lateness_is_said_in_minutes_hours_or_days(app, minutes, fr, en):
    got_fr = _in(app, "fr", lambda: lateness(minutes))
    got_en = _in(app, "en", lambda: lateness(minutes))
    # French keeps the number and its unit together: a no-break space between them.
    assert (got_fr, got_en) == (fr, en)


def test_promised_time_is_local_today_and_dated_otherwise(app, now):
    # 09:00Z is 10:00 in Paris; 13:19Z two days before is Monday 16 November, 14:19.
    today = "2026-11-18T10:00:00Z"
    before = "2026-11-16T13:19:00Z"
    assert _in(app, "fr", lambda: promised_when(today, now)) == "promise pour 11:00"
    assert _in(app, "fr", lambda: promised_when(before, now)) == "promise le lun. 16 nov. à 14:19"
    assert _in(app, "en", lambda: promised_when(today, now)) == "promised for 11:00\u202fAM"
    assert (
        _in(app, "en", lambda: promised_when(before, now)) == "promised Mon, Nov 16 at 2:19\u202fPM"
    )


def _late_orders(db, now):
    """Orders promised 25 min, 3 h and 2621 min ago, and one promised in an hour (the
    helpers promise an order two hours after it is placed)."""
    v = pick_variants(db, 4)
    made = {}
    for i, (key, late) in enumerate(
        [("min", 25), ("hours", 180), ("days", 2621), ("on_time", -60)]
    ):
        placed = now - timedelta(minutes=late) - timedelta(hours=2)
        made[key] = add_order(db, variants=[v[i]], placed_at=placed, customer=f"Client {key}")
    return made


def _row(html: str, number: str) -> str:
    match = re.search(
        r'<li>\s*<a class="order-row"[^>]*data-number="' + re.escape(number) + r'".*?</li>',
        html,
        re.S,
    )
    assert match, number
    return re.sub(r"\s+", " ", match.group(0))


def test_order_list_says_how_late_with_the_promised_date(app, store_db, store_data, now):
    made = _late_orders(store_db, now)
    client = app.test_client()
    staff_login(client, store_data)
    html = client.get("/staff/orders?view=to_prepare").get_data(as_text=True)
    assert "min de retard" not in html
    rows = {k: _row(html, d["number"]) for k, d in made.items()}
    assert re.search(r'class="late"[^>]*>en retard de 25.min<', rows["min"])
    assert re.search(r'class="late"[^>]*>en retard de 3.h<', rows["hours"])
    assert re.search(r'class="late"[^>]*>en retard de 2.j<', rows["days"])
    assert "promise le lun. 16 nov. à 14:19" in rows["days"]
    assert "promise pour 09:35" in rows["min"]  # 25 min before 10:00, Paris time
    assert 'class="late"' not in rows["on_time"] and "promise pour 11:00" in rows["on_time"]
    with client.session_transaction() as s:
        s["lang"] = "en"
    html = client.get("/staff/orders?view=to_prepare").get_data(as_text=True)
    assert ">2 days late<" in _row(html, made["days"]["number"])
    assert ">3 hours late<" in _row(html, made["hours"]["number"])
    assert ">25 min late<" in _row(html, made["min"]["number"])
    assert "promised Mon, Nov 16 at 2:19" in _row(html, made["days"]["number"])


# --- The bag label's print view ------------------------------------------------------


def _ready_order(db, staff_id: str, slot: str = "B12") -> dict:
    data = add_order(db, variants=pick_variants(db, 1), qtys=[2])
    for _ in range(2):
        preparation.scan_item(db, data["id"], data["lines"][0]["ean"], staff_id)
    preparation.mark_ready(db, data["id"], slot, staff_id)
    return data


def test_bag_label_opens_in_a_print_view_and_the_png_still_answers(app, store_db, store_data):
    client = app.test_client()
    member = staff_login(client, store_data)
    order = _ready_order(store_db, member["id"])
    base = f"/staff/orders/{order['id']}"
    page = client.get(base).get_data(as_text=True)
    assert f'href="{base}/label"' in page and "label.png" not in page  # the screen links the view
    r = client.get(base + "/label")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert f'<img src="{base}/label.png"' in html and 'class="print-ticket-img"' in html
    assert re.search(r"<button[^>]*data-print[^>]*>Imprimer</button>", html)
    assert "/static/js/kiosk.js" in html  # its [data-print] handler calls window.print()
    assert "<script>" not in html and "onclick" not in html and "style=" not in html
    assert 'class="staff counter print-view' in html
    css = client.get("/static/css/kiosk.css").get_data(as_text=True)
    assert re.search(r"@media print \{\s*\.print-view \.topbar", css)
    assert ".print-ticket-img { display: block; width: 72mm" in css
    js = client.get("/static/js/kiosk.js").get_data(as_text=True)
    assert 'closest("[data-print]")' in js and "window.print()" in js
    png = client.get(base + "/label.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    # No shelf slot yet (not ready): no label, no print view.
    placed = add_order(store_db)
    assert client.get(f"/staff/orders/{placed['id']}/label").status_code == 404


def _print_view(client, done_page: str, view: str) -> None:
    """``done_page`` links the print view ``view``, which shows its PNG (still served)."""
    page = client.get(done_page).get_data(as_text=True)
    assert f'href="{view}" data-print-view' in page and ".png" not in page
    r = client.get(view)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'class="staff counter print-view' in html
    assert f'<img src="{view}.png"' in html
    assert re.search(r"<button[^>]*data-print[^>]*>Imprimer</button>", html)
    png = client.get(view + ".png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    assert client.get(view + ".pdf").data.startswith(b"%PDF")


def test_receipts_and_the_reservation_ticket_open_in_print_views(app, store_db, store_data, now):
    from app.store.domain import reservations
    from app.store.domain.orders import pickup

    client = app.test_client()
    member = staff_login(client, store_data)
    order = _ready_order(store_db, member["id"])
    record = pickup.handover(store_db, order["id"], staff_id=member["id"], method="code")
    base = f"/staff/orders/{order['id']}/handovers/{record['id']}"
    _print_view(client, base, base + "/receipt")
    back = returns.record_return(
        store_db,
        order["id"],
        [{"line": 1, "qty": 1, "condition": "resellable"}],
        reason="Trop petit",
        refund="original_payment",
        staff_id=member["id"],
    )
    base = f"/staff/returns/done/{back['id']}"
    _print_view(client, base, base + "/receipt")
    held = reservations.create(store_db, [(_sku(store_db), 1)], now=now)
    base = f"/staff/reservations/{held['id']}"
    _print_view(client, base, base + "/ticket")
    assert client.get("/staff/returns/done/nope/receipt").status_code == 404
    assert client.get(f"/staff/orders/{order['id']}/handovers/nope/receipt").status_code == 404


# --- A return starts at what can still come back ----------------------------------------


def test_return_quantity_starts_at_what_can_still_be_returned(app, store_db, store_data):
    client = app.test_client()
    member = staff_login(client, store_data)
    order = add_order(
        store_db, variants=pick_variants(store_db, 3), qtys=[3, 1, 2], status="collected"
    )
    returns.record_return(
        store_db,
        order["id"],
        [
            {"line": 1, "qty": 1, "condition": "resellable"},
            {"line": 3, "qty": 2, "condition": "damaged"},
        ],
        reason="Trop petit",
        refund="original_payment",
        staff_id=member["id"],
    )
    with client.session_transaction() as s:
        s["return_order"] = {"id": order["id"], "at": clock.now_s()}
    html = client.get(f"/staff/returns/{order['id']}").get_data(as_text=True)

    def value(line: int) -> str:
        return re.search(rf'id="rqty-{line}"[^>]*value="(\d+)"', html).group(1)

    # Bought 3, 1 returned: 2; bought 1: 1; bought 2, both returned: 0.
    assert (value(1), value(2), value(3)) == ("2", "1", "0")


# --- The sync page speaks plainly ------------------------------------------------------


@pytest.fixture
def hub_app(store_data):
    from app.store.app import create_app

    return create_app({"DATA_DIR": str(store_data), "TESTING": True, "HUB_URL": HUB})


def _sku(db) -> str:
    return db.execute(
        "SELECT l.sku FROM stock_levels l JOIN stores s ON s.id = l.store_id AND s.is_self = 1 "
        "WHERE l.qty > 3 LIMIT 1"
    ).fetchone()[0]


JARGON = re.compile(
    r"flux|feed|cursor|curseur|outbox|file d.envoi|transaction|hub\b|serveur central", re.I
)


def _visible(html: str) -> str:
    body = html.split("<main", 1)[-1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_sync_page_has_no_jargon_and_counts_what_waits(hub_app, store_db, store_data):
    client = hub_app.test_client()
    staff_login(client, store_data)
    sku = _sku(store_db)
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "Hors ligne" in text and "Rien : tout a été envoyé." in text
    assert "Rien, tout va bien." in text and "Dernier contact avec le siège pas encore" in text
    assert not JARGON.search(text), JARGON.search(text)
    adjust(store_db, sku, -1)
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "1 opération en attente (ventes, stock, commandes)" in text
    bad = adjust(store_db, sku, -1)["id"]
    adjust(store_db, sku, 1)
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "3 opérations en attente" in text
    outbox.park(store_db, bad, "unknown_sku", "no variant X")
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "2 opérations en attente" in text
    assert "1 opération refusée par le siège : prévenez votre responsable" in text
    assert "le siège ne connaît pas ce produit" in text
    assert not JARGON.search(text), JARGON.search(text)
    with client.session_transaction() as s:
        s["lang"] = "en"
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "2 changes waiting (sales, stock, orders)" in text
    assert "1 change refused by head office: tell your manager" in text
    assert "Last contact with head office not yet" in text
    assert not JARGON.search(text), JARGON.search(text)


def test_sync_page_says_when_head_office_was_last_reached(hub_app, store_db, store_data, now):
    from app.store.sync import state

    state.record_success(store_db, "push", now - timedelta(minutes=3))
    client = hub_app.test_client()
    staff_login(client, store_data)
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "Dernier contact avec le siège à 09:57 (il y a 3 minutes)" in text
    state.record_success(store_db, "pull", now)
    text = _visible(client.get("/staff/status").get_data(as_text=True))
    assert "En ligne : le magasin est relié au siège." in text
    assert "Dernier contact avec le siège à 10:00" in text


# --- Looked at, at tablet size ------------------------------------------------------


@pytest.mark.browser
def test_staff_floor_screens_at_tablet_size(browser, store_data, server_factory):
    db = dbmod.connect(dbmod.db_path(store_data))
    try:
        member = add_staff_member(store_data, "Inès")
        now = clock.parse_iso(NOW)
        made = _late_orders(db, now)
        ready = _ready_order(db, member["id"])
        sku = _sku(db)
        adjust(db, sku, -1)
        outbox.park(db, adjust(db, sku, -1)["id"], "unknown_sku", "no variant")
    finally:
        db.close()
    hub = {"KIOSK_HUB_URL": HUB, "KIOSK_STORE_ID": "lyon", "KIOSK_STORE_SECRET": "ab" * 32}
    server = server_factory(store_data, {"KIOSK_FAKE_NOW": NOW, **hub})
    context = browser.new_context(viewport=TABLET, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        staff_login_page(page, server.url, store_data)
        page.goto(server.url + "/staff/orders?view=to_prepare")
        row = page.locator(f'.order-row[data-number="{made["days"]["number"]}"]')
        assert re.fullmatch(r"en retard de 2\s?j", row.locator(".late").inner_text())
        box = row.locator(".late").bounding_box()
        assert box and box["x"] + box["width"] <= TABLET["width"]
        screenshot(page, "staff-floor-orders-late")
        assert serious_violations(page) == []

        page.add_init_script(
            "window.print = () => { window.__printed = (window.__printed || 0) + 1; }"
        )
        page.goto(server.url + f"/staff/orders/{ready['id']}")
        page.locator("[data-print-view]").click()
        page.wait_for_url(re.compile(r"/label$"))
        img = page.locator(".print-ticket-img")
        page.wait_for_function("() => document.querySelector('.print-ticket-img').naturalWidth > 0")
        assert img.evaluate("i => i.naturalWidth") == 576
        width = img.bounding_box()["width"]
        assert abs(width - 72 / 25.4 * 96) < 2  # 72 mm at 96 CSS px an inch
        screenshot(page, "staff-floor-label-print-view")
        assert serious_violations(page) == []
        page.get_by_role("button", name="Imprimer").click()
        assert page.evaluate("window.__printed") == 1
        page.emulate_media(media="print")
        assert not page.locator(".counter-nav").is_visible()
        assert not page.locator(".print-actions").is_visible()
        assert img.is_visible()
        screenshot(page, "staff-floor-label-as-printed")
        page.emulate_media(media="screen")
        assert requests.get(server.url + "/healthz", timeout=5).ok

        page.goto(server.url + "/staff/status")
        assert "Hors ligne" in page.locator("#sync-state").inner_text()
        waiting = page.locator('[data-field="outbox_depth"]')
        # A stock change and the ready order's news; the oldest's age only past a minute.
        assert waiting.inner_text() == "2 opérations en attente (ventes, stock, commandes)"
        assert "1 opération refusée" in page.locator('[data-field="parked"]').inner_text()
        assert not JARGON.search(page.locator("main").inner_text())
        screenshot(page, "staff-floor-sync")
        assert serious_violations(page) == []
        assert not [e for e in errors if "Content Security Policy" in e]
    finally:
        context.close()
