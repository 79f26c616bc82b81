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
from app.store import cli_admin, cli_backup, cli_doctor, cli_worker
from app.store.cli_options import data_option, hub_client, hub_options, open_store
from app.store.config import load_default_map


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


# The record-keeping commands (app/store/cli_admin.py), listed here.
for _group in (cli_admin.staff, cli_admin.stock, cli_admin.orders, cli_admin.reservations):
    main.add_command(_group)
# Backups of the store database (app/store/cli_backup.py).
main.add_command(cli_backup.backup)
main.add_command(cli_backup.restore)

# kiosk doctor (app/store/cli_doctor.py).
main.add_command(cli_doctor.doctor)
# kiosk worker (app/store/cli_worker.py): sync, health and timers, once per store.
main.add_command(cli_worker.worker)


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
    help="Request threads in all, divided among the web workers (gunicorn).",
)
@click.option(
    "--workers",
    default=None,
    envvar="KIOSK_WORKERS",
    show_envvar=True,
    type=click.IntRange(1, 32),
    help="Web worker processes (gunicorn); default: one per core.",
)
@click.option(
    "--server",
    "server_kind",
    default="gunicorn",
    show_default=True,
    envvar="KIOSK_SERVER",
    show_envvar=True,
    type=click.Choice(["gunicorn", "waitress"]),
    help="gunicorn: --workers processes and one `kiosk worker`; waitress: one process.",
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
    workers: int | None,
    server_kind: str,
    reservation_hold: int,
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    hub_timeout: float,
) -> None:
    """Run the store server: gunicorn's web workers (one per core) and one `kiosk worker`
    syncing with the hub and running the timers (app/store/server.py); or, with
    `--server waitress`, all of it in one process."""
    import signal

    from app.store.app import create_app
    from app.web import security

    client = hub_client(hub_url, store_id, store_secret, hub_timeout)
    open_store(data).close()
    settings = {
        "DATA_DIR": str(data),
        "HUB_URL": hub_url or "",
        "RESERVATION_HOLD_MINUTES": reservation_hold,
    }
    if server_kind == "gunicorn":
        hub = (hub_url, store_id, store_secret, hub_timeout)
        _serve_gunicorn(data, host, port, threads, workers, settings, hub)
        return
    app = create_app(settings)
    worker = None
    if client is not None:
        from app.store.sync.worker import SyncWorker

        worker = SyncWorker(dbmod.db_path(data), client, store_id=store_id).start()
        app.extensions["sync_worker"] = worker
        # Its own client (own connection pool) for the look-ups a waiting shopper makes.
        app.extensions["hub_client"] = hub_client(hub_url, store_id, store_secret, hub_timeout)
        click.echo(f"syncing with {hub_url} as {store_id}", err=True)

    def _terminate(signum, frame):  # SIGTERM (systemd stop): leave through finally
        raise SystemExit(0)

    from app.store.jobs import ExpiryTimer
    from app.store.notify import Watchdog

    expiry = ExpiryTimer(dbmod.db_path(data)).start()
    signal.signal(signal.SIGTERM, _terminate)
    # systemd (Type=notify, WatchdogSec): READY=1 once it answers, pings while it does.
    watchdog = Watchdog.for_server(host, port).start()
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
        watchdog.stop()
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
    from app.store.sync import state
    from app.store.sync.client import HubError
    from app.store.sync.pull import PullStats, pull_once
    from app.store.sync.push import push_once
    from app.store.sync.worker import SyncWorker

    client = hub_client(hub_url, store_id, store_secret, hub_timeout)
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
    state.claim_store(db, store_id)
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
        state.record_success(db, "push")
        pulled = pull_once(db, client, wait=wait, own_store_id=store_id, progress=progress)
        state.record_success(db, "pull")
    except HubError as exc:
        state.record_failure(db, exc.message, "sync")
        raise click.ClickException(f"{exc.message} (nothing is lost: the outbox keeps it)") from exc
    depth = state.snapshot(db, hub_configured=True)
    click.echo(
        f"sent {pushed.sent} ({pushed.accepted} accepted, {pushed.duplicate} duplicate, "
        f"{pushed.parked} parked); received {pulled.changes} changes in {pulled.pages} pages "
        f"(cursor {pulled.cursor}); outbox {depth['outbox_depth']} waiting, "
        f"{depth['parked']} parked; {time.monotonic() - started:.1f}s"
    )


def _serve_gunicorn(data, host, port, threads, workers, settings, hub) -> None:
    """``kiosk serve``'s default: see app/store/server.py."""
    import os

    from app.store import server
    from app.store.app import create_app
    from app.store.notify import Watchdog

    def load():
        app = create_app(settings)
        # The look-ups a waiting shopper makes (a scanned cart, a card), from each worker
        # with its own client; the sync itself is the kiosk worker's.
        app.extensions["hub_client"] = hub_client(*hub)
        server.warm(app)
        return app

    # The kiosk worker reads the hub settings from its environment, never from its
    # arguments (a secret on a command line is visible to every user of the box).
    child_env = dict(os.environ)
    hub_url, store_id, store_secret, hub_timeout = hub
    if hub_url:
        child_env.update(
            KIOSK_HUB_URL=hub_url,
            KIOSK_STORE_ID=store_id,
            KIOSK_STORE_SECRET=store_secret,
            KIOSK_HUB_TIMEOUT=str(hub_timeout),
        )
        click.echo(f"syncing with {hub_url} as {store_id} (kiosk worker)", err=True)
    else:
        for name in ("KIOSK_HUB_URL", "KIOSK_STORE_ID", "KIOSK_STORE_SECRET"):
            child_env.pop(name, None)
    # systemd (Type=notify, WatchdogSec): READY=1 once it answers, pings while it does,
    # from this process (the main one); the children never speak to systemd.
    watchdog = Watchdog.for_server(host, port)
    server.quiet_children(os.environ)
    server.quiet_children(child_env)
    count = workers or server.default_workers()
    # As many requests at once as under waitress, divided among the workers: each
    # thread holds a connection and its page cache (benchmarks/store_processes.py).
    each = -(-threads // count)
    sidecar = server.Sidecar(server.worker_argv(str(data)), child_env)
    click.echo(
        f"store server on http://{host}:{port}/ (data {data}; {count} web workers, "
        f"{each} threads each, one kiosk worker)",
        err=True,
    )
    watchdog.start()
    server.StoreServer(
        load, server.options(host, port, count, each), sidecar, on_exit=watchdog.stop
    ).run()
