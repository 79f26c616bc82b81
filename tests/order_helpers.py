"""Web orders in a store database without a hub: the ``order`` and ``hub_key`` changes
the hub would send, applied through the change feed exactly as real orders arrive."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from app.core import clock, tokens
from app.core.secrets import hash_secret
from app.store.domain.stock import self_store_id
from app.store.sync import feed

KID = "test-k1"
PICKUP_CODE = "482913"


@cache
def hub_key():
    """A hub signing key for the whole test session: (private key, base64url public)."""
    pem, _ = tokens.generate_keypair()
    private = tokens.load_private_key(pem)
    return private, tokens.public_key_b64(private)


@cache
def code_hash(code: str = PICKUP_CODE) -> str:
    return hash_secret(code)


def install_hub_key(db) -> None:
    """The ``hub_key`` change, so the store can verify pickup QR codes."""
    _, public = hub_key()
    change = {
        "seq": 1,
        "kind": "hub_key",
        "key": KID,
        "data": {"kid": KID, "alg": "Ed25519", "public_key": public},
    }
    feed.apply_page(db, {"changes": [change]}, self_store_id(db))


def pick_variants(db, n: int = 3) -> list[dict[str, Any]]:
    """``n`` variants of different products with their category, for order lines."""
    return db.execute_returning_dicts(
        """SELECT v.sku, v.ean, p.name_fr, p.name_en, v.size, v.colour_fr, v.colour_en,
                  c.slug AS category_slug, p.price_cents
           FROM variants v JOIN products p ON p.pk = v.product_pk
           JOIN categories c ON c.id = p.category_id
           WHERE v.rowid IN (SELECT min(rowid) FROM variants GROUP BY product_pk)
           ORDER BY p.pk LIMIT ?""",
        [n],
    )


def order_data(
    db,
    *,
    variants: list[dict[str, Any]] | None = None,
    qtys: list[int] | None = None,
    status: str = "placed",
    customer: str = "Élodie Martin",
    email: str = "elodie.martin@example.org",
    placed_at: datetime | None = None,
    expiry_days: int = 3,
    code_hash_value: str | None = None,
    store_id: str | None = None,
    revision: int = 1,
    order_id: str | None = None,
    number: str | None = None,
) -> dict[str, Any]:
    """The data of an ``order`` change as the hub sends it."""
    variants = variants or pick_variants(db, 2)
    qtys = qtys or [1] * len(variants)
    placed = placed_at or clock.utcnow() - timedelta(hours=3)
    ready = status in ("ready", "ready_partial", "partially_collected", "collected")
    return {
        "id": order_id or "o-" + secrets.token_hex(8),
        "number": number or f"CC-{secrets.randbelow(10**8):08d}",
        "store_id": store_id or self_store_id(db),
        "status": status,
        "customer_name": customer,
        "customer_email": email,
        "customer_initials": "".join(w[0] + "." for w in customer.split()),
        "placed_at": clock.iso(placed),
        "promised_at": clock.iso(placed + timedelta(hours=2)),
        "expiry_days": expiry_days,
        "pickup_code_hash": code_hash_value if code_hash_value is not None else code_hash(),
        "lines": [
            {
                "line": i,
                **{
                    k: v[k]
                    for k in (
                        "sku",
                        "ean",
                        "name_fr",
                        "name_en",
                        "size",
                        "colour_fr",
                        "colour_en",
                        "category_slug",
                        "price_cents",
                    )
                },
                "qty": q,
                "qty_ready": q if ready else 0,
                "qty_collected": q if status == "collected" else 0,
                "qty_returned": 0,
            }
            for i, (v, q) in enumerate(zip(variants, qtys, strict=True), 1)
        ],
        "revision": revision,
    }


def apply_orders(db, datas: list[dict[str, Any]]) -> None:
    """Apply ``order`` changes through the feed."""
    changes = [{"seq": 0, "kind": "order", "key": d["id"], "data": d} for d in datas]
    feed.apply_page(db, {"changes": changes}, self_store_id(db))


def add_order(db, **kwargs: Any) -> dict[str, Any]:
    """One order arrived from the hub; returns its change data."""
    data = order_data(db, **kwargs)
    apply_orders(db, [data])
    return data


def pickup_token(
    order_id: str, store_id: str, ttl_s: int = 7 * 86400, now: float | None = None, private=None
) -> str:
    """A pickup QR token as the hub mints it."""
    key = private or hub_key()[0]
    now = clock.utcnow().timestamp() if now is None else now
    return tokens.mint(key, "pickup", {"o": order_id, "s": store_id}, ttl_s, now=now, kid=KID)
