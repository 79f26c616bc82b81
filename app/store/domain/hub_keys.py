"""The hub's public keys, received through the change feed: pickup QR codes and cart
QR codes are checked offline with them."""

from __future__ import annotations

from sqlite_utils import Database

from app.core import tokens


def hub_keys(db: Database) -> dict[str, bytes]:
    """The hub's public keys by key id (from the change feed)."""
    keys = {}
    for kid, public in db.execute("SELECT kid, public_key FROM hub_keys").fetchall():
        try:
            keys[kid] = tokens.public_key_from_b64(public)
        except ValueError:
            continue
    return keys


def apply_hub_key_changes(db: Database, changes: list[dict], own: str | None) -> int:
    """Upsert the hub's public keys (feed applier)."""
    for change in changes:
        d = change["data"]
        tokens.public_key_from_b64(d["public_key"])  # refuse a malformed key now
        db.execute(
            """INSERT INTO hub_keys (kid, alg, public_key) VALUES (?, ?, ?)
               ON CONFLICT (kid) DO UPDATE SET alg = excluded.alg,
                   public_key = excluded.public_key""",
            [d["kid"], d.get("alg") or "Ed25519", d["public_key"]],
        )
    return len(changes)
