"""Web orders at the hub: placing them, their feed data, and the shopper's access key.

An order is placed at the hub (the web shop), reserved out of its store's stock, and
sent to that store only, as an ``order`` change (docs/protocol.md, Click-and-collect).
From then on the store moves it through ``order.*`` transactions
(:mod:`app.hub.protocol.orders`). Reading one: :mod:`.order_rows`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core import tokens
from app.core.clock import iso, utcnow
from app.core.pricing import PricedCart
from app.core.protocol import CHANGE_ORDER, CHANGE_STOCK
from app.core.secrets import hash_secret
from app.core.text import initials
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import catalog, changes, keys, notifications, order_people
from app.hub.domain.changes import append_change
from app.hub.domain.order_checks import OrderError, check_customer, check_lines
from app.hub.domain.order_rows import LINE_COLUMNS, LINE_FROM, get_order, order_lines
from app.hub.domain.pii import KeyRing
from app.hub.domain.registry import ID_ALPHABET

ORDER_ID_LENGTH = 16
PICKUP_CODE_DIGITS = 6
#: How long a pickup QR stays valid after the order is placed: beyond any expiry window
#: (the store decides expiry in opening days; the token only has to outlive it).
# Valid until the order can no longer be collected: up to 30 opening days from ready
# (about 35 calendar days), after preparation.
PICKUP_TOKEN_TTL_S = 60 * 24 * 3600


def new_order_id() -> str:
    """``o-`` + 16 random base32 characters (80 bits): never sequential."""
    return "o-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ORDER_ID_LENGTH))


def new_order_number() -> str:
    """``CC-`` + 8 random digits: what the customer reads out at the counter."""
    return "CC-" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_pickup_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**PICKUP_CODE_DIGITS):0{PICKUP_CODE_DIGITS}d}"


def demo_code_hash(code: str) -> str:
    """A cheap scrypt hash in :func:`app.core.secrets.hash_secret`'s format.

    Only for codes that are public anyway (demo orders listed in demo.json, benchmark
    orders): the store verifies it with the parameters written in the hash itself.
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, dklen=32, n=2**8, r=8, p=1)
    b64 = base64.b64encode
    return f"scrypt${2**8}$8$1${b64(salt).decode()}${b64(digest).decode()}"


