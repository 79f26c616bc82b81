"""``kiosk backup`` and ``kiosk restore``: the store database's online backups
(app/store/domain/backups.py), listed by app/store/cli.py."""

from __future__ import annotations

from pathlib import Path

import click

from app.core import clock
from app.core import db as dbmod
from app.store.cli_options import data_option
from app.store.domain import backups as backupmod


@click.command()
@data_option
@click.option(
    "--keep",
    default=7,
    show_default=True,
    envvar="KIOSK_BACKUP_KEEP",
    show_envvar=True,
    type=click.IntRange(1, 10_000),
    help="How many backups to keep (the oldest beyond are removed).",
)
@click.option(
    "--to",
    "dest",
    default=None,
    envvar="KIOSK_BACKUP_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where backups go.  [default: DATA/backups]",
)
def backup(data: Path, keep: int, dest: Path | None) -> None:
    """Back up the store database while the server runs, check the copy's integrity,
    and remove the oldest backups beyond --keep."""
    dest = dest or data / "backups"
    try:
        result = backupmod.backup(dbmod.db_path(data), dest, clock.utcnow(), keep=keep)
    except backupmod.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backed up {dbmod.db_path(data)} to {result.path} ({result.size} bytes)")
    click.echo("integrity check: ok")
    for path in result.removed:
        click.echo(f"removed old backup {path}")
    click.echo(f"{len(backupmod.backups(dest))} backup(s) in {dest} (keeping {keep})")


@click.command()
@data_option
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The backup file to restore (kiosk backup's kiosk-<stamp>.db).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Restore even though the database is open (the server must then be restarted).",
)
def restore(data: Path, source: Path, force: bool) -> None:
    """Replace the store database with a backup, after checking the backup's integrity;
    the current database is kept as kiosk.db.before-restore-<stamp>. Stop the server
    first (systemctl stop kiosk-store)."""
    db_path = dbmod.db_path(data)
    try:
        aside = backupmod.restore(db_path, source, clock.utcnow(), force=force)
    except backupmod.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"integrity check of {source}: ok")
    if aside is not None:
        click.echo(f"kept the current database as {aside}")
    click.echo(f"restored {source} into {db_path}")
