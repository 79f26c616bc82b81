"""Offline as staff and shoppers see it, in Chromium: a real hub, then no hub."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import run_kiosk, screenshot, staff_login_page
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, HubServer, store_env, wait_for

pytestmark = pytest.mark.browser


def _product(db):
    return db.execute(
        """SELECT v.sku, p.ref, l.qty FROM variants v
           JOIN products p ON p.pk = v.product_pk
           JOIN stock_levels l ON l.sku = v.sku AND l.store_id = ?
           WHERE l.qty >= 5 ORDER BY p.pk LIMIT 1""",
        [LYON],
    ).fetchone()


def test_hub_goes_away_kiosk_and_status_screen_say_so_then_recover(
    browser, hub_data, synced_store, server_factory
):
    from app.core import db as dbmod

    hub = HubServer(hub_data).start()
    store = server_factory(synced_store, store_env(hub.url, hub_data, timeout=2))
    db = dbmod.connect(dbmod.db_path(synced_store))
    sku, ref, qty = _product(db)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    try:
        staff_login_page(page, store.url, synced_store)
        page.goto(store.url + "/staff/status")
        expect(page.locator("body")).to_contain_text("En ligne", timeout=10000)
        screenshot(page, "30-staff-status-online")

        hub.stop()
        done = run_kiosk("stock", "adjust", sku, "-1", "--data", str(synced_store))
        assert done.returncode == 0, done.stderr
        # The status screen polls itself: offline, one item waiting, without a reload.
        expect(page.locator("body")).to_contain_text("Hors ligne", timeout=15000)
        expect(page.locator("body")).to_contain_text(re.compile(r"\b1\b"))
        screenshot(page, "31-staff-status-offline")

        kiosk = context.new_page()
        kiosk.goto(store.url + f"/product/{ref}?sku={sku}")
        here = kiosk.locator(".here")
        expect(here).to_have_attribute("data-qty", str(qty - 1))
        expect(here).to_contain_text(re.compile(r"hors ligne — stock au \d\d:\d\d"))
        here.scroll_into_view_if_needed()
        screenshot(kiosk, "32-kiosk-offline")

        hub.start()
        page.get_by_role("button", name=re.compile("Réessayer maintenant")).click()
        expect(page.locator("body")).to_contain_text("En ligne", timeout=20000)
        assert wait_for(
            lambda: (
                db.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0] == 0
            ),
            20,
            "the outbox to drain",
        )
        # Back online, the kiosk drops its offline note by itself.
        expect(here).not_to_contain_text("hors ligne", timeout=10000)
        expect(here).to_have_attribute("data-qty", str(qty - 1))
    finally:
        context.close()
        hub.stop()
        db.close()


def test_staff_status_screen_has_no_serious_axe_violation(
    browser, hub_data, synced_store, server_factory
):
    from axe_playwright_python.sync_playwright import Axe

    hub = HubServer(hub_data).start()
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(store.url + "/staff/login")
        login_problems = _serious(Axe().run(page))
        staff_login_page(page, store.url, synced_store)
        page.goto(store.url + "/staff/status")
        results = Axe().run(page)
        serious = [
            v["id"]
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [] and login_problems == []
    finally:
        context.close()
        hub.stop()


def _serious(results) -> list[str]:
    return [
        v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")
    ]
