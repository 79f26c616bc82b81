"""Named schema migrations for the hub database (sqlite-utils ``Migrations``).

The hub keeps its own SQLite file (``hub.db``), separate from any store's. Never edit
a migration that has shipped: add a new one (web orders, online carts and promotions
come as later migrations). Each runs in its own transaction with the record that it ran.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from app.core import db as dbmod

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
        # app.demo.seed.seed_catalog fills both and a change's data maps 1:1 onto a store row.
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


@hub_migrations(name="m002_click_and_collect")
def m002_click_and_collect(db: Database) -> None:
    for sql in (
        # Web orders to collect in a store. id ("o-" + 16 base32) and number ("CC-" + 8
        # digits) are random: a customer's number says nothing about anyone else's.
        # pickup_code is kept in clear at the hub only, because the hub is who sends it
        # to the customer (ready notification, resends); the feed carries only its hash.
        """CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            store_id TEXT NOT NULL REFERENCES stores(id),
            status TEXT NOT NULL CHECK (status IN ('placed', 'preparing', 'ready',
                'ready_partial', 'partially_collected', 'collected', 'expired', 'cancelled')),
            customer_name TEXT NOT NULL,
            customer_email TEXT NOT NULL,
            placed_at TEXT NOT NULL,
            promised_at TEXT,
            expiry_days INTEGER NOT NULL DEFAULT 5,
            pickup_code TEXT NOT NULL,
            pickup_code_hash TEXT NOT NULL,
            pickup_token TEXT NOT NULL,
            shelf_slot TEXT,
            ready_at TEXT,
            collected_at TEXT,
            expired_at TEXT,
            revision INTEGER NOT NULL DEFAULT 1,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX orders_store_status ON orders(store_id, status, placed_at)",
        """CREATE TABLE order_lines (
            order_id TEXT NOT NULL REFERENCES orders(id),
            line INTEGER NOT NULL,
            sku TEXT NOT NULL,
            qty INTEGER NOT NULL CHECK (qty > 0),
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
            qty_ready INTEGER NOT NULL DEFAULT 0,
            qty_collected INTEGER NOT NULL DEFAULT 0,
            qty_returned INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (order_id, line),
            CHECK (qty_ready BETWEEN 0 AND qty),
            CHECK (qty_collected BETWEEN 0 AND qty_ready),
            CHECK (qty_returned BETWEEN 0 AND qty_collected)
        ) WITHOUT ROWID""",
        # handover_id and return_id are PRIMARY KEYs: the same hand-over or return sent
        # under two transaction ids (two tablets, a retry with a new id) is kept once.
        """CREATE TABLE handovers (
            handover_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL REFERENCES orders(id),
            lines TEXT NOT NULL,
            collector TEXT NOT NULL,
            collector_name TEXT,
            method TEXT NOT NULL,
            override_reason TEXT,
            staff TEXT NOT NULL,
            manager TEXT,
            at TEXT NOT NULL,
            tx_id TEXT
        )""",
        "CREATE INDEX handovers_order ON handovers(order_id)",
        """CREATE TABLE returns (
            return_id TEXT PRIMARY KEY,
            order_id TEXT REFERENCES orders(id),
            store_id TEXT NOT NULL,
            lines TEXT NOT NULL,
            reason TEXT NOT NULL,
            refund TEXT NOT NULL,
            credit_code TEXT UNIQUE,
            staff TEXT NOT NULL,
            manager TEXT,
            at TEXT NOT NULL,
            tx_id TEXT
        )""",
        "CREATE INDEX returns_order ON returns(order_id)",
        # What the hub tells customers; the mailer sends rows whose sent_at is NULL.
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            order_id TEXT REFERENCES orders(id),
            customer_email TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('placed', 'ready', 'reminder', 'expired',
                'returned')),
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            qr_token TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT
        )""",
        "CREATE INDEX notifications_order ON notifications(order_id, id)",
        "CREATE INDEX notifications_pending ON notifications(id) WHERE sent_at IS NULL",
        # Public halves of the keys that sign QR tokens, by key id (rotation keeps old ones).
        """CREATE TABLE hub_keys (
            kid TEXT PRIMARY KEY,
            public_key TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # Hub-wide settings and secrets (the shop's access-key HMAC secret).
        "CREATE TABLE hub_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO hub_meta (key, value) VALUES ('shop_secret', lower(hex(randomblob(32))))",
    ):
        db.execute(sql)


