"""``kiosk hub serve``: the hub's web server (gevent by default, or waitress)."""

from __future__ import annotations

from pathlib import Path

import click

from app.hub.cli_options import data_options


@click.command()
@data_options
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
    default=32,
    show_default=True,
    envvar="KIOSK_HUB_THREADS",
    show_envvar=True,
    type=click.IntRange(1, 256),
    help="waitress's worker threads (--server waitress only; gevent needs none).",
)
@click.option(
    "--server",
    "server_kind",
    default="gevent",
    show_default=True,
    envvar="KIOSK_HUB_SERVER",
    show_envvar=True,
    type=click.Choice(["gevent", "waitress"]),
    help="gevent: a held long-poll costs a greenlet, not a thread (1,000 stores); "
    "waitress: a thread per request, at most --threads at once.",
)
@click.option(
    "--max-waiters",
    default=None,
    envvar="KIOSK_HUB_MAX_WAITERS",
    show_envvar=True,
    type=click.IntRange(1, 1_000_000),
    help="Long-polls held at once before the hub answers 503 with Retry-After "
    "[default: 5000 under gevent, threads - 4 under waitress].",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    envvar="KIOSK_HUB_WORKERS",
    show_envvar=True,
    type=click.IntRange(1, 64),
    help="Hub processes sharing the port (gevent only). Beyond 1, prefer PostgreSQL "
    "(docs/large-chain.md).",
)
@click.option(
    "--db-pool",
    default=10,
    show_default=True,
    envvar="KIOSK_HUB_DB_POOL",
    show_envvar=True,
    type=click.IntRange(1, 200),
    help="PostgreSQL connections each worker keeps at most (SQLite: 4 x this, reused).",
)
@click.option(
    "--access-log",
    is_flag=True,
    envvar="KIOSK_HUB_ACCESS_LOG",
    help="Log every request with its status and duration on stderr (gevent only).",
)
def serve(
    data: Path,
    host: str,
    port: int,
    threads: int,
    server_kind: str,
    max_waiters: int | None,
    workers: int,
    db_pool: int,
    access_log: bool,
) -> None:
    """Run the hub (gevent's event-driven WSGI server by default, or waitress)."""
    if workers > 1 and server_kind != "gevent":
        raise click.UsageError("--workers needs --server gevent")
    if server_kind == "gevent":
        # Before the app and its storage are imported: their thread-locals, locks and
        # sleeps must be greenlet-aware.
        from gevent import monkey

        monkey.patch_all()
    from app.hub.app import create_hub_app
    from app.hub.mailer import smtp_settings, start_mailer
    from app.web import security

    if max_waiters is None:
        # Under waitress a held poll holds a thread: leave a few for posts.
        max_waiters = 5000 if server_kind == "gevent" else max(1, threads - 4)
    from app.hub.storage import database_target, describe

    app = create_hub_app(
        {"DATA_DIR": str(data), "FEED_MAX_WAITERS": max_waiters, "DB_POOL_SIZE": db_pool}
    )
    where = describe(database_target(data))
    click.echo(
        f"hub on http://{host}:{port}/ (data {data}, database {where}, {server_kind})", err=True
    )
    settings = smtp_settings()
    if settings and settings.get("dir"):
        click.echo(f"e-mails to customers written to {settings['dir']} (not sent)", err=True)
    elif settings:
        click.echo(f"e-mailing customers through {settings['host']}:{settings['port']}", err=True)
    if server_kind == "gevent":
        from app.hub import server

        def in_worker(index: int) -> None:
            if settings and index == 0:  # one mailer for the whole hub
                start_mailer(data, settings)

        server.serve(app, host, port, workers=workers, in_worker=in_worker, access_log=access_log)
        return
    if settings:
        start_mailer(data, settings)
    # A body past its area's limit (4 MiB for the sync API) is refused unread.
    security.serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="kiosk-hub",
        clear_untrusted_proxy_headers=True,
    )
