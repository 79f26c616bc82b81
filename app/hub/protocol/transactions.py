"""Applying batches of store transactions exactly once (docs/protocol.md).

One write transaction per batch (:func:`app.hub.database.write`: ``BEGIN IMMEDIATE``
on SQLite, the hub-wide advisory write lock on PostgreSQL), one savepoint per item. Why
per batch: every commit is an fsync, and 500 of them per request would dominate; one
commit makes the whole batch durable before any "accepted" is sent. Why a savepoint per
item: a rejected item rolls back to its savepoint, so it never blocks the others and is
never half-applied (on PostgreSQL an error aborts the whole transaction unless it is
rolled back to a savepoint: the item's savepoint is that). Exactly-once: the transaction
id is the PRIMARY KEY of ``transactions``, written in the same savepoint as the effects,
and writers are serialized by the write lock, so two requests carrying one id (other
threads, other hub processes) see each other: the second finds the row and answers
``duplicate``. Should a writer ever insert the id without the lock, the unique index
still decides: the loser's savepoint (effects and record together) is rolled back and it
answers as for the winner's row.

Nothing a store sends can fail the batch: each item is checked at the boundary
(:mod:`.validate`: clean JSON, then its type's schema from :mod:`app.core.protocol`)
and refused alone (``invalid_payload``, naming the field); an unexpected error while
applying one item rolls that item's savepoint back, is logged, and refuses that item
only. Each type's handler is listed in :mod:`.handlers`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from app.core import protocol
from app.core.clock import now_iso
from app.core.protocol import MAX_BATCH
from app.core.text import clean_text
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.protocol import order_request, stock, validate
from app.hub.protocol.common import (
    OCCURRED_AT,
    Rejected,
    canonical_json,
    is_instant,
    parse_id,
)
from app.hub.protocol.handlers import HANDLERS, Handler

log = logging.getLogger(__name__)

#: Transaction types whose handler needs no hub-wide write lock taken up front.
LOCK_FREE_TYPES = frozenset({protocol.STOCK_MOVEMENT})
DEADLOCK_RETRIES = 3


def body_hash(item: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what identifies a transaction's content."""
    body = {k: item.get(k) for k in ("type", "occurred_at", "payload")}
    # surrogatepass: a lone surrogate sent by a store still hashes (the item is refused,
    # and the same item sent again must get the same answer).
    return hashlib.sha256(canonical_json(body).encode("utf-8", "surrogatepass")).hexdigest()


# --------------------------------------------------------------------------- batches


def _check(item: dict[str, Any], store_id: str) -> tuple[Handler, dict[str, Any]]:
    """Validate what every type shares; return the handler and the payload."""
    tx_type = item.get("type")
    if not isinstance(tx_type, str):
        raise Rejected("invalid_payload", "type: expected a string naming the transaction type")
    if tx_type not in HANDLERS:
        shown = clean_text(tx_type, 60)
        raise Rejected("unknown_type", f"unknown transaction type {shown!r}")
    if not is_instant(item.get("occurred_at")):
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
    db: Db,
    tx_id: str,
    store_id: str,
    item: dict[str, Any],
    digest: str,
    status: str,
    reason: str | None,
    result: dict[str, Any] | str,
) -> None:
    hdb.execute(
        db,
        "INSERT INTO transactions (id, store_id, type, body_hash, status, reason, result, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        _record_row(tx_id, store_id, item, digest, status, reason, result, now_iso()),
    )


def _previous(db: Db, tx_id: str, store_id: str, raw_id: str, digest: str) -> dict | None:
    """The answer to an id already received, or None if it is new."""
    row = hdb.execute(
        db,
        "SELECT store_id, body_hash, status, reason, result FROM transactions WHERE id = ?",
        [tx_id],
    ).fetchone()
    return None if row is None else _answer_previous(row, store_id, raw_id, digest)


def _answer_previous(row: Any, store_id: str, raw_id: str, digest: str) -> dict:
    """The answer to an id received before, from its ``transactions`` row."""
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


