"""systemd's watchdog, for real: Debian's systemd runs as PID 1 of a private PID and
mount namespace (as in a container: a tmpfs /run, a units folder mounted over
/etc/systemd/system), and supervises the real ``kiosk serve`` with the rendered
kiosk-server unit's supervision settings (Type=notify, NotifyAccess, Restart; WatchdogSec
and RestartSec shortened so the test takes seconds). A server that stops answering (its
database wedged by another process holding every WAL lock) is killed and restarted by
systemd; a healthy one is left alone.

The rendered unit's hardening and users are checked elsewhere (systemd-analyze verify and
security in test_kiosk_setup_render.py); a namespace is no booted box, so this test
copies only the supervision lines.
"""

from __future__ import annotations

import configparser
import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from .conftest import ROOT, free_port
from .kiosk_setup_chromium import render_kiosk

SYSTEMD = "/lib/systemd/systemd"
SUPERVISION = ("Type", "NotifyAccess", "Restart")
WATCHDOG_SEC = 3


def _rendered_service(root: Path) -> dict[str, str]:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keep systemd's key case
    unit.read(root / "etc/systemd/system/kiosk-server.service")
    return dict(unit["Service"])


def _boot(url: str) -> str | None:
    """The running server's boot id (a new one each start), or None if it does not answer."""
    try:
        return requests.get(url + "/kiosk/heartbeat", timeout=1).headers.get("X-Kiosk-Boot")
    except requests.RequestException:
        return None


def _wait(what: str, condition, seconds: float, console):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} not within {seconds} s; systemd said:\n{console.text()[-3000:]}")


class Console:
    """A pseudo-terminal mounted over the namespace's /dev/console, where systemd as PID 1
    writes its log (it wants a terminal there); everything said is kept."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self.slave = slave
        self._text = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self._text.extend(chunk)

    def text(self) -> str:
        return ANSI.sub("", bytes(self._text).decode(errors="replace"))

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def systemd(tmp_path):
    """Start systemd as PID 1 of a fresh PID and mount namespace on ``units``; killed at
    the end, and with it (the kernel's rule for a namespace's init) all it started."""
    assert os.geteuid() == 0, "systemd as a namespace's PID 1 needs root"
    assert Path(SYSTEMD).exists(), "Debian's systemd package is not installed"
    units = tmp_path / "units"
    units.mkdir()
    console = Console()
    procs: list[subprocess.Popen] = []

    def start(target: str) -> None:
        script = (
            'mount -t tmpfs tmpfs /run && mount --bind "$0" /etc/systemd/system && '
            'mount --bind "$1" /dev/console && '
            f"exec env container=kiosk-test {SYSTEMD} --system --unit={target} "
            "--log-target=console --log-level=info --show-status=no"
        )
        procs.append(
            subprocess.Popen(
                [
                    "unshare",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--mount",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    str(units),
                    console.path,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    yield units, console, start
    for proc in procs:  # unshare gone: its child, PID 1, gets SIGKILL (--kill-child)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    console.close()


def test_systemd_restarts_a_server_that_stops_answering(systemd, store_data, tmp_path):
    units, console, start = systemd
    rendered = _rendered_service(render_kiosk(tmp_path / "root", 8080))
    assert rendered["Type"] == "notify" and rendered["Restart"] == "always", rendered
    assert int(rendered["WatchdogSec"]) > 0, rendered

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    supervision = "\n".join(f"{key}={rendered[key]}" for key in SUPERVISION)
    (units / "kiosk-server.service").write_text(
        f"""[Unit]
Description=kiosk serve under the rendered unit's supervision
DefaultDependencies=no
StartLimitIntervalSec=0

[Service]
{supervision}
WatchdogSec={WATCHDOG_SEC}
RestartSec=1
TimeoutStartSec=30
WorkingDirectory={ROOT}
Environment=PYTHONUNBUFFERED=1
ExecStart={sys.executable} -m app serve --data {store_data} --port {port}
"""
    )
    (units / "kiosk-test.target").write_text(
        "[Unit]\nDescription=kiosk test\nDefaultDependencies=no\nWants=kiosk-server.service\n"
    )
    start("kiosk-test.target")

    first = _wait("the server under systemd", lambda: _boot(url), 60, console)
    # Healthy, it pings: systemd leaves it alone for well past WatchdogSec.
    time.sleep(0.5)
    deadline = time.monotonic() + 2.5 * WATCHDOG_SEC
    while time.monotonic() < deadline:
        boot = _boot(url)
        if boot is None:  # one answer slower than 1 s on a loaded box is not a restart:
            boot = _wait("an answer", lambda: _boot(url), 10, console)  # who answers?
        assert boot == first, f"systemd restarted a healthy server:\n{console.text()[-3000:]}"
        assert "Watchdog timeout" not in console.text(), console.text()[-3000:]
        time.sleep(0.5)
    assert "Watchdog timeout" not in console.text()

    fd = os.open(str(store_data / "kiosk.db-shm"), os.O_RDWR)
    try:
        # SQLite's WAL locks (bytes 120-127 of -shm) held: no reader can start, /healthz
        # blocks, the pings stop, and systemd kills the server after WatchdogSec.
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120)
        _wait(
            "systemd's watchdog",
            lambda: "kiosk-server.service: Failed with result 'watchdog'" in console.text(),
            30,
            console,
        )
    finally:
        os.close(fd)
    # systemd started it again: a new server (new boot id) answers.
    second = _wait("the restarted server", lambda: (b := _boot(url)) != first and b, 60, console)
    assert second != first
    text = console.text()
    assert "kiosk-server.service: Watchdog timeout" in text, text[-3000:]
    assert "kiosk-server.service: Scheduled restart job" in text, text[-3000:]
