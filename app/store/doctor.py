"""``kiosk doctor``: the checks of a store device, as plain functions (no Flask).

Every check returns :class:`Check` results: OK, WARN, FAIL or SKIP, with what is wrong
and how to fix it in plain words for an operations person. app/store/cli_doctor.py
prints them (or their JSON); the exit code is 1 when any check FAILs.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from app.core import clock
from app.core import db as dbmod
from app.core.signing import MAX_SKEW_S

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"

SKEW_WARN_S = 60
DISK_WARN_BYTES = 2 * 1024**3
DISK_FAIL_BYTES = 500 * 1024**2
BACKUP_MAX_AGE = timedelta(days=2)
OUTBOX_WARN = 1000
BACKUP_DIR = "backups"
BACKUP_GLOB = "kiosk-*.db"
TIMESYNC_FIX = (
    "check systemd-timesyncd: timedatectl status (it should say 'System clock synchronized: yes')"
)


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    status: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- The hub ----------------------------------------------------------------------


def check_hub(
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    *,
    timeout: float = 10.0,
) -> list[Check]:
    """Clock skew with the hub, then the hub reachable and the store's credentials
    accepted (a signed request to the change feed)."""
    if not hub_url:
        note = (
            "no hub configured (--hub-url / KIOSK_HUB_URL): this store runs on its own, "
            "the hub checks are skipped"
        )
        return [Check("clock", SKIP, "not measured: no hub configured"), Check("hub", SKIP, note)]
    hub_url = hub_url.rstrip("/")
    clock_check, unreachable = _check_clock(hub_url, timeout)
    if unreachable:
        return [
            clock_check,
            Check(
                "hub",
                FAIL,
                f"the hub at {hub_url} is unreachable ({unreachable})",
                "check the network cable or Wi-Fi, that the hub address is right "
                "(--hub-url / KIOSK_HUB_URL in /etc/kiosk/kiosk.toml), and that the hub is up",
            ),
        ]
    return [clock_check, _check_credentials(hub_url, store_id, store_secret, timeout)]


def _check_clock(hub_url: str, timeout: float) -> tuple[Check, str]:
    """The skew between this device's clock and the hub's (its unsigned status page);
    and why the hub is unreachable ("" when it answered)."""
    started = time.monotonic()
    before = clock.utcnow()
    try:
        answer = requests.get(hub_url + "/api/v1/status", timeout=(5.0, timeout))
    except requests.RequestException as exc:
        reason = _why_unreachable(exc)
        return Check("clock", SKIP, "not measured: the hub is unreachable"), reason
    rtt = time.monotonic() - started
    try:
        hub_time = clock.parse_iso(answer.json()["time"])
    except (ValueError, KeyError, TypeError):
        return Check(
            "clock",
            WARN,
            f"not measured: the hub's status page answered {answer.status_code} without a time",
            "check that --hub-url is the hub's address (not the store's or a proxy page)",
        ), ("" if answer.status_code < 500 else f"it answered {answer.status_code}")
    local = before + timedelta(seconds=rtt / 2)
    skew = (hub_time - local).total_seconds()
    ahead = "behind" if skew > 0 else "ahead of"
    said = f"this device's clock is {abs(skew):.0f} s {ahead} the hub's"
    if abs(skew) > SKEW_WARN_S:
        fail = abs(skew) > MAX_SKEW_S
        message = f"{said}: beyond {MAX_SKEW_S} s the hub refuses every signed request"
        if not fail:
            message = f"{said} (the hub refuses requests beyond {MAX_SKEW_S} s)"
        return Check("clock", FAIL if fail else WARN, message, TIMESYNC_FIX), ""
    return Check("clock", OK, said), ""


def _why_unreachable(exc: requests.RequestException) -> str:
    """A network error in plain words."""
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if "NameResolution" in text or "Name or service not known" in text:
        return "its name cannot be resolved: check the address and the DNS"
    if "Connection refused" in text:
        return "nothing answers at that address and port: connection refused"
    if "No route to host" in text or "Network is unreachable" in text:
        return "no network route to it"
    return exc.__class__.__name__


def _check_credentials(
    hub_url: str, store_id: str | None, store_secret: str | None, timeout: float
) -> Check:
    from app.store.sync.client import HubClient, HubError

    if not (store_id and store_secret):
        missing = " and ".join(
            n for n, v in (("--store-id", store_id), ("--store-secret", store_secret)) if not v
        )
        return Check(
            "hub",
            FAIL,
            f"the hub is reachable but {missing} is not set",
            "set KIOSK_STORE_ID and the store secret (the hub's 'kiosk hub add-store' gives both)",
        )
    try:
        bytes.fromhex(store_secret)
    except ValueError:
        return Check(
            "hub",
            FAIL,
            "the store secret is not a hex string: it was mistyped or truncated",
            "copy the store secret again from the hub (kiosk hub add-store prints it)",
        )
    client = HubClient(hub_url, store_id, store_secret, read_timeout=timeout)
    try:
        # A position past the end of the feed: nothing to send back, the signature checked.
        client.get_changes("999999999999", wait=0, limit=1)
    except HubError as exc:
        return _credentials_failure(hub_url, store_id, exc)
    finally:
        client.session.close()
    return Check("hub", OK, f"the hub at {hub_url} is reachable and accepts store {store_id}")


def _credentials_failure(hub_url: str, store_id: str, exc: Any) -> Check:
    """A signed request the hub did not answer, or refused, in plain words."""
    if exc.status is None:
        message = f"the hub at {hub_url} is unreachable for signed requests ({exc.message})"
        fix = "check the network and that the hub is up"
    elif exc.code == "bad_signature":
        message = (
            "the hub refuses this store's signature: the store secret "
            f"(or the store id {store_id}) is wrong"
        )
        fix = (
            "copy the store secret for this store id again from the hub "
            "(KIOSK_STORE_SECRET / the secret file), then restart the kiosk service"
        )
    elif exc.code == "clock_skew":
        message = "the hub refuses this store's requests: this device's clock is too far off"
        fix = TIMESYNC_FIX
    elif exc.status == 401:
        message = f"the hub refuses this store's requests ({exc.message})"
        fix = "check the store id and secret against the hub"
    else:
        message = f"the hub at {hub_url} did not accept the request ({exc.message})"
        fix = "check that --hub-url is the hub's address and that the hub is healthy"
    return Check("hub", FAIL, message, fix)


# --- The device -------------------------------------------------------------------


def check_disk(data: Path, usage: Callable[[Any], Any] = shutil.disk_usage) -> Check:
    """Free space on the data directory's file system."""
    try:
        free = usage(data).free
    except OSError as exc:
        return Check(
            "disk",
            FAIL,
            f"cannot read the free space of {data}: {exc.strerror or exc}",
            "check that the data directory exists (--data / KIOSK_DATA)",
        )
    said = f"{_size(free)} free on the file system of {data}"
    fix = (
        "free some space: old logs (journalctl --vacuum-size=100M), old backups, "
        "or use a larger SD card / disk"
    )
    if free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, f"only {said} (under {_size(DISK_FAIL_BYTES)})", fix)
    if free < DISK_WARN_BYTES:
        return Check("disk", WARN, f"only {said} (under {_size(DISK_WARN_BYTES)})", fix)
    return Check("disk", OK, said)


