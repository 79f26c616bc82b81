"""The store's record-keeping commands: ``kiosk staff``, ``stock``, ``orders`` and
``reservations`` (registered on ``kiosk`` by :mod:`app.store.cli`)."""

from __future__ import annotations

from pathlib import Path

import click

from app.store.cli_options import data_option, open_store


@click.group()
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


@click.group()
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


@click.group()
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


@click.group()
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
