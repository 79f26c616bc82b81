"""The demo's data directory: where each server keeps its data, and what the demo makes
in it once (the seeded hub, staff, head-office users, online carts, promotions).

Layout::

    DIR/hub/                 the hub's data (source of truth: catalog, prices, stock)
    DIR/stores/<store id>/   each store server's own data (filled by its first sync)
    DIR/demo-secrets.json    the demo stores' hub credentials (0600, demo only)
    DIR/demo-hq.json         the demo's head-office API token (0600, demo only)
    DIR/demo-orders.json     the demo's ready orders with their pickup codes (demo only)
    DIR/demo-carts.json      the demo's online carts (ids, QR payloads)
    DIR/qr/                  pickup QR codes, and cart-1.png … cart-3.png for the carts
    DIR/demo.json            URLs, stores, logins, sample barcodes (app/demo/manifest.py)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from app.core import db as dbmod
from app.core.cart_codec import CartLine, read_cart_token
from app.core.qr import render_qr
from app.demo import seed as seedmod
from app.demo.hub_seed import seed_hub
from app.demo.promotions import seed_demo_promotions
from app.hub.domain import carts, keys
from app.hub.domain.hq_users import add_user, create_token
from app.hub.migrations import migrate as migrate_hub
from app.hub.storage import open_db
from app.store.domain.staff import add_staff
from app.store.migrations import migrate as migrate_store


def store_dir(data: Path, store_id: str) -> Path:
    """Each demo store keeps its own data directory, as a real shop would."""
    return data / "stores" / store_id


def hub_dir(data: Path) -> Path:
    """The demo hub's data directory."""
    return data / "hub"


def mail_dir(data: Path) -> Path:
    """Where the demo hub writes the e-mails it would send (``KIOSK_HUB_MAIL_DIR``)."""
    return data / "mail"


def seed_hub_if_empty(data: Path, products: int) -> dict[str, str]:
    """Seed the hub on first run; return ``{store_id: secret}`` for the demo stores."""
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
    db = dbmod.connect(dbmod.db_path(store_dir(data, store_id)))
    migrate_store(db)
    existing = {r[0] for r in db.execute("SELECT name FROM staff")}
    for member in DEMO_STAFF:
        if member["name"] not in existing:
            add_staff(db, member["name"], member["role"], member["pin"])
    db.close()


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
    db = open_db(hub_dir(data))
    try:
        return seed_demo_promotions(db, hub_dir(data))
    finally:
        db.close()
