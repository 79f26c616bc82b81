"""Where the running demo is and what it holds: its ports and URLs, demo.json for people
and scripts, and the summary printed when every server is up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.demo import seed as seedmod
from app.demo.datadir import (
    DEMO_HQ_USERS,
    DEMO_STAFF,
    ensure_demo_hq,
    ensure_demo_promotions,
    hub_dir,
    mail_dir,
    store_dir,
)
from app.hub.storage import open_db

HUB_PORT_OFFSET = 10  # stores take P, P+1, P+2; the hub P+10


def demo_ports(port: int) -> list[tuple[int, str]]:
    """Every port the demo will listen on, with what listens there."""
    stores = [(port + i, f"store {s['name']}") for i, s in enumerate(seedmod.DEMO_STORES)]
    return [*stores, (port + HUB_PORT_OFFSET, "hub")]


def shop_base(port: int, phone_host: str | None = None) -> str:
    """The web shop's address as a phone reaches it: this machine's LAN name or address
    when the demo serves phones (``--phone-host``), else loopback."""
    return f"http://{phone_host or '127.0.0.1'}:{port + HUB_PORT_OFFSET}/"


def demo_manifest(data: Path, port: int, phone_host: str | None = None) -> dict[str, Any]:
    """What demo.json says: URLs, stores and their data, logins, sample barcodes."""
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
            # Sign in at the shop's « Mon compte » with any address: the code is mailed
            # here (one .eml file per mail), then « Ma carte » is a QR for the kiosk.
            "mail_dir": str(mail_dir(data).resolve()),
            "account_url": shop_url + "shop/compte/connexion",
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


def announce(manifest: dict[str, Any], data: Path) -> None:
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
    click.echo(f"    sign in (any e-mail address){'':<9} {manifest['hub']['account_url']}")
    click.echo(f"    its e-mails (sign-in codes) land in {manifest['hub']['mail_dir']}")
    for c in manifest["carts"]:
        kind = "self-contained" if c["self_contained"] else "looked up at the hub"
        click.echo(f"    cart of {c['lines']} lines ({kind}): QR {c['qr_image']}")
    click.echo(f"  everything above is also in {data / 'demo.json'}")
    click.echo("  Ctrl-C stops the demo.")