def _size(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024**2:.0f} MB"


def _open_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def check_database(data: Path) -> Check:
    """``PRAGMA quick_check`` on DATA/kiosk.db, opened read-only."""
    path = dbmod.db_path(data)
    restore = "restore the latest backup (see kiosk-setup/README.md, 'Recover a box')"
    if not path.exists():
        return Check(
            "database",
            FAIL,
            f"there is no store database at {path}",
            "check --data / KIOSK_DATA; a new store creates it with 'kiosk migrate'",
        )
    try:
        conn = _open_ro(path)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Check("database", FAIL, f"the store database {path} is damaged: {exc}", restore)
    if rows != ["ok"]:
        shown = "; ".join(str(r) for r in rows[:3])
        return Check(
            "database",
            FAIL,
            f"the store database {path} failed its integrity check: {shown}",
            restore,
        )
    return Check("database", OK, f"the store database {path} passed its integrity check")


def check_backup(data: Path, now: datetime | None = None) -> Check:
    """The newest backup in DATA/backups (``kiosk backup``'s ``kiosk-<UTC stamp>.db``),
    its age by the stamp in its name against the injected clock."""
    from app.store.domain import backups as backupmod

    folder = Path(data) / BACKUP_DIR
    fix = "run 'kiosk backup' now, and check the nightly backup timer (systemctl list-timers)"
    files = backupmod.backups(folder) if folder.is_dir() else []
    if not files:
        return Check("backup", WARN, f"there is no backup in {folder}", fix)
    newest = files[-1]
    match = backupmod.BACKUP_PATTERN.match(newest.name)
    taken = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    age = (now or clock.utcnow()) - taken
    hours = max(0, int(age.total_seconds() // 3600))
    said = f"the newest backup, {newest.name}, is {_age(hours)} old"
    if age > BACKUP_MAX_AGE:
        return Check("backup", WARN, f"{said} (more than 2 days)", fix)
    return Check("backup", OK, said)


def _age(hours: int) -> str:
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} hours" if hours != 1 else "1 hour"


def check_outbox(data: Path) -> list[Check]:
    """What the hub has not acknowledged yet, and what it refused (parked)."""
    from sqlite_utils import Database

    from app.store.domain import outbox

    path = dbmod.db_path(data)
    if not path.exists():
        message = f"not checked: there is no store database at {path}"
        return [Check("outbox", SKIP, message), Check("parked", SKIP, message)]
    try:
        conn = _open_ro(path)
        try:
            box = outbox.stats(Database(conn))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        message = f"cannot read the outbox of {path}: {exc}"
        return [
            Check("outbox", FAIL, message, "see the database check"),
            Check("parked", SKIP, message),
        ]
    depth, parked = box["depth"], box["parked"]
    if depth > OUTBOX_WARN:
        since = (
            f", the oldest {_age(box['oldest_age_s'] // 3600)} old" if box["oldest_age_s"] else ""
        )
        first = Check(
            "outbox",
            WARN,
            f"{depth} sales and stock movements wait to be sent to the hub{since}: the hub "
            "is unreachable or refusing them",
            "look at the hub and clock checks above and the staff status screen; nothing is "
            "lost, they are sent once the hub accepts them",
        )
    else:
        first = Check("outbox", OK, f"{depth} transactions wait to be sent to the hub")
    if parked:
        second = Check(
            "parked",
            WARN,
            f"{parked} transactions were refused by the hub and are parked",
            "a manager looks at them on the staff status screen (or 'kiosk' admin commands) "
            "and sends them again or drops them",
        )
    else:
        second = Check("parked", OK, "no transaction was refused by the hub")
    return [first, second]


def check_devices(dev: Path = Path("/dev")) -> list[Check]:
    """A USB HID barcode scanner and a camera, as the kernel sees them."""
    by_id = dev / "input" / "by-id"
    keyboards = sorted({*by_id.glob("*kbd*"), *by_id.glob("*event-kbd*")}) if by_id.is_dir() else []
    cameras = sorted(dev.glob("video*"))
    if keyboards:
        scanner = Check("scanner", OK, f"a keyboard-like device is seen: {keyboards[0].name}")
    else:
        scanner = Check(
            "scanner",
            WARN,
            f"no barcode scanner seen (no USB keyboard device in {by_id})",
            "plug the scanner in (USB), and set it to USB HID keyboard mode with an Enter suffix "
            "(see its manual's setup barcodes)",
        )
    if cameras:
        camera = Check("camera", OK, f"a camera is seen: {cameras[0]}")
    else:
        camera = Check(
            "camera",
            WARN,
            f"no camera seen (no {dev}/video* device): shoppers cannot show a cart QR code",
            "plug the USB camera in; if it is plugged, try another port and check 'dmesg'",
        )
    return [scanner, camera]


# --- All of them ------------------------------------------------------------------


def run_all(
    data: Path,
    hub_url: str | None = None,
    store_id: str | None = None,
    store_secret: str | None = None,
    *,
    timeout: float = 10.0,
    dev: Path = Path("/dev"),
) -> list[Check]:
    """Every check, in the order the report shows them."""
    data = Path(data)
    return [
        *check_hub(hub_url, store_id, store_secret, timeout=timeout),
        check_disk(data),
        check_database(data),
        check_backup(data),
        *check_outbox(data),
        *check_devices(dev),
    ]


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def summary(checks: list[Check]) -> dict[str, int]:
    return {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL, SKIP)}
