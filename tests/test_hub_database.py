"""The hub's database layer (app/hub/database.py) on both backends: an SQLite file and a
fresh database of the throwaway PostgreSQL cluster (tests/pg.py), never a mock."""

from __future__ import annotations

import json
import threading
import time

import pytest

from app.hub import database as hdb

from .pg import *  # noqa: F403

TABLE = (
    "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0, "
    "flag INTEGER NOT NULL DEFAULT 0, data TEXT)"
)


@pytest.fixture
def db(target: str):
    conn = hdb.connect(target)
    yield conn
    conn.close()


def test_connect_picks_the_backend_from_the_target(target, db):
    assert hdb.dialect(db) == ("postgresql" if target.startswith("postgresql://") else "sqlite")


def test_question_mark_placeholders_dict_rows_and_literal_percent(db):
    hdb.execute(db, TABLE)
    hdb.execute(db, "INSERT INTO t (id, n) VALUES (?, ?)", ["a?b", 3])
    hdb.executemany(db, "INSERT INTO t (id, n) VALUES (?, ?)", [["50%", 1], ["x", 2]])
    # A ? inside a literal is not a placeholder; a literal % survives translation.
    assert hdb.rows(db, "SELECT id, n FROM t WHERE id LIKE '%?%' OR id = ?", ["x"]) == [
        {"id": "a?b", "n": 3},
        {"id": "x", "n": 2},
    ]
    assert hdb.one(db, "SELECT n FROM t WHERE id LIKE ? ESCAPE '\\'", ["50\\%"]) == {"n": 1}
    assert hdb.one(db, "SELECT n FROM t WHERE id = ?", ["nope"]) is None
    assert hdb.scalar(db, "SELECT count(*) FROM t") == 3
    assert hdb.scalar(db, "SELECT n FROM t WHERE id = 'nope'", default=-1) == -1
    assert hdb.rows(db, "SELECT 'no params, 100%' AS s") == [{"s": "no params, 100%"}]


def test_python_bools_are_stored_as_integers(db):
    hdb.execute(db, TABLE)
    hdb.insert(db, "t", {"id": "a", "flag": True})
    assert hdb.one(db, "SELECT flag FROM t WHERE id = ?", ["a"]) == {"flag": 1}
    assert hdb.scalar(db, "SELECT count(*) FROM t WHERE flag = ?", [False]) == 0


def test_write_commits_and_rolls_back_and_nests_as_savepoints(db):
    hdb.execute(db, TABLE)
    with hdb.write(db):
        hdb.insert(db, "t", {"id": "kept"})
    with pytest.raises(RuntimeError), hdb.write(db):
        hdb.insert(db, "t", {"id": "gone"})
        raise RuntimeError("boom")
    with hdb.write(db):
        hdb.insert(db, "t", {"id": "outer"})
        with pytest.raises(hdb.IntegrityError), hdb.write(db):
            hdb.insert(db, "t", {"id": "inner"})
            hdb.insert(db, "t", {"id": "kept"})  # duplicate: the savepoint rolls back
        hdb.insert(db, "t", {"id": "after"})
    assert [r["id"] for r in hdb.rows(db, "SELECT id FROM t ORDER BY id")] == [
        "after",
        "kept",
        "outer",
    ]


def test_insert_returning_and_upsert(db):
    hdb.execute(
        db,
        "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL)"
        if hdb.dialect(db) == "sqlite"
        else "CREATE TABLE changes (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "k TEXT NOT NULL)",
    )
    assert [hdb.insert(db, "changes", {"k": k}, returning="seq") for k in "abc"] == [1, 2, 3]
    hdb.execute(db, TABLE)
    assert hdb.upsert(db, "t", {"id": "a", "n": 1}, conflict=["id"]) == 1
    assert hdb.upsert(db, "t", {"id": "a", "n": 2}, conflict=["id"]) == 1
    assert hdb.upsert(db, "t", {"id": "a", "n": 9}, conflict=["id"], update=[]) == 0
    assert hdb.rows(db, "SELECT id, n FROM t") == [{"id": "a", "n": 2}]


def test_json_columns_round_trip_as_text(db):
    hdb.execute(db, TABLE)
    data = {"name": "Écharpe 100 % laine", "qty": 3, "tags": ["a", "?"], "z": None, "a": 1.5}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    hdb.insert(db, "t", {"id": "j", "data": text})
    stored = hdb.scalar(db, "SELECT data FROM t WHERE id = ?", ["j"])
    assert stored == text  # text, byte for byte: key order kept, not a driver-parsed dict
    assert json.loads(stored) == data


