"""Fixtures for hub tests: a seeded hub data directory, real hub servers, signed requests.

Import them in a test module with ``from .hub_fixtures import *  # noqa: F403``. The
hub is seeded once per session into a template directory; every test (or module, for
the read-mostly ones) gets its own copy, as tests/conftest.py does for stores.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from app.core import signing
from app.demo import hub_seed as hubseed
from app.hub.domain import keys
from app.hub.storage import open_db

from .conftest import ROOT, Server

HUB_TEST_PRODUCTS = 200
OPENAPI = ROOT / "docs" / "openapi.yaml"
LYON, PARIS, BORDEAUX = (s["id"] for s in hubseed.store_seed.DEMO_STORES)

__all__ = [
    "BORDEAUX",
    "HUB_TEST_PRODUCTS",
    "LYON",
    "PARIS",
    "HubClient",
    "HUB_BACKEND",
    "HubServer",
    "hub_client",
    "drop_hub_copy",
    "hub_data",
    "hub_database",
    "hub_env",
    "hub_db",
    "hub_factory",
    "hub_server",
    "hub_template",
    "module_hub",
    "movement",
    "open_hub_db",
    "run_hub",
    "store_secrets",
    "validate",
]


# --- Data --------------------------------------------------------------------------


#: The hub's database in this test run: "sqlite" (DATA/hub.db, the default) or
#: "postgresql" (a throwaway cluster, tests/pg.py): ``make test`` runs the hub's tests on
#: both (KIOSK_TEST_HUB_BACKEND=postgresql for the second pass).
HUB_BACKEND = os.environ.get("KIOSK_TEST_HUB_BACKEND", "sqlite")
#: In a test hub's data directory on PostgreSQL: the URL of its own database (a copy of
#: the seeded template database), which servers, commands and checks open.
DATABASE_MARK = "test-database.url"
_pg: dict[str, Any] = {}  # the session's cluster, once a PostgreSQL hub was seeded
_seeded: dict[str, Path] = {}  # the session's template hub, once seeded


def hub_database(data: Path) -> str | None:
    """The PostgreSQL URL of a test hub's database, or None for its SQLite hub.db."""
    mark = Path(data) / DATABASE_MARK
    return mark.read_text().strip() if mark.exists() else None


def hub_env(data: Path) -> dict[str, str]:
    """The environment that points a hub process or command at this hub's database."""
    url = hub_database(data)
    return {"KIOSK_HUB_DATABASE": url} if url else {}


def open_hub_db(data: Path) -> Any:
    """Open (and migrate) a test hub's database, whichever backend it is on."""
    return open_db(data, database=hub_database(data))


def _copy_hub(template: Path, dest: Path) -> Path:
    """A copy of a hub data directory; on PostgreSQL, of its database too."""
    shutil.copytree(template, dest)
    url = hub_database(dest)
    if url:
        cluster = _pg["cluster"]
        name = f"hub_{os.getpid()}_{next(_pg['counter'])}"
        (dest / DATABASE_MARK).write_text(
            cluster.create_database(name, template=url.rsplit("/", 1)[1])
        )
    return dest