def access_key(db: Db, order_id: str) -> str:
    """The secret that opens the order's shop page: an HMAC of its id, never the id alone."""
    secret = hdb.execute(db, "SELECT value FROM hub_meta WHERE key = 'shop_secret'").fetchone()[0]
    mac = hmac.new(bytes.fromhex(secret), f"shop:{order_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode("ascii")


def check_access_key(db: Db, order_id: str, key: str) -> bool:
    """Whether ``key`` opens ``order_id``'s page (constant-time compare)."""
    return hmac.compare_digest(access_key(db, order_id).encode(), (key or "").encode()[:64])


def shop_path(db: Db, order: dict[str, Any]) -> str:
    """The shopper's page for an order, with its access key."""
    return f"/orders/{order['number']}?k={access_key(db, order['id'])}"


def order_change_data(
    db: Db, order_id: str, tx_id: str | None = None, ring: KeyRing | None = None
) -> dict[str, Any]:
    """The ``data`` of the order's ``order`` change (docs/protocol.md); ``tx`` when given.

    The store is told only what it needs (RGPD): the customer's first name in
    ``customer_name`` (and its initial), no e-mail (``customer_email`` is null)."""
    order = get_order(db, order_id)
    if order is None:
        raise KeyError(order_id)
    first = order_people.person_of(db, ring, order_id).first_name
    data = {
        "id": order["id"],
        "number": order["number"],
        "store_id": order["store_id"],
        "status": order["status"],
        "customer_name": first,
        "customer_email": None,
        "customer_initials": initials(first),
        # The account behind the order (a random id, nothing personal): the counter
        # finds a customer's orders from their card (app/hub/domain/customer_feed.py).
        "customer_id": order.get("customer_id"),
        "placed_at": order["placed_at"],
        "promised_at": order["promised_at"],
        # When it became ready: the store counts the collection window from there,
        # also when it rebuilds its database from the feed.
        "ready_at": order["ready_at"],
        "expiry_days": order["expiry_days"],
        "pickup_code_hash": order["pickup_code_hash"],
        "lines": order_lines(db, order_id),
        "revision": order["revision"],
        # Store credit applied online (amount only, no code): the counter asks the rest.
        "credit_cents": int(order.get("credit_cents") or 0),
    }
    if tx_id is not None:
        data["tx"] = tx_id
    return data


def publish(
    db: Db,
    order_id: str,
    tx_id: str | None = None,
    bump: bool = True,
    ring: KeyRing | None = None,
) -> int:
    """Bump the order's revision and append its ``order`` change for its store only."""
    if bump:
        hdb.execute(
            db,
            "UPDATE orders SET revision = revision + 1, updated_at = ? WHERE id = ?",
            [iso(utcnow()), order_id],
        )
    data = order_change_data(db, order_id, tx_id, ring)
    return append_change(db, CHANGE_ORDER, order_id, data, store_id=data["store_id"])


# order_change_data's keys, in its order, as (key, SQL expression); the first name and
# its initials are parameters (opened and computed in Python, as the Python form does).
_ORDER_KEYS = [
    *((k, f"o.{k}") for k in "id number store_id status".split()),
    ("customer_name", "CAST(? AS text)"),
    ("customer_email", "NULL"),
    ("customer_initials", "CAST(? AS text)"),
    ("customer_id", "o.customer_id"),
    *((k, f"o.{k}") for k in "placed_at promised_at ready_at expiry_days pickup_code_hash".split()),
]


@functools.cache
def _order_data(dialect: str) -> str:
    """SQL for :func:`order_change_data`'s dict (without ``tx``), keys in the same order;
    two parameters: the customer's first name and its initials."""
    lines = catalog.json_array_sql(
        dialect,
        catalog.json_object_sql(dialect, LINE_COLUMNS),
        f"{LINE_FROM} WHERE l.order_id = o.id",
        "l.line",
    )
    return catalog.json_object_sql(
        dialect,
        [
            *_ORDER_KEYS,
            ("lines", lines),
            ("revision", "o.revision"),
            ("credit_cents", "COALESCE(o.credit_cents, 0)"),
        ],
    )


def publish_many(db: Db, order_ids: list[str], ring: KeyRing | None = None) -> tuple[int, int]:
    """Append the ``order`` change of many orders in SQL; return the first and last seq."""
    first = last = 0
    people = order_people.names_of(db, ring, order_ids)
    now = iso(utcnow())
    sql = (
        "INSERT INTO changes (kind, key, store_id, data, created_at) "  # noqa: S608 (constants)
        f"SELECT ?, o.id, o.store_id, {_order_data(hdb.dialect(db))}, ? FROM orders o "
        "WHERE o.id = ? RETURNING seq"
    )
    with hdb.write(db):  # the seqs drawn under the hub-wide write lock (changes.py)
        for order_id in order_ids:
            name = people[order_id].first_name if order_id in people else ""
            params = [CHANGE_ORDER, name, initials(name), now, order_id]
            last = int(hdb.scalar(db, sql, params))
            first = first or last
        changes.notify(db)
    return first, last


def reserve_stock(db: Db, store_id: str, sku: str, qty: int, as_of: str) -> int:
    """Move ``qty`` units out of the store's level (``reserved``) and log the level."""
    level = hdb.execute(
        db,
        "INSERT INTO stock_levels (store_id, sku, qty, as_of) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (store_id, sku) DO UPDATE SET qty = stock_levels.qty + excluded.qty, "
        "as_of = excluded.as_of RETURNING qty",
        [store_id, sku, -qty, as_of],
    ).fetchall()[0][0]
    data = {"store_id": store_id, "sku": sku, "qty": level, "as_of": as_of}
    append_change(db, CHANGE_STOCK, f"{store_id}/{sku}", data)
    return level


def create_order(
    db: Db,
    store_id: str,
    customer_name: str,
    customer_email: str,
    lines: list[dict[str, Any]],
    promised_at: datetime | str | None = None,
    expiry_days: int = 5,
    *,
    private_key: Ed25519PrivateKey,
    now: datetime | None = None,
    reserve: bool = True,
    check_stock: bool = True,
    code_hasher: Any = hash_secret,
    notify: bool = True,
    priced: PricedCart | None = None,
    ring: KeyRing | None = None,
) -> dict[str, Any]:
    """Place a web order for pickup in ``store_id``; return ``{order, pickup_code, ...}``.

    ``priced`` is the cart as the shopper was shown it
    (:func:`app.hub.domain.cart_prices.price_items`): each line then records that unit
    price and promotion discount, so the order costs what was shown (DESIGN.md, invariant
    4). It must cover exactly the order's skus and (merged) quantities, else
    ``OrderError("invalid_lines")``. Without it (seed, bench and demo orders) lines are at
    today's base price with no discount.

    Reserves the units (raises ``OrderError("out_of_stock")`` when the store's level is
    short unless ``check_stock`` is False), sends the order to its store only, and
    records the "placed" notification. Returns ``{"order": change data, "pickup_code",
    "pickup_token", "access_key", "shop_path"}``; the code is shown to nobody else.

    The name and e-mail are stored sealed under ``ring`` (the hub's key ring, else
    :func:`.order_people.ring_of`), never in clear (:mod:`.order_people`).
    """
    name, email = check_customer(customer_name, customer_email)
    ring = ring or order_people.ring_of(db)
    person = order_people.sealed_order_person(ring, name, email)
    if not isinstance(expiry_days, int) or not 1 <= expiry_days <= 30:
        raise OrderError("invalid_expiry", "expiry_days is 1 to 30")
    now = now or utcnow()
    placed_at = iso(now)
    if isinstance(promised_at, datetime):
        promised_at = iso(promised_at)
    code = new_pickup_code()
    code_hash = code_hasher(code)  # slow (scrypt): outside the write lock
    kid = keys.kid_for(private_key)
    with hdb.write(db):
        if hdb.execute(db, "SELECT 1 FROM stores WHERE id = ?", [store_id]).fetchone() is None:
            raise OrderError("unknown_store", f"no store {store_id}")
        checked = check_lines(db, lines, priced)
        if check_stock:
            for sku, qty, _price, _discount in checked:
                row = hdb.execute(
                    db,
                    "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?",
                    [store_id, sku],
                ).fetchone()
                if (row[0] if row else 0) < qty:
                    raise OrderError("out_of_stock", f"not enough {sku} in {store_id}")
        if hdb.execute(db, "SELECT 1 FROM hub_keys WHERE kid = ?", [kid]).fetchone() is None:
            keys.register_key(db, private_key)
        order_id, number = fresh_ids(db)
        token = tokens.mint(
            private_key,
            "pickup",
            {"o": order_id, "s": store_id},
            PICKUP_TOKEN_TTL_S,
            now=now.timestamp(),
            kid=kid,
        )
        hdb.insert(
            db,
            "orders",
            {
                "id": order_id,
                "number": number,
                "store_id": store_id,
                "status": "placed",
                **person,
                "placed_at": placed_at,
                "promised_at": promised_at,
                "expiry_days": expiry_days,
                "pickup_code": code,
                "pickup_code_hash": code_hash,
                "pickup_token": token,
                "revision": 1,
                "updated_at": placed_at,
            },
        )
        hdb.executemany(
            db,
            "INSERT INTO order_lines (order_id, line, sku, qty, price_cents, discount_cents) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(order_id, i, *line) for i, line in enumerate(checked, 1)],
        )
        if reserve:
            for sku, qty, _price, _discount in checked:
                reserve_stock(db, store_id, sku, qty, placed_at)
        publish(db, order_id, bump=False, ring=ring)
        if notify:
            notifications.record(db, get_order(db, order_id), "placed", now=now, ring=ring)
        data = order_change_data(db, order_id, ring=ring)
    return {
        "order": data,
        "pickup_code": code,
        "pickup_token": token,
        "access_key": access_key(db, order_id),
        "shop_path": shop_path(db, data),
    }


def fresh_ids(db: Db) -> tuple[str, str]:
    """A new order id and number, checked unused (call under the write lock)."""
    while True:
        order_id, number = new_order_id(), new_order_number()
        taken = hdb.execute(
            db, "SELECT 1 FROM orders WHERE id = ? OR number = ?", [order_id, number]
        ).fetchone()
        if taken is None:
            return order_id, number


def set_status(db: Db, order_id: str, status: str, at: str, **fields: Any) -> None:
    """Move an order to ``status`` (with the matching timestamp column, if any)."""
    columns = {"status": status, "updated_at": at, **fields}
    stamp = {
        "ready": "ready_at",
        "ready_partial": "ready_at",
        "collected": "collected_at",
        "expired": "expired_at",
    }.get(status)
    if stamp and stamp not in columns:
        columns[stamp] = at
    assignments = ", ".join(f"{name} = ?" for name in columns)
    hdb.execute(
        db,
        f"UPDATE orders SET {assignments} WHERE id = ?",  # noqa: S608 (names are ours)
        [*columns.values(), order_id],
    )
