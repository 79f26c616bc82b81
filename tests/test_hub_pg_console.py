"""The head office's side of the hub on both backends: promotions, the fleet, head-office
users, and the web shop's search, on an SQLite file and on a fresh database of the
throwaway PostgreSQL cluster (tests/pg.py), never a mock. The domain functions are
called directly; the console's and the shop's pages are fetched through the Flask app
in this process (a test client: no server, no gevent) opened on the same database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from app.core import clock
from app.core.protocol import CHANGE_OUTBOX_COMMAND, CHANGE_PROMOTION
from app.core.search import tokens
from app.demo import seed as store_seed
from app.demo.hub_seed import seed_hub
from app.hub import database as hdb
from app.hub.domain import fleet, fleet_dashboard, hq_audit, hq_users
from app.hub.domain import promotions as promo
from app.hub.domain.changes import changes_since, last_seq
from app.hub.domain.promotion_validation import PromotionError
from app.hub.migrations import hub_migrations
from app.hub.storage import open_database

from .pg import *  # noqa: F403

LYON, PARIS = store_seed.DEMO_STORES[0]["id"], store_seed.DEMO_STORES[1]["id"]
PRODUCTS = 50
PASSWORD = "correct-horse-42"


@pytest.fixture
def hub(target: str):
    """A migrated hub database seeded with the demo retailer (3 stores, 50 products)."""
    db = open_database(target)
    seed_hub(db, products=PRODUCTS)
    yield db
    db.close()


def _fields(db, **overrides) -> dict:
    slug = hdb.scalar(db, "SELECT slug FROM categories ORDER BY position, slug LIMIT 1")
    start = clock.utcnow() - timedelta(hours=1)
    return {
        "title_fr": "-20 % sur la randonnée",
        "title_en": "20% off hiking",
        "kind": "percent",
        "value": 20,
        "scope": "category",
        "targets": [slug],
        "starts_at": clock.iso(start),
        "ends_at": clock.iso(start + timedelta(days=7)),
        "timezone": "Europe/Paris",
        **overrides,
    }


def _feed(db, store_id: str, kind: str) -> list[dict]:
    return [c for c in changes_since(db, store_id, 0, 2000)["changes"] if c["kind"] == kind]


# --- Promotions ---------------------------------------------------------------------------


def test_promotion_create_revise_publish_unpublish(hub):
    draft = promo.create(hub, _fields(hub), "marketing@siege.test")
    assert draft["status"] == "draft" and draft["revision"] == 1
    assert draft["id"].startswith("pr-") and draft["value"] == 20
    assert _feed(hub, LYON, CHANGE_PROMOTION) == []  # a draft stays at the hub

    revised = promo.update(hub, draft["id"], {"value": 30, "stores": [LYON]}, "marketing")
    assert revised["revision"] == 2 and revised["value"] == 30 and revised["stores"] == [LYON]
    # Nothing changed: no revision.
    assert promo.update(hub, draft["id"], {"value": 30}, "marketing")["revision"] == 2
    with pytest.raises(PromotionError) as refused:
        promo.update(hub, draft["id"], {"targets": ["no-such-category"]}, "marketing")
    assert "targets" in refused.value.fields
    with pytest.raises(PromotionError) as refused:
        promo.update(hub, draft["id"], {"stores": ["st-nope00"]}, "marketing")
    assert "stores" in refused.value.fields

    published = promo.publish(hub, draft["id"], "marketing")
    assert published["status"] == "published" and published["revision"] == 3
    assert promo.publish(hub, draft["id"], "marketing")["revision"] == 3  # idempotent
    (change,) = _feed(hub, LYON, CHANGE_PROMOTION)
    assert change["key"] == draft["id"] and change["data"] == promo.wire(published)
    assert change["data"]["rule"]["value"] == 30 and change["data"]["stores"] == [LYON]
    assert promo.list_promotions(hub, phase_filter="live")[0]["id"] == draft["id"]
    assert [r.value for r in promo.active_rules(hub, LYON)] == [30]
    assert promo.active_rules(hub, PARIS) == []  # not one of its stores

    promo.update(hub, draft["id"], {"value": 25}, "marketing")  # re-announced at once
    promo.unpublish(hub, draft["id"], "marketing")
    assert [c["data"]["status"] for c in _feed(hub, LYON, CHANGE_PROMOTION)] == [
        "published",
        "published",
        "unpublished",
    ]
    history = promo.history(hub, draft["id"])
    assert [h["action"] for h in history] == [
        "unpublished",
        "updated",
        "published",
        "updated",
        "created",
    ]
    assert history[1]["changes"] == {"value": [30, 25]}
    assert [h["revision"] for h in history] == [5, 4, 3, 2, 1]
    # An ended promotion cannot be published.
    past = clock.utcnow() - timedelta(days=3)
    ended = promo.create(
        hub,
        _fields(hub, starts_at=clock.iso(past), ends_at=clock.iso(past + timedelta(days=1))),
        "marketing",
    )
    with pytest.raises(PromotionError):
        promo.publish(hub, ended["id"], "marketing")
    assert promo.get_promotion(hub, ended["id"])["status"] == "draft"


# --- The fleet ------------------------------------------------------------------------


def _report(**extra) -> dict:
    return {
        "sent_at": clock.now_iso(),
        "software_version": "1.2.3",
        "started_at": clock.now_iso(),
        "free_disk_bytes": 5 * 2**40,  # past 2^31: a bigint on PostgreSQL
        "db_size_bytes": 3 * 2**31,
        "outbox_depth": 2,
        "oldest_unsent_at": clock.now_iso(),
        "parked": [
            {
                "id": "tx-parked-1",
                "type": "stock.movement",
                "reason": "unknown_sku",
                "message": "SKU inconnu : ZZ",
                "created_at": clock.now_iso(),
            }
        ],
        "parked_count": 1,
        **extra,
    }


def test_fleet_last_seen_health_report_and_dashboard(hub):
    t0 = clock.utcnow()
    fleet.touch(hub, LYON, now=t0)
    fleet.touch(hub, LYON, now=t0 + timedelta(seconds=1))  # throttled: no write
    assert hdb.scalar(hub, "SELECT last_seen_at FROM store_health WHERE store_id = ?", [LYON]) == (
        clock.iso(t0)
    )
    fleet.touch(hub, LYON, now=t0 + timedelta(seconds=fleet.TOUCH_EVERY_S + 1))
    seen = hdb.scalar(hub, "SELECT last_seen_at FROM store_health WHERE store_id = ?", [LYON])
    assert seen == clock.iso(t0 + timedelta(seconds=fleet.TOUCH_EVERY_S + 1))

    newest = last_seq(hub)
    result = fleet.record_health(hub, LYON, _report(cursor=str(newest - 1)))
    assert result["sync_lag_s"] is not None and result["sync_lag_s"] >= 0
    assert isinstance(result["clock_skew_s"], float)
    # A second report: the same row updated (upsert), one more history row.
    fleet.record_health(hub, LYON, _report(cursor=str(newest), outbox_depth=0))
    with pytest.raises(fleet.HealthError):
        fleet.record_health(hub, LYON, _report(free_disk_bytes=-1))
    assert hdb.scalar(hub, "SELECT count(*) FROM store_health WHERE store_id = ?", [LYON]) == 1
    assert (
        hdb.scalar(hub, "SELECT count(*) FROM store_health_history WHERE store_id = ?", [LYON]) == 2
    )

    by_id = {s["id"]: s for s in fleet_dashboard.fleet_status(hub)}
    assert set(by_id) == {s["id"] for s in store_seed.DEMO_STORES}
    lyon = by_id[LYON]
    assert lyon["status"] == "online" and lyon["invalid"] == []
    assert lyon["free_disk_bytes"] == 5 * 2**40 and lyon["db_size_bytes"] == 3 * 2**31
    assert lyon["outbox_depth"] == 0 and lyon["cursor"] == newest and lyon["sync_lag_s"] == 0
    assert lyon["software_version"] == "1.2.3"
    assert [p["id"] for p in lyon["parked"]] == ["tx-parked-1"] and lyon["parked_count"] == 1
    assert by_id[PARIS]["status"] == "never"
    history = fleet_dashboard.lag_history(hub)
    assert [depth for _at, _lag, depth in history[LYON]] == [2, 0]

    # Head office asks the store to retry its parked transaction: a change for it only.
    with pytest.raises(ValueError):
        fleet_dashboard.queue_outbox_command(hub, LYON, "tx-not-parked", "retry")
    seq = fleet_dashboard.queue_outbox_command(hub, LYON, "tx-parked-1", "retry", by="ops")
    (command,) = _feed(hub, LYON, CHANGE_OUTBOX_COMMAND)
    assert command["seq"] == seq and command["data"]["action"] == "retry"
    assert _feed(hub, PARIS, CHANGE_OUTBOX_COMMAND) == []
    lyon = {s["id"]: s for s in fleet_dashboard.fleet_status(hub)}[LYON]
    assert lyon["parked"][0]["pending"] == "retry"
    # A store whose cursor is behind the command lags again.
    assert lyon["sync_lag_s"] is not None
    days, counts = fleet_dashboard.pickups_per_day(hub, 14)
    assert len(days) == 14 and isinstance(counts, dict)


# --- Head-office users --------------------------------------------------------------------


def test_hq_users_lockout_sessions_tokens_and_audit(hub):
    user = hq_users.add_user(hub, " Ops@Siege.test ", "Ops", "operations", PASSWORD)
    assert user["email"] == "ops@siege.test" and user["disabled"] is False
    with pytest.raises(hq_users.HqError) as refused:
        hq_users.add_user(hub, "ops@siege.test", "Autre", "admin", PASSWORD)
    assert refused.value.code == "exists"

    t0 = clock.utcnow()
    assert hq_users.authenticate(hub, "OPS@siege.test", PASSWORD, ip="10.0.0.1", now=t0)
    session = hq_users.open_session(hub, user["id"])
    assert hq_users.session_live(hub, session, user["id"])
    for i in range(hq_users.MAX_ATTEMPTS):
        assert hq_users.authenticate(hub, "ops@siege.test", f"wrong-{i}", now=t0) is None
    # Locked: even the right password is refused; the lockout ended the session.
    assert hq_users.authenticate(hub, "ops@siege.test", PASSWORD, now=t0) is None
    assert not hq_users.session_live(hub, session, user["id"])
    row = hdb.one(hub, "SELECT lockouts, locked_until FROM hq_users WHERE id = ?", [user["id"]])
    assert row["lockouts"] == 1
    later = clock.parse_iso(row["locked_until"]) + timedelta(seconds=1)
    assert hq_users.authenticate(hub, "ops@siege.test", PASSWORD, now=later)["id"] == user["id"]
    assert hq_users.authenticate(hub, "nobody@siege.test", PASSWORD) is None

    session = hq_users.open_session(hub, user["id"])
    assert hq_users.set_role(hub, user["id"], "admin")
    assert not hq_users.session_live(hub, session, user["id"])
    session = hq_users.open_session(hub, user["id"])
    hq_users.revoke_session(hub, session)
    assert not hq_users.session_live(hub, session, user["id"])
    assert hq_users.set_disabled(hub, user["id"], True)
    assert hq_users.get_user(hub, user["id"])["disabled"] is True
    assert hq_users.authenticate(hub, "ops@siege.test", PASSWORD, now=later) is None
    assert hq_users.set_disabled(hub, user["id"], False)
    assert [u["email"] for u in hq_users.list_users(hub)] == ["ops@siege.test"]

    token = hq_users.create_token(hub, "inventory tool", "operations")
    seen = hq_users.check_token(hub, token)
    assert seen["role"] == "operations" and seen["name"] == "inventory tool"
    assert hq_users.list_tokens(hub)[0]["last_used_at"] is not None
    assert hq_users.check_token(hub, token + "x") is None
    assert hq_users.revoke_token(hub, seen["id"]) and not hq_users.revoke_token(hub, seen["id"])
    assert hq_users.check_token(hub, token) is None

    actions = [e["action"] for e in hq_audit.recent_audit(hub, 100)]
    assert actions.count("login") == 2 and actions.count("login.wrong_password") == 4
    assert {"login.locked", "login.refused_locked", "login.refused_disabled"} <= set(actions)
    assert "login.failed" in actions  # the unknown e-mail
    newest, *older = hq_audit.recent_audit(hub, 3)
    assert [e["id"] for e in hq_audit.recent_audit(hub, 2, before_id=newest["id"])] == [
        e["id"] for e in older
    ]
    assert hq_audit.recent_audit(hub, 1)[0]["detail"] == {}


# --- The web shop's search ---------------------------------------------------------------


def _search(db, query: str) -> list[int]:
    from app.hub.views.webshop_catalog import search_pks

    return search_pks(db, tokens(query))


def _new_product(db, ref: str, name_fr: str, name_en: str = "Thing", brand: str = "Kiosk"):
    category = hdb.scalar(db, "SELECT id FROM categories ORDER BY id LIMIT 1")
    return hdb.insert(
        db,
        "products",
        {
            "ref": ref,
            "category_id": category,
            "brand": brand,
            "name_fr": name_fr,
            "name_en": name_en,
            "price_cents": 1999,
        },
        returning="pk",
    )


def test_web_shop_search_ignores_accents_and_case(hub):
    pk, name = next(
        (r["pk"], r["name_fr"])
        for r in hdb.rows(hub, "SELECT pk, name_fr FROM products ORDER BY pk")
        if "é" in r["name_fr"]
    )
    word = next(w for w in name.split() if "é" in w)
    assert pk in _search(hub, word.replace("é", "e").upper())
    assert pk in _search(hub, word.upper())
    # Products written after the migration (the seeder's) were folded by the search.
    assert hdb.scalar(hub, "SELECT count(*) FROM products WHERE search_text IS NULL") == 0
    for query in ("%", "_", "\\", "zzzzqqq", ""):
        assert _search(hub, query) == [], query
    # Syntax is searched as words: '" OR 1=1 --' is "or" and "1", the products
    # containing both, not all of them.
    assert len(_search(hub, '" OR 1=1 --')) < PRODUCTS

    # A product written since is found at the next search, by any of its words.
    new = _new_product(hub, "ZZ-1", "Écharpe Œuvre Straße", brand="Süd")
    for query in ("echarpe", "ÉCHARPE", "ŒUVRE", "strasse", "sud", "zz-1 echarpe", "ECHARPE SÜD"):
        assert _search(hub, query) == [new], query
    assert _search(hub, "echarpe nord") == []
    # Renamed, its folding written again as NULL: found by its new name only.
    hdb.execute(
        hub,
        "UPDATE products SET name_fr = ?, search_text = NULL WHERE pk = ?",
        ["Bonnet Ému", new],
    )
    assert _search(hub, "emu") == [new] and _search(hub, "echarpe") == []


def test_the_search_migration_folds_products_written_before_it(target):
    db = hdb.connect(target)
    try:
        hub_migrations.apply(db, stop_before="m008_product_search_text")
        hdb.insert(
            db, "categories", {"id": 1, "slug": "velos", "name_fr": "Vélos", "name_en": "Bikes"}
        )
        pk = _new_product(db, "V-1", "Vélo Électrique")
        assert "m008_product_search_text" in hub_migrations.apply(db)
        assert hdb.scalar(db, "SELECT search_text FROM products WHERE pk = ?", [pk]) == (
            "velo electrique thing kiosk v-1"
        )
        assert _search(db, "ELECTRIQUE") == [pk]
    finally:
        db.close()


# --- The console's and the shop's pages, through the app ----------------------------------


@pytest.fixture
def client(hub, target: str, tmp_path: Path):
    """A test client of the hub app on the seeded database (CSRF off: forms post plainly)."""
    from app.hub.app import create_hub_app
    from app.hub.storage import pool_for

    if hdb.is_url(target):
        data = tmp_path / "data"
        data.mkdir()
        config = {"DATABASE": target}
    else:  # DATA/hub.db: the hub fixture's file
        data = Path(target).parent
        assert Path(target).name == "hub.db"
        config = {"DATABASE": None}
    config.update(DATA_DIR=str(data), TESTING=True, WTF_CSRF_ENABLED=False)
    app = create_hub_app(config)
    yield app.test_client()
    pool_for(app.config["HUB_DATABASE"]).close()


def _login(client, db, role: str = "admin") -> dict:
    user = hq_users.add_user(db, f"{role}@siege.test", role.title(), role, PASSWORD)
    answer = client.post("/hq/login", data={"email": user["email"], "password": PASSWORD})
    assert answer.status_code == 302, answer.text[:500]
    return user


def test_console_and_shop_pages_on_both(client, target):
    db = hdb.connect(target)
    try:
        _login(client, db)
        for path in (
            "/hq/flotte",
            "/hq/flotte/etat",
            "/hq/flotte/graphiques",
            "/hq/promotions",
            "/hq/promotions/nouvelle",
            "/hq/utilisateurs",
            "/hq/journal",
        ):
            page = client.get(path)
            assert page.status_code == 200, (path, page.text[:300])
        made = client.post("/hq/promotions/nouvelle", data=_form(db))
        assert made.status_code == 302, made.text[:2000]
        promotion_id = made.headers["Location"].rsplit("/", 1)[1]
        assert client.get(f"/hq/promotions/{promotion_id}").status_code == 200
        published = client.post(f"/hq/promotions/{promotion_id}/publier")
        assert published.status_code == 302
        assert promo.get_promotion(db, promotion_id)["status"] == "published"
        assert client.post("/hq/jetons", data={"name": "t", "role": "marketing"}).status_code == 200

        ref, name = next(
            (r["ref"], r["name_fr"])
            for r in hdb.rows(db, "SELECT ref, name_fr FROM products ORDER BY pk")
            if "é" in r["name_fr"]
        )
        word = next(w for w in name.split() if "é" in w)
        found = client.get("/shop/recherche", query_string={"q": word.replace("é", "E").upper()})
        assert found.status_code == 200 and f"/shop/produit/{ref}" in found.text
        assert client.get("/shop/recherche", query_string={"q": "x" * 200}).status_code == 400
        assert client.get("/shop/").status_code == 200
        slug = hdb.scalar(db, "SELECT slug FROM categories ORDER BY position LIMIT 1")
        assert client.get(f"/shop/rayon/{slug}").status_code == 200
        product = client.get(f"/shop/produit/{ref}")
        assert product.status_code == 200 and ref in product.text
        assert client.get("/shop/produit/NOPE").status_code == 404
        assert client.get("/shop/mes-commandes").status_code == 200
        entries = hq_audit.recent_audit(db, 50)
        assert any(e["action"] == "promotion.published" for e in entries), [
            e["action"] for e in entries
        ]
        assert json.dumps(entries)  # details decoded as JSON on both
    finally:
        db.close()


def _form(db) -> dict:
    slug = hdb.scalar(db, "SELECT slug FROM categories ORDER BY position, slug LIMIT 1")
    start = clock.utcnow() + timedelta(days=1)
    return {
        "title_fr": "Soldes d'été",
        "kind": "percent",
        "value": "15",
        "scope": "category",
        "categories": slug,
        "starts_local": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_local": (start + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "Europe/Paris",
        "stores_mode": "all",
    }
