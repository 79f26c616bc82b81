"""The store's ``kiosk`` commands: serve, sync, migrate, staff, stock, orders, reservations.

:mod:`app.cli` adds ``kiosk hub`` and the demo's commands (``seed``, ``demo``).

Every option can also be given as a ``KIOSK_*`` environment variable (shown in
``--help``) or in a TOML config file (``--config`` / ``KIOSK_CONFIG``).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from app.core import db as dbmod
from app.store.config import load_default_map

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


def _hub_client(
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


class _Group(click.Group):
    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        # Read --config before parsing, so the file can provide defaults to subcommands.
        import os

        path = None
        for i, arg in enumerate(args):
            if arg == "--config" and i + 1 < len(args):
                path = args[i + 1]
            elif arg.startswith("--config="):
                path = arg.split("=", 1)[1]
        path = path or os.environ.get("KIOSK_CONFIG")
        extra.setdefault("default_map", load_default_map(path))
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    envvar="KIOSK_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="A TOML file of defaults: top-level keys for every command, [serve] etc. per command.",
)
def main(config: str | None) -> None:
    """Store kiosk and click-and-collect server."""


@main.command()
@data_option
def migrate(data: Path) -> None:
    """Create the store database or bring it to the latest schema (keeps every row)."""
    from app.store.migrations import migrate as run

    db = dbmod.connect(dbmod.db_path(data))
    applied = run(db)
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.group()
def staff() -> None:
    """Staff accounts (PIN login at /staff)."""


@staff.command("add")
@data_option
@click.option("--name", required=True, help="The name shown on the login screen.")
@click.option(
    "--role",
    type=click.Choice(["staff", "manager"]),
    default="staff",
    show_default=True,
    help="Managers may also unlock and override.",
)
@click.option("--pin", help="Six digits; asked for (hidden, twice) when not given.")
def staff_add(data: Path, name: str, role: str, pin: str | None) -> None:
    """Create a staff member with a personal PIN (stored hashed only)."""
    from app.store.domain.staff import StaffError, add_staff

    if pin is None:
        pin = click.prompt("PIN (6 digits)", hide_input=True, confirmation_prompt=True)
    db = open_store(data)
    try:
        member = add_staff(db, name, role, pin)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{member['name']} ({member['role']}) can now log in at /staff, id {member['id']}")


@staff.command("list")
@data_option
def staff_list(data: Path) -> None:
    """The active staff accounts of this store."""
    from app.store.domain.staff import list_staff

    for m in list_staff(open_store(data)):
        click.echo(f"{m['id']}  {m['role']:<8} {m['name']}")


@staff.command("set-pin")
@data_option
@click.option("--id", "staff_id", required=True, help="The staff id (kiosk staff list).")
@click.option("--pin", help="Six digits; asked for (hidden, twice) when not given.")
def staff_set_pin(data: Path, staff_id: str, pin: str | None) -> None:
    """Give a staff member a new PIN; their open sessions end on every device."""
    from app.store.domain.staff import StaffError, change_pin

    if pin is None:
        pin = click.prompt("New PIN (6 digits)", hide_input=True, confirmation_prompt=True)
    try:
        change_pin(open_store(data), staff_id, pin)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"new PIN set for {staff_id}; their sessions have ended")


@staff.command("set-role")
@data_option
@click.option("--id", "staff_id", required=True, help="The staff id (kiosk staff list).")
@click.option("--role", type=click.Choice(["staff", "manager"]), required=True)
def staff_set_role(data: Path, staff_id: str, role: str) -> None:
    """Change a staff member's role; their open sessions end on every device."""
    from app.store.domain.staff import StaffError, set_role

    try:
        set_role(open_store(data), staff_id, role)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{staff_id} is now {role}; their sessions have ended")


@main.group()
def stock() -> None:
    """Stock corrections by staff."""


