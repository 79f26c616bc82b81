"""The stores the hub knows: ids, names, addresses and the secrets they sign with."""

from __future__ import annotations

import json
import secrets
from typing import Any

from app.core.clock import now_iso
from app.core.protocol import CHANGE_STORE
from app.core.signing import new_secret
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.changes import append_change

# Crockford's base32 alphabet in lower case: no i, l, o, u to misread on a label.
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 6


def new_store_id() -> str:
    """A random store id such as ``st-p4x8vd`` (30 random bits, never sequential)."""
    return "st-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def store_change_data(store: dict[str, Any]) -> dict[str, Any]:
    """What the change feed says about a store (never its secret)."""
    return {k: store[k] for k in ("id", "name", "city", "address")}


def insert_store(
    db: Db,
    store_id: str,
    name: str,
    city: str = "",
    address: str = "",
    opening_hours: dict[str, Any] | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    """Register a store with a given id and announce it on the feed; return id and secret."""
    secret = secret or new_secret()
    row = {"id": store_id, "name": name, "city": city, "address": address}
    with hdb.write(db):
        hdb.execute(
            db,
            "INSERT INTO stores (id, name, city, address, opening_hours, secret, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                store_id,
                name,
                city,
                address,
                None if opening_hours is None else json.dumps(opening_hours),
                secret,
                now_iso(),
            ],
        )
        append_change(db, CHANGE_STORE, store_id, store_change_data(row))
    return {"id": store_id, "secret": secret}


def add_store(
    db: Db,
    name: str,
    city: str = "",
    address: str = "",
    opening_hours: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Register a new store under a fresh random id; return ``{id, secret}``."""
    if not name.strip():
        raise ValueError("a store needs a name")
    with hdb.write(db):
        # 2^30 ids: a collision is unlikely but cheap to rule out under the write lock.
        while True:
            store_id = new_store_id()
            if hdb.one(db, "SELECT 1 AS found FROM stores WHERE id = ?", [store_id]) is None:
                break
        return insert_store(db, store_id, name.strip(), city, address, opening_hours)


def secret_for(db: Db, store_id: str) -> str | None:
    """The signing secret of ``store_id``, or None if the hub does not know it."""
    return hdb.scalar(db, "SELECT secret FROM stores WHERE id = ?", [store_id])


def list_stores(db: Db) -> list[dict[str, Any]]:
    """Every store, by name, without secrets."""
    rows = hdb.rows(
        db,
        "SELECT id, name, city, address, opening_hours, created_at FROM stores ORDER BY name, id",
    )
    for r in rows:
        r["opening_hours"] = json.loads(r["opening_hours"]) if r["opening_hours"] else None
    return rows
