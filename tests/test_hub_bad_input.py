"""Whatever a store sends, the hub answers it and never fails (a real hub over HTTP).

A malformed transaction (wrong JSON types, lone surrogates, control characters, numbers
out of range or absurdly long, unknown fields of the wrong shape, missing fields) is
refused alone, ``invalid_payload`` with a message naming the field; the other items of
its batch are applied; nothing of it changes the hub. A body that is not the documented
shape is a 400. Health reports are checked the same way, and the fleet dashboard draws
whatever a store ever stored.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import clock, protocol
from app.hub import database as hdb
from app.hub.domain import keys
from app.hub.domain.orders import create_order
from app.hub.protocol import stock, transactions

from .hq_helpers import logged_in, make_user
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, HubClient, hub_db, open_hub_db, store_secrets, validate

DELETE = object()


class Raw:
    """JSON text put as is in a body (what ``json.dumps`` cannot write: 1e400, 10**5000)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(value: Any) -> bytes:
    """JSON with :class:`Raw` values spliced in as their text."""
    raws: dict[str, str] = {}

    def default(obj: Any) -> Any:
        if isinstance(obj, Raw):
            key = f"__raw_{len(raws)}__"
            raws[key] = obj.text
            return key
        raise TypeError(obj)

    text = json.dumps(value, default=default)
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw)
    return text.encode()


def post(client: HubClient, items: list[Any]) -> requests.Response:
    return client.request("POST", "/api/v1/transactions", dumps({"transactions": items}))


def tx(tx_type: str, payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": tx_type,
        "occurred_at": clock.now_iso(),
        "payload": payload,
    }


def mutate(item: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    """A copy of ``item`` with the value at ``path`` replaced (or deleted)."""
    out = copy.deepcopy(item)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


# --- The hub and its state ---------------------------------------------------------


@pytest.fixture(scope="module")
def hub(module_hub):
    """(server, client signing as Lyon, skus reserved for the valid neighbours)."""
    client = HubClient(module_hub.url, LYON, store_secrets(module_hub.data)[LYON])
    db = open_hub_db(module_hub.data)
    try:
        skus = [
            r[0]
            for r in db.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku DESC "
                "LIMIT 2",
                [LYON],
            ).fetchall()
        ]
    finally:
        db.close()
    return module_hub, client, skus


TABLES = (
    "orders",
    "handovers",
    "returns",
    "notifications",
    "order_requests",
    "delivery_orders",
    "carts",
    "promotions",
)


def snapshot(data: Path, skip_skus: list[str]) -> dict[str, Any]:
    """Everything a transaction could change, except the neighbours' own stock rows."""
    db = hub_db(data)
    try:
        state: dict[str, Any] = {
            t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in TABLES
        }
        state["order_lines"] = tuple(
            db.execute(
                "SELECT coalesce(sum(qty_ready), 0), coalesce(sum(qty_collected), 0), "
                "coalesce(sum(qty_returned), 0) FROM order_lines"
            ).fetchone()
        )
        state["order_status"] = [
            tuple(r)
            for r in db.execute("SELECT id, status, revision FROM orders ORDER BY id").fetchall()
        ]
        # (An empty IN () is SQLite's only: no condition when nothing is skipped.)
        marks = ",".join("?" * len(skip_skus))
        not_skipped = f"WHERE sku NOT IN ({marks})" if skip_skus else ""
        state["stock"] = tuple(
            db.execute(
                f"SELECT coalesce(sum(qty), 0), count(*) FROM stock_levels {not_skipped}",  # noqa: S608
                skip_skus,
            ).fetchone()
        )
        other = f"WHERE NOT (kind = 'stock' AND key IN ({marks}))" if skip_skus else ""
        state["other_changes"] = db.execute(
            f"SELECT count(*) FROM changes {other}",  # noqa: S608
            [f"{LYON}/{s}" for s in skip_skus],
        ).fetchone()[0]
        return state
    finally:
        db.close()


def level(data: Path, sku: str) -> int:
    db = hub_db(data)
    try:
        return db.execute(
            "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [LYON, sku]
        ).fetchone()[0]
    finally:
        db.close()


def recorded(data: Path, tx_id: str) -> tuple | None:
    db = hub_db(data)
    try:
        return db.execute(
            "SELECT status, reason FROM transactions WHERE id = ?", [tx_id]
        ).fetchone()
    finally:
        db.close()


