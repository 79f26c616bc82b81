"""The web shop's catalog (``/shop``): home, search, a category's products, a product
with its colours and sizes and the stores that hold it, product pictures, and the
language switch.

Long lists come a page at a time (``?page=``, the last page when past it): search
results and a category's products (24 a page), and on a product's page the stores
holding the chosen colour (10 a page, by city, searchable by city or store name with
``?magasins=``): a chain has a thousand stores.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from app.core import catalog
from app.core.search import QueryTooLong, tokens
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import cart_prices, customer_feed, personal, shop_stores
from app.hub.domain.listing import Page, page_number, paginate, search_words, text_match
from app.hub.migrations import fill_product_search
from app.hub.storage import get_db
from app.hub.views import account
from app.hub.views.webshop import blueprint, safe_back
from app.web.i18n import LANGUAGES, current_lang

bp = blueprint("webshop_catalog", __name__)

PAGE_SIZE = 24
SEARCH_LIMIT = 24  # results a page
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")


def search_pks(db: Db, words: list[str], limit: int = 40, offset: int = 0) -> list[int]:
    """Products whose folded name, brand or reference contain every one of ``words``
    (already folded: app.core.search.tokens), by name (``limit`` from ``offset``).

    A plain LIKE over ``products.search_text`` (app/hub/migrations.py folds it): no FTS
    index at the hub, a scan of a few thousand products, well under 50 ms. The same on
    SQLite and PostgreSQL: both sides are folded, so LIKE's case rules (SQLite ignores
    ASCII case, PostgreSQL does not) never come into play.
    """
    if not words:
        return []
    fill_product_search(db)  # products written since the last search (usually none)
    clause, params = text_match("p.search_text", words)
    return [
        r[0]
        for r in hdb.execute(
            db,
            f"SELECT p.pk FROM products p WHERE {clause} "  # noqa: S608
            "ORDER BY p.name_fr, p.pk LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
    ]


def search_count(db: Db, words: list[str]) -> int:
    """How many products :func:`search_pks` finds in all."""
    if not words:
        return 0
    fill_product_search(db)
    clause, params = text_match("p.search_text", words)
    return int(hdb.scalar(db, f"SELECT count(*) FROM products p WHERE {clause}", params))  # noqa: S608


def _swatch(hex_colour: str) -> str:
    """A colour dot as an SVG data URL: the CSP forbids style attributes, not data images."""
    fill = hex_colour if _HEX.fullmatch(hex_colour or "") else "#888888"
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='28' height='28'>"
        f"<circle cx='14' cy='14' r='12' fill='{fill}' stroke='#4a5866' stroke-width='1.5'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg, safe="/:='")


def _cards(db: Any, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Product summaries with today's web price (promotions through the one pricing door)."""
    for p in products:
        p["price_now"] = cart_prices.unit_price(db, p)
    return products


@bp.get("/")
def home() -> ResponseReturnValue:
    """The shop's home: search box and categories."""
    categories = catalog.categories(get_db(), current_lang())
    return render_template("hub/shop/home.html", categories=categories)


@bp.get("/recherche")
def search() -> ResponseReturnValue:
    """Products whose name, brand or reference contain every word typed (accents ignored)."""
    query = request.args.get("q", "")
    db = get_db()
    try:
        words = tokens(query)
    except QueryTooLong:
        words = None
    total = search_count(db, words or [])
    number, offset = paginate(total, page_number(request.args.get("page")), SEARCH_LIMIT)
    pks = search_pks(db, words or [], SEARCH_LIMIT, offset)
    products = _cards(db, catalog.products_by_pks(db, pks, current_lang()))
    status = 400 if words is None else 200
    return render_template(
        "hub/shop/search.html",
        query=query[:100],
        products=products,
        too_long=words is None,
        page=Page(products, total, number, SEARCH_LIMIT),
    ), status


