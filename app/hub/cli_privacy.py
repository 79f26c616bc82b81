"""``kiosk hub retention`` and ``kiosk hub pii rotate``: personal data kept only as long
as the CNIL's figures allow, and its key rotated (docs/data-protection.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.hub.cli_options import data_options


def _ring(db, data: Path):
    """The hub's key ring (app.hub.domain.pii.hub_ring), its refusal as the command's."""
    from app.hub.domain.pii import PiiKeyError, hub_ring

    try:
        return hub_ring(db, data)
    except PiiKeyError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("retention")
@data_options
@click.option("--dry-run", is_flag=True, help="Report what would be done; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def retention(data: Path, dry_run: bool, as_json: bool) -> None:
    """Apply the retention rules (run it daily): warn customers inactive for 3 years
    minus 30 days, delete them at 3 years (their orders kept, anonymised), delete orders
    after 10 years, spent sign-in codes and sessions after a day, audit entries after a
    year. The report names ids and counts, never a name or an e-mail."""
    from app.hub.domain import retention as rules
    from app.hub.domain import retention_mail
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        ring = _ring(db, data)
        report = rules.run(db, dry_run=dry_run, ring=ring, warn=retention_mail.mail_warning(ring))
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo("\n".join(rules.report_lines(report)))


@click.group("pii")
def pii() -> None:
    """The key that seals personal data at rest (DATA/secrets/pii-keys.json)."""


def _print_rotation(report: dict, path: object) -> None:
    if "previous" in report:
        click.echo(f"new key {report['current']} (was {report['previous']}); key file {path}")
    for column, n in report.get("rewritten", {}).items():
        click.echo(f"  {column}: {n} value(s) re-encrypted")
    for kid, n in report["keys_in_use"].items():
        click.echo(f"  key {kid}: {n} value(s)" + ("  (unused: may be removed)" if not n else ""))


@pii.command("rotate")
@data_options
@click.option(
    "--no-reencrypt",
    is_flag=True,
    help="Only add the new key; rewrite the values later with 'kiosk hub pii reencrypt' "
    "(after restarting the running hub processes, so that they know the new key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def pii_rotate(data: Path, no_reencrypt: bool, as_json: bool) -> None:
    """Make a new key current and re-encrypt every sealed column with it. Old keys stay
    in the file (values not yet rewritten still open); back the file up again after."""
    from app.hub.domain import pii_rotation
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        ring = _ring(db, data)
        report = pii_rotation.rotate(db, ring, reencrypt=not no_reencrypt)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_rotation(report, ring.path)
    click.echo("Back the key file up again now (docs/data-protection.md).", err=True)


@pii.command("reencrypt")
@data_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def pii_reencrypt(data: Path, as_json: bool) -> None:
    """Rewrite every sealed value still under an older key with the current one (after
    'kiosk hub pii rotate --no-reencrypt', or to finish a pass that stopped)."""
    from app.hub.domain import pii_rotation
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        ring = _ring(db, data)
        report = {
            "current": ring.current,
            "rewritten": pii_rotation.reencrypt_all(db, ring),
            "keys_in_use": pii_rotation.keys_in_use(db, ring),
        }
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_rotation(report, ring.path)
