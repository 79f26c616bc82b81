"""The ``stock.movement`` transaction handler: a store's stock level moved."""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring
from typing import Any

from app.core.clock import now_iso
from app.core.protocol import (
    CHANGE_STOCK,
    MAX_REASON,
    MAX_UNITS,
    MAX_UUID,
    PAYLOADS,
    STOCK_KINDS,
    STOCK_MOVEMENT,
)
from app.core.text import BAD_CHAR
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.changes import append_change, append_changes
from app.hub.protocol.common import Rejected, is_instant

_ENVELOPE = frozenset({"id", "type", "occurred_at", "payload"})
_SCHEMA = PAYLOADS[STOCK_MOVEMENT]
_FIELDS = frozenset(_SCHEMA)


def check(payload: dict[str, Any]) -> None:
    """Refuse a movement whose fields are wrong (before any read or write)."""
    sku, delta, kind = payload.get("sku"), payload.get("delta"), payload.get("kind")
    if not isinstance(sku, str) or not sku:
        raise Rejected("invalid_payload", "payload.sku must be a non-empty string")
    # bool is an int in Python, not in JSON's eyes: refuse true/false as a delta.
    if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_UNITS:
        raise Rejected("invalid_payload", f"payload.delta must be an integer within ±{MAX_UNITS}")
    if kind not in STOCK_KINDS:
        raise Rejected("invalid_payload", f"payload.kind must be one of {sorted(STOCK_KINDS)}")
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise Rejected("invalid_payload", f"payload.reason must be a string of ≤ {MAX_REASON}")


def plain(item: dict[str, Any], store_id: str) -> dict[str, Any] | None:
    """The payload of a ``stock.movement`` every check of the batch path would let
    through (transactions._check, then :func:`check`), in one pass over its few fields;
    None for anything else (an unknown field, a null, an odd character...): the full
    checks then run and name what is wrong. Only ever a shortcut to "valid", so a
    refusal reads the same either way (tests/test_drain_faster.py compares the two)."""
    payload = item.get("payload")
    if (
        item.get("type") != STOCK_MOVEMENT
        or not item.keys() <= _ENVELOPE
        or type(payload) is not dict
        or not payload.keys() <= _FIELDS
    ):
        return None
    tx_id, sku, delta = item.get("id"), payload.get("sku"), payload.get("delta")
    kind, reason = payload.get("kind"), payload.get("reason", "")
    sender = payload.get("store_id", store_id)
    if (
        type(tx_id) is not str
        or len(tx_id) > MAX_UUID
        or type(sku) is not str
        or len(sku) > _SCHEMA["sku"].max_len
        or not sku.strip()
        or type(delta) is not int
        or not -MAX_UNITS <= delta <= MAX_UNITS
        or type(kind) is not str
        or kind not in STOCK_KINDS
        or type(reason) is not str
        or len(reason) > _SCHEMA["reason"].max_len
        or type(sender) is not str
        or sender != store_id
        or len(sender) > _SCHEMA["store_id"].max_len
        or not is_instant(item.get("occurred_at"))
    ):
        return None
    # LF joins them: an allowed character, so the joined text holds a refused one
    # exactly when one of its parts does.
    if BAD_CHAR.search("\n".join((tx_id, item["occurred_at"], sku, kind, reason, sender))):
        return None
    return payload


