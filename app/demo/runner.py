"""``kiosk demo``: seed the demo retailer once, run the hub and every store, say where.

Layout of the demo data directory::

    DIR/hub/                 the hub's data (source of truth: catalog, prices, stock)
    DIR/stores/<store id>/   each store server's own data (filled by its first sync)
    DIR/demo-secrets.json    the demo stores' hub credentials (0600, demo only)
    DIR/demo-orders.json     the demo's ready orders with their pickup codes (demo only)
    DIR/demo-carts.json      the demo's online carts (ids, QR payloads)
    DIR/qr/                  pickup QR codes, and cart-1.png … cart-3.png for the carts
    DIR/demo.json            URLs, stores, logins, sample barcodes: for people and scripts
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import requests

HUB_PORT_OFFSET = 10  # stores take P, P+1, P+2; the hub P+10


def store_dir(data: Path, store_id: str) -> Path:
    """Each demo store keeps its own data directory, as a real shop would."""
    return data / "stores" / store_id


def hub_dir(data: Path) -> Path:
    """The demo hub's data directory."""
    return data / "hub"


def demo_ports(port: int) -> list[tuple[int, str]]:
    """Every port the demo will listen on, with what listens there."""
    from app.demo import seed as seedmod

    stores = [(port + i, f"store {s['name']}") for i, s in enumerate(seedmod.DEMO_STORES)]
    return [*stores, (port + HUB_PORT_OFFSET, "hub")]


def check_ports(port: int, host: str = "127.0.0.1") -> None:
    """Refuse to start anything when one of the demo's ports is taken, naming it."""
    ports = demo_ports(port)
    for number, what in ports:
        with socket.socket() as probe:
            # As waitress does: a port left in TIME_WAIT by a stopped demo is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, number))
            except OSError as exc:
                used = ", ".join(f"{n} ({w})" for n, w in ports)
                raise click.ClickException(
                    f"port {number} (the {what}) is not free on {host}: {exc.strerror}. "
                    f"The demo uses {used}. Stop what listens there, or choose other "
                    f"ports with --port P (stores P, P+1, P+2, the hub P+{HUB_PORT_OFFSET}), "
                    f"e.g. kiosk demo --port {port + 100}."
                ) from None


def seed_hub_if_empty(data: Path, products: int) -> dict[str, str]:
    """Seed the hub on first run; return ``{store_id: secret}`` for the demo stores."""
    from app.demo.hub_seed import seed_hub
    from app.hub.migrations import migrate as migrate_hub
    from app.hub.storage import open_db

    secrets_path = data / "demo-secrets.json"
    db = open_db(hub_dir(data))
    migrate_hub(db)
    seeded = db.execute("SELECT count(*) FROM products").fetchone()[0] > 0
    if not seeded:
        click.echo(f"seeding the hub with {products} products…", err=True)
        started = time.monotonic()
        result = seed_hub(db, products=products, data_dir=hub_dir(data), qr_dir=data / "qr")
        secrets = {s["id"]: s["secret"] for s in result["stores"]}
        fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(secrets, f, indent=2)
        # The ready orders' pickup codes exist in clear only here and at the hub: demo
        # mode lists them so anyone can try a hand-over.
        ready = (result.get("orders") or {}).get("ready", [])
        (data / "demo-orders.json").write_text(json.dumps(ready, indent=2, ensure_ascii=False))
        click.echo(f"  done in {time.monotonic() - started:.1f} s", err=True)
    db.close()
    if not secrets_path.exists():
        raise click.ClickException(
            f"{secrets_path} is missing: the hub in {hub_dir(data)} was seeded elsewhere; "
            "remove the directory to start the demo afresh"
        )
    return json.loads(secrets_path.read_text())


DEMO_STAFF = (
    {"name": "Camille", "role": "staff", "pin": "246810"},
    {"name": "Nadia", "role": "manager", "pin": "135790"},
)


def ensure_demo_staff(data: Path, store_id: str) -> None:
    """The demo's staff member and manager in a store (created once)."""
    from app.core import db as dbmod
    from app.store.domain.staff import add_staff
    from app.store.migrations import migrate

    db = dbmod.connect(dbmod.db_path(store_dir(data, store_id)))
    migrate(db)
    existing = {r[0] for r in db.execute("SELECT name FROM staff")}
    for member in DEMO_STAFF:
        if member["name"] not in existing:
            add_staff(db, member["name"], member["role"], member["pin"])
    db.close()


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"server for {url} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"{url} did not answer within {timeout:.0f}s")