def new_order(data: Path) -> dict[str, Any]:
    """A placed order of 2 + 1 units for Lyon, made in the hub's database."""
    db = open_hub_db(data)
    try:
        skus = [
            r[0]
            for r in db.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku "
                "LIMIT 2 OFFSET ?",
                [LYON, 10],
            ).fetchall()
        ]
        lines = [{"sku": skus[0], "qty": 2}, {"sku": skus[1], "qty": 1}]
        return create_order(
            db,
            LYON,
            "Chloé Dubois",
            "chloe@example.com",
            lines,
            private_key=keys.current_private_key(data),
        )["order"]
    finally:
        db.close()


def accept(client: HubClient, item: dict[str, Any]) -> dict[str, Any]:
    resp = post(client, [item])
    assert resp.status_code == 200, resp.text
    [res] = resp.json()["results"]
    assert res["status"] == "accepted", res
    return res


def base_item(kind: str, client: HubClient, data: Path) -> dict[str, Any]:
    """A valid transaction of ``kind`` (its order prepared as it needs)."""
    if kind == "stock.movement":
        sku = new_order(data)["lines"][0]["sku"]
        return tx(kind, {"sku": sku, "delta": -1, "kind": "adjusted", "reason": "casse"})
    if kind == "order.request":
        sku = new_order(data)["lines"][0]["sku"]
        return tx(
            kind,
            {
                "request_id": str(uuid.uuid4()),
                "fulfilment": "home",
                "customer_name": "Chloé Dubois",
                "customer_email": "chloe@example.com",
                "address": {"line1": "3 rue de la Paix", "postcode": "69002", "city": "Lyon"},
                "lines": [{"sku": sku, "qty": 1, "shown_total_cents": 100}],
                "priced_at": clock.now_iso(),
            },
        )
    order = new_order(data)
    oid = order["id"]
    if kind == "order.expired":
        return tx(kind, {"order_id": oid})
    ready = {
        "order_id": oid,
        "shelf_slot": "C-07",
        "staff": "sf-1",
        "lines": [{"line": 1, "qty_ready": 2}, {"line": 2, "qty_ready": 1}],
    }
    if kind == "order.ready":
        return tx(kind, ready)
    accept(client, tx("order.ready", ready))
    if kind == "order.reminder":
        return tx(kind, {"order_id": oid, "expires_at": clock.now_iso()})
    handover = {
        "handover_id": str(uuid.uuid4()),
        "order_id": oid,
        "collector": "proxy",
        "collector_name": "Paul",
        "method": "override",
        "override_reason": "pas de QR",
        "staff": "sf-1",
        "manager": "mg-1",
        "lines": [{"line": 1, "qty": 2}],
    }
    if kind == "order.handover":
        return tx(kind, handover)
    accept(client, tx("order.handover", handover))
    sku = order["lines"][0]["sku"]
    return tx(
        "order.return",
        {
            "return_id": str(uuid.uuid4()),
            "order_id": oid,
            "reason": "trop petit",
            "refund": "store_credit",
            "staff": "sf-1",
            "manager": "mg-1",
            "lines": [{"line": 1, "sku": sku, "qty": 1, "condition": "resellable"}],
        },
    )


SURROGATE = "\ud800"
LONG = "x" * 10_000
DEEP = [[[[[[["deep"]]]]]]]

