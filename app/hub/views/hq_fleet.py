"""The fleet dashboard (``/hq/flotte``): every store's health at a glance, for a chain
of a thousand stores.

The fleet's totals, then a page of 50 stores (``?page=``), searchable by name, city or
id (``?q=``) and filtered by state (``?etat=online|offline|never|parked``); the store
table refreshes itself every 5 s (htmx polling of ``/hq/flotte/etat`` with the same
filter and page). The parked transactions, with their retry and discard forms, are a
section of their own (10 stores a page, ``?page_bloquees=``) so a refresh never wipes a
reason being typed (static/js/hq.js pauses that section's refresh while a form in it is
in use). Charts are SVG drawn here (charts.py), for the stores the filter picks: the
eight that fell furthest behind on the feed in the last 24 hours, and the hand-overs of
all of them (per store when they are eight or fewer).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.core import clock
from app.hub.domain import fleet_dashboard as fleetdom
from app.hub.domain import fleet_pages
from app.hub.domain.fleet_pages import FleetQuery
from app.hub.domain.listing import Page, page_number, search_words
from app.hub.storage import get_db
from app.hub.views import charts
from app.hub.views.hq import audit, blueprint, current_user, login_required
from app.web.htmx import vary_on_htmx
from app.web.i18n import store_timezone

bp = blueprint("hq_fleet", __name__)

REFRESH_S = 5  # the table's own refresh; ``HQ_REFRESH_S`` (tests) overrides it
LAG_HOURS = 24
LAG_BUCKETS = 144  # 10-minute slots over 24 h (as grouped in SQL): the worst lag of each
CHART_STORES = 8  # lines a chart can show readably
STATE_LABELS = {
    "online": "En ligne",
    "offline": "Hors ligne",
    "never": "Jamais vus",
    "parked": "Avec transactions bloquées",
}
PICKUP_DAYS = 14
SKEW_WARN_S = 5
DISK_WARN_BYTES = 1024**3


def human_bytes(n: int | None) -> str:
    """``12345678`` -> ``11,8 Mo``, ``123456789`` -> ``118 Mo`` (French units), '' for None."""
    if n is None:
        return ""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return "?"
    units = ["o", "Ko", "Mo", "Go", "To"]
    i = 0 if n < 1024 else min(int(math.log(n, 1024)), len(units) - 1)
    value = n / 1024**i
    text = f"{value:.0f}" if i == 0 or value >= 100 else f"{value:.1f}"
    return f"{text.replace('.', ',')}\u00a0{units[i]}"


def human_age(seconds: int | float | None) -> str:
    """``3725`` -> ``1 h 02 min`` (French), '' for None."""
    if seconds is None:
        return ""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    if s < 60:
        return f"{s}\u00a0s"
    if s < 3600:
        return f"{s // 60}\u00a0min {s % 60:02d}\u00a0s"
    if s < 86400:
        return f"{s // 3600}\u00a0h {(s % 3600) // 60:02d}\u00a0min"
    return f"{s // 86400}\u00a0j {(s % 86400) // 3600}\u00a0h"


def _decorate(stores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the warnings the table shows next to the numbers (never colour alone)."""
    for s in stores:
        skew = s["clock_skew_s"]
        s["skew_warn"] = skew is not None and abs(skew) > SKEW_WARN_S
        s["disk_warn"] = s["free_disk_bytes"] is not None and s["free_disk_bytes"] < DISK_WARN_BYTES
        s["free_disk"] = human_bytes(s["free_disk_bytes"])
        s["db_size"] = human_bytes(s["db_size_bytes"])
        s["silent"] = human_age(s["silent_s"])
        s["oldest_unsent_age"] = human_age(s["oldest_unsent_age_s"])
        s["sync_lag"] = human_age(s["sync_lag_s"])
        s["report_age"] = human_age(
            None
            if not s["reported_at"]
            else (clock.utcnow() - clock.parse_iso(s["reported_at"])).total_seconds()
        )
        s["uptime"] = human_age(
            None
            if not s["started_at"]
            else (clock.utcnow() - clock.parse_iso(s["started_at"])).total_seconds()
        )
    return stores


def refresh_seconds() -> int:
    """How often the open dashboard asks for its table again (``HQ_REFRESH_S``)."""
    try:
        return max(1, int(current_app.config.get("HQ_REFRESH_S", REFRESH_S)))
    except (TypeError, ValueError):
        return REFRESH_S