@stock.command("adjust", context_settings={"ignore_unknown_options": True})
@data_option
@click.argument("code")
@click.argument("qty", type=int)
@click.option(
    "--count",
    "counted",
    is_flag=True,
    help="QTY is the quantity counted on the shelf, not a change.",
)
@click.option("--reason", default="", help="Why (damaged, found, miscount…).")
@click.option("--actor", default="cli", envvar="USER", help="Who made the correction.")
def stock_adjust(data: Path, code: str, qty: int, counted: bool, reason: str, actor: str) -> None:
    """Correct the stock of CODE (SKU or barcode) by QTY (e.g. -2, 3), as a movement."""
    from app.store.domain.stock import UnknownCode, adjust

    db = open_store(data)
    try:
        result = adjust(db, code, qty, counted=counted, reason=reason, actor=actor)
    except UnknownCode as exc:
        raise click.ClickException(f"no item with SKU or barcode {code!r}") from exc
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{result['sku']}: {result['before']} -> {result['after']} "
        f"(movement {result['delta']:+d}, id {result['id']})"
    )


@main.group()
def orders() -> None:
    """Click-and-collect orders in this store."""


@orders.command("expire")
@data_option
def orders_expire(data: Path) -> None:
    """Expire orders past their last day (releasing their stock) and queue reminders.

    The server does this every minute by itself; this is for cron or a one-off."""
    from app.store.domain.orders.expiry import expire_due

    done = expire_due(open_store(data), device="cli")
    click.echo(f"expired {len(done['expired'])}, reminders queued {len(done['reminded'])}")
    for order_id in done["expired"]:
        click.echo(f"  expired {order_id}")


@orders.command("list")
@data_option
@click.option(
    "--view",
    type=click.Choice(["to_prepare", "preparing", "ready", "collected_today", "expired"]),
    default="to_prepare",
    show_default=True,
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
def orders_list(data: Path, view: str, limit: int) -> None:
    """One of the counter's lists, oldest first."""
    from app.store.domain.orders.queries import counts, list_orders

    db = open_store(data)
    totals = counts(db)
    click.echo(" · ".join(f"{k} {v}" for k, v in totals.items()))
    for o in list_orders(db, view, limit=limit):
        extra = o["shelf_slot"] or ""
        if o["late_minutes"] and o["status"] in ("placed", "preparing"):
            extra = f"{o['late_minutes']} min late"
        click.echo(f"{o['number']}  {o['status']:<20} {o['customer_name']:<30} {extra}")


@main.group()
def reservations() -> None:
    """In-store reservations (stock held for a shopper for a while)."""


@reservations.command("expire")
@data_option
def reservations_expire(data: Path) -> None:
    """Put back on sale the reservations past their time.

    The server does this every minute by itself; this is for cron or a one-off."""
    from app.store.domain.reservations import expire_due

    click.echo(f"expired {expire_due(open_store(data))}")


@reservations.command("list")
@data_option
@click.option(
    "--view", type=click.Choice(["held", "closed_today"]), default="held", show_default=True
)
def reservations_list(data: Path, view: str) -> None:
    """Reservations put aside (soonest expiry first) or closed today."""
    from app.store.domain.reservations import counts, list_reservations

    db = open_store(data)
    click.echo(" · ".join(f"{k} {v}" for k, v in counts(db).items()))
    for r in list_reservations(db, view):
        when = r["expires_at"] if r["status"] == "held" else r["closed_at"]
        items = ", ".join(f"{ln['qty']}x {ln['sku']}" for ln in r["lines"])
        click.echo(f"{r['code']}  {r['status']:<10} {when}  {items}")


@main.command()
@data_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="KIOSK_HOST",
    show_envvar=True,
    help="Address to listen on (0.0.0.0 for tablets on the LAN).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    envvar="KIOSK_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    envvar="KIOSK_THREADS",
    show_envvar=True,
    type=click.IntRange(1, 64),
    help="Worker threads.",
)
@click.option(
    "--reservation-hold",
    "reservation_hold",
    default=120,
    show_default=True,
    envvar="KIOSK_RESERVATION_HOLD_MINUTES",
    show_envvar=True,
    type=click.IntRange(1, 7 * 24 * 60),
    metavar="MINUTES",
    help="How long a reservation made at a kiosk holds the stock.",
)
@hub_options
def serve(
    data: Path,
    host: str,
    port: int,
    threads: int,
    reservation_hold: int,
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    hub_timeout: float,
) -> None:
    """Run the store server under waitress (a production WSGI server), and sync with the
    hub in the background when one is configured."""
    import signal

    from app.store.app import create_app
    from app.web import security

    client = _hub_client(hub_url, store_id, store_secret, hub_timeout)
    open_store(data).close()
    app = create_app(
        {
            "DATA_DIR": str(data),
            "HUB_URL": hub_url or "",
            "RESERVATION_HOLD_MINUTES": reservation_hold,
        }
    )
    worker = None
    if client is not None:
        from app.store.sync.worker import SyncWorker

        worker = SyncWorker(dbmod.db_path(data), client, store_id=store_id).start()
        app.extensions["sync_worker"] = worker
        # Its own client (own connection pool) for the look-ups a waiting shopper makes.
        app.extensions["hub_client"] = _hub_client(hub_url, store_id, store_secret, hub_timeout)
        click.echo(f"syncing with {hub_url} as {store_id}", err=True)

    def _terminate(signum, frame):  # SIGTERM (systemd stop): leave through finally
        raise SystemExit(0)

    from app.store.jobs import ExpiryTimer

    expiry = ExpiryTimer(dbmod.db_path(data)).start()
    signal.signal(signal.SIGTERM, _terminate)
    click.echo(f"store server on http://{host}:{port}/ (data {data})", err=True)
    try:
        # A body past its page's limit (a QR photo's, a form's) is refused unread.
        security.serve(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="kiosk",
            clear_untrusted_proxy_headers=True,
        )
    finally:
        expiry.stop()
        if worker is not None:
            worker.stop()