def _wait_first_sync(name: str, url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until a store has pulled the whole change feed once, showing progress."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"{name}'s server exited with {proc.returncode}")
        try:
            health = requests.get(url + "healthz", timeout=2).json()
        except (requests.RequestException, ValueError):
            health = {}
        remaining = health.get("pull_remaining")
        applied = health.get("pull_applied") or 0
        if (
            health.get("last_sync_at")
            and health.get("cursor") not in (None, "0")
            and (not remaining)
        ):
            click.echo(f"  {name}: catalog and stock received", err=True)
            return
        if remaining and (applied, remaining) != last:
            pct = int(100 * applied / max(applied + remaining, 1))
            click.echo(f"  {name}: first sync {pct} %", err=True)
            last = (applied, remaining)
        time.sleep(0.5)
    raise click.ClickException(f"{name} did not finish its first sync in {timeout:.0f}s")


DEMO_HQ_USERS = (
    {
        "email": "marketing@siege.demo",
        "name": "Léa Martin",
        "role": "marketing",
        "password": "demo-marketing-2026",
    },
    {
        "email": "operations@siege.demo",
        "name": "Hugo Bernard",
        "role": "operations",
        "password": "demo-operations-2026",
    },
    {
        "email": "admin@siege.demo",
        "name": "Sophie Laurent",
        "role": "admin",
        "password": "demo-admin-2026",
    },
)


def ensure_demo_hq(data: Path) -> dict[str, Any]:
    """The demo's head-office users (one per role) and API token, made once.

    The token exists in clear only at creation, so demo mode keeps it in
    demo-hq.json (mode 0600) to list it in demo.json.
    """
    from app.hub.domain.hq_users import add_user, create_token
    from app.hub.storage import open_db

    path = data / "demo-hq.json"
    db = open_db(hub_dir(data))
    try:
        existing = {r[0] for r in db.execute("SELECT email FROM hq_users")}
        for user in DEMO_HQ_USERS:
            if user["email"] not in existing:
                add_user(db, user["email"], user["name"], user["role"], user["password"])
        if not path.exists():
            token = create_token(db, "demo tools", "admin")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"api_token": token, "role": "admin"}, f)
    finally:
        db.close()
    return json.loads(path.read_text())


DEMO_CART_SIZES = (3, 20, 30)  # lines: small, the most a QR carries inline, beyond it


def ensure_demo_carts(data: Path) -> list[dict[str, Any]]:
    """The demo's three online carts at the hub, each with a fresh QR image in DIR/qr/.

    Made once (kept in demo-carts.json); a cart ordered or thrown away during an
    earlier demo is replaced. Tokens are minted anew at every start: they expire after
    three days. Returns ``[{id, lines, self_contained, qr_payload, qr_image, path}]``.
    """
    from app.core.cart_codec import CartLine, read_cart_token
    from app.core.qr import render_qr
    from app.demo import seed as seedmod
    from app.hub.domain import carts, keys
    from app.hub.storage import open_db

    path = data / "demo-carts.json"
    known = json.loads(path.read_text()) if path.exists() else []
    qr_dir = data / "qr"
    qr_dir.mkdir(parents=True, exist_ok=True)
    db = open_db(hub_dir(data))
    try:
        private_key, _kid = keys.ensure_hub_key(db, hub_dir(data))
        # In stock at the first demo store, shortest SKUs first: the 20-line cart then
        # still fits a self-contained token whatever the seed's SKU lengths.
        variants = db.execute(
            "SELECT v.sku, coalesce(v.price_cents, p.price_cents) FROM variants v "
            "JOIN products p ON p.pk = v.product_pk JOIN stock_levels s ON s.sku = v.sku "
            "AND s.store_id = ? WHERE s.qty >= 2 ORDER BY length(v.sku), v.sku LIMIT ?",
            [seedmod.DEMO_STORES[0]["id"], max(DEMO_CART_SIZES)],
        ).fetchall()
        out = []
        for n, size in enumerate(DEMO_CART_SIZES, 1):
            old = known[n - 1]["id"] if len(known) >= n else None
            cart = carts.get_cart(db, old)
            if cart is None or cart["status"] != "open":
                picked = enumerate(variants[:size])
                lines = [CartLine(sku, 1 + i % 2, price) for i, (sku, price) in picked]
                cart = carts.get_cart(db, carts.create_cart(db, "web", lines))
            token = carts.cart_token(db, private_key, cart["id"])
            png = qr_dir / f"cart-{n}.png"
            render_qr(token).save(png, "PNG")
            ref = read_cart_token(keys.public_keys(db), token)
            out.append(
                {
                    "id": cart["id"],
                    "lines": len(carts.cart_lines(db, cart["id"])),
                    "self_contained": ref.lines is not None,
                    "qr_payload": token,
                    "qr_image": str(png.resolve()),
                    "path": carts.cart_path(db, cart["id"]),
                }
            )
    finally:
        db.close()
    path.write_text(json.dumps(out, indent=2))
    return out


