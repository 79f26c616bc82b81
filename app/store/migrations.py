"""Named schema migrations for the store database (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one. Each runs in its own
transaction together with the record that it ran, so a crash leaves it pending.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from app.core import db as dbmod
from app.core.text import index_fold

store_migrations = Migrations("kiosk_store")


@store_migrations(name="m001_catalog_and_stock")
def m001_catalog_and_stock(db: Database) -> None:
    for sql in (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE stores (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            city TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            is_self INTEGER NOT NULL DEFAULT 0
        )""",
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
        # The hub's last known level for every store (this one and the others).
        """CREATE TABLE stock_levels (
            store_id TEXT NOT NULL,
            sku TEXT NOT NULL,
            qty INTEGER NOT NULL,
            as_of TEXT NOT NULL,
            PRIMARY KEY (store_id, sku)
        ) WITHOUT ROWID""",
        # This store's own movements; acked_at is set once the hub has counted them.
        """CREATE TABLE stock_movements (
            id TEXT PRIMARY KEY,
            sku TEXT NOT NULL REFERENCES variants(sku),
            delta INTEGER NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            acked_at TEXT
        )""",
        "CREATE INDEX stock_movements_pending ON stock_movements(sku) WHERE acked_at IS NULL",
        "INSERT INTO meta (key, value) VALUES ('stock_version', '0')",
        # Any stock change, from any process, bumps one counter: open kiosk pages poll
        # it cheaply (ETag) instead of recomputing stock on every tick.
        """CREATE TRIGGER stock_levels_ins AFTER INSERT ON stock_levels BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'stock_version';
        END""",
        """CREATE TRIGGER stock_levels_upd AFTER UPDATE ON stock_levels BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'stock_version';
        END""",
        """CREATE TRIGGER stock_movements_ins AFTER INSERT ON stock_movements BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'stock_version';
        END""",
    ):
        db.execute(sql)


@store_migrations(name="m002_search_index")
def m002_search_index(db: Database) -> None:
    # Accent- and case-insensitive full-text search; prefix indexes make
    # search-as-you-type ("chaus*") cheap on 100,000 products.
    db.execute(
        """CREATE VIRTUAL TABLE products_fts USING fts5(
            name_fr, name_en, brand, category_fr, category_en, ref,
            tokenize = "unicode61 remove_diacritics 2",
            prefix = '2 3 4'
        )"""
    )
    db.execute(
        """INSERT INTO products_fts (rowid, name_fr, name_en, brand, category_fr, category_en, ref)
        SELECT p.pk, p.name_fr, p.name_en, p.brand, c.name_fr, c.name_en, p.ref
        FROM products p JOIN categories c ON c.id = p.category_id"""
    )
    for sql in (
        """CREATE TRIGGER products_fts_ins AFTER INSERT ON products BEGIN
            INSERT INTO products_fts (rowid, name_fr, name_en, brand, category_fr,
                                      category_en, ref)
            SELECT new.pk, new.name_fr, new.name_en, new.brand, c.name_fr, c.name_en, new.ref
            FROM categories c WHERE c.id = new.category_id;
        END""",
        """CREATE TRIGGER products_fts_upd AFTER UPDATE ON products BEGIN
            DELETE FROM products_fts WHERE rowid = old.pk;
            INSERT INTO products_fts (rowid, name_fr, name_en, brand, category_fr,
                                      category_en, ref)
            SELECT new.pk, new.name_fr, new.name_en, new.brand, c.name_fr, c.name_en, new.ref
            FROM categories c WHERE c.id = new.category_id;
        END""",
        """CREATE TRIGGER products_fts_del AFTER DELETE ON products BEGIN
            DELETE FROM products_fts WHERE rowid = old.pk;
        END""",
    ):
        db.execute(sql)