# (type, path in the item, bad value, what the message must name)
CASES = [
    ("stock.movement", ("payload", "delta"), "1", "payload.delta"),
    ("stock.movement", ("payload", "delta"), [1], "payload.delta"),
    ("stock.movement", ("payload", "delta"), None, "payload.delta"),
    ("stock.movement", ("payload", "delta"), True, "payload.delta"),
    ("stock.movement", ("payload", "delta"), 1.5, "payload.delta"),
    ("stock.movement", ("payload", "delta"), Raw("1" + "0" * 30), "payload.delta"),
    ("stock.movement", ("payload", "delta"), Raw("9" * 5000), "payload.delta"),
    ("stock.movement", ("payload", "delta"), Raw("1e400"), "payload.delta"),
    ("stock.movement", ("payload", "delta"), Raw("-1e400"), "payload.delta"),
    ("stock.movement", ("payload", "delta"), DELETE, "payload.delta"),
    ("stock.movement", ("payload", "sku"), SURROGATE, "payload.sku"),
    ("stock.movement", ("payload", "sku"), "M10\x00", "payload.sku"),
    ("stock.movement", ("payload", "sku"), {"a": 1}, "payload.sku"),
    ("stock.movement", ("payload", "kind"), 5, "payload.kind"),
    ("stock.movement", ("payload", "reason"), LONG, "payload.reason"),
    ("stock.movement", ("payload", "reason"), "a\x1bb", "payload.reason"),
    ("stock.movement", ("payload", "reason"), "ok" + SURROGATE, "payload.reason"),
    ("stock.movement", ("payload", "extra"), DEEP, "payload.extra"),
    ("stock.movement", ("payload", "extra"), SURROGATE, "payload.extra"),
    ("stock.movement", ("payload", "extra"), Raw("1e999"), "payload.extra"),
    ("stock.movement", ("payload", "extra"), list(range(1001)), "payload.extra"),
    ("stock.movement", ("payload", "extra" + SURROGATE), 1, "payload"),
    ("stock.movement", ("payload",), [], "payload"),
    ("stock.movement", ("payload",), None, "payload"),
    ("stock.movement", ("occurred_at",), 5, "occurred_at"),
    ("stock.movement", ("occurred_at",), "0001-01-01T00:00:00+05:00", "occurred_at"),
    ("stock.movement", ("type",), ["stock.movement"], "type"),
    ("stock.movement", ("extra",), {"a": DEEP}, "transaction.extra"),
    ("order.ready", ("payload", "lines", 0, "qty_ready"), "2", "payload.lines[0].qty_ready"),
    ("order.ready", ("payload", "lines", 0, "line"), Raw("1" * 40), "payload.lines[0].line"),
    ("order.ready", ("payload", "lines", 1), 5, "payload.lines[1]"),
    ("order.ready", ("payload", "lines"), "1,2", "payload.lines"),
    ("order.ready", ("payload", "shelf_slot"), None, "payload.shelf_slot"),
    ("order.ready", ("payload", "staff"), 5, "payload.staff"),
    ("order.ready", ("payload", "order_id"), [1], "payload.order_id"),
    ("order.ready", ("payload", "order_id"), SURROGATE, "payload.order_id"),
    ("order.handover", ("payload", "collector"), 5, "payload.collector"),
    ("order.handover", ("payload", "lines", 0, "qty"), 1.5, "payload.lines[0].qty"),
    ("order.handover", ("payload", "lines", 0, "qty"), Raw("2e308"), "payload.lines[0].qty"),
    ("order.handover", ("payload", "handover_id"), 7, "payload.handover_id"),
    ("order.handover", ("payload", "collector_name"), SURROGATE, "payload.collector_name"),
    ("order.handover", ("payload", "override_reason"), LONG, "payload.override_reason"),
    ("order.handover", ("payload", "manager"), {"id": 1}, "payload.manager"),
    ("order.expired", ("payload", "order_id"), True, "payload.order_id"),
    ("order.expired", ("payload", "order_id"), DELETE, "payload.order_id"),
    ("order.reminder", ("payload", "expires_at"), 5, "payload.expires_at"),
    ("order.return", ("payload", "lines", 0, "qty"), "1", "payload.lines[0].qty"),
    ("order.return", ("payload", "lines", 0, "condition"), None, "payload.lines[0].condition"),
    ("order.return", ("payload", "order_id"), [], "payload.order_id"),
    ("order.return", ("payload", "reason"), "\x00", "payload.reason"),
    ("order.return", ("payload", "refund"), Raw("-0"), "payload.refund"),
    ("order.request", ("payload", "customer_name"), SURROGATE, "payload.customer_name"),
    ("order.request", ("payload", "customer_email"), "a\x07@b.fr", "payload.customer_email"),
    ("order.request", ("payload", "lines", 0, "qty"), Raw("1e400"), "payload.lines[0].qty"),
    (
        "order.request",
        ("payload", "lines", 0, "shown_total_cents"),
        -1,
        "payload.lines[0].shown_total_cents",
    ),
    ("order.request", ("payload", "address"), "Lyon", "payload.address"),
    ("order.request", ("payload", "address", "city"), SURROGATE, "payload.address.city"),
    ("order.request", ("payload", "priced_at"), 5, "payload.priced_at"),
    ("order.request", ("payload", "cart_id"), {"c": 1}, "payload.cart_id"),
]