def ensure_demo_promotions(data: Path) -> list[dict[str, Any]]:
    """The demo's published promotions at the hub (app/demo/promotions.py), made once."""
    from app.demo.promotions import seed_demo_promotions
    from app.hub.storage import open_db

    db = open_db(hub_dir(data))
    try:
        return seed_demo_promotions(db, hub_dir(data))
    finally:
        db.close()


def shop_base(port: int, phone_host: str | None = None) -> str:
    """The web shop's address as a phone reaches it: this machine's LAN name or address
    when the demo serves phones (``--phone-host``), else loopback."""
    return f"http://{phone_host or '127.0.0.1'}:{port + HUB_PORT_OFFSET}/"


def demo_manifest(data: Path, port: int, phone_host: str | None = None) -> dict[str, Any]:
    """What demo.json says: URLs, stores and their data, logins, sample barcodes."""
    from app.demo import seed as seedmod
    from app.hub.storage import open_db

    hub_url = f"http://127.0.0.1:{port + HUB_PORT_OFFSET}/"
    shop_url = shop_base(port, phone_host)
    carts_path = data / "demo-carts.json"
    carts_made = json.loads(carts_path.read_text()) if carts_path.exists() else []
    db = open_db(hub_dir(data))
    stores = []
    for i, store in enumerate(seedmod.DEMO_STORES):
        stores.append(
            {
                "id": store["id"],
                "name": store["name"],
                "city": store["city"],
                "url": f"http://127.0.0.1:{port + i}/",
                "kiosk_url": f"http://127.0.0.1:{port + i}/",
                "status_url": f"http://127.0.0.1:{port + i}/staff/status",
                "orders_url": f"http://127.0.0.1:{port + i}/staff/orders",
                "data_dir": str(store_dir(data, store["id"]).resolve()),
                "sample_barcodes": seedmod.sample_barcodes(db, store["id"]),
            }
        )
    db.close()
    orders_path = data / "demo-orders.json"
    ready = json.loads(orders_path.read_text()) if orders_path.exists() else []
    for store in stores:
        store["ready_orders"] = [
            {
                "number": o["number"],
                "customer_name": o["customer_name"],
                "status": o["status"],
                "shelf_slot": o.get("shelf_slot"),
                "pickup_code": o["pickup_code"],
                "pickup_qr_payload": o["pickup_token"],
                "pickup_qr_image": str(Path(o["qr_png"]).resolve()) if o.get("qr_png") else None,
                "customer_page": hub_url.rstrip("/") + o["shop_path"],
            }
            for o in ready
            if o["store_id"] == store["id"]
        ]
    return {
        "mode": "demo",
        "note": "Demo data and demo credentials only: never use them in a real shop.",
        "hub": {
            "url": hub_url,
            "data_dir": str(hub_dir(data).resolve()),
            "shop_url": shop_url + "shop/",
        },
        "stores": stores,
        "urls": {"hub": hub_url, "kiosk": [s["url"] for s in stores]},
        "logins": [
            {**m, "url": f"{stores[0]['url']}staff/login", "stores": "every demo store"}
            for m in DEMO_STAFF
        ],
        "store_credentials_file": str((data / "demo-secrets.json").resolve()),
        "hq": {
            "url": hub_url + "hq/",
            "logins": [
                {k: u[k] for k in ("email", "password", "role", "name")} for u in DEMO_HQ_USERS
            ],
            "api_token": ensure_demo_hq(data)["api_token"],
            "api_url": hub_url + "api/v1/hq/",
        },
        "sample_barcodes": stores[0]["sample_barcodes"],
        "ready_orders": stores[0]["ready_orders"],
        # Published promotions: on every kiosk's attract screen and in the prices.
        "promotions": [
            {
                "id": p["id"],
                "title": p["title"]["fr"],
                "rule": p["rule"]["kind"],
                "until": p["ends_local"],
                "console_url": f"{hub_url}hq/promotions/{p['id']}",
            }
            for p in ensure_demo_promotions(data)
        ],
        # Online carts to show at a kiosk: their QR images, and their web shop page.
        "carts": [
            {
                **{k: c[k] for k in ("id", "lines", "self_contained", "qr_payload", "qr_image")},
                "shop_url": shop_url.rstrip("/") + c["path"],
            }
            for c in carts_made
        ],
    }


