"""axe-core on the click-and-collect counter screens (tablet, French): no serious or
critical violation on the staff login, the lists, an order, the preparation (after a
refused scan), the hand-over desk and form, and the return screens."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.core import db as dbmod

from .conftest import replaced, screenshot, staff_login_page
from .order_helpers import PICKUP_CODE, add_order, install_hub_key, pick_variants

pytestmark = pytest.mark.browser

TABLET = {"width": 1280, "height": 800}


def _serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_counter_screens_have_no_serious_axe_violation(browser, store_data, server_factory):
    from axe_playwright_python.sync_playwright import Axe

    db = dbmod.connect(dbmod.db_path(store_data))
    install_hub_key(db)
    v = pick_variants(db, 4)
    placed = add_order(db, variants=v[:2], qtys=[2, 1])
    ready = add_order(
        db,
        variants=v[2:4],
        qtys=[1, 2],
        status="ready",
        customer="Zoé Lefèvre",
        email="zoe@example.org",
    )
    db.close()
    server = server_factory(store_data)
    context = browser.new_context(viewport=TABLET, locale="fr-FR")
    page = context.new_page()
    axe = Axe()
    problems: dict[str, list[str]] = {}

    def check(label: str) -> None:
        results = axe.run(page)
        assert results.response["passes"], label  # axe really looked at the page
        found = _serious(results)
        if found:
            problems[label] = found
        screenshot(page, f"60-a11y-{label}")

    try:
        page.goto(server.url + "/staff/login")
        from .conftest import add_staff_member

        add_staff_member(store_data, "Camille")  # so the login lists a name
        page.reload()
        check("login")
        staff_login_page(page, server.url, store_data, role="manager")
        page.goto(server.url + "/staff/orders")
        expect(page.locator(".order-row")).to_have_count(1)
        check("orders-list")
        page.goto(server.url + "/staff/orders?view=ready")
        check("orders-ready")
        page.goto(server.url + f"/staff/orders/{placed['id']}")
        check("order")
        page.goto(server.url + f"/staff/orders/{placed['id']}/prepare")
        prep = replaced(page, "#prep")
        page.locator("#scan-code").fill(v[3]["ean"])
        page.locator("#scan-code").press("Enter")
        expect(prep.locator(".feedback-error")).to_be_visible()
        check("prepare-refused-scan")
        page.goto(server.url + "/staff/orders/handover")
        check("desk")
        page.locator("#order-number").fill(ready["number"])
        page.locator("#pickup-code").fill("000000")
        page.locator(".code-form button").click()
        expect(page.locator(".notice-error")).to_be_visible()
        check("desk-wrong-code")
        page.locator("#order-number").fill(ready["number"])
        page.locator("#pickup-code").fill(PICKUP_CODE)
        page.locator(".code-form button").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        page.locator("input[value=proxy]").check()
        page.locator("#collector-name").fill("Jean Dupont")
        check("handover")
        page.locator(".handover-form button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/handovers/"))
        check("handover-done")
        page.goto(server.url + "/staff/returns")
        check("returns")
        page.locator("#ret-number").fill(ready["number"])
        page.locator("#ret-who").fill("zoé")  # the first name: all the store holds
        page.locator(".code-form button").click()
        expect(page.locator(".return-form")).to_be_visible()
        check("return-form")
        page.locator("#rqty-2").fill("1")
        page.locator("#ret-reason").fill("Trop petit")
        page.locator(".return-form button[type=submit]").click()
        expect(page.locator(".notice-ok")).to_be_visible()
        check("return-done")
        page.goto(server.url + "/staff/returns/no-order")
        check("return-no-order")
        page.goto(server.url + f"/staff/orders/{ready['id']}/handover")
        check("handover-collected")  # nothing left: the refusal notice
    finally:
        context.close()
    assert problems == {}
