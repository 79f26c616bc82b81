"""Promotions on the kiosk: the attract screen's banners, product prices, banner images.

Open pages poll small partials (``/promotions/slots``, ``/product/<ref>/price``) that
answer 204 while nothing changed. The version they compare changes when a promotion
arrives or is withdrawn, when one starts or ends by this store's clock, and when its
image has been fetched, so a kiosk follows head office within seconds, without reload.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file

from app.core import catalog, clock
from app.core import db as dbmod
from app.core.offers import badge
from app.core.pricing import item_for, offers, unit_price
from app.store.domain import promotions, stock
from app.store.storage import get_db
from app.store.sync import promotion_images
from app.store.sync.feed import CATALOG_VERSION
from app.web.htmx import vary_on_htmx
from app.web.i18n import current_lang

bp = Blueprint("promos", __name__)

_ID = re.compile(r"pr-[0-9a-z]{6,32}")
_HASH = re.compile(r"[0-9a-f]{8,64}")


def _data_dir() -> str:
    return current_app.config["DATA_DIR"]


def slots_version(db: Any) -> str:
    """What the attract screen's promotion slots compare."""
    return promotions.version(db, clock.utcnow(), _data_dir())


def slots_context(db: Any) -> dict[str, Any]:
    """Everything the attract screen's promotion slots show."""
    lang = current_lang()
    now = clock.utcnow()
    live = {d["id"]: d for d in promotions.in_force(db, now)}
    items = promotions.banners(db, now, lang, _data_dir())
    for item in items:
        item["badge"] = badge(live[item["id"]]["rule"], lang)
        item["image_url"] = (
            f"/promotions/{item['id']}/{item['image']}/banner.webp" if item["image"] else None
        )
    return {
        "promotions": items,
        "promo_version": promotions.version(db, now, _data_dir()),
        "poll_seconds": current_app.config["STOCK_POLL_SECONDS"],
    }


def price_version(db: Any) -> str:
    """What an open product page's price compares: promotions and catalog prices."""
    catalog_version = dbmod.get_meta(db, CATALOG_VERSION, "0") or "0"
    return f"{promotions.version(db, clock.utcnow())}-{catalog_version}"


def price_context(db: Any, product: dict[str, Any], selected: dict[str, Any] | None) -> dict:
    """The product page's price: base, promotion price and what the offer is."""
    lang = current_lang()
    item = item_for(product, selected)
    base = item.unit_cents
    now = clock.utcnow()
    rules = promotions.active_rules(db, now)
    own = stock.self_store_id(db)
    line = unit_price(item, rules, store_id=own, now=now)
    label = (line.label_fr if lang == "fr" else line.label_en) if line.promotion_id else ""
    offer = ""
    if not line.promotion_id:
        # No cheaper unit today, but perhaps with quantity ("2e à -50 %").
        found = offers(item, rules, store_id=own, now=now)
        if found:
            title = found[0].label_fr if lang == "fr" else found[0].label_en
            offer = f"{badge(found[0], lang)} · {title}"
    else:
        rule = next(r for r in rules if r.id == line.promotion_id)
        offer = badge(rule, lang)
        # "-30 % · -30 % sur la rando" says it twice: the title alone is enough then.
        if offer.replace("\u202f", " ") not in label.replace("\u202f", " "):
            label = f"{offer} · {label}"
        offer = ""
    return {
        "price": {
            "base": base,
            "now": line.total_cents,
            "discounted": line.discount_cents > 0,
            "label": label,
            "offer": offer,
            "ref": product["ref"],
            "sku": selected["sku"] if selected else "",
            "version": price_version(db),
            "poll_seconds": current_app.config["STOCK_POLL_SECONDS"],
        },
    }


@bp.get("/promotions/slots")
def slots() -> Any:
    """The attract screen's promotions: polled by the open page, 204 when unchanged."""
    db = get_db()
    if request.args.get("v") == slots_version(db):
        return Response(status=204)
    resp = Response(render_template("kiosk/_promo_slots.html", **slots_context(db)))
    resp.headers["Cache-Control"] = "no-store"
    return vary_on_htmx(resp)


@bp.get("/product/<ref>/price")
def product_price(ref: str) -> Any:
    """A product's price box: polled by the open page, 204 when unchanged."""
    db = get_db()
    if request.args.get("v") == price_version(db):
        return Response(status=204)
    p = catalog.product_by_ref(db, ref, current_lang())
    if p is None:
        abort(404)
    sku = request.args.get("sku", "")
    selected = next(
        (v for v in catalog.variants(db, p["pk"], current_lang()) if v["sku"] == sku), None
    )
    resp = Response(render_template("kiosk/_price.html", **price_context(db, p, selected)))
    resp.headers["Cache-Control"] = "no-store"
    return vary_on_htmx(resp)


@bp.get("/promotions/<promotion_id>/<image_hash>/<name>.webp")
def image(promotion_id: str, image_hash: str, name: str) -> Any:
    """A promotion image from this store's disk (fetched from the hub once, if needed)."""
    if (
        not _ID.fullmatch(promotion_id)
        or not _HASH.fullmatch(image_hash)
        or name not in promotions.IMAGE_FORMATS
    ):
        abort(404)
    path = promotions.image_path(_data_dir(), promotion_id, image_hash, name)
    if not path.is_file():
        client = current_app.extensions.get("hub_client")
        known = (promotion_id, image_hash, name) in promotions.missing_images(get_db(), _data_dir())
        if client is None or not known:
            abort(404)
        try:
            blob = promotion_images.fetch_image(client, promotion_id, image_hash, name)
        except Exception:  # noqa: BLE001 - offline or refused: the banner keeps its text
            abort(404)
        path = promotions.save_image(_data_dir(), promotion_id, image_hash, name, blob)
    # The hash is in the URL: a new image is a new URL, so this one never changes.
    return send_file(Path(path), mimetype="image/webp", max_age=30 * 86400)