@hub_migrations(name="m003_web_shop")
def m003_web_shop(db: Database) -> None:
    for sql in (
        # Online carts (app/hub/domain/carts.py). id is app.core.cart_codec.new_cart_id():
        # ~98 random bits, the only thing a cart QR names. An ordered or revoked cart is kept
        # (its id is on the feed as a revocation) but no longer opens anywhere.
        """CREATE TABLE carts (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'ordered', 'revoked')),
            source TEXT NOT NULL CHECK (source IN ('web', 'kiosk')),
            order_id TEXT REFERENCES orders(id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX carts_updated ON carts(status, updated_at)",
        # price_cents is the unit price when the line went in the cart: the store shows
        # what changed since (the QR token carries the same figure).
        """CREATE TABLE cart_lines (
            cart_id TEXT NOT NULL REFERENCES carts(id),
            sku TEXT NOT NULL,
            qty INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 20),
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
            position INTEGER NOT NULL,
            PRIMARY KEY (cart_id, sku)
        ) WITHOUT ROWID""",
        # Home deliveries asked for at a kiosk (order.request, fulfilment "home").
        # id ("d-" + 16 base32) and number ("LD-" + 8 digits) are random.
        """CREATE TABLE delivery_orders (
            id TEXT PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            request_id TEXT NOT NULL UNIQUE,
            origin_store_id TEXT NOT NULL REFERENCES stores(id),
            customer_name TEXT NOT NULL,
            customer_email TEXT NOT NULL,
            address_line1 TEXT NOT NULL,
            address_postcode TEXT NOT NULL,
            address_city TEXT NOT NULL,
            lines TEXT NOT NULL,
            total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
            status TEXT NOT NULL CHECK (status IN ('requested', 'shipped', 'delivered',
                'cancelled')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        # One row per order.request: request_id is the PRIMARY KEY, so the same request
        # sent again under another transaction id creates nothing twice.
        """CREATE TABLE order_requests (
            request_id TEXT PRIMARY KEY,
            store_id TEXT NOT NULL,
            fulfilment TEXT NOT NULL CHECK (fulfilment IN ('pickup', 'home')),
            payload_hash TEXT NOT NULL,
            result TEXT NOT NULL,
            tx_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # Sliding-window log of signed cart look-ups per store (app/hub/domain/ratelimit.py).
        """CREATE TABLE rate_events (
            bucket TEXT NOT NULL,
            at REAL NOT NULL
        )""",
        "CREATE INDEX rate_events_bucket ON rate_events(bucket, at)",
    ):
        db.execute(sql)


@hub_migrations(name="m004_head_office")
def m004_head_office(db: Database) -> None:
    for sql in (
        # Head-office console users. Ids are random ("hu-" + 12 hex); the password is
        # stored as a scrypt hash only (app.core.secrets.hash_secret). Wrong passwords
        # count up to a lockout that grows, like the staff PINs (app/hub/domain/hq_users.py).
        """CREATE TABLE hq_users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('marketing', 'operations', 'admin')),
            password_hash TEXT NOT NULL,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            lockouts INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
        )""",
        # API tokens for head-office tools: only a SHA-256 of the token is kept
        # (see app.hub.domain.hq_users.create_token for why a fast hash is right for these).
        """CREATE TABLE hq_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('marketing', 'operations', 'admin')),
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        )""",
        # Who did what from where: a user id ("hu-...") or a token id ("ht-..."), or
        # NULL for the command line and for failed logins of unknown e-mails.
        """CREATE TABLE hq_audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor_id TEXT,
            actor_label TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            ip TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX hq_audit_at ON hq_audit(at)",
        # Each store's last health report (POST /api/v1/health) and when it was last
        # heard from at all (any signed request). parked is a JSON list (at most 50).
        """CREATE TABLE store_health (
            store_id TEXT PRIMARY KEY REFERENCES stores(id),
            reported_at TEXT,
            software_version TEXT,
            started_at TEXT,
            free_disk_bytes INTEGER,
            db_size_bytes INTEGER,
            outbox_depth INTEGER,
            oldest_unsent_at TEXT,
            parked TEXT NOT NULL DEFAULT '[]',
            parked_count INTEGER NOT NULL DEFAULT 0,
            cursor INTEGER,
            sync_lag_s INTEGER,
            clock_skew_s REAL,
            last_seen_at TEXT
        )""",
        # One row per health report, for the charts; pruned past HISTORY_KEEP_S.
        """CREATE TABLE store_health_history (
            store_id TEXT NOT NULL,
            at TEXT NOT NULL,
            sync_lag_s INTEGER,
            outbox_depth INTEGER
        )""",
        "CREATE INDEX store_health_history_store_at ON store_health_history(store_id, at)",
    ):
        db.execute(sql)


