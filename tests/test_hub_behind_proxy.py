"""The hub behind a reverse proxy: per-client limits count each shopper, not the proxy.

Without ``KIOSK_HUB_TRUSTED_PROXIES`` an ``X-Forwarded-For`` header is ignored (a
shopper cannot dodge the limit by writing one); with it, the address the proxy wrote
is the client's, so two shoppers behind the same proxy have a limit each.
"""

from __future__ import annotations

import pytest

from app.hub.app import create_hub_app
from app.hub.domain import customers

from .hub_fixtures import *  # noqa: F403
from .test_customer_accounts import Customer

pytestmark = pytest.mark.hub


def _ask(shopper: Customer, address: str, forwarded_for: str) -> int:
    return shopper.post(
        "/shop/compte/connexion",
        {"email": address},
        headers={"X-Forwarded-For": forwarded_for},
    ).status_code


def _use_up_the_client_limit(shopper: Customer, forwarded_for: str) -> None:
    for i in range(customers.CLIENT_LIMIT):
        assert _ask(shopper, f"c{i}@example.com", forwarded_for) == 200


def test_behind_one_proxy_each_shopper_has_a_limit(hub_factory, hub_data):
    hub = hub_factory(hub_data, {"KIOSK_HUB_TRUSTED_PROXIES": "1"})
    shopper = Customer(hub.url)
    _use_up_the_client_limit(shopper, "203.0.113.7")
    assert _ask(shopper, "one.more@example.com", "203.0.113.7") == 429
    # Another shopper behind the same proxy is not refused for the first one's codes.
    assert _ask(shopper, "another@example.com", "198.51.100.20") == 200


def test_without_a_proxy_the_header_is_not_believed(hub_server):
    shopper = Customer(hub_server.url)
    _use_up_the_client_limit(shopper, "203.0.113.7")
    # Writing another address in the header does not make another client.
    assert _ask(shopper, "another@example.com", "198.51.100.20") == 429


@pytest.mark.parametrize("value", [-1, 6, "two", True, 1.5])
def test_a_wrong_proxy_count_stops_the_start_with_the_reason(hub_data, value):
    with pytest.raises(RuntimeError, match="KIOSK_HUB_TRUSTED_PROXIES"):
        create_hub_app({"DATA_DIR": str(hub_data), "TRUSTED_PROXIES": value})
