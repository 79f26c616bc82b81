"""``kiosk doctor``: against a real hub and a synced store, and each check on its own."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core import clock
from app.core import db as dbmod
from app.store import doctor
from app.store.domain import backups, outbox

from .conftest import free_port, run_kiosk
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import store_env


def run_doctor(data: Path, env: dict[str, str] | None = None, *extra: str):
    """``kiosk doctor --json``: (exit code, the JSON, the checks by name)."""
    done = run_kiosk("doctor", "--data", str(data), "--json", *extra, env=env)
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    return done.returncode, report, {c["name"]: c for c in report["checks"]}


def test_every_hub_check_ok_against_a_real_hub(hub_server, synced_store):
    code, report, checks = run_doctor(synced_store, store_env(hub_server.url, hub_server.data))
    # The shape scripts rely on.
    assert set(report) == {"ok", "data", "summary", "checks"}
    assert set(report["summary"]) == {"OK", "WARN", "FAIL", "SKIP"}
    assert [c["name"] for c in report["checks"]] == [
        "clock",
        "hub",
        "disk",
        "database",
        "backup",
        "outbox",
        "parked",
        "scanner",
        "camera",
    ]
    for c in report["checks"]:
        assert set(c) == {"name", "status", "message", "fix"}
        assert c["status"] in ("OK", "WARN", "FAIL", "SKIP")
    for name in ("clock", "hub", "database", "outbox", "parked"):
        assert checks[name]["status"] == "OK", checks[name]
    assert "accepts store" in checks["hub"]["message"]
    # Nothing failed: exit code 0 (the missing backup, scanner and camera only warn).
    assert checks["disk"]["status"] != "FAIL"
    assert report["ok"] is True and report["summary"]["FAIL"] == 0 and code == 0
    assert checks["backup"]["status"] == "WARN"


def test_the_text_report_says_what_and_how(hub_server, synced_store):
    done = run_kiosk(
        "doctor", "--data", str(synced_store), env=store_env(hub_server.url, hub_server.data)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"kiosk doctor: {synced_store}, hub {hub_server.url}"
    assert any(line.startswith("OK    hub ") for line in lines)
    assert any(line.startswith("WARN  backup ") for line in lines)
    assert any("fix: run 'kiosk backup' now" in line for line in lines)
    assert lines[-1].endswith("FAIL, 0 skipped") and " 0 FAIL" in lines[-1]


def test_a_wrong_secret_fails_naming_the_secret(hub_server, synced_store):
    env = {**store_env(hub_server.url, hub_server.data), "KIOSK_STORE_SECRET": "ab" * 32}
    code, report, checks = run_doctor(synced_store, env)
    assert code == 1 and report["ok"] is False
    assert checks["hub"]["status"] == "FAIL"
    assert "secret" in checks["hub"]["message"] and "wrong" in checks["hub"]["message"]
    assert "secret" in checks["hub"]["fix"]
    assert checks["clock"]["status"] == "OK"  # the unsigned status page still answered


def test_a_hub_nobody_listens_on_is_unreachable(hub_data, synced_store):
    url = f"http://127.0.0.1:{free_port()}"
    code, _, checks = run_doctor(synced_store, store_env(url, hub_data))
    assert code == 1
    assert checks["hub"]["status"] == "FAIL"
    assert "unreachable" in checks["hub"]["message"] and url in checks["hub"]["message"]
    assert checks["clock"]["status"] == "SKIP"


def test_no_hub_configured_skips_the_hub_checks(synced_store, monkeypatch):
    for name in ("KIOSK_HUB_URL", "KIOSK_STORE_ID", "KIOSK_STORE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    code, _, checks = run_doctor(synced_store)
    assert checks["clock"]["status"] == "SKIP" and checks["hub"]["status"] == "SKIP"
    assert "no hub configured" in checks["hub"]["message"]
    assert code == 0


def test_a_corrupted_database_fails_integrity(synced_store, tmp_path):
    data = Path(shutil.copytree(synced_store, tmp_path / "broken"))
    path = dbmod.db_path(data)
    size = path.stat().st_size
    assert size > 64 * 1024
    with path.open("r+b") as f:  # the header stays; pages in the middle become noise
        f.seek(size // 2 - (size // 2) % 4096)
        f.write(os.urandom(16 * 1024))
    code, _, checks = run_doctor(data)
    assert code == 1
    assert checks["database"]["status"] == "FAIL", checks["database"]
    assert (
        "integrity" in checks["database"]["message"] or "damaged" in checks["database"]["message"]
    )
    assert "backup" in checks["database"]["fix"]
    # The good copy passes.
    assert doctor.check_database(synced_store).status == "OK"


@pytest.mark.parametrize(
    ("offset_s", "status"), [(3600, "FAIL"), (-3600, "FAIL"), (150, "WARN"), (0, "OK")]
)
def test_clock_skew_with_the_hub(hub_factory, hub_data, synced_store, offset_s, status):
    # Both clocks frozen (the injected clock), so the skew is exact however slow the
    # machine: the store's at ``now``, the hub's ``offset_s`` off.
    now = clock.utcnow().replace(microsecond=0)
    hub_now = now + timedelta(seconds=offset_s)
    hub = hub_factory(hub_data, {"KIOSK_FAKE_NOW": clock.iso(hub_now)})
    env = {**store_env(hub.url, hub.data), "KIOSK_FAKE_NOW": clock.iso(now)}
    _, _, checks = run_doctor(synced_store, env)
    check = checks["clock"]
    assert check["status"] == status, check
    if status != "OK":
        assert "timedatectl status" in check["fix"]
        said = int(re.search(r"clock is (\d+) s ", check["message"]).group(1))
        assert said == abs(offset_s), check
        assert ("behind" if offset_s > 0 else "ahead of") in check["message"]


def test_disk_space_thresholds(tmp_path):
    def usage(free):
        return lambda _path: SimpleNamespace(free=free)

    assert doctor.check_disk(tmp_path, usage(300 * 1024**2)).status == "FAIL"
    warn = doctor.check_disk(tmp_path, usage(1024**3))
    assert warn.status == "WARN" and "1.0 GB" in warn.message and warn.fix
    assert doctor.check_disk(tmp_path, usage(5 * 1024**3)).status == "OK"
    assert doctor.check_disk(tmp_path).status in ("OK", "WARN")  # the real one reads
    assert doctor.check_disk(tmp_path / "missing").status == "FAIL"


def test_last_backup_by_the_injected_clock(tmp_path, fake_clock):
    folder = tmp_path / "backups"
    none = doctor.check_backup(tmp_path)
    assert none.status == "WARN" and "no backup" in none.message
    folder.mkdir()
    old = folder / f"kiosk-{backups.stamp(fake_clock.now - timedelta(days=3))}.db"
    old.write_bytes(b"x")
    (folder / "notes.txt").write_text("not a backup")
    stale = doctor.check_backup(tmp_path)
    assert stale.status == "WARN" and "3 days old" in stale.message and old.name in stale.message
    assert "kiosk backup" in stale.fix
    fresh = folder / f"kiosk-{backups.stamp(fake_clock.now - timedelta(hours=1))}.db"
    fresh.write_bytes(b"x")
    ok = doctor.check_backup(tmp_path)
    assert ok.status == "OK" and fresh.name in ok.message and "1 hour" in ok.message
    # Two days later by the clock, the same backup is too old.
    fake_clock.advance(2 * 86400 + 60)
    assert doctor.check_backup(tmp_path).status == "WARN"


def test_kiosk_backup_then_doctor(synced_store):
    done = run_kiosk("backup", "--data", str(synced_store))
    assert done.returncode == 0, done.stdout + done.stderr
    _, _, checks = run_doctor(synced_store)
    assert checks["backup"]["status"] == "OK", checks["backup"]
    assert "0 hours old" in checks["backup"]["message"]


def test_outbox_depth_and_parked(synced_store):
    assert [c.status for c in doctor.check_outbox(synced_store)] == ["OK", "OK"]
    db = dbmod.connect(dbmod.db_path(synced_store))
    with dbmod.write(db):
        for i in range(1003):
            outbox.enqueue(db, "stock.movement", {"sku": "x", "delta": -1, "n": i})
        db.execute(
            "UPDATE outbox SET parked_reason = 'rejected' WHERE rowid IN "
            "(SELECT rowid FROM outbox ORDER BY rowid LIMIT 2)"
        )
    db.close()
    depth, parked = doctor.check_outbox(synced_store)
    # 1,003 queued, two of them parked: 1,001 wait, over the 1,000 that warn.
    assert depth.status == "WARN" and depth.message.startswith("1001 "), depth
    assert "unreachable or refusing" in depth.message
    assert parked.status == "WARN" and parked.message.startswith("2 ")
    assert "refused by the hub" in parked.message


def test_scanner_and_camera(tmp_path):
    # This test machine has neither: the wording an operator reads.
    scanner, camera = doctor.check_devices()
    assert scanner.status == "WARN"
    assert scanner.message == "no barcode scanner seen (no USB keyboard device in /dev/input/by-id)"
    assert "HID keyboard mode" in scanner.fix
    assert camera.status == "WARN"
    assert camera.message.startswith("no camera seen (no /dev/video* device)")
    # A fake /dev with both.
    dev = tmp_path / "dev"
    (dev / "input" / "by-id").mkdir(parents=True)
    (dev / "input" / "by-id" / "usb-Honeywell_Scanner-event-kbd").touch()
    (dev / "video0").touch()
    scanner, camera = doctor.check_devices(dev)
    assert scanner.status == "OK" and "Honeywell" in scanner.message
    assert camera.status == "OK" and "video0" in camera.message


def test_database_checks_while_the_store_server_runs(store_server):
    # The usual case on a box: the server has the database open (WAL) while doctor reads.
    assert doctor.check_database(store_server.data).status == "OK"
    assert [c.status for c in doctor.check_outbox(store_server.data)] == ["OK", "OK"]