@store_migrations(name="m003_outbox")
def m003_outbox(db: Database) -> None:
    # What the hub must learn, written in the same transaction as the local change.
    db.execute(
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            parked_reason TEXT,
            acked_at TEXT
        )"""
    )
    db.execute("CREATE INDEX outbox_pending ON outbox(created_at) WHERE acked_at IS NULL")


@store_migrations(name="m004_sync")
def m004_sync(db: Database) -> None:
    # The change-feed position of each level held: an older level arriving late (a
    # slow acknowledgement, a page replayed after a crash) must never overwrite a newer.
    db.execute("ALTER TABLE stock_levels ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    # A lease lets two workers flushing at once (the server's and `kiosk sync`) take
    # different rows; the hub's idempotency is the real guarantee, the lease saves
    # needless resends. leased_by names the process so a dead one's lease is freed.
    db.execute("ALTER TABLE outbox ADD COLUMN leased_until TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN leased_by TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN parked_message TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN result TEXT")  # the hub's answer, kept for staff
    db.execute("CREATE INDEX outbox_parked ON outbox(created_at) WHERE parked_reason IS NOT NULL")
    # Acknowledging a movement changes the level shown (it stops being added on top of
    # the hub's level), so open kiosk pages must hear of it like any stock change.
    db.execute(
        """CREATE TRIGGER stock_movements_ack AFTER UPDATE OF acked_at ON stock_movements BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'stock_version';
        END"""
    )
    # Sync state lives in meta (see app/store/sync/state.py); the cursor starts at the beginning.
    db.execute("INSERT INTO meta (key, value) VALUES ('sync.cursor', '0')")


@store_migrations(name="m005_staff")
def m005_staff(db: Database) -> None:
    # Staff accounts with hashed PINs and a lockout that grows with each lockout, and
    # the audit log of every staff action (who, when, which device).
    db.execute(
        """CREATE TABLE staff (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('staff', 'manager')),
            pin_hash TEXT NOT NULL,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            lockouts INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            staff_id TEXT,
            device TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute("CREATE INDEX audit_log_at ON audit_log(at)")


