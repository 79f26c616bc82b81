"""Pictures that are right (issue 13): each product picture draws the product's own kind
(socks are socks, shorts are shorts), prints its own brand in a font that covers French,
in the product's colour; the kiosk's category tiles have pictures."""

from __future__ import annotations

import io
import itertools
import re

import pytest
import requests
from PIL import Image, ImageChops, ImageFont

from app.core import picture_drawings, picture_kinds, pictures
from app.demo import seed

from .conftest import screenshot

# Every kind of product of the demo catalogue (its French name stem) and the drawing it
# must get. Written out by hand: a wrong mapping in app/core/picture_kinds.py fails here.
EXPECTED = {
    "Chaussures de running": "runner",
    "Chaussures de trail": "runner",
    "Pointes d'athlétisme": "spikes",
    "Chaussures de randonnée": "hiker",
    "Chaussures de randonnée imperméables": "boot",
    "Sandales de randonnée": "sandal",
    "Baskets": "sneaker",
    "Baskets montantes": "hightop",
    "Chaussures de marche": "sneaker",
    "Vélo de route": "bike",
    "VTT": "bike",
    "Vélo de ville": "bike",
    "Vélo électrique": "bike",
    "Vélo gravel": "bike",
    "T-shirt de running": "tshirt",
    "Short de running": "shorts",
    "Collant de running": "tights",
    "Brassière de sport": "bra",
    "Veste imperméable": "jacket",
    "Doudoune": "puffer",
    "Polaire": "fleece",
    "Coupe-vent": "jacket",
    "Maillot de bain": "swimsuit",
    "Short de bain": "swimshorts",
    "Combinaison néoprène": "wetsuit",
    "Raquette de tennis": "racket",
    "Raquette de padel": "padel",
    "Raquette de badminton": "badminton",
    "Tube de balles de tennis": "balltube",
    "Ballon de football": "ball",
    "Chaussures de football": "cleats",
    "Maillot de football": "jersey",
    "Protège-tibias": "shinguard",
    "Kit d'haltères": "dumbbell",
    "Tapis de yoga": "yogamat",
    "Banc de musculation": "bench",
    "Tapis de course": "treadmill",
    "Legging de fitness": "tights",
    "Skis de piste": "skis",
    "Snowboard": "snowboard",
    "Chaussures de ski": "skiboot",
    "Masque de ski": "goggles",
    "Gants de ski": "gloves",
    "Tente 2 places": "tent",
    "Tente familiale 4 places": "tent",
    "Sac de couchage": "sleepingbag",
    "Sac à dos 20 L": "backpack",
    "Sac à dos 40 L": "backpack",
    "Réchaud de camping": "stove",
    "Gourde isotherme": "bottle",
    "Casquette": "cap",
    "Chaussettes de sport": "socks",
    "Lampe frontale": "headlamp",
    "Sac de sport": "duffel",
}

# Letters French needs beyond the demo's own texts.
FRENCH = "àâäçéèêëîïôöùûüÿæœÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸÆŒ«»’‘“”…€ "


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def expected_kind(name_fr: str) -> str:
    """The expected drawing for a product name: its longest matching stem in EXPECTED."""
    stems = [s for s in EXPECTED if name_fr.startswith(s + " ") or name_fr == s]
    assert stems, f"no expected kind for {name_fr!r}"
    return EXPECTED[max(stems, key=len)]


# ------------------------------------------------------------------------------ kinds


def test_every_kind_of_the_demo_catalogue_is_mapped():
    stems = {t[0] for templates in seed._TEMPLATES.values() for t in templates}
    assert stems == set(EXPECTED), "the demo catalogue's kinds changed: update EXPECTED"
    for slug, templates in seed._TEMPLATES.items():
        for stem_fr, stem_en, *_ in templates:
            for name_fr, name_en in (
                (f"{stem_fr} Zéphyr 400 Pro Homme", f"Men's Zéphyr 400 Pro {stem_en}"),
                (f"{stem_fr} Écrins 7", f"Écrins 7 {stem_en}"),
            ):
                assert picture_kinds.kind_for(slug, name_fr, name_en) == EXPECTED[stem_fr], name_fr
            # The English name alone says it too (a catalogue with French names missing).
            assert (
                picture_kinds.kind_for(slug, "", f"Women's Izoard 3 {stem_en}")
                == (EXPECTED[stem_fr])
            ), stem_en


def test_socks_are_socks_and_shorts_are_shorts_whatever_the_category():
    assert picture_kinds.kind_for("accessoires", "Chaussettes de sport Vercors 300") == "socks"
    assert picture_kinds.kind_for("textile-running", "Short de running Élan 4") == "shorts"
    assert picture_kinds.kind_for("maillots-de-bain", "Short de bain Opale 12") == "swimshorts"
    # The category's drawing is only the fallback, and a parcel box the last one.
    assert picture_kinds.kind_for("velos", "Modèle Galibier") == "bike"
    assert picture_kinds.kind_for("nouveautes", "Objet mystère") == "box"
    assert picture_kinds.kind_for("", "") == "box"


