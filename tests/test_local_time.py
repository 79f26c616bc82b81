"""Local time from one source, one "stale", and a session cookie that survives a restart.

- Every view reads the stores' time zone from ``app.config["STORE_TIMEZONE"]`` through the
  helpers of app/web/i18n.py (review findings 7 and 9): configure another zone and the
  store's staff and counter pages, the product page, the head-office fleet charts and the
  shop's dates all move with it.
- The product page has one threshold (``STALE_AFTER_SECONDS``) and one rule for the
  no-hub case, shared by the panel and its version (finding 14).
- The store's session cookie keeps its name across the first sync (finding 12).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.core import clock
from app.core import db as dbmod
from app.store.sync import state

TOKYO = "Asia/Tokyo"  # UTC+9 all year: 14:02Z is 23:02 there, and the next day from 15:00Z


def _store_app(store_data, **config):
    from app.store.app import create_app

    return create_app({"DATA_DIR": str(store_data), "TESTING": True, **config})


def _hub_app(tmp_path, **config):
    from app.hub.app import create_hub_app

    hub_dir = tmp_path / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    return create_hub_app({"DATA_DIR": str(hub_dir), "TESTING": True, **config})


# --- One time zone: the configured one, everywhere -------------------------------------


def test_store_helpers_read_the_configured_zone(store_data):
    from app.store.views import counter_common, product_page, staff
    from app.web import i18n

    app = _store_app(store_data, STORE_TIMEZONE=TOKYO)
    promised = "2026-11-22T14:02:00Z"  # 23:02 on Sunday 22 November in Tokyo
    same_day = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)  # 23:30 in Tokyo
    next_day = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 00:30 on the 23rd in Tokyo
    with app.test_request_context("/"):
        assert i18n.store_timezone_name() == TOKYO
        assert i18n.format_clock(clock.parse_iso(promised), "fr") == "23:02"
        assert counter_common.promised_when(promised, same_day) == "promise pour 23:02"
        other_day = counter_common.promised_when(promised, next_day)
        assert other_day.startswith("promise le ") and other_day.endswith(" à 23:02")
        assert "22" in other_day
        assert staff._moment(promised) == other_day.removeprefix("promise le ")
        moment = clock.parse_iso(promised)
        assert product_page.as_of_label(moment, same_day) == "23:02"
        assert product_page.as_of_label(moment, next_day) == "22/11/2026 23:02"
        assert i18n.format_local_datetime(promised, "fr") == "22 nov. 2026, 23:02"


def test_store_helpers_default_to_paris(store_data):
    from app.store.views import counter_common

    app = _store_app(store_data)
    with app.test_request_context("/"):
        # 14:02Z in November is 15:02 in Paris.
        now = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
        assert counter_common.promised_when("2026-11-22T14:02:00Z", now) == "promise pour 15:02"


def test_head_office_reads_one_zone_for_pages_charts_and_the_shop(tmp_path, monkeypatch):
    from app.hub.views import hq_fleet, shop
    from app.web import i18n

    hub = _hub_app(tmp_path, STORE_TIMEZONE=TOKYO)
    drawn: dict = {}
    monkeypatch.setattr(hq_fleet, "get_db", lambda: None)
    monkeypatch.setattr(hq_fleet.charts, "line_chart", lambda *a, **kw: drawn.update(kw) or "")
    with hub.test_request_context("/"):
        assert shop.fr_datetime("2026-11-22T14:02:00Z") == "22/11/2026 23:02"
        assert i18n.format_local_datetime("2026-11-22T14:02:00Z", "fr") == "22 nov. 2026, 23:02"
        now = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
        hq_fleet._lag_chart([], now)
        start = now - timedelta(hours=hq_fleet.LAG_HOURS)
        ticks = drawn["x_ticks"]
        assert ticks
        for x, label in ticks:  # every tick labelled with Tokyo's hour at that instant
            local = (start + timedelta(seconds=x)).astimezone(i18n.store_timezone())
            assert (label, local.hour % 4) == (local.strftime("%Hh"), 0)
    # Not configured: the stores' default zone, the same for every helper.
    plain = _hub_app(tmp_path / "plain")
    with plain.test_request_context("/"):
        assert plain.config["STORE_TIMEZONE"] == "Europe/Paris"
        assert shop.fr_datetime("2026-11-22T14:02:00Z") == "22/11/2026 15:02"


def test_pickups_are_counted_on_the_configured_zones_days(tmp_path):
    """A hand-over at 20:00Z is the next day in Tokyo: the chart's days follow the zone."""
    from zoneinfo import ZoneInfo

    from app.hub.domain import fleet_pages

    class NoRows:
        def fetchall(self):
            return []

    seen = []

    def execute(db, sql, params):
        seen.append(params[0])
        return NoRows()

    monkey = pytest.MonkeyPatch()
    monkey.setattr(fleet_pages.hdb, "execute", execute)
    try:
        now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
        days, _ = fleet_pages.pickups(None, 3, now, zone=ZoneInfo(TOKYO))
        assert days[-1] == "2026-11-23"
        assert seen[-1] == "2026-11-20T15:00:00Z"  # Tokyo's midnight starting the 21st
        days, _ = fleet_pages.pickups(None, 3, now, zone=ZoneInfo("Europe/Paris"))
        assert days[-1] == "2026-11-22"
    finally:
        monkey.undo()


