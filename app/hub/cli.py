"""The ``kiosk hub`` commands: serve the hub, seed the demo retailer, register stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.hub.cli_options import data_option, data_options
from app.hub.cli_personal import personal
from app.hub.cli_privacy import pii, retention
from app.hub.cli_serve import serve

if TYPE_CHECKING:  # the app's modules load after serve has patched for gevent
    from app.hub.database import Db


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def hub() -> None:
    """The hub: the central back-end that store servers sync with."""


hub.add_command(serve)
hub.add_command(retention)
hub.add_command(pii)
hub.add_command(personal)


@hub.command("add-store")
@data_options
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
    from app.hub.domain.registry import add_store as register
    from app.hub.storage import open_db

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


def _postgresql_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("a postgresql:// URL", param_hint="--to")
    return value


@hub.command("move-to-postgresql")
@data_option
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    callback=_postgresql_url,
    help="The PostgreSQL database to move to (postgresql://...): new and empty.",
)
def move_to_postgresql(data: Path, url: str) -> None:
    """Move the hub from DATA/hub.db to an empty PostgreSQL database, every row as it
    is: stores keep their ids, secrets and feed cursors and need no change.

    Stop the hub first (the command refuses while a process has hub.db open: what it
    wrote after the copy would be lost), and back up the data directory. hub.db is left
    as it was. Then start the hub with --database URL (docs/large-chain.md)."""
    from app.hub import transfer
    from app.hub.storage import db_path, describe

    def progress(table: str, done: int, total: int) -> None:
        click.echo(f"  {table}: {done:,} / {total:,} rows", err=True)

    click.echo(f"moving {db_path(data)} to {describe(url)}...", err=True)
    try:
        moved = transfer.move_to_postgresql(db_path(data), url, progress=progress)
    except transfer.MoveError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("\n".join(transfer.report_lines(moved)))
    click.echo(f"Now start the hub with --database {describe(url)}; stores need no change.")


@hub.group()
def orders() -> None:
    """Web orders for click-and-collect (the demo web shop's side)."""


def _sku_qty(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list:
    lines = []
    for value in values:
        sku, _, qty = value.rpartition(":")
        if not sku or not qty.isdigit():
            raise click.BadParameter(f"{value!r}: expected SKU:QTY")
        lines.append({"sku": sku, "qty": int(qty)})
    return lines


@orders.command("create")
@data_options
@click.option("--store", "store_id", required=True, help="The store to collect in (st-...).")
@click.option("--customer", required=True, help="The customer's full name.")
@click.option("--email", required=True, help="The customer's e-mail address.")
@click.option(
    "--sku",
    "lines",
    multiple=True,
    required=True,
    callback=_sku_qty,
    help="SKU:QTY, once per line (repeat the option).",
)
@click.option("--expiry-days", default=5, show_default=True, type=click.IntRange(1, 30))
@click.option("--json", "as_json", is_flag=True, help="Print the order, code and token as JSON.")
def create_order_cmd(
    data: Path,
    store_id: str,
    customer: str,
    email: str,
    lines: list,
    expiry_days: int,
    as_json: bool,
) -> None:
    """Place a web order (reserves its stock; the store receives it on the feed)."""
    from app.hub.domain.keys import current_private_key
    from app.hub.domain.orders import OrderError, create_order
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        made = create_order(
            db,
            store_id,
            customer,
            email,
            lines,
            expiry_days=expiry_days,
            private_key=current_private_key(data),
        )
    except OrderError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(made, ensure_ascii=False, indent=2))
    else:
        click.echo(f"order:  {made['order']['number']} ({made['order']['id']})")
        click.echo(f"code:   {made['pickup_code']}")
        click.echo(f"page:   {made['shop_path']}")


@hub.group("hq-user")
def hq_user() -> None:
    """Head-office console users (/hq): marketing, operations, admin."""


@hq_user.command("add")
@data_options
@click.option("--email", required=True, help="Login e-mail.")
@click.option("--name", required=True, help="Full name.")
@click.option(
    "--role", required=True, type=click.Choice(["marketing", "operations", "admin"]), help="Role."
)
@click.option(
    "--password",
    default=None,
    help="Initial password (10 characters or more); asked without echo when left out.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
def hq_user_add(
    data: Path, email: str, name: str, role: str, password: str | None, as_json: bool
) -> None:
    """Create a head-office user; the password is stored hashed only."""
    from app.hub.domain.hq_audit import record_audit
    from app.hub.domain.hq_users import HqError, add_user
    from app.hub.storage import open_db

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = open_db(data)
    try:
        user = add_user(db, email, name, role, password)
        record_audit(db, None, "user.added", {"user_id": user["id"], "role": role}, "cli")
    except HqError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(user, ensure_ascii=False))
    else:
        click.echo(f"added {user['email']} ({user['role']}), id {user['id']}")


def _hq_user_id(db: Db, email: str) -> str:
    from app.hub.domain.hq_users import normalize_email

    row = db.execute("SELECT id FROM hq_users WHERE email = ?", [normalize_email(email)]).fetchone()
    if row is None:
        raise click.ClickException(f"no head-office user {email}")
    return row[0]


@hq_user.command("set-password")
@data_options
@click.option("--email", required=True, help="The user's login e-mail.")
@click.option("--password", default=None, help="New password; asked without echo when left out.")
def hq_user_set_password(data: Path, email: str, password: str | None) -> None:
    """Give a head-office user a new password; their console sessions end."""
    from app.hub.domain.hq_audit import record_audit
    from app.hub.domain.hq_users import HqError, set_password
    from app.hub.storage import open_db

    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    db = open_db(data)
    try:
        user_id = _hq_user_id(db, email)
        set_password(db, user_id, password)
        record_audit(db, None, "user.password_changed", {"user_id": user_id}, "cli")
    except HqError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    click.echo(f"new password set for {email}; their sessions have ended")


@hq_user.command("set-role")
@data_options
@click.option("--email", required=True, help="The user's login e-mail.")
@click.option(
    "--role", required=True, type=click.Choice(["marketing", "operations", "admin"]), help="Role."
)
def hq_user_set_role(data: Path, email: str, role: str) -> None:
    """Change a head-office user's role; their console sessions end."""
    from app.hub.domain.hq_audit import record_audit
    from app.hub.domain.hq_users import set_role
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        user_id = _hq_user_id(db, email)
        set_role(db, user_id, role)
        record_audit(db, None, "user.role_changed", {"user_id": user_id, "role": role}, "cli")
    finally:
        db.close()
    click.echo(f"{email} is now {role}; their sessions have ended")


@hub.group("hq-token")
def hq_token() -> None:
    """API tokens for head-office tools (/api/v1/hq)."""


@hq_token.command("create")
@data_options
@click.option("--name", required=True, help="What the token is for (shown in the audit log).")
@click.option(
    "--role", required=True, type=click.Choice(["marketing", "operations", "admin"]), help="Role."
)
@click.option("--json", "as_json", is_flag=True, help='Print {"token", "name", "role"} as JSON.')
def hq_token_create(data: Path, name: str, role: str, as_json: bool) -> None:
    """Create an API token and print it: it is shown this once, only its hash is kept."""
    from app.hub.domain.hq_audit import record_audit
    from app.hub.domain.hq_users import HqError, create_token
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        token = create_token(db, name, role)
        record_audit(db, None, "token.created", {"name": name, "role": role}, "cli")
    except HqError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps({"token": token, "name": name, "role": role}))
    else:
        click.echo(token)
        click.echo("Send it as 'Authorization: Bearer <token>'; it is not shown again.", err=True)