def test_read_sees_one_snapshot(target, db):
    hdb.execute(db, TABLE)
    other = hdb.connect(target)
    try:
        with hdb.read(db):
            before = hdb.scalar(db, "SELECT count(*) FROM t")
            with hdb.write(other):
                hdb.insert(other, "t", {"id": "new"})
            assert hdb.scalar(db, "SELECT count(*) FROM t") == before == 0
        assert hdb.scalar(db, "SELECT count(*) FROM t") == 1
    finally:
        other.close()


def test_the_write_lock_serialises_writers_across_connections(target, db):
    """A second writer waits for the first to commit (SQLite: BEGIN IMMEDIATE;
    PostgreSQL: the hub-wide advisory lock), and lock=None writers do not wait on it."""
    hdb.execute(db, TABLE)
    other = hdb.connect(target)
    entered = threading.Event()
    waited: list[float] = []

    def second_writer() -> None:
        start = time.monotonic()
        with hdb.write(other):
            waited.append(time.monotonic() - start)
            hdb.insert(other, "t", {"id": "second"})
        entered.set()

    try:
        with hdb.write(db):
            hdb.insert(db, "t", {"id": "first"})
            thread = threading.Thread(target=second_writer)
            thread.start()
            assert not entered.wait(0.4)  # blocked on the lock
        thread.join(10)
        assert entered.is_set() and waited[0] >= 0.3
        if hdb.is_pg(db):
            # On PostgreSQL a lock=None write does not queue behind the hub-wide lock.
            with hdb.write(db):
                done = threading.Event()

                def unlocked() -> None:
                    with hdb.write(other, lock=None):
                        hdb.insert(other, "t", {"id": "unlocked"})
                    done.set()

                t2 = threading.Thread(target=unlocked)
                t2.start()
                assert done.wait(5)
                t2.join(5)
    finally:
        other.close()
    assert {r["id"] for r in hdb.rows(db, "SELECT id FROM t")} >= {"first", "second"}


def test_named_locks_serialise_only_their_own_name(pg_database):
    db, other = hdb.connect(pg_database), hdb.connect(pg_database)
    try:
        with hdb.write(db, lock="bucket:a"):
            got = threading.Event()

            def take(name: str) -> None:
                with hdb.write(other, lock=name):
                    got.set()

            t = threading.Thread(target=take, args=("bucket:b",))
            t.start()
            assert got.wait(5)  # another name: no wait
            t.join(5)
            got.clear()
            t = threading.Thread(target=take, args=("bucket:a",))
            t.start()
            assert not got.wait(0.3)  # the same name: waits for our commit
        assert got.wait(5)
        t.join(5)
    finally:
        db.close()
        other.close()


# --- Migrations on both ---------------------------------------------------------------


def test_migrations_make_the_same_tables_and_columns_on_both(tmp_path, pg_database):
    from app.hub.migrations import hub_migrations
    from app.hub.storage import open_database

    lite, pg = open_database(tmp_path / "hub.db"), open_database(pg_database)
    try:
        lite_cols, pg_cols = hdb.table_columns(lite), hdb.table_columns(pg)
        assert lite_cols == pg_cols
        assert {"changes", "stores", "hub_keys", "nonces", "rate_events"} <= set(pg_cols)
        assert "schema_migrations" in pg_cols
        names = [m.name for m in hub_migrations.migrations]
        for db in (lite, pg):
            assert hub_migrations.pending(db) == []
            got = hdb.rows(db, "SELECT name FROM schema_migrations ORDER BY name")
            assert [r["name"] for r in got] == sorted(names)
            # m002's shop secret: 64 lower-case hex characters, on both.
            secret = hdb.scalar(db, "SELECT value FROM hub_meta WHERE key = 'shop_secret'")
            assert len(secret) == 64 and secret == secret.lower()
            int(secret, 16)
        # The types that differ, on PostgreSQL.
        types = {
            (r["table_name"], r["column_name"]): (r["data_type"], r["is_identity"])
            for r in hdb.rows(
                pg,
                "SELECT table_name, column_name, data_type, is_identity "
                "FROM information_schema.columns WHERE table_schema = current_schema()",
            )
        }
        assert types[("changes", "seq")] == ("bigint", "YES")
        assert types[("notifications", "id")] == ("bigint", "YES")
        assert types[("store_health", "free_disk_bytes")] == ("bigint", "NO")
        assert types[("rate_events", "at")] == ("double precision", "NO")
        assert types[("changes", "data")] == ("text", "NO")
        assert (
            hdb.scalar(
                pg,
                "SELECT identity_generation FROM information_schema.columns "
                "WHERE table_name = 'changes' AND column_name = 'seq'",
            )
            == "ALWAYS"
        )
    finally:
        lite.close()
        pg.close()


def test_migrate_twice_is_a_no_op(target):
    from app.hub.migrations import hub_migrations, migrate

    db = hdb.connect(target)
    try:
        assert migrate(db) == [m.name for m in hub_migrations.migrations]
        assert migrate(db) == []
    finally:
        db.close()