@bp.get("/rayon/<slug>")
def category(slug: str) -> ResponseReturnValue:
    """A category's products, a page at a time."""
    db = get_db()
    cat = catalog.category_by_slug(db, slug[:80], current_lang())
    if cat is None:
        abort(404)
    total = int(hdb.scalar(db, "SELECT count(*) FROM products WHERE category_id = ?", [cat["id"]]))
    number, offset = paginate(total, page_number(request.args.get("page")), PAGE_SIZE)
    rows = catalog.products_in_category(
        db, cat["id"], current_lang(), offset=offset, limit=PAGE_SIZE
    )
    products = _cards(db, rows)
    return render_template(
        "hub/shop/category.html",
        category=cat,
        products=products,
        page=Page(products, total, number, PAGE_SIZE),
    )


@bp.get("/produit/<ref>")
def product(ref: str) -> ResponseReturnValue:
    """A product: pictures, price, colour and size chooser, add to cart."""
    db = get_db()
    lang = current_lang()
    p = catalog.product_by_ref(db, ref[:40], lang)
    if p is None:
        abort(404)
    variants = catalog.variants(db, p["pk"], lang)
    if not variants:
        abort(404)
    customer = account.signed_in()
    # Kept for suggestions only with consent (personal.py); their stores learn it.
    if customer is not None and personal.record_view(db, customer["id"], p["pk"]):
        customer_feed.view_recorded(db, account.pii_ring(), customer["id"])
    colours: dict[str, dict[str, Any]] = {}
    for v in variants:
        colours.setdefault(
            v["colour_code"],
            {"code": v["colour_code"], "name": v["colour"], "dot": _swatch(v["colour_hex"])},
        )
    chosen = request.args.get("couleur", "")
    if chosen not in colours:
        chosen = variants[0]["colour_code"]
    sizes = [v for v in variants if v["colour_code"] == chosen]
    marks = ",".join("?" * len(sizes))
    # Negative levels count as none (CASE: SQLite has no greatest(), PostgreSQL no
    # scalar max()).
    online = dict(
        hdb.execute(
            db,
            "SELECT sku, sum(CASE WHEN qty > 0 THEN qty ELSE 0 END) FROM stock_levels "  # noqa: S608
            f"WHERE sku IN ({marks}) GROUP BY sku",
            [v["sku"] for v in sizes],
        ).fetchall()
    )
    for v in sizes:
        base = v["price_cents"] if v["price_cents"] is not None else p["price_cents"]
        v["base_cents"] = base
        v["price_now"] = cart_prices.unit_price(db, p, v)
        v["in_stores"] = int(online.get(v["sku"]) or 0)
    # Where to find the chosen colour: 10 stores a page, by city, searchable.
    where = request.args.get("magasins", "")[:100]
    stores = shop_stores.stores_with_stock(
        db, [v["sku"] for v in sizes], search_words(where), page_number(request.args.get("page"))
    )
    size_of = {v["sku"]: v["size"] for v in sizes}
    for st in stores.items:
        st["sizes"] = [{"size": size_of[x["sku"]], "qty": x["qty"]} for x in st["in_stock"]]
    return render_template(
        "hub/shop/product.html",
        product=p,
        colours=list(colours.values()),
        chosen=chosen,
        sizes=sizes,
        price_now=min(v["price_now"] for v in sizes),
        base_price=min(v["base_cents"] for v in sizes),
        stores=stores,
        where=where,
    )


@bp.get("/image/<ref>/<int:n>.png")
def picture(ref: str, n: int) -> ResponseReturnValue:
    """A product picture, drawn once with Pillow (as the kiosk's) and served from disk."""
    if n not in (0, 1, 2):
        abort(404)
    from app.core import pictures  # Pillow's drawing code loads only when a picture is drawn

    wanted = request.args.get("couleur")
    path = pictures.product_picture(
        get_db(),
        Path(current_app.config["DATA_DIR"]) / "pictures",
        ref,
        n,
        lambda v: v["colour_code"] == wanted,
    )
    if path is None:
        abort(404)
    # Drawn once per product and colour and never changed: phones may keep it a day.
    return send_file(path, mimetype="image/png", max_age=86400)


@bp.post("/langue")
def set_lang() -> ResponseReturnValue:
    """Switch the shop's language (French first, English)."""
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    return redirect(safe_back(url_for("webshop_catalog.home")))
