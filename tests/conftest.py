"""Shared fixtures: seeded data directories, real servers on free ports, a browser.

Seeding is done once per test session into a template directory; each test gets its
own copy in ``tmp_path``, so tests never see each other's changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from app.core import db as dbmod
from app.demo import seed as seedmod
from app.store.migrations import migrate

from .pg import pg_cluster  # noqa: F401  (the cluster of the hub tests' PostgreSQL pass)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
TEST_PRODUCTS = 300
SELF_STORE = seedmod.DEMO_STORES[0]["id"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``hub`` every test that uses a seeded hub (directly or through another
    fixture): the tests ``make test-hub-postgresql`` runs again on PostgreSQL."""
    for item in items:
        if "hub_template" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.hub)


class FakeClock:
    """The business clock of this test (``KIOSK_FAKE_NOW``), moved by hand.

    It starts at the real now (shifted too when the whole run is under faketime), so a
    test reads dates off it and never off a calendar written in the test.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime | None = None) -> None:
        from app.core import clock

        self._monkeypatch = monkeypatch
        self.set(start or clock.utcnow().replace(microsecond=0))

    def set(self, when: datetime) -> datetime:
        from app.core import clock

        self.now = when
        self._monkeypatch.setenv("KIOSK_FAKE_NOW", clock.iso(when))
        return when

    def advance(self, seconds: float) -> datetime:
        return self.set(self.now + timedelta(seconds=seconds))


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Freeze this test's business clock (in process and in servers it starts) at now."""
    return FakeClock(monkeypatch)


def free_base_port(offsets: tuple[int, ...] = (0, 1, 2, 10)) -> int:
    """A port P with P+offset free for every offset (``kiosk demo --port P`` needs 4).

    Chosen below Linux's ephemeral range (32768+), where the client side of every test
    connection lands: a port seen free there is still free a second later.
    """
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000)
        try:
            with contextlib.ExitStack() as stack:
                for offset in offsets:
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free run of ports")


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store data directory seeded once per session (do not modify: copy it)."""
    data = tmp_path_factory.mktemp("template-store")
    db = dbmod.connect(dbmod.db_path(data))
    migrate(db)
    seedmod.seed_store(db, SELF_STORE, products=TEST_PRODUCTS)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return data


@pytest.fixture
def store_data(seeded_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of a seeded store data directory."""
    dest = tmp_path / "store"
    shutil.copytree(seeded_template, dest)
    return dest


@pytest.fixture
def store_db(store_data: Path):
    """A connection to this test's store database."""
    db = dbmod.connect(dbmod.db_path(store_data))
    yield db
    db.close()


@pytest.fixture
def app(store_data: Path):
    """The store Flask app on this test's data (flaskr-style fixture)."""
    from app.store.app import create_app

    return create_app({"DATA_DIR": str(store_data), "TESTING": True})


@pytest.fixture
def client(app):
    """A test client for the store app."""
    return app.test_client()


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork
PR_SET_PDEATHSIG = 1


def _die_with_test_process() -> None:
    """In a server's child process: SIGTERM when the test process ends, however it ends
    (a killed or timed-out pytest must not leave servers running on the shared box)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """A real ``kiosk serve`` process on a free loopback port (subclasses: other servers)."""

    command: tuple[str, ...] = ("serve",)
    health_path = "/healthz"
    log_name = "server.log"

    def __init__(self, data: Path, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.log = data / self.log_name.format(port=self.port)
        self.proc: subprocess.Popen | None = None
        self.terminating = False  # asked to stop, not waited for yet (stop_later)

    def start(self, timeout: float = 20) -> Server:
        cmd = [sys.executable, "-m", "app", *self.command]
        cmd += ["--data", str(self.data), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=_die_with_test_process,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(self.url + self.health_path, timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.proc.kill()  # never left running by a test that gave up on it
        self.proc.wait()
        raise TimeoutError(f"server not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            if not self.terminating:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_stopping: list[threading.Thread] = []


def stop_later(servers: list[Server]) -> None:
    """Ask ``servers`` to stop now and let a thread wait for them: a graceful stop takes
    ~0.5 s (gunicorn reaps its workers by 0.1 s naps, then stops the kiosk worker) that
    the next test need not wait for. Each works in its own data directory and port.
    Only for servers nothing else depends on (a hub's PostgreSQL database is dropped
    after its server stopped: hubs stop in place)."""
    for server in servers:
        if server.proc and server.proc.poll() is None:
            server.proc.terminate()
            server.terminating = True
    waiter = threading.Thread(target=lambda: [s.stop() for s in servers], daemon=True)
    waiter.start()
    _stopping.append(waiter)


@pytest.fixture(scope="session", autouse=True)
def _servers_stopped() -> Iterator[None]:
    """Every server of stop_later gone before the session ends."""
    yield
    for waiter in _stopping:
        waiter.join()


@pytest.fixture
def server_factory() -> Iterator:
    """Start real store servers; all are stopped at the end of the test."""
    servers: list[Server] = []

    def start(data: Path, env: dict[str, str] | None = None) -> Server:
        server = Server(data, env).start()
        servers.append(server)
        return server

    yield start
    stop_later(servers)


@pytest.fixture
def store_server(server_factory, store_data: Path) -> Server:
    """A real store server on this test's data."""
    return server_factory(store_data)


