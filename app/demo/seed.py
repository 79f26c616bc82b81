"""Deterministic demo data for a French sports and footwear retailer ("Sportissimo").

Everything comes from ``random.Random(seed)``: no network, no clock except the
``as_of`` stamp of the stock levels. The functions take the sqlite-utils
:class:`~sqlite_utils.Database` first and write inside :func:`app.core.db.write`, so a
whole :func:`seed_store` is one transaction (the nested calls become savepoints).

Showcase facts that hold right after seeding, in every store:

* products ``pk`` 1 to 13 cover the 13 categories in order, each with the category's
  first kind of product ("Chaussures de running ...", "Vélo de route ...");
* product ``pk = 1`` is a pair of running shoes whose first three variants (by colour
  then size) have 9, 1 and 0 items in stock: :func:`sample_barcodes` finds them first;
* the product with ref :data:`HTML_PRODUCT_REF` (``pk`` 666, or the last one in a
  smaller catalogue) has HTML, quotes and ampersands in its names and descriptions,
  for escaping tests.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.ean import make_ean13
from app.hub import database as hdb

Progress = Callable[[int, int], None]

DEMO_STORES: list[dict[str, str]] = [
    {
        "id": "st-7kq2m9",
        "name": "Sportissimo Lyon Part-Dieu",
        "city": "Lyon",
        "address": "17 rue du Docteur Bouchut, 69003 Lyon",
    },
    {
        "id": "st-p4x8vd",
        "name": "Sportissimo Paris Bastille",
        "city": "Paris",
        "address": "12 rue du Faubourg Saint-Antoine, 75012 Paris",
    },
    {
        "id": "st-b2r6wn",
        "name": "Sportissimo Bordeaux Sainte-Catherine",
        "city": "Bordeaux",
        "address": "54 rue Sainte-Catherine, 33000 Bordeaux",
    },
]

#: The product whose texts hold HTML, quotes and ampersands (bad-input testing).
HTML_PRODUCT_REF = "M000666"
#: The product that :func:`seed_stock` dresses up for demos (see the module doc).
SHOWCASE_PRODUCT_PK = 1
#: Stock forced in every store on the showcase product's first three variants.
SHOWCASE_QTYS = (9, 1, 0)

# GS1 prefix 376 is France; the 9 digits after it come from a per-variant counter.
EAN_PREFIX = "376"
_EAN_BASE = 104_200_000

_BATCH = 5000  # products per INSERT statement (and per progress call)
_STOCK_BATCH = 100_000  # stock rows per INSERT statement

# --------------------------------------------------------------------------- catalogue

CATEGORIES: list[dict[str, Any]] = [
    {"slug": "chaussures-running", "name_fr": "Chaussures de running", "name_en": "Running shoes"},
    {
        "slug": "chaussures-randonnee",
        "name_fr": "Chaussures de randonnée",
        "name_en": "Hiking shoes",
    },
    {"slug": "baskets", "name_fr": "Baskets", "name_en": "Sneakers"},
    {"slug": "velos", "name_fr": "Vélos", "name_en": "Bikes"},
    {"slug": "textile-running", "name_fr": "Textile running", "name_en": "Running apparel"},
    {"slug": "vestes", "name_fr": "Vestes et manteaux", "name_en": "Jackets and coats"},
    {"slug": "maillots-de-bain", "name_fr": "Maillots de bain", "name_en": "Swimwear"},
    {"slug": "tennis", "name_fr": "Tennis et raquettes", "name_en": "Tennis and rackets"},
    {"slug": "football", "name_fr": "Football", "name_en": "Football"},
    {
        "slug": "fitness",
        "name_fr": "Fitness et musculation",
        "name_en": "Fitness and weight training",
    },
    {"slug": "ski", "name_fr": "Ski et snowboard", "name_en": "Ski and snowboard"},
    {"slug": "camping", "name_fr": "Camping et bivouac", "name_en": "Camping"},
    {"slug": "accessoires", "name_fr": "Accessoires", "name_en": "Accessories"},
]
for _position, _category in enumerate(CATEGORIES, start=1):
    _category["position"] = _position * 10

# Share of the catalogue per category (shoes and apparel dominate, as in a real store).
_CATEGORY_WEIGHTS = {
    "chaussures-running": 12,
    "chaussures-randonnee": 9,
    "baskets": 10,
    "velos": 5,
    "textile-running": 11,
    "vestes": 8,
    "maillots-de-bain": 6,
    "tennis": 5,
    "football": 7,
    "fitness": 6,
    "ski": 6,
    "camping": 6,
    "accessoires": 9,
}

SIZES: dict[str, list[str]] = {
    "shoes": [str(n) for n in range(36, 47)],
    "textile": ["XS", "S", "M", "L", "XL", "XXL"],
    "bike": ["S", "M", "L", "XL"],
    "racket": ["Grip 1", "Grip 2", "Grip 3", "Grip 4"],
    "ball": ["Taille 3", "Taille 4", "Taille 5"],
    "ski": ["150 cm", "160 cm", "170 cm", "180 cm"],
    "socks": ["35-38", "39-42", "43-46"],
    "one": ["Taille unique"],
}
# Sizes worn by men / women, for products sold per audience.
_AUDIENCE_SIZES: dict[str, dict[str, list[str]]] = {
    "shoes": {"Homme": SIZES["shoes"][3:], "Femme": SIZES["shoes"][:7], "": SIZES["shoes"]},
    "textile": {
        "Homme": SIZES["textile"][1:],
        "Femme": SIZES["textile"][:5],
        "": SIZES["textile"],
    },
}
_AUDIENCES = [("Homme", "Men's "), ("Femme", "Women's "), ("", "")]


def _size_order(kind: str, size: str) -> int:
    if kind == "shoes":
        return int(size)
    return SIZES[kind].index(size) + 1


def _size_code(size: str) -> str:
    """The size as it appears in a SKU: "TU", "G2", "T5", "150", "42", "XL"."""
    if size == "Taille unique":
        return "TU"
    if size.startswith(("Grip ", "Taille ")):
        return size[0] + size.rsplit(" ", 1)[1]
    return size.removesuffix(" cm")


# size kind -> size -> (SKU code, sort order), computed once.
_SIZE_KEYS: dict[str, dict[str, tuple[str, int]]] = {
    kind: {size: (_size_code(size), _size_order(kind, size)) for size in sizes}
    for kind, sizes in SIZES.items()
}


# (name_fr stem, name_en stem, size kind, min price €, max price €, per audience?)
_TEMPLATES: dict[str, list[tuple[str, str, str, float, float, bool]]] = {
    "chaussures-running": [
        ("Chaussures de running", "running shoes", "shoes", 39.99, 179.99, True),
        ("Chaussures de trail", "trail running shoes", "shoes", 59.99, 179.99, True),
        ("Pointes d'athlétisme", "athletics spikes", "shoes", 39.99, 119.99, False),
    ],
    "chaussures-randonnee": [
        ("Chaussures de randonnée", "hiking shoes", "shoes", 34.99, 149.99, True),
        (
            "Chaussures de randonnée imperméables",
            "waterproof hiking boots",
            "shoes",
            59.99,
            199.99,
            True,
        ),
        ("Sandales de randonnée", "hiking sandals", "shoes", 19.99, 69.99, True),
    ],
    "baskets": [
        ("Baskets", "sneakers", "shoes", 29.99, 129.99, True),
        ("Baskets montantes", "high-top sneakers", "shoes", 39.99, 149.99, True),
        ("Chaussures de marche", "walking shoes", "shoes", 24.99, 89.99, True),
    ],
    "velos": [
        ("Vélo de route", "road bike", "bike", 399, 2499, False),
        ("VTT", "mountain bike", "bike", 299, 1999, False),
        ("Vélo de ville", "city bike", "bike", 299, 899, False),
        ("Vélo électrique", "electric bike", "bike", 999, 2499, False),
        ("Vélo gravel", "gravel bike", "bike", 699, 1999, False),
    ],
    "textile-running": [
        ("T-shirt de running", "running T-shirt", "textile", 9.99, 44.99, True),
        ("Short de running", "running shorts", "textile", 12.99, 49.99, True),
        ("Collant de running", "running tights", "textile", 19.99, 59.99, True),
        ("Brassière de sport", "sports bra", "textile", 14.99, 49.99, False),
    ],
    "vestes": [
        ("Veste imperméable", "waterproof jacket", "textile", 29.99, 199.99, True),
        ("Doudoune", "down jacket", "textile", 39.99, 249.99, True),
        ("Polaire", "fleece", "textile", 14.99, 69.99, True),
        ("Coupe-vent", "windbreaker", "textile", 19.99, 89.99, True),
    ],
    "maillots-de-bain": [
        ("Maillot de bain", "swimsuit", "textile", 9.99, 59.99, True),
        ("Short de bain", "swim shorts", "textile", 12.99, 39.99, False),
        ("Combinaison néoprène", "neoprene wetsuit", "textile", 69.99, 299.99, True),
    ],
    "tennis": [
        ("Raquette de tennis", "tennis racket", "racket", 19.99, 229.99, False),
        ("Raquette de padel", "padel racket", "one", 29.99, 199.99, False),
        ("Raquette de badminton", "badminton racket", "one", 9.99, 89.99, False),
        ("Tube de balles de tennis", "tennis ball tube", "one", 4.99, 14.99, False),
    ],
    "football": [
        ("Ballon de football", "football", "ball", 7.99, 49.99, False),
        ("Chaussures de football", "football boots", "shoes", 24.99, 199.99, True),
        ("Maillot de football", "football shirt", "textile", 14.99, 89.99, True),
        ("Protège-tibias", "shin guards", "textile", 6.99, 24.99, False),
    ],
    "fitness": [
        ("Kit d'haltères", "dumbbell set", "one", 19.99, 149.99, False),
        ("Tapis de yoga", "yoga mat", "one", 9.99, 59.99, False),
        ("Banc de musculation", "weight bench", "one", 79.99, 399.99, False),
        ("Tapis de course", "treadmill", "one", 499, 1999, False),
        ("Legging de fitness", "fitness leggings", "textile", 12.99, 49.99, True),
    ],
    "ski": [
        ("Skis de piste", "alpine skis", "ski", 149.99, 699.99, False),
        ("Snowboard", "snowboard", "ski", 149.99, 499.99, False),
        ("Chaussures de ski", "ski boots", "shoes", 89.99, 399.99, True),
        ("Masque de ski", "ski goggles", "one", 14.99, 119.99, False),
        ("Gants de ski", "ski gloves", "textile", 9.99, 59.99, True),
    ],
    "camping": [
        ("Tente 2 places", "2-person tent", "one", 29.99, 299.99, False),
        ("Tente familiale 4 places", "4-person family tent", "one", 99.99, 599.99, False),
        ("Sac de couchage", "sleeping bag", "one", 19.99, 199.99, False),
        ("Sac à dos 20 L", "20 L backpack", "one", 14.99, 79.99, False),
        ("Sac à dos 40 L", "40 L backpack", "one", 39.99, 149.99, False),
        ("Réchaud de camping", "camping stove", "one", 14.99, 89.99, False),
    ],
    "accessoires": [
        ("Gourde isotherme", "insulated bottle", "one", 4.99, 29.99, False),
        ("Casquette", "cap", "one", 4.99, 24.99, False),
        ("Chaussettes de sport", "sports socks", "socks", 4.99, 14.99, False),
        ("Lampe frontale", "head torch", "one", 9.99, 29.99, False),
        ("Sac de sport", "sports bag", "one", 9.99, 29.99, False),
    ],
}

BRANDS = [
    "Altivia",
    "Brisane",
    "Vélocia",
    "Kerlann",
    "Montéa",
    "Azuro",
    "Sillon",
    "Estran",
    "Noroît",
    "Hexa Sport",
    "Ondine",
    "Pic Rouge",
]
_CATEGORY_BRANDS = {
    "chaussures-running": ["Altivia", "Brisane", "Kerlann", "Hexa Sport"],
    "chaussures-randonnee": ["Montéa", "Pic Rouge", "Noroît", "Kerlann"],
    "baskets": ["Sillon", "Azuro", "Brisane", "Hexa Sport"],
    "velos": ["Vélocia", "Hexa Sport", "Montéa"],
    "textile-running": ["Altivia", "Brisane", "Kerlann", "Sillon"],
    "vestes": ["Noroît", "Montéa", "Pic Rouge", "Sillon"],
    "maillots-de-bain": ["Ondine", "Estran", "Azuro"],
    "tennis": ["Hexa Sport", "Azuro", "Brisane"],
    "football": ["Kerlann", "Hexa Sport", "Altivia"],
    "fitness": ["Hexa Sport", "Sillon", "Altivia"],
    "ski": ["Pic Rouge", "Montéa", "Noroît"],
    "camping": ["Montéa", "Noroît", "Estran", "Pic Rouge"],
    "accessoires": BRANDS,
}

MODELS = [
    "Élan",
    "Zéphyr",
    "Mistral",
    "Sirocco",
    "Alizé",
    "Tramontane",
    "Ventoux",
    "Galibier",
    "Izoard",
    "Tourmalet",
    "Aubisque",
    "Vercors",
    "Cévennes",
    "Estérel",
    "Lubéron",
    "Bréhat",
    "Glénan",
    "Ouessant",
    "Aravis",
    "Belledonne",
    "Chartreuse",
    "Queyras",
    "Écrins",
    "Verdon",
    "Iseran",
    "Aigoual",
    "Azur",
    "Opale",
    "Émeraude",
    "Nacre",
    "Sillage",
    "Fréhel",
    "Alpe",
    "Rhône",
    "Loire",
    "Garonne",
]
_QUALIFIERS = ["", "", "", "", " Pro", " Evo", " Light", " Max", " Confort", " Tech", " Flex"]

# (code, French, English, hex) — the code goes into the SKU.
COLOURS: list[tuple[str, str, str, str]] = [
    ("NOI", "Noir", "Black", "#1f2328"),
    ("BLA", "Blanc", "White", "#f6f8fa"),
    ("BLE", "Bleu", "Blue", "#1f6feb"),
    ("MAR", "Bleu marine", "Navy", "#1b2a4a"),
    ("ROU", "Rouge", "Red", "#d1242f"),
    ("VER", "Vert", "Green", "#2da44e"),
    ("KAK", "Kaki", "Khaki", "#6b7041"),
    ("JAU", "Jaune", "Yellow", "#e3b341"),
    ("ORA", "Orange", "Orange", "#f0883e"),
    ("ROS", "Rose", "Pink", "#e85aad"),
    ("GRI", "Gris", "Grey", "#8c959f"),
    ("VIO", "Violet", "Purple", "#8250df"),
    ("TUR", "Turquoise", "Turquoise", "#1abc9c"),
    ("COR", "Corail", "Coral", "#ff7f6e"),
    ("BEI", "Beige", "Beige", "#d6c3a5"),
]

# First sentence of a description: what the product is for (French, English).
_USES: dict[str, list[tuple[str, str]]] = {
    "chaussures-running": [
        (
            "Conçues pour vos sorties sur route, du footing au semi-marathon.",
            "Designed for road running, from easy jogs to half marathons.",
        ),
        (
            "Un amorti dynamique qui vous accompagne sur les sentiers comme sur le bitume.",
            "Responsive cushioning that follows you on trails and tarmac alike.",
        ),
    ],
    "chaussures-randonnee": [
        (
            "Pensées pour la randonnée à la journée sur sentiers caillouteux.",
            "Made for day hikes on rocky trails.",
        ),
        (
            "Un bon maintien de la cheville pour les itinéraires de moyenne montagne.",
            "Solid ankle support for mid-mountain routes.",
        ),
    ],
    "baskets": [
        (
            "Des baskets confortables pour la ville et les week-ends.",
            "Comfortable sneakers for the city and weekends.",
        ),
        (
            "Un style rétro et une semelle souple pour marcher toute la journée.",
            "A retro style and a flexible sole to walk all day long.",
        ),
    ],
    "velos": [
        (
            "Un vélo polyvalent pour rouler au quotidien comme en balade.",
            "A versatile bike for commuting and weekend rides.",
        ),
        (
            "Cadre en aluminium léger et transmission fiable pour avaler les kilomètres.",
            "A light aluminium frame and a reliable drivetrain to eat up the miles.",
        ),
    ],
    "textile-running": [
        (
            "Un tissu respirant qui évacue la transpiration pendant l'effort.",
            "A breathable fabric that wicks sweat away while you run.",
        ),
        (
            "Léger et doux, il se fait oublier dès les premiers kilomètres.",
            "Light and soft, you forget it after the first mile.",
        ),
    ],
    "vestes": [
        (
            "Une veste qui vous protège de la pluie et du vent en randonnée.",
            "A jacket that keeps rain and wind out on the trail.",
        ),
        (
            "Chaude et compressible, elle se glisse facilement dans un sac à dos.",
            "Warm and packable, it slips easily into a backpack.",
        ),
    ],
    "maillots-de-bain": [
        (
            "Un maillot résistant au chlore pour nager en piscine toute l'année.",
            "A chlorine-resistant swimsuit for year-round pool swimming.",
        ),
        (
            "Séchage rapide et coupe ajustée pour la plage ou le bassin.",
            "Quick-drying with a snug fit, for the beach or the pool.",
        ),
    ],
    "tennis": [
        (
            "Une raquette maniable pour progresser en club ou en loisir.",
            "A manoeuvrable racket to improve at the club or for fun.",
        ),
        (
            "Un bon compromis entre puissance et contrôle pour les joueurs réguliers.",
            "A good balance of power and control for regular players.",
        ),
    ],
    "football": [
        (
            "Pensé pour les matchs et entraînements sur terrain synthétique ou naturel.",
            "Made for matches and training on artificial or natural grass.",
        ),
        (
            "Une excellente tenue pour jouer en club chaque semaine.",
            "Great durability for weekly club play.",
        ),
    ],
    "fitness": [
        (
            "Idéal pour s'entraîner à la maison ou en salle.",
            "Ideal for working out at home or at the gym.",
        ),
        (
            "Un équipement stable et robuste pour vos séances de renforcement.",
            "Stable, sturdy equipment for your strength sessions.",
        ),
    ],
    "ski": [
        (
            "Conçu pour la piste, de la première descente aux virages engagés.",
            "Built for the piste, from first runs to committed turns.",
        ),
        (
            "Une protection efficace contre le froid et la neige.",
            "Effective protection against cold and snow.",
        ),
    ],
    "camping": [
        (
            "Facile à installer, parfait pour le bivouac et le camping en famille.",
            "Easy to pitch, perfect for bivouacs and family camping.",
        ),
        (
            "Léger et compact pour partir à l'aventure le week-end.",
            "Light and compact for weekend adventures.",
        ),
    ],
    "accessoires": [
        (
            "Le petit accessoire qui change tout pendant vos sorties sportives.",
            "The small accessory that makes all the difference when you work out.",
        ),
        (
            "Pratique au quotidien comme pendant l'entraînement.",
            "Handy every day and during training.",
        ),
    ],
}
# Second sentence: a feature, shared by all categories.
_FEATURES: list[tuple[str, str]] = [
    (
        "Le modèle {model} de {brand} allie légèreté et durabilité.",
        "{brand}'s {model} combines lightness and durability.",
    ),
    (
        "Testé par nos équipes en conditions réelles, il est garanti 2 ans.",
        "Tested by our teams in real conditions, it comes with a 2-year warranty.",
    ),
    (
        "Fabriqué avec 30 % de matières recyclées.",
        "Made with 30% recycled materials.",
    ),
    (
        "Un excellent rapport qualité-prix signé {brand}.",
        "Great value for money from {brand}.",
    ),
    (
        "Disponible en plusieurs coloris pour s'adapter à votre style.",
        "Available in several colours to match your style.",
    ),
    (
        "Entretien facile : un coup d'éponge suffit.",
        "Easy care: a wipe with a sponge is enough.",
    ),
]

_HTML_PRODUCT = {
    "category": "accessoires",
    "brand": "Brisane",
    "name_fr": '<script>alert(1)</script> Casquette "Été" & Co',
    "name_en": '<script>alert(1)</script> "Summer" cap & Co',
    "description_fr": (
        "Casquette <b>légère</b> & respirante pour l'été. "
        '<img src=x onerror="alert(2)"> Taille « unique » — 100 % coton.'
    ),
    "description_en": (
        "A <b>light</b> & breathable cap for summer. "
        "<img src=x onerror=\"alert('2')\"> One size fits all."
    ),
    "price_cents": 1499,
}

# ------------------------------------------------------------------------------ helpers


def now_iso() -> str:
    """The current UTC time as ``2026-11-22T14:02:00Z``."""
    return clock.now_iso()


def _price_cents(rng: random.Random, low: float, high: float) -> int:
    """A price between ``low`` and ``high`` euros, ending in ,99 / ,00 / ,50.

    Log-uniform, so cheap items are more common than dear ones as in a real range.
    """
    euros = math.exp(rng.uniform(math.log(low), math.log(high)))
    if euros >= 200:
        euros = round(euros / 10) * 10 - 1  # 1 299,99 rather than 1 304,99
    roll = rng.random()
    cents = 99 if roll < 0.6 else (0 if roll < 0.85 else 50)
    price = int(euros) * 100 + cents
    return max(round(low * 100), min(round(high * 100), price))


def _sale_price(rng: random.Random, price: int) -> int:
    """A markdown of 10 to 30 % ending in ,99 (an end-of-line colour)."""
    reduced = int(price * rng.uniform(0.7, 0.9)) // 100 * 100 - 1
    return max(reduced, 99)


@contextlib.contextmanager
def _bulk_cache(db: hdb.Db, kib: int = 262_144) -> Iterator[None]:
    """A bigger page cache while bulk-loading (the kiosk's default is 8 MB); nothing on
    PostgreSQL (the hub's), whose server sizes its own buffers."""
    if hdb.is_pg(db):
        yield
        return
    before = db.execute("PRAGMA cache_size").fetchone()[0]
    if before < 0 and -before >= kib:
        yield
        return
    db.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA cache_size = {int(before)}")


def _insert_rows(db: hdb.Db, table: str, columns: list[str], rows: list[Any]) -> None:
    """Insert ``rows`` (sequences in ``columns`` order) with ONE statement.

    SQLite: the rows travel as a JSON array unpacked by ``json_each``. Against
    ``executemany`` this saves the per-statement work (statement journal, trigger program
    set-up), which grows with the size of the open transaction: 2-3 times faster here.
    PostgreSQL (a hub's database): ``COPY ... FROM STDIN``, its bulk path.
    """
    if hdb.is_pg(db):
        _copy_rows(db, table, columns, rows)
        return
    values = ", ".join(f"value ->> {i}" for i in range(len(columns)))
    db.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM json_each(?)",  # noqa: S608
        [json.dumps(rows, ensure_ascii=False, separators=(",", ":"))],
    )


def _copy_rows(db: hdb.Db, table: str, columns: list[str], rows: Iterable[Any]) -> None:
    """PostgreSQL: ``COPY table (columns) FROM STDIN`` in binary, with psycopg's row
    writer (the columns' types read from the catalog)."""
    assert isinstance(db, hdb.PgDatabase)
    types = dict(
        hdb.execute(
            db,
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped",
            [table],
        ).fetchall()
    )
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with db.conn.cursor() as cur, cur.copy(sql) as copy:
        copy.set_types([types[c] for c in columns])
        for row in rows:
            copy.write_row(row)


def _sync_identity(db: hdb.Db, table: str, column: str) -> None:
    """PostgreSQL: after rows were loaded with explicit ids into an identity column,
    move its sequence past the largest, so that the next default id does not collide.
    (SQLite's INTEGER PRIMARY KEY needs nothing: it takes max + 1.)"""
    if hdb.is_pg(db):
        hdb.execute(
            db,
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "  # noqa: S608
            f"(SELECT max({column}) FROM {table})) WHERE EXISTS (SELECT 1 FROM {table})",
        )


_PRODUCT_COLUMNS = [
    "pk",
    "ref",
    "category_id",
    "brand",
    "name_fr",
    "name_en",
    "description_fr",
    "description_en",
    "price_cents",
]
_VARIANT_COLUMNS = [
    "sku",
    "product_pk",
    "ean",
    "size",
    "size_order",
    "colour_code",
    "colour_fr",
    "colour_en",
    "colour_hex",
    "price_cents",
]


def _product_count(db: hdb.Db) -> int:
    return hdb.scalar(db, "SELECT count(*) FROM products")


# ---------------------------------------------------------------------------- seeding


def seed_stores(db: Database, self_store_id: str) -> None:
    """Insert (or refresh) :data:`DEMO_STORES`, marking ``self_store_id`` as this store."""
    ids = [store["id"] for store in DEMO_STORES]
    if self_store_id not in ids:
        raise ValueError(f"unknown demo store {self_store_id!r}; expected one of {ids}")
    with dbmod.write(db):
        db.conn.executemany(
            "INSERT INTO stores (id, name, city, address, is_self) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name, city = excluded.city, "
            "address = excluded.address, is_self = excluded.is_self",
            [
                (s["id"], s["name"], s["city"], s["address"], int(s["id"] == self_store_id))
                for s in DEMO_STORES
            ],
        )
        db.execute("UPDATE stores SET is_self = 0 WHERE id != ? AND is_self != 0", [self_store_id])


def _seed_categories(db: hdb.Db) -> dict[str, int]:
    hdb.executemany(
        db,
        "INSERT INTO categories (slug, name_fr, name_en, position) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(slug) DO UPDATE SET name_fr = excluded.name_fr, "
        "name_en = excluded.name_en, position = excluded.position",
        [(c["slug"], c["name_fr"], c["name_en"], c["position"]) for c in CATEGORIES],
    )
    return {
        slug: cid for cid, slug in hdb.execute(db, "SELECT id, slug FROM categories").fetchall()
    }


def seed_catalog(
    db: hdb.Db, products: int = 2000, seed: int = 42, progress: Progress | None = None
) -> dict[str, int]:
    """Insert categories, ``products`` products and their variants.

    Works on a store's database and on the hub's (SQLite or PostgreSQL).
    Deterministic for a given ``seed``. Product ``pk`` runs from 1 to ``products``;
    refs are ``M`` + 6 shuffled digits; every variant has a unique SKU
    (``ref-COLOUR-size``) and a unique, valid French EAN-13. ``progress(done, total)``
    is called every few thousand products. Raises ``ValueError("already seeded")`` if
    the table ``products`` is not empty. Returns the counts inserted.
    """
    if products < 0:
        raise ValueError("products must be >= 0")
    rng = random.Random(seed)
    with hdb.write(db), _bulk_cache(db):
        if _product_count(db):
            raise ValueError("already seeded")
        category_ids = _seed_categories(db)
        slugs = [c["slug"] for c in CATEGORIES]
        weights = [_CATEGORY_WEIGHTS[s] for s in slugs]
        # Drawing all categories at once is much faster than one choices() per product.
        drawn = rng.choices(slugs, weights=weights, k=products)
        refs = [f"M{n:06d}" for n in rng.sample(range(100_000, 1_000_000), products)]
        html_pk = min(666, products) if products >= 2 else 0

        ean_counter = _EAN_BASE
        n_variants = 0
        product_rows: list[tuple[Any, ...]] = []
        variant_rows: list[tuple[Any, ...]] = []
        colour_counts = (1, 2, 3)
        colour_weights = (45, 35, 20)

        for pk in range(1, products + 1):
            if pk == html_pk:
                spec = _HTML_PRODUCT
                slug = spec["category"]
                ref = HTML_PRODUCT_REF
                brand = spec["brand"]
                name_fr, name_en = spec["name_fr"], spec["name_en"]
                desc_fr, desc_en = spec["description_fr"], spec["description_en"]
                price = spec["price_cents"]
                size_kind = "one"
                sizes = SIZES["one"]
                colours = [COLOURS[3], COLOURS[4]]
                sale_colour = None
            else:
                # The first products cover every category once, with its first
                # template ("Chaussures de running", "Vélo de route"...): even a tiny
                # catalogue has them all. The showcase product (pk 1) is running shoes.
                if pk <= len(slugs):
                    slug = slugs[pk - 1]
                    template = _TEMPLATES[slug][0]
                else:
                    slug = drawn[pk - 1]
                    template = rng.choice(_TEMPLATES[slug])
                stem_fr, stem_en, size_kind, low, high, per_audience = template
                ref = refs[pk - 1]
                brand = rng.choice(_CATEGORY_BRANDS[slug])
                model = rng.choice(MODELS)
                style = rng.random()
                if style < 0.4:
                    number = str(rng.randint(1, 9))
                elif style < 0.7:
                    number = str(rng.randint(1, 9) * 100)
                else:
                    number = str(rng.randint(10, 99))
                series = f"{model} {number}{rng.choice(_QUALIFIERS)}"
                if per_audience:
                    aud_fr, aud_en = rng.choice(_AUDIENCES)
                    sizes = _AUDIENCE_SIZES[size_kind][aud_fr]
                else:
                    aud_fr, aud_en = "", ""
                    sizes = SIZES[size_kind]
                name_fr = f"{stem_fr} {series}" + (f" {aud_fr}" if aud_fr else "")
                name_en = f"{aud_en}{series} {stem_en}"
                use_fr, use_en = rng.choice(_USES[slug])
                feat_fr, feat_en = rng.choice(_FEATURES)
                desc_fr = f"{use_fr} {feat_fr.format(model=model, brand=brand)}"
                desc_en = f"{use_en} {feat_en.format(model=model, brand=brand)}"
                price = _price_cents(rng, low, high)
                k = (
                    3
                    if pk == SHOWCASE_PRODUCT_PK
                    else rng.choices(colour_counts, colour_weights)[0]
                )
                colours = rng.sample(COLOURS, k)
                sale_colour = colours[-1][0] if k > 1 and rng.random() < 0.05 else None

            product_rows.append(
                (pk, ref, category_ids[slug], brand, name_fr, name_en, desc_fr, desc_en, price)
            )
            sale_price = _sale_price(rng, price) if sale_colour else None
            size_keys = _SIZE_KEYS[size_kind]
            for code, colour_fr, colour_en, colour_hex in colours:
                override = sale_price if code == sale_colour else None
                for size in sizes:
                    size_code, size_order = size_keys[size]
                    ean_counter += 1
                    variant_rows.append(
                        (
                            f"{ref}-{code}-{size_code}",
                            pk,
                            make_ean13(f"{EAN_PREFIX}{ean_counter:09d}"),
                            size,
                            size_order,
                            code,
                            colour_fr,
                            colour_en,
                            colour_hex,
                            override,
                        )
                    )

            if len(product_rows) >= _BATCH or pk == products:
                _insert_rows(db, "products", _PRODUCT_COLUMNS, product_rows)
                _insert_rows(db, "variants", _VARIANT_COLUMNS, variant_rows)
                n_variants += len(variant_rows)
                product_rows.clear()
                variant_rows.clear()
                if progress is not None:
                    progress(pk, products)
        _sync_identity(db, "products", "pk")

    return {"categories": len(CATEGORIES), "products": products, "variants": n_variants}


def _showcase_skus(db: hdb.Db) -> list[str]:
    rows = hdb.execute(
        db,
        "SELECT v.sku FROM variants v JOIN products p ON p.pk = v.product_pk "
        "WHERE v.product_pk = ? AND p.ref != ? ORDER BY v.colour_code, v.size_order LIMIT ?",
        [SHOWCASE_PRODUCT_PK, HTML_PRODUCT_REF, len(SHOWCASE_QTYS)],
    ).fetchall()
    return [row[0] for row in rows]


# Quantities drawn for stock levels: ~12 % at 0, ~10 % at 1-2, the rest 3-25 (skewed low).
_QTY_VALUES = list(range(26))
_QTY_WEIGHTS = [12.0, 5.0, 5.0] + [78.0 * w / sum(range(23, 0, -1)) for w in range(23, 0, -1)]
_QTY_CUM = [sum(_QTY_WEIGHTS[: i + 1]) for i in range(len(_QTY_WEIGHTS))]


def seed_stock(
    db: hdb.Db, seed: int = 42, as_of: str | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Insert a stock level for every store in ``stores`` and every variant.

    Each store draws from ``random.Random(seed + index)`` (stores ordered by id), so
    levels differ between stores: about 12 % of variants at 0, 10 % at 1 or 2, the
    rest between 3 and 25. The showcase product's first variants get
    :data:`SHOWCASE_QTYS` everywhere. ``as_of`` defaults to now (UTC, ISO 8601). Works
    on a store's database and on the hub's (SQLite or PostgreSQL: the same levels).
    """
    as_of = as_of or now_iso()
    with hdb.write(db), _bulk_cache(db):
        # Sorted in Python (code points, as SQLite's BINARY collation): a PostgreSQL
        # database's collation may order them otherwise, and the levels drawn follow it.
        store_ids = sorted(row[0] for row in hdb.execute(db, "SELECT id FROM stores"))
        # In key order, so the WITHOUT ROWID table is filled by appending.
        skus = sorted(row[0] for row in hdb.execute(db, "SELECT sku FROM variants"))
        forced = dict(zip(_showcase_skus(db), SHOWCASE_QTYS, strict=False))
        total = len(skus) * len(store_ids)
        zero = low = 0
        done = 0
        sql = (
            "INSERT INTO stock_levels (store_id, sku, qty, as_of) "
            "SELECT ?, value ->> 0, value ->> 1, ? FROM json_each(?)"
        )
        positions = {sku: skus.index(sku) for sku in forced}
        for index, store_id in enumerate(store_ids):
            rng = random.Random(seed + index)
            qtys = rng.choices(_QTY_VALUES, cum_weights=_QTY_CUM, k=len(skus))
            for sku, qty in forced.items():
                qtys[positions[sku]] = qty
            zero += qtys.count(0)
            low += qtys.count(1) + qtys.count(2)
            # One statement per batch (see _insert_rows), rows in key order.
            if hdb.is_pg(db):
                _copy_rows(
                    db,
                    "stock_levels",
                    ["store_id", "sku", "qty", "as_of"],
                    ((store_id, sku, qty, as_of) for sku, qty in zip(skus, qtys, strict=True)),
                )
                done += len(skus)
                if progress is not None:
                    progress(done, total)
                continue
            for start in range(0, len(skus), _STOCK_BATCH):
                stop = start + _STOCK_BATCH
                rows = json.dumps(list(zip(skus[start:stop], qtys[start:stop], strict=True)))
                db.execute(sql, [store_id, as_of, rows])
                done += min(stop, len(skus)) - start
                if progress is not None:
                    progress(done, total)
    return {
        "stores": len(store_ids),
        "stock_levels": total,
        "out_of_stock": zero,
        "low_stock": low,
    }


def seed_store(
    db: Database,
    self_store_id: str,
    products: int = 2000,
    seed: int = 42,
    progress: Progress | None = None,
    as_of: str | None = None,
) -> dict[str, int]:
    """Everything a store's database needs: stores, catalogue and stock, in one transaction.

    ``progress(done, total)`` counts the catalogue as the first half of the work and
    the stock as the second. Raises ``ValueError("already seeded")`` if products exist.
    """
    scale = max(products, 1)
    catalog_progress: Progress | None = None
    stock_progress: Progress | None = None
    if progress is not None:
        report = progress

        def catalog_progress(done: int, total: int) -> None:
            report(done, 2 * scale)

        def stock_progress(done: int, total: int) -> None:
            report(scale + (done * scale) // max(total, 1), 2 * scale)

    # One cache for the whole load: shrinking it between the phases would spill the
    # catalogue's dirty pages to the WAL half-way through the transaction.
    with dbmod.write(db), _bulk_cache(db):
        if _product_count(db):
            raise ValueError("already seeded")
        seed_stores(db, self_store_id)
        counts = seed_catalog(db, products=products, seed=seed, progress=catalog_progress)
        counts.update(seed_stock(db, seed=seed, as_of=as_of, progress=stock_progress))
    return counts


# ------------------------------------------------------------------------------ reading


def sample_barcodes(db: Database, self_store_id: str, n: int = 5) -> list[dict[str, Any]]:
    """A few EANs to try at the kiosk, with the stock in ``self_store_id``.

    In order: one in stock (3 or more), one with exactly 1 left, one out of stock,
    then more in-stock ones from other products, up to ``n``. Right after seeding the
    first three are the showcase product's (see :data:`SHOWCASE_QTYS`). Read-only:
    a condition nobody meets any more is skipped. The HTML test product is left out.
    """
    select = (
        "SELECT v.ean, v.sku, p.ref, p.name_fr, s.qty, v.size, v.colour_fr, p.category_id "
        # CROSS JOIN pins the join order: walk products by pk and stop at the first
        # hit, instead of scanning the store's whole stock and sorting it.
        "FROM products p CROSS JOIN variants v ON v.product_pk = p.pk "
        "CROSS JOIN stock_levels s ON s.store_id = ? AND s.sku = v.sku "
        "WHERE p.ref != ? AND {cond} ORDER BY p.pk, v.colour_code, v.size_order LIMIT 1"
    )
    conditions = ["s.qty >= 3", "s.qty = 1", "s.qty = 0"]
    conditions += ["s.qty >= 3"] * max(0, n - len(conditions))
    chosen: list[dict[str, Any]] = []
    used_cats: set[int] = set()
    for position, cond in enumerate(conditions[:n]):
        params: list[Any] = [self_store_id, HTML_PRODUCT_REF]
        extra = ""
        if chosen:
            extra = " AND v.sku NOT IN ({})".format(", ".join("?" for _ in chosen))
            params += [c["sku"] for c in chosen]
        if position >= 3:
            # The fillers come from other categories than those already shown.
            extra += " AND p.category_id NOT IN ({})".format(", ".join("?" for _ in used_cats))
            params += sorted(used_cats)
        row = db.execute(select.format(cond=cond + extra), params).fetchone()  # noqa: S608
        if row is None:
            continue
        ean, sku, ref, name_fr, qty, size, colour_fr, category_id = row
        used_cats.add(category_id)
        chosen.append(
            {
                "ean": ean,
                "sku": sku,
                "ref": ref,
                "name_fr": name_fr,
                "qty": qty,
                "size": size,
                "colour_fr": colour_fr,
            }
        )
    return chosen
