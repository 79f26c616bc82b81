"""Rotating the personal-data key (``kiosk hub pii rotate``; docs/data-protection.md).

A new key becomes current (:meth:`KeyRing.rotate`, the key file saved first), then every
sealed column of :data:`SEALED_COLUMNS` is rewritten under it (:func:`reencrypt_column`),
one column per transaction. The old keys stay in the file: values not yet rewritten (a
pass stopped half-way, a write racing it) still open, and a second run finishes the job.
A row is rewritten only if it still holds the value read, so a concurrent change wins.
"""

from __future__ import annotations

from typing import Any

from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people
from app.hub.domain.pii import SEALED_COLUMNS, KeyRing, reencrypt_column


def _present(db: Db) -> list[tuple[str, str, str]]:
    tables = hdb.table_columns(db)
    return [s for s in SEALED_COLUMNS if s[1] in tables.get(s[0], [])]


#: A table's key column when it is not ``id``.
_ROW_KEY = {"handovers": "handover_id"}


def reencrypt_all(db: Db, ring: KeyRing) -> dict[str, int]:
    """Every sealed column's values under the ring's current key; rewritten per column.
    Orders' people still in clear (written before m016, or by a writer that does not
    seal) are sealed first (:func:`.order_people.seal_existing`)."""
    done: dict[str, int] = {
        f"{table} sealed": n for table, n in order_people.seal_existing(db, ring).items() if n
    }
    for table, column, sealed_for in _present(db):
        with hdb.write(db):
            key = _ROW_KEY.get(table, "id")
            rows = hdb.rows(
                db,
                f"SELECT {key} AS id, {column} AS token FROM {table} "  # noqa: S608 (registry)
                f"WHERE {column} IS NOT NULL ORDER BY {key}",
            )

            def write(
                row: object, token: str, table: str = table, column: str = column, key: str = key
            ) -> None:
                row_id, old = row  # type: ignore[misc]
                hdb.execute(
                    db,
                    f"UPDATE {table} SET {column} = ? WHERE {key} = ? AND {column} = ?",  # noqa: S608
                    [token, row_id, old],
                )

            done[f"{table}.{column}"] = reencrypt_column(
                ring, sealed_for, (((r["id"], r["token"]), r["token"]) for r in rows), write
            )
    return done


def keys_in_use(db: Db, ring: KeyRing) -> dict[str, int]:
    """How many sealed values name each key id of the ring (0: the key may be removed)."""
    used = dict.fromkeys(ring.keys, 0)
    for table, column, _sealed_for in _present(db):
        for r in hdb.rows(
            db,
            f"SELECT {column} AS token FROM {table} WHERE {column} IS NOT NULL",  # noqa: S608
        ):
            kid = ring.kid_of(r["token"])
            if kid is not None:
                used[kid] = used.get(kid, 0) + 1
    return used


def rotate(db: Db, ring: KeyRing, *, reencrypt: bool = True) -> dict[str, Any]:
    """A new current key, then (``reencrypt``) every sealed value rewritten under it;
    the report."""
    old = ring.current
    new = ring.rotate()
    rewritten = reencrypt_all(db, ring) if reencrypt else {}
    return {
        "previous": old,
        "current": new,
        "rewritten": rewritten,
        "keys_in_use": keys_in_use(db, ring),
    }