@pytest.mark.parametrize(
    "kind,path,bad,field", CASES, ids=[f"{c[0]}:{c[3]}:{i}" for i, c in enumerate(CASES)]
)
def test_a_bad_item_is_refused_alone_and_changes_nothing(hub, kind, path, bad, field):
    server, client, (sku_a, sku_b) = hub
    good = base_item(kind, client, server.data)
    bad_item = mutate(good, path, bad)
    before_a, before_b = level(server.data, sku_a), level(server.data, sku_b)
    state = snapshot(server.data, [sku_a, sku_b])
    first = tx("stock.movement", {"sku": sku_a, "delta": -1, "kind": "adjusted"})
    last = tx("stock.movement", {"sku": sku_b, "delta": 2, "kind": "adjusted"})

    resp = post(client, [first, bad_item, last])

    assert resp.status_code == 200, resp.text
    body = resp.json()
    validate(body, "TransactionResults")
    ok1, refused, ok2 = body["results"]
    assert refused["status"] == "rejected", refused
    assert refused["reason"] == "invalid_payload", refused
    assert refused["id"] == bad_item["id"]
    assert field in refused["message"], refused["message"]
    assert ok1["status"] == ok2["status"] == "accepted", body
    # The neighbours were applied, exactly; the refused item changed nothing else.
    assert level(server.data, sku_a) == before_a - 1
    assert level(server.data, sku_b) == before_b + 2
    assert snapshot(server.data, [sku_a, sku_b]) == state
    assert recorded(server.data, bad_item["id"]) == ("rejected", "invalid_payload")
    # Sent again, the same answer (kept under its id), still nothing applied.
    [again] = post(client, [bad_item]).json()["results"]
    assert (again["status"], again["original_status"], again["reason"]) == (
        "duplicate",
        "rejected",
        "invalid_payload",
    )
    assert snapshot(server.data, [sku_a, sku_b]) == state
    # The unbroken item (under a new id) is fine: the one change is what was refused.
    accept(client, {**good, "id": str(uuid.uuid4())})


def test_same_id_with_a_different_body_is_still_a_conflict(hub):
    server, client, (sku_a, _b) = hub
    good = tx("stock.movement", {"sku": sku_a, "delta": 1, "kind": "adjusted"})
    accept(client, good)
    for bad in (SURROGATE, Raw("1e400"), [1]):
        [res] = post(client, [mutate(good, ("payload", "delta"), bad)]).json()["results"]
        assert (res["status"], res["reason"]) == ("rejected", "conflict"), res


