"""The hub look-up behind a scanned cart whose QR code holds only a reference.

:func:`app.store.domain.carts.read_scanned` takes a ``lookup(cart_id)`` callable and
knows nothing of the hub client; this is the one the kiosk's cart view gives it.
"""

from __future__ import annotations

from typing import Any

from app.store.domain.carts import CartLookupError
from app.store.sync.client import HubClient, HubError


def get_cart(client: HubClient, cart_id: str) -> dict[str, Any]:
    """The cart ``cart_id`` held at the hub; a failure raises CartLookupError with the
    hub's error code (``unknown_cart``, ``cart_revoked``, ``rate_limited``; None when
    the hub did not answer)."""
    try:
        return client.get_cart(cart_id)
    except HubError as exc:
        raise CartLookupError(str(exc), exc.code) from exc
