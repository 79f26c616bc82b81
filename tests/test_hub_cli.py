"""The ``kiosk hub`` command line, run as real separate processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from app.demo.hub_seed import seed_hub
from app.demo.seed import DEMO_STORES
from app.hub import database as hdb
from app.hub.domain import registry
from app.hub.migrations import product_search_text

from .conftest import ROOT
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import hub_db, open_hub_db, run_hub

ID_RE = re.compile(r"^st-[0-9a-hjkmnp-tv-z]{6}$")


@pytest.mark.parametrize("cmd", [[], ["serve"], ["seed"], ["add-store"]])
def test_every_hub_command_has_help(cmd):
    done = run_hub(*cmd, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    if cmd:
        assert "KIOSK_HUB_DATA" in done.stdout


def test_seed_prints_the_demo_stores_and_refuses_twice(tmp_path):
    data = tmp_path / "hub"
    done = run_hub("seed", "--data", str(data), "--products", "30", "--json", "--no-orders")
    assert done.returncode == 0, done.stderr
    stores = json.loads(done.stdout)
    assert [s["id"] for s in stores] == [s["id"] for s in DEMO_STORES]
    assert all(len(bytes.fromhex(s["secret"])) == 32 for s in stores)
    db = hub_db(data)
    assert db["products"].count == 30
    assert dict(db.execute("SELECT id, secret FROM stores").fetchall()) == {
        s["id"]: s["secret"] for s in stores
    }
    hours = json.loads(db.execute("SELECT opening_hours FROM stores LIMIT 1").fetchone()[0])
    assert hours["mon"] == [["09:30", "19:30"]] and hours["sun"] == []
    n_variants = db["variants"].count
    kinds = dict(db.execute("SELECT kind, count(*) FROM changes GROUP BY kind").fetchall())
    assert kinds == {"store": 3, "category": 13, "product": 30, "stock": 3 * n_variants}
    db.close()

    again = run_hub("seed", "--data", str(data), "--products", "30")
    assert again.returncode != 0 and "already seeded" in again.stderr
    plain = run_hub("seed", "--data", str(tmp_path / "other"), "--products", "5")
    assert plain.returncode == 0
    assert [line.split()[0] for line in plain.stdout.splitlines()] == [s["id"] for s in DEMO_STORES]
    assert "secret" not in plain.stdout


def test_add_store_json_and_plain(tmp_path):
    data = tmp_path / "hub"
    done = run_hub(
        "add-store",
        "--data",
        str(data),
        "--name",
        "Sportissimo Lille",
        "--city",
        "Lille",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    store = json.loads(done.stdout)
    assert set(store) == {"id", "secret", "name"} and store["name"] == "Sportissimo Lille"
    assert ID_RE.match(store["id"]) and len(bytes.fromhex(store["secret"])) == 32

    env = {**os.environ, "KIOSK_HUB_DATA": str(data)}
    plain = subprocess.run(
        [sys.executable, "-m", "app", "hub", "add-store", "--name", "Nantes"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert plain.returncode == 0, plain.stderr
    assert re.search(r"^id: +st-\w{6}$", plain.stdout, re.M)
    assert re.search(r"^secret: +[0-9a-f]{64}$", plain.stdout, re.M)

    db = open_hub_db(data)
    assert registry.secret_for(db, store["id"]) == store["secret"]
    assert registry.secret_for(db, "st-nobody") is None
    names = [s["name"] for s in registry.list_stores(db)]
    assert names == ["Nantes", "Sportissimo Lille"]
    assert all("secret" not in s for s in registry.list_stores(db))
    rows = db.execute("SELECT kind, key FROM changes ORDER BY seq").fetchall()
    assert rows[0] == ("store", store["id"]) and len(rows) == 2
    db.close()

    empty = run_hub("add-store", "--data", str(data), "--name", "  ")
    assert empty.returncode != 0 and "name" in empty.stderr


def test_store_ids_are_random(tmp_path):
    ids = {registry.new_store_id() for _ in range(200)}
    assert len(ids) == 200 and all(ID_RE.match(i) for i in ids)


def test_seed_hub_with_2000_products_reports_progress(tmp_path):
    db = open_hub_db(tmp_path / "hub")
    calls = []
    started = time.perf_counter()
    result = seed_hub(db, products=2000, progress=lambda d, t: calls.append((d, t)))
    elapsed = time.perf_counter() - started
    assert result["products"] == 2000 and result["changes"] > 2000
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)
    print(f"seeding 2,000 products took {elapsed:.1f}s")  # measured for real in benchmarks
    # The web shop's search text was folded by the seeder, not left to the first search.
    assert hdb.scalar(db, "SELECT count(*) FROM products WHERE search_text IS NULL") == 0
    row = hdb.one(db, "SELECT name_fr, name_en, brand, ref, search_text FROM products LIMIT 1")
    assert row["search_text"] == product_search_text(
        row["name_fr"], row["name_en"], row["brand"], row["ref"]
    )
    with pytest.raises(ValueError, match="already seeded"):
        seed_hub(db, products=10)
    db.close()
