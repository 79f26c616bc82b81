"""``kiosk backup`` / ``kiosk restore``: an online backup of a database a running server
writes to, checked, pruned, restored into a fresh data directory that a new server
serves; a damaged backup and a running server are refused."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
import requests

from app.core import db as dbmod
from app.store.domain import backups as backupmod

from .conftest import run_kiosk


def _skus(data: Path, n: int) -> list[str]:
    conn = sqlite3.connect(dbmod.db_path(data))
    try:
        return [r[0] for r in conn.execute("SELECT sku FROM variants ORDER BY sku LIMIT ?", (n,))]
    finally:
        conn.close()


def _rows(db_file: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return {
            table: list(conn.execute(f"SELECT * FROM {table} ORDER BY rowid"))  # noqa: S608
            for table in ("stock_movements", "outbox", "audit_log", "meta")
        }
    finally:
        conn.close()


def _ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_backup_while_serving_then_restore_into_fresh_dir(
    server_factory, store_data: Path, tmp_path: Path
):
    server = server_factory(store_data)
    skus = _skus(store_data, 8)
    errors: list[str] = []

    def write_movements() -> None:  # staff corrections while the backups run
        for i, sku in enumerate(skus):
            r = run_kiosk("stock", "adjust", "--data", str(store_data), sku, str(i + 1))
            if r.returncode:
                errors.append(r.stderr)

    writer = threading.Thread(target=write_movements)
    writer.start()
    taken = []
    while writer.is_alive() or len(taken) < 7:
        out = _ok(run_kiosk("backup", "--data", str(store_data), "--keep", "50"))
        assert "integrity check: ok" in out
        taken.append(out)
    writer.join()
    assert not errors, errors
    assert len(taken) >= 2  # some of them while the movements were being written

    # Every backup taken mid-writes is a sound database.
    dest = store_data / "backups"
    for path in backupmod.backups(dest):
        assert backupmod.integrity_problems(path) == []

    # The final one, taken with the server still running, after the last movement.
    before = requests.get(server.url + "/healthz", timeout=5).json()
    out = _ok(run_kiosk("backup", "--data", str(store_data)))
    last = backupmod.backups(dest)[-1]
    assert f"to {last}" in out
    assert len(backupmod.backups(dest)) == 7  # --keep defaults to 7: older ones went
    assert "removed old backup" in out

    # Restoring into the running server's data directory is refused.
    refused = run_kiosk("restore", "--data", str(store_data), "--from", str(last))
    assert refused.returncode != 0
    assert "in use" in refused.stderr

    server.stop()
    expected = _rows(dbmod.db_path(store_data))
    assert len(expected["stock_movements"]) >= len(skus)

    fresh = tmp_path / "fresh"
    out = _ok(run_kiosk("restore", "--data", str(fresh), "--from", str(last)))
    assert "restored" in out and "kept the current database" not in out
    assert _rows(dbmod.db_path(fresh)) == expected

    again = server_factory(fresh)
    after = requests.get(again.url + "/healthz", timeout=5).json()
    assert after["stock_version"] == before["stock_version"]
    assert after["store_id"] == before["store_id"]
    again.stop()
    assert _rows(dbmod.db_path(fresh)) == expected  # the server found them all, changed none


def test_restore_keeps_the_current_database_aside(store_data: Path, tmp_path: Path):
    _ok(run_kiosk("backup", "--data", str(store_data), "--to", str(tmp_path / "b")))
    backup = backupmod.backups(tmp_path / "b")[0]
    sku = _skus(store_data, 1)[0]
    _ok(run_kiosk("stock", "adjust", "--data", str(store_data), sku, "5"))
    changed = _rows(dbmod.db_path(store_data))

    env = {"KIOSK_FAKE_NOW": "2026-12-05T03:00:00Z"}
    out = _ok(run_kiosk("restore", "--data", str(store_data), "--from", str(backup), env=env))
    aside = store_data / "kiosk.db.before-restore-20261205T030000Z"
    assert f"kept the current database as {aside}" in out
    assert _rows(aside) == changed  # nothing of the replaced database is lost
    assert _rows(dbmod.db_path(store_data)) == _rows(backup)
    assert len(_rows(backup)["stock_movements"]) < len(changed["stock_movements"])


def test_keep_prunes_the_oldest(store_data: Path, tmp_path: Path):
    dest = tmp_path / "backups"
    (dest).mkdir()
    (dest / "notes.txt").write_text("not a backup: never touched")
    for day in ("01", "02", "03", "04"):
        env = {"KIOSK_FAKE_NOW": f"2026-12-{day}T02:30:00Z"}
        args = ("backup", "--data", str(store_data), "--to", str(dest), "--keep", "2")
        out = _ok(run_kiosk(*args, env=env))
    assert "removed old backup" in out
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["kiosk-20261203T023000Z.db", "kiosk-20261204T023000Z.db", "notes.txt"]
    # Two in the same second (a frozen clock) get distinct names; the newest is kept.
    env = {"KIOSK_FAKE_NOW": "2026-12-04T02:30:00Z"}
    _ok(run_kiosk("backup", "--data", str(store_data), "--to", str(dest), "--keep", "2", env=env))
    assert [p.name for p in backupmod.backups(dest)] == [
        "kiosk-20261204T023000Z.db",
        "kiosk-20261204T023000Z-2.db",
    ]


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "not a database"])
def test_restore_refuses_a_damaged_backup(store_data: Path, tmp_path: Path, damage: str):
    _ok(run_kiosk("backup", "--data", str(store_data), "--to", str(tmp_path / "b")))
    good = backupmod.backups(tmp_path / "b")[0]
    bad = tmp_path / "bad.db"
    shutil.copy(good, bad)
    data = bad.read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "overwritten":  # pages in the middle of the file become noise
        page = 4096
        mid = (len(data) // page // 2) * page
        bad.write_bytes(data[:mid] + b"\xa5" * (8 * page) + data[mid + 8 * page :])
    else:
        bad.write_bytes(b"this is not SQLite" + data[18:])
    current = _rows(dbmod.db_path(store_data))

    result = run_kiosk("restore", "--data", str(store_data), "--from", str(bad))
    assert result.returncode != 0
    assert "not a sound database" in result.stderr
    assert _rows(dbmod.db_path(store_data)) == current  # untouched
    assert not list(store_data.glob("kiosk.db.before-restore-*"))


def test_a_backup_failing_its_check_is_deleted(store_data: Path, tmp_path: Path, monkeypatch):
    """Should the copy not pass integrity_check, it is deleted and the command fails."""
    monkeypatch.setattr(backupmod, "integrity_problems", lambda _p: ["*** page 7: damaged"])
    from datetime import UTC, datetime

    with pytest.raises(backupmod.BackupError, match="failed its integrity check"):
        backupmod.backup(
            dbmod.db_path(store_data), tmp_path / "b", datetime(2026, 12, 5, tzinfo=UTC)
        )
    assert list((tmp_path / "b").iterdir()) == []
