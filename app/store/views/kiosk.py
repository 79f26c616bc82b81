"""The shopper kiosk (``/``): attract screen, browse, search, product, scan."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _

from app.core import catalog, clock, ean, tokens
from app.core import db as dbmod
from app.core.pricing import item_for, unit_price
from app.core.search import QueryTooLong, search_forgiving
from app.store.domain import customer_cards, personal, promotions, stock
from app.store.storage import get_db
from app.store.sync.feed import CATALOG_VERSION
from app.store.views import kiosk_card, product_page
from app.store.views.promotions import price_context, price_version, slots_context
from app.store.views.scanned_cart import STAFF_LOGIN_KEYS, open_scanned, staff_tablet
from app.store.views.store_info import store_name
from app.web import fragments
from app.web.htmx import htmx, redirect_page, render_page_or_partial, vary_on_htmx
from app.web.i18n import LANGUAGES, current_lang, format_local_date, local_moment
from app.web.security import safe_next

bp = Blueprint("kiosk", __name__)
bp.after_request(vary_on_htmx)
# Product cards and the product page's parts rendered once per what they show.
bp.record_once(lambda state: fragments.init_app(state.app))

PAGE_SIZE = 24
MAX_PAGE = 10_000  # past any real catalog; keeps OFFSET arithmetic in range
RECENT_MAX = 6


def kiosk_globals() -> dict[str, Any]:
    """The store's name and the idle timers, for every page (listed in app/store/app.py)."""
    return {
        "store_name": store_name(),
        "idle_seconds": current_app.config["IDLE_SECONDS"],
        "countdown_seconds": current_app.config["IDLE_COUNTDOWN_SECONDS"],
    }


def _safe_next(default: str = "/") -> str:
    """Where to go back after a form: a local path only (security.safe_next); the
    referrer, absolute, counts if it is ours."""
    target = request.form.get("next") or request.referrer
    return safe_next(target, default, host=request.host)


def _remember(ref: str) -> None:
    seen = [r for r in session.get("seen", []) if r != ref]
    session["seen"] = [ref, *seen][:RECENT_MAX]


def _stock_here(db: Any, products: list[dict[str, Any]]) -> dict[int, tuple[int, list[str], int]]:
    """Per product: how many sizes it comes in, the sizes in stock here (in any colour)
    in size order, and its units here: a card says "12 tailles dispo", not the sum of
    their units. Two queries for a page of cards (its variants, their levels)."""
    per_product = catalog.variant_sizes(db, [p["pk"] for p in products])  # one query
    levels = stock.levels(db, [v["sku"] for vs in per_product.values() for v in vs])
    out: dict[int, tuple[int, list[str], int]] = {}
    for pk, variants in per_product.items():
        order: dict[str, int] = {}
        here: set[str] = set()
        total = 0
        for v in variants:
            order.setdefault(v["size"], v["size_order"])
            qty = levels.get(v["sku"], 0)  # never negative (levels clamps)
            total += qty
            if qty > 0:
                here.add(v["size"])
        out[pk] = (len(order), sorted(here, key=lambda size: (order[size], size)), total)
    return out


