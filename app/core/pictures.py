"""Product pictures drawn with Pillow: flat, deterministic, rendered on demand.

A picture depends only on its arguments (no randomness, no clock), so it can be cached
on disk forever under a key made of them (:func:`cached_picture`). Shapes are drawn at
twice the size and scaled down, which gives smooth, anti-aliased edges cheaply. The
drawings themselves are :mod:`app.core.picture_drawings`; this module holds the
picture around them (background, views, the label and its font), the PNG file and its
cache, and the entry points the kiosk and the web shop call.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Callable
from hashlib import sha256
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin
from sqlite_utils import Database

from app.core import catalog
from app.core.picture_drawings import DRAWINGS, INK, WHITE, Palette, Pen, parse_hex
from app.core.picture_kinds import CATEGORY_KINDS, KINDS, kind_for

#: The drawing each demo category gets when a product's name says nothing more (see
#: :mod:`app.core.picture_kinds`, which reads the name); anything else gets a parcel box.
CATEGORY_SHAPES: dict[str, str] = CATEGORY_KINDS
SHAPES = KINDS
VARIANTS = 3  # views per product: 0 plain, 1 mirrored, 2 close-up

_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SUPERSAMPLE = 2
_PNG_LEVEL = 6


def shape_for(category_slug: str) -> str:
    """The drawing used for a category (``"box"`` when the category is unknown)."""
    return CATEGORY_SHAPES.get(category_slug, "box")


#: The label's typeface: DejaVu Sans Condensed Bold, vendored with its licence (it covers
#: French whole: accents, œ, Ÿ, « », ’, …, €). Pillow's built-in face has no accents.
FONT_PATH = (
    Path(__file__).resolve().parents[2] / "static/vendor/dejavu/DejaVuSansCondensed-Bold.ttf"
)


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(str(FONT_PATH), size=size)
    except OSError:  # the font file is missing: a face without accents beats no label
        try:
            return ImageFont.load_default(size=size)
        except (TypeError, OSError):  # Pillow built without FreeType
            return ImageFont.load_default()


def _fitted(label: str) -> str:
    """The label as printed: spaces tidied, at most 32 characters."""
    text = " ".join(str(label or "").split())
    return text if len(text) <= 32 else text[:31] + "…"


def _draw_label(image: Image.Image, label: str, palette: Palette) -> None:
    text = _fitted(label)
    if not text:
        return
    size = image.width
    font = _font(max(10, round(size * 0.05)))
    draw = ImageDraw.Draw(image)
    pad = round(size * 0.022)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    box_w, box_h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    left, top = pad * 2, size - box_h - pad * 2
    draw.rounded_rectangle(
        (left, top, left + box_w, top + box_h), radius=box_h // 2, fill=WHITE, outline=palette.tint
    )
    draw.text((left + pad - x0, top + pad - y0), text, font=font, fill=INK)


def render_product_picture(
    category_slug: str,
    colour_hex: str,
    label: str,
    size: int = 480,
    variant: int = 0,
    *,
    shape: str | None = None,
) -> bytes:
    """A PNG picture of a product: a flat drawing in its colour on a light background.

    The drawing depends on the category (see :data:`CATEGORY_SHAPES`; ``shape``, a
    product's kind from :func:`app.core.picture_kinds.kind_for`, forces one of
    :data:`SHAPES`). ``variant`` 0, 1 and 2 give three views: plain,
    mirrored on another background, and a close-up. ``label`` (a brand, a ref...) is
    printed in a pill at the bottom; pass ``""`` for none. Same arguments, same bytes.
    """
    if not 16 <= size <= 2048:
        raise ValueError("size must be between 16 and 2048 pixels")
    variant = variant % VARIANTS
    palette = Palette(parse_hex(colour_hex), variant)
    kind = shape if shape in SHAPES else shape_for(category_slug)

    # Drawn at twice the size then halved (2x2 box filter): smooth edges, cheaply.
    side = size * _SUPERSAMPLE
    image = Image.new("RGB", (side, side), palette.background)
    zoom = 1.22 if variant == 2 else 1.0
    pen = Pen(ImageDraw.Draw(image), side, zoom=zoom, focus=(0.5, 0.5))
    pen.ellipse(0.5, 0.47 if variant != 1 else 0.5, 0.4, fill=palette.halo)
    DRAWINGS[kind](pen, palette)
    if variant == 1:
        image = ImageOps.mirror(image)
    image = image.reduce(_SUPERSAMPLE)
    _draw_label(image, label, palette)

    # What was drawn, said in the file too (a PNG text chunk): tools and tests can read it.
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Kind", kind)
    info.add_itxt("Label", _fitted(label))
    out = BytesIO()
    image.save(out, format="PNG", compress_level=_PNG_LEVEL, pnginfo=info)
    return out.getvalue()


def _file_stem(key: str) -> str:
    if _SAFE_KEY.fullmatch(key) and ".." not in key:
        return key
    return sha256(key.encode("utf-8")).hexdigest()


def cached_picture(cache_dir: Path, key: str, render: Callable[[], bytes]) -> Path:
    """The PNG file for ``key`` in ``cache_dir``, rendering and storing it if missing.

    Keys made of letters, digits, ``.``, ``_`` and ``-`` are used as the file name (plus
    ``.png``); any other key is hashed, so a key can never point outside the folder.
    The file is written to a temporary name then renamed (``os.replace``): a reader
    sees the whole picture or none, even with several processes rendering at once.
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{_file_stem(key)}.png"
    if path.is_file():
        return path
    data = render()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