@main.command()
@data_option
@hub_options
@click.option("--once", is_flag=True, help="One round (send, then fetch), then exit.")
@click.option(
    "--wait",
    default=0,
    show_default=True,
    type=click.IntRange(0, 30),
    help="With --once: how long the hub may hold the feed request when nothing is new.",
)
def sync(
    data: Path,
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    hub_timeout: float,
    once: bool,
    wait: int,
) -> None:
    """Exchange with the hub: send the outbox, fetch the change feed (a fresh store gets
    the whole catalog). Without --once, keep syncing in the foreground until Ctrl-C."""
    from app.store.sync import state as syncstate
    from app.store.sync.client import HubError
    from app.store.sync.pull import PullStats, pull_once
    from app.store.sync.push import push_once
    from app.store.sync.worker import SyncWorker

    client = _hub_client(hub_url, store_id, store_secret, hub_timeout)
    if client is None:
        raise click.UsageError("--hub-url (or KIOSK_HUB_URL) is required")
    db = open_store(data)
    if not once:
        worker = SyncWorker(dbmod.db_path(data), client, store_id=store_id).start()
        click.echo(f"syncing {data} with {hub_url} as {store_id}; Ctrl-C to stop", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            worker.stop()
        return
    syncstate.claim_store(db, store_id)
    started = time.monotonic()

    def progress(stats: PullStats) -> None:
        if stats.remaining or stats.pages > 1:
            total = stats.changes + stats.remaining
            click.echo(
                f"\rcatalog and stock: {stats.changes}/{total} changes "
                f"({stats.changes * 100 // max(total, 1)} %)",
                nl=not stats.remaining,
                err=True,
            )

    try:
        pushed = push_once(db, client)
        syncstate.record_success(db, "push")
        pulled = pull_once(db, client, wait=wait, own_store_id=store_id, progress=progress)
        syncstate.record_success(db, "pull")
    except HubError as exc:
        syncstate.record_failure(db, exc.message, "sync")
        raise click.ClickException(f"{exc.message} (nothing is lost: the outbox keeps it)") from exc
    depth = syncstate.snapshot(db, hub_configured=True)
    click.echo(
        f"sent {pushed.sent} ({pushed.accepted} accepted, {pushed.duplicate} duplicate, "
        f"{pushed.parked} parked); received {pulled.changes} changes in {pulled.pages} pages "
        f"(cursor {pulled.cursor}); outbox {depth['outbox_depth']} waiting, "
        f"{depth['parked']} parked; {time.monotonic() - started:.1f}s"
    )
