#!/usr/bin/env python3
"""Render every file kiosk-setup/install.sh writes, into ROOT (mirroring absolute paths).

Standard library only (it runs with Debian's python3 before the project's venv exists):
the templates in ``templates/`` use ``@@{name}`` placeholders (``string.Template`` with
an ``@@`` delimiter, so the shell's and systemd's ``$`` and ``%`` stay as they are).

Prints the rendered paths (relative to ROOT, one a line). Bad arguments exit 2 with a
message naming the argument (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

# The hardening every long-running kiosk unit shares (systemd 252, Debian 12).
HARDENING_COMMON = """\
# Hardening (systemd-analyze security kiosk-*.service: exposure measured by the tests).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateIPC=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
KeyringMode=private
SystemCallArchitectures=native
"""

HARDENING_SERVER = (
    HARDENING_COMMON
    + """\
PrivateDevices=yes
PrivateUsers=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
MemoryDenyWriteExecute=yes
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
DevicePolicy=closed"""
)

HARDENING_ONESHOT = (
    HARDENING_SERVER
    + """
PrivateNetwork=yes
IPAddressDeny=any"""
)

# The screen: Chromium's own sandbox needs user, pid and network namespaces; cage needs
# the GPU and input devices (DRM, /dev/input) through the logind session.
HARDENING_SCREEN = (
    HARDENING_COMMON
    + """\
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=~cgroup ipc mnt uts
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
DevicePolicy=closed
DeviceAllow=char-drm rw
DeviceAllow=char-input r
DeviceAllow=/dev/tty1 rw
DeviceAllow=char-usb_device rw
DeviceAllow=char-video4linux rw
IPAddressDeny=any
IPAddressAllow=localhost"""
)

HARDENING_POWER = (
    HARDENING_COMMON
    + """\
CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_DAC_OVERRIDE
RestrictAddressFamilies=AF_UNIX
RestrictNamespaces=yes
MemoryDenyWriteExecute=yes
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
PrivateNetwork=yes
IPAddressDeny=any
ReadWritePaths=-/sys/class/backlight"""
)

HARDENING_SYSTEMCTL = (
    HARDENING_COMMON
    + """\
