"""The kiosk's screen, as a box runs it, without a screen: the cage Wayland compositor
(headless wlroots backend) as an unprivileged user, running the rendered
``/opt/kiosk/bin/kiosk-browser`` (Chromium in kiosk mode, Wayland) under the rendered
managed policies (mounted over /etc/chromium in a private mount namespace) on a real
store server; ``grim`` takes a screenshot of cage's output, which must show the
attract screen (compared with a Playwright screenshot of the same page, same size).

Needs Debian's ``cage``, ``grim`` and ``xwayland`` (cage 0.1.4 will not start without
Xwayland) besides ``chromium``: the test fails, never skips, when they are missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import ARTIFACTS
from .kiosk_setup_chromium import in_mount_namespace, render_kiosk, stop

PACKAGES = {"cage": "/usr/bin/cage", "grim": "/usr/bin/grim", "xwayland": "/usr/bin/Xwayland"}
USERS = ("postgres", "kiosk-test")


def _unprivileged_user() -> pwd.struct_passwd:
    for name in USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USERS[-1]],
        check=True,
    )
    return pwd.getpwnam(USERS[-1])


@pytest.fixture
def screen_dir():
    """A private directory an unprivileged user can reach (tmp_path is root's 0700)."""
    assert os.geteuid() == 0, "this test runs cage as another user: run it as root"
    missing = [pkg for pkg, path in PACKAGES.items() if not Path(path).exists()]
    assert not missing, f"`apt-get install -y {' '.join(missing)}` (Debian packages) first"
    user = _unprivileged_user()
    top = Path(tempfile.mkdtemp(prefix="kiosk-cage-"))
    top.chmod(0o755)
    for sub in ("xdg", "runtime", "home"):
        (top / sub).mkdir(mode=0o700)
        os.chown(top / sub, user.pw_uid, user.pw_gid)
    yield user, top
    shutil.rmtree(top, ignore_errors=True)


def _colours(image, step: int = 32) -> Counter:
    """Pixel counts per colour, quantised to ``step`` per channel (anti-aliasing aside)."""
    counts: Counter = Counter()
    for n, rgb in image.convert("RGB").getcolors(1 << 24):
        counts[tuple(c // step for c in rgb)] += n
    return counts


def _window(image):
    """The box of what is drawn on cage's black background (Chromium's window)."""
    return image.point(lambda v: 255 if v > 8 else 0).convert("L").getbbox()


def _drawn(image) -> bool:
    """Chromium drew a page: its window is not one flat colour (white before paint)."""
    box = _window(image)
    return bool(box) and len(image.crop(box).getcolors(1 << 24) or ()) > 16


def test_cage_shows_the_attract_screen(screen_dir, store_server, tmp_path):
    from PIL import Image

    user, top = screen_dir
    port = int(store_server.url.rsplit(":", 1)[1])
    root = render_kiosk(tmp_path / "root", port)
    script = top / "kiosk-browser"
    shutil.copy(root / "opt/kiosk/bin/kiosk-browser", script)
    script.chmod(0o755)
    etc = top / "etc-chromium"
    shutil.copytree(root / "etc/chromium", etc)
    subprocess.run(["chmod", "-R", "a+rX", str(etc)], check=True)

    # No GPU here: --disable-gpu, the Debian way (/usr/bin/chromium sources
    # /etc/chromium.d/*), in the namespace only; the rendered script stays as it is.
    flags = top / "chromium.d"
    shutil.copytree("/etc/chromium.d", flags)
    (flags / "zz-test-no-gpu").write_text(
        'export CHROMIUM_FLAGS="$CHROMIUM_FLAGS --disable-gpu --disable-gpu-compositing"\n'
    )
    subprocess.run(["chmod", "-R", "a+rX", str(flags)], check=True)

    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(top / "home"), "XDG_RUNTIME_DIR": str(top / "xdg"),
        "RUNTIME_DIRECTORY": str(top / "runtime"), "WLR_BACKENDS": "headless",
        "WLR_LIBINPUT_NO_DEVICES": "1", "WLR_RENDERER": "pixman",
    }  # fmt: skip
    as_user = ["runuser", "-u", user.pw_name, "--", "env", "-i"]
    as_user += [f"{k}={v}" for k, v in env.items()]
    log = (tmp_path / "cage.log").open("wb")
    cage = subprocess.Popen(
        in_mount_namespace(
            etc, [*as_user, "cage", "--", "bash", str(script)], {"/etc/chromium.d": flags}
        ),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=top,
    )  # fmt: skip
    shot = top / "xdg" / "screen.png"
    display = top / "xdg" / "wayland-0"
    grim = [*as_user, f"WAYLAND_DISPLAY={display.name}", "grim", str(shot)]
    image = None
    try:
        first_shot, deadline = time.monotonic() + 14, time.monotonic() + 45
        while time.monotonic() < deadline:
            assert cage.poll() is None, (tmp_path / "cage.log").read_text()[-3000:]
            time.sleep(1)
            if not display.exists() or time.monotonic() < first_shot:
                continue  # no screenshot before Chromium had time to draw its first page
            if subprocess.run(grim, timeout=10).returncode == 0:
                image = Image.open(shot).convert("RGB")
                if _drawn(image):
                    time.sleep(2)  # let the page settle, then the screenshot kept
                    subprocess.run(grim, timeout=10, check=True)
                    image = Image.open(shot).convert("RGB")
                    break
    finally:
        stop(cage)
        log.close()
    ARTIFACTS.mkdir(exist_ok=True)
    image.save(ARTIFACTS / "kiosk-setup-cage.png")

    box = _window(image)
    assert box, "cage's screen is all black"
    window = image.crop(box)
    assert _drawn(image), (
        f"Chromium's window {box} is one flat colour {_colours(window)} (white before its "
        "first paint): see test-artifacts/kiosk-setup-cage.png"
    )

    from playwright.sync_api import sync_playwright

    from .conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:  # started after cage: one Chromium at a time
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": window.width, "height": window.height})
        page.goto(store_server.url + "/")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "kiosk-setup-cage-expected.png"))
        browser.close()
    expected = Image.open(ARTIFACTS / "kiosk-setup-cage-expected.png").convert("RGB")
    # The attract screen's own colours (its background first) fill cage's window.
    ours, theirs = _colours(window), _colours(expected)
    assert ours.most_common(1)[0][0] == theirs.most_common(1)[0][0], (ours, theirs)
    top3 = [c for c, _ in theirs.most_common(3)]
    assert sum(ours[c] for c in top3) > 0.8 * window.width * window.height, (ours, theirs)
