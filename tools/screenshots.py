"""``make screenshots``: every screen of the real demo, photographed, with an index page.

Starts ``kiosk demo`` on free 127.0.0.1 ports with its data in a temporary directory,
reads its demo.json (URLs, demo logins), walks each area's screens in Debian's Chromium
through Playwright (tools/screens.py says how each screen is reached) and writes
``<area>-<screen>-<WxH>.png`` and ``index.html`` into the output folder. Everything it
started is stopped at the end, on error or Ctrl-C too.

    python -m tools.screenshots --out screenshots
    python -m tools.screenshots --only kiosk-attract,shop-home --products 60

Exit status: 0 when every screen asked for was taken or is listed as missing (its
feature not in the product yet, said on stderr); 1 when a screen could not be reached
(which one and why, on stderr); 2 when the demo could not start.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.screens import AREAS, Area, Missing, Screen, Size, demo_facts

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
PORT_OFFSETS = (0, 1, 2, 10)  # kiosk demo --port P: stores P, P+1, P+2, the hub P+10
DEMO_TIMEOUT_S = 300


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Shot:
    area: Area
    screen: Screen
    size: Size
    status: str = "pending"  # taken | missing | failed
    reason: str = ""

    @property
    def key(self) -> str:
        return f"{self.area.name}-{self.screen.name}"

    @property
    def filename(self) -> str:
        return f"{self.key}-{self.size.label}.png"


def plan(only: list[str] | None) -> list[Shot]:
    """Every screen at every size of its area; ``only``: names like ``kiosk-attract``
    (every size) or ``kiosk-attract-1080x1920`` (one)."""
    shots = [Shot(a, s, z) for a in AREAS for z in a.sizes for s in a.screens]
    if not only:
        return shots
    wanted = set(only)
    unknown = wanted - {s.key for s in shots} - {s.filename[:-4] for s in shots}
    if unknown:
        names = ", ".join(sorted({s.key for s in shots}))
        raise SystemExit(f"unknown screen(s) {', '.join(sorted(unknown))}; known: {names}")
    return [s for s in shots if s.key in wanted or s.filename[:-4] in wanted]


# --- The demo ------------------------------------------------------------------------


def free_base_port() -> int:
    """A port P with P+0, +1, +2 and +10 free on loopback (below the ephemeral range)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000)
        try:
            with contextlib.ExitStack() as stack:
                for offset in PORT_OFFSETS:
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free run of ports on 127.0.0.1")


