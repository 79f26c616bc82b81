"""Reservations for staff over real HTTP (a ``kiosk serve`` process), the ``kiosk
reservations`` commands, the server's expiry timer, and one browser check that a
reservation made at a kiosk appears on the staff list without a reload."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from app.core import clock
from app.core import db as dbmod
from app.store.domain import reservations as res
from app.store.domain.stock import levels

from .conftest import ROOT, run_kiosk, screenshot, staff_login, staff_login_page
from .counter_client import _CSRF, Counter, _text
from .sync_fixtures import wait_for

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _db(data: Path):
    return dbmod.connect(dbmod.db_path(data))


def _stocked(db, n: int) -> list[str]:
    rows = db.execute(
        """SELECT v.sku FROM variants v
           JOIN stock_levels l ON l.sku = v.sku
           JOIN stores s ON s.id = l.store_id AND s.is_self = 1
           WHERE l.qty >= 4 AND v.rowid IN (SELECT min(rowid) FROM variants GROUP BY product_pk)
           ORDER BY v.sku LIMIT ?""",
        [n],
    ).fetchall()
    assert len(rows) == n
    return [r[0] for r in rows]


def _state(data: Path) -> dict:
    """Everything a reservation action may change (the audit log aside)."""
    db = _db(data)
    try:
        q = {
            "reservations": "SELECT * FROM reservations ORDER BY id",
            "lines": "SELECT * FROM reservation_lines ORDER BY reservation_id, sku",
            "movements": "SELECT id, sku, delta, kind FROM stock_movements ORDER BY id",
            "outbox": "SELECT id, type, payload FROM outbox ORDER BY rowid",
        }
        return {k: db.execute(sql).fetchall() for k, sql in q.items()}
    finally:
        db.close()


def _audit(data: Path, action: str) -> list[tuple]:
    db = _db(data)
    try:
        return db.execute(
            "SELECT staff_id, device, details FROM audit_log WHERE action = ? ORDER BY id",
            [action],
        ).fetchall()
    finally:
        db.close()


@pytest.fixture
def made(store_data):
    """Two reservations held at NOW: ``a`` for two hours, ``b`` for 30 minutes."""
    db = _db(store_data)
    skus = _stocked(db, 3)
    out = {
        "skus": skus,
        "before": levels(db, skus),
        "a": res.create(db, [(skus[0], 2), (skus[1], 1)], device="kiosk-test", now=NOW),
        "b": res.create(db, [(skus[2], 1)], hold_minutes=30, now=NOW),
    }
    db.close()
    return out


@pytest.fixture
def server(made, store_data, server_factory):
    """A real store server whose clock reads NOW + 10 min: both reservations are held
    (its expiry timer, which runs at start-up, leaves them alone)."""
    return server_factory(store_data, {"KIOSK_FAKE_NOW": clock.iso(NOW + timedelta(minutes=10))})


# --- Access --------------------------------------------------------------------------

GETS = [
    "/staff/reservations",
    "/staff/reservations?view=closed_today",
    "/staff/reservations/scan?code={code}",
    "/staff/reservations/{id}",
    "/staff/reservations/{id}/ticket.png",
    "/staff/reservations/{id}/ticket.pdf",
]
POSTS = ["/staff/reservations/{id}/collect", "/staff/reservations/{id}/release"]


def test_every_reservation_page_needs_a_staff_login(server, made, store_data):
    anon = requests.Session()
    before = _state(store_data)
    fill = {"id": made["a"]["id"], "code": made["a"]["code"]}
    for template in GETS:
        path = template.format(**fill)
        r = anon.get(server.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 302, path
        assert r.headers["Location"].startswith("/staff/login"), path
        assert "next=" in r.headers["Location"], path
        hx = anon.get(
            server.url + path, headers={"HX-Request": "true"}, timeout=10, allow_redirects=False
        )
        assert hx.headers["HX-Redirect"].startswith("/staff/login"), path
    token = _CSRF.search(anon.get(server.url + "/staff/login", timeout=10).text).group(1)
    for template in POSTS:
        path = template.format(**fill)
        r = anon.post(
            server.url + path, data={"csrf_token": token}, allow_redirects=False, timeout=10
        )
        assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login"), path
    assert _state(store_data) == before


def test_posts_without_a_valid_csrf_token_change_nothing(server, made, store_data):
    staff = Counter(server.url, store_data)
    before = _state(store_data)
    for template in POSTS:
        path = template.format(id=made["a"]["id"])
        assert staff.post(path, {}, csrf=False).status_code == 400, path
        assert staff.post(path, {"csrf_token": "forged"}, csrf=False).status_code == 400, path
    assert _state(store_data) == before
    assert res.get(_db(store_data), made["a"]["id"])["status"] == "held"


# --- Lists, scans, actions -------------------------------------------------------------


def test_list_shows_what_to_pull_and_refreshes_as_a_partial(server, made, store_data):
    staff = Counter(server.url, store_data)
    page = staff.get("/staff/reservations")
    assert page.status_code == 200
    text = page.text
    # Soonest expiry first: b (20 min left) before a (1 h 50 left).
    assert text.index(f'data-code="{made["b"]["code"]}"') < text.index(
        f'data-code="{made["a"]["code"]}"'
    )
    assert "is-overdue" not in text
    assert 'data-count="held">2<' in text
    assert re.search(r'data-count="held-reservations"\s*>2<', text)  # staff navigation
    for ln in made["a"]["lines"]:
        assert _text(page).count(ln["ref"]) >= 1
    # A reservation made at a kiosk meanwhile: the self-replacing partial has it.
    db = _db(store_data)
    late = res.create(db, [(made["skus"][1], 1)])
    db.close()
    hx = staff.get(
        "/staff/reservations", headers={"HX-Request": "true", "HX-Target": "reservation-list"}
    )
    assert hx.status_code == 200
    assert hx.text.lstrip().startswith('<section id="reservation-list"')
    assert "<html" not in hx.text
    assert f'data-code="{late["code"]}"' in hx.text
    assert "HX-Request" in hx.headers["Vary"]
    assert 'hx-trigger="every 2s"' in hx.text
    # The count in the staff navigation follows (out-of-band swap).
    assert re.search(r'id="nav-held-reservations"[^>]*hx-swap-oob="true"\s*>3<', hx.text)


def test_scans_and_typed_codes_open_the_reservation(server, made, store_data):
    staff = Counter(server.url, store_data)
    a = made["a"]
    detail = f"/staff/reservations/{a['id']}"
    for code in (a["token"], a["token"].upper(), a["code"].lower(), a["code"][2:]):
        r = staff.get("/staff/reservations/scan", params={"code": code})
        assert r.status_code == 302 and r.headers["Location"] == detail, code
    # Scanned on an order screen, a reservation ticket still opens the reservation.
    r = staff.get("/staff/orders/scan", params={"code": a["token"]})
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/reservations/scan")
    # Forged: refused, said, audited.
    prefix, rid, mac = a["token"].split(".")
    forged = f"{prefix}.{made['b']['id']}.{mac}"
    r = staff.get("/staff/reservations/scan", params={"code": forged})
    assert r.status_code == 400 and 'role="alert"' in r.text
    refused = _audit(store_data, "reservation.scan_refused")
    assert len(refused) == 1 and refused[0][0] == staff.member["id"]
    # Unknown code: 404 with the list; an order number goes on to the counter.
    r = staff.get(
        "/staff/reservations/scan", params={"code": "R-2345" if a["code"] != "R-2345" else "R-2346"}
    )
    assert r.status_code == 404
    r = staff.get("/staff/reservations/scan", params={"code": "CC-12345678"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/scan")


def test_hand_over_and_release_over_http(server, made, store_data):
    staff = Counter(server.url, store_data)
    a, b, skus, before = made["a"], made["b"], made["skus"], made["before"]
    token = staff.token(f"/staff/reservations/{a['id']}")

    r = staff.http.post(
        f"{server.url}/staff/reservations/{a['id']}/collect",
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302
    assert r.headers["Location"] == f"/staff/reservations/{a['id']}?done=collected"
    page = staff.get(r.headers["Location"])
    assert 'data-cue="ok"' in page.text and "/collect" not in page.text  # no more actions
    db = _db(store_data)
    assert res.get(db, a["id"])["status"] == "collected"
    # Handed over: the units left with the shopper, nothing comes back.
    assert levels(db, skus[:2]) == {skus[0]: before[skus[0]] - 2, skus[1]: before[skus[1]] - 1}
    ((staff_id, device, _),) = _audit(store_data, "reservation.collected")
    assert staff_id == staff.member["id"] and "python-requests" in device

    settled = _state(store_data)
    again = staff.post(f"/staff/reservations/{a['id']}/collect")
    assert again.status_code == 409 and 'role="alert"' in again.text
    assert staff.post(f"/staff/reservations/{a['id']}/release").status_code == 409
    assert _state(store_data) == settled

    r = staff.post(f"/staff/reservations/{b['id']}/release", {"reason": "customer phoned"})
    assert r.status_code == 302 and r.headers["Location"].endswith("?done=released")
    assert res.get(db, b["id"])["status"] == "released"
    assert levels(db, [skus[2]])[skus[2]] == before[skus[2]]
    released = db.execute(
        "SELECT delta, reason, actor FROM stock_movements WHERE kind = 'released'"
    ).fetchall()
    assert released == [
        (1, f"reservation {b['code']} released: customer phoned", staff.member["id"])
    ]
    assert staff.post(f"/staff/reservations/{b['id']}/release").status_code == 409
    assert staff.get("/staff/reservations/r-aaaaaaaaaaaaaaaa").status_code == 404
    assert staff.post("/staff/reservations/r-aaaaaaaaaaaaaaaa/collect").status_code == 404
    closed = staff.get("/staff/reservations?view=closed_today")
    assert f'data-code="{a["code"]}"' in closed.text and f'data-code="{b["code"]}"' in closed.text
    db.close()


def test_ticket_png_carries_the_token_and_pdf_is_80_mm(server, made, store_data):
    staff = Counter(server.url, store_data)
    a = made["a"]
    png = staff.get(f"/staff/reservations/{a['id']}/ticket.png")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    img = Image.open(io.BytesIO(png.content))
    assert img.width == 576
    found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [f.text for f in found] == [a["token"]]
    assert res.find_by_scan(_db(store_data), found[0].text)["id"] == a["id"]
    pdf = staff.get(f"/staff/reservations/{a['id']}/ticket.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    width_pt = float(re.search(rb"/MediaBox \[\s*0 0 ([\d.]+)", pdf.content).group(1))
    assert abs(width_pt - 80 / 25.4 * 72) < 1
    assert staff.get(f"/staff/reservations/{a['id']}/ticket.gif").status_code == 404


def test_an_overdue_reservation_stands_out(client, made, store_data, monkeypatch):
    # Past its time but not yet released (the timer runs every minute): said loudly.
    monkeypatch.setenv("KIOSK_FAKE_NOW", clock.iso(NOW + timedelta(minutes=33)))
    staff_login(client, store_data)
    text = client.get("/staff/reservations").get_data(as_text=True)
    item = re.search(r'<li class="([^"]*)" data-code="' + made["b"]["code"], text)
    assert item and item.group(1) == "reservation is-overdue"
    assert text.count("is-overdue") == 1
    page = client.get(f"/staff/reservations/{made['b']['id']}").get_data(as_text=True)
    assert 'class="late"' in page and 'role="alert"' in page
    assert (
        res.list_reservations(_db(store_data), now=NOW + timedelta(minutes=33))[0]["minutes_left"]
        == -3
    )


# --- Session, config ---------------------------------------------------------------------


def test_the_self_refreshing_list_does_not_keep_a_session_alive(
    app, client, made, store_data, fake_clock
):
    staff_login(client, store_data)
    idle = app.config["STAFF_IDLE_SECONDS"]
    poll = {"HX-Request": "true", "HX-Target": "reservation-list", "X-Staff-Poll": "1"}
    for _ in range(2):  # polls within the idle limit are served...
        fake_clock.advance(idle / 2)
        r = client.get("/staff/reservations", headers=poll)
        assert r.status_code == 200 and "HX-Redirect" not in r.headers
        assert 'id="reservation-list"' in r.get_data(as_text=True)
    fake_clock.advance(1)  # ...but do not count as use: idle since the login, the session ends
    r = client.get("/staff/reservations", headers=poll)
    assert r.headers["HX-Redirect"].startswith("/staff/login")
    # Someone using the screen (no poll header) keeps it alive, as before.
    staff_login(client, store_data)
    for _ in range(4):
        fake_clock.advance(idle - 1)
        assert client.get("/staff/reservations").status_code == 200


def test_hold_time_comes_from_config(store_data, monkeypatch):
    from app.store.app import create_app

    assert create_app({"DATA_DIR": str(store_data)}).config["RESERVATION_HOLD_MINUTES"] == 120
    monkeypatch.setenv("KIOSK_RESERVATION_HOLD_MINUTES", "45")
    assert create_app({"DATA_DIR": str(store_data)}).config["RESERVATION_HOLD_MINUTES"] == 45
    help_text = run_kiosk("serve", "--help").stdout
    assert "--reservation-hold MINUTES" in help_text
    assert "KIOSK_RESERVATION_HOLD_MINUTES" in help_text


# --- Expiry --------------------------------------------------------------------------------


def test_expire_command_with_fake_now(made, store_data):
    b, sku = made["b"], made["skus"][2]
    env = {"KIOSK_FAKE_NOW": clock.iso(NOW + timedelta(minutes=29))}
    r = run_kiosk("reservations", "expire", "--data", str(store_data), env=env)
    assert r.returncode == 0 and r.stdout.strip() == "expired 0", r.stderr
    listed = run_kiosk("reservations", "list", "--data", str(store_data), env=env)
    assert b["code"] in listed.stdout and "held 2" in listed.stdout

    env = {"KIOSK_FAKE_NOW": clock.iso(NOW + timedelta(minutes=30))}
    r = run_kiosk("reservations", "expire", "--data", str(store_data), env=env)
    assert r.stdout.strip() == "expired 1", r.stderr
    r = run_kiosk("reservations", "expire", "--data", str(store_data), env=env)
    assert r.stdout.strip() == "expired 0"
    db = _db(store_data)
    assert res.get(db, b["id"])["status"] == "expired"
    assert res.get(db, made["a"]["id"])["status"] == "held"
    assert levels(db, [sku])[sku] == made["before"][sku]
    db.close()
    closed = run_kiosk(
        "reservations", "list", "--view", "closed_today", "--data", str(store_data), env=env
    )
    assert b["code"] in closed.stdout and "expired" in closed.stdout


def test_two_expire_commands_at_once_release_each_once(store_data):
    db = _db(store_data)
    skus = _stocked(db, 4)
    before = levels(db, skus)
    made = [res.create(db, [(s, 1)], hold_minutes=5, now=NOW) for s in skus * 5]
    db.close()
    env_now = {"KIOSK_FAKE_NOW": clock.iso(NOW + timedelta(hours=1))}
    cmd = [sys.executable, "-m", "app", "reservations", "expire", "--data", str(store_data)]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **env_now},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    total = sum(int(out.strip().split()[-1]) for out, _ in outs)
    assert total == len(made)
    db = _db(store_data)
    assert levels(db, skus) == before
    released = db.execute("SELECT count(*) FROM stock_movements WHERE kind = 'released'")
    assert released.fetchone()[0] == len(made)
    db.close()


def test_the_server_timer_expires_due_reservations(made, store_data, server_factory):
    # The server's periodic timer runs both expiries; its first round is at start-up.
    later = clock.iso(NOW + timedelta(hours=1))
    server_factory(store_data, {"KIOSK_FAKE_NOW": later})
    db = _db(store_data)
    wait_for(lambda: res.get(db, made["b"]["id"])["status"] != "held", 20, "the timer's expiry")
    assert res.get(db, made["b"]["id"])["status"] == "expired"
    assert res.get(db, made["a"]["id"])["status"] == "held"  # its time is not up
    sku = made["skus"][2]
    assert levels(db, [sku])[sku] == made["before"][sku]
    db.close()


# --- Browser ---------------------------------------------------------------------------------


def _no_serious_axe_violation(page, label: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.response["passes"], label  # axe really looked at the page
    serious = [
        f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], (label, serious)


@pytest.mark.browser
def test_staff_list_shows_a_new_reservation_without_reload(browser, made, store_data, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        staff_login_page(page, server.url, store_data)
        page.goto(server.url + "/staff/reservations")
        expect(page.locator(".reservation")).to_have_count(2)
        page.evaluate("window.__notReloaded = true")
        # A shopper reserves at a kiosk meanwhile.
        db = _db(store_data)
        late = res.create(
            db,
            [(made["skus"][0], 1), (made["skus"][1], 1)],
            device="kiosk-2",
            now=NOW + timedelta(minutes=10),
        )
        db.close()
        expect(page.locator(f'[data-code="{late["code"]}"]')).to_be_visible(timeout=10_000)
        expect(page.locator('[data-count="held"]')).to_have_text("3")
        expect(page.locator("#nav-held-reservations")).to_have_text("3")
        assert page.evaluate("window.__notReloaded") is True
        screenshot(page, "70-staff-reservations-list")
        _no_serious_axe_violation(page, "list")

        # The shopper shows the ticket: the handheld scanner reads its QR.
        page.keyboard.type(late["token"], delay=5)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(rf"/staff/reservations/{late['id']}$"))
        expect(page.locator("table.lines tbody tr")).to_have_count(2)
        screenshot(page, "71-staff-reservation")
        _no_serious_axe_violation(page, "reservation")
        page.locator("form[action$='/release']").scroll_into_view_if_needed()
        screenshot(page, "72-staff-reservation-actions")
        page.locator("form[action$='/collect'] button").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        expect(page.locator(".status-r-collected")).to_be_visible()
        screenshot(page, "73-staff-reservation-collected")
        assert errors == []
    finally:
        context.close()