def run_kiosk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the ``kiosk`` command line as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


# --- Browser -----------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def playwright():
    """One Playwright per test process: its sync API refuses to start a second one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright):
    """Debian's Chromium driven by Playwright (its own browsers cannot be downloaded)."""
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page at a 1920×1080 landscape kiosk size."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fr-FR")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.console_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    """Keep a screenshot of a screen as a test artifact (test-artifacts/NAME.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # Let visible pictures finish loading so the artifact shows the screen as seen.
    with contextlib.suppress(Exception):
        page.wait_for_function(
            """() => [...document.images].every(i => i.complete ||
                 i.getBoundingClientRect().top > window.innerHeight)""",
            timeout=3000,
        )
    page.screenshot(path=str(path), full_page=False)
    return path


# --- Staff -------------------------------------------------------------------------

STAFF_PIN = "246810"
MANAGER_PIN = "135790"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff_member(
    data: Path, name: str = "Camille", role: str = "staff", pin: str | None = None
) -> dict:
    """Create a staff member in a store's database; returns it with its PIN."""
    from app.store.domain.staff import add_staff

    pin = pin or (MANAGER_PIN if role == "manager" else STAFF_PIN)
    db = dbmod.connect(dbmod.db_path(data))
    try:
        member = add_staff(db, name, role, pin)
    finally:
        db.close()
    return {**member, "pin": pin}


def staff_login(http, data: Path, base_url: str = "", role: str = "staff") -> dict:
    """Log a Flask test client or a requests.Session in as a new staff member."""
    member = add_staff_member(data, name=f"{role.title()} {os.urandom(2).hex()}", role=role)
    page = http.get(base_url + "/staff/login")
    text = page.get_data(as_text=True) if hasattr(page, "get_data") else page.text
    token = _CSRF.search(text).group(1)
    r = http.post(
        base_url + "/staff/login",
        data={"staff_id": member["id"], "pin": member["pin"], "csrf_token": token},
    )
    assert r.status_code in (200, 302), r.status_code
    return member


def replaced(page, selector: str):
    """A locator for the element that will replace the one at ``selector`` now (an htmx
    ``outerHTML`` swap): the current one is marked old, so an assertion through the
    locator waits for the answer to what comes next, never for a stale element."""
    page.locator(selector).evaluate("el => el.setAttribute('data-test-old', '')")
    return page.locator(f"{selector}:not([data-test-old])")


def staff_login_page(page, base_url: str, data: Path, role: str = "staff") -> dict:
    """Log a Playwright page in as a new staff member through the login form."""
    member = add_staff_member(data, name=f"{role.title()} {os.urandom(2).hex()}", role=role)
    page.goto(base_url + "/staff/login")
    page.get_by_label(member["name"]).check()
    page.locator("#pin").fill(member["pin"])
    page.get_by_role("button", name=re.compile("Se connecter|Log in")).click()
    # Logged in means redirected to a staff page (the orders list), not the login again.
    page.wait_for_url(
        re.compile(re.escape(base_url) + r"/staff/(?!login\b)[^?#]*(\?.*)?$"), timeout=10000
    )
    return member
