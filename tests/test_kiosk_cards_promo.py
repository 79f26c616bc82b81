"""Every price reflects a promotion: the kiosk's product cards (category pages and
search as you type) show the promotion price, and the search cache does not serve the
old price once a promotion arrives."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from app.core import clock
from app.core import db as dbmod
from app.hub.domain import changes
from app.hub.domain import promotions as promo
from app.store.app import create_app
from app.store.sync import feed
from app.web.i18n import format_price

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_db

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

SLUG = "chaussures-running"
_CARD = re.compile(r'class="card-was">([^<]+)</s> <strong class="card-promo">([^<]+)</strong>')


def _publish_running_promotion(hub_data) -> list[dict]:
    """-20 % on running shoes from an hour ago to tomorrow; its feed changes."""
    paris = ZoneInfo("Europe/Paris")
    now = clock.utcnow()

    def wall(instant) -> str:
        # Offsets are taken in UTC, then shown in Paris: an hour before 03:01 on the night
        # the clocks spring forward is 01:01, not the 02:01 that never exists.
        return instant.astimezone(paris).strftime("%Y-%m-%dT%H:%M")

    db = hub_db(hub_data)
    try:
        seq = changes.last_seq(db)
        row = promo.create(
            db,
            {
                "title_fr": "-20 % running",
                "kind": "percent",
                "value": 20,
                "scope": "category",
                "targets": [SLUG],
                "timezone": "Europe/Paris",
                "starts_local": wall(now - timedelta(hours=1)),
                "ends_local": wall(now + timedelta(days=1)),
            },
            "test",
        )
        promo.publish(db, row["id"], "test")
        return [
            c for c in changes.changes_since(db, LYON, seq)["changes"] if c["kind"] == "promotion"
        ]
    finally:
        db.close()


def test_cards_and_cached_search_results_show_the_promotion_price(hub_data, synced_store):
    client = create_app({"DATA_DIR": str(synced_store), "TESTING": True}).test_client()
    page = client.get(f"/category/{SLUG}").get_data(as_text=True)
    assert "card-promo" not in page
    query = {"q": "chaussures running"}
    before = client.get("/search", query_string=query, headers={"HX-Request": "true"})
    assert before.status_code == 200 and "card-promo" not in before.get_data(as_text=True)

    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        found = _publish_running_promotion(hub_data)
        feed.apply_page(store, {"changes": found, "cursor": str(found[-1]["seq"])}, LYON)
        bases = [
            row[0]
            for row in store.execute(
                "SELECT p.price_cents FROM products p JOIN categories c ON c.id = p.category_id "
                "WHERE c.slug = ?",
                [SLUG],
            ).fetchall()
        ]
    finally:
        store.close()
    page = client.get(f"/category/{SLUG}").get_data(as_text=True)
    expected = {
        (format_price(b, "fr"), format_price(b * 8 // 10 + (b * 8 % 10 >= 5), "fr")) for b in bases
    }
    shown = _CARD.findall(page)
    assert shown and set(shown) <= expected  # base struck, 20 % off shown
    assert len(shown) == page.count('<li class="card">')  # on every card
    after = client.get("/search", query_string=query, headers={"HX-Request": "true"})
    assert "card-promo" in after.get_data(as_text=True)  # not the cached page from before