def drop_hub_copy(data: Path) -> None:
    """Drop the database of a hub copy made by :func:`_copy_hub` (PostgreSQL only)."""
    url = hub_database(data)
    if url and "cluster" in _pg:
        _pg["cluster"].drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def hub_template(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A hub data directory seeded once per session (do not modify: copy it). Every
    module that imports this fixture registers its own copy of it: the first seeds,
    the others get the same directory."""
    if "template" in _seeded:
        return _seeded["template"]
    data = tmp_path_factory.mktemp("template-hub")
    url = None
    if HUB_BACKEND == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        _pg.update(cluster=cluster, counter=itertools.count(1))
        url = cluster.create_database(f"hub_template_{os.getpid()}")
        (data / DATABASE_MARK).write_text(url)
    elif HUB_BACKEND != "sqlite":
        raise pytest.UsageError(f"KIOSK_TEST_HUB_BACKEND: sqlite or postgresql, not {HUB_BACKEND}")
    db = open_hub_db(data)
    hubseed.seed_hub(db, products=HUB_TEST_PRODUCTS)
    # The signing key too, as a started hub makes it: every copy (and the store synced
    # from one, tests/sync_fixtures.py) then shares one key at one feed position. A key
    # made later by each copy would sit at the seq the synced store's cursor has passed.
    keys.ensure_hub_key(db, data)
    if url is None:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    _seeded["template"] = data
    return data


@pytest.fixture
def hub_data(hub_template: Path, tmp_path: Path) -> Iterator[Path]:
    """This test's own copy of the seeded hub data directory."""
    data = _copy_hub(hub_template, tmp_path / "hub")
    yield data
    drop_hub_copy(data)


def store_secrets(data: Path) -> dict[str, str]:
    """store id -> secret, read from a hub data directory."""
    db = open_hub_db(data)
    try:
        return dict(db.execute("SELECT id, secret FROM stores").fetchall())
    finally:
        db.close()


# --- Servers -----------------------------------------------------------------------


class HubServer(Server):
    """A real ``python -m app hub serve`` process on a free loopback port."""

    command = ("hub", "serve", "--threads", "24")
    health_path = "/api/v1/status"
    log_name = "hub-{port}.log"

    def __init__(self, data: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(data, {**hub_env(data), **(env or {})})


@pytest.fixture
def hub_factory() -> Iterator:
    """Start real hub servers; all are stopped at the end of the test."""
    servers: list[HubServer] = []

    def start(data: Path, env: dict[str, str] | None = None) -> HubServer:
        server = HubServer(data, env).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def hub_server(hub_factory, hub_data: Path) -> HubServer:
    """A real hub on this test's own data."""
    return hub_factory(hub_data)


@pytest.fixture(scope="module")
def module_hub(hub_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One hub shared by a module's tests (for tests that only read or add fresh data)."""
    data = _copy_hub(hub_template, tmp_path_factory.mktemp("module-hub") / "hub")
    server = HubServer(data).start()
    yield server
    server.stop()
    drop_hub_copy(data)


# --- Signed requests ---------------------------------------------------------------


class HubClient:
    """Signs requests as one store, exactly as docs/protocol.md says."""

    def __init__(self, base_url: str, store_id: str, secret: str) -> None:
        self.base_url = base_url
        self.store_id = store_id
        self.secret = secret
        self.session = requests.Session()

    def headers(self, method: str, path_qs: str, body: bytes = b"", **kw: Any) -> dict[str, str]:
        """The four signing headers (``timestamp=``/``nonce=`` to force values)."""
        return signing.sign_request(self.store_id, self.secret, method, path_qs, body, **kw)

    def request(
        self,
        method: str,
        path_qs: str,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 40,
        **sign: Any,
    ) -> requests.Response:
        """Send a signed request; ``headers`` replace the computed ones entirely."""
        hdrs = headers if headers is not None else self.headers(method, path_qs, body, **sign)
        if body:
            hdrs = {**hdrs, "Content-Type": "application/json"}
        return self.session.request(
            method, self.base_url + path_qs, data=body or None, headers=hdrs, timeout=timeout
        )

    def post_transactions(self, items: list[dict[str, Any]], **kw: Any) -> requests.Response:
        """POST /api/v1/transactions with ``items``."""
        body = json.dumps({"transactions": items}).encode()
        return self.request("POST", "/api/v1/transactions", body, **kw)

    def changes(
        self, since: int | str = 0, wait: int = 0, limit: int | None = None, **kw: Any
    ) -> requests.Response:
        """GET /api/v1/changes."""
        qs = f"since={since}&wait={wait}" + (f"&limit={limit}" if limit is not None else "")
        return self.request("GET", f"/api/v1/changes?{qs}", **kw)


@pytest.fixture
def hub_client(hub_server: HubServer) -> HubClient:
    """A client signing as the Lyon demo store against this test's hub."""
    return HubClient(hub_server.url, LYON, store_secrets(hub_server.data)[LYON])


def movement(sku: str, delta: int = -1, **extra: Any) -> dict[str, Any]:
    """A stock.movement transaction with a fresh id."""
    return {
        "id": str(uuid.uuid4()),
        "type": "stock.movement",
        "occurred_at": "2026-11-22T14:02:00Z",
        "payload": {"sku": sku, "delta": delta, "kind": "adjusted", "reason": "test", **extra},
    }


def run_hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m app hub ...`` as a separate process (on the database of the test
    hub named by its ``--data``, whichever backend that is)."""
    extra: dict[str, str] = {}
    if "--data" in args:
        extra = hub_env(Path(args[args.index("--data") + 1]))
    return subprocess.run(
        [sys.executable, "-m", "app", "hub", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **extra, **(env or {})},
    )


# --- OpenAPI -----------------------------------------------------------------------


@cache
def _openapi() -> tuple[dict[str, Any], Registry]:
    doc = yaml.safe_load(OPENAPI.read_text())
    registry = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(doc))
    return doc, registry


def validate(instance: Any, schema_name: str) -> None:
    """Validate a response body against ``components/schemas/<schema_name>``."""
    doc, registry = _openapi()
    assert schema_name in doc["components"]["schemas"], schema_name
    validator = Draft202012Validator(
        {"$ref": f"urn:openapi#/components/schemas/{schema_name}"}, registry=registry
    )
    validator.validate(instance)


def hub_db(data: Path):
    """A connection to a hub data directory's database (for checks from the test)."""
    return open_hub_db(data)
