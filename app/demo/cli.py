"""The demo's commands: ``kiosk seed``, ``kiosk demo``, ``kiosk hub seed`` and
``kiosk hub orders bulk``. They live with the demo retailer, above the store and the hub,
and :mod:`app.cli` adds them to the ``kiosk`` command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from app.hub import cli_options as hub_cli
from app.store import cli_options as store_cli


@click.command()
@store_cli.data_option
@click.option(
    "--products",
    default=2000,
    show_default=True,
    envvar="KIOSK_PRODUCTS",
    show_envvar=True,
    type=click.IntRange(1, 1_000_000),
    help="How many products.",
)
@click.option(
    "--store-id",
    envvar="KIOSK_STORE_ID",
    show_envvar=True,
    default=None,
    help="Which demo store this database belongs to (default: the first).",
)
@click.option(
    "--seed",
    "rng_seed",
    default=42,
    show_default=True,
    type=int,
    help="Random seed: the same seed gives the same data.",
)
def seed(data: Path, products: int, store_id: str | None, rng_seed: int) -> None:
    """Fill an empty store database with the demo retailer's catalog and stock."""
    from app.core.progress import progress_bar
    from app.demo import seed as seedmod

    db = store_cli.open_store(data)
    store_id = store_id or seedmod.DEMO_STORES[0]["id"]
    if store_id not in {s["id"] for s in seedmod.DEMO_STORES}:
        raise click.BadParameter(f"unknown demo store {store_id!r}", param_hint="--store-id")
    started = time.monotonic()
    with progress_bar(f"Seeding {products} products") as progress:
        try:
            counts = seedmod.seed_store(
                db, store_id, products=products, seed=rng_seed, progress=progress
            )
        except ValueError as exc:
            raise click.ClickException(f"{data}: {exc}") from exc
    click.echo(f"seeded {counts} in {time.monotonic() - started:.1f}s")


@click.command()
@click.option(
    "--data",
    "data",
    envvar="KIOSK_DATA",
    show_envvar=True,
    default=".demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo keeps everything (seeded on first run).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    envvar="KIOSK_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65525),
    help="First port: the stores take P, P+1, P+2 and the hub P+10; all are checked "
    "before anything starts.",
)
@click.option(
    "--products",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Products to seed on first run.",
)
@click.option(
    "--phone-host",
    default=None,
    envvar="KIOSK_DEMO_PHONE_HOST",
    show_envvar=True,
    metavar="HOST",
    help="This machine's address on the shop's Wi-Fi (e.g. 192.168.1.20): the web shop "
    "then listens on every interface so a real phone can use it, and kiosks send carts "
    "to phones there. Default: everything on 127.0.0.1 only.",
)
def demo(data: Path, port: int, products: int, phone_host: str | None) -> None:
    """Seed demo data into DATA if empty, start every server on 127.0.0.1, print the URLs."""
    from app.demo.runner import run_demo

    run_demo(data, port, products, phone_host)


@click.command("seed")
@hub_cli.data_options
@click.option(
    "--products",
    default=2000,
    show_default=True,
    envvar="KIOSK_HUB_PRODUCTS",
    show_envvar=True,
    type=click.IntRange(1, 1_000_000),
    help="How many products.",
)
@click.option(
    "--seed",
    "rng_seed",
    default=42,
    show_default=True,
    envvar="KIOSK_HUB_SEED",
    show_envvar=True,
    type=int,
    help="Random seed: the same seed as the stores' gives the same catalog.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="KIOSK_HUB_JSON",
    show_envvar=True,
    help='Print [{"id", "secret", "name"}] for the demo stores (secrets included).',
)
@click.option(
    "--orders/--no-orders",
    default=True,
    show_default=True,
    help="Give every store demo web orders (to prepare, ready, collected, expired).",
)
@click.option(
    "--qr-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the pickup QR codes of the ready demo orders here (PNG).",
)
def hub_seed(
    data: Path, products: int, rng_seed: int, as_json: bool, orders: bool, qr_dir: Path | None
) -> None:
    """Fill an empty hub with the demo retailer: 3 stores, catalog, stock, change log, orders."""
    from app.core.progress import progress_bar
    from app.demo.hub_seed import seed_hub
    from app.hub.storage import open_db

    db = open_db(data)
    started = time.monotonic()
    with progress_bar(f"Seeding the hub with {products} products") as progress:
        try:
            result = seed_hub(
                db,
                products=products,
                seed=rng_seed,
                progress=progress,
                data_dir=data if orders else None,
                qr_dir=qr_dir,
            )
        except ValueError as exc:
            raise click.ClickException(f"{data}: {exc}") from exc
        finally:
            db.close()
    elapsed = time.monotonic() - started
    if as_json:
        click.echo(json.dumps(result["stores"], indent=2))
    else:
        for store in result["stores"]:
            click.echo(f"{store['id']}  {store['name']}")
    click.echo(
        f"seeded {result['products']} products, {result['variants']} variants, "
        f"{result['changes']} changes"
        + (f", {result['orders']['orders']} web orders" if "orders" in result else "")
        + f" in {elapsed:.1f}s"
        + ("" if as_json else "; --json prints the stores' secrets"),
        err=True,
    )


@click.command("bulk")
@hub_cli.data_options
@click.option("--store", "store_id", required=True, help="The store (st-...).")
@click.option("--count", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000))
def bulk_cmd(data: Path, store_id: str, count: int) -> None:
    """Add COUNT open orders to a store at once (benchmark data; no stock, no messages)."""
    from app.demo.hub_orders import bulk_orders
    from app.hub.storage import open_db

    db = open_db(data)
    started = time.monotonic()
    try:
        result = bulk_orders(db, data, store_id, count)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    click.echo(
        f"added {result['orders']} orders to {store_id} "
        f"(changes {result['first_seq']}-{result['last_seq']}) "
        f"in {time.monotonic() - started:.1f}s"
    )


def register(main: click.Group, hub: click.Group) -> None:
    """Add the demo's commands to ``kiosk`` and ``kiosk hub``."""
    main.add_command(seed)
    main.add_command(demo)
    hub.add_command(hub_seed, "seed")
    orders = hub.commands["orders"]
    assert isinstance(orders, click.Group)
    orders.add_command(bulk_cmd, "bulk")