def apply_one(db: Db, store_id: str, item: dict[str, Any]) -> dict[str, Any]:
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
        # A savepoint: all of this item, or none of it (the batch decided the lock).
        with hdb.write(db, lock=None):
            handler, payload = _check(item, store_id)
            when = OCCURRED_AT.set(item["occurred_at"])
            try:
                result = handler(db, store_id, payload, str(tx_id))
            finally:
                OCCURRED_AT.reset(when)
            _record(db, tx_id, store_id, item, digest, "accepted", None, result)
        return {"id": raw_id, "status": "accepted", "result": result}
    except Rejected as exc:
        return _refuse(db, tx_id, store_id, item, digest, raw_id, exc.reason, exc.message)
    except hdb.IntegrityError:
        # The id appeared meanwhile (impossible under the hub-wide write lock, but a
        # writer without it lands here: the unique index made it wait for the other's
        # commit). The savepoint is rolled back, effects included, so the transaction
        # is usable again (PostgreSQL too) and the item applied once: answer as for that one.
        previous = _previous(db, tx_id, store_id, raw_id, digest)
        if previous is not None:
            return previous
        log.exception("transaction %s (%s) broke a constraint", tx_id, _type_of(item))
    except hdb.OperationalError:
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
    db: Db,
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
        with hdb.write(db, lock=None):  # a savepoint: a failed record leaves the batch usable
            _record(db, tx_id, store_id, item, digest, "rejected", reason, message)
    except hdb.OperationalError:
        raise
    except Exception:
        # Not kept: a retry is judged again, which is the safe side.
        log.exception("the rejection of transaction %s could not be recorded", tx_id)
    return _rejected(raw_id, reason, message)


def _record_row(
    tx_id: str,
    store_id: str,
    item: dict[str, Any],
    digest: str,
    status: str,
    reason: str | None,
    result: dict[str, Any] | str,
    now: str,
) -> list[Any]:
    """A ``transactions`` row, as values (:func:`_record`, and set-based for a batch)."""
    return [
        tx_id,
        store_id,
        clean_text(str(item.get("type")), 100),
        digest,
        status,
        reason,
        # A message may quote what the store sent: never a surrogate into SQLite.
        clean_text(canonical_json(result), 100_000),
        now,
    ]


def _apply_movements(db: Db, store_id: str, items: list[dict[str, Any]]) -> list[dict] | None:
    """A batch of ``stock.movement`` only, set-based: a handful of statements for the
    whole batch instead of seven per item, the same answers as :func:`apply_one` on each
    in turn. None (nothing written) for a batch it leaves to :func:`apply_one`: another
    type, an id that is not a UUID, one id twice, or another handler for the type.
    Exactly-once as there: the hub-wide write lock is taken before the ids are looked
    up, so a concurrent batch carrying one of them has committed (and is seen) or waits.
    """
    types = {item.get("type") for item in items}
    if types != {protocol.STOCK_MOVEMENT} or HANDLERS.get(types.pop()) is not stock.movement:
        return None
    parsed = [parse_id(item.get("id")) for item in items]
    if None in parsed or len(set(parsed)) != len(parsed):
        return None
    ids: list[str] = [p for p in parsed if p is not None]
    hdb.take_lock(db, hdb.WRITE_LOCK)
    marks = ",".join("?" * len(ids))
    previous = {
        row[0]: row[1:]
        for row in hdb.execute(
            db,
            "SELECT id, store_id, body_hash, status, reason, result "  # noqa: S608
            f"FROM transactions WHERE id IN ({marks})",
            ids,
        ).fetchall()
    }
    answers: list[dict[str, Any] | None] = [None] * len(items)
    checked: list[tuple[int, str, dict[str, Any], str]] = []
    refused: list[tuple[int, str, str, str]] = []
    # The common case checked in one pass (stock.plain), its hash written directly.
    plain = [stock.plain(item, store_id) for item in items]
    digests = [
        body_hash(item) if p is None else stock.plain_digest(item)
        for item, p in zip(items, plain, strict=True)
    ]
    for n, (item, tx_id, digest) in enumerate(zip(items, ids, digests, strict=True)):
        if tx_id in previous:
            answers[n] = _answer_previous(previous[tx_id], store_id, item.get("id"), digest)
            continue
        payload = plain[n]
        if payload is None:
            try:
                _, payload = _check(item, store_id)
                stock.check(payload)
            except Rejected as exc:
                refused.append((n, tx_id, exc.reason, clean_text(exc.message, 1000)))
                continue
        checked.append((n, tx_id, payload, digest))
    known = stock.known_skus(db, sorted({payload["sku"] for _, _, payload, _ in checked}))
    accepted = []
    for n, tx_id, payload, digest in checked:
        if payload["sku"] in known:
            accepted.append((n, tx_id, payload, digest))
        else:
            exc = stock.unknown_sku(payload["sku"])
            refused.append((n, tx_id, exc.reason, clean_text(exc.message, 1000)))
    results = stock.movements(db, store_id, [(tx_id, payload) for _, tx_id, payload, _ in accepted])
    now = now_iso()
    records = []
    for (n, tx_id, _, digest), result in zip(accepted, results, strict=True):
        answers[n] = {"id": items[n].get("id"), "status": "accepted", "result": result}
        text = stock.result_text(result)
        row = [tx_id, store_id, protocol.STOCK_MOVEMENT, digest, "accepted", None, text, now]
        records.append((n, row))
    for n, tx_id, reason, message in refused:
        answers[n] = _rejected(items[n].get("id"), reason, message)
        records.append(
            (
                n,
                _record_row(
                    tx_id, store_id, items[n], digests[n], "rejected", reason, message, now
                ),
            )
        )
    if records:
        records.sort(key=lambda r: r[0])
        marks = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(records))
        hdb.execute(
            db,
            "INSERT INTO transactions (id, store_id, type, body_hash, status, reason, "  # noqa: S608
            f"result, received_at) VALUES {marks}",
            [v for _, row in records for v in row],
        )
    done = [a for a in answers if a is not None]
    if len(done) != len(items):
        raise RuntimeError("an item of the batch was left without an answer")
    return done