BAD_BODIES = [
    (b"not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"[]", "JSON object"),
    (b"null", "JSON object"),
    (b'"transactions"', "JSON object"),
    (b"{}", "transactions"),
    (b'{"transactions": {}}', "transactions"),
    (b'{"transactions": "x"}', "transactions"),
    (b'{"transactions": null}', "transactions"),
    (b'{"transactions": [1]}', "transactions[0]"),
    (b'{"transactions": [{}, []]}', "transactions[1]"),
    (b'{"transactions": [{}, null]}', "transactions[1]"),
    (b'{"transactions": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "nests deeper"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b', "transactions": []}', "nests deeper"),
    (b'{"transactions": [], "x": NaN}', "not valid JSON"),
    (b'{"transactions": [], "x": Infinity}', "not valid JSON"),
]


@pytest.mark.parametrize("body,words", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_a_body_that_is_not_the_documented_shape_is_a_400(hub, body, words):
    server, client, (sku_a, sku_b) = hub
    state = snapshot(server.data, [])
    resp = client.request("POST", "/api/v1/transactions", body)
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    validate(answer, "Error")
    assert answer["error"] == "bad_request" and words in answer["message"], answer
    assert snapshot(server.data, []) == state


def test_too_many_items_is_refused_whole(hub):
    server, client, (sku_a, _b) = hub
    before = level(server.data, sku_a)
    items = [tx("stock.movement", {"sku": sku_a, "delta": 1, "kind": "adjusted"})] * 501
    resp = post(client, items)
    assert resp.status_code == 413 and resp.json()["error"] == "batch_too_large", resp.text
    assert "500" in resp.json()["message"]
    assert level(server.data, sku_a) == before


def test_an_unexpected_error_in_one_item_rolls_back_that_item_only(hub_data, monkeypatch):
    """The safety net: a handler that writes, then fails as no check foresaw."""
    db = open_hub_db(hub_data)
    sku, qty = db.execute(
        "SELECT sku, qty FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1", [LYON]
    ).fetchone()
    seq = db.execute("SELECT max(seq) FROM changes").fetchone()[0]

    def boom(db, store_id, payload, tx_id):
        stock.movement(db, store_id, payload, tx_id)  # a write…
        raise KeyError("a bug")  # …then a crash

    monkeypatch.setitem(transactions.HANDLERS, "test.boom", boom)
    monkeypatch.setitem(
        protocol.PAYLOADS,
        "test.boom",
        protocol.PAYLOADS["stock.movement"],
    )
    move = {"sku": sku, "delta": -1, "kind": "adjusted"}
    items = [tx("stock.movement", move), tx("test.boom", move), tx("stock.movement", move)]
    results = transactions.apply_batch(db, LYON, items, data_dir=hub_data)
    try:
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
        assert results[1]["reason"] == "invalid_payload" and "unexpected" in results[1]["message"]
        level_now = db.execute(
            "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [LYON, sku]
        ).fetchone()[0]
        assert level_now == qty - 2  # not -3: the failed item's write was rolled back
        assert db.execute("SELECT count(*) FROM changes WHERE seq > ?", [seq]).fetchone()[0] == 2
        # Not recorded: the hub's fault, not the item's. Once the hub is mended, the same
        # id sent again (head office's "retry") is applied.
        stored = db.execute("SELECT 1 FROM transactions WHERE id = ?", [items[1]["id"]])
        assert stored.fetchone() is None
        monkeypatch.setitem(transactions.HANDLERS, "test.boom", stock.movement)
        [again] = transactions.apply_batch(db, LYON, [items[1]], data_dir=hub_data)
        assert again["status"] == "accepted"
    finally:
        db.close()


# --- Hypothesis: arbitrary JSON into every field of every type ---------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from([SURROGATE, "\x00", "a\udfffb", LONG, "", " ", "2026-13-45T99:99:99Z"])
    | st.builds(Raw, st.sampled_from(["1e400", "-1e400", "9" * 5000, "1" * 25, "-0", "0.0"]))
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

KINDS = sorted({c[0] for c in CASES})


def field_paths(item: dict[str, Any]) -> list[tuple]:
    """Every path into an item's fields, the payload's nested ones included."""
    paths: list[tuple] = [("id",), ("type",), ("occurred_at",), ("payload",)]
    stack: list[tuple[Any, tuple]] = [(item["payload"], ("payload",))]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                paths.append((*path, key))
                stack.append((child, (*path, key)))
        elif isinstance(value, list):
            for i, child in enumerate(value):
                paths.append((*path, i))
                stack.append((child, (*path, i)))
    return paths


@pytest.fixture(scope="module")
def bases(hub):
    """One valid item per type, re-used as templates (their ids change each time)."""
    server, client, _ = hub
    return {kind: base_item(kind, client, server.data) for kind in KINDS}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_arbitrary_json_in_any_field_is_never_a_server_error(hub, bases, data):
    server, client, (sku_a, _b) = hub
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    base = {**bases[kind], "id": str(uuid.uuid4())}
    path = data.draw(st.sampled_from(field_paths(base)), label="path")
    value = data.draw(JSON_VALUES | st.just(DELETE), label="value")
    if path == ("id",) and value is DELETE:
        value = None
    item = mutate(base, path, value)
    first = tx("stock.movement", {"sku": sku_a, "delta": 0, "kind": "adjusted"})
    last = tx("stock.movement", {"sku": sku_a, "delta": 0, "kind": "adjusted"})
    resp = post(client, [first, item, last])
    assert resp.status_code == 200, resp.text[:500]
    body = resp.json()
    validate(body, "TransactionResults")
    ok1, middle, ok2 = body["results"]
    assert ok1["status"] == ok2["status"] == "accepted", body
    assert middle["status"] in ("accepted", "rejected", "duplicate"), middle
    if middle["status"] == "rejected":
        assert middle["reason"] and middle["message"], middle


# --- Health reports -----------------------------------------------------------------


def health(client: HubClient, report: Any) -> requests.Response:
    return client.request("POST", "/api/v1/health", dumps(report))


def good_report() -> dict[str, Any]:
    return {
        "software_version": "0.1.0",
        "started_at": clock.now_iso(),
        "outbox_depth": 1,
        "free_disk_bytes": 10**10,
        "db_size_bytes": 10**6,
        "parked_count": 0,
        "parked": [],
        "cursor": 1,
        "sent_at": clock.now_iso(),
    }


HEALTH_CASES = [
    (("software_version",), SURROGATE, "software_version"),
    (("software_version",), "1.0\x00", "software_version"),
    (("software_version",), LONG, "software_version"),
    (("software_version",), 5, "software_version"),
    (("outbox_depth",), "3", "outbox_depth"),
    (("outbox_depth",), -1, "outbox_depth"),
    (("outbox_depth",), Raw("9" * 5000), "outbox_depth"),
    (("free_disk_bytes",), Raw("1e400"), "free_disk_bytes"),
    (("free_disk_bytes",), 2**70, "free_disk_bytes"),
    (("free_disk_bytes",), True, "free_disk_bytes"),
    (("cursor",), [1], "cursor"),
    (("started_at",), "0001-01-01T00:00:00+05:00", "started_at"),
    (("started_at",), SURROGATE, "started_at"),
    (("sent_at",), DELETE, "sent_at"),
    (("sent_at",), 1, "sent_at"),
    (("parked",), {"id": "x"}, "parked"),
    (("parked",), [5], "parked[0]"),
    (("parked",), [{"id": SURROGATE}], "parked[0].id"),
    (("parked",), [{"id": LONG}], "parked[0].id"),
    (("parked",), [{"id": "x", "type": 5}], "parked[0].type"),
    (("parked_count",), 1.5, "parked_count"),
]


@pytest.mark.parametrize(
    "path,bad,field", HEALTH_CASES, ids=[f"{c[2]}:{i}" for i, c in enumerate(HEALTH_CASES)]
)
def test_a_bad_health_report_is_a_400_naming_the_field(hub, path, bad, field):
    server, client, _ = hub
    assert health(client, good_report()).status_code == 200
    before = health_row(server.data)
    resp = health(client, mutate(good_report(), path, bad))
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    validate(answer, "Error")
    assert answer["error"] == "bad_request" and field in answer["message"], answer
    # The refused report was not kept (only "last seen" may move: the store was heard).
    assert health_row(server.data) == before


def health_row(data: Path) -> dict[str, Any]:
    db = hub_db(data)
    try:
        [row] = hdb.rows(db, "SELECT * FROM store_health WHERE store_id = ?", [LYON])
        history = db.execute("SELECT count(*) FROM store_health_history").fetchone()[0]
    finally:
        db.close()
    row.pop("last_seen_at")
    return {**row, "history": history}


def test_parked_texts_are_cleaned_not_refused(hub):
    """A parked row's text comes from a rejection message: kept, made safe, shown."""
    server, client, _ = hub
    report = good_report()
    report["parked"] = [
        {
            "id": str(uuid.uuid4()),
            "type": "stock.movement",
            "reason": "invalid_payload",
            "message": "bad \x00" + SURROGATE + LONG,
            "created_at": clock.now_iso(),
        }
    ]
    report["parked_count"] = 1
    resp = health(client, report)
    assert resp.status_code == 200, resp.text
    validate(resp.json(), "HealthAnswer")
    db = hub_db(server.data)
    [parked] = json.loads(
        db.execute("SELECT parked FROM store_health WHERE store_id = ?", [LYON]).fetchone()[0]
    )
    db.close()
    assert parked["message"].startswith("bad \ufffd\ufffdxxx") and len(parked["message"]) <= 500


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_arbitrary_json_in_a_health_report_is_never_a_server_error(hub, data):
    server, client, _ = hub
    report = good_report()
    report["parked"] = [
        {"id": "x", "type": "t", "reason": "r", "message": "m", "created_at": clock.now_iso()}
    ]
    paths = [(k,) for k in report] + [("parked", 0, k) for k in report["parked"][0]]
    path = data.draw(st.sampled_from(paths), label="path")
    value = data.draw(JSON_VALUES | st.just(DELETE), label="value")
    resp = health(client, mutate(report, path, value))
    assert resp.status_code in (200, 400), resp.text[:500]
    validate(resp.json(), "HealthAnswer" if resp.status_code == 200 else "Error")
    page = logged_in_ops(server).get(server.url + "/hq/flotte", timeout=20)
    assert page.status_code == 200


_OPS: dict[str, requests.Session] = {}


def logged_in_ops(server) -> requests.Session:
    """One logged-in operations session per hub (the login is rate-limited)."""
    if server.url not in _OPS:
        _OPS[server.url] = logged_in(server.url, make_user(server.data, "operations"))
    return _OPS[server.url]


# --- The fleet dashboard draws whatever is stored ----------------------------------


def test_the_fleet_dashboard_shows_odd_stored_values_as_invalid(hub_server):
    """Rows an older or buggy store/hub could have left: every page still draws them."""
    from .hq_helpers import make_token
    from .hub_fixtures import BORDEAUX, PARIS

    now = clock.now_iso()
    db = hub_db(hub_server.data)
    # SQLite keeps whatever it is given (text in an integer column, a NUL in a text one);
    # PostgreSQL's typed columns refuse those: there, the oddest values the types hold
    # (negative counts and sizes, infinities, NaN, text that is no instant or version).
    lite = not hdb.is_pg(db)
    try:
        rows = [
            (
                LYON,
                5 if lite else "5",
                ("1.0\x00" if lite else "1.0\x01") + "v" * 10_000,
                "hier",
                "lots" if lite else -5,
                -5,
                1.5 if lite else -1,
                "0001-01-01T00:00:00+05:00",
                "{not json",
                "x" if lite else -1,
                "abc" if lite else -2,
                -1,
                float("inf"),
                "2026-99-99",
            ),
            (PARIS, now, "0.1.0", now, 10**10, 10**6, 0, None, '[{"id": 5}]', 1, 1, 0, 1e300, now),
            (
                BORDEAUX,
                now,
                "0.1.0",
                now,
                10**10,
                10**6,
                0,
                None,
                json.dumps(
                    [
                        {
                            "id": "t-1",
                            "type": "<script>x</script>",
                            "reason": 5,
                            "message": "m",
                            "created_at": "hier",
                        }
                    ]
                ),
                1,
                1,
                0,
                "x" if lite else float("nan"),
                now,
            ),
        ]
        with hdb.write(db):
            hdb.execute(
                db, "DELETE FROM store_health WHERE store_id IN (?, ?, ?)", [LYON, PARIS, BORDEAUX]
            )
            hdb.executemany(
                db,
                "INSERT INTO store_health (store_id, reported_at, software_version, "
                "started_at, free_disk_bytes, db_size_bytes, outbox_depth, oldest_unsent_at, "
                "parked, parked_count, cursor, sync_lag_s, clock_skew_s, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            hdb.executemany(
                db,
                "INSERT INTO store_health_history (store_id, at, sync_lag_s, outbox_depth) "
                "VALUES (?, ?, ?, ?)",
                [
                    (LYON, "garbage", 5, 1),
                    (LYON, now, "x", "y") if lite else (LYON, now, -3, -4),
                    (PARIS, now, float("inf") if lite else 2**63 - 1, -1),
                    (BORDEAUX, "9999-99-99T00:00:00Z", 1, 1),
                    (BORDEAUX, now, 30, 2),
                ],
            )
            hdb.execute(
                db,
                "INSERT INTO changes (kind, key, data, store_id, created_at) "
                "VALUES ('outbox_command', 't-1', '{broken', ?, ?)",
                [BORDEAUX, now],
            )
    finally:
        db.close()

    session = logged_in(hub_server.url, make_user(hub_server.data, "operations"))
    page = session.get(hub_server.url + "/hq/flotte", timeout=20)
    assert page.status_code == 200, page.text[:2000]
    assert "valeur invalide" in page.text
    for field in (
        "software_version",
        "started_at",
        "free_disk_bytes",
        "db_size_bytes",
        "outbox_depth",
        "parked",
        "cursor",
        "clock_skew_s",
        "last_seen_at",
    ):
        assert f'data-invalid="{field}"' in page.text, field
    assert "<script>x" not in page.text and "&lt;script&gt;x" in page.text
    for part in ("etat", "bloquees", "graphiques"):
        resp = session.get(f"{hub_server.url}/hq/flotte/{part}", timeout=20)
        assert resp.status_code == 200, (part, resp.text[:2000])
    assert "valeur invalide" in session.get(hub_server.url + "/hq/flotte/etat", timeout=20).text
    # Head office can still act on the store whose parked list is readable.
    token = make_token(hub_server.data, "operations")
    api = requests.get(
        hub_server.url + "/api/v1/hq/stores",
        timeout=20,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 200, api.text[:2000]
    validate(api.json(), "HqFleet")
    lyon = next(s for s in api.json()["stores"] if s["id"] == LYON)
    assert lyon["free_disk_bytes"] is None and "free_disk_bytes" in lyon["invalid"]