PrivateDevices=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_UNIX
RestrictNamespaces=yes
MemoryDenyWriteExecute=yes
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
PrivateNetwork=yes
IPAddressDeny=any"""
)

HARDENING_WATCH = HARDENING_SYSTEMCTL.replace(
    "RestrictAddressFamilies=AF_UNIX", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"
).replace("PrivateNetwork=yes\nIPAddressDeny=any", "IPAddressDeny=any\nIPAddressAllow=localhost")

HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
STORE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
URL_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[^\s\"'\\]*)?$")


class _T(string.Template):
    delimiter = "@@"


def _hours(value: str) -> tuple[int, int]:
    m = HOURS_RE.match(value)
    if not m:
        raise argparse.ArgumentTypeError(f"{value!r}: expected HH:MM-HH:MM, e.g. 08:00-21:00")
    open_, close = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    if open_ == close:
        raise argparse.ArgumentTypeError(f"{value!r}: opening and closing times are equal")
    return open_, close


def _url(value: str) -> str:
    if not URL_RE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: expected an http:// or https:// URL")
    return value.rstrip("/")


def _store_id(value: str) -> str:
    if not STORE_ID_RE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: letters, digits, '.', '_', '-' only")
    return value


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a port number 1-65535")
    return port


def _hhmm(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="render.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, type=Path, help="where to write the files")
    p.add_argument("--role", required=True, choices=("kiosk", "store-server"))
    p.add_argument("--hub-url", required=True, type=_url)
    p.add_argument("--store-id", required=True, type=_store_id)
    p.add_argument("--screen", default="landscape", choices=("portrait", "landscape"))
    p.add_argument("--hours", default="08:00-21:00", type=_hours)
    p.add_argument("--port", default=8000, type=_port)
    return p


def plan(args: argparse.Namespace) -> dict[str, tuple[str, int]]:
    """Every file as {absolute path: (content, mode)}."""
    open_, close = args.hours
    closed_minutes = (open_ - close) % (24 * 60)
    port = args.port
    url = f"http://127.0.0.1:{port}/"
    kiosk = args.role == "kiosk"
    values = {
        "role": args.role,
        "port": str(port),
        "url": url,
        "open_at": _hhmm(open_),
        "close_at": _hhmm(close),
        "off_at": _hhmm(close + 2),
        "backup_at": _hhmm(close + 30),
        "cage_rotate": "-r " if args.screen == "portrait" else "",
    }

    def tpl(name: str, hardening: str = "") -> str:
        text = (TEMPLATES / name).read_text()
        return _T(text).substitute(values, hardening=hardening)

    files: dict[str, tuple[str, int]] = {}
    unit = "/etc/systemd/system/"
    bin_ = "/opt/kiosk/bin/"

    files["/etc/kiosk/kiosk.toml"] = (
        "# Rendered by kiosk-setup/install.sh: read by every `kiosk` command through\n"
        "# KIOSK_CONFIG. The store secret is not here: /etc/kiosk/store-secret (root, 0600),\n"
        "# handed to the server by systemd (LoadCredential=).\n"
        'data = "/var/lib/kiosk"\n'
        f"hub_url = {json.dumps(args.hub_url)}\n"
        f"store_id = {json.dumps(args.store_id)}\n"
        "\n[serve]\n"
        "# 0.0.0.0: staff tablets (and, for a store-server, the kiosks) reach it on the LAN.\n"
        'host = "0.0.0.0"\n'
        f"port = {port}\n",
        0o644,
    )
    files[unit + "kiosk-server.service"] = (tpl("kiosk-server.service", HARDENING_SERVER), 0o644)
    files[bin_ + "kiosk-server"] = (tpl("kiosk-server"), 0o755)
    files[unit + "kiosk-backup.service"] = (tpl("kiosk-backup.service", HARDENING_ONESHOT), 0o644)
    files[unit + "kiosk-backup.timer"] = (tpl("kiosk-backup.timer"), 0o644)

    if kiosk:
        files[unit + "kiosk-screen.service"] = (
            tpl("kiosk-screen.service", HARDENING_SCREEN),
            0o644,
        )
        files["/etc/pam.d/kiosk-screen"] = (tpl("pam-kiosk-screen"), 0o644)
        files[bin_ + "kiosk-browser"] = (tpl("kiosk-browser"), 0o755)
        files[bin_ + "kiosk-screen-power"] = (tpl("kiosk-screen-power"), 0o755)
        for state, at in (("on", values["open_at"]), ("off", values["off_at"])):
            files[unit + f"kiosk-screen-{state}.service"] = (
                _oneshot(
                    f"Kiosk screen {state}",
                    f"{bin_}kiosk-screen-power {state}",
                    HARDENING_POWER,
                    after="kiosk-screen.service kiosk-browser-restart.service",
                ),
                0o644,
            )
            files[unit + f"kiosk-screen-{state}.timer"] = (
                _timer(f"Kiosk screen {state} at {at}", at, f"kiosk-screen-{state}.service"),
                0o644,
            )
        files[unit + "kiosk-browser-restart.service"] = (
            _oneshot(
                "Restart the kiosk browser at closing time (frees slow leaks)",
                "/usr/bin/systemctl try-restart kiosk-screen.service",
                HARDENING_SYSTEMCTL,
            ),
            0o644,
        )
        files[unit + "kiosk-browser-restart.timer"] = (
            _timer(
                f"Restart the kiosk browser at closing time ({values['close_at']})",
                values["close_at"],
                "kiosk-browser-restart.service",
            ),
            0o644,
        )
        files[bin_ + "kiosk-screen-watch"] = (tpl("kiosk-screen-watch"), 0o755)
        files[unit + "kiosk-screen-watch.service"] = (
            _oneshot(
                "Restart the kiosk browser when the page's heartbeat stops",
                f"{bin_}kiosk-screen-watch",
                HARDENING_WATCH,
            ),
            0o644,
        )
        files[unit + "kiosk-screen-watch.timer"] = (
            "# Rendered by kiosk-setup/install.sh.\n"
            "[Unit]\nDescription=Watch the kiosk page's heartbeat every 30 s\n\n"
            "[Timer]\nOnBootSec=2min\nOnUnitActiveSec=30s\nAccuracySec=5s\n\n"
            "[Install]\nWantedBy=timers.target\n",
            0o644,
        )
        files["/etc/chromium/policies/managed/kiosk.json"] = (
            json.dumps(chromium_policy(port), indent=2, sort_keys=True) + "\n",
            0o644,
        )
        files["/etc/udev/rules.d/70-kiosk-input.rules"] = (udev_rules(args.screen), 0o644)

    files["/etc/systemd/journald.conf.d/50-kiosk.conf"] = (
        "# Rendered by kiosk-setup/install.sh: the journal never fills a small SD card.\n"
        "[Journal]\n"
        "Storage=persistent\n"
        "SystemMaxUse=200M\n"
        "SystemKeepFree=1G\n"
        "RuntimeMaxUse=50M\n"
        "MaxRetentionSec=1month\n",
        0o644,
    )
    files["/etc/systemd/timesyncd.conf.d/50-kiosk.conf"] = (
        "# Rendered by kiosk-setup/install.sh: the clock matters (the hub accepts 300 s of\n"
        "# skew on signed requests); systemd-timesyncd is enabled by install.sh.\n"
        "[Time]\n"
        "FallbackNTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org "
        "2.debian.pool.ntp.org 3.debian.pool.ntp.org\n"
        "PollIntervalMaxSec=1024\n",
        0o644,
    )
    # Security upgrades after closing; the reboot (only when one is needed) in the
    # middle of the closed hours.
    upgrade_at = _hhmm(close + 60)
    reboot_at = _hhmm(close + max(closed_minutes // 2, 90))
    files["/etc/apt/apt.conf.d/51kiosk-auto-upgrades"] = (
        'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n',
        0o644,
    )
    files["/etc/apt/apt.conf.d/52kiosk-unattended-upgrades"] = (
        "// Rendered by kiosk-setup/install.sh: security upgrades only, and a reboot (when\n"
        f"// an upgrade needs one) at {reboot_at}, outside opening hours "
        f"{values['open_at']}-{values['close_at']}.\n"
        "Unattended-Upgrade::Origins-Pattern {\n"
        '    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";\n'
        '    "origin=Debian,codename=${distro_codename},label=Debian-Security";\n'
        "};\n"
        'Unattended-Upgrade::Automatic-Reboot "true";\n'
        'Unattended-Upgrade::Automatic-Reboot-WithUsers "true";\n'
        f'Unattended-Upgrade::Automatic-Reboot-Time "{reboot_at}";\n'
        'Unattended-Upgrade::Remove-Unused-Dependencies "true";\n',
        0o644,
    )
    files["/etc/systemd/system/apt-daily-upgrade.timer.d/50-kiosk.conf"] = (
        "# Rendered by kiosk-setup/install.sh: upgrades after closing time, never while\n"
        "# shoppers use the kiosk.\n"
        "[Timer]\n"
        "OnCalendar=\n"
        f"OnCalendar=*-*-* {upgrade_at}:00\n"
        "RandomizedDelaySec=15min\n",
        0o644,
    )
    return files


def _oneshot(description: str, exec_start: str, hardening: str, after: str = "") -> str:
    after_line = f"After={after}\n" if after else ""
    return (
        "# Rendered by kiosk-setup/install.sh.\n"
        f"[Unit]\nDescription={description}\n{after_line}\n"
        f"[Service]\nType=oneshot\nExecStart={exec_start}\n"
        + (hardening + "\n" if hardening else "")
    )


def _timer(description: str, at: str, unit: str) -> str:
    return (
        "# Rendered by kiosk-setup/install.sh (times from --hours).\n"
        f"[Unit]\nDescription={description}\n\n"
        f"[Timer]\nOnCalendar=*-*-* {at}:00\nUnit={unit}\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )


def chromium_policy(port: int) -> dict:
    """Debian's Chromium reads /etc/chromium/policies/managed/*.json."""
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    return {
        # Everything is blocked, chrome://, view-source: and file:// included (the
        # blocklist's "*" covers every scheme), except the local store server.
        "URLBlocklist": ["*", "chrome://*", "view-source:*", "file://*", "javascript://*"],
        "URLAllowlist": origins,
        "DeveloperToolsAvailability": 2,
        # The camera without a prompt for the cart QR page (/panier/scanner). Chromium
        # matches this policy against the page's origin, not its path: the whole local
        # server is allowed, which is the only origin the kiosk can show anyway.
        "VideoCaptureAllowedUrls": origins,
        "VideoCaptureAllowed": True,
        "AudioCaptureAllowed": False,
        "DefaultGeolocationSetting": 2,
        "DefaultNotificationsSetting": 2,
        "DefaultPopupsSetting": 2,
        "TranslateEnabled": False,
        "PasswordManagerEnabled": False,
        "AutofillAddressEnabled": False,
        "AutofillCreditCardEnabled": False,
        "BrowserSignin": 0,
        "SyncDisabled": True,
        "DownloadRestrictions": 3,
        # The kiosk prints reservation tickets (window.print() on [data-print] buttons):
        # printing stays on; --kiosk-printing prints to the default printer, no dialog.
        "PrintingEnabled": True,
        "PrintPreviewUseSystemDefaultPrinter": True,
        "IncognitoModeAvailability": 1,
        "BrowserGuestModeEnabled": False,
        "BrowserAddPersonEnabled": False,
        "EditBookmarksEnabled": False,
        "BookmarkBarEnabled": False,
        "MetricsReportingEnabled": False,
        "SafeBrowsingProtectionLevel": 0,
        "SearchSuggestEnabled": False,
        "SpellcheckEnabled": False,
        "ShowHomeButton": False,
        "HomepageLocation": f"http://127.0.0.1:{port}/",
        "RestoreOnStartup": 4,
        "RestoreOnStartupURLs": [f"http://127.0.0.1:{port}/"],
        "TaskManagerEndProcessEnabled": False,
        "AllowDinosaurEasterEgg": False,
        "PromotionalTabsEnabled": False,
        "HardwareAccelerationModeEnabled": True,
        "BackgroundModeEnabled": False,
        "CommandLineFlagSecurityWarningsEnabled": False,
        "ExtensionInstallBlocklist": ["*"],
    }


