import hashlib
import io
import re

import pytest
from PIL import Image

from app.core import db as dbmod
from app.core import pictures
from app.core.ean import is_valid_ean13
from app.demo import seed
from app.store.migrations import migrate

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

SELF = seed.DEMO_STORES[0]["id"]
AS_OF = "2026-11-22T14:02:00Z"
PRODUCTS = 60


def fresh_db(path):
    db = dbmod.connect(path)
    migrate(db)
    return db


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    db = fresh_db(tmp_path_factory.mktemp("seed") / "kiosk.db")
    counts = seed.seed_store(db, SELF, products=PRODUCTS, seed=42, as_of=AS_OF)
    yield db, counts
    db.close()


def rows(db, sql, params=()):
    return db.execute(sql, params).fetchall()


def scalar(db, sql, params=()):
    return db.execute(sql, params).fetchone()[0]


# ----------------------------------------------------------------------------- stores


def test_demo_stores_look_real():
    assert len(seed.DEMO_STORES) == 3
    ids = [s["id"] for s in seed.DEMO_STORES]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"st-[a-z0-9]{6}", i) for i in ids)
    assert not any(re.fullmatch(r"st-0*\d+", i) for i in ids)  # not st-1, st-2, st-3
    assert len({s["city"] for s in seed.DEMO_STORES}) == 3
    assert all(s["name"].startswith("Sportissimo ") and s["address"] for s in seed.DEMO_STORES)


def test_three_stores_one_of_them_self(seeded):
    db, counts = seeded
    assert counts["stores"] == 3
    stores = rows(db, "SELECT id, is_self FROM stores ORDER BY id")
    assert len(stores) == 3
    assert [i for i, is_self in stores if is_self] == [SELF]


def test_seed_stores_rejects_an_unknown_store(tmp_path):
    db = fresh_db(tmp_path / "kiosk.db")
    with pytest.raises(ValueError):
        seed.seed_stores(db, "st-nope00")
    assert scalar(db, "SELECT count(*) FROM stores") == 0


# --------------------------------------------------------------------------- catalogue


def test_counts(seeded):
    db, counts = seeded
    assert counts["products"] == PRODUCTS == scalar(db, "SELECT count(*) FROM products")
    assert counts["variants"] == scalar(db, "SELECT count(*) FROM variants")
    assert counts["categories"] == scalar(db, "SELECT count(*) FROM categories") >= 12
    assert counts["stock_levels"] == 3 * counts["variants"]


def test_categories_are_bilingual_and_ordered(seeded):
    db, _ = seeded
    cats = rows(db, "SELECT slug, name_fr, name_en, position FROM categories ORDER BY position")
    assert len({c[0] for c in cats}) == len(cats)
    assert all(slug and fr and en for slug, fr, en, _ in cats)
    assert ("velos", "Vélos", "Bikes") in [c[:3] for c in cats]
    # Every category has at least one product, even in a tiny catalogue.
    used = scalar(db, "SELECT count(DISTINCT category_id) FROM products")
    assert used == len(cats)


def test_every_variant_has_a_valid_unique_french_ean(seeded):
    db, _ = seeded
    eans = [r[0] for r in rows(db, "SELECT ean FROM variants")]
    assert eans
    assert all(is_valid_ean13(e) for e in eans)
    assert all(e.startswith("376") for e in eans)
    assert len(set(eans)) == len(eans)


def test_refs_and_skus_are_unique_and_shaped(seeded):
    db, _ = seeded
    refs = [r[0] for r in rows(db, "SELECT ref FROM products ORDER BY pk")]
    assert len(set(refs)) == len(refs)
    assert all(re.fullmatch(r"M\d{6}", r) for r in refs)
    assert refs != sorted(refs)  # shuffled, not sequential
    for sku, ref, colour_code in rows(
        db,
        "SELECT v.sku, p.ref, v.colour_code FROM variants v JOIN products p ON p.pk = v.product_pk",
    ):
        assert sku.startswith(f"{ref}-{colour_code}-")
        assert " " not in sku


def test_products_have_texts_prices_and_variants(seeded):
    db, _ = seeded
    for pk, brand, fr, en, dfr, den, price in rows(
        db,
        "SELECT pk, brand, name_fr, name_en, description_fr, description_en, price_cents "
        "FROM products",
    ):
        assert brand and fr and en and dfr and den
        assert dfr.count(".") >= 2 and den.count(".") >= 2
        assert price > 0 and price % 100 in (0, 50, 99), (pk, price)
        n = scalar(db, "SELECT count(*) FROM variants WHERE product_pk = ?", [pk])
        assert n >= 1


