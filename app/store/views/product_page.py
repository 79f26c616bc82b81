"""What the kiosk's product page shows (helpers, no routes: app/store/views/kiosk.py).

The chosen colour and size, the live stock panel (sizes, this store, the other stores)
and how old the other stores' figures are: they come through the hub, so they are
labelled "stock au 15:22" only when this store has not heard from the hub lately.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from app.core import catalog, clock
from app.store.domain import stock
from app.store.sync import state
from app.web.i18n import current_lang, format_clock, format_local_datetime, local_when

MAX_ARG = 40  # a SKU, colour code or size is far shorter; longer input matches nothing


def here_offline(db: Any) -> dict[str, Any] | None:
    """When this store's own figures may be behind the hub's: offline or not synced lately.

    None without a hub (the store is its own truth), else ``{"since": "14:02" | None,
    "token": ...}``; the token joins the panel's version so open pages show the change.
    """
    if not current_app.config.get("HUB_URL"):
        return None
    now = clock.utcnow()
    last = state.last_sync_at(db)
    fresh = last is not None and (now - last).total_seconds() <= _stale_after_s()
    if fresh and state.is_online(db, now):
        return None
    return {
        "since": format_clock(last) if last else None,
        "token": f"off{int(last.timestamp()) if last else 0}",
    }


def _stale_after_s() -> int:
    """How long without one successful exchange with the hub before figures are old.

    Other stores' levels reach this store only through the hub's change feed, which a
    healthy sync worker long-polls every 25 s: a change made anywhere arrives within
    seconds. The default two minutes (``STALE_AFTER_SECONDS``) is several missed polls
    and past the 90 s after which the store calls itself offline (sync/state.py
    ONLINE_WINDOW_S), so a slow answer or a worker restart does not label every figure,
    and a figure shown without a label is never more than about two minutes older than
    it looks. This store's own figures (``here_offline``) use the same threshold."""
    return int(current_app.config["STALE_AFTER_SECONDS"])


def hub_quiet(db: Any, now: datetime) -> dict[str, Any] | None:
    """None while this store hears from the hub (its last successful exchange is under
    ``STALE_AFTER_SECONDS`` old), else ``{"since": that exchange or None if never,
    "token": ...}``; the token joins the panel's version so open pages gain or drop the
    "stock au" label when the link changes.

    Without a hub nothing is ever heard: other stores' figures are always as old as their
    load (``since`` None), and the token is empty, since nothing can change that.

    The link's last contact, not a level's own date, decides: a level that has not
    changed for a week is still today's figure when the feed is flowing.
    """
    if not current_app.config.get("HUB_URL"):
        return {"since": None, "token": ""}
    last = state.last_sync_at(db)
    if last is not None and (now - last).total_seconds() <= _stale_after_s():
        return None
    return {"since": last, "token": f"q{int(last.timestamp()) if last else 0}"}


def as_of_label(moment: datetime, now: datetime) -> str:
    """When a figure dates from, as the shopper reads it: ``15:22`` today, with the date
    (``03/12/2026 15:22``) on another day, in the store's time zone."""
    when = local_when(moment, now)
    if when is None:
        return ""
    return when.clock if when.today else format_local_datetime(moment, width="short")


def panel_version(db: Any) -> str:
    """What the open stock panel compares: the stock version, plus the offline state and
    whether the hub has gone quiet (so an open page gains or drops "stock au")."""
    version = str(stock.stock_version(db))
    offline = here_offline(db)
    if offline:
        version += f"-{offline['token']}"
    quiet = hub_quiet(db, clock.utcnow())
    if quiet and quiet["token"]:
        version += f"-{quiet['token']}"
    return version


def choose(
    variants: list[dict[str, Any]], sku: str, colour: str, size: str, usual: str | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The chosen variant (None: a colour without a size yet) and the chosen colour.

    ``sku`` names a variant. Else ``colour`` (with the ``size`` chosen before, when
    the shopper changes colour): that colour in that size if it comes in it, else that
    colour with no size chosen, unless it comes in one size only. Else, as on opening
    the product: its first variant in stock here, in the recognised shopper's ``usual``
    size (personal, with consent) when it comes in it, in stock here first.
    """
    sku, colour, size = sku[:MAX_ARG], colour[:MAX_ARG], size[:MAX_ARG]
    if sku:
        picked = next((v for v in variants if v["sku"] == sku), None)
        if picked:
            return picked, picked["colour_code"]
    in_colour = [v for v in variants if colour and v["colour_code"] == colour]
    if in_colour:
        same_size = next((v for v in in_colour if size and v["size"] == size), None)
        if same_size:
            return same_size, colour
        return (in_colour[0] if len(in_colour) == 1 else None), colour
    in_usual = [v for v in variants if usual and v["size"] == usual]
    if in_usual:
        first = next((v for v in in_usual if v["qty"] > 0), in_usual[0])
        return first, first["colour_code"]
    first = next((v for v in variants if v["qty"] > 0), variants[0] if variants else None)
    return first, first["colour_code"] if first else None


def stock_context(
    db: Any,
    product: dict[str, Any],
    sku: str = "",
    colour: str = "",
    size: str = "",
    *,
    usual: str | None = None,
) -> dict[str, Any]:
    """Everything the product page's live stock panel and action bar show; ``usual``:
    the size a recognised shopper takes in this category (app/store/domain/personal.py)."""
    lang = current_lang()
    variants = catalog.variants(db, product["pk"], lang)
    levels = stock.levels(db, [v["sku"] for v in variants])
    for v in variants:
        v["qty"] = levels.get(v["sku"], 0)
        v["badge"] = stock.badge(v["qty"])
    selected, chosen_colour = choose(variants, sku, colour, size, usual)
    colours: dict[str, dict[str, Any]] = {}
    for v in variants:
        colours.setdefault(
            v["colour_code"],
            {
                "code": v["colour_code"],
                "name": v["colour"],
                "hex": v["colour_hex"],
                "sku": v["sku"],
            },
        )
    sizes = [v for v in variants if v["colour_code"] == chosen_colour]
    others = stock.other_stores(db, [selected["sku"]]) if selected else []
    now = clock.utcnow()
    quiet = hub_quiet(db, now)
    for s in others:
        s["qty"] = s.get("levels", {}).get(selected["sku"], 0) if selected else 0
        s["badge"] = stock.badge(s["qty"])
        s["stale_at"] = None
        if quiet:
            # As of the hub's last answer; never heard from it, as of the figure's load.
            since = quiet["since"] or (clock.parse_iso(s["as_of"]) if s.get("as_of") else None)
            s["stale_at"] = as_of_label(since, now) if since else None
    return {
        "product": product,
        "variants": variants,
        "selected": selected,
        "chosen_colour": colours.get(chosen_colour or ""),
        "colours": list(colours.values()),
        "sizes": sizes,
        "usual_size": usual if usual and any(v["size"] == usual for v in variants) else None,
        "others": others,
        "version": panel_version(db),
        "here_offline": here_offline(db),
        "poll_seconds": current_app.config["STOCK_POLL_SECONDS"],
    }