def test_a_hub_db_migrated_by_sqlite_utils_is_not_migrated_again(tmp_path):
    """A shipped hub.db recorded its migrations in sqlite-utils' _sqlite_migrations."""
    from app.hub.migrations import hub_migrations, migrate

    db = hdb.connect(tmp_path / "hub.db")
    try:
        hub_migrations.apply(db)
        hdb.execute(db, "DROP TABLE schema_migrations")
        hdb.execute(
            db,
            "CREATE TABLE _sqlite_migrations (migration_set TEXT, name TEXT, applied_at TEXT)",
        )
        for m in hub_migrations.migrations:
            hdb.insert(
                db,
                "_sqlite_migrations",
                {"migration_set": "kiosk_hub", "name": m.name, "applied_at": "2026-01-01"},
            )
        assert migrate(db) == []  # nothing re-run (m001 again would fail: tables exist)
        assert hdb.scalar(db, "SELECT count(*) FROM schema_migrations") == len(
            hub_migrations.migrations
        )
    finally:
        db.close()


def test_workers_starting_together_migrate_once(pg_database):
    from app.hub.migrations import hub_migrations, migrate

    results: list[list[str]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            db = hdb.connect(pg_database)
            try:
                results.append(migrate(db))
            finally:
                db.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, 0, len(hub_migrations.migrations)]


# --- The first ported slice on both: registry, keys, changes, nonces, rate limits ------


@pytest.fixture
def hub(target: str):
    """A migrated, empty hub database on either backend."""
    from app.hub.storage import open_database

    db = open_database(target)
    yield db
    db.close()


def test_registry_on_both(hub):
    from app.hub.domain import registry
    from app.hub.domain.changes import changes_since

    made = registry.add_store(hub, " Lyon ", "Lyon", "1 rue X", {"mon": "9-19"})
    assert made["id"].startswith("st-") and registry.secret_for(hub, made["id"]) == made["secret"]
    assert registry.secret_for(hub, "st-nobody") is None
    with pytest.raises(ValueError):
        registry.add_store(hub, "  ")
    registry.insert_store(hub, "st-aaaaaa", "Annecy")
    listed = registry.list_stores(hub)
    assert [s["name"] for s in listed] == ["Annecy", "Lyon"]
    assert listed[1]["opening_hours"] == {"mon": "9-19"} and "secret" not in listed[1]
    page = changes_since(hub, made["id"], 0)
    assert [(c["kind"], c["key"]) for c in page["changes"]] == [
        ("store", made["id"]),
        ("store", "st-aaaaaa"),
    ]


def test_hub_keys_on_both(hub, tmp_path):
    from app.hub.domain import keys
    from app.hub.domain.changes import last_seq

    private_key, kid = keys.ensure_hub_key(hub, tmp_path / "data")
    assert last_seq(hub) == 1
    assert keys.register_key(hub, private_key)["kid"] == kid  # again: announced once
    assert keys.ensure_hub_key(hub, tmp_path / "data")[1] == kid
    assert last_seq(hub) == 1
    assert list(keys.public_keys(hub)) == [kid] and len(keys.public_keys(hub)[kid]) == 32


def test_change_feed_pages_and_cursor_on_both(hub):
    from app.hub.database import write
    from app.hub.domain.changes import append_change, changes_since, last_seq

    assert last_seq(hub) == 0
    with write(hub):
        seqs = [append_change(hub, "product", f"p{i}", {"i": i, "name": "é"}) for i in range(5)]
        seqs.append(append_change(hub, "order", "o1", {"x": 1}, store_id="st-b"))
        seqs.append(append_change(hub, "order", "o2", {"x": 2}, store_id="st-a"))
    assert seqs == list(range(1, 8)) and last_seq(hub) == 7
    # Outside a transaction too (PostgreSQL opens one so the lock is held to commit).
    assert append_change(hub, "product", "p5", {"i": 5}) == 8
    first = changes_since(hub, "st-a", 0, limit=3)
    assert [c["seq"] for c in first["changes"]] == [1, 2, 3]
    assert first["changes"][0]["data"] == {"i": 0, "name": "é"}
    assert (first["cursor"], first["more"], first["remaining"]) == ("3", True, 4)
    rest = changes_since(hub, "st-a", int(first["cursor"]), limit=3)
    assert [c["seq"] for c in rest["changes"]] == [4, 5, 7]
    assert rest["more"] is True
    last = changes_since(hub, "st-a", 7, limit=3)
    assert [c["seq"] for c in last["changes"]] == [8]
    assert (last["cursor"], last["more"], last["remaining"]) == ("8", False, 0)
    # A page of only other stores' changes still moves the cursor to the newest seq.
    assert changes_since(hub, "st-c", 5)["cursor"] == "8"


