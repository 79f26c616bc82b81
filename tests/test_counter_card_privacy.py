"""« Ma carte » at the counter without a trace in an address (issue 14, RGPD): the card
is posted (a GET with its token is refused), and the customer's page it opens names
nobody in its URL (the customer id is held in the staff session a while)."""

from __future__ import annotations

import re

import pytest

from app.core import db as dbmod
from app.hub.domain import cards
from app.store.domain import customer_cards

from .conftest import staff_login
from .sync_fixtures import *  # noqa: F403
from .test_customer_card import _customer, _give_store_hub_keys, _payload, hub

pytestmark = pytest.mark.clock
__all__ = ["hub"]  # the fixture, shared with test_customer_card

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_a_card_at_the_counter_goes_by_post_and_opens_a_page_without_ids(
    hub, hub_data, store_data, store_db, fake_clock
):
    from app.store.app import create_app

    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    card_id = _payload(token)["c"]
    _give_store_hub_keys(hub, store_db)
    with dbmod.write(store_db):
        customer_cards.save_card(store_db, card_id, customer, "Chloé")
    http = create_app({"DATA_DIR": str(store_data), "TESTING": True}).test_client()
    staff_login(http, store_data)

    # In an address (a link, the tablet's history): refused, never read.
    page = http.get("/staff/scan", query_string={"code": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and "adresse web" in text and "Chloé" not in text

    csrf = _CSRF.search(http.get("/staff/orders").get_data(as_text=True)).group(1)
    page = http.post("/staff/scan", data={"csrf_token": csrf, "code": token})
    assert page.status_code == 302 and page.headers["Location"] == "/staff/customer"
    shown = http.get("/staff/customer")
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "Chloé" in text
    assert customer not in shown.request.url and card_id not in text
    # The old address with the id in it is gone.
    assert http.get(f"/staff/customers/{customer}").status_code == 404

    # Ten minutes after the scan (staff busy meanwhile), the page asks for the card again.
    fake_clock.advance(300)
    assert http.get("/staff/customer").status_code == 200
    fake_clock.advance(301)
    again = http.get("/staff/customer")
    text = again.get_data(as_text=True)
    assert again.status_code == 404 and "Scannez à nouveau la carte du client." in text
    assert "Chloé" not in text


def _collected_for_card(hub, hub_data, store_data, store_db):
    """A card whose customer collected an order here, and somebody else's order."""
    from app.store.domain.orders import pickup, preparation

    from .conftest import add_staff_member
    from .order_helpers import apply_orders, install_hub_key, order_data

    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    card_id = _payload(token)["c"]
    _give_store_hub_keys(hub, store_db)
    install_hub_key(store_db)
    with dbmod.write(store_db):
        customer_cards.save_card(store_db, card_id, customer, "Chloé")
    mine = {**order_data(store_db, customer="Chloé", email=""), "customer_id": customer}
    others = {**order_data(store_db, customer="Paul", email=""), "customer_id": "cus_other"}
    apply_orders(store_db, [mine, others])
    staff = add_staff_member(store_data, "Camille")
    for data in (mine, others):
        for ln in data["lines"]:
            preparation.scan_item(store_db, data["id"], ln["ean"], staff["id"])
        preparation.mark_ready(store_db, data["id"], "A1", staff["id"])
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr")
    return token, mine, others


def test_a_return_taken_from_the_scanned_card_needs_no_number_or_name(
    hub, hub_data, store_data, store_db, fake_clock
):
    from app.store.app import create_app

    token, mine, others = _collected_for_card(hub, hub_data, store_data, store_db)
    http = create_app({"DATA_DIR": str(store_data), "TESTING": True}).test_client()
    staff_login(http, store_data)
    csrf = _CSRF.search(http.get("/staff/orders").get_data(as_text=True)).group(1)
    # Without a card scanned, the card's return path leads to the usual search.
    r = http.post(f"/staff/returns/card/{mine['id']}", data={"csrf_token": csrf})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/returns"
    http.post("/staff/scan", data={"csrf_token": csrf, "code": token})
    page = http.get("/staff/customer").get_data(as_text=True)
    assert "1 commande retirée qui peut être rendue" in page
    assert mine["number"] in page and others["number"] not in page
    assert "Prendre un retour" in page and "2 articles retirés" in page
    r = http.post(f"/staff/returns/card/{mine['id']}", data={"csrf_token": csrf})
    assert r.status_code == 302 and r.headers["Location"] == f"/staff/returns/{mine['id']}"
    assert http.get(r.headers["Location"]).status_code == 200  # the return form opens
    # Somebody else's order is not opened by this card.
    r = http.post(f"/staff/returns/card/{others['id']}", data={"csrf_token": csrf})
    assert r.headers["Location"] == "/staff/returns"


def test_the_card_page_with_a_return_to_take_on_the_counter_tablet(
    hub, hub_data, store_data, store_db, fake_clock, server_factory, browser
):
    from playwright.sync_api import expect

    from .axe_helpers import assert_axe_clean
    from .card_scan import scan_card
    from .conftest import screenshot, staff_login_page

    token, mine, _ = _collected_for_card(hub, hub_data, store_data, store_db)
    server = server_factory(store_data)
    tablet = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = tablet.new_page()
    staff_login_page(page, server.url, store_data)
    scan_card(page, token)  # the handheld scanner's burst on the counter
    assert page.url == server.url + "/staff/customer"
    expect(page.locator("#customer-returnable")).to_have_text(
        "1 commande retirée qui peut être rendue"
    )
    screenshot(page, "counter-card-returnable-1280x800")
    assert_axe_clean(page, "the counter, a card with a return to take")
    page.locator(f"[data-return-order='{mine['number']}']").click()
    expect(page.locator(".return-form")).to_be_visible()
    screenshot(page, "counter-card-return-form-1280x800")
    tablet.close()