def run_demo(data: Path, port: int, products: int, phone_host: str | None = None) -> None:
    """Seed, start the hub and one store server process per demo store, wait for a stop.

    ``phone_host``: serve the hub (web shop) on every interface and point "send to my
    phone" at ``http://PHONE_HOST:port/``, so a real phone on the same network can run
    the cart journey. Stores and kiosks stay on loopback.
    """
    from app.demo import seed as seedmod

    check_ports(port)
    if phone_host:
        check_ports(port, "0.0.0.0")  # noqa: S104 (the web shop then listens for phones)
    data.mkdir(parents=True, exist_ok=True)
    secrets = seed_hub_if_empty(data, products)
    ensure_demo_hq(data)
    ensure_demo_carts(data)
    ensure_demo_promotions(data)
    procs: list[subprocess.Popen] = []
    hub_url = f"http://127.0.0.1:{port + HUB_PORT_OFFSET}/"

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "hub",
                "serve",
                "--data",
                str(hub_dir(data)),
                "--port",
                str(port + HUB_PORT_OFFSET),
                "--threads",
                "16",
                "--host",
                "0.0.0.0" if phone_host else "127.0.0.1",
            ],  # noqa: S104
            env=env,
        )
        procs.append(hub)
        _wait_ready(hub_url + "api/v1/status", hub)
        for i, store in enumerate(seedmod.DEMO_STORES):
            # The secret goes through the environment, not the command line (ps shows it).
            store_env = {
                **env,
                "KIOSK_STORE_SECRET": secrets[store["id"]],
                "KIOSK_SHOP_URL": shop_base(port, phone_host),
            }
            cmd = [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--data",
                str(store_dir(data, store["id"])),
                "--port",
                str(port + i),
                "--hub-url",
                hub_url,
                "--store-id",
                store["id"],
            ]
            procs.append(subprocess.Popen(cmd, env=store_env))
        for i, store in enumerate(seedmod.DEMO_STORES):
            url = f"http://127.0.0.1:{port + i}/"
            _wait_ready(url + "healthz", procs[i + 1])
            _wait_first_sync(store["name"], url, procs[i + 1])
            ensure_demo_staff(data, store["id"])
        manifest = demo_manifest(data, port, phone_host)
        (data / "demo.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        _announce(manifest, data)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        raise click.ClickException("a server stopped unexpectedly; stopping the demo")
    except KeyboardInterrupt:
        click.echo("\nstopping…", err=True)
    finally:
        # Stores first, then the hub, so no store logs a lost link on the way out.
        stores, hubs = procs[1:], procs[:1]
        for group in (stores, hubs):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            for p in group:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


def _announce(manifest: dict[str, Any], data: Path) -> None:
    click.echo("")
    click.secho("Store kiosk demo is running (DEMO DATA — not for a real shop)", bold=True)
    click.echo(f"  hub    {'(central back-end)':<38} {manifest['hub']['url']}")
    for s in manifest["stores"]:
        click.echo(f"  kiosk  {s['name']:<38} {s['url']}")
        click.echo(f"  staff  {'  click-and-collect orders':<38} {s['orders_url']}")
        click.echo(f"  staff  {'  sync status':<38} {s['status_url']}")
    click.echo("  demo staff logins (at /staff/login of any store; DEMO PINs):")
    for login in manifest["logins"]:
        click.echo(f"    {login['name']:<8} {login['role']:<8} PIN {login['pin']}")
    click.echo(f"  demo store credentials: {manifest['store_credentials_file']}")
    hq = manifest["hq"]
    click.echo(f"  head office {'(fleet, promotions; DEMO passwords)':<32} {hq['url']}")
    for login in hq["logins"]:
        click.echo(f"    {login['email']:<24} {login['role']:<11} {login['password']}")
    click.echo(f"    API token (Bearer, admin): {hq['api_token']}")
    click.echo("  barcodes to type or scan at the first kiosk:")
    for b in manifest["sample_barcodes"]:
        click.echo(f"    {b['ean']}  {b.get('name_fr', '')}  ({b.get('qty', '?')} here)")
    if manifest["ready_orders"]:
        click.echo("  orders ready for pickup at the first store (number, pickup code):")
        for o in manifest["ready_orders"][:3]:
            click.echo(f"    {o['number']}  code {o['pickup_code']}  QR {o['pickup_qr_image']}")
    click.echo(f"  web shop (phone-sized){'':<16} {manifest['hub']['shop_url']}")
    for c in manifest["carts"]:
        kind = "self-contained" if c["self_contained"] else "looked up at the hub"
        click.echo(f"    cart of {c['lines']} lines ({kind}): QR {c['qr_image']}")
    click.echo(f"  everything above is also in {data / 'demo.json'}")
    click.echo("  Ctrl-C stops the demo.")
