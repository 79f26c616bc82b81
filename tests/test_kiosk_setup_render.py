"""kiosk-setup/install.sh --root DIR: every file it would write, rendered and checked
(content, idempotence, argument errors), the units through ``systemd-analyze verify``
and ``systemd-analyze security --offline=yes`` (exposure <= 2.5), and every script
through ``shellcheck``. Needs the Debian packages systemd and shellcheck."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "kiosk-setup" / "install.sh"
UNITS = "etc/systemd/system"


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "store-secret"
    path.write_text("00ff" * 16 + "\n")
    return path


def install(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(INSTALL), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def render(root: Path, secret: Path, role: str, *extra: str) -> Path:
    result = install(
        "--role",
        role,
        "--hub-url",
        "https://hub.example.com",
        "--store-id",
        "st-1",
        "--store-secret-file",
        secret,
        "--root",
        root,
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def kiosk_root(tmp_path_factory, secret_file) -> Path:
    root = tmp_path_factory.mktemp("kiosk")
    return render(root, secret_file, "kiosk", "--screen", "portrait", "--hours", "09:30-19:00")


@pytest.fixture(scope="module")
def server_root(tmp_path_factory, secret_file) -> Path:
    return render(tmp_path_factory.mktemp("server"), secret_file, "store-server")


def unit_files(root: Path) -> list[Path]:
    return sorted(
        p for p in (root / UNITS).iterdir() if p.suffix in (".service", ".timer") and p.is_file()
    )


def test_kiosk_role_renders_every_file(kiosk_root):
    files = set(tree(kiosk_root))
    expected = {
        "etc/kiosk/kiosk.toml",
        f"{UNITS}/kiosk-server.service",
        f"{UNITS}/kiosk-backup.service",
        f"{UNITS}/kiosk-backup.timer",
        f"{UNITS}/kiosk-screen.service",
        f"{UNITS}/kiosk-screen-on.service",
        f"{UNITS}/kiosk-screen-on.timer",
        f"{UNITS}/kiosk-screen-off.service",
        f"{UNITS}/kiosk-screen-off.timer",
        f"{UNITS}/kiosk-browser-restart.service",
        f"{UNITS}/kiosk-browser-restart.timer",
        f"{UNITS}/apt-daily-upgrade.timer.d/50-kiosk.conf",
        "etc/pam.d/kiosk-screen",
        "etc/chromium/policies/managed/kiosk.json",
        "etc/udev/rules.d/70-kiosk-input.rules",
        "etc/systemd/journald.conf.d/50-kiosk.conf",
        "etc/systemd/timesyncd.conf.d/50-kiosk.conf",
        "etc/apt/apt.conf.d/51kiosk-auto-upgrades",
        "etc/apt/apt.conf.d/52kiosk-unattended-upgrades",
        "opt/kiosk/bin/kiosk-server",
        "opt/kiosk/bin/kiosk-browser",
        "opt/kiosk/bin/kiosk-screen-power",
        "opt/kiosk/bin/kiosk-screen-watch",
        f"{UNITS}/kiosk-screen-watch.service",
        f"{UNITS}/kiosk-screen-watch.timer",
    }
    assert files == expected
    # The secret is never copied into a dry run.
    assert not any("secret" in name and "kiosk.toml" not in name for name in files)
    for script in (kiosk_root / "opt/kiosk/bin").iterdir():
        assert script.stat().st_mode & 0o777 == 0o755


def test_store_server_role_has_no_screen(server_root):
    files = set(tree(server_root))
    assert f"{UNITS}/kiosk-server.service" in files
    assert f"{UNITS}/kiosk-backup.timer" in files
    assert not [f for f in files if "screen" in f or "chromium" in f or "browser" in f]
    assert "etc/udev/rules.d/70-kiosk-input.rules" not in files


def test_config_file(kiosk_root):
    config = tomllib.loads((kiosk_root / "etc/kiosk/kiosk.toml").read_text())
    assert config == {
        "data": "/var/lib/kiosk",
        "hub_url": "https://hub.example.com",
        "store_id": "st-1",
        "serve": {"host": "0.0.0.0", "port": 8000},
    }
    # The app reads it as defaults for `kiosk serve`.
    from app.store.config import load_default_map

    serve = load_default_map(kiosk_root / "etc/kiosk/kiosk.toml")["serve"]
    assert serve["hub_url"] == "https://hub.example.com" and serve["port"] == 8000


def test_server_unit(kiosk_root):
    text = (kiosk_root / UNITS / "kiosk-server.service").read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=always",
        "User=kiosk",
        "Environment=KIOSK_CONFIG=/etc/kiosk/kiosk.toml",
        "LoadCredential=store-secret:/etc/kiosk/store-secret",
        "ExecStart=/opt/kiosk/bin/kiosk-server",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/kiosk",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "LockPersonality=yes",
        "RestrictNamespaces=yes",
    ):
        assert line in text.splitlines(), line
    wrapper = (kiosk_root / "opt/kiosk/bin/kiosk-server").read_text()
    assert '"${CREDENTIALS_DIRECTORY:-/nonexistent}/store-secret"' in wrapper
    assert "exec /opt/kiosk/venv/bin/kiosk serve --data /var/lib/kiosk" in wrapper


def test_screen_unit_and_browser(kiosk_root):
    unit = (kiosk_root / UNITS / "kiosk-screen.service").read_text().splitlines()
    for line in (
        "ExecStart=/usr/bin/cage -d -r -- /opt/kiosk/bin/kiosk-browser",  # portrait
        "TTYPath=/dev/tty1",
        "Conflicts=getty@tty1.service",
        "Environment=WLR_LIBINPUT_NO_DEVICES=1",
        "RuntimeDirectory=kiosk-screen",
        "Restart=always",
        "PAMName=kiosk-screen",
    ):
        assert line in unit, line
    browser = (kiosk_root / "opt/kiosk/bin/kiosk-browser").read_text()
    for flag in (
        '--kiosk "$url"',
        '--user-data-dir="$profile"',
        "--noerrdialogs",
        "--disable-translate",
        "--no-first-run",
        "--password-store=basic",
        "--kiosk-printing",
    ):
        assert flag in browser, flag
    assert 'url="${KIOSK_URL:-http://127.0.0.1:8000/}"' in browser
    assert 'profile="${RUNTIME_DIRECTORY:-/run/kiosk-screen}/profile"' in browser


def test_landscape_has_no_rotation(tmp_path, secret_file):
    root = render(tmp_path, secret_file, "kiosk")
    unit = (root / UNITS / "kiosk-screen.service").read_text()
    assert "ExecStart=/usr/bin/cage -d -- /opt/kiosk/bin/kiosk-browser" in unit
    rules = (root / "etc/udev/rules.d/70-kiosk-input.rules").read_text()
    assert "LIBINPUT_CALIBRATION_MATRIX" not in rules


def test_timers_follow_the_hours(kiosk_root):
    def calendar(name):
        text = (kiosk_root / UNITS / name).read_text()
        return re.search(r"^OnCalendar=(.+)$", text, re.M)[1]

    assert calendar("kiosk-screen-on.timer") == "*-*-* 09:30:00"
    assert calendar("kiosk-screen-off.timer") == "*-*-* 19:02:00"
    assert calendar("kiosk-browser-restart.timer") == "*-*-* 19:00:00"
    assert calendar("kiosk-backup.timer") == "*-*-* 19:30:00"
    assert (
        "ExecStart=/opt/kiosk/venv/bin/kiosk backup --data /var/lib/kiosk"
        in (kiosk_root / UNITS / "kiosk-backup.service").read_text().splitlines()
    )
    upgrades = (kiosk_root / "etc/apt/apt.conf.d/52kiosk-unattended-upgrades").read_text()
    reboot = re.search(r'Automatic-Reboot-Time "(\d\d):(\d\d)"', upgrades)
    minutes = int(reboot[1]) * 60 + int(reboot[2])
    assert not 9 * 60 + 30 <= minutes < 19 * 60, "reboot inside opening hours"
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in upgrades
    upgrade_timer = (kiosk_root / UNITS / "apt-daily-upgrade.timer.d/50-kiosk.conf").read_text()
    assert "OnCalendar=*-*-* 20:00:00" in upgrade_timer.splitlines()


def test_hours_across_midnight(tmp_path, secret_file):
    root = render(tmp_path, secret_file, "kiosk", "--hours", "10:00-23:59")
    text = (root / UNITS / "kiosk-screen-off.timer").read_text()
    assert "OnCalendar=*-*-* 00:01:00" in text.splitlines()


def test_chromium_policy(kiosk_root):
    policy = json.loads((kiosk_root / "etc/chromium/policies/managed/kiosk.json").read_text())
    assert "*" in policy["URLBlocklist"]
    assert "chrome://*" in policy["URLBlocklist"] and "view-source:*" in policy["URLBlocklist"]
    assert policy["URLAllowlist"] == ["http://127.0.0.1:8000", "http://localhost:8000"]
    assert policy["VideoCaptureAllowedUrls"] == policy["URLAllowlist"]
    assert policy["DeveloperToolsAvailability"] == 2
    assert policy["TranslateEnabled"] is False
    assert policy["PasswordManagerEnabled"] is False
    assert policy["DownloadRestrictions"] == 3
    assert policy["PrintingEnabled"] is True  # the kiosk prints reservation tickets
    assert policy["AutofillAddressEnabled"] is False
    assert policy["AutofillCreditCardEnabled"] is False
    assert policy["BrowserSignin"] == 0
    assert policy["SyncDisabled"] is True


def test_portrait_touch_rotation(kiosk_root):
    rules = (kiosk_root / "etc/udev/rules.d/70-kiosk-input.rules").read_text()
    assert 'ENV{LIBINPUT_CALIBRATION_MATRIX}="0 -1 1 1 0 0"' in rules
    assert 'ENV{ID_INPUT_TOUCHSCREEN}=="1"' in rules


def test_journald_and_timesyncd(kiosk_root):
    journald = (kiosk_root / "etc/systemd/journald.conf.d/50-kiosk.conf").read_text()
    assert "SystemMaxUse=200M" in journald.splitlines()
    timesyncd = (kiosk_root / "etc/systemd/timesyncd.conf.d/50-kiosk.conf").read_text()
    assert timesyncd.startswith("#") and "[Time]" in timesyncd


def test_second_render_is_identical(tmp_path, secret_file):
    args = ("--screen", "portrait", "--hours", "07:00-22:00", "--port", "8080")
    root = render(tmp_path, secret_file, "kiosk", *args)
    first = tree(root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    render(root, secret_file, "kiosk", *args)
    assert tree(root) == first
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes
    assert "http://127.0.0.1:8080" in first["etc/chromium/policies/managed/kiosk.json"].decode()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"--role": "tablet"}, "--role"),
        ({"--role": None}, "--role"),
        ({"--hub-url": "hub.example.com"}, "--hub-url"),
        ({"--hub-url": None}, "--hub-url"),
        ({"--store-id": "st 1;rm"}, "--store-id"),
        ({"--store-secret-file": "/nonexistent/secret"}, "--store-secret-file"),
        ({"--screen": "sideways"}, "--screen"),
        ({"--hours": "8-21"}, "--hours"),
        ({"--hours": "08:00-25:00"}, "--hours"),
        ({"--port": "0"}, "--port"),
        ({"--bogus": "1"}, "--bogus"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, secret_file, change, named):
    args = {
        "--role": "kiosk",
        "--hub-url": "https://hub.example.com",
        "--store-id": "st-1",
        "--store-secret-file": str(secret_file),
        "--root": str(tmp_path / "root"),
    }
    args.update(change)
    argv = [x for k, v in args.items() if v is not None for x in (k, v)]
    result = install(*argv)
    assert result.returncode == 2, result
    assert named in result.stderr.splitlines()[0]
    assert not (tmp_path / "root").exists()


def test_secret_file_must_hold_hex(tmp_path):
    bad = tmp_path / "secret"
    bad.write_text("not hex\n")
    result = install(
        "--role",
        "kiosk",
        "--hub-url",
        "https://h.example",
        "--store-id",
        "st-1",
        "--store-secret-file",
        bad,
        "--root",
        tmp_path / "root",
    )
    assert result.returncode == 2 and "--store-secret-file" in result.stderr


def test_real_install_needs_root_or_dry_run(tmp_path, secret_file):
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0":
        result = install("--uninstall", "--root", tmp_path)  # refused before touching anything
        assert result.returncode == 2 and "--uninstall" in result.stderr
    else:
        result = install(
            "--role",
            "kiosk",
            "--hub-url",
            "https://h.example",
            "--store-id",
            "st-1",
            "--store-secret-file",
            secret_file,
        )
        assert result.returncode == 1 and "root" in result.stderr


def _systemd_analyze(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", *map(str, args)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("role", ["kiosk", "store-server"])
def test_systemd_analyze_verify(role, kiosk_root, server_root):
    root = kiosk_root if role == "kiosk" else server_root
    units = unit_files(root)
    result = _systemd_analyze("verify", "--man=no", *units)
    # The only complaints allowed: the installer's own programs, not installed on the
    # test machine (/opt/kiosk/bin/* are rendered, /opt/kiosk/venv is the project).
    missing = set()
    for line in (result.stdout + result.stderr).splitlines():
        m = re.match(r"^[\w@.-]+: Command (/\S+) is not executable: No such file", line)
        assert m, line
        missing.add(m[1])
    for path in missing:
        assert path.startswith("/opt/kiosk/"), path
        if path.startswith("/opt/kiosk/bin/"):
            assert (root / path.lstrip("/")).is_file(), path
    assert missing <= {
        "/opt/kiosk/bin/kiosk-server",
        "/opt/kiosk/bin/kiosk-screen-power",
        "/opt/kiosk/bin/kiosk-screen-watch",
        "/opt/kiosk/venv/bin/kiosk",
    }


def _exposure(unit: Path) -> float:
    result = _systemd_analyze("security", "--offline=yes", "--threshold=25", unit)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert m, result.stdout + result.stderr
    # systemd 252: --threshold is the exposure x 10 (default 100); non-zero exit above it.
    assert result.returncode == 0, f"{unit.name}: {m[0]}"
    return float(m[1])


@pytest.mark.parametrize("role", ["kiosk", "store-server"])
def test_systemd_analyze_security(role, kiosk_root, server_root):
    root = kiosk_root if role == "kiosk" else server_root
    services = [u for u in unit_files(root) if u.suffix == ".service"]
    assert services
    exposure = {u.name: _exposure(u) for u in services}
    assert all(value <= 2.5 for value in exposure.values()), exposure
    assert exposure["kiosk-server.service"] <= 1.5


def test_threshold_is_enforced(tmp_path):
    """--threshold really fails a unit above it (so the exposure test can fail)."""
    unit = tmp_path / "loose.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    result = _systemd_analyze("security", "--offline=yes", "--threshold=25", unit)
    assert result.returncode != 0


def test_shellcheck_every_script(kiosk_root):
    assert shutil.which("shellcheck"), "apt-get install shellcheck"
    scripts = [INSTALL, *sorted((kiosk_root / "opt/kiosk/bin").iterdir())]
    result = subprocess.run(
        ["shellcheck", "--shell=bash", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_render_py_validates_too(tmp_path):
    result = subprocess.run(
        [
            "python3",
            str(REPO / "kiosk-setup/render.py"),
            "--root",
            str(tmp_path),
            "--role",
            "kiosk",
            "--hub-url",
            "https://h.example",
            "--store-id",
            "st-1",
            "--hours",
            "9-5",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "--hours" in result.stderr


class _Heartbeat(BaseHTTPRequestHandler):
    answer = (200, 500.0)

    def do_GET(self):  # noqa: N802
        status, uptime = self.answer
        body = json.dumps({"ok": status == 200, "age": 99.0, "uptime": uptime}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "uptime", "restarted"),
    [(503, 500.0, True), (200, 500.0, False), (503, 30.0, False)],
)
def test_screen_watch_restarts_a_silent_browser(tmp_path, secret_file, status, uptime, restarted):
    """kiosk-screen-watch against a heartbeat endpoint (503: no beat for max_age), with
    systemctl stubbed: the browser is restarted only when the page stopped beating and
    the server has been up long enough to judge."""
    assert shutil.which("curl"), "apt-get install curl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Heartbeat)
    _Heartbeat.answer = (status, uptime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = render(
            tmp_path / "root", secret_file, "kiosk", "--port", str(server.server_address[1])
        )
        stubs = tmp_path / "bin"
        stubs.mkdir()
        log = tmp_path / "systemctl.log"
        (stubs / "systemctl").write_text(
            "#!/bin/bash\n"
            f'echo "$*" >>{log}\n'
            'if [[ "$1" == show ]]; then date -d "-10 min" "+%a %Y-%m-%d %H:%M:%S %Z"; fi\n'
        )
        (stubs / "systemctl").chmod(0o755)
        result = subprocess.run(
            [str(root / "opt/kiosk/bin/kiosk-screen-watch")],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": f"{stubs}:/usr/bin:/bin"},
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert ("restart kiosk-screen.service" in calls) is restarted, calls