@hub_migrations(name="m005_promotions")
def m005_promotions(db: Database) -> None:
    for sql in (
        # Promotions made at head office (app/hub/domain/promotions.py). id is "pr-" + 12 base32
        # (random). The schedule is kept as UTC instants (what every store compares with
        # its clock) and as the local times and zone it was entered in (what people see).
        # targets and stores are JSON lists; stores NULL means every store.
        """CREATE TABLE promotions (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'published', 'unpublished')),
            title_fr TEXT NOT NULL,
            title_en TEXT NOT NULL DEFAULT '',
            text_fr TEXT NOT NULL DEFAULT '',
            text_en TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN ('percent', 'amount', 'fixed', 'nth_percent')),
            value INTEGER NOT NULL CHECK (value >= 0),
            nth INTEGER NOT NULL DEFAULT 2 CHECK (nth >= 2),
            scope TEXT NOT NULL CHECK (scope IN ('all', 'category', 'sku')),
            targets TEXT NOT NULL DEFAULT '[]',
            min_qty INTEGER NOT NULL DEFAULT 1 CHECK (min_qty >= 1),
            priority INTEGER NOT NULL DEFAULT 0,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            starts_local TEXT NOT NULL,
            ends_local TEXT NOT NULL,
            timezone TEXT NOT NULL,
            stores TEXT,
            image_hash TEXT,
            image_formats TEXT,
            revision INTEGER NOT NULL DEFAULT 1,
            created_by TEXT NOT NULL DEFAULT '',
            updated_by TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            published_at TEXT,
            CHECK (ends_at > starts_at)
        )""",
        "CREATE INDEX promotions_status ON promotions(status, ends_at)",
        # Every change to a promotion: who, when, what (a JSON object of the fields
        # changed, old and new), and the revision it made.
        """CREATE TABLE promotion_history (
            id INTEGER PRIMARY KEY,
            promotion_id TEXT NOT NULL REFERENCES promotions(id),
            revision INTEGER NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            changes TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX promotion_history_promotion ON promotion_history(promotion_id, id)",
    ):
        db.execute(sql)


@hub_migrations(name="m006_order_discounts")
def m006_order_discounts(db: Database) -> None:
    # The line's total promotion discount (cents), so a web order records what the
    # shopper was shown: line total = qty * price_cents - discount_cents. Kept per line
    # rather than as a discounted unit price because "2e à -50 %" on 3 units, or a
    # percentage rounded once per line, need not divide evenly by the quantity.
    db.execute("ALTER TABLE order_lines ADD COLUMN discount_cents INTEGER NOT NULL DEFAULT 0")


def migrate(db: Database) -> list[str]:
    """Apply pending hub migrations under the write lock; return the names applied."""
    with dbmod.write(db):
        pending = [m.name for m in hub_migrations.pending(db)]
        hub_migrations.apply(db)
    return pending


@hub_migrations(name="m007_hq_sessions")
def m007_hq_sessions(db: Database) -> None:
    # Head-office console sessions on the server: the signed cookie names one of these,
    # checked on every request, so a logout, a password or role change or a lockout
    # ends it even where a copy of the cookie lives on (app/hub/domain/hq_users.py).
    db.execute(
        """CREATE TABLE hq_sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES hq_users(id),
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )"""
    )
    db.execute("CREATE INDEX hq_sessions_user ON hq_sessions(user_id)")
