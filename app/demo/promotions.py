"""The demo's published promotions, made through the same domain functions as the console.

"-20 % sur la randonnée" (every hiking shoe) and "2e à -50 % sur les chaussettes"
(sports socks), each with a banner drawn here, running from today for a month.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw
from sqlite_utils import Database

from app.core import clock
from app.hub.domain import promotions as promo
from app.hub.domain.promotion_schedule import DEFAULT_TIMEZONE, LOCAL_FORMAT

ACTOR = "demo"
MAX_SOCK_SKUS = 400


def _hiking_banner() -> bytes:
    """Mountains at dusk."""
    width, height = 2400, 750
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(height):
        t = y / height
        draw.line(
            [(0, y), (width, y)], fill=(int(250 - 120 * t), int(170 - 90 * t), int(90 + 60 * t))
        )
    draw.ellipse((1700, 120, 1900, 320), fill=(255, 226, 150))
    ranges = (
        (
            [(0, 420), (420, 180), (760, 380), (1150, 120), (1600, 400), (2000, 210), (2400, 380)],
            (70, 60, 90),
        ),
        ([(0, 560), (500, 360), (900, 540), (1400, 330), (1900, 560), (2400, 420)], (40, 70, 60)),
    )
    for peaks, colour in ranges:
        draw.polygon([(0, height), *peaks, (width, height)], fill=colour)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def _socks_banner() -> bytes:
    """Striped socks on a bright background."""
    width, height = 2400, 750
    img = Image.new("RGB", (width, height), (255, 205, 60))
    draw = ImageDraw.Draw(img)
    colours = [(220, 40, 60), (20, 90, 170), (30, 150, 90), (240, 240, 240)]
    for i, x in enumerate(range(1100, 2150, 280)):
        colour = colours[i % len(colours)]
        top = 90 + (i % 2) * 60
        draw.rounded_rectangle((x, top, x + 130, top + 420), radius=40, fill=colour)
        draw.rounded_rectangle((x, top + 330, x + 250, top + 470), radius=60, fill=colour)
        for stripe in range(top + 40, top + 200, 50):
            draw.rectangle((x, stripe, x + 130, stripe + 18), fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _sock_skus(db: Database) -> list[str]:
    rows = db.execute(
        "SELECT v.sku FROM variants v JOIN products p ON p.pk = v.product_pk "
        "WHERE p.name_fr LIKE 'Chaussettes%' ORDER BY p.pk, v.sku LIMIT ?",
        [MAX_SOCK_SKUS],
    ).fetchall()
    return [r[0] for r in rows]


def seed_demo_promotions(db: Database, data_dir: str | Path) -> list[dict[str, Any]]:
    """Create and publish the demo promotions once (by title); return them (wire form)."""
    now = clock.utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE))
    start = now.replace(hour=0, minute=0).strftime(LOCAL_FORMAT)
    end = (now + timedelta(days=30)).replace(hour=20, minute=0).strftime(LOCAL_FORMAT)
    wanted = [
        (
            {
                "title_fr": "-20 % sur la randonnée",
                "title_en": "20% off hiking shoes",
                "text_fr": "Toutes les chaussures de randonnée, dans tous nos magasins.",
                "text_en": "Every hiking shoe, in all our stores.",
                "kind": "percent",
                "value": 20,
                "scope": "category",
                "targets": ["chaussures-randonnee"],
                "priority": 10,
            },
            _hiking_banner,
        ),
        (
            {
                "title_fr": "2e à -50 % sur les chaussettes",
                "title_en": "Second pair of socks half price",
                "text_fr": "La deuxième paire à moitié prix, sur toutes les chaussettes de sport.",
                "text_en": "The second pair at half price, on all sports socks.",
                "kind": "nth_percent",
                "value": 50,
                "nth": 2,
                "scope": "sku",
                "targets": _sock_skus(db),
                "priority": 5,
            },
            _socks_banner,
        ),
    ]
    have = {r["title_fr"]: r for r in promo.list_promotions(db)}
    out = []
    for fields, banner in wanted:
        if fields["scope"] == "sku" and not fields["targets"]:
            continue  # a catalog without socks (a tiny seed)
        row = have.get(fields["title_fr"])
        if row is None:
            row = promo.create(
                db,
                {**fields, "starts_local": start, "ends_local": end, "timezone": "Europe/Paris"},
                ACTOR,
            )
            row = promo.set_image(db, data_dir, row["id"], banner(), ACTOR)
        if clock.parse_iso(row["ends_at"]) <= clock.utcnow():
            # A demo started again a month later: the offer runs for another month.
            row = promo.update(db, row["id"], {"starts_local": start, "ends_local": end}, ACTOR)
        if row["status"] != "published":
            row = promo.publish(db, row["id"], ACTOR)
        out.append(promo.wire(row))
    return out
