"""Named schema migrations for the hub database (sqlite-utils ``Migrations``).

The hub keeps its own SQLite file (``hub.db``), separate from any store's. Never edit
a migration that has shipped: add a new one (web orders, online carts and promotions
come as later migrations). Each runs in its own transaction with the record that it ran.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .. import db as dbmod

hub_migrations = Migrations("kiosk_hub")


@hub_migrations(name="m001_stores_catalog_sync")
def m001_stores_catalog_sync(db: Database) -> None:
    for sql in (
        # Ids are random ("st-" + 6 base32 characters): never sequential, never guessable
        # from one another. The secret is the HMAC key of the store's requests; it must
        # be stored in clear because the hub recomputes signatures with it.
        """CREATE TABLE stores (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            city TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            opening_hours TEXT,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # categories, products and variants: the same columns as the store's m001, so
        # app.seed.seed_catalog fills both and a change's data maps 1:1 onto a store row.
        """CREATE TABLE categories (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name_fr TEXT NOT NULL,
            name_en TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE products (
            pk INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            category_id INTEGER NOT NULL REFERENCES categories(id),
            brand TEXT NOT NULL DEFAULT '',
            name_fr TEXT NOT NULL,
            name_en TEXT NOT NULL,
            description_fr TEXT NOT NULL DEFAULT '',
            description_en TEXT NOT NULL DEFAULT '',
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
        )""",
        "CREATE INDEX products_category ON products(category_id, name_fr)",
        """CREATE TABLE variants (
            sku TEXT PRIMARY KEY,
            product_pk INTEGER NOT NULL REFERENCES products(pk),
            ean TEXT NOT NULL UNIQUE,
            size TEXT NOT NULL,
            size_order INTEGER NOT NULL DEFAULT 0,
            colour_code TEXT NOT NULL,
            colour_fr TEXT NOT NULL,
            colour_en TEXT NOT NULL,
            colour_hex TEXT NOT NULL,
            price_cents INTEGER CHECK (price_cents IS NULL OR price_cents >= 0)
        )""",
        "CREATE INDEX variants_product ON variants(product_pk, colour_code, size_order)",
        # The hub's level of every store's stock: the sum of all movements it accepted.
        """CREATE TABLE stock_levels (
            store_id TEXT NOT NULL,
            sku TEXT NOT NULL,
            qty INTEGER NOT NULL,
            as_of TEXT NOT NULL,
            PRIMARY KEY (store_id, sku)
        ) WITHOUT ROWID""",
        # Every transaction a store sent, under its id: the PRIMARY KEY is the UNIQUE
        # constraint that makes effects exactly-once, since the row is written in the
        # same database transaction as the effects. Rejections are kept too, so a retry
        # gets the same answer.
        """CREATE TABLE transactions (
            id TEXT PRIMARY KEY,
            store_id TEXT NOT NULL,
            type TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
            reason TEXT,
            result TEXT,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX transactions_store ON transactions(store_id, received_at)",
        # The change feed. seq is the cursor: AUTOINCREMENT never reuses a number, and
        # SQLite's single writer makes seqs visible in order (see changes.py).
        # store_id NULL means "for every store".
        """CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            store_id TEXT,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # seq is the rowid, so "seq > ?" is already a range scan; this index makes the
        # per-store count (`remaining`) an index-only scan of two ranges.
        "CREATE INDEX changes_store_seq ON changes(store_id, seq)",
        # Nonces seen in the last NONCE_TTL_S seconds, per store (replay protection).
        """CREATE TABLE nonces (
            store_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            ts INTEGER NOT NULL,
            PRIMARY KEY (store_id, nonce)
        ) WITHOUT ROWID""",
        "CREATE INDEX nonces_ts ON nonces(ts)",
    ):
        db.execute(sql)


def migrate(db: Database) -> list[str]:
    """Apply pending hub migrations under the write lock; return the names applied."""
    with dbmod.write(db):
        pending = [m.name for m in hub_migrations.pending(db)]
        hub_migrations.apply(db)
    return pending