def test_sizes_follow_the_category(seeded):
    db, _ = seeded

    def sizes(slug):
        return {
            r[0]
            for r in rows(
                db,
                "SELECT v.size FROM variants v JOIN products p ON p.pk = v.product_pk "
                "JOIN categories c ON c.id = p.category_id WHERE c.slug = ?",
                [slug],
            )
        }

    assert sizes("chaussures-running") <= {str(n) for n in range(36, 47)}
    assert sizes("velos") <= {"S", "M", "L", "XL"}
    assert sizes("textile-running") <= {"XS", "S", "M", "L", "XL", "XXL"}
    # Sizes sort by size_order, not alphabetically.
    first = rows(
        db,
        "SELECT size FROM variants WHERE product_pk = 5 AND colour_code = "
        "(SELECT min(colour_code) FROM variants WHERE product_pk = 5) ORDER BY size_order",
    )
    order = ["XS", "S", "M", "L", "XL", "XXL"]
    assert [r[0] for r in first] == sorted((r[0] for r in first), key=order.index)


def test_colours(seeded):
    db, _ = seeded
    for code, fr, en, hexa in rows(
        db, "SELECT DISTINCT colour_code, colour_fr, colour_en, colour_hex FROM variants"
    ):
        assert re.fullmatch(r"[A-Z]{3}", code) and fr and en
        assert re.fullmatch(r"#[0-9a-f]{6}", hexa)
    per_product = rows(db, "SELECT count(DISTINCT colour_code) FROM variants GROUP BY product_pk")
    assert {r[0] for r in per_product} <= {1, 2, 3}


def test_html_product(seeded):
    db, _ = seeded
    name, desc = db.execute(
        "SELECT name_fr, description_fr FROM products WHERE ref = ?", [seed.HTML_PRODUCT_REF]
    ).fetchone()
    assert "<script>" in name and '"' in name and "&" in name
    assert "<" in desc


def test_search_ignores_accents_and_case(seeded):
    db, _ = seeded
    hits = rows(
        db,
        "SELECT p.name_fr FROM products_fts f JOIN products p ON p.pk = f.rowid "
        "WHERE products_fts MATCH ?",
        ['"velo"*'],
    )
    assert any("Vélo" in r[0] for r in hits)
    hits = rows(
        db,
        "SELECT p.name_fr FROM products_fts f JOIN products p ON p.pk = f.rowid "
        "WHERE products_fts MATCH ?",
        ['"CHAUSSURE"*'],
    )
    assert any("Chaussures" in r[0] for r in hits)
    rowids = rows(db, """SELECT rowid FROM products_fts WHERE products_fts MATCH '"velo"*'""")
    assert rowids


def test_same_seed_same_catalogue(tmp_path):
    def dump(path, rng_seed):
        db = fresh_db(path)
        seed.seed_catalog(db, products=40, seed=rng_seed)
        data = (
            rows(db, "SELECT * FROM products ORDER BY pk"),
            rows(db, "SELECT * FROM variants ORDER BY sku"),
        )
        db.close()
        return data

    assert dump(tmp_path / "a.db", 7) == dump(tmp_path / "b.db", 7)
    assert dump(tmp_path / "c.db", 7) != dump(tmp_path / "d.db", 8)


def test_progress_reaches_the_total(tmp_path):
    db = fresh_db(tmp_path / "kiosk.db")
    calls = []
    seed.seed_store(db, SELF, products=30, progress=lambda done, total: calls.append((done, total)))
    assert calls
    assert calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ------------------------------------------------------------------------------- stock


def test_stock_for_every_store_and_variant(seeded):
    db, _ = seeded
    n_variants = scalar(db, "SELECT count(*) FROM variants")
    for (store_id,) in rows(db, "SELECT id FROM stores"):
        assert (
            scalar(db, "SELECT count(*) FROM stock_levels WHERE store_id = ?", [store_id])
            == n_variants
        )
    assert scalar(db, "SELECT count(DISTINCT as_of) FROM stock_levels") == 1
    assert scalar(db, "SELECT as_of FROM stock_levels LIMIT 1") == AS_OF