def _with_stock(db: Any, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards: units here, the sizes here for a sized product, and today's price (a
    promotion on the product's category or on everything shows on the card as on the
    product page before a size is chosen)."""
    here = _stock_here(db, products)
    now = clock.utcnow()
    rules = promotions.active_rules(db, now)
    own = stock.self_store_id(db) if rules else None
    for p in products:
        p["size_count"], p["sizes_here"], p["here"] = here.get(p["pk"], (0, [], 0))
        p["price_now"] = p["price_cents"]
        if rules:
            p["price_now"] = unit_price(item_for(p), rules, store_id=own, now=now).total_cents
    return products


@bp.get("/")
def attract() -> str:
    """The attract screen shown while nobody is using the kiosk."""
    return render_template("kiosk/attract.html", **slots_context(get_db()))


@bp.get("/browse")
def browse() -> str:
    """Categories, search box and what this shopper looked at."""
    db = get_db()
    lang = current_lang()
    seen = session.get("seen", [])
    recent = []
    for ref in seen:
        p = catalog.product_by_ref(db, ref, lang)
        if p:
            recent.append(p)
    return render_template(
        "kiosk/browse.html",
        categories=catalog.categories(db, lang),
        recent=recent,
        q="",
        for_you=_for_you(db, lang),
    )


def _for_you(db: Any, lang: str) -> dict[str, Any] | None:
    """« Pour vous » for a recognised shopper who consented (nothing asked otherwise):
    the cards seen online and suggested that are in stock here, and current offers."""
    if not kiosk_card.personal_allowed():
        return None
    shown = personal.for_you(db, session.get(kiosk_card.SESSION_KEY))
    if not shown:
        return None
    cards = _with_stock(db, catalog.products_by_pks(db, shown.recent + shown.suggested, lang))
    by_pk = {p["pk"]: p for p in cards}
    return {
        "recent": [by_pk[pk] for pk in shown.recent if pk in by_pk],
        "suggested": [by_pk[pk] for pk in shown.suggested if pk in by_pk],
        "offers": [{**offer, "until": _last_day(offer["ends_at"])} for offer in shown.offers],
    }


def _last_day(ends_at: str | None) -> str:
    """An offer's last day as the shopper reads it (``10 déc. 2026``): its end is the
    first moment it no longer runs (the next day's midnight, UTC or here), so the day of
    the moment before, the earlier of that day in UTC and here."""
    if not ends_at:
        return ""
    last = clock.parse_iso(ends_at) - timedelta(seconds=1)
    here = local_moment(last)
    day = min(last.astimezone(UTC).date(), here.date() if here else last.date())
    return format_local_date(datetime.combine(day, time(12), UTC))


@bp.get("/search")
def search() -> Any:
    """Search as you type: the results partial for htmx, the full page otherwise."""
    db = get_db()
    lang = current_lang()
    q = request.args.get("q", "")
    # The results partial is cached (shoppers type the same first letters all day: "ch",
    # "chau"…) in the app's bounded fragment cache; any stock, catalog (names, prices)
    # or promotion change makes a new key.
    catalog_version = dbmod.get_meta(db, CATALOG_VERSION, "0") or "0"
    promo_version = promotions.version(db, clock.utcnow())  # prices on the cards
    cache = fragments.cache_for(current_app)
    key = fragments.key_of(
        "search",
        lang,
        request.script_root,
        (stock.stock_version(db), catalog_version, promo_version, q),
    )
    if htmx:
        cached = cache.get(key)
        if cached is not None:
            return cached
    status = 200
    error = None
    results: list[dict[str, Any]] = []
    suggestion = None
    try:
        exact = catalog.find_variant(db, q.strip()) if q.strip().isdigit() else None
        if exact:
            pks = [catalog.product_pk(db, exact["ref"])]
        else:
            # Nothing found as typed: the nearest spelling, shown as "Did you mean …?".
            found = search_forgiving(db, q, limit=PAGE_SIZE)
            pks, suggestion = found.pks, found.suggestion
        results = _with_stock(db, catalog.products_by_pks(db, pks, lang))
    except QueryTooLong:
        error = _("That search is too long. Try one or two words.")
        status = 400
    context = {"q": q, "results": results, "error": error, "suggestion": suggestion}
    html = render_page_or_partial(
        "kiosk/search.html",
        "kiosk/_search_results.html",
        page_extra=lambda: {"categories": catalog.categories(db, lang)},
        **context,
    )
    if htmx and status == 200:  # the partial alone is what the cache keeps
        cache.put(key, html)
    return html, status


@bp.get("/category/<slug>")
def category(slug: str) -> Any:
    """One category's products, a page at a time. The open page polls its cards with the
    price version it shows (as an open product page polls its price): 204 while
    unchanged, the cards with today's prices once a promotion starts, ends or changes."""
    db = get_db()
    version = price_version(db)
    if htmx and request.args.get("v") == version:
        return Response(status=204)
    lang = current_lang()
    cat = catalog.category_by_slug(db, slug, lang)
    if cat is None:
        abort(404)
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    items = catalog.products_in_category(
        db, cat["id"], lang, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    more = len(items) > PAGE_SIZE
    products = _with_stock(db, items[:PAGE_SIZE])
    html = render_page_or_partial(
        "kiosk/category.html",
        "kiosk/_category_grid.html",
        target="category-grid",
        category=cat,
        products=products,
        page=page,
        more=more,
        price_version=version,
        poll_seconds=current_app.config["STOCK_POLL_SECONDS"],
    )
    resp = Response(html)
    if htmx:
        resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/product/<ref>")
def product(ref: str) -> Any:
    """A product: pictures, sizes and colours with live stock here and elsewhere, and the
    action bar (the choice, its stock here, the price, "Ajouter"). ``sku`` names the
    chosen variant; ``colour`` with ``size`` is a change of colour keeping the size."""
    db = get_db()
    p = catalog.product_by_ref(db, ref, current_lang())
    if p is None:
        return render_template("kiosk/not_found.html", code=ref), 404
    _remember(ref)
    args = request.args
    # The size the recognised shopper takes in this category (with consent only).
    usual = (
        personal.usual_size(db, session.get(kiosk_card.SESSION_KEY), p["category_slug"])
        if kiosk_card.personal_allowed()
        else None
    )
    context = product_page.stock_context(
        db, p, args.get("sku", ""), args.get("colour", ""), args.get("size", ""), usual=usual
    )
    return render_template(
        "kiosk/product.html",
        **context,
        **price_context(db, p, context["selected"]),
        added=bool(args.get("added")) and context["selected"] is not None,
    )


@bp.get("/product/<ref>/stock")
def product_stock(ref: str) -> Any:
    """The live stock panel (and the action bar's stock here, out of band): polled by
    open pages, 204/304 when nothing changed."""
    db = get_db()
    version = product_page.panel_version(db)
    lang = current_lang()
    sku = request.args.get("sku", "")
    colour = request.args.get("colour", "")
    etag = hashlib.sha1(f"{version}:{ref}:{sku}:{colour}:{lang}".encode()).hexdigest()[:20]
    if request.args.get("v") == version:
        # The page already shows this version: htmx does not swap on 204.
        return Response(status=204)
    if etag in request.if_none_match:
        resp = Response(status=304)
        resp.set_etag(etag)
        return resp
    p = catalog.product_by_ref(db, ref, lang)
    if p is None:
        abort(404)
    context = product_page.stock_context(db, p, sku, colour)
    resp = Response(render_template("kiosk/_stock_panel.html", **context, here_oob=True))
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.route("/scan", methods=["GET", "POST"])
def scan() -> Any:
    """A scanned (or typed) barcode or SKU: open its product, or say kindly it is unknown;
    a cart QR code opens the cart; a customer card recognises the shopper. A card comes
    by POST only (static/js/kiosk.js): in a GET address it is refused, never read."""
    values = request.form if request.method == "POST" else request.args
    code = str(values.get("code", "")).strip()[: tokens.MAX_TOKEN_CHARS + 1]
    if customer_cards.looks_like_card(code):
        if request.method != "POST":
            return kiosk_card.refused_in_url()
        return kiosk_card.recognise(code)  # « Ma carte »: the shopper is recognised
    if len(code) > 64 or code.startswith((tokens.PREFIX + ".", "KR1.")) or "://" in code:
        # Not a product barcode: a cart QR code (or someone else's QR code) to explain.
        return open_scanned(code)
    if code.isdigit() and ean.looks_like_barcode(code) and not ean.has_valid_check_digit(code):
        return render_template("kiosk/not_found.html", code=code, misread=True), 400
    variant = catalog.find_variant(get_db(), code) if code else None
    if variant is None:
        return render_template("kiosk/not_found.html", code=code), 404
    return redirect(url_for("kiosk.product", ref=variant["ref"], sku=variant["sku"]))


@bp.get("/picture/<ref>/<int:n>.png")
def picture(ref: str, n: int) -> Any:
    """A product picture, drawn once with Pillow and then served from the disk cache."""
    if n not in (0, 1, 2):
        abort(404)
    from app.core import pictures  # Pillow loads only when a picture is first drawn

    sku = request.args.get("sku")
    path = pictures.product_picture(
        get_db(), Path(current_app.config["PICTURE_CACHE"]), ref, n, lambda v: v["sku"] == sku
    )
    if path is None:
        abort(404)
    return send_file(path, mimetype="image/png", max_age=86400)


@bp.get("/picture/category/<slug>.png")
def category_picture(slug: str) -> Any:
    """A category tile's picture (its usual kind of product, no text), drawn once."""
    from app.core import pictures  # Pillow loads only when a picture is first drawn

    path = pictures.category_picture(
        get_db(), Path(current_app.config["PICTURE_CACHE"]), slug[:100]
    )
    if path is None:
        abort(404)
    return send_file(path, mimetype="image/png", max_age=86400)


@bp.post("/lang")
def set_lang() -> Any:
    """Switch the kiosk language (French, English)."""
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    return redirect(_safe_next())


@bp.post("/accessible")
def toggle_accessible() -> Any:
    """Accessible mode: content within reach, larger type, high contrast."""
    session["a11y"] = not session.get("a11y", False)
    return redirect(_safe_next())


@bp.post("/session/reset")
def reset_session() -> Any:
    """Forget the shopper: cart, tickets, language, accessible mode, recently viewed,
    everything. On a staff tablet the staff login stays: only the shopper's session ends."""
    kept = {k: session[k] for k in STAFF_LOGIN_KEYS if k in session} if staff_tablet() else {}
    session.clear()
    session.update(kept)
    return redirect_page(url_for("kiosk.attract"))