def _query() -> FleetQuery:
    """The stores asked for: ``?q=`` (name, city or id) and ``?etat=`` (a state)."""
    state = request.args.get("etat") or None
    return FleetQuery(
        words=search_words(request.args.get("q", "")),
        state=state if state in fleet_pages.STATES else None,
        offline_after_s=fleetdom.offline_threshold(current_app.config),
        now=clock.utcnow(),
    )


def _filters(query: FleetQuery) -> dict[str, Any]:
    """The query as the page's links repeat it (only what is set)."""
    params: dict[str, Any] = {}
    if query.words:
        params["q"] = request.args.get("q", "")[:100]
    if query.state:
        params["etat"] = query.state
    return params


def _table(query: FleetQuery) -> dict[str, Any]:
    """The table section: the whole fleet's totals and one page of matching stores."""
    page: Page = fleet_pages.stores_page(get_db(), query, page_number(request.args.get("page")))
    _decorate(page.items)
    return {
        "counts": fleet_pages.summary(get_db(), query),
        "stores": page.items,
        "page": page,
        "threshold": query.offline_after_s,
        "threshold_text": human_age(query.offline_after_s),
        "refresh_s": refresh_seconds(),
        "now": clock.iso(query.now),
    }


def _parked(query: FleetQuery) -> dict[str, Any]:
    """The parked-transactions section: a page of the matching stores with some."""
    wanted = page_number(request.args.get("page_bloquees"))
    page = fleet_pages.parked_page(get_db(), query, wanted)
    return {"parked": page, "refresh_s": refresh_seconds()}


def _charts(query: FleetQuery) -> dict[str, Any]:
    """The charts section: the stores furthest behind, and the hand-overs."""
    leaders, matched = fleet_pages.furthest_behind(get_db(), query, CHART_STORES)
    return {
        "lag": _lag_chart(leaders, query.now),
        "pickups": _pickup_chart(leaders if matched <= CHART_STORES else None, query, matched),
        "matched": matched,
        "chart_stores": CHART_STORES,
        "swatch": charts.swatch,
    }


def _context(query: FleetQuery) -> dict[str, Any]:
    params = _filters(query)
    return {
        "filters": params,
        "q": params.get("q", ""),
        "state": query.state,
        "state_labels": STATE_LABELS,
        # Each section's own page, kept in the other sections' links.
        "table_page": page_number(request.args.get("page")),
        "parked_page": page_number(request.args.get("page_bloquees")),
    }


