"""Online carts at the hub: lines, the cart QR token, checkout and revocation.

A cart lives at the hub under a random id (:func:`app.core.cart_codec.new_cart_id`). Its QR
code carries a hub-signed ``cart`` token (:func:`app.core.cart_codec.mint_cart_token`): the lines
themselves when they fit, else only the id, which a store then looks up with
``GET /api/v1/carts/{id}`` (:func:`lookup_data`). Checking a cart out places a web
order (:func:`app.hub.domain.orders.create_order`) and revokes the cart in the same database
transaction: a ``revocation`` change tells every store to refuse its QR code from then
on, so one cart never becomes two orders nor opens again at a kiosk.

Every price shown for a cart goes through :mod:`app.hub.domain.cart_prices`, the one
door to :func:`app.core.pricing.price_cart` (the same function the stores use).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core import cart_codec as cartcodec
from app.core import pricing
from app.core.cart_codec import CartLine
from app.core.clock import iso, utcnow
from app.core.protocol import CHANGE_REVOCATION
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import keys
from app.hub.domain.cart_prices import catalog_rows, price_items
from app.hub.domain.changes import append_change
from app.hub.domain.orders import OrderError, create_order

MAX_LINES = cartcodec.MAX_LINES
MAX_QTY = cartcodec.MAX_QTY
SOURCES = ("web", "kiosk")


class CartError(ValueError):
    """A cart operation refused; ``code`` is stable for callers.

    Codes: ``unknown_cart``, ``cart_closed`` (ordered or revoked), ``unknown_sku``,
    ``too_many_lines``, ``bad_qty``, ``empty_cart``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- carts


