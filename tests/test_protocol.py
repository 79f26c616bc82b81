"""The sync protocol's rules (app/core/protocol.py) are the ones both sides use: the
hub's handlers, its rejection reasons, the store's feed appliers and the kiosk's form."""

from __future__ import annotations

import pytest

from app.core import protocol
from app.store.domain import order_requests


def test_a_city_longer_than_the_hub_accepts_is_refused_at_the_kiosk():
    address = {"line1": "3 rue des Lilas", "postcode": "69003", "city": "L" * 100}
    assert protocol.MAX_CITY < 100 <= protocol.MAX_ADDRESS_LINE
    with pytest.raises(ValueError, match="^city$"):
        order_requests.check_customer("home", "Léa Roux", "lea@example.org", address)
    address["city"] = "L" * protocol.MAX_CITY
    customer = order_requests.check_customer("home", "Léa Roux", "lea@example.org", address)
    assert customer["address"]["city"] == address["city"]
    address["line1"] = "3" * protocol.MAX_ADDRESS_LINE  # the street keeps its own limit
    order_requests.check_customer("home", "Léa Roux", "lea@example.org", address)
