"""``kiosk hub personal refresh``: the daily job of personal suggestions (issue 14).

Products bought together are rebuilt from the last year's orders, then every customer
who consented is recomputed (app/hub/domain/personal.py) and their card sent again to
the stores holding it only where the payload changed (app/hub/domain/customer_feed.py
``refresh``). Progress on stderr; the summary (counts only, no person named) on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.hub.cli_options import data_options


@click.group("personal")
def personal() -> None:
    """Personal suggestions for shoppers who consented (sizes, seen online, offers)."""


@personal.command("refresh")
@data_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def personal_refresh(data: Path, as_json: bool) -> None:
    """Recompute every consenting customer's suggestions and send each store only what
    changed (run it daily, e.g. at night after 'kiosk hub retention')."""
    from app.core.clock import now_iso
    from app.core.progress import progress_bar
    from app.hub.cli_privacy import _ring
    from app.hub.domain import customer_feed
    from app.hub.storage import open_db

    db = open_db(data)
    try:
        ring = _ring(db, data)
        if as_json:
            summary = customer_feed.refresh(db, ring)
        else:
            with progress_bar("customers") as progress:
                summary = customer_feed.refresh(db, ring, progress)
    finally:
        db.close()
    summary = {"at": now_iso(), **summary}
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"personal refresh at {summary['at']}: {summary['pairs']} product pair(s) rebuilt; "
        f"{summary['customers']} customer(s) recomputed, {summary['changed']} changed, "
        f"{summary['changes']} card change(s) sent to stores"
    )