def udev_rules(screen: str) -> str:
    head = (
        "# Rendered by kiosk-setup/install.sh.\n"
        "# The barcode scanner is a USB HID keyboard (it types the code and Enter) and\n"
        "# the touch screen a standard HID multitouch device: neither needs a rule.\n"
    )
    if screen != "portrait":
        return head + "# Landscape screen: the touch input needs no rotation.\n"
    return head + (
        "# Portrait screen: cage rotates the output 90 degrees clockwise (cage -r), so\n"
        "# the touch input is rotated the same way (libinput calibration matrix).\n"
        'ACTION=="add|change", KERNEL=="event[0-9]*", ENV{ID_INPUT_TOUCHSCREEN}=="1", '
        'ENV{LIBINPUT_CALIBRATION_MATRIX}="0 -1 1 1 0 0"\n'
    )


def write(root: Path, files: dict[str, tuple[str, int]]) -> list[str]:
    """Write the files under root; a file already identical is left alone (mtime too)."""
    written = []
    for path, (content, mode) in sorted(files.items()):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode()
        if not (target.is_file() and target.read_bytes() == data):
            tmp = target.with_name(target.name + ".kiosk-new")
            tmp.write_bytes(data)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        elif (target.stat().st_mode & 0o7777) != mode:
            os.chmod(target, mode)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for path in write(args.root, plan(args)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