def test_every_kind_has_a_drawing_of_its_own():
    assert picture_kinds.KINDS == set(picture_drawings.DRAWINGS)
    drawn = {}
    for kind in sorted(picture_kinds.KINDS):
        image = png(pictures.render_product_picture("x", "#1f6feb", "", size=96, shape=kind))
        assert image.info["Kind"] == kind
        drawn[kind] = image.convert("RGB")
    for a, b in itertools.combinations(drawn, 2):
        # Pixels that clearly differ (not anti-aliasing): at least 2% of the picture.
        grey = ImageChops.difference(drawn[a], drawn[b]).convert("L")
        diff = sum(grey.histogram()[40:])
        assert diff > 96 * 96 * 0.02, f"{a} and {b} look alike"


def test_every_kind_is_drawn_in_the_product_colour():
    blue = (0x1F, 0x6F, 0xEB)
    for kind in sorted(picture_kinds.KINDS):
        image = png(pictures.render_product_picture("x", "#1f6feb", "", size=160, shape=kind))
        close = sum(
            count
            for count, px in image.convert("RGB").getcolors(160 * 160)
            if sum(abs(a - b) for a, b in zip(px, blue, strict=True)) <= 24
        )
        assert close >= 160 * 160 * 0.015, f"{kind}: too little of the product colour"


# --------------------------------------------------------------------- the products


def test_each_product_picture_draws_its_kind_and_names_its_brand(store_db, tmp_path):
    rows = store_db.execute(
        "SELECT p.ref, p.brand, p.name_fr, c.slug FROM products p "
        "JOIN categories c ON c.id = p.category_id ORDER BY p.pk"
    ).fetchall()
    seen: dict[str, tuple] = {}
    for ref, brand, name_fr, slug in rows:
        if "<script>" in name_fr:  # the escaping test product: a cap
            assert picture_kinds.kind_for(slug, name_fr) == "cap"
            continue
        seen.setdefault(expected_kind(name_fr), (ref, brand, slug))
    assert len(seen) >= 30, sorted(seen)  # the 300-product test catalogue holds most kinds
    for kind, (ref, brand, slug) in seen.items():
        path = pictures.product_picture(store_db, tmp_path, ref, 0, lambda v: False)
        image = png(path.read_bytes())
        assert image.info["Kind"] == kind and image.info["Label"] == brand, ref
        # The pixels are that kind's drawing with that brand, not another kind's.
        colour = store_db.execute(
            "SELECT colour_hex FROM variants v JOIN products p ON p.pk = v.product_pk "
            "WHERE p.ref = ? ORDER BY colour_code, size_order LIMIT 1",
            [ref],
        ).fetchone()[0]
        same = png(pictures.render_product_picture(slug, colour, brand, shape=kind))
        assert image.tobytes() == same.tobytes(), kind
        other = "box" if kind != "box" else "bike"
        wrong = png(pictures.render_product_picture(slug, colour, brand, shape=other))
        assert image.tobytes() != wrong.tobytes()


def test_a_product_shows_its_own_brand_not_a_neighbours(store_db, tmp_path):
    ref, slug = store_db.execute(
        "SELECT p.ref, c.slug FROM products p JOIN categories c ON c.id = p.category_id "
        "WHERE p.pk = 2"
    ).fetchone()
    first = pictures.product_picture(store_db, tmp_path, ref, 0, lambda v: False)
    # Another brand, same category, kind and colour: another picture, with its name.
    store_db.execute("UPDATE products SET brand = ? WHERE ref = ?", ["Œuvre Forêt", ref])
    store_db.conn.commit()
    second = pictures.product_picture(store_db, tmp_path, ref, 0, lambda v: False)
    assert second != first
    assert png(first.read_bytes()).info["Label"] != "Œuvre Forêt"
    assert png(second.read_bytes()).info["Label"] == "Œuvre Forêt"
    assert png(second.read_bytes()).tobytes() != png(first.read_bytes()).tobytes()


# -------------------------------------------------------------------------- letters


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    mask = font.getmask(char)
    return bytes(mask.size) + bytes(mask)


def test_the_label_font_covers_french():
    assert pictures.FONT_PATH.is_file()
    assert (pictures.FONT_PATH.parent / "LICENSE").is_file()
    font = pictures._font(40)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.path == str(pictures.FONT_PATH)
    # A character the face lacks is drawn as its "missing glyph" box (tofu): the same
    # bitmap as any other character it lacks. Sanity: this check does see a missing one.
    tofu = _glyph(font, "\U0010fffd")
    assert _glyph(font, "漢") == tofu
    texts = [*seed.BRANDS, *seed.MODELS, FRENCH]
    texts += [c["name_fr"] for c in seed.CATEGORIES]
    texts += [t[0] for templates in seed._TEMPLATES.values() for t in templates]
    letters = {ch for text in texts for ch in text if not ch.isspace()}
    assert {"é", "è", "ô", "œ", "Œ", "«", "»", "’", "Ÿ", "É"} <= letters
    missing = sorted(ch for ch in letters if _glyph(font, ch) == tofu)
    assert not missing, f"the label font lacks {missing}"


