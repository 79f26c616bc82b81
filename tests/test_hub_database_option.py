"""``--database`` / ``KIOSK_HUB_DATABASE``: the hub's commands on PostgreSQL (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from app.hub import database as hdb
from app.hub.storage import describe

from .conftest import ROOT, Server
from .hub_fixtures import *  # noqa: F403
from .pg import *  # noqa: F403


def _kiosk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**clean, **(env or {})},
    )


def test_a_database_that_is_not_postgresql_is_refused_naming_the_option(tmp_path):
    for value in ("mysql://x/y", "hub.db", "sqlite:///x"):
        done = _kiosk(
            "hub", "add-store", "--data", str(tmp_path), "--name", "X", "--database", value
        )
        assert done.returncode == 2, done.stderr
        assert "--database" in done.stderr and "postgresql://" in done.stderr
    assert not (tmp_path / "hub.db").exists()


def test_commands_and_the_server_use_the_postgresql_database(tmp_path: Path, pg_database: str):
    data = tmp_path / "hub"
    done = _kiosk(
        "hub",
        "add-store",
        "--data",
        str(data),
        "--name",
        "Nantes",
        "--json",
        "--database",
        pg_database,
    )
    assert done.returncode == 0, done.stderr
    store = json.loads(done.stdout)
    # In PostgreSQL, not in a hub.db beside the data
    assert not (data / "hub.db").exists()
    db = hdb.connect(pg_database)
    try:
        assert hdb.scalar(db, "SELECT name FROM stores WHERE id = ?", [store["id"]]) == "Nantes"
    finally:
        db.close()

    class PgHub(Server):
        command = ("hub", "serve")
        health_path = "/api/v1/status"
        log_name = "hub-{port}.log"

    # The environment variable works as the option does; the data directory (keys,
    # images) is still needed, the server makes what it needs there.
    data.mkdir(exist_ok=True)
    server = PgHub(data, {"KIOSK_HUB_DATABASE": pg_database}).start()
    try:
        status = requests.get(server.url + "/api/v1/status", timeout=5).json()
        assert status["ok"] and status["stores"] == 1
    finally:
        server.stop()
    log = server.log.read_text()
    assert "database postgresql://" in log and str(data / "hub.db") not in log


def test_the_database_password_is_never_shown():
    url = "postgresql://kiosk_hub:s3cret-Pass@db.internal:5432/kiosk_hub"
    shown = describe(url)
    assert "s3cret" not in shown
    assert shown == "postgresql://kiosk_hub:***@db.internal:5432/kiosk_hub"
    assert describe("postgresql://kiosk@127.0.0.1:5432/x") == "postgresql://kiosk@127.0.0.1:5432/x"
    shown = describe("postgresql://db.internal/kiosk_hub?sslmode=require&password=s3cret-Pass")
    assert "s3cret" not in shown and "sslmode=require" in shown


def test_kept_alive_requests_are_not_held_back_by_nagle(hub_server):
    """gevent sends headers and body in two writes: without TCP_NODELAY each answer on
    a kept-alive connection waited ~40 ms for the client's delayed ACK."""
    import statistics
    import time

    session = requests.Session()
    # The connection opened, and past the first answers, which the client's "quick ACK"
    # start would not hold back anyway.
    for _ in range(20):
        session.get(hub_server.url + "/api/v1/status", timeout=5)
    took = []
    for _ in range(40):
        started = time.perf_counter()
        assert session.get(hub_server.url + "/api/v1/status", timeout=5).ok
        took.append(time.perf_counter() - started)
    # Held back, nearly every answer takes 40 ms or more; a busy machine slows some
    # answers, never the fastest quarter of them all to that.
    assert statistics.quantiles(took, n=4)[0] < 0.03, sorted(took)
