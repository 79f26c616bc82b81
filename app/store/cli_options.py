"""What the store's commands share: ``--data``, the hub options, the hub client they
make, and opening (and migrating) the store database."""

from __future__ import annotations

from pathlib import Path

import click

from app.core import db as dbmod

data_option = click.option(
    "--data",
    "data",
    envvar="KIOSK_DATA",
    show_envvar=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The store's data directory (database, pictures, secrets).",
)


def hub_options(f):
    """``--hub-url``, ``--store-id``, ``--store-secret``: how this store reaches its hub."""
    f = click.option(
        "--hub-timeout",
        envvar="KIOSK_HUB_TIMEOUT",
        show_envvar=True,
        default=30.0,
        show_default=True,
        type=click.FloatRange(0.5, 300),
        help="Seconds to wait for the hub's answer before trying again later.",
    )(f)
    f = click.option(
        "--store-secret",
        envvar="KIOSK_STORE_SECRET",
        show_envvar=True,
        default=None,
        help="The secret the hub issued to this store (kiosk hub add-store).",
    )(f)
    f = click.option(
        "--store-id",
        envvar="KIOSK_STORE_ID",
        show_envvar=True,
        default=None,
        help="This store's id at the hub (st-...).",
    )(f)
    return click.option(
        "--hub-url",
        envvar="KIOSK_HUB_URL",
        show_envvar=True,
        default=None,
        help="The hub's base URL; without it the store runs on its own, nothing is sent.",
    )(f)


def hub_client(
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    timeout: float = 30.0,
):
    """A HubClient, None when no hub is configured; half a configuration is an error."""
    if not hub_url:
        return None
    if not (store_id and store_secret):
        raise click.UsageError("--hub-url needs --store-id and --store-secret too")
    try:
        bytes.fromhex(store_secret)
    except ValueError as exc:
        raise click.BadParameter("must be hex", param_hint="--store-secret") from exc
    from app.store.sync.client import HubClient

    return HubClient(hub_url, store_id, store_secret, read_timeout=timeout)


def open_store(data: Path):
    from app.store.migrations import migrate

    db = dbmod.connect(dbmod.db_path(data))
    migrate(db)
    return db