def test_accented_brands_are_printed_with_their_accents():
    # The label is drawn: "Vélocia" and "Velocia" (or "Œ" and "OE") differ on the picture.
    def label(text: str) -> bytes:
        return png(pictures.render_product_picture("velos", "#1f6feb", text)).tobytes()

    assert label("Vélocia") != label("Velocia")
    assert label("Œuvre «Noël»") != label("OEuvre <Noel>")


# ---------------------------------------------------------------------------- kiosk


def test_category_tiles_have_pictures_cacheable_and_small(store_server):
    html = requests.get(store_server.url + "/browse", timeout=10).text
    tiles = re.findall(r'<a class="category category-tile" href="/category/([^"]+)">', html)
    pics = re.findall(r'<img class="category-pic" src="([^"]+)"', html)
    assert len(tiles) == len(seed.CATEGORIES) == len(pics)
    for slug, src in zip(tiles, pics, strict=True):
        assert src == f"/picture/category/{slug}.png"
        r = requests.get(store_server.url + src, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
        assert "max-age=86400" in r.headers["Cache-Control"] and r.headers.get("ETag")
        assert len(r.content) < 40_000
        image = png(r.content)
        assert image.info["Kind"] == picture_kinds.CATEGORY_KINDS[slug]
        assert image.info["Label"] == ""  # no text: the tile says the name
        again = requests.get(
            store_server.url + src, headers={"If-None-Match": r.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 304
    missing = requests.get(store_server.url + "/picture/category/nope.png", timeout=10)
    assert missing.status_code == 404
    long = requests.get(store_server.url + "/picture/category/" + "x" * 5000 + ".png", timeout=10)
    assert long.status_code == 404


def test_product_picture_over_http_is_the_products_kind(store_server, store_db):
    ref, brand, name_fr = store_db.execute(
        "SELECT ref, brand, name_fr FROM products WHERE name_fr LIKE 'Chaussettes%' "
        "OR name_fr LIKE 'Short de running%' ORDER BY pk LIMIT 1"
    ).fetchone()
    r = requests.get(store_server.url + f"/picture/{ref}/0.png", timeout=10)
    assert r.status_code == 200 and "max-age=86400" in r.headers["Cache-Control"]
    assert len(r.content) < 60_000
    image = png(r.content)
    assert image.info["Kind"] == expected_kind(name_fr) and image.info["Label"] == brand


@pytest.mark.browser
def test_browse_tiles_show_pictures_portrait(store_server, store_db, page):
    page.set_viewport_size({"width": 1080, "height": 1920})
    page.goto(store_server.url + "/browse")
    pics = page.locator("img.category-pic")
    assert pics.count() == len(seed.CATEGORIES)
    for i in range(pics.count()):
        pics.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.category-pic')].every(i => i.complete)"
    )
    widths = page.eval_on_selector_all("img.category-pic", "els => els.map(e => e.naturalWidth)")
    assert all(w > 0 for w in widths), widths
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "pictures-browse-portrait")
    # The accessories: socks, caps and bottles each drawn as such.
    page.goto(store_server.url + "/category/accessoires")
    screenshot(page, "pictures-category-accessoires-portrait")
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_a_category_of_its_own_gets_its_first_products_drawing(store_db, tmp_path):
    store_db.execute(
        "INSERT INTO categories (slug, name_fr, name_en, position) VALUES (?, ?, ?, ?)",
        ["chaussettes-techniques", "Chaussettes techniques", "Technical socks", 999],
    )
    store_db.execute(
        "INSERT INTO categories (slug, name_fr, name_en, position) VALUES (?, ?, ?, ?)",
        ["vide", "Bientôt", "Soon", 1000],
    )
    cid = store_db.execute("SELECT id FROM categories WHERE slug = ?", ["vide"]).fetchone()[0]
    sid = store_db.execute(
        "SELECT id FROM categories WHERE slug = ?", ["chaussettes-techniques"]
    ).fetchone()[0]
    store_db.execute("UPDATE products SET category_id = ? WHERE pk = 5", [sid])
    store_db.execute(
        "UPDATE products SET name_fr = ?, name_en = ? WHERE pk = 5",
        ["Mi-bas de compression Aravis 2", "Aravis 2 compression socks"],
    )
    store_db.conn.commit()
    socks = pictures.category_picture(store_db, tmp_path, "chaussettes-techniques")
    assert png(socks.read_bytes()).info["Kind"] == "socks"  # the English name says it
    empty = pictures.category_picture(store_db, tmp_path, "vide")
    assert png(empty.read_bytes()).info["Kind"] == "box" and cid
    assert pictures.category_picture(store_db, tmp_path, "nope") is None
    # Neighbouring tiles are not the same colour.
    tiles = [pictures.category_picture(store_db, tmp_path, c["slug"]) for c in seed.CATEGORIES]
    colours = [png(p.read_bytes()).convert("RGB").getpixel((2, 2)) for p in tiles]
    assert all(a != b for a, b in itertools.pairwise(colours))
