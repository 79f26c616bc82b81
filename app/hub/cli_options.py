"""Options the ``kiosk hub`` commands share: where the hub's data and database are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

#: The environment variable naming the hub's database (app/hub/storage.py reads it).
DATABASE_ENV = "KIOSK_HUB_DATABASE"


def _use_database(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Make ``--database`` the database of everything in this process (the app, its
    feed waiter, the mailer, a command's own connections). Nothing is imported here:
    ``kiosk hub serve`` must patch for gevent before the app's modules load."""
    if not value:
        return
    if not value.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter(
            "a postgresql:// URL (leave it out for hub.db in the data directory)",
            param_hint="--database",
        )
    os.environ[DATABASE_ENV] = value


data_option = click.option(
    "--data",
    "data",
    envvar="KIOSK_HUB_DATA",
    show_envvar=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The hub's data directory (its signing key, and hub.db without --database).",
)


def database_option(f: Any) -> Any:
    """``--database URL`` (or ``KIOSK_HUB_DATABASE``): PostgreSQL instead of hub.db."""
    return click.option(
        "--database",
        default=None,
        envvar=DATABASE_ENV,
        show_envvar=True,
        metavar="URL",
        expose_value=False,
        callback=_use_database,
        help="A postgresql:// URL; without it, hub.db in the data directory (SQLite).",
    )(f)


def data_options(f: Any) -> Any:
    """``--data DIR`` and ``--database URL``, as every hub command takes them."""
    return data_option(database_option(f))