@store_migrations(name="m006_orders")
def m006_orders(db: Database) -> None:
    # Click-and-collect: web orders received from the hub's feed, what staff did with
    # them (hand-overs, returns), the hub's public keys for pickup QR codes, and the
    # store's opening days (expiry counts opening days only).
    for sql in (
        """CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            customer_name TEXT NOT NULL DEFAULT '',
            customer_key TEXT NOT NULL DEFAULT '',
            customer_email TEXT NOT NULL DEFAULT '',
            customer_initials TEXT NOT NULL DEFAULT '',
            placed_at TEXT NOT NULL,
            promised_at TEXT NOT NULL,
            expiry_days INTEGER NOT NULL DEFAULT 7,
            pickup_code_hash TEXT NOT NULL DEFAULT '',
            code_failures INTEGER NOT NULL DEFAULT 0,
            code_locked INTEGER NOT NULL DEFAULT 0,
            shelf_slot TEXT NOT NULL DEFAULT '',
            ready_at TEXT,
            expires_at TEXT,
            reminder_queued INTEGER NOT NULL DEFAULT 0,
            collected_at TEXT,
            revision INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX orders_status ON orders(status, promised_at, placed_at)",
        "CREATE INDEX orders_customer ON orders(customer_key)",
        "CREATE INDEX orders_collected ON orders(collected_at) WHERE collected_at IS NOT NULL",
        "CREATE INDEX orders_expiring ON orders(expires_at) WHERE expires_at IS NOT NULL",
        """CREATE TABLE order_lines (
            order_id TEXT NOT NULL REFERENCES orders(id),
            line INTEGER NOT NULL,
            sku TEXT NOT NULL,
            ean TEXT NOT NULL DEFAULT '',
            name_fr TEXT NOT NULL DEFAULT '',
            name_en TEXT NOT NULL DEFAULT '',
            size TEXT NOT NULL DEFAULT '',
            colour_fr TEXT NOT NULL DEFAULT '',
            colour_en TEXT NOT NULL DEFAULT '',
            category_slug TEXT NOT NULL DEFAULT '',
            qty INTEGER NOT NULL CHECK (qty > 0),
            price_cents INTEGER NOT NULL DEFAULT 0,
            qty_picked INTEGER NOT NULL DEFAULT 0,
            short INTEGER NOT NULL DEFAULT 0,
            qty_ready INTEGER NOT NULL DEFAULT 0,
            qty_collected INTEGER NOT NULL DEFAULT 0,
            qty_returned INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (order_id, line)
        ) WITHOUT ROWID""",
        """CREATE TABLE handovers (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL REFERENCES orders(id),
            at TEXT NOT NULL,
            staff_id TEXT NOT NULL,
            manager_id TEXT,
            collector TEXT NOT NULL,
            collector_name TEXT NOT NULL DEFAULT '',
            method TEXT NOT NULL,
            override_reason TEXT NOT NULL DEFAULT '',
            lines TEXT NOT NULL
        )""",
        "CREATE INDEX handovers_order ON handovers(order_id)",
        """CREATE TABLE returns (
            id TEXT PRIMARY KEY,
            order_id TEXT REFERENCES orders(id),
            at TEXT NOT NULL,
            staff_id TEXT NOT NULL,
            manager_id TEXT,
            reason TEXT NOT NULL,
            refund TEXT NOT NULL,
            lines TEXT NOT NULL
        )""",
        "CREATE INDEX returns_order ON returns(order_id)",
        """CREATE TABLE hub_keys (
            kid TEXT PRIMARY KEY,
            alg TEXT NOT NULL DEFAULT 'Ed25519',
            public_key TEXT NOT NULL
        )""",
        # Explicit closing dates (public holidays, inventory day); the weekly opening
        # days are in meta (ISO weekdays, Monday = 1).
        """CREATE TABLE closing_days (
            day TEXT PRIMARY KEY,
            reason TEXT NOT NULL DEFAULT ''
        )""",
        "INSERT INTO meta (key, value) VALUES ('orders.opening_weekdays', '1,2,3,4,5,6')",
        # Which order an outbox row is about: an order change from the hub must not undo
        # what the store did and has not yet had acknowledged.
        "ALTER TABLE outbox ADD COLUMN order_id TEXT",
        """CREATE INDEX outbox_order_pending ON outbox(order_id)
           WHERE order_id IS NOT NULL AND acked_at IS NULL AND parked_reason IS NULL""",
    ):
        db.execute(sql)


@store_migrations(name="m007_reservations")
def m007_reservations(db: Database) -> None:
    # In-store reservations: units held off the shelf for a shopper for a while. The
    # stock itself moves through stock_movements ("reserved", then "released" unless
    # collected); these rows say what is held, for whom (no personal data) and until when.
    for sql in (
        """CREATE TABLE reservations (
            id TEXT PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL
                CHECK (status IN ('held', 'collected', 'released', 'expired')),
            cart_id TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            device TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX reservations_held ON reservations(expires_at) WHERE status = 'held'",
        "CREATE INDEX reservations_closed ON reservations(closed_at) WHERE closed_at IS NOT NULL",
        "CREATE INDEX reservations_cart ON reservations(cart_id) WHERE cart_id IS NOT NULL",
        """CREATE TABLE reservation_lines (
            reservation_id TEXT NOT NULL REFERENCES reservations(id),
            sku TEXT NOT NULL,
            qty INTEGER NOT NULL CHECK (qty > 0),
            movement_id TEXT NOT NULL,
            PRIMARY KEY (reservation_id, sku)
        ) WITHOUT ROWID""",
    ):
        db.execute(sql)


@store_migrations(name="m008_carts")
def m008_carts(db: Database) -> None:
    # Cart QR codes the hub revoked (the cart was ordered or cancelled), from the change
    # feed: a self-contained cart token is read offline, so the store must know them.
    db.execute(
        """CREATE TABLE revoked_carts (
            cart_id TEXT PRIMARY KEY,
            at TEXT NOT NULL
        ) WITHOUT ROWID"""
    )


@store_migrations(name="m009_promotions")
def m009_promotions(db: Database) -> None:
    # Promotions received from the hub's feed (app/store/domain/promotions.py). ``data`` is the
    # change's wire form, checked and cleaned on the way in: prices and banners are
    # built from it exactly as the hub builds them. The schedule columns let the kiosk
    # pick what is in force with its own clock, so a promotion ends on time offline.
    db.execute(
        """CREATE TABLE promotions (
            id TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            status TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            data TEXT NOT NULL,
            received_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX promotions_live ON promotions(status, ends_at)")
    db.execute("INSERT INTO meta (key, value) VALUES ('promotion_version', '0')")
    # Any promotion change, from any process, bumps one counter (as stock_version):
    # open kiosk pages compare it, with the ids in force now, to know when to refresh.
    for event in ("INSERT", "UPDATE", "DELETE"):
        db.execute(
            f"""CREATE TRIGGER promotions_{event.lower()} AFTER {event} ON promotions BEGIN
                UPDATE meta SET value = CAST(value AS INTEGER) + 1
                WHERE key = 'promotion_version';
            END"""  # noqa: S608 - three fixed words, no input
        )


def migrate(db: Database) -> list[str]:
    """Apply pending migrations under the write lock; return the names applied."""
    with dbmod.write(db):
        pending = [m.name for m in store_migrations.pending(db)]
        store_migrations.apply(db)
    return pending


@store_migrations(name="m010_staff_sessions")
def m010_staff_sessions(db: Database) -> None:
    # Staff sessions on the server: the signed cookie names one of these, checked on
    # every staff request, so a logout, a PIN or role change or a lockout ends it even
    # where a copy of the cookie lives on (app/store/domain/staff.py).
    db.execute(
        """CREATE TABLE staff_sessions (
            id TEXT PRIMARY KEY,
            staff_id TEXT NOT NULL REFERENCES staff(id),
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )"""
    )
    db.execute("CREATE INDEX staff_sessions_staff ON staff_sessions(staff_id)")


# --- m011: search forgives typos (app/core/search.py) --------------------------------
# ``search_words`` is the catalogue's vocabulary: every word of the products' names and
# brands and of the categories' names, folded (lower-case, accents stripped) as
# ``word``, with how many products and categories use it (``docs``). Hyphenated words
# are kept whole ("t-shirt") and in parts ("t", "shirt": one-letter words are dropped).
# ``search_words_tri`` indexes the words by trigram (FTS5's own ``trigram`` tokenizer,
# SQLite >= 3.34) so a misspelt word finds its candidates without a scan; Python ranks
# them (rapidfuzz). Triggers keep both right whoever writes products or categories (the
# seed, the hub's catalogue feed). The words are split and folded in SQL, through
# ``search_words_stage``: the text is lower-cased there (ASCII only: SQLite's
# ``lower()``), then each letter of Latin-1 and Latin Extended-A that
# app.core.text.fold changes is replaced by what fold makes of it, twenty letters per
# statement (one long ``replace()`` chain overflows SQLite's parser stack). So the
# vocabulary folds as the typed query does (tests/test_search_typos.py compares them
# letter by letter). Letters beyond those (Greek, Cyrillic...) keep their case here.
# The suggestion's spelling (accents) is read back from the products. The triggers hold
# the SQL fold as it was when they were made: changing fold needs a new migration that
# makes them again and rebuilds the vocabulary.


def _m011_letters() -> list[tuple[str, str]]:
    """(letter, folded) for each letter of Latin-1 and Latin Extended-A fold changes."""
    letters = (chr(i) for i in range(0xC0, 0x180) if chr(i).isalpha())
    return [(c, index_fold(c)) for c in letters if index_fold(c) != c]


_M011_CHUNK = 20
_M011_TRIM = "'()[]{},.;:!?«»/&+<>*#|=~_-'"


def _m011_stage(text: str, source: str = "") -> list[str]:
    """Statements putting the words of the SQL expression ``text`` in the stage.

    ``source`` is a FROM item (``products p``) for the backfill; empty in triggers,
    where ``text`` names ``new.`` or ``old.`` columns.
    """
    spaced = f"lower({text})"
    for c in "\"\\'’":
        spaced = f"replace({spaced}, '{c.replace(chr(39), chr(39) * 2)}', ' ')"
    for n in (9, 10, 13):
        spaced = f"replace({spaced}, char({n}), ' ')"
    key = f"{source.split()[-1]}.rowid" if source else "0"
    origin = f" FROM {source}" if source else ""
    # The stage holds the words as a JSON array: '["vélo","de","route"]'.
    array = f"""'["' || replace({spaced}, ' ', '","') || '"]'"""
    statements = [f"INSERT INTO search_words_stage (k, folded) SELECT {key}, {array}{origin};"]
    letters = _m011_letters()
    for i in range(0, len(letters), _M011_CHUNK):
        chain = "folded"
        for c, folded in letters[i : i + _M011_CHUNK]:
            chain = f"replace({chain}, '{c}', '{folded}')"
        statements.append(
            f"UPDATE search_words_stage SET folded = {chain} WHERE folded GLOB '*[^ -~]*';"  # noqa: S608 - SQL built from constants, no input
        )
    return statements


def _m011_words() -> str:
    """A SELECT of (k, word) for the words in the stage: whole, then split at hyphens."""
    selects = [
        f"""SELECT s.k, trim(j.value, {_M011_TRIM}) AS word FROM search_words_stage s,
            json_each(CASE WHEN json_valid({array}) THEN {array} ELSE '[]' END) j"""  # noqa: S608 - SQL built from constants, no input
        for array in ("s.folded", "replace(s.folded, '-', '\",\"')")
    ]
    return " UNION ".join(selects)


#: Which words the vocabulary keeps (after GROUP BY word): two letters or more, a letter.
_M011_KEEP = "length(word) >= 2 AND word GLOB '*[a-z]*'"


def _m011_add(text: str) -> str:
    return "\n".join(
        [
            *_m011_stage(text),
            f"""INSERT INTO search_words (word, docs)
            SELECT word, 1 FROM ({_m011_words()}) WHERE true GROUP BY word
            HAVING {_M011_KEEP}
            ON CONFLICT (word) DO UPDATE SET docs = docs + 1;""",  # noqa: S608 - SQL built from constants, no input
            "DELETE FROM search_words_stage;",
        ]
    )


def _m011_remove(text: str) -> str:
    return "\n".join(
        [
            *_m011_stage(text),
            f"""UPDATE search_words SET docs = docs - 1
            WHERE word IN (SELECT word FROM ({_m011_words()}));""",  # noqa: S608 - SQL built from constants, no input
            f"""DELETE FROM search_words
            WHERE docs <= 0 AND word IN (SELECT word FROM ({_m011_words()}));""",  # noqa: S608 - SQL built from constants, no input
            "DELETE FROM search_words_stage;",
        ]
    )


@store_migrations(name="m011_search_words")
def m011_search_words(db: Database) -> None:
    db.execute(
        """CREATE TABLE search_words (
            id INTEGER PRIMARY KEY,
            word TEXT NOT NULL UNIQUE,
            docs INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE TABLE search_words_stage (k INTEGER NOT NULL, folded TEXT NOT NULL)")
    db.execute(
        """CREATE VIRTUAL TABLE search_words_tri USING fts5(
            word, content = 'search_words', content_rowid = 'id', tokenize = 'trigram'
        )"""
    )
    # Every product and category there already is, then the triggers for what comes.
    for source, text in (
        ("products p", "p.name_fr || ' ' || p.name_en || ' ' || p.brand"),
        ("categories c", "c.name_fr || ' ' || c.name_en"),
    ):
        for sql in _m011_stage(text, source):
            db.execute(sql)
        db.execute(
            f"""INSERT INTO search_words (word, docs)
            SELECT word, count(*) FROM ({_m011_words()})
            WHERE true GROUP BY word HAVING {_M011_KEEP}
            ON CONFLICT (word) DO UPDATE SET docs = docs + excluded.docs"""  # noqa: S608 - SQL built from constants, no input
        )
        db.execute("DELETE FROM search_words_stage")
    db.execute("INSERT INTO search_words_tri (search_words_tri) VALUES ('rebuild')")
    for sql in (
        """CREATE TRIGGER search_words_ins AFTER INSERT ON search_words BEGIN
            INSERT INTO search_words_tri (rowid, word) VALUES (new.id, new.word);
        END""",
        """CREATE TRIGGER search_words_del AFTER DELETE ON search_words BEGIN
            INSERT INTO search_words_tri (search_words_tri, rowid, word)
            VALUES ('delete', old.id, old.word);
        END""",
    ):
        db.execute(sql)
    new_product = "new.name_fr || ' ' || new.name_en || ' ' || new.brand"
    old_product = "old.name_fr || ' ' || old.name_en || ' ' || old.brand"
    new_category = "new.name_fr || ' ' || new.name_en"
    old_category = "old.name_fr || ' ' || old.name_en"
    for sql in (
        f"""CREATE TRIGGER search_words_product_ins AFTER INSERT ON products BEGIN
            {_m011_add(new_product)}
        END""",
        f"""CREATE TRIGGER search_words_product_upd AFTER UPDATE OF name_fr, name_en, brand
            ON products WHEN {old_product} IS NOT {new_product} BEGIN
            {_m011_remove(old_product)}
            {_m011_add(new_product)}
        END""",
        f"""CREATE TRIGGER search_words_product_del AFTER DELETE ON products BEGIN
            {_m011_remove(old_product)}
        END""",
        f"""CREATE TRIGGER search_words_category_ins AFTER INSERT ON categories BEGIN
            {_m011_add(new_category)}
        END""",
        f"""CREATE TRIGGER search_words_category_upd AFTER UPDATE OF name_fr, name_en
            ON categories WHEN {old_category} IS NOT {new_category} BEGIN
            {_m011_remove(old_category)}
            {_m011_add(new_category)}
        END""",
        f"""CREATE TRIGGER search_words_category_del AFTER DELETE ON categories BEGIN
            {_m011_remove(old_category)}
        END""",
    ):
        db.execute(sql)


# --- m012: « Ma carte » (app/store/domain/customer_cards.py) -------------------------
# What this store knows of a customer card scanned at its kiosk: the hub's customer id
# behind the card's random id and, when the customer gave one, the first name the kiosk
# greets them with (nothing else: no surname, no e-mail). Fed by the hub's change feed
# (a ``customer_card`` change per card issued, renewed or erased); a card the hub has
# not sent is still recognised, anonymously, from its signed QR code alone.
@store_migrations(name="m012_customer_cards")
def m012_customer_cards(db: Database) -> None:
    db.execute(
        """CREATE TABLE customer_cards (
            card_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            first_name TEXT,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX customer_cards_customer ON customer_cards(customer_id)")


# --- m013: the customer behind a web order (app/store/views/counter_customer.py) -----
# The hub's ``order`` change carries the account's random id (``customer_id``, NULL for
# a guest): a « Ma carte » scanned at the counter finds the customer's orders here.
@store_migrations(name="m013_order_customer")
def m013_order_customer(db: Database) -> None:
    db.execute("ALTER TABLE orders ADD COLUMN customer_id TEXT")
    db.execute(
        "CREATE INDEX orders_customer_id ON orders(customer_id) WHERE customer_id IS NOT NULL"
    )


# --- m014: a recognised shopper's kiosk actions (app/store/domain/account_actions.py) --
# A reservation made for a recognised shopper's account (its ``reservation.created``
# carried the card id; the row keeps only this flag, never the card id), so how it ends
# is told to the hub too (``reservation.closed``).
@store_migrations(name="m014_card_actions")
def m014_card_actions(db: Database) -> None:
    db.execute("ALTER TABLE reservations ADD COLUMN for_account INTEGER NOT NULL DEFAULT 0")


# --- m015: personal suggestions at the kiosk (app/store/domain/personal.py) ----------
# What the hub's card feed says the kiosk may show a recognised shopper who consented:
# ``personal`` is the validated JSON (remembered sizes per category, product refs seen
# online, ranked suggestions, targeted offers: what the kiosk shows, nothing more), and
# ``consent_personal`` is 1 while the hub sends one (NULL from the hub = no consent: both
# are cleared). Both live on the card's row: forgetting the card forgets them.
@store_migrations(name="m015_personal")
def m015_personal(db: Database) -> None:
    db.execute("ALTER TABLE customer_cards ADD COLUMN personal TEXT")
    db.execute("ALTER TABLE customer_cards ADD COLUMN consent_personal INTEGER NOT NULL DEFAULT 0")


# --- m016: a store holds a first name at most, and forgets it (issue 14, RGPD) ------
# app/store/domain/forgetting.py. The counter needs the customer's first name, never
# their surname or e-mail: e-mails held are blanked, names reduced to their first word
# (the search key and initials with them). ``closed_at``: when this store first saw the
# order closed (collected, expired, cancelled), from which its first name is kept
# FORGET_ORDER_NAME_DAYS more; ``forgotten_at``: when it was forgotten.
@store_migrations(name="m016_store_forget")
def m016_store_forget(db: Database) -> None:
    import unicodedata

    db.execute("ALTER TABLE orders ADD COLUMN closed_at TEXT")
    db.execute("ALTER TABLE orders ADD COLUMN forgotten_at TEXT")
    db.execute(
        "UPDATE orders SET closed_at = COALESCE(collected_at, updated_at) "
        "WHERE status IN ('collected', 'expired', 'cancelled')"
    )
    db.execute(
        "CREATE INDEX orders_closed ON orders(closed_at) "
        "WHERE closed_at IS NOT NULL AND forgotten_at IS NULL"
    )
    db.execute("UPDATE orders SET customer_email = '' WHERE customer_email != ''")
    rows = db.execute("SELECT id, customer_name FROM orders WHERE customer_name != ''").fetchall()
    for order_id, name in rows:
        words = name.split()
        first = words[0][:60] if words else ""
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", first) if not unicodedata.combining(c)
        )
        db.execute(
            "UPDATE orders SET customer_name = ?, customer_key = ?, customer_initials = ? "
            "WHERE id = ?",
            [first, plain.casefold(), f"{first[0].upper()}." if first else "", order_id],
        )


# --- m017: the loyalty balance of a recognised shopper (issue 14) ---------------------
# ``points``: the balance the hub's card feed last sent (app/hub/domain/customer_feed.py),
# shown to the shopper once their card is scanned; NULL until the hub sends one. On the
# card's row: forgetting the card forgets it.
@store_migrations(name="m017_card_points")
def m017_card_points(db: Database) -> None:
    db.execute("ALTER TABLE customer_cards ADD COLUMN points INTEGER")


# --- m018: a kiosk withdrawal of consent, held (app/store/domain/consent.py) ---------
# « Ne plus me proposer de suggestions » tapped here: one row per card, with the
# customer behind it when this store knows them (a renewed card keeps the withdrawal),
# when it was tapped, its ``consent.revoked`` transaction and when the hub acknowledged
# it. Read by one indexed lookup per page (never a scan of the outbox); it holds until
# the hub sends the card again after acknowledging it. Back-filled from the outbox;
# the acknowledged withdrawals there forget their card id.
@store_migrations(name="m018_card_revoked")
def m018_card_revoked(db: Database) -> None:
    db.execute(
        """CREATE TABLE card_revocations (
            card_id TEXT PRIMARY KEY,
            customer_id TEXT,
            revoked_at TEXT NOT NULL,
            tx_id TEXT NOT NULL,
            acked_at TEXT
        )"""
    )
    db.execute(
        "CREATE INDEX card_revocations_customer ON card_revocations(customer_id) "
        "WHERE customer_id IS NOT NULL"
    )
    db.execute(
        """INSERT OR REPLACE INTO card_revocations (card_id, customer_id, revoked_at, tx_id,
               acked_at)
           SELECT json_extract(o.payload, '$.card_id'),
                  (SELECT c.customer_id FROM customer_cards c
                    WHERE c.card_id = json_extract(o.payload, '$.card_id')),
                  o.created_at, o.id, o.acked_at
             FROM outbox o
            WHERE o.type = 'consent.revoked'
              AND json_extract(o.payload, '$.card_id') IS NOT NULL
              AND (o.acked_at IS NULL OR o.created_at >= coalesce(
                  (SELECT c.updated_at FROM customer_cards c
                    WHERE c.card_id = json_extract(o.payload, '$.card_id')), ''))
            ORDER BY o.created_at"""
    )
    # The hub has those already acknowledged: their card id is forgotten, as the
    # acknowledgement hook now does.
    db.execute(
        "UPDATE outbox SET payload = json_remove(payload, '$.card_id') "
        "WHERE type = 'consent.revoked' AND acked_at IS NOT NULL "
        "AND json_extract(payload, '$.card_id') IS NOT NULL"
    )


# --- m019: store credit applied online (issue 14; app/store/domain/orders/feed.py) ----
# ``credit_cents``: the store credit the customer used at the web shop's checkout (the
# hub's order change carries the amount only, never the code); ``total_cents``: what the
# order's lines cost, discounts included. The hand-over page says what is already paid
# and what is left to pay.
@store_migrations(name="m019_order_credit")
def m019_order_credit(db: Database) -> None:
    db.execute("ALTER TABLE orders ADD COLUMN credit_cents INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE orders ADD COLUMN total_cents INTEGER")


# --- m020: the unacknowledged stock per SKU as a running figure (issue 15) ----------
# The shown level is the hub's level plus this store's movements the hub has not
# acknowledged and that are not parked (app/store/domain/stock.py). Summing those on
# every read made each adjustment cost as much as the SKU's backlog (queuing 50,000
# offline grew worse than linearly). ``stock_pending`` holds that sum, kept by triggers
# on every change that moves a movement in or out of it (from any process or code
# path): a movement written, acknowledged (or not any more) or deleted; its outbox row
# parked, unparked or deleted while parked.
_PARKED = "EXISTS (SELECT 1 FROM outbox o WHERE o.id = {ref}.id AND o.parked_reason IS NOT NULL)"


@store_migrations(name="m020_stock_pending")
def m020_stock_pending(db: Database) -> None:
    new_parked, old_parked = _PARKED.format(ref="NEW"), _PARKED.format(ref="OLD")
    add = (
        "INSERT INTO stock_pending (sku, delta) VALUES ({ref}.sku, {sign}{ref}.delta) "
        "ON CONFLICT (sku) DO UPDATE SET delta = stock_pending.delta + excluded.delta"
    )
    # The movement of an outbox row being parked or unparked, if it counts otherwise.
    moved = (
        "INSERT INTO stock_pending (sku, delta) SELECT m.sku, {sign}m.delta "
        "FROM stock_movements m WHERE m.id = {ref}.id AND m.acked_at IS NULL AND true "
        "ON CONFLICT (sku) DO UPDATE SET delta = stock_pending.delta + excluded.delta"
    )
    for sql in (
        """CREATE TABLE stock_pending (
            sku TEXT PRIMARY KEY,
            delta INTEGER NOT NULL
        ) WITHOUT ROWID""",
        f"""INSERT INTO stock_pending (sku, delta)
            SELECT m.sku, SUM(m.delta) FROM stock_movements m
            WHERE m.acked_at IS NULL AND NOT {_PARKED.format(ref="m")}
            GROUP BY m.sku""",  # noqa: S608 - fixed text, no input
        f"""CREATE TRIGGER stock_pending_ins AFTER INSERT ON stock_movements
            WHEN NEW.acked_at IS NULL AND NOT {new_parked} BEGIN
            {add.format(ref="NEW", sign="")};
        END""",
        f"""CREATE TRIGGER stock_pending_ack AFTER UPDATE OF acked_at ON stock_movements
            WHEN OLD.acked_at IS NULL AND NEW.acked_at IS NOT NULL AND NOT {new_parked} BEGIN
            {add.format(ref="OLD", sign="-")};
        END""",
        f"""CREATE TRIGGER stock_pending_unack AFTER UPDATE OF acked_at ON stock_movements
            WHEN OLD.acked_at IS NOT NULL AND NEW.acked_at IS NULL AND NOT {new_parked} BEGIN
            {add.format(ref="NEW", sign="")};
        END""",
        f"""CREATE TRIGGER stock_pending_del AFTER DELETE ON stock_movements
            WHEN OLD.acked_at IS NULL AND NOT {old_parked} BEGIN
            {add.format(ref="OLD", sign="-")};
        END""",
        f"""CREATE TRIGGER stock_pending_park AFTER UPDATE OF parked_reason ON outbox
            WHEN OLD.parked_reason IS NULL AND NEW.parked_reason IS NOT NULL BEGIN
            {moved.format(ref="NEW", sign="-")};
        END""",
        f"""CREATE TRIGGER stock_pending_unpark AFTER UPDATE OF parked_reason ON outbox
            WHEN OLD.parked_reason IS NOT NULL AND NEW.parked_reason IS NULL BEGIN
            {moved.format(ref="NEW", sign="")};
        END""",
        f"""CREATE TRIGGER stock_pending_unpark_del AFTER DELETE ON outbox
            WHEN OLD.parked_reason IS NOT NULL BEGIN
            {moved.format(ref="OLD", sign="")};
        END""",
    ):
        db.execute(sql)
