"""Schema migrations: named, applied once, and upgrading keeps every row."""

from __future__ import annotations

from app.core import db as dbmod
from app.core.search import search_products
from app.store.migrations import migrate, store_migrations


def test_fresh_database_gets_every_migration(tmp_path):
    db = dbmod.connect(tmp_path / "kiosk.db")
    applied = migrate(db)
    assert applied == [m.name for m in store_migrations._migrations]
    assert migrate(db) == []  # idempotent


def test_pragmas(tmp_path):
    db = dbmod.connect(tmp_path / "kiosk.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_upgrade_from_first_schema_keeps_rows(tmp_path):
    db = dbmod.connect(tmp_path / "kiosk.db")
    # A database made by the first release: only m001 applied, with data in it.
    store_migrations.apply(db, stop_before="m002_search_index")
    assert "products_fts" not in db.table_names()
    with dbmod.write(db):
        db["stores"].insert({"id": "st-1", "name": "Lyon", "is_self": 1})
        db["categories"].insert({"id": 1, "slug": "velos", "name_fr": "Vélos", "name_en": "Bikes"})
        db["products"].insert(
            {
                "pk": 1,
                "ref": "M1",
                "category_id": 1,
                "name_fr": "Vélo de route",
                "name_en": "Road bike",
                "price_cents": 49900,
            }
        )
        db["variants"].insert(
            {
                "sku": "M1-BL-M",
                "product_pk": 1,
                "ean": "3760000000017",
                "size": "M",
                "colour_code": "BL",
                "colour_fr": "Bleu",
                "colour_en": "Blue",
                "colour_hex": "#00f",
            }
        )
        db["stock_levels"].insert(
            {"store_id": "st-1", "sku": "M1-BL-M", "qty": 4, "as_of": "2026-01-01T00:00:00Z"}
        )
    counts = {
        t: db[t].count for t in ("stores", "categories", "products", "variants", "stock_levels")
    }

    applied = migrate(db)

    assert applied == [
        "m002_search_index",
        "m003_outbox",
        "m004_sync",
        "m005_staff",
        "m006_orders",
        "m007_reservations",
        "m008_carts",
        "m009_promotions",
        "m010_staff_sessions",
        "m011_search_words",
        "m012_customer_cards",
        "m013_order_customer",
        "m014_card_actions",
        "m015_personal",
        "m016_store_forget",
        "m017_card_points",
        "m018_card_revoked",
        "m019_order_credit",
        "m020_stock_pending",
    ]
    assert {t: db[t].count for t in counts} == counts
    # The new search index was back-filled from the rows that were already there.
    assert search_products(db, "velo") == [1]
    assert db["outbox"].count == 0
    # Levels held before the sync schema count as the oldest position of the feed.
    assert db.execute("SELECT seq FROM stock_levels").fetchall() == [(0,)]
    assert dbmod.get_meta(db, "sync.cursor") == "0"


def test_concurrent_migrate_calls_do_not_collide(tmp_path):
    import threading

    errors = []

    # A new file opened by four at once: switching it to WAL raced ("database is
    # locked" without waiting) about one time in ten, so several rounds.
    for round_ in range(20):

        def run(path=tmp_path / f"r{round_}" / "kiosk.db"):
            try:
                migrate(dbmod.connect(path))
            except Exception as exc:  # pragma: no cover - the assertion reports it
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