def _apply_movements_or_none(db: Db, store_id: str, items: list[dict[str, Any]]) -> list | None:
    """:func:`_apply_movements` in a savepoint: anything unexpected rolls it back whole
    and the batch goes item by item (each item's own savepoint), as before."""
    try:
        with hdb.write(db, lock=None):
            return _apply_movements(db, store_id, items)
    except hdb.OperationalError + hdb.RetryableError:
        raise  # the database itself: the batch fails (or is run again) as a whole
    except Exception:
        log.exception(
            "a batch of %d stock movements from %s went item by item", len(items), store_id
        )
        return None


def apply_batch(
    db: Db,
    store_id: str,
    items: list[dict[str, Any]],
    *,
    data_dir: str | Path,
) -> list[dict[str, Any]]:
    """Apply a batch in one write transaction; one result per item, in order.

    ``data_dir`` is the hub's data directory, where its signing key lives (an
    ``order.request`` for pickup signs the order's pickup token): on either backend,
    the database does not say where it is.
    """
    if len(items) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} transactions per batch")
    # Stock movements read nothing they then rely on (the level is one atomic upsert,
    # the id a primary key): a batch of only those does its checks (the id seen before?
    # the payload, the variant) without the hub-wide write lock, and takes it right
    # before its first write (stock.movement), so on PostgreSQL batches from many stores
    # overlap. Anything else reads then writes (an order's state...) and takes it first,
    # as on SQLite. A batch of several movements goes set-based (_apply_movements): it
    # takes the lock before its one look-up of the ids, and holds it a few statements.
    free = all(isinstance(t := i.get("type"), str) and t in LOCK_FREE_TYPES for i in items)
    lock = None if free else hdb.WRITE_LOCK
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            with order_request.signing_dir(data_dir), hdb.write(db, lock=lock):
                if lock is None and len(items) > 1:
                    answers = _apply_movements_or_none(db, store_id, items)
                    if answers is not None:
                        return answers
                return [apply_one(db, store_id, item) for item in items]
        except hdb.RetryableError:
            # Every writer takes the hub-wide lock before any row lock, so a deadlock
            # is not expected; should the database still abort the batch whole (a
            # deadlock or a serialisation failure), nothing of it was committed: run
            # it again.
            if attempt == DEADLOCK_RETRIES:
                raise
            log.warning("batch from %s aborted by the database (%s); again", store_id, attempt)
    raise AssertionError("unreachable")
