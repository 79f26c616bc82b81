"""The fleet as head office sees it: health reports, offline stores, parked transactions.

Against real hub processes (and a real store server for the retry/discard round trip).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from app.core import clock
from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import fleet, fleet_dashboard
from app.hub.domain.changes import append_change, last_seq
from app.store.domain.stock import levels
from app.store.sync import health

from .hq_helpers import csrf_token, logged_in, make_token, make_user
from .hub_fixtures import (
    BORDEAUX,
    LYON,
    PARIS,
    HubClient,
    hub_db,
    open_hub_db,
    store_secrets,
    validate,
)
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import adjust_cli, store_env, wait_for

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock


def _report(**extra) -> dict:
    return {
        "software_version": "9.9.9",
        "started_at": "2026-01-02T03:04:05Z",
        "free_disk_bytes": 5 * 1024**3,
        "db_size_bytes": 42 * 1024**2,
        "outbox_depth": 0,
        "oldest_unsent_at": None,
        "parked": [],
        "cursor": 0,
        "sent_at": clock.now_iso(),
        **extra,
    }


def _post_health(client: HubClient, report: dict) -> requests.Response:
    return client.request("POST", "/api/v1/health", json.dumps(report).encode())


def _fleet_api(base: str, token: str) -> dict[str, dict]:
    answer = requests.get(
        f"{base}/api/v1/hq/stores", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    answer.raise_for_status()
    validate(answer.json(), "HqFleet")
    return {s["id"]: s for s in answer.json()["stores"]}


def _row(html: str, store_id: str) -> str:
    match = re.search(rf'<tr class="store-(\w+)" data-store="{store_id}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {store_id}"
    return match.group(1) + " " + match.group(2)


def test_a_store_clock_off_by_more_than_a_minute_is_flagged_on_the_fleet_page(
    hub_factory, hub_data
):
    """kiosk-setup keeps the clock right (timesyncd); when it is not, head office sees it."""
    frozen = clock.utcnow().replace(microsecond=0)
    hub = hub_factory(hub_data, {"KIOSK_FAKE_NOW": clock.iso(frozen)})
    ops = logged_in(hub.url, make_user(hub_data, "operations"))
    client = HubClient(hub.url, LYON, store_secrets(hub_data)[LYON])
    for offset, flagged in ((-90, True), (2, False), (61, True)):
        sent = clock.iso(frozen + timedelta(seconds=offset))
        assert _post_health(client, _report(sent_at=sent)).status_code == 200
        lyon = _row(ops.get(f"{hub.url}/hq/flotte", timeout=10).text, LYON)
        assert f"{offset:+d},0 s" in lyon, lyon
        assert ("horloge à régler" in lyon) is flagged, (offset, lyon)


def test_health_report_over_signed_http_gives_skew_lag_and_the_dashboard_shows_it(
    hub_factory, hub_data
):
    # The hub's clock is frozen, so the skew it computes is exact.
    frozen = clock.utcnow().replace(microsecond=0)
    hub = hub_factory(hub_data, {"KIOSK_FAKE_NOW": clock.iso(frozen)})
    client = HubClient(hub.url, LYON, store_secrets(hub_data)[LYON])
    newest = last_seq(hub_db(hub_data))
    ahead = clock.iso(frozen + timedelta(seconds=42))
    answer = _post_health(client, _report(sent_at=ahead, cursor=newest, outbox_depth=7))
    assert answer.status_code == 200, answer.text
    assert answer.json()["clock_skew_s"] == 42.0 and answer.json()["sync_lag_s"] == 0
    validate(answer.json(), "HealthAnswer")
    # One change behind: the lag is the age of that change at the hub's (frozen) time.
    db = hub_db(hub_data)
    created = db.execute("SELECT created_at FROM changes WHERE seq = ?", [newest]).fetchone()[0]
    behind = _post_health(client, _report(sent_at=clock.iso(frozen), cursor=newest - 1))
    expected_lag = int((frozen - clock.parse_iso(created)).total_seconds())
    assert behind.json() == {
        "clock_skew_s": 0.0,
        "sync_lag_s": expected_lag,
        "received_at": clock.iso(frozen),
    }
    # One row per report (each pair names its report: the table has no key to order by).
    history = db.execute(
        "SELECT sync_lag_s, outbox_depth FROM store_health_history WHERE store_id = ?",
        [LYON],
    ).fetchall()
    assert sorted(map(tuple, history)) == sorted([(0, 7), (expected_lag, 0)])
    # Malformed reports and unsigned ones are refused.
    for bad in (
        _report(parked="nope"),
        _report(parked=[{"id": str(i)} for i in range(51)]),
        _report(outbox_depth=-1),
        {**_report(), "sent_at": "yesterday"},
    ):
        refused = _post_health(client, bad)
        assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
    unsigned = requests.post(f"{hub.url}/api/v1/health", json=_report(), timeout=10)
    assert unsigned.status_code == 401
    # The console: Lyon online with what it reported, the others never heard from.
    ops = logged_in(hub.url, make_user(hub_data, "operations"))
    page = ops.get(f"{hub.url}/hq/flotte", timeout=10)
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    lyon = _row(page.text, LYON)
    assert lyon.startswith("online") and "En ligne" in lyon and "9.9.9" in lyon
    assert "5,0\u00a0Go" in lyon and "42,0\u00a0Mo" in lyon
    for other in (PARIS, BORDEAUX):
        assert _row(page.text, other).startswith("never") and "Jamais vu" in _row(page.text, other)
    # Server-drawn charts, described for screen readers, no inline style (CSP).
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert "<desc id=" in page.text and "Retard de synchronisation" in page.text
    assert " style=" not in page.text
    table = ops.get(f"{hub.url}/hq/flotte/etat", headers={"HX-Request": "true"}, timeout=10)
    assert table.text.lstrip().startswith('<section id="fleet-table"')


def test_a_silent_store_turns_offline_and_any_signed_request_brings_it_back(hub_factory, hub_data):
    hub = hub_factory(hub_data, {"KIOSK_HUB_HQ_OFFLINE_AFTER_S": "2"})
    client = HubClient(hub.url, LYON, store_secrets(hub_data)[LYON])
    token = make_token(hub_data, "operations")
    assert _post_health(client, _report(outbox_depth=3)).status_code == 200
    assert _fleet_api(hub.url, token)[LYON]["status"] in ("online", "offline")
    offline = wait_for(
        lambda: (s := _fleet_api(hub.url, token)[LYON])["status"] == "offline" and s,
        15,
        "Lyon to be shown offline",
    )
    assert offline["silent_s"] > 2 and offline["outbox_depth"] == 3
    ops = logged_in(hub.url, make_user(hub_data, "operations"))
    row = _row(ops.get(f"{hub.url}/hq/flotte", timeout=10).text, LYON)
    assert row.startswith("offline") and "Hors ligne" in row and "silencieux depuis" in row
    # A feed request (not a health report) is contact too.
    assert client.changes(since=0, limit=1).status_code == 200
    assert _fleet_api(hub.url, token)[LYON]["status"] == "online"


def test_history_is_pruned_and_lag_follows_the_cursor(hub_data):
    db = open_hub_db(hub_data)
    seq = append_change(db, "test", "k", {}, store_id=LYON)
    created = clock.parse_iso(
        db.execute("SELECT created_at FROM changes WHERE seq = ?", [seq]).fetchone()[0]
    )
    later = created + timedelta(seconds=100)
    assert fleet.record_health(db, LYON, _report(cursor=seq - 1), now=later)["sync_lag_s"] == 100
    assert fleet.record_health(db, LYON, _report(cursor=seq), now=later)["sync_lag_s"] == 0
    # A change for another store does not make Lyon late.
    append_change(db, "test", "k2", {}, store_id=PARIS)
    assert fleet.sync_lag(db, LYON, seq, later) == 0
    far = later + timedelta(seconds=fleet.HISTORY_KEEP_S + 1)
    fleet.record_health(db, LYON, _report(), now=far)
    rows = db.execute("SELECT at FROM store_health_history WHERE store_id = ?", [LYON]).fetchall()
    assert rows == [(clock.iso(far),)]
    db.close()


def _add_variant(db, sku: str, ean: str) -> None:
    """A variant of an existing product (the same row at the hub and at the store)."""
    product = db.execute("SELECT pk FROM products ORDER BY pk LIMIT 1").fetchone()[0]
    db.execute(
        "INSERT INTO variants (sku, product_pk, ean, size, size_order, colour_code, colour_fr, "
        "colour_en, colour_hex, price_cents) VALUES (?, ?, ?, 'M', 0, 'zz', 'Test', 'Test', "
        "'#123456', NULL)",
        [sku, product, ean],
    )


def _commands(hub) -> int:
    """How many commands head office queued for stores (changes of kind outbox_command)."""
    return hdb.scalar(hub, "SELECT count(*) FROM changes WHERE kind = 'outbox_command'")


def _outbox_row(store: Path, tx_id: str) -> dict | None:
    db = dbmod.connect(dbmod.db_path(store))
    try:
        rows = db.execute_returning_dicts(
            "SELECT acked_at, parked_reason, result, attempts FROM outbox WHERE id = ?", [tx_id]
        )
        return rows[0] if rows else None
    finally:
        db.close()


def test_head_office_retries_and_discards_parked_transactions_at_a_real_store(
    hub_server, synced_store, server_factory
):
    hub_data = hub_server.data
    # A catalog mismatch: the store knows two variants the hub does not, so the hub
    # rejects their stock movements and the store parks them.
    store_db = dbmod.connect(dbmod.db_path(synced_store))
    _add_variant(store_db, "ZZTEST-1", "0000000000017")
    _add_variant(store_db, "ZZTEST-2", "0000000000024")
    store_db.close()
    env = {**store_env(hub_server.url, hub_data), "KIOSK_HEALTH_INTERVAL_S": "1"}
    server_factory(synced_store, env)
    fixable = adjust_cli(synced_store, "ZZTEST-1", 2)
    hopeless = adjust_cli(synced_store, "ZZTEST-2", 3)
    assert fixable and hopeless
    token = make_token(hub_data, "operations")

    def parked_at_hub() -> set[str]:
        return {p["id"] for p in _fleet_api(hub_server.url, token)[LYON]["parked"]}

    wait_for(lambda: parked_at_hub() == {fixable, hopeless}, 30, "both parked at the hub")
    lyon = _fleet_api(hub_server.url, token)[LYON]
    assert lyon["parked_count"] == 2 and {p["reason"] for p in lyon["parked"]} == {"unknown_sku"}
    store_db = dbmod.connect(dbmod.db_path(synced_store))
    assert levels(store_db, ["ZZTEST-2"], clamp=False) == {"ZZTEST-2": 0}  # parked: not counted
    store_db.close()

    ops_user = make_user(hub_data, "operations")
    ops = logged_in(hub_server.url, ops_user)
    page = ops.get(f"{hub_server.url}/hq/flotte", timeout=10).text
    assert "Réessayer" in page and "Abandonner" in page and "unknown_sku" in page
    csrf = csrf_token(ops, f"{hub_server.url}/hq/flotte")
    url = f"{hub_server.url}/hq/flotte/{LYON}/bloquees"

    # Head office fixes the catalog, then asks for a retry.
    hub = hub_db(hub_data)
    _add_variant(hub, "ZZTEST-1", "0000000000017")
    retried = ops.post(f"{url}/{fixable}", data={"action": "retry", "csrf_token": csrf})
    assert retried.status_code == 200 and "Nouvel essai demandé" in retried.text
    # Discarding needs a reason: refused, no command queued. (Counted by kind: the store
    # may meanwhile resend the retried movement, a stock change at the hub.)
    commands_before = _commands(hub)
    no_reason = ops.post(f"{url}/{hopeless}", data={"action": "discard", "csrf_token": csrf})
    assert "indiquez la raison" in no_reason.text
    assert _commands(hub) == commands_before
    # Only what the store reported as parked can be named.
    unknown = ops.post(f"{url}/not-a-tx", data={"action": "retry", "csrf_token": csrf})
    assert "Action impossible" in unknown.text and _commands(hub) == commands_before
    discarded = ops.post(
        f"{url}/{hopeless}",
        data={"action": "discard", "reason": "article jamais référencé", "csrf_token": csrf},
    )
    assert "Abandon demandé" in discarded.text

    # The store receives both commands through its feed and carries them out.
    done = wait_for(
        lambda: (row := _outbox_row(synced_store, fixable))["acked_at"] and row,
        30,
        "the retried movement to be accepted",
    )
    assert done["parked_reason"] is None and "discarded" not in (done["result"] or "")
    assert hub.execute("SELECT status FROM transactions WHERE id = ?", [fixable]).fetchone() == (
        "accepted",
    )
    gone = wait_for(
        lambda: (row := _outbox_row(synced_store, hopeless))["acked_at"] and row,
        30,
        "the discarded movement to leave the queue",
    )
    result = json.loads(gone["result"])
    assert result["discarded"] is True and result["reason"] == "article jamais référencé"
    assert result["by"] == ops_user["email"]
    # Never sent: the hub has only its first rejection of it.
    assert hub.execute("SELECT status FROM transactions WHERE id = ?", [hopeless]).fetchone() == (
        "rejected",
    )
    store_db = dbmod.connect(dbmod.db_path(synced_store))
    assert levels(store_db, ["ZZTEST-1", "ZZTEST-2"], clamp=False) == {
        "ZZTEST-1": 2,
        "ZZTEST-2": 0,
    }
    store_audit = [
        r[0] for r in store_db.execute("SELECT action FROM audit_log WHERE action LIKE 'outbox.%'")
    ]
    assert sorted(store_audit) == ["outbox.discard", "outbox.retry"]
    store_db.close()
    # The store's next report clears them from the dashboard; both actions are audited.
    wait_for(lambda: not parked_at_hub(), 30, "the dashboard to show nothing parked")
    audit = {
        r[0]: json.loads(r[1])
        for r in hub.execute(
            "SELECT action, detail FROM hq_audit WHERE actor_id = ? AND action LIKE 'outbox.%'",
            [ops_user["id"]],
        )
    }
    assert audit["outbox.retry"]["tx_id"] == fixable
    assert audit["outbox.discard"]["reason"] == "article jamais référencé"
    hub.close()


def test_pickups_per_day_count_handovers_by_store_and_local_day(hub_data):
    db = open_hub_db(hub_data)
    now = clock.parse_iso("2026-11-22T12:00:00Z")
    for n, (store, at) in enumerate(
        [
            (LYON, "2026-11-22T09:00:00Z"),
            (LYON, "2026-11-21T23:30:00Z"),  # already the 22nd in Paris (UTC+1)
            (LYON, "2026-11-20T10:00:00Z"),
            (PARIS, "2026-11-22T10:00:00Z"),
            (PARIS, "2026-10-01T10:00:00Z"),  # older than 14 days: not shown
        ]
    ):
        db.execute(
            "INSERT INTO orders (id, number, store_id, status, customer_name, customer_email, "
            "placed_at, pickup_code, pickup_code_hash, pickup_token, updated_at) "
            "VALUES (?, ?, ?, 'collected', 'C', 'c@x.test', ?, '0', 'h', 't', ?)",
            [f"o-test{n}", f"CC-T{n}", store, at, at],
        )
        db.execute(
            "INSERT INTO handovers (handover_id, order_id, lines, collector, method, staff, at) "
            "VALUES (?, ?, '[]', 'customer', 'qr', 's', ?)",
            [f"h-test{n}", f"o-test{n}", at],
        )
    days, counts = fleet_dashboard.pickups_per_day(db, 14, now)
    assert len(days) == 14 and days[-1] == "2026-11-22" and days[0] == "2026-11-09"
    assert counts[LYON][-1] == 2 and counts[LYON][-3] == 1 and sum(counts[LYON]) == 3
    assert sum(counts[PARIS]) == 1
    db.close()


def test_the_store_report_follows_the_protocol(synced_store):
    db = dbmod.connect(dbmod.db_path(synced_store))
    adjust_cli(synced_store, db.execute("SELECT sku FROM variants LIMIT 1").fetchone()[0], 1)
    report = health.build_report(db, synced_store)
    db.close()
    validate(report, "HealthReport")
    assert report["outbox_depth"] == 1 and report["oldest_unsent_at"]
    assert report["db_size_bytes"] >= dbmod.db_path(synced_store).stat().st_size > 0
    assert report["free_disk_bytes"] > 0 and report["cursor"] > 0
    assert report["software_version"] == health.software_version() != "0.0.0+unknown"


def test_lag_chart_hours_sit_at_their_time_across_a_clock_change(monkeypatch):
    """The 24-hour lag chart's hour ticks: each one where that Paris hour really was, the
    morning after the clocks spring forward or fall back (found by the faketime run)."""
    from datetime import UTC, datetime

    from app.hub.views import hq_fleet

    from .dates import PARIS_TZ, next_fall_back, next_spring_forward

    drawn: dict = {}
    monkeypatch.setattr(hq_fleet, "get_db", lambda: None)
    monkeypatch.setattr(hq_fleet.fleetdom, "lag_history", lambda db, hours, now: {})
    monkeypatch.setattr(hq_fleet.charts, "line_chart", lambda *a, **kw: drawn.update(kw) or "")
    for night in (next_spring_forward(), next_fall_back()):
        now = datetime(night.year, night.month, night.day, 6, 30, tzinfo=UTC)
        hq_fleet._lag_chart([], now)
        start = now - timedelta(hours=hq_fleet.LAG_HOURS)
        ticks = drawn["x_ticks"]
        assert len(ticks) >= 5, ticks  # every 4 Paris hours over 24 real ones
        for x, label in ticks:
            local = (start + timedelta(seconds=x)).astimezone(PARIS_TZ)
            assert (local.strftime("%Hh"), local.minute, local.hour % 4) == (label, 0, 0), night


def test_the_dashboard_writes_sizes_and_ages_in_french_units():
    from app.hub.views.hq_fleet import human_age, human_bytes

    assert human_bytes(None) == "" and human_age(None) == ""
    assert human_bytes(512) == "512\u00a0o"
    assert human_bytes(123456789) == "118\u00a0Mo"
    assert human_bytes(12345678) == "11,8\u00a0Mo"
    assert human_bytes(-1) == "?" and human_bytes(True) == "?"
    assert human_age(42) == "42\u00a0s"
    assert human_age(3725) == "1\u00a0h 02\u00a0min"
    assert human_age(2 * 86400 + 3 * 3600) == "2\u00a0j 3\u00a0h"
    assert human_age(float("nan")) == "?"
