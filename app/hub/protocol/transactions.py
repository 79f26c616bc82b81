"""Applying batches of store transactions exactly once (docs/protocol.md).

One ``BEGIN IMMEDIATE`` transaction per batch, one savepoint per item. Why per batch:
with ``synchronous=FULL`` every commit is an fsync, and 500 of them per request would
dominate; one commit makes the whole batch durable before any "accepted" is sent. Why
a savepoint per item: a rejected item rolls back to its savepoint, so it never blocks
the others and is never half-applied. Exactly-once: the transaction id is the PRIMARY
KEY of ``transactions``, written in the same savepoint as the effects, and writers are
serialized by the write lock, so two requests carrying one id (other threads, other
hub processes) see each other: the second finds the row and answers ``duplicate``.

Nothing a store sends can fail the batch: each item is checked at the boundary
(:mod:`.validate`: clean JSON, then its type's schema) and refused alone
(``invalid_payload``, naming the field); an unexpected error while applying one item
rolls that item's savepoint back, is logged, and refuses that item only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlite_utils import Database

from app.core import db as dbmod
from app.core.clock import now_iso, parse_iso
from app.core.text import clean_text
from app.hub.domain.changes import append_change
from app.hub.protocol import validate

log = logging.getLogger(__name__)

MAX_BATCH = 500
STOCK_KINDS = frozenset({"adjusted", "picked_up", "returned", "reserved", "released", "sold"})
MAX_DELTA = 1_000_000
MAX_REASON = 500


class Rejected(Exception):
    """A transaction the hub refuses; ``reason`` is the protocol's stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: equal JSON values give equal strings."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=validate.json_default,
    )


