"""The people behind orders, sealed at rest (issue 14, RGPD; docs/data-protection.md).

An order's name and e-mail, a home delivery's name, e-mail and address, the address
and body of every mail the hub writes, and a proxy collector's name are kept sealed
(:mod:`.pii`, ``*_enc``), with the e-mail's blind index (``customer_email_idx``) to find
a person's orders without decrypting every row. The clear columns (``customer_name``,
``customer_email``, ``body``) hold '' from migration m016 on. Every reader goes through
this module: :func:`names_of` (many orders, one query), :func:`person_of`,
:func:`with_person`, :func:`delivery_person`, :func:`mail_of`, :func:`collector_of`.

The key ring: given by the caller (the web app's ``account.pii_ring()``), else
:func:`ring_of` finds the hub's data directory: the one :func:`keys_dir` names (a batch
of store transactions, the mailer's thread), else the one the connection was opened for
(``db.pii_data_dir``, set by app/hub/storage.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.clock import now_iso
from app.core.protocol import CHANGE_ORDER
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.pii import KeyRing, PiiKeyError, hub_ring, keys_path

NAME_COLUMN = "orders.customer_name"
EMAIL_COLUMN = "orders.customer_email"
DELIVERY_NAME = "delivery_orders.customer_name"
DELIVERY_EMAIL = "delivery_orders.customer_email"
DELIVERY_ADDRESS = "delivery_orders.address"
MAIL_TO = "notifications.customer_email"
MAIL_BODY = "notifications.body"
#: A proxy's name on a hand-over: sealed in place (``handovers.collector_name`` holds
#: NULL or a sealed value; no clear copy was ever kept beside it).
COLLECTOR = "handovers.collector_name"
#: The blind index of an address wherever it is kept (as customers.INDEX_COLUMN): the
#: same value finds an account, its guest orders, its deliveries and its mails.
INDEX_COLUMN = "customers.email"
_CHUNK = 500

_KEYS_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "hub_pii_keys_dir", default=None
)


@dataclass(frozen=True)
class Person:
    """Who an order is for, opened: the name given and the e-mail address."""

    name: str
    email: str

    @property
    def first_name(self) -> str:
        return first_name(self.name)


def first_name(name: str | None) -> str:
    """The first word of the name given: all a store is told (``Élodie`` of
    ``Élodie Martin``)."""
    words = (name or "").split()
    return words[0] if words else ""


@contextlib.contextmanager
def keys_dir(data_dir: str | Path) -> Iterator[None]:
    """Within this block, :func:`ring_of` opens the key ring of the hub in ``data_dir``."""
    token = _KEYS_DIR.set(Path(data_dir))
    try:
        yield
    finally:
        _KEYS_DIR.reset(token)


_rings: dict[tuple[str, int], KeyRing] = {}


def ring_of(db: Db) -> KeyRing:
    """The hub's key ring for callers that were not given one: the data directory of
    :func:`keys_dir`, else the one the connection was opened for (``db.pii_data_dir``:
    app/hub/storage.py's ``open_db`` and ``get_db`` set it; the database itself does not
    say where its key is). Kept per process and read again when the key file changes (a
    rotation). PiiKeyError when no data directory is known."""
    data_dir = _KEYS_DIR.get() or getattr(db, "pii_data_dir", None)
    if data_dir is None:
        raise PiiKeyError("the hub's data directory (its personal-data key) is unknown here")
    path = keys_path(data_dir)
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return hub_ring(db, data_dir)  # not made yet: hub_ring makes it (or refuses)
    ring = _rings.get(stamp)
    if ring is None:
        ring = _rings[stamp] = hub_ring(db, data_dir)
    return ring


def email_index(ring: KeyRing, email: str) -> str:
    return ring.blind_index(email, INDEX_COLUMN)


# --- writing ------------------------------------------------------------------------


def sealed_order_person(ring: KeyRing, name: str, email: str) -> dict[str, str]:
    """The ``orders`` columns of a new order's person: sealed, indexed, the clear ones ''."""
    return {
        "customer_name": "",
        "customer_email": "",
        "customer_name_enc": ring.encrypt(name, NAME_COLUMN) or "",
        "customer_email_enc": ring.encrypt(email, EMAIL_COLUMN) or "",
        "customer_email_idx": email_index(ring, email),
    }


def sealed_delivery_person(
    ring: KeyRing, name: str, email: str, address: dict[str, str]
) -> dict[str, str]:
    """The ``delivery_orders`` columns of a home delivery's person and address."""
    return {
        "customer_name": "",
        "customer_email": "",
        "address_line1": "",
        "address_postcode": "",
        "address_city": "",
        "customer_name_enc": ring.encrypt(name, DELIVERY_NAME) or "",
        "customer_email_enc": ring.encrypt(email, DELIVERY_EMAIL) or "",
        "customer_email_idx": email_index(ring, email),
        "address_enc": ring.encrypt(json.dumps(address, sort_keys=True), DELIVERY_ADDRESS) or "",
    }


