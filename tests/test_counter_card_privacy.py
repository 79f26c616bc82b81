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
