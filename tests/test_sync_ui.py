"""What people see of sync: /healthz, the staff status screen, the kiosk's offline note."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.core import clock
from app.store.domain import outbox
from app.store.domain.stock import adjust
from app.store.sync import state

from .conftest import staff_login

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

HUB = "http://127.0.0.1:9"  # nothing listens: the store is offline


@pytest.fixture
def hub_app(store_data):
    """The store app configured with a hub."""
    from app.store.app import create_app

    return create_app({"DATA_DIR": str(store_data), "TESTING": True, "HUB_URL": HUB})


def _sku(db) -> str:
    return db.execute(
        "SELECT l.sku FROM stock_levels l JOIN stores s ON s.id = l.store_id AND s.is_self = 1 "
        "WHERE l.qty > 3 LIMIT 1"
    ).fetchone()[0]


def _ref(db, sku) -> str:
    return db.execute(
        "SELECT p.ref FROM variants v JOIN products p ON p.pk = v.product_pk WHERE v.sku = ?", [sku]
    ).fetchone()[0]


def test_healthz_without_a_hub(client):
    h = client.get("/healthz").json
    assert h["ok"] is True and h["hub_configured"] is False and h["online"] is False
    assert h["outbox_depth"] == 0 and h["oldest_unsent_age_s"] is None and h["parked"] == 0
    assert {"last_sync_at", "cursor", "last_error", "store_id"} <= set(h)


def test_healthz_reports_the_queue_and_the_link(hub_app, store_db):
    sku = _sku(store_db)
    a = adjust(store_db, sku, 1)["id"]
    adjust(store_db, sku, 1)
    outbox.park(store_db, a, "unknown_sku", "no variant")
    state.record_failure(store_db, "cannot reach the hub: ConnectionError", "push")
    h = hub_app.test_client().get("/healthz").json
    assert h["hub_configured"] is True and h["online"] is False
    assert (h["outbox_depth"], h["parked"]) == (1, 1)
    assert h["oldest_unsent_age_s"] >= 0
    assert "cannot reach" in h["last_error"]
    state.record_success(store_db, "push")
    h = hub_app.test_client().get("/healthz").json
    assert h["online"] is True and h["last_error"] is None and h["last_sync_at"]


def test_staff_status_needs_a_staff_login(hub_app):
    r = hub_app.test_client().get("/staff/status")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    r = hub_app.test_client().get("/staff/status", headers={"HX-Request": "true"})
    assert "/staff/login" in r.headers["HX-Redirect"]


def test_staff_status_page_and_partial(hub_app, store_db, store_data):
    sku = _sku(store_db)
    bad = adjust(store_db, sku, -1)["id"]
    outbox.park(store_db, bad, "unknown_sku", "no variant X")
    adjust(store_db, sku, 1)
    client = hub_app.test_client()
    staff_login(client, store_data)
    page = client.get("/staff/status")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Hors ligne" in text and "Réessayer maintenant" in text
    assert "unknown_sku" in text and "no variant X" in text
    assert 'hx-trigger="every 2s"' in text and 'hx-swap="outerHTML"' in text
    assert 'data-count="1">1 opération en attente (ventes, stock, commandes)<' in text
    partial = client.get("/staff/status", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="sync-status"') and "<html" not in body
    assert "HX-Request" in partial.headers["Vary"]


def test_first_sync_progress_is_shown(hub_app, store_db, store_data):
    from app.core import db as dbmod

    with dbmod.write(store_db):
        dbmod.set_meta(store_db, state.PULL_APPLIED, "4000")
        dbmod.set_meta(store_db, state.PULL_REMAINING, "6000")
    client = hub_app.test_client()
    staff_login(client, store_data)
    text = client.get("/staff/status").get_data(as_text=True)
    assert '<progress id="sync-progress" max="10000" value="4000">' in text


def test_retry_now_needs_the_csrf_token_and_sets_the_flag(store_data, store_db):
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(store_data), "HUB_URL": HUB})  # CSRF on
    client = app.test_client()
    assert client.post("/staff/sync/retry").status_code == 400
    assert not state.take_retry_request(store_db)
    staff_login(client, store_data)
    page = client.get("/staff/status").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/staff/sync/retry", data={"csrf_token": token})
    assert r.status_code == 302
    assert state.take_retry_request(store_db)


def test_kiosk_says_offline_with_the_time_of_the_last_sync(hub_app, store_db):
    sku = _sku(store_db)
    ref = _ref(store_db, sku)
    client = hub_app.test_client()
    # Never synced: "offline" alone.
    text = client.get(f"/product/{ref}?sku={sku}").get_data(as_text=True)
    assert "hors ligne" in text
    # Synced at 13:02 UTC (14:02 in Paris), offline since.
    last = clock.parse_iso("2026-01-15T13:02:00Z")
    state.record_success(store_db, "pull", last)
    state.record_failure(store_db, "cannot reach the hub", "pull", last + timedelta(minutes=5))
    text = client.get(f"/product/{ref}?sku={sku}").get_data(as_text=True)
    assert "hors ligne — stock au 14:02" in text
    with client.session_transaction() as s:
        s["lang"] = "en"
    text = client.get(f"/product/{ref}?sku={sku}").get_data(as_text=True)
    assert "offline — stock as of 2:02" in text


def test_kiosk_shows_no_offline_note_when_online_or_without_hub(hub_app, client, store_db):
    sku = _sku(store_db)
    ref = _ref(store_db, sku)
    assert "hors ligne" not in client.get(f"/product/{ref}?sku={sku}").get_data(as_text=True)
    state.record_success(store_db, "pull")
    text = hub_app.test_client().get(f"/product/{ref}?sku={sku}").get_data(as_text=True)
    assert "hors ligne" not in text


def test_open_stock_panel_learns_that_the_store_went_offline(hub_app, store_db):
    sku = _sku(store_db)
    ref = _ref(store_db, sku)
    state.record_success(store_db, "pull")
    client = hub_app.test_client()
    page = client.get(f"/product/{ref}?sku={sku}").get_data(as_text=True)
    version = re.search(r'data-stock-version="([^"]+)"', page).group(1)
    url = f"/product/{ref}/stock"
    assert client.get(url, query_string={"sku": sku, "v": version}).status_code == 204
    state.record_failure(store_db, "cannot reach the hub", "pull")
    panel = client.get(url, query_string={"sku": sku, "v": version})
    assert panel.status_code == 200 and "hors ligne" in panel.get_data(as_text=True)
