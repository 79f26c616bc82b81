"""The ``kiosk hub`` commands: serve the hub, seed the demo retailer, register stores."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

data_option = click.option(
    "--data",
    "data",
    envvar="KIOSK_HUB_DATA",
    show_envvar=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The hub's data directory (its database lives there).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def hub() -> None:
    """The hub: the central back-end that store servers sync with."""


@hub.command()
@data_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="KIOSK_HUB_HOST",
    show_envvar=True,
    help="Address to listen on (0.0.0.0 to serve other machines).",
)
@click.option(
    "--port",
    default=8100,
    show_default=True,
    envvar="KIOSK_HUB_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    envvar="KIOSK_HUB_THREADS",
    show_envvar=True,
    type=click.IntRange(1, 256),
    help="Worker threads; each long-polling store holds one while it waits.",
)
def serve(data: Path, host: str, port: int, threads: int) -> None:
    """Run the hub under waitress (a production WSGI server)."""
    import waitress

    from . import create_hub_app

    app = create_hub_app({"DATA_DIR": str(data)})
    click.echo(f"hub on http://{host}:{port}/ (data {data})", err=True)
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="kiosk-hub",
        clear_untrusted_proxy_headers=True,
    )


@hub.command()
@data_option
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
def seed(data: Path, products: int, rng_seed: int, as_json: bool) -> None:
    """Fill an empty hub with the demo retailer: 3 stores, catalog, stock, change log."""
    from .seed import seed_hub
    from .storage import open_db

    db = open_db(data)
    started = time.monotonic()
    with click.progressbar(
        length=100, label=f"Seeding the hub with {products} products", file=sys.stderr
    ) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            pct = int(done * 100 / max(total, 1))
            bar.update(pct - last[0])
            last[0] = pct

        try:
            result = seed_hub(db, products=products, seed=rng_seed, progress=progress)
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
        f"{result['changes']} changes in {elapsed:.1f}s"
        + ("" if as_json else "; --json prints the stores' secrets"),
        err=True,
    )


@hub.command("add-store")
@data_option
@click.option(
    "--name", required=True, envvar="KIOSK_HUB_STORE_NAME", show_envvar=True, help="Shop name."
)
@click.option("--city", default="", envvar="KIOSK_HUB_STORE_CITY", show_envvar=True)
@click.option("--address", default="", envvar="KIOSK_HUB_STORE_ADDRESS", show_envvar=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="KIOSK_HUB_JSON",
    show_envvar=True,
    help='Print {"id", "secret", "name"} as JSON.',
)
def add_store(data: Path, name: str, city: str, address: str, as_json: bool) -> None:
    """Register a store; print its id and the secret it signs its requests with."""
    from .registry import add_store as register
    from .storage import open_db

    db = open_db(data)
    try:
        creds = register(db, name, city=city, address=address)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps({"id": creds["id"], "secret": creds["secret"], "name": name}))
    else:
        click.echo(f"id:     {creds['id']}\nsecret: {creds['secret']}")
        click.echo("Give both to the store (its sync settings); keep the secret private.", err=True)