def plain_digest(item: dict[str, Any]) -> str:
    """transactions.body_hash of an item :func:`plain` let through, its canonical JSON
    written out directly (sorted keys; strings as the canonical encoder writes them,
    ``encode_basestring`` being its own): the same text, a few C calls instead of a
    dict and an encoder per item."""
    payload = item["payload"]
    fields = [f'"delta":{payload["delta"]}'] + [
        f'"{key}":{encode_basestring(payload[key])}'
        for key in ("kind", "reason", "sku", "store_id")
        if key in payload
    ]
    text = (
        f'{{"occurred_at":{encode_basestring(item["occurred_at"])},'
        f'"payload":{{{",".join(fields)}}},"type":"{STOCK_MOVEMENT}"}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


def result_text(result: dict[str, Any]) -> str:
    """The canonical JSON of an accepted movement's result (as transactions records it:
    its SKU passed the text checks, so nothing to clean)."""
    return (
        f'{{"qty":{result["qty"]},"seq":{result["seq"]},"sku":{encode_basestring(result["sku"])}}}'
    )


def movement(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    """Add ``payload.delta`` to this store's level of ``payload.sku``; a ``stock`` change."""
    check(payload)
    sku, delta = payload["sku"], payload["delta"]
    if hdb.execute(db, "SELECT 1 FROM variants WHERE sku = ?", [sku]).fetchone() is None:
        raise Rejected("unknown_sku", f"no variant {sku}")
    # The hub-wide write lock before the level's row lock, as every writer takes them
    # (a batch of movements runs its reads without it: transactions.LOCK_FREE_TYPES):
    # one order of locks, no deadlock with a checkout reserving the same level.
    hdb.take_lock(db, hdb.WRITE_LOCK)
    as_of = now_iso()
    # A delta, never an overwrite: a missing level starts at 0.
    # The target's column qualified (stock_levels.qty): unqualified, PostgreSQL finds
    # "qty" ambiguous next to excluded.qty.
    qty = hdb.scalar(
        db,
        "INSERT INTO stock_levels (store_id, sku, qty, as_of) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (store_id, sku) DO UPDATE SET qty = stock_levels.qty + excluded.qty, "
        "as_of = excluded.as_of RETURNING qty",
        [store_id, sku, delta, as_of],
    )
    # "tx" names the transaction this level includes: a store that reads it in the
    # feed before the answer to its POST arrives knows not to count its movement twice.
    data = {"store_id": store_id, "sku": sku, "qty": qty, "as_of": as_of, "tx": tx_id}
    seq = append_change(db, CHANGE_STOCK, f"{store_id}/{sku}", data)
    return {"sku": sku, "qty": qty, "seq": seq}


def unknown_sku(sku: str) -> Rejected:
    return Rejected("unknown_sku", f"no variant {sku}")


def known_skus(db: Db, skus: list[str]) -> set[str]:
    """Which of ``skus`` are variants, in one statement."""
    if not skus:
        return set()
    marks = ",".join("?" * len(skus))
    sql = f"SELECT sku FROM variants WHERE sku IN ({marks})"  # noqa: S608
    return {r[0] for r in hdb.execute(db, sql, skus).fetchall()}


def movements(
    db: Db, store_id: str, accepted: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """:func:`movement` for many checked movements of known SKUs, ``(tx_id, payload)``
    in order, set-based: one upsert for the levels (the deltas summed per SKU), one
    insert for the changes; each result is what :func:`movement` would have answered
    in turn (the level just after that movement, the seq of its change). Under the
    hub-wide write lock, which the caller holds."""
    if not accepted:
        return []
    as_of = now_iso()
    totals: dict[str, int] = {}
    for _, payload in accepted:
        totals[payload["sku"]] = totals.get(payload["sku"], 0) + payload["delta"]
    marks = ",".join(["(?, ?, ?, ?)"] * len(totals))
    params: list[Any] = [v for sku, total in totals.items() for v in (store_id, sku, total, as_of)]
    final = dict(
        hdb.execute(
            db,
            f"INSERT INTO stock_levels (store_id, sku, qty, as_of) VALUES {marks} "  # noqa: S608
            "ON CONFLICT (store_id, sku) DO UPDATE SET qty = stock_levels.qty + excluded.qty, "
            "as_of = excluded.as_of RETURNING sku, qty",
            params,
        ).fetchall()
    )
    # The level after each movement: the final level less the deltas still to come.
    running = {sku: final[sku] - total for sku, total in totals.items()}
    datas = []
    for tx_id, payload in accepted:
        sku = payload["sku"]
        running[sku] += payload["delta"]
        datas.append(
            {"store_id": store_id, "sku": sku, "qty": running[sku], "as_of": as_of, "tx": tx_id}
        )
    seqs = append_changes(db, CHANGE_STOCK, [(f"{store_id}/{d['sku']}", d) for d in datas])
    return [
        {"sku": d["sku"], "qty": d["qty"], "seq": seq} for d, seq in zip(datas, seqs, strict=True)
    ]