def access_key(db: Db, cart_id: str) -> str:
    """The secret that opens a cart's page by link: an HMAC of its id (the QR shows the id)."""
    secret = hdb.execute(db, "SELECT value FROM hub_meta WHERE key = 'shop_secret'").fetchone()[0]
    mac = hmac.new(bytes.fromhex(secret), f"cart:{cart_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode("ascii")


def check_access_key(db: Db, cart_id: str, key: str) -> bool:
    """Whether ``key`` opens ``cart_id`` (constant-time compare)."""
    return hmac.compare_digest(access_key(db, cart_id).encode(), (key or "").encode()[:64])


def cart_path(db: Db, cart_id: str) -> str:
    """The web shop page that opens this cart in a browser (path and access key)."""
    return f"/shop/panier/{cart_id}?k={access_key(db, cart_id)}"


def get_cart(db: Db, cart_id: Any) -> dict[str, Any] | None:
    """One cart row as a dict, or None (also for anything not shaped like a cart id)."""
    if not cartcodec.is_cart_id(cart_id):
        return None
    return hdb.one(db, "SELECT * FROM carts WHERE id = ?", [cart_id])


def cart_lines(db: Db, cart_id: str) -> list[dict[str, Any]]:
    """A cart's lines ``{sku, qty, price_cents}`` in the order they were added."""
    return hdb.rows(
        db,
        "SELECT sku, qty, price_cents FROM cart_lines WHERE cart_id = ? ORDER BY position",
        [cart_id],
    )


def _open_cart(db: Db, cart_id: str) -> dict[str, Any]:
    cart = get_cart(db, cart_id)
    if cart is None:
        raise CartError("unknown_cart", "no such cart")
    if cart["status"] != "open":
        raise CartError("cart_closed", f"this cart is {cart['status']}")
    return cart


def _touch(db: Db, cart_id: str, at: str) -> None:
    hdb.execute(db, "UPDATE carts SET updated_at = ? WHERE id = ?", [at, cart_id])


def create_cart(
    db: Db,
    source: str = "web",
    lines: Sequence[CartLine] = (),
    now: datetime | None = None,
) -> str:
    """A new open cart holding ``lines`` (checked by the codec's rules); return its id."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    try:
        cartcodec.check_lines(list(lines))
    except cartcodec.CartError as exc:
        raise CartError("bad_lines", str(exc)) from exc
    at = iso(now or utcnow())
    with hdb.write(db):
        while True:
            cart_id = cartcodec.new_cart_id()
            if hdb.execute(db, "SELECT 1 FROM carts WHERE id = ?", [cart_id]).fetchone() is None:
                break
        hdb.execute(
            db,
            "INSERT INTO carts (id, status, source, created_at, updated_at) "
            "VALUES (?, 'open', ?, ?, ?)",
            [cart_id, source, at, at],
        )
        hdb.executemany(
            db,
            "INSERT INTO cart_lines (cart_id, sku, qty, price_cents, position) "
            "VALUES (?, ?, ?, ?, ?)",
            [(cart_id, ln.sku, ln.qty, ln.price_cents, i) for i, ln in enumerate(lines, 1)],
        )
    return cart_id


def add_item(
    db: Db, cart_id: str, sku: str, qty: int = 1, now: datetime | None = None
) -> dict[str, Any]:
    """Put ``qty`` of ``sku`` in the cart (added to a line already there); return the line.

    The line's price is today's base unit price (what ``price_cents`` means in a cart).
    """
    if type(qty) is not int or not 1 <= qty <= MAX_QTY:
        raise CartError("bad_qty", f"quantities are 1 to {MAX_QTY}")
    at = iso(now or utcnow())
    with hdb.write(db):
        _open_cart(db, cart_id)
        row = catalog_rows(db, [sku]).get(sku)
        if row is None:
            raise CartError("unknown_sku", f"no variant {sku}")
        existing = hdb.execute(
            db, "SELECT qty FROM cart_lines WHERE cart_id = ? AND sku = ?", [cart_id, sku]
        ).fetchone()
        if existing is not None:
            if existing[0] + qty > MAX_QTY:
                raise CartError("bad_qty", f"at most {MAX_QTY} of one item")
            hdb.execute(
                db,
                "UPDATE cart_lines SET qty = qty + ?, price_cents = ? "
                "WHERE cart_id = ? AND sku = ?",
                [qty, row["unit_cents"], cart_id, sku],
            )
        else:
            n, last = hdb.execute(
                db,
                "SELECT count(*), coalesce(max(position), 0) FROM cart_lines WHERE cart_id = ?",
                [cart_id],
            ).fetchone()
            if n >= MAX_LINES:
                raise CartError("too_many_lines", f"a cart holds at most {MAX_LINES} items")
            hdb.execute(
                db,
                "INSERT INTO cart_lines (cart_id, sku, qty, price_cents, position) "
                "VALUES (?, ?, ?, ?, ?)",
                [cart_id, sku, qty, row["unit_cents"], last + 1],
            )
        _touch(db, cart_id, at)
        line = hdb.rows(
            db,
            "SELECT sku, qty, price_cents FROM cart_lines WHERE cart_id = ? AND sku = ?",
            [cart_id, sku],
        )[0]
    return line


def set_qty(db: Db, cart_id: str, sku: str, qty: int, now: datetime | None = None) -> None:
    """Set a line's quantity; 0 removes the line. A sku not in the cart is unknown_sku."""
    if type(qty) is not int or not 0 <= qty <= MAX_QTY:
        raise CartError("bad_qty", f"quantities are 0 to {MAX_QTY}")
    with hdb.write(db):
        _open_cart(db, cart_id)
        if qty == 0:
            changed = hdb.execute(
                db, "DELETE FROM cart_lines WHERE cart_id = ? AND sku = ?", [cart_id, sku]
            ).rowcount
        else:
            changed = hdb.execute(
                db,
                "UPDATE cart_lines SET qty = ? WHERE cart_id = ? AND sku = ?",
                [qty, cart_id, sku],
            ).rowcount
        if not changed:
            raise CartError("unknown_sku", f"{sku} is not in this cart")
        _touch(db, cart_id, iso(now or utcnow()))


def revocation_data(cart_id: str, at: str) -> dict[str, Any]:
    """The ``data`` of a cart's ``revocation`` change (docs/protocol.md)."""
    return {"kind": "cart", "id": cart_id, "at": at}


def close_cart(
    db: Db,
    cart_id: str,
    status: str = "revoked",
    order_id: str | None = None,
    now: datetime | None = None,
) -> int:
    """Mark an open cart ``ordered`` or ``revoked`` and tell every store; return the seq."""
    if status not in ("ordered", "revoked"):
        raise ValueError("status is ordered or revoked")
    at = iso(now or utcnow())
    with hdb.write(db):
        _open_cart(db, cart_id)
        hdb.execute(
            db,
            "UPDATE carts SET status = ?, order_id = ?, updated_at = ? WHERE id = ?",
            [status, order_id, at, cart_id],
        )
        # For every store (store_id NULL): any of them may be shown this cart's QR code.
        return append_change(
            db, CHANGE_REVOCATION, cart_id, revocation_data(cart_id, at), store_id=None
        )


def cart_token(
    db: Db, private_key: Ed25519PrivateKey, cart_id: str, now: float | None = None
) -> str:
    """A fresh signed QR token for an open cart: inline lines when they fit, else the id."""
    _open_cart(db, cart_id)
    lines = [CartLine(r["sku"], r["qty"], r["price_cents"]) for r in cart_lines(db, cart_id)]
    return cartcodec.mint_cart_token(
        private_key, cart_id, lines, kid=keys.kid_for(private_key), now=now
    )


def lookup_data(db: Db, cart: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /api/v1/carts/{id}`` says about an open cart."""
    return {
        "id": cart["id"],
        "status": cart["status"],
        "lines": cart_lines(db, cart["id"]),
        "updated_at": cart["updated_at"],
    }


def import_lines(
    db: Db,
    lines: Sequence[CartLine],
    source: str = "kiosk",
    now: datetime | None = None,
) -> dict[str, Any]:
    """A new cart from a kiosk's lines at today's prices; say what changed or was dropped.

    Returns ``{"cart_id" (None when nothing was kept), "dropped": [sku],
    "changed": [{"sku", "was_cents", "now_cents"}]}``. Prices compared are base unit
    prices (the ``PRICE`` of the line codec).
    """
    rows = catalog_rows(db, [ln.sku for ln in lines])
    kept, dropped, changed = [], [], []
    for ln in lines:
        row = rows.get(ln.sku)
        if row is None:
            dropped.append(ln.sku)
            continue
        if row["unit_cents"] != ln.price_cents:
            changed.append(
                {"sku": ln.sku, "was_cents": ln.price_cents, "now_cents": row["unit_cents"]}
            )
        kept.append(CartLine(ln.sku, ln.qty, row["unit_cents"]))
    cart_id = create_cart(db, source, kept, now) if kept else None
    return {"cart_id": cart_id, "dropped": dropped, "changed": changed}


# --------------------------------------------------------------------------- checkout


def store_levels(db: Db, store_id: str, skus: Iterable[str]) -> dict[str, int]:
    """sku -> the hub's level of ``store_id``'s stock (0 when it has none)."""
    wanted = sorted(set(skus))
    levels = dict.fromkeys(wanted, 0)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for sku, qty in hdb.execute(
            db,
            f"SELECT sku, qty FROM stock_levels WHERE store_id = ? AND sku IN ({marks})",  # noqa: S608
            [store_id, *chunk],
        ).fetchall():
            levels[sku] = max(0, qty)
    return levels


def checkout(
    db: Db,
    cart_id: str,
    store_id: str,
    customer_name: str,
    customer_email: str,
    *,
    private_key: Ed25519PrivateKey,
    now: datetime | None = None,
    expected_total: int | None = None,
) -> dict[str, Any]:
    """Place the cart as a click-and-collect order in ``store_id`` and revoke the cart.

    ``expected_total``: the total the shopper saw; if the price changed since (a
    promotion ended), CartError("price_changed") and nothing is written, so the shopper
    confirms the new total instead of paying it unawares.

    The order records the web prices the cart page showed
    (:func:`app.hub.domain.cart_prices.price_items`, no store: the shop's pages price
    without one) at ``now``, promotions included.
    Returns :func:`app.hub.domain.orders.create_order`'s result. Raises CartError (cart
    unknown, closed or empty) or OrderError (bad customer, out of stock, unknown store).
    """
    now = now or utcnow()
    # One write transaction for the order and the cart's revocation: a double-submitted
    # form, or two phones sharing the cart, get one order; the second finds it closed.
    # The pickup-code hash then runs under the write lock (~60 ms), as it does for
    # order.request transactions: fine for a human clicking "place the order".
    with hdb.write(db):
        _open_cart(db, cart_id)
        lines = cart_lines(db, cart_id)
        if not lines:
            raise CartError("empty_cart", "the cart is empty")
        items = pricing.cart_items(db, [(ln["sku"], ln["qty"]) for ln in lines])
        known = {item.sku for item in items}
        missing = [ln["sku"] for ln in lines if ln["sku"] not in known]
        if missing:
            raise OrderError("unknown_sku", f"no variant {missing[0]}")
        # Priced under the same write lock as the order: a promotion published or ended
        # between the two cannot slip in.
        priced = price_items(db, items, store_id=None, now=now)
        if expected_total is not None and priced.total_cents != expected_total:
            raise CartError("price_changed", "the cart's total changed since it was shown")
        made = create_order(
            db,
            store_id,
            customer_name,
            customer_email,
            [{"sku": ln["sku"], "qty": ln["qty"]} for ln in lines],
            private_key=private_key,
            now=now,
            priced=priced,
        )
        close_cart(db, cart_id, "ordered", order_id=made["order"]["id"], now=now)
    return made