def _short_duration(seconds: float) -> str:
    """An axis label: ``45 s``, ``15 min``, ``2 h``, ``1,5 j``."""
    for unit, size in (("j", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}".rstrip("0").rstrip(".").replace(".", ",") + f" {unit}"
    return f"{seconds:.0f} s"


def _lag_chart(stores: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    zone = store_timezone()
    start = now - timedelta(hours=LAG_HOURS)
    width_s = LAG_HOURS * 3600 / LAG_BUCKETS
    history = (
        fleet_pages.lag_history(get_db(), [s["id"] for s in stores], LAG_HOURS, now)
        if stores
        else {}
    )
    series, lines = [], []
    for s in stores:
        buckets: dict[int, int] = {}
        for at, lag in history.get(s["id"], []):
            b = int((at - start).total_seconds() // width_s)
            if 0 <= b < LAG_BUCKETS:
                buckets[b] = max(buckets.get(b, 0), lag)
        points = [((b + 0.5) * width_s, float(v)) for b, v in sorted(buckets.items())]
        series.append(charts.Series(s["name"], points))
        if points:
            worst = max(v for _, v in points)
            lines.append(
                f"{s['name']} : pire retard {human_age(worst)}, dernier {human_age(points[-1][1])}"
            )
        else:
            lines.append(f"{s['name']} : aucun rapport sur la période")
    # Hours are stepped in UTC and only labelled in the stores' time: stepping wall-clock hours
    # in the zone misplaced every tick after a daylight-saving change by an hour.
    tick = (start + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    ticks = []
    while tick <= now:
        local = tick.astimezone(zone)
        if local.hour % 4 == 0:
            ticks.append(((tick - start).total_seconds(), local.strftime("%Hh")))
        tick += timedelta(hours=1)
    svg = charts.line_chart(
        "Retard de synchronisation par magasin, dernières 24 heures",
        "Âge du plus ancien changement du siège pas encore appliqué par le magasin. "
        + "\u00a0; ".join(lines)
        + ".",
        series,
        x_min=0,
        x_max=LAG_HOURS * 3600,
        x_ticks=ticks,
        y_format=_short_duration,
        tops=charts.DURATION_TOPS,
        max_gap=3 * width_s,
    )
    return {"svg": svg, "series": series}


def _pickup_chart(
    stores: list[dict[str, Any]] | None, query: FleetQuery, matched: int
) -> dict[str, Any]:
    """Hand-overs per day: a series per store of ``stores``, else one for all the stores
    the query matches (``matched`` of them)."""
    if stores is not None:
        days, counts = fleet_pages.pickups(
            get_db(),
            PICKUP_DAYS,
            query.now,
            store_ids=[s["id"] for s in stores],
            zone=store_timezone(),
        )
        named = [(s["id"], s["name"]) for s in stores]
    else:
        days, counts = fleet_pages.pickups(
            get_db(), PICKUP_DAYS, query.now, query=query, zone=store_timezone()
        )
        everyone = not (query.words or query.state)
        named = [("*", f"{'Tous les' if everyone else 'Les'} {matched} magasins")]
    labels = [f"{d[8:10]}/{d[5:7]}" for d in days]
    series = []
    lines = []
    for key, name in named:
        values = counts.get(key, [0] * len(days))
        series.append(charts.Series(name, [(i, float(v)) for i, v in enumerate(values)]))
        lines.append(f"{name} : {sum(values)} retraits, aujourd'hui {values[-1]}")
    svg = charts.bar_chart(
        f"Retraits click-and-collect par jour, {PICKUP_DAYS} derniers jours",
        "\u00a0; ".join(lines) + ".",
        labels,
        series,
        y_format=lambda v: f"{v:.0f}",
        label_every=2,
    )
    return {"svg": svg, "series": series, "days": labels, "counts": counts}


@bp.get("/flotte")
@login_required("operations")
def fleet() -> ResponseReturnValue:
    """The fleet: totals, a page of stores (searchable, filtered), parked transactions,
    charts."""
    query = _query()
    context = {**_context(query), **_table(query), **_parked(query), **_charts(query)}
    html = render_template("hq/fleet.html", **context)
    return vary_on_htmx(Response(html, mimetype="text/html"))


@bp.get("/flotte/etat")
@login_required("operations")
def fleet_table() -> ResponseReturnValue:
    """The store table alone (the dashboard polls it every 5 s, same filter and page)."""
    query = _query()
    html = render_template("hq/_fleet_table.html", **{**_context(query), **_table(query)})
    return vary_on_htmx(Response(html))


@bp.get("/flotte/bloquees")
@login_required("operations")
def fleet_parked() -> ResponseReturnValue:
    """The parked-transactions section alone (polled while no form in it is in use)."""
    query = _query()
    html = render_template("hq/_fleet_parked.html", **{**_context(query), **_parked(query)})
    return vary_on_htmx(Response(html))


@bp.get("/flotte/graphiques")
@login_required("operations")
def fleet_charts() -> ResponseReturnValue:
    """The charts alone (refreshed every minute)."""
    query = _query()
    html = render_template("hq/_fleet_charts.html", **{**_context(query), **_charts(query)})
    return vary_on_htmx(Response(html))


@bp.post("/flotte/<store_id>/bloquees/<tx_id>")
@login_required("operations")
def resolve_parked(store_id: str, tx_id: str) -> ResponseReturnValue:
    """Retry or discard one parked transaction of a store (sent through the feed)."""
    action = request.form.get("action", "")
    reason = request.form.get("reason", "").strip()
    user = current_user()
    assert user is not None
    try:
        seq = fleetdom.queue_outbox_command(
            get_db(), store_id, tx_id[:64], action, reason, by=user["email"]
        )
    except ValueError as exc:
        if action == "discard" and not reason:
            flash("Pour abandonner une transaction, indiquez la raison.")
        else:
            flash(f"Action impossible : {exc}.")
    else:
        audit(
            f"outbox.{action}",
            {"store_id": store_id, "tx_id": tx_id, "reason": reason, "seq": seq},
        )
        if action == "retry":
            flash("Nouvel essai demandé : le magasin renverra la transaction sous peu.")
        else:
            flash("Abandon demandé : le magasin retirera la transaction de sa file.")
    # The store alone, its parked transactions open: wherever it sits in the fleet.
    return redirect(url_for("hq_fleet.fleet", q=store_id, _anchor=f"bloquees-{store_id}"))
