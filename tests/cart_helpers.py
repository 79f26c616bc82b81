"""Cart QR codes as the hub mints them, for store-side tests without a hub."""

from __future__ import annotations

from typing import Any

from app.core import cart_codec
from app.core.cart_codec import CartLine

from .order_helpers import KID, hub_key


def cart_token(lines: list[CartLine], *, cart_id: str | None = None, **kwargs: Any) -> str:
    """A hub-signed cart token (self-contained when it fits) with the test hub key."""
    private, _ = hub_key()
    return cart_codec.mint_cart_token(
        private, cart_id or cart_codec.new_cart_id(), lines, kid=KID, **kwargs
    )


def stocked_variants(db, n: int, *, here_min: int = 1) -> list[dict[str, Any]]:
    """``n`` variants with at least ``here_min`` units in this store, with their price."""
    return db.execute_returning_dicts(
        """SELECT v.sku, v.ean, p.ref, p.name_fr, v.size,
                  COALESCE(v.price_cents, p.price_cents) AS price_cents, l.qty
           FROM variants v JOIN products p ON p.pk = v.product_pk
           JOIN stock_levels l ON l.sku = v.sku
             AND l.store_id = (SELECT id FROM stores WHERE is_self = 1)
           WHERE l.qty >= ? ORDER BY v.sku LIMIT ?""",
        [here_min, n],
    )


def absent_variants(db, n: int) -> list[dict[str, Any]]:
    """``n`` variants with no unit in this store."""
    return db.execute_returning_dicts(
        """SELECT v.sku, p.ref, COALESCE(v.price_cents, p.price_cents) AS price_cents
           FROM variants v JOIN products p ON p.pk = v.product_pk
           LEFT JOIN stock_levels l ON l.sku = v.sku
             AND l.store_id = (SELECT id FROM stores WHERE is_self = 1)
           WHERE COALESCE(l.qty, 0) = 0 ORDER BY v.sku LIMIT ?""",
        [n],
    )
