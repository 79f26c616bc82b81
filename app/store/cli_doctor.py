"""``kiosk doctor``: check this device and say what is wrong and how to fix it.

The checks are in app/store/doctor.py; this module prints them (or their JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.store import doctor as checks
from app.store.cli_options import data_option, hub_options

_COLOURS = {checks.OK: "green", checks.WARN: "yellow", checks.FAIL: "red", checks.SKIP: None}


@click.command()
@data_option
@hub_options
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (for scripts).")
def doctor(
    data: Path,
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    hub_timeout: float,
    as_json: bool,
) -> None:
    """Check this device: clock, hub and credentials, disk, database, backup, outbox,
    scanner and camera. Exit code 1 when a check FAILs."""
    results = checks.run_all(data, hub_url, store_id, store_secret, timeout=min(hub_timeout, 15.0))
    counts = checks.summary(results)
    ok = not checks.failed(results)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": ok,
                    "data": str(data),
                    "summary": counts,
                    "checks": [c.as_dict() for c in results],
                },
                indent=2,
            )
        )
    else:
        click.echo(f"kiosk doctor: {data}" + (f", hub {hub_url}" if hub_url else ""))
        for c in results:
            label = click.style(f"{c.status:<5}", fg=_COLOURS[c.status], bold=True)
            click.echo(f"{label} {c.name:<9} {c.message}")
            if c.fix and c.status != checks.OK:
                click.echo(f"{'':<5} {'':<9} fix: {c.fix}")
        click.echo(
            f"{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL, "
            f"{counts['SKIP']} skipped"
        )
    if not ok:
        raise SystemExit(1)