def sealed_mail(ring: KeyRing, email: str, body: str) -> dict[str, str]:
    """The ``notifications`` columns of a mail's address and body."""
    return {
        "customer_email": "",
        "body": "",
        "customer_email_enc": ring.encrypt(email, MAIL_TO) or "",
        "customer_email_idx": email_index(ring, email),
        "body_enc": ring.encrypt(body, MAIL_BODY) or "",
    }


def sealed_collector(db: Db, name: str | None, ring: KeyRing | None = None) -> str | None:
    """A proxy collector's name as ``handovers.collector_name`` keeps it (None stays None)."""
    if not name:
        return None
    return (ring or ring_of(db)).encrypt(name, COLLECTOR)


# --- reading ------------------------------------------------------------------------


def _open(ring: KeyRing | None, token: str | None, clear: str | None, column: str) -> str:
    """A sealed value opened, else the clear one (a row not sealed yet)."""
    if token:
        assert ring is not None
        return ring.decrypt(token, column) or ""
    return clear or ""


def names_of(db: Db, ring: KeyRing | None, order_ids: Iterable[str]) -> dict[str, Person]:
    """order id -> its Person, for many orders in one query (per 500 ids); an order
    whose person was erased reads as ``Person("", "")``. ``ring`` None: :func:`ring_of`,
    opened only if a sealed value is read."""
    wanted = sorted(set(order_ids))
    out: dict[str, Person] = {}
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(part))
        for r in hdb.rows(
            db,
            "SELECT id, customer_name, customer_email, customer_name_enc, "  # noqa: S608 (marks)
            f"customer_email_enc FROM orders WHERE id IN ({marks})",
            part,
        ):
            if ring is None and (r["customer_name_enc"] or r["customer_email_enc"]):
                ring = ring_of(db)
            out[r["id"]] = Person(
                _open(ring, r["customer_name_enc"], r["customer_name"], NAME_COLUMN),
                _open(ring, r["customer_email_enc"], r["customer_email"], EMAIL_COLUMN),
            )
    return out


def person_of(db: Db, ring: KeyRing | None, order_id: str) -> Person:
    """One order's person (``Person("", "")`` for an unknown or anonymised order)."""
    return names_of(db, ring, [order_id]).get(order_id, Person("", ""))


def with_person(db: Db, ring: KeyRing | None, order: dict[str, Any]) -> dict[str, Any]:
    """A copy of an order row with ``customer_name`` and ``customer_email`` opened."""
    person = person_of(db, ring, order["id"])
    return {**order, "customer_name": person.name, "customer_email": person.email}


def delivery_person(ring: KeyRing, row: dict[str, Any]) -> dict[str, Any]:
    """A ``delivery_orders`` row's name, e-mail and address, opened."""
    address = {
        "line1": row.get("address_line1") or "",
        "postcode": row.get("address_postcode") or "",
        "city": row.get("address_city") or "",
    }
    if row.get("address_enc"):
        address = json.loads(ring.decrypt(row["address_enc"], DELIVERY_ADDRESS) or "{}")
    return {
        "customer_name": _open(
            ring, row.get("customer_name_enc"), row.get("customer_name"), DELIVERY_NAME
        ),
        "customer_email": _open(
            ring, row.get("customer_email_enc"), row.get("customer_email"), DELIVERY_EMAIL
        ),
        "address": address,
    }


def collector_of(ring: KeyRing, value: str | None) -> str | None:
    """A hand-over's ``collector_name`` opened (a value not sealed yet as it is)."""
    if value and ring.kid_of(value) is not None:
        return ring.decrypt(value, COLLECTOR)
    return value


def mail_of(ring: KeyRing, row: dict[str, Any]) -> dict[str, Any]:
    """A ``notifications`` row with ``customer_email`` and ``body`` opened."""
    return {
        **row,
        "customer_email": _open(
            ring, row.get("customer_email_enc"), row.get("customer_email"), MAIL_TO
        ),
        "body": _open(ring, row.get("body_enc"), row.get("body"), MAIL_BODY),
    }


# --- finding a person's rows by their e-mail ----------------------------------------


def email_in(ring: KeyRing, emails: Iterable[str]) -> tuple[str, list[str]]:
    """SQL (and its parameters) matching the rows of ``orders``, ``delivery_orders`` or
    ``notifications`` for any of these e-mails: by blind index, or by the clear address
    of a row not sealed yet. Keep the list within :data:`_CHUNK`."""
    folded = [e.strip().lower() for e in emails]
    if not folded:
        return "1 = 0", []
    marks = ", ".join("?" * len(folded))
    return (
        f"(customer_email_idx IN ({marks}) OR lower(trim(customer_email)) IN ({marks}))",
        [*(email_index(ring, e) for e in folded), *folded],
    )