class Demo:
    """``kiosk demo`` as a child process in its own process group, stopped by its pid."""

    def __init__(self, data: Path, products: int) -> None:
        self.data = data
        self.products = products
        self.proc: subprocess.Popen | None = None
        self.log_path = data.parent / "demo.log"

    def start(self) -> dict:
        for attempt in range(3):
            port = free_base_port()
            say(f"starting the demo ({self.products} products) on 127.0.0.1:{port}…")
            with self.log_path.open("w") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "app", "demo", "--data", str(self.data)]
                    + ["--port", str(port), "--products", str(self.products)],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True,
                )
            manifest = self._wait_manifest()
            if manifest is not None:
                return manifest
            if "is not free" in self.log() and attempt < 2:
                say("  a port was taken meanwhile: trying others")
                continue
            raise DemoError(f"the demo stopped before it was ready:\n{self.log()[-3000:]}")
        raise DemoError("no free ports for the demo")

    def _wait_manifest(self) -> dict | None:
        assert self.proc is not None
        path = self.data / "demo.json"
        started = time.monotonic()
        shown = started
        while time.monotonic() - started < DEMO_TIMEOUT_S:
            if path.exists():
                with contextlib.suppress(ValueError):
                    manifest = json.loads(path.read_text())
                    say(f"  demo ready in {time.monotonic() - started:.0f} s")
                    return manifest
            if self.proc.poll() is not None:
                return None
            if time.monotonic() - shown > 10:
                shown = time.monotonic()
                say(f"  still starting ({shown - started:.0f} s): seeding, first sync…")
            time.sleep(0.3)
        raise DemoError(f"the demo was not ready in {DEMO_TIMEOUT_S} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (the demo stops its servers, stores then hub); SIGKILL to its process
        group, by its id, if it has not within 30 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        say("stopping the demo…")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class DemoError(RuntimeError):
    pass


# --- Taking the screens --------------------------------------------------------------


def settle(page) -> None:
    """Let the screen finish drawing: fonts, pictures in sight, htmx answers."""
    with contextlib.suppress(Exception):
        page.wait_for_load_state("load", timeout=10000)
    with contextlib.suppress(Exception):
        page.wait_for_function(
            """() => document.fonts.status === 'loaded' &&
                 [...document.images].every(i => i.complete ||
                   i.getBoundingClientRect().top > window.innerHeight) &&
                 !document.querySelector('.htmx-request')""",
            timeout=5000,
        )
    page.wait_for_timeout(300)


def take(shots: list[Shot], demo: dict, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    groups: dict[tuple[str, str], list[Shot]] = {}
    for shot in shots:
        groups.setdefault((shot.area.name, shot.size.label), []).append(shot)
    done = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for group in groups.values():
                size = group[0].size
                context = browser.new_context(
                    viewport={"width": size.width, "height": size.height},
                    locale="fr-FR",
                    is_mobile=size.mobile,
                    has_touch=size.touch,
                )
                context.set_default_timeout(15000)
                page = context.new_page()
                page.on("response", lambda r, p=page: _note_navigation(p, r))
                try:
                    for shot in group:
                        done += 1
                        say(f"[{done}/{len(shots)}] {shot.filename}")
                        _take_one(page, shot, demo, out)
                finally:
                    context.close()
        finally:
            browser.close()


def _note_navigation(page, response) -> None:
    """Remember the status of the page's last navigation (an error page is no screen)."""
    if response.request.is_navigation_request() and response.frame == page.main_frame:
        page.last_status = response.status


def _take_one(page, shot: Shot, demo: dict, out: Path) -> None:
    try:
        shot.screen.step(page, demo)
        settle(page)
        status = getattr(page, "last_status", 200)
        if status >= 400:
            raise RuntimeError(f"the server answered {status}")
        page.screenshot(path=str(out / shot.filename), animations="disabled")
        shot.status = "taken"
    except Missing as exc:
        shot.status, shot.reason = "missing", str(exc)
        say(f"  missing: {shot.reason}")
    except Exception as exc:  # noqa: BLE001 (any failure is reported with its screen)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        status = getattr(page, "last_status", 200)
        answered = f"; the server answered {status}" if status >= 400 else ""
        shot.status, shot.reason = "failed", f"{first} (at {page.url}{answered})"
        say(f"  FAILED: {shot.reason}")


# --- The index page ------------------------------------------------------------------

STYLE = """
body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
.grid { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
figure { margin: 0; max-width: 360px; }
figure img { max-width: 100%; height: auto; border: 1px solid #bbb; }
figcaption small { color: #555; }
.missing, .failed { padding: .5rem 1rem; border-radius: 4px; }
.missing { background: #fff4d6; } .failed { background: #ffe0e0; }
"""


def write_index(shots: list[Shot], out: Path, started: str) -> Path:
    """A static page (no script, no link leaving the folder): every screen by area."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Store kiosk: every screen</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Store kiosk: every screen</h1>",
        f"<p>Taken from the demo on {html.escape(started)} by <code>make screenshots</code>.",
        f" {sum(s.status == 'taken' for s in shots)} screens.</p>",
    ]
    areas = [a for a in AREAS if any(s.area is a for s in shots)]
    parts.append(
        "<nav><p>"
        + " · ".join(f'<a href="#{a.name}">{html.escape(a.title)}</a>' for a in areas)
        + "</p></nav>"
    )
    not_taken = [s for s in shots if s.status != "taken"]
    if not_taken:
        parts.append("<p>Not taken:</p><ul>")
        parts += [
            f"<li>{html.escape(s.filename)} ({s.status}): {html.escape(s.reason)}</li>"
            for s in not_taken
        ]
        parts.append("</ul>")
    for area in AREAS:
        mine = [s for s in shots if s.area is area]
        if not mine:
            continue
        parts.append(f'<h2 id="{area.name}">{html.escape(area.title)}</h2>')
        for size in area.sizes:
            at_size = [s for s in mine if s.size is size]
            if not at_size:
                continue
            parts.append(f"<h3>{html.escape(size.name)} {size.label}</h3>")
            parts.append('<div class="grid">')
            for s in at_size:
                caption = html.escape(s.screen.caption)
                name = html.escape(s.filename)
                if s.status == "taken":
                    parts.append(
                        f'<figure><a href="{name}"><img src="{name}" alt="{caption}" '
                        f'width="{s.size.width}" height="{s.size.height}" loading="lazy"></a>'
                        f"<figcaption>{caption}<br><small>{name}</small></figcaption></figure>"
                    )
                else:
                    label = "Missing" if s.status == "missing" else "Could not be taken"
                    parts.append(
                        f'<figure class="{s.status}"><figcaption><strong>{label}:</strong> '
                        f"{caption}<br><small>{name}: {html.escape(s.reason)}</small>"
                        "</figcaption></figure>"
                    )
            parts.append("</div>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


# --- The command ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="output folder")
    parser.add_argument(
        "--only", default="", help="comma-separated screens, e.g. kiosk-attract,shop-home"
    )
    parser.add_argument(
        "--products", type=int, default=2000, help="products the demo seeds (default 2000)"
    )
    parser.add_argument(
        "--demo-json",
        type=Path,
        help="use a demo already running (its demo.json): nothing is started or stopped",
    )
    args = parser.parse_args(argv)
    shots = plan([n.strip() for n in args.only.split(",") if n.strip()] or None)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in plan(None):  # an earlier run's screens only, nothing else in the folder
        (args.out / old.filename).unlink(missing_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    def stop_on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="kiosk-screenshots-") as tmp:
        demo = Demo(Path(tmp) / "demo", args.products)
        try:
            if args.demo_json:
                manifest = json.loads(args.demo_json.read_text())
            else:
                manifest = demo.start()
            take(shots, demo_facts(manifest), args.out)
        except DemoError as exc:
            say(f"error: {exc}")
            return 2
        except KeyboardInterrupt:
            say("interrupted")
            return 130
        finally:
            demo.stop()
    index = write_index(shots, args.out, started)
    taken = sum(s.status == "taken" for s in shots)
    say(f"{taken} of {len(shots)} screens in {args.out}/ ; look through {index}")
    missing = [s for s in shots if s.status == "missing"]
    failed = [s for s in shots if s.status == "failed"]
    for s in missing:
        say(f"missing: {s.filename}: {s.reason}")
    for s in failed:
        say(f"FAILED: {s.filename}: {s.reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