#: Bumped when drawings change, so that pictures cached by an older version are redrawn.
DRAWING_VERSION = "k2"

#: Tile colours of the category pictures, in turn down the list of categories.
CATEGORY_COLOURS = (
    "#1f6feb",
    "#d1242f",
    "#2da44e",
    "#f0883e",
    "#8250df",
    "#1abc9c",
    "#e3b341",
    "#e85aad",
)


def _brand_tag(brand: str) -> str:
    return sha256(_fitted(brand).encode("utf-8")).hexdigest()[:12]


def product_picture(
    db: Database, cache_dir: Path, ref: str, n: int, chosen: Callable[[dict], bool]
) -> Path | None:
    """The cached picture ``n`` of product ``ref`` in the colour of the first variant
    ``chosen`` accepts (else its first variant's), or None for an unknown product.
    It draws the product's kind (from its name, see :mod:`app.core.picture_kinds`)
    and prints its own brand. Shared by the kiosk and the hub's web shop: the same
    product looks the same."""
    product = catalog.product_by_ref(db, ref[:40], "fr")
    if product is None:
        return None
    variants = catalog.variants(db, product["pk"], "fr")
    colour = next((v["colour_hex"] for v in variants if chosen(v)), None)
    colour = colour or (variants[0]["colour_hex"] if variants else "#888888")
    slug = product["category_slug"]
    kind = kind_for(slug, product.get("name_fr") or "", product.get("name_en") or "")
    brand = product.get("brand") or ""
    return cached_picture(
        cache_dir,
        f"{DRAWING_VERSION}-{kind}-{colour.lstrip('#')}-{n}-{_brand_tag(brand)}",
        lambda: render_product_picture(slug, colour, brand, variant=n, shape=kind),
    )


def category_picture(db: Database, cache_dir: Path, slug: str, size: int = 320) -> Path | None:
    """The cached tile picture of a category, or None for an unknown one: the drawing
    of its usual kind (else its first product's), with no text (the tile says the
    name in the shopper's language), each category in its own colour."""
    slugs = [c["slug"] for c in catalog.categories(db, "fr")]
    if slug not in slugs:
        return None
    kind = CATEGORY_KINDS.get(slug)
    if kind is None:
        kind = kind_for(slug, *catalog.first_product_names(db, slug))
    colour = CATEGORY_COLOURS[slugs.index(slug) % len(CATEGORY_COLOURS)]
    return cached_picture(
        cache_dir,
        f"{DRAWING_VERSION}-category-{kind}-{colour.lstrip('#')}-{size}",
        lambda: render_product_picture(slug, colour, "", size=size, shape=kind),
    )