# --- One "stale" on the product page ---------------------------------------------------


@pytest.mark.clock
def test_the_hub_goes_quiet_after_the_configured_stale_threshold(store_data, fake_clock):
    from app.store.views import product_page

    app = _store_app(store_data, HUB_URL="http://127.0.0.1:9", STALE_AFTER_SECONDS=600)
    db = dbmod.connect(dbmod.db_path(store_data))
    try:
        state.record_success(db, "pull", fake_clock.now - timedelta(seconds=300))
        with app.test_request_context("/"):
            assert product_page.hub_quiet(db, fake_clock.now) is None
        fake_clock.set(fake_clock.now + timedelta(seconds=301))  # 601 s since
        with app.test_request_context("/"):
            assert product_page.hub_quiet(db, fake_clock.now) is not None
    finally:
        db.close()


def test_without_a_hub_one_rule_gives_the_label_and_the_version(store_data):
    """No hub: one rule (hub_quiet) for the panel and its version. Other stores' figures
    are as old as their load; nothing can change that, so the version has no quiet mark."""
    from app.store.views import product_page

    app = _store_app(store_data)
    db = dbmod.connect(dbmod.db_path(store_data))
    try:
        state.record_success(db, "pull", clock.utcnow())  # a leftover, from no hub
        with app.test_request_context("/"):
            assert product_page.hub_quiet(db, clock.utcnow()) == {"since": None, "token": ""}
            assert product_page.panel_version(db).isdigit()
    finally:
        db.close()


# --- The session cookie keeps its name across the first sync ---------------------------


def test_a_session_survives_a_restart_after_the_first_sync(store_data):
    from app.store.domain.stock import self_store_id
    from app.store.sync import feed

    db = dbmod.connect(dbmod.db_path(store_data))
    try:
        own = self_store_id(db)
        assert own
        row = db.execute("SELECT name, city, address FROM stores WHERE id = ?", [own]).fetchone()
        db.execute("UPDATE stores SET is_self = 0")  # a store that has never synced
        db.conn.commit()
        assert self_store_id(db) is None

        first = _store_app(store_data, WTF_CSRF_ENABLED=False)
        name = first.config["SESSION_COOKIE_NAME"]
        client = first.test_client()
        client.post("/lang", data={"lang": "en"})
        cookie = client.get_cookie(name)
        assert cookie is not None

        # The first sync brings the store's own id.
        store = {"id": own, "name": row[0], "city": row[1], "address": row[2]}
        feed._apply_stores(db, [{"data": store}], own)
        db.conn.commit()
        assert self_store_id(db) == own
    finally:
        db.close()

    restarted = _store_app(store_data, WTF_CSRF_ENABLED=False)
    assert restarted.config["SESSION_COOKIE_NAME"] == name
    again = restarted.test_client()
    again.set_cookie(name, cookie.value)
    with again.session_transaction() as s:
        assert s.get("lang") == "en"  # the same session, still valid
    assert 'lang="en"' in again.get("/").text