def test_nonces_on_both(hub):
    from app.hub.domain.nonces import remember_nonce

    assert remember_nonce(hub, "st-a", "n1", now=1_000_000)
    assert not remember_nonce(hub, "st-a", "n1", now=1_000_001)
    assert remember_nonce(hub, "st-b", "n1", now=1_000_001)
    # Forgotten once older than the TTL.
    assert remember_nonce(hub, "st-a", "n1", now=1_000_000 + 10_000)


def test_rate_limit_on_both(hub):
    from app.hub.domain.ratelimit import hit

    assert [hit(hub, "b", 3, 60, now=100.0 + i) for i in range(3)] == [(True, 0)] * 3
    assert hit(hub, "b", 3, 60, now=110.0) == (False, 50)
    assert hit(hub, "other", 3, 60, now=110.0) == (True, 0)
    assert hit(hub, "b", 3, 60, now=160.5) == (True, 0)  # the oldest left the window


# --- The change feed under concurrent writer processes (issue 11) ----------------------

FEED_WRITERS = 4
FEED_APPENDS = 150
READER = "st-a"


def _feed_writer(url: str, wid: int, locked: bool, go, count: int = FEED_APPENDS) -> None:
    """One hub process appending changes through the real append_change, in
    transactions of its own shapes, holding each open a moment after drawing the seq
    (what widens the window in which a later seq can commit first)."""
    import random

    from app.hub import database as hdb
    from app.hub.domain import changes

    if not locked:  # the control: the bug, with the lock taken nowhere
        hdb.take_lock = lambda db, name: None
    rnd = random.Random(wid)
    db = hdb.connect(url)
    try:
        go.wait(30)
        for i in range(count):
            store = (None, READER, "st-b")[i % 3]
            # Half the transactions take no lock up front: append_change must take it.
            with hdb.write(db, lock=None if i % 2 else hdb.WRITE_LOCK):
                changes.append_change(db, "product", f"w{wid}-{i}", {"w": wid, "i": i}, store)
                time.sleep(rnd.random() * 0.004)
    finally:
        db.close()


def _race_the_feed(url: str, locked: bool, budget_s: float = 60.0) -> tuple[list[int], list[int]]:
    """Writer processes append while this process reads the feed as a store does
    (changes_since from its cursor, small pages). Returns (seqs read, seqs expected)."""
    import multiprocessing

    from app.hub.domain.changes import changes_since

    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    writers = [
        ctx.Process(target=_feed_writer, args=(url, w, locked, go), daemon=True)
        for w in range(FEED_WRITERS)
    ]
    for p in writers:
        p.start()
    db = hdb.connect(url)
    seen: list[int] = []
    cursor = 0
    deadline = time.monotonic() + budget_s
    try:
        go.set()
        while time.monotonic() < deadline:
            done = not any(p.is_alive() for p in writers)  # read before the page
            page = changes_since(db, READER, cursor, limit=20)
            seen += [c["seq"] for c in page["changes"]]
            cursor = int(page["cursor"])
            if done and not page["more"]:
                break
            time.sleep(0.001)
        else:
            pytest.fail(f"the feed race did not finish in {budget_s} s")
        for p in writers:
            p.join(10)
            assert p.exitcode == 0
        expected = [
            r["seq"]
            for r in hdb.rows(
                db,
                "SELECT seq FROM changes WHERE store_id IS NULL OR store_id = ? ORDER BY seq",
                [READER],
            )
        ]
    finally:
        for p in writers:
            if p.is_alive():
                p.terminate()
                p.join(5)
        db.close()
    return seen, expected


def test_a_reader_never_misses_a_change_from_concurrent_writer_processes(pg_database):
    """Issue 11's proof: 4 writer processes x 150 appends, committing in whatever order
    they finish, against a reader paging the feed: it gets every change meant for it,
    each once, in seq order."""
    migrate_db = hdb.connect(pg_database)
    from app.hub.migrations import migrate

    migrate(migrate_db)
    migrate_db.close()
    seen, expected = _race_the_feed(pg_database, locked=True)
    assert len(expected) == FEED_WRITERS * FEED_APPENDS * 2 // 3
    assert seen == expected  # none missed, none twice, in order


def test_without_the_lock_the_same_reader_misses_changes(pg_database):
    """The control: the same race with the lock taken nowhere shows the gap, so the
    test above would catch the bug (a few rounds: the interleaving is not forced)."""
    from app.hub.migrations import migrate

    db = hdb.connect(pg_database)
    migrate(db)
    missed: set[int] = set()
    for _ in range(3):
        hdb.execute(db, "DELETE FROM changes")
        seen, expected = _race_the_feed(pg_database, locked=False)
        missed = set(expected) - set(seen)
        print(f"without the lock: the reader missed {len(missed)} of {len(expected)}")
        if missed:
            break
    db.close()
    assert missed, "no gap without the lock in 3 rounds: the race test has lost its teeth"
