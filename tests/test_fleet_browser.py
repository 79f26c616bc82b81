"""The fleet dashboard in a browser while a real store loses its link to a real hub.

What this proves, and what it cannot: the hub only knows what the store tells it.
Phase 1 fails only the store's transaction uploads (the proxy answers 503), so its
health reports still arrive: the dashboard shows the store online with an outbox
that grows with each stock adjustment. Phase 2 cuts the link entirely: the store
turns offline on the dashboard, which keeps showing the depth of the last report
(and says how old that report is) while the store, which goes on working, queues
more. Phase 3 restores the link: the queue drains and the store is back online.
"""

from __future__ import annotations

import requests
from playwright.sync_api import expect

from app.core import db as dbmod
from app.store.sync import state

from .conftest import screenshot
from .faultproxy import FaultProxy
from .hq_helpers import make_user
from .hub_fixtures import LYON
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import adjust_cli, hub_transactions, store_env, wait_for

OFFLINE_AFTER_S = 4


def _store_depth(url: str) -> int:
    return requests.get(f"{url}/healthz", timeout=5).json()["outbox_depth"]


def test_dashboard_shows_a_cut_off_store_offline_with_a_growing_outbox(
    hub_factory, hub_data, synced_store, server_factory, page
):
    # The table refreshes every second here (5 s in production): each phase is seen
    # within a second of the hub knowing it.
    settings = {"KIOSK_HUB_HQ_OFFLINE_AFTER_S": str(OFFLINE_AFTER_S), "KIOSK_HUB_HQ_REFRESH_S": "1"}
    hub = hub_factory(hub_data, settings)
    proxy = FaultProxy(
        hub.port, match=lambda method, path: path.startswith("/api/v1/transactions")
    ).start()
    try:
        env = {**store_env(proxy.url, hub_data, timeout=1.5), "KIOSK_HEALTH_INTERVAL_S": "1"}
        store = server_factory(synced_store, env)
        db = dbmod.connect(dbmod.db_path(synced_store))
        skus = [r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 5")]
        db.close()
        user = make_user(hub_data, "operations")

        page.goto(f"{hub.url}/hq/flotte")
        expect(page).to_have_url(f"{hub.url}/hq/login?next=/hq/flotte")
        page.get_by_label("Adresse e-mail").fill(user["email"])
        page.get_by_label("Mot de passe").fill(user["password"])
        page.get_by_role("button", name="Se connecter").click()
        expect(page).to_have_url(f"{hub.url}/hq/flotte")
        row = page.locator(f'tr[data-store="{LYON}"]')
        depth = row.locator('td[data-field="outbox_depth"] strong')
        expect(row).to_contain_text("En ligne", timeout=15_000)
        expect(depth).to_have_text("0", timeout=15_000)

        # Phase 1: uploads fail, health still arrives; each adjustment grows the queue.
        proxy.inject(*["503"] * 10_000)
        ids = []
        for n, sku in enumerate(skus[:3], start=1):
            ids.append(adjust_cli(synced_store, sku, 1))
            expect(depth).to_have_text(str(n), timeout=20_000)
        expect(row).to_contain_text("En ligne")
        expect(row).to_have_class("store-online")
        screenshot(page, "fleet-outbox-growing")

        # Phase 2: the link is cut. The store keeps working and queueing...
        proxy.cut()
        ids += [adjust_cli(synced_store, sku, 1) for sku in skus[3:5]]
        assert all(ids) and _store_depth(store.url) == 5
        # ...and the dashboard turns it offline, with the last depth it could know.
        expect(row).to_have_class("store-offline", timeout=30_000)
        expect(row).to_contain_text("Hors ligne")
        expect(row).to_contain_text("silencieux depuis")
        expect(depth).to_have_text("3")
        expect(row.locator('td[data-field="outbox_depth"]')).to_contain_text("rapport il y a")
        expect(page.locator(".fleet-summary")).to_contain_text("Hors ligne 1")
        page.locator(f'tr[data-store="{LYON}"]').scroll_into_view_if_needed()
        screenshot(page, "fleet-store-offline")

        # Phase 3: the link is back: the queue drains and the store is online again.
        proxy.clear()
        proxy.restore()
        # What the staff's "retry now" does: skip the backoff the failures built up.
        db = dbmod.connect(dbmod.db_path(synced_store))
        state.request_retry(db)
        db.close()
        expect(row).to_have_class("store-online", timeout=30_000)
        expect(depth).to_have_text("0", timeout=30_000)
        wait_for(
            lambda: set(hub_transactions(hub_data, ids).values()) == {1}, 10, "each once at the hub"
        )
        assert page.console_errors == []  # a CSP violation would be reported here
    finally:
        proxy.stop()
