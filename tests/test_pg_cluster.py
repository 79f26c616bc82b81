"""The throwaway PostgreSQL cluster of tests/pg.py works, and shows the change-feed gap.

The last two tests are the reproduction the hub's PostgreSQL change feed must be proven
against (issue 11): numbers drawn from a SEQUENCE by concurrent transactions become
visible in commit order, not number order, so a reader that remembers "the highest
number I have seen" skips a change that commits late; serialising the writers of the
change log closes the gap.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from .pg import *  # noqa: F403
from .pg import PgCluster

TIMEOUTS = "-c statement_timeout=10000 -c lock_timeout=10000"


def connect(url: str, **kw) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=5, options=TIMEOUTS, **kw)


def test_the_server_runs_unprivileged_in_its_own_temporary_folder(pg_cluster: PgCluster):
    with connect(pg_cluster.url()) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
        # Read while connected: the backend process ends with its connection (read
        # after it, the test once found /proc/<pid> already gone).
        uid = next(
            int(line.split()[1])
            for line in Path(f"/proc/{backend}/status").read_text().splitlines()
            if line.startswith("Uid:")
        )
    assert uid != 0
    assert Path(data_dir) == pg_cluster.data and pg_cluster.data.is_relative_to(pg_cluster.folder)
    assert fsync == "off"
    assert any(p.name.startswith(".s.PGSQL.") for p in pg_cluster.socket_dir.iterdir())


def test_connect_create_insert_select(pg_url: str):
    assert pg_url.startswith("postgresql://kiosk@127.0.0.1:") and pg_url.endswith("/kiosk_test")
    with connect(pg_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS smoke (id text PRIMARY KEY, qty integer NOT NULL)")
        conn.execute("DELETE FROM smoke")
        conn.cursor().executemany(
            "INSERT INTO smoke (id, qty) VALUES (%s, %s)", [("a", 1), ("b", 2), ("c", 3)]
        )
        conn.execute(
            "INSERT INTO smoke (id, qty) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING", ("a", 99)
        )
    with connect(pg_url) as conn:
        rows = conn.execute("SELECT id, qty FROM smoke ORDER BY id").fetchall()
    assert rows == [("a", 1), ("b", 2), ("c", 3)]


def test_each_pg_database_is_fresh_and_dropped_afterwards(pg_cluster: PgCluster, pg_database):
    with connect(pg_database) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    assert tables == 0


def test_listen_notify_round_trip_between_two_connections(pg_database: str):
    with connect(pg_database, autocommit=True) as listener, connect(pg_database) as writer:
        listener.execute("LISTEN feed_wake")
        writer.execute("SELECT pg_notify('feed_wake', %s)", ("42",))
        # Nothing is delivered before the writer commits: a wake-up never runs ahead of
        # the change it announces.
        assert list(listener.notifies(timeout=0.05, stop_after=1)) == []
        writer.commit()
        got = list(listener.notifies(timeout=5, stop_after=1))
    assert [(n.channel, n.payload) for n in got] == [("feed_wake", "42")]


FEED = """
CREATE TABLE change_log (
    seq bigint PRIMARY KEY DEFAULT nextval('change_seq'),
    body text NOT NULL
)
"""


def make_feed(url: str) -> None:
    with connect(url) as conn:
        conn.execute("CREATE SEQUENCE change_seq")
        conn.execute(FEED)


def read_after(reader: psycopg.Connection, cursor: int) -> list[int]:
    """What a store's long-poll reads: every change after its cursor, in number order."""
    rows = reader.execute("SELECT seq FROM change_log WHERE seq > %s ORDER BY seq", (cursor,))
    return [seq for (seq,) in rows.fetchall()]


def test_sequence_numbers_commit_out_of_order_and_a_naive_cursor_misses_one(pg_database: str):
    """THE GAP: a reader at cursor 2 never gets 1 when 1 commits after 2."""
    make_feed(pg_database)
    with (
        connect(pg_database) as slow,
        connect(pg_database) as fast,
        connect(pg_database, autocommit=True) as reader,
    ):
        low = slow.execute("INSERT INTO change_log (body) VALUES ('slow') RETURNING seq")
        low = low.fetchone()[0]
        high = fast.execute("INSERT INTO change_log (body) VALUES ('fast') RETURNING seq")
        high = high.fetchone()[0]
        assert low < high
        fast.commit()  # the higher number commits first

        seen = read_after(reader, 0)
        assert seen == [high], "the higher number is visible while the lower is in flight"
        cursor = max(seen)  # what the feed hands the store as its next `since`

        slow.commit()
        assert read_after(reader, cursor) == [], "the late commit is below the cursor"
        assert read_after(reader, 0) == [low, high], "...though it is in the table: missed"


def test_serialising_change_log_writers_makes_commit_order_number_order(pg_database: str):
    """One candidate fix: a transaction-scoped advisory lock taken before drawing a number.

    The second writer waits (observed in pg_stat_activity, no sleep) until the first
    commits, so no number is visible before a lower one: the cursor never skips.
    """
    make_feed(pg_database)
    append = (
        "WITH lock AS (SELECT pg_advisory_xact_lock(1104)) "
        "INSERT INTO change_log (body) SELECT %s FROM lock RETURNING seq"
    )
    with (
        connect(pg_database) as first,
        connect(pg_database) as second,
        connect(pg_database, autocommit=True) as reader,
    ):
        low = first.execute(append, ("first",)).fetchone()[0]
        second_pid = second.info.backend_pid
        result: dict[str, object] = {}

        def write_second() -> None:
            try:
                result["seq"] = second.execute(append, ("second",)).fetchone()[0]
                second.commit()
            except Exception as exc:  # reported by the assertion below
                result["error"] = exc

        thread = threading.Thread(target=write_second, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while True:
            waiting = reader.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (second_pid,)
            ).fetchone()
            if waiting and waiting[0] == "Lock":
                break
            assert time.monotonic() < deadline, "the second writer never waited for the lock"
            assert thread.is_alive(), f"the second writer did not wait: {result}"
            time.sleep(0.005)
        assert read_after(reader, 0) == []

        first.commit()
        thread.join(10)
        assert not thread.is_alive() and "error" not in result, result
        high = result["seq"]
        assert low < high
        seen = read_after(reader, 0)
        assert seen == [low, high]


@pytest.mark.parametrize("writers", [4])
def test_concurrent_serialised_writers_never_let_a_reader_skip(pg_database: str, writers: int):
    """Several writers appending at once under the advisory lock, one reader polling with a
    cursor: every number it ever reads arrives in order with none skipped."""
    make_feed(pg_database)
    per_writer = 50
    append = (
        "WITH lock AS (SELECT pg_advisory_xact_lock(1104)) "
        "INSERT INTO change_log (body) SELECT %s FROM lock RETURNING seq"
    )
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with connect(pg_database) as conn:
                for i in range(per_writer):
                    conn.execute(append, (f"w{n}-{i}",))
                    conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(writers)]
    for t in threads:
        t.start()
    got: list[int] = []
    deadline = time.monotonic() + 30
    with connect(pg_database, autocommit=True) as reader:
        while len(got) < writers * per_writer and time.monotonic() < deadline:
            got += read_after(reader, got[-1] if got else 0)
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert got == sorted(got) and len(got) == writers * per_writer
    with connect(pg_database) as conn:
        assert [s for (s,) in conn.execute("SELECT seq FROM change_log ORDER BY seq")] == got