def ids_by_email(db: Db, ring: KeyRing, table: str, email: str, where: str = "") -> list[str]:
    """Ids of ``orders``, ``delivery_orders`` or ``notifications`` rows for this e-mail
    (by its blind index; rows not sealed yet by their clear address), ``where`` ANDed."""
    assert table in ("orders", "delivery_orders", "notifications")
    if not email.strip():
        return []
    match, params = email_in(ring, [email])
    extra = f" AND ({where})" if where else ""
    sql = f"SELECT id FROM {table} WHERE {match}{extra} ORDER BY id"  # noqa: S608 (ours)
    return [r[0] for r in hdb.execute(db, sql, params).fetchall()]


# --- the start-up step --------------------------------------------------------------


_SEALED_META = "pii_clear_rows_sealed"


def seal_existing(db: Db, ring: KeyRing, *, once: bool = False) -> dict[str, int]:
    """Seal the rows written in clear before m016 (or by a writer that does not seal
    yet), blank their clear columns, and cut the old ``order`` changes of the feed down
    to what a store is told now (the first name, no e-mail). Run by ``kiosk hub pii
    reencrypt`` (a full scan every time) and at start-up with ``once`` (``kiosk hub
    serve``): once a run has left nothing in clear, ``hub_meta`` says so and later
    starts scan nothing (no full scan of orders, deliveries and mails under the write
    lock at every start). Returns how many rows of each table were sealed."""
    done = {"orders": 0, "delivery_orders": 0, "notifications": 0, "handovers": 0, "changes": 0}
    if once and hdb.scalar(db, "SELECT value FROM hub_meta WHERE key = ?", [_SEALED_META]):
        return done
    with hdb.write(db):
        for r in hdb.rows(
            db,
            "SELECT id, customer_name, customer_email FROM orders "
            "WHERE customer_name <> '' OR customer_email <> ''",
        ):
            cols = sealed_order_person(ring, r["customer_name"], r["customer_email"])
            _update(db, "orders", r["id"], cols)
            done["orders"] += 1
        for r in hdb.rows(
            db,
            "SELECT id, customer_name, customer_email, address_line1, address_postcode, "
            "address_city FROM delivery_orders WHERE customer_name <> '' "
            "OR customer_email <> '' OR address_line1 <> '' OR address_city <> ''",
        ):
            address = {
                "line1": r["address_line1"],
                "postcode": r["address_postcode"],
                "city": r["address_city"],
            }
            cols = sealed_delivery_person(ring, r["customer_name"], r["customer_email"], address)
            _update(db, "delivery_orders", r["id"], cols)
            done["delivery_orders"] += 1
        for r in hdb.rows(
            db,
            "SELECT id, customer_email, body FROM notifications "
            "WHERE customer_email <> '' OR body <> ''",
        ):
            _update(db, "notifications", r["id"], sealed_mail(ring, r["customer_email"], r["body"]))
            done["notifications"] += 1
        for r in hdb.rows(
            db,
            "SELECT handover_id, collector_name FROM handovers "
            "WHERE collector_name IS NOT NULL AND collector_name NOT LIKE 'pii1.%'",
        ):
            hdb.execute(
                db,
                "UPDATE handovers SET collector_name = ? WHERE handover_id = ?",
                [sealed_collector(db, r["collector_name"], ring), r["handover_id"]],
            )
            done["handovers"] += 1
        done["changes"] = _trim_order_changes(db)
        # Every row found was sealed above, in this transaction: nothing is left in clear.
        hdb.upsert(db, "hub_meta", {"key": _SEALED_META, "value": now_iso()}, ["key"])
    return done


def _update(db: Db, table: str, row_id: object, cols: dict[str, str]) -> None:
    sets = ", ".join(f"{c} = ?" for c in cols)
    hdb.execute(db, f"UPDATE {table} SET {sets} WHERE id = ?", [*cols.values(), row_id])  # noqa: S608


_TRIMMED_META = "pii_order_changes_trimmed_seq"


def _trim_order_changes(db: Db) -> int:
    """Old ``order`` changes carried the whole name and the e-mail: keep the first name.
    Each change is looked at once (hub_meta keeps the last seq looked at)."""
    since = int(hdb.scalar(db, "SELECT value FROM hub_meta WHERE key = ?", [_TRIMMED_META], 0))
    top = int(hdb.scalar(db, "SELECT max(seq) FROM changes", [], 0) or 0)
    n = 0
    for r in hdb.rows(
        db,
        "SELECT seq, data FROM changes WHERE kind = ? AND seq > ? AND data LIKE ?",
        [CHANGE_ORDER, since, "%@%"],  # an e-mail in it
    ):
        data = json.loads(r["data"])
        if not data.get("customer_email"):
            continue
        data["customer_name"] = first_name(data.get("customer_name"))
        data["customer_email"] = None
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        hdb.execute(db, "UPDATE changes SET data = ? WHERE seq = ?", [text, r["seq"]])
        n += 1
    hdb.upsert(db, "hub_meta", {"key": _TRIMMED_META, "value": str(top)}, ["key"])
    return n