def test_stock_has_outs_and_lows_and_differs_per_store(seeded):
    db, counts = seeded
    for (store_id,) in rows(db, "SELECT id FROM stores"):
        qty = [
            r[0] for r in rows(db, "SELECT qty FROM stock_levels WHERE store_id = ?", [store_id])
        ]
        assert min(qty) == 0 and max(qty) <= 25
        assert qty.count(0) > 0
        assert sum(1 for q in qty if q in (1, 2)) > 0
        assert 0.05 < qty.count(0) / len(qty) < 0.2
    assert counts["out_of_stock"] > 0 and counts["low_stock"] > 0
    a, b = (seed.DEMO_STORES[0]["id"], seed.DEMO_STORES[1]["id"])
    differ = scalar(
        db,
        "SELECT count(*) FROM stock_levels x JOIN stock_levels y ON y.sku = x.sku "
        "WHERE x.store_id = ? AND y.store_id = ? AND x.qty != y.qty",
        [a, b],
    )
    assert differ > 0


def test_stock_triggers_bumped_the_version(seeded):
    db, counts = seeded
    assert int(dbmod.get_meta(db, "stock_version")) >= counts["stock_levels"]


def test_sample_barcodes(seeded):
    db, _ = seeded
    for store in seed.DEMO_STORES:
        samples = seed.sample_barcodes(db, store["id"], n=5)
        assert len(samples) == 5
        qtys = [s["qty"] for s in samples]
        assert qtys[0] >= 3 and qtys[1] == 1 and qtys[2] == 0
        for s in samples:
            assert is_valid_ean13(s["ean"])
            assert s["ref"] != seed.HTML_PRODUCT_REF
            assert s["sku"].startswith(s["ref"] + "-") and s["name_fr"]
            real = scalar(
                db,
                "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?",
                [store["id"], s["sku"]],
            )
            assert real == s["qty"]
        assert len({s["ean"] for s in samples}) == 5
    assert len(seed.sample_barcodes(db, SELF, n=2)) == 2


def test_seeding_twice_raises(seeded, tmp_path):
    db, counts = seeded
    with pytest.raises(ValueError, match="already seeded"):
        seed.seed_store(db, SELF, products=10)
    with pytest.raises(ValueError, match="already seeded"):
        seed.seed_catalog(db, products=10)
    assert scalar(db, "SELECT count(*) FROM products") == PRODUCTS
    assert scalar(db, "SELECT count(*) FROM stock_levels") == counts["stock_levels"]


def test_seed_store_is_one_transaction(tmp_path):
    db = fresh_db(tmp_path / "kiosk.db")

    def boom(done, total):
        if done > total // 2:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        seed.seed_store(db, SELF, products=20, progress=boom)
    assert scalar(db, "SELECT count(*) FROM products") == 0
    assert scalar(db, "SELECT count(*) FROM stores") == 0
    seed.seed_store(db, SELF, products=20)  # and it can be retried
    assert scalar(db, "SELECT count(*) FROM products") == 20


# ---------------------------------------------------------------------------- pictures


def open_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_pictures_are_pngs_distinct_per_category():
    digests = set()
    for category in seed.CATEGORIES:
        data = pictures.render_product_picture(category["slug"], "#1f6feb", "Altivia", size=240)
        image = open_png(data)
        assert image.format == "PNG" and image.size == (240, 240)
        digests.add(hashlib.sha256(data).hexdigest())
    assert len(digests) == len(seed.CATEGORIES)


def test_pictures_are_deterministic_and_have_three_views():
    args = ("velos", "#d1242f", "Vélocia · M123456")
    views = [pictures.render_product_picture(*args, variant=v) for v in range(3)]
    assert len(set(views)) == 3
    assert pictures.render_product_picture(*args, variant=1) == views[1]
    assert open_png(views[0]).size == (480, 480)


def test_picture_colour_shows_and_bad_colour_falls_back():
    red = open_png(pictures.render_product_picture("baskets", "#d1242f", "", size=120))
    colours = red.convert("RGB").getcolors(120 * 120)
    assert any(r > 180 and g < 80 and b < 80 for _, (r, g, b) in colours)
    open_png(pictures.render_product_picture("nope", "not-a-colour", "<b>&</b>", size=64))


def test_cached_picture(tmp_path):
    calls = []

    def render():
        calls.append(1)
        return pictures.render_product_picture("tennis", "#2da44e", "", size=64)

    path = pictures.cached_picture(tmp_path / "cache", "M123456-VER-0-64", render)
    again = pictures.cached_picture(tmp_path / "cache", "M123456-VER-0-64", render)
    assert path == again and len(calls) == 1
    open_png(path.read_bytes())
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]
    odd = pictures.cached_picture(tmp_path / "cache", "../../etc/passwd", render)
    assert odd.parent == tmp_path / "cache"
