"""``kiosk hub move-to-postgresql``: a hub moved from its SQLite file to PostgreSQL keeps
every row as it was, and its stores carry on without a change (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.core import clock
from app.demo.hub_seed import seed_hub
from app.hub import database as hdb
from app.hub import transfer
from app.hub.domain import fleet, hq_audit, hq_users, nonces, promotions, ratelimit, registry
from app.hub.domain.changes import append_change
from app.hub.storage import db_path, open_database

from .conftest import ROOT
from .hub_fixtures import LYON, HubClient, HubServer, movement
from .pg import *  # noqa: F403

COMMAND = "move-to-postgresql"
BIG = 2**53 + 1  # beyond 2^31, and beyond what a float holds exactly


def _kiosk(*args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=clean,
    )


def _move(data: Path, url: str) -> subprocess.CompletedProcess:
    return _kiosk("hub", COMMAND, "--data", str(data), "--to", url)


def _add_head_office_and_odd_values(db: hdb.Db) -> None:
    """What seed_hub leaves empty: head office, promotions, health, nonces, rate
    events; and values that must survive exactly (accents, big integers, floats, NULLs,
    0/1 flags)."""
    registry.add_store(db, "Boutique d'Évry — « été »", city="Évry-Courcouronnes")
    admin = hq_users.add_user(db, "zoé@example.com", "Zoé Lefèvre", "admin", "correct horse 1")
    other = hq_users.add_user(db, "bob@example.com", "Bob", "marketing", "correct horse 2")
    hq_users.set_disabled(db, other["id"], True)
    hq_users.open_session(db, admin["id"])
    hq_users.create_token(db, "Caisse centrale", "operations")
    hq_audit.record_audit(db, admin, "user.added", {"note": "créé à l'ouverture"}, "127.0.0.1")
    start = clock.utcnow() - timedelta(days=1)
    promo = promotions.create(
        db,
        {
            "title_fr": "Soldes d'été : −20 %",
            "title_en": "Summer sale",
            "kind": "percent",
            "value": 20,
            "scope": "all",
            "starts_local": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_local": (start + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
            "timezone": "Europe/Paris",
        },
        "zoé",
    )
    promotions.publish(db, promo["id"], "zoé")
    fleet.record_health(
        db,
        LYON,
        {
            "sent_at": clock.iso(clock.utcnow()),
            "software_version": "1.2.3",
            "free_disk_bytes": 3 * 2**40,
            "db_size_bytes": 5_000_000_000,
            "outbox_depth": 0,
            "cursor": "12",
        },
    )
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE store_health SET clock_skew_s = ?, db_size_bytes = ? WHERE store_id = ?",
            [0.1 + 0.2, BIG, LYON],
        )
    nonces.remember_nonce(db, LYON, "nonce-é-1")
    ratelimit.hit(db, f"cart-lookup:{LYON}", 100, now=time.time() + 1 / 3)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded SQLite hub data directory (copy it: :func:`hub_dir`)."""
    data = tmp_path_factory.mktemp("sqlite-hub")
    db = open_database(db_path(data))
    try:
        seed_hub(db, products=50, data_dir=data)  # with demo web orders and the hub key
        _add_head_office_and_odd_values(db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return data


@pytest.fixture
def hub_dir(seeded: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(seeded, tmp_path / "hub"))


def _primary_key(db: hdb.Db, table: str) -> list[str]:
    info = db.execute(f"PRAGMA table_info({table})").fetchall()
    return [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]


def _typed_rows(db: hdb.Db, table: str, columns: list[str], key: list[str]) -> list[tuple]:
    """Every row, (type name, value) per column, ordered by primary key (in Python: the
    two databases' collations need not agree)."""
    found = hdb.execute(db, f"SELECT {', '.join(columns)} FROM {table}").fetchall()  # noqa: S608
    at = [columns.index(c) for c in key] or list(range(len(columns)))
    found.sort(key=lambda row: [(row[i] is not None, row[i]) for i in at])
    return [tuple((type(v).__name__, v) for v in row) for row in found]


def _snapshot(db: hdb.Db, key_db: hdb.Db) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for table, columns in sorted(hdb.table_columns(key_db).items()):
        if table not in transfer.BOOKKEEPING:
            out[table] = _typed_rows(db, table, sorted(columns), _primary_key(key_db, table))
    return out


def test_every_row_of_every_table_arrives_unchanged(hub_dir, pg_database):
    done = _move(hub_dir, pg_database)
    assert done.returncode == 0, done.stderr
    source, target = open_database(db_path(hub_dir)), open_database(pg_database)
    try:
        before, after = _snapshot(source, source), _snapshot(target, source)
        assert set(hdb.table_columns(target)) == set(hdb.table_columns(source))
        # Every table the hub has took part (none left empty by this seed but a few).
        assert sum(1 for rows in before.values() if rows) >= 20
        for table in before:
            assert after[table] == before[table], table
        health = hdb.one(target, "SELECT * FROM store_health WHERE store_id = ?", [LYON])
        assert health["db_size_bytes"] == BIG and health["clock_skew_s"] == 0.1 + 0.2
        assert health["free_disk_bytes"] == 3 * 2**40 and health["sync_lag_s"] is not None
        assert hdb.scalar(target, "SELECT count(*) FROM hq_users WHERE disabled = 1") == 1
        # The summary names every table with its rows; the password is never shown.
        total = sum(len(rows) for rows in before.values())
        lines = [line.split() for line in done.stdout.splitlines()]
        assert ["total", f"{total:,}"] in lines
        assert all([t, f"{len(rows):,}"] in lines for t, rows in before.items())
        assert "--database" in done.stdout and "stores need no change" in done.stdout
    finally:
        source.close()
        target.close()


def test_the_next_change_and_ids_follow_the_copied_ones(hub_dir, pg_database):
    source = open_database(db_path(hub_dir))
    try:
        last = hdb.scalar(source, "SELECT max(seq) FROM changes")
        top = {
            "categories": hdb.scalar(source, "SELECT max(id) FROM categories"),
            "notifications": hdb.scalar(source, "SELECT max(id) FROM notifications"),
            "hq_audit": hdb.scalar(source, "SELECT max(id) FROM hq_audit"),
        }
    finally:
        source.close()
    assert _move(hub_dir, pg_database).returncode == 0
    db = open_database(pg_database)
    try:
        with hdb.write(db):
            seq = append_change(db, "store", "st-after", {"id": "st-after"})
        assert seq == last + 1  # changes.seq is GENERATED ALWAYS: setval moved it on
        for table, highest in top.items():
            assert highest, table
            column = "id"
            given = hdb.scalar(db, "SELECT nextval(pg_get_serial_sequence(?, ?))", [table, column])
            assert given == highest + 1, table
    finally:
        db.close()


def test_a_target_holding_hub_data_is_refused_with_nothing_written(hub_dir, pg_database):
    db = open_database(pg_database)
    try:
        registry.add_store(db, "Déjà là")
        before = {t: hdb.scalar(db, f"SELECT count(*) FROM {t}") for t in hdb.table_columns(db)}  # noqa: S608
        done = _move(hub_dir, pg_database)
        assert done.returncode == 1
        assert "already holds hub data" in done.stderr and "stores: 1" in done.stderr
        assert "nothing was written" in done.stderr
        after = {t: hdb.scalar(db, f"SELECT count(*) FROM {t}") for t in hdb.table_columns(db)}  # noqa: S608
        assert after == before and after["products"] == 0
    finally:
        db.close()


def test_a_bad_target_or_a_missing_hub_is_refused(hub_dir, tmp_path, pg_database):
    for value in ("sqlite:///x.db", "hub.db", "mysql://h/db"):
        done = _move(hub_dir, value)
        assert done.returncode == 2, done.stderr
        assert "--to" in done.stderr and "postgresql://" in done.stderr
    done = _kiosk("hub", COMMAND, "--data", str(hub_dir))
    assert done.returncode == 2 and "--to" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _move(empty, pg_database)
    assert done.returncode == 1 and "no hub database" in done.stderr
    assert not (empty / "hub.db").exists()


def test_progress_is_reported_for_long_tables(hub_dir, pg_database):
    seen: list[tuple[str, int, int]] = []
    moved = transfer.move_to_postgresql(
        db_path(hub_dir), pg_database, progress=lambda *a: seen.append(a), progress_every=500
    )
    changes = moved.rows["changes"]
    assert changes > 1000
    reports = [done for table, done, total in seen if table == "changes" and total == changes]
    assert reports and reports == sorted(reports) and all(n % 500 == 0 for n in reports)
    assert len(reports) == changes // 500
    # Parents before children: the copy order respects the foreign keys.
    order = list(moved.rows)
    assert order.index("stores") < order.index("orders") < order.index("order_lines")
    assert order.index("categories") < order.index("products") < order.index("variants")


def _server(data: Path, *extra: str) -> HubServer:
    server = HubServer(data)
    server.env = {k: v for k, v in server.env.items() if not k.startswith("KIOSK_HUB_")}
    server.command = ("hub", "serve", "--threads", "8", *extra)
    return server.start()


def _page(client: HubClient, since: Any) -> dict[str, Any]:
    resp = client.changes(since=since, limit=1000)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_moved_hub_serves_its_stores_where_they_were(hub_dir, pg_database):
    source = open_database(db_path(hub_dir))
    try:
        secret = registry.secret_for(source, LYON)
        sku = hdb.scalar(source, "SELECT sku FROM stock_levels WHERE store_id = ? LIMIT 1", [LYON])
        last = hdb.scalar(source, "SELECT max(seq) FROM changes")
    finally:
        source.close()
    sqlite_hub = _server(hub_dir)
    try:
        store = HubClient(sqlite_hub.url, LYON, secret)
        cursor = last - 30  # where this store had read up to
        seen_before = _page(store, cursor)
        # While the SQLite hub runs, the move is refused (what it writes later would be
        # lost), and the target is not touched.
        busy = _move(hub_dir, pg_database)
        assert busy.returncode == 1, busy.stdout
        assert "open in another process" in busy.stderr
        assert f"pid {sqlite_hub.proc.pid}" in busy.stderr
        probe = hdb.connect(pg_database)
        try:
            assert not hdb.table_exists(probe, "stores")
        finally:
            probe.close()
    finally:
        sqlite_hub.stop()
    assert _move(hub_dir, pg_database).returncode == 0
    pg_hub = _server(hub_dir, "--database", pg_database)
    try:
        store = HubClient(pg_hub.url, LYON, secret)  # the same id and secret
        seen_after = _page(store, cursor)
        assert seen_after["changes"] == seen_before["changes"]
        assert seen_after["cursor"] == seen_before["cursor"]
        assert len(seen_after["changes"]) >= 1
        # It posts, and the change its movement makes comes after the copied ones.
        resp = store.post_transactions([movement(sku, -1)])
        assert resp.status_code == 200, resp.text
        news = _page(store, seen_after["cursor"])["changes"]
        assert news and all(int(c["seq"]) > last for c in news)
    finally:
        pg_hub.stop()