def body_hash(item: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what identifies a transaction's content."""
    body = {k: item.get(k) for k in ("type", "occurred_at", "payload")}
    # surrogatepass: a lone surrogate sent by a store still hashes (the item is refused,
    # and the same item sent again must get the same answer).
    return hashlib.sha256(canonical_json(body).encode("utf-8", "surrogatepass")).hexdigest()


def parse_id(value: Any) -> str | None:
    """The canonical (lower-case, hyphenated) form of a UUID, or None if it is not one."""
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# --------------------------------------------------------------------------- types


def _stock_movement(
    db: Database, store_id: str, payload: dict[str, Any], tx_id: str
) -> dict[str, Any]:
    sku, delta, kind = payload.get("sku"), payload.get("delta"), payload.get("kind")
    if not isinstance(sku, str) or not sku:
        raise Rejected("invalid_payload", "payload.sku must be a non-empty string")
    # bool is an int in Python, not in JSON's eyes: refuse true/false as a delta.
    if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_DELTA:
        raise Rejected("invalid_payload", f"payload.delta must be an integer within ±{MAX_DELTA}")
    if kind not in STOCK_KINDS:
        raise Rejected("invalid_payload", f"payload.kind must be one of {sorted(STOCK_KINDS)}")
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise Rejected("invalid_payload", f"payload.reason must be a string of ≤ {MAX_REASON}")
    if db.execute("SELECT 1 FROM variants WHERE sku = ?", [sku]).fetchone() is None:
        raise Rejected("unknown_sku", f"no variant {sku}")
    as_of = now_iso()
    # A delta, never an overwrite: a missing level starts at 0.
    qty = db.execute(
        "INSERT INTO stock_levels (store_id, sku, qty, as_of) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (store_id, sku) DO UPDATE SET qty = qty + excluded.qty, "
        "as_of = excluded.as_of RETURNING qty",
        [store_id, sku, delta, as_of],
    ).fetchall()[0][0]
    # "tx" names the transaction this level includes: a store that reads it in the
    # feed before the answer to its POST arrives knows not to count its movement twice.
    data = {"store_id": store_id, "sku": sku, "qty": qty, "as_of": as_of, "tx": tx_id}
    seq = append_change(db, "stock", f"{store_id}/{sku}", data)
    return {"sku": sku, "qty": qty, "seq": seq}


#: type -> handler(db, store_id, payload, tx_id) -> result; it raises Rejected to refuse.
HANDLERS: dict[str, Callable[[Database, str, dict[str, Any], str], dict[str, Any]]] = {
    "stock.movement": _stock_movement,
}


# --------------------------------------------------------------------------- batches


def _is_instant(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        # To UTC too: "0001-01-01T00:00:00+05:00" parses but cannot be shown or compared.
        moment = parse_iso(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return 1970 <= moment.year <= 9998


def _check(item: dict[str, Any], store_id: str) -> tuple[Callable[..., dict[str, Any]], dict]:
    """Validate what every type shares; return the handler and the payload."""
    tx_type = item.get("type")
    if not isinstance(tx_type, str):
        raise Rejected("invalid_payload", "type: expected a string naming the transaction type")
    if tx_type not in HANDLERS:
        shown = clean_text(tx_type, 60)
        raise Rejected("unknown_type", f"unknown transaction type {shown!r}")
    if not _is_instant(item.get("occurred_at")):
        raise Rejected("invalid_payload", "occurred_at must be an ISO-8601 instant")
    payload = item.get("payload")
    if not isinstance(payload, dict):
        raise Rejected("invalid_payload", "payload must be an object")
    others = {k: v for k, v in item.items() if k != "payload"}
    why = validate.problem(others, "transaction", 2)
    try:
        if why:
            raise validate.Invalid(why)
        validate.check_payload(tx_type, payload)
    except validate.Invalid as exc:
        raise Rejected("invalid_payload", str(exc)) from None
    # A store speaks for itself only: any store_id in a payload must be the sender's.
    if "store_id" in payload and payload["store_id"] != store_id:
        raise Rejected("wrong_store", "this payload is about another store")
    return HANDLERS[tx_type], payload


def _record(
    db: Database,
    tx_id: str,
    store_id: str,
    item: dict[str, Any],
    digest: str,
    status: str,
    reason: str | None,
    result: dict[str, Any] | str,
) -> None:
    db.execute(
        "INSERT INTO transactions (id, store_id, type, body_hash, status, reason, result, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            tx_id,
            store_id,
            clean_text(str(item.get("type")), 100),
            digest,
            status,
            reason,
            # A message may quote what the store sent: never a surrogate into SQLite.
            clean_text(canonical_json(result), 100_000),
            now_iso(),
        ],
    )


def _previous(db: Database, tx_id: str, store_id: str, raw_id: str, digest: str) -> dict | None:
    """The answer to an id already received, or None if it is new."""
    row = db.execute(
        "SELECT store_id, body_hash, status, reason, result FROM transactions WHERE id = ?",
        [tx_id],
    ).fetchone()
    if row is None:
        return None
    prev_store, prev_hash, status, reason, result = row
    # Another store's id is a conflict too: never show one store another's result.
    if prev_store != store_id or prev_hash != digest:
        return _rejected(raw_id, "conflict", "this id was already used for a different body")
    if status == "accepted":
        return {
            "id": raw_id,
            "status": "duplicate",
            "original_status": "accepted",
            "result": json.loads(result),
        }
    return {
        "id": raw_id,
        "status": "duplicate",
        "original_status": "rejected",
        "reason": reason,
        "message": json.loads(result),
    }


def _rejected(raw_id: Any, reason: str, message: str) -> dict[str, Any]:
    return {"id": raw_id, "status": "rejected", "reason": reason, "message": message}


def apply_one(db: Database, store_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """Apply one transaction inside the caller's write transaction; return its result."""
    raw_id = item.get("id")
    tx_id = parse_id(raw_id)
    if tx_id is None:
        shown = raw_id if isinstance(raw_id, str) else None
        return _rejected(shown, "invalid_id", "id must be a UUID")
    digest = body_hash(item)
    previous = _previous(db, tx_id, store_id, raw_id, digest)
    if previous is not None:
        return previous
    try:
        with dbmod.write(db):  # a savepoint: all of this item, or none of it
            handler, payload = _check(item, store_id)
            result = handler(db, store_id, payload, str(tx_id))
            _record(db, tx_id, store_id, item, digest, "accepted", None, result)
        return {"id": raw_id, "status": "accepted", "result": result}
    except Rejected as exc:
        return _refuse(db, tx_id, store_id, item, digest, raw_id, exc.reason, exc.message)
    except sqlite3.IntegrityError:
        # The id appeared meanwhile (impossible under SQLite's single writer, but a
        # database with concurrent writers lands here): answer as for that one.
        previous = _previous(db, tx_id, store_id, raw_id, digest)
        if previous is not None:
            return previous
        log.exception("transaction %s (%s) broke a constraint", tx_id, _type_of(item))
    except sqlite3.OperationalError:
        raise  # the database itself (disk, lock): the batch fails and the store retries
    except Exception:
        # A bug or an input no check foresaw: this item only is rolled back and refused;
        # the rest of the batch goes through. Logged with its type, not its payload.
        log.exception("transaction %s (%s) could not be applied", tx_id, _type_of(item))
    # Not recorded under its id, unlike a refusal of what was sent: once the hub is
    # mended, head office's "retry" sends the same id again and it is applied then.
    return _rejected(
        raw_id,
        "invalid_payload",
        "the hub could not apply this transaction (an unexpected error, logged "
        "at the hub); nothing of it was applied",
    )


def _type_of(item: dict[str, Any]) -> str:
    return clean_text(str(item.get("type")), 60)


def _refuse(
    db: Database,
    tx_id: str,
    store_id: str,
    item: dict[str, Any],
    digest: str,
    raw_id: Any,
    reason: str,
    message: str,
) -> dict[str, Any]:
    """Answer ``rejected``; kept under the id, so that a retry gets the same answer."""
    message = clean_text(message, 1000)
    try:
        with dbmod.write(db):
            _record(db, tx_id, store_id, item, digest, "rejected", reason, message)
    except sqlite3.OperationalError:
        raise
    except Exception:
        # Not kept: a retry is judged again, which is the safe side.
        log.exception("the rejection of transaction %s could not be recorded", tx_id)
    return _rejected(raw_id, reason, message)


def apply_batch(db: Database, store_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply a batch in one write transaction; one result per item, in order."""
    if len(items) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} transactions per batch")
    with dbmod.write(db):
        return [apply_one(db, store_id, item) for item in items]


# The order.* handlers register themselves in HANDLERS (they need Rejected from here).
from app.hub.protocol import order_request as order_request_tx  # noqa: E402, F401
from app.hub.protocol import orders as order_tx  # noqa: E402, F401
