"""``make screenshots`` (tools/screenshots.py): the real demo, photographed screen by screen.

One run on a small subset (``--only``) of a small demo: the PNGs are there at their
screen sizes, index.html lists them by area with captions and holds no script nor any
link out of its folder, and every server the tool started is stopped when it ends.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.browser


def run_tool(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.screenshots", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_subset_of_screens_is_taken_from_a_real_demo_listed_and_the_demo_stopped(tmp_path):
    out = tmp_path / "shots"
    done = run_tool("--out", str(out), "--only", "kiosk-attract,shop-home", "--products", "60")
    assert done.returncode == 0, done.stderr[-3000:]

    expected = {
        "kiosk-attract-1080x1920.png": (1080, 1920),
        "kiosk-attract-1920x1080.png": (1920, 1080),
        "shop-home-390x844.png": (390, 844),
    }
    assert sorted(p.name for p in out.glob("*.png")) == sorted(expected)
    for name, size in expected.items():
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size == size, name
            # A screen, not a blank page: more than a handful of colours on it.
            assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 20, name

    index = (out / "index.html").read_text(encoding="utf-8")
    for name in expected:
        assert f'<img src="{name}"' in index
    # By area, with captions; nothing else listed (only the subset was asked for).
    assert '<h2 id="kiosk">' in index and '<h2 id="shop">' in index
    assert '<h2 id="hq">' not in index and '<h2 id="counter">' not in index
    assert "Attract screen" in index and index.count("<figure") == 3
    assert "<script" not in index.lower()
    # Links: the pictures beside it, and the areas' headings on the page itself.
    links = re.findall(r'(?:href|src)="([^"]*)"', index)
    assert set(links) == {*expected, "#kiosk", "#shop"}, links

    # Progress on stderr; the demo it started (stores P..P+2, hub P+10) no longer answers.
    assert "[3/3]" in done.stderr
    port = int(re.search(r"starting the demo .* on 127\.0\.0\.1:(\d+)", done.stderr).group(1))
    for offset in (0, 1, 2, 10):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port + offset}/", timeout=2)


def test_an_unknown_screen_is_refused_by_name_before_anything_starts(tmp_path):
    done = run_tool("--out", str(tmp_path / "shots"), "--only", "kiosk-nowhere", timeout=30)
    assert done.returncode != 0
    assert "kiosk-nowhere" in done.stderr and "kiosk-attract" in done.stderr
    assert "starting the demo" not in done.stderr


def test_a_screen_that_cannot_be_reached_fails_the_run_naming_it_and_why(tmp_path):
    """A demo whose kiosk does not answer (nothing listens on its port): exit status 1,
    the screen and the reason on stderr, and the index says it was not taken."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    store = {"kiosk_url": dead, "sample_barcodes": [], "ready_orders": []}
    manifest = {
        "stores": [store],
        "hub": {"url": dead, "shop_url": dead + "shop/"},
        "logins": [],
        "hq": {"logins": []},
        "sample_barcodes": [],
    }
    (tmp_path / "demo.json").write_text(json.dumps(manifest))
    out = tmp_path / "shots"
    done = run_tool(
        "--out",
        str(out),
        "--only",
        "kiosk-attract-1080x1920",
        "--demo-json",
        str(tmp_path / "demo.json"),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert re.search(r"FAILED: kiosk-attract-1080x1920\.png: .*ERR_CONNECTION_REFUSED", done.stderr)
    assert not list(out.glob("*.png"))
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "kiosk-attract-1080x1920.png (failed)" in index and "<img" not in index
