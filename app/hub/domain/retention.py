"""How long the hub keeps personal data, enforced (RGPD by design, issue 14).

One pass, run daily (``kiosk hub retention``; docs/data-protection.md), with the CNIL's
figures, by the injected clock (app/core/clock.py):

- ``customers_warned``: a customer whose last contact (an order or a visit, never an
  e-mail opened: ``customers.last_contact_at``) is older than 3 years minus 30 days, and
  not warned since that contact, is warned (``retention_warned_at``; the e-mail recorded
  for the mailer by :func:`.retention_mail.mail_warning`).
- ``customers_deleted``: past 3 years, the account is deleted with every row naming it
  (sessions, cards, sign-in codes, any table with a ``customer_id`` but ``orders``); its
  orders stay as accounting records, detached and anonymised (below).
- ``orders_anonymised``: the orders of a deleted customer, and guest orders placed more
  than 3 years ago: ``customer_id`` NULL, name, e-mail and pickup code blanked, the
  collector's name of their hand-overs too, their messages deleted; amounts, lines and
  dates stay. The order's feed history is replaced by one anonymised change, so the
  stores' copies forget the person as well. Home deliveries are treated alike.
- ``orders_deleted``, ``deliveries_deleted``: orders placed (home deliveries asked for)
  more than 10 years ago (accounting records), with their lines, hand-overs, returns,
  messages and feed changes.
- ``login_codes_deleted``, ``sessions_deleted``, ``account_messages_deleted``: a sign-in
  code a day after it expired (and the e-mail that carried it, a day after it was
  recorded), a web-shop session a day after it was revoked or expired (idle for
  ``SESSION_IDLE_DAYS``, as app/hub/domain/customers.py's ``SESSION_IDLE``), a warning
  e-mail a day after the mailer sent it.
- ``audit_deleted``: head-office audit entries older than ``AUDIT_DAYS`` (1 year: long
  enough to investigate an incident or answer a request about last year, short enough
  not to become a second customer file).

:func:`run` with ``dry_run=True`` computes the same report and changes nothing. The
report names rows by id only (no name, no e-mail): it may be printed, mailed or logged.
An applied pass is journaled in ``hq_audit`` (``retention.applied``, counts only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import iso, utcnow
from app.core.protocol import CHANGE_ORDER
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import orders as hub_orders
from app.hub.domain.hq_audit import record_audit
from app.hub.domain.pii import KeyRing, PiiKeyError

CUSTOMER_YEARS = 3
WARN_DAYS_BEFORE = 30
ORDER_YEARS = 10
AUDIT_DAYS = 365
GRACE_DAYS = 1
SESSION_IDLE_DAYS = 30
_CHUNK = 500
#: Account messages past their use: a sign-in code's a day after it was sent (the code
#: has expired), a warning a day after the mailer sent it.
_ACCOUNT_MESSAGES = (
    "order_id IS NULL AND ((kind = 'login_code' AND created_at < ?) "
    "OR (kind = 'retention_warning' AND sent_at < ?))"
)
#: Tables whose ``customer_id`` rows are detached, not deleted, when a customer goes.
DETACHED = frozenset({"orders", "customers"})
#: Tables whose ``order_id`` is set to NULL, not deleted, when an order goes.
ORDER_NULLED = frozenset({"carts"})

#: The rules whose report lists ids (the others give counts).
_LISTED = (
    "customers_warned",
    "customers_deleted",
    "orders_anonymised",
    "deliveries_anonymised",
    "orders_deleted",
    "deliveries_deleted",
)
#: Called once per customer warned, inside the pass's transaction, with the customer's
#: row (``id``, ``email_enc``, ``first_name_enc``...): records the message for the mailer.
Warn = Callable[[Db, dict[str, Any]], None]


@dataclass(frozen=True)
class Limits:
    customer_years: int = CUSTOMER_YEARS
    warn_days_before: int = WARN_DAYS_BEFORE
    order_years: int = ORDER_YEARS
    audit_days: int = AUDIT_DAYS
    grace_days: int = GRACE_DAYS
    session_idle_days: int = SESSION_IDLE_DAYS


def years_before(now: datetime, years: int) -> datetime:
    """The same instant ``years`` calendar years earlier (29 February gives the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def cutoffs(now: datetime, limits: Limits = Limits()) -> dict[str, str]:
    """Each rule's limit as an ISO instant: rows strictly older are concerned."""
    customer = years_before(now, limits.customer_years)
    grace = now - timedelta(days=limits.grace_days)
    return {
        "customer_delete": iso(customer),
        "customer_warn": iso(customer + timedelta(days=limits.warn_days_before)),
        "order_delete": iso(years_before(now, limits.order_years)),
        "audit_delete": iso(now - timedelta(days=limits.audit_days)),
        "grace": iso(grace),
        "session_idle": iso(grace - timedelta(days=limits.session_idle_days)),
    }


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _each(db: Db, sql: str, ids: Sequence[str], before: Sequence[Any] = ()) -> None:
    """Run ``sql`` (with ``{ids}`` for an IN list) over ``ids`` a chunk at a time."""
    for part in _chunks(ids):
        marks = ", ".join("?" * len(part))
        hdb.execute(db, sql.format(ids=marks), [*before, *part])


def _ids(db: Db, sql: str, params: Sequence[Any]) -> list[str]:
    return [r["id"] for r in hdb.rows(db, sql, params)]


def _tables_with(db: Db, column: str) -> list[str]:
    return sorted(t for t, cols in hdb.table_columns(db).items() if column in cols)


def _emails(db: Db, ring: KeyRing | None, customer_ids: Sequence[str]) -> tuple[list[str], int]:
    """The deleted customers' e-mail addresses (lower case), to find guest orders and
    messages sent to them; and how many could not be opened (no ring, or no key)."""
    found: list[str] = []
    unreadable = 0
    for part in _chunks(customer_ids):
        marks = ", ".join("?" * len(part))
        for row in hdb.rows(
            db,
            f"SELECT email_enc FROM customers WHERE id IN ({marks})",  # noqa: S608 (marks)
            list(part),
        ):
            try:
                email = ring.decrypt(row["email_enc"], "customers.email") if ring else None
            except PiiKeyError:
                email = None
            if email:
                found.append(email.strip().lower())
            else:
                unreadable += 1
    return found, unreadable


def _plan(db: Db, c: dict[str, str], ring: KeyRing | None) -> dict[str, Any]:
    warned = _ids(
        db,
        "SELECT id FROM customers WHERE last_contact_at < ? AND last_contact_at >= ? "
        "AND (retention_warned_at IS NULL OR retention_warned_at < last_contact_at) "
        "ORDER BY id",
        [c["customer_warn"], c["customer_delete"]],
    )
    deleted = _ids(
        db,
        "SELECT id FROM customers WHERE last_contact_at < ? ORDER BY id",
        [c["customer_delete"]],
    )
    emails, unreadable = _emails(db, ring, deleted)
    old_orders = _ids(
        db, "SELECT id FROM orders WHERE placed_at < ? ORDER BY id", [c["order_delete"]]
    )
    old_deliveries = _ids(
        db, "SELECT id FROM delivery_orders WHERE created_at < ? ORDER BY id", [c["order_delete"]]
    )
    gone = set(old_orders)
    anonymise: set[str] = set()
    for part in _chunks(deleted):
        marks = ", ".join("?" * len(part))
        anonymise.update(
            _ids(db, f"SELECT id FROM orders WHERE customer_id IN ({marks})", part)  # noqa: S608
        )
    for part in _chunks(emails):
        marks = ", ".join("?" * len(part))
        anonymise.update(
            _ids(db, f"SELECT id FROM orders WHERE lower(customer_email) IN ({marks})", part)  # noqa: S608
        )
    anonymise.update(
        _ids(
            db,
            "SELECT id FROM orders WHERE customer_id IS NULL AND placed_at < ? "
            "AND customer_email <> ''",
            [c["customer_delete"]],
        )
    )
    deliveries: set[str] = set(
        _ids(
            db,
            "SELECT id FROM delivery_orders WHERE created_at < ? AND customer_email <> ''",
            [c["customer_delete"]],
        )
    )
    for part in _chunks(emails):
        marks = ", ".join("?" * len(part))
        deliveries.update(
            _ids(
                db,
                f"SELECT id FROM delivery_orders WHERE lower(customer_email) IN ({marks})",  # noqa: S608
                part,
            )
        )
    counts = {
        "login_codes_deleted": hdb.scalar(
            db, "SELECT count(*) FROM customer_login_codes WHERE expires_at < ?", [c["grace"]], 0
        ),
        "sessions_deleted": hdb.scalar(
            db,
            "SELECT count(*) FROM customer_sessions WHERE revoked_at < ? OR last_seen_at < ?",
            [c["grace"], c["session_idle"]],
            0,
        ),
        "account_messages_deleted": hdb.scalar(
            db,
            f"SELECT count(*) FROM notifications WHERE {_ACCOUNT_MESSAGES}",  # noqa: S608
            [c["grace"]] * 2,
            0,
        ),
        "audit_deleted": hdb.scalar(
            db, "SELECT count(*) FROM hq_audit WHERE at < ?", [c["audit_delete"]], 0
        ),
    }
    return {
        "customers_warned": warned,
        "customers_deleted": deleted,
        "orders_anonymised": sorted(anonymise - gone),
        "deliveries_anonymised": sorted(deliveries - set(old_deliveries)),
        "deliveries_deleted": old_deliveries,
        "orders_deleted": old_orders,
        "counts": {k: int(v) for k, v in counts.items()},
        "emails": emails,
        "unreadable_emails": unreadable,
    }


def _apply(db: Db, plan: dict[str, Any], c: dict[str, str], now: str, warn: Warn | None) -> None:
    for cid in plan["customers_warned"]:
        if warn is not None:
            row = hdb.one(db, "SELECT * FROM customers WHERE id = ?", [cid])
            if row is not None:
                warn(db, row)
    _each(
        db,
        "UPDATE customers SET retention_warned_at = ? WHERE id IN ({ids})",
        plan["customers_warned"],
        [now],
    )

    orders = plan["orders_anonymised"]
    _each(
        db,
        "UPDATE orders SET customer_id = NULL, customer_name = '', customer_email = '', "
        "pickup_code = '' WHERE id IN ({ids})",
        orders,
    )
    _each(db, "UPDATE handovers SET collector_name = NULL WHERE order_id IN ({ids})", orders)
    _each(db, "DELETE FROM notifications WHERE order_id IN ({ids})", orders)
    _each(
        db,
        "UPDATE delivery_orders SET customer_name = '', customer_email = '', "
        "address_line1 = '', address_postcode = '', address_city = '', updated_at = ? "
        "WHERE id IN ({ids})",
        plan["deliveries_anonymised"],
        [now],
    )
    for order_id in orders:  # the stores' copies learn it; the old changes named the person
        seq = hub_orders.publish(db, order_id)
        hdb.execute(
            db,
            "DELETE FROM changes WHERE kind = ? AND key = ? AND seq < ?",
            [CHANGE_ORDER, order_id, seq],
        )
    _each(db, "DELETE FROM notifications WHERE lower(customer_email) IN ({ids})", plan["emails"])

    customers = plan["customers_deleted"]
    # Feed changes about the person (a card's, keyed by its card id or the customer id)
    # named them: gone with them (telling the stores to forget is the feed's erasure).
    cards: list[str] = []
    for part in _chunks(customers):
        marks = ", ".join("?" * len(part))
        cards += [
            r["card_id"]
            for r in hdb.rows(
                db,
                f"SELECT card_id FROM customer_cards WHERE customer_id IN ({marks})",  # noqa: S608
                list(part),
            )
        ]
    _each(db, "DELETE FROM changes WHERE key IN ({ids})", [*customers, *cards])
    _each(
        db,
        "DELETE FROM customer_login_codes WHERE email_idx IN "
        "(SELECT email_idx FROM customers WHERE id IN ({ids}))",
        customers,
    )
    for table in _tables_with(db, "customer_id"):
        if table not in DETACHED:
            _each(db, f"DELETE FROM {table} WHERE customer_id IN ({{ids}})", customers)  # noqa: S608
    _each(db, "UPDATE orders SET customer_id = NULL WHERE customer_id IN ({ids})", customers)
    _each(db, "DELETE FROM customers WHERE id IN ({ids})", customers)

    old = plan["orders_deleted"]
    for table in _tables_with(db, "order_id"):
        if table in ORDER_NULLED:
            _each(db, f"UPDATE {table} SET order_id = NULL WHERE order_id IN ({{ids}})", old)  # noqa: S608
        elif table != "orders":
            _each(db, f"DELETE FROM {table} WHERE order_id IN ({{ids}})", old)  # noqa: S608
    _each(db, "DELETE FROM changes WHERE kind = ? AND key IN ({ids})", old, [CHANGE_ORDER])
    _each(db, "DELETE FROM orders WHERE id IN ({ids})", old)
    _each(db, "DELETE FROM delivery_orders WHERE id IN ({ids})", plan["deliveries_deleted"])

    hdb.execute(db, "DELETE FROM customer_login_codes WHERE expires_at < ?", [c["grace"]])
    hdb.execute(
        db,
        "DELETE FROM customer_sessions WHERE revoked_at < ? OR last_seen_at < ?",
        [c["grace"], c["session_idle"]],
    )
    hdb.execute(
        db,
        f"DELETE FROM notifications WHERE {_ACCOUNT_MESSAGES}",  # noqa: S608 (a constant)
        [c["grace"]] * 2,
    )
    hdb.execute(db, "DELETE FROM hq_audit WHERE at < ?", [c["audit_delete"]])


def _summary(plan: dict[str, Any]) -> dict[str, int]:
    """Counts only, for the audit journal (ids would keep deleted people's traces)."""
    counts = {key: len(plan[key]) for key in _LISTED}
    return {**counts, **plan["counts"]}


def run(
    db: Db,
    *,
    dry_run: bool = False,
    ring: KeyRing | None = None,
    warn: Warn | None = None,
    limits: Limits = Limits(),
    now: datetime | None = None,
) -> dict[str, Any]:
    """One retention pass (or, ``dry_run``, what it would do); the report (ids and
    counts only). ``ring`` opens the deleted customers' e-mails to find their guest
    orders and messages; ``warn`` records each warning for the mailer (without it the
    warning is in this report only: ``warnings``)."""
    when = now or utcnow()
    c = cutoffs(when, limits)
    if dry_run:  # one snapshot, no write lock: the hub serves on meanwhile
        with hdb.read(db):
            plan = _plan(db, c, ring)
    else:
        with hdb.write(db):
            plan = _plan(db, c, ring)
            _apply(db, plan, c, iso(when), warn)
            record_audit(db, None, "retention.applied", _summary(plan), "cli")
    rules: dict[str, Any] = {key: {"count": len(plan[key]), "ids": plan[key]} for key in _LISTED}
    rules.update({k: {"count": v} for k, v in plan["counts"].items()})
    return {
        "now": iso(when),
        "dry_run": dry_run,
        "limits": asdict(limits),
        "cutoffs": c,
        "rules": rules,
        "warnings": "mailer" if warn is not None else "report",
        "unreadable_emails": plan["unreadable_emails"],
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as plain lines for a terminal: one per rule, counts then ids."""
    head = "would" if report["dry_run"] else "done"
    lines = [f"retention at {report['now']} ({'dry run' if report['dry_run'] else 'applied'})"]
    for rule, found in report["rules"].items():
        ids = found.get("ids") or []
        shown = (": " + ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else "")) if ids else ""
        lines.append(f"  {rule}: {found['count']} ({head}){shown}")
    if report["rules"]["customers_warned"]["count"] and report["warnings"] == "report":
        lines.append("  warnings are in this report only (no account message to the mailer yet)")
    if report["unreadable_emails"]:
        lines.append(
            f"  {report['unreadable_emails']} deleted customer(s) whose e-mail could not be "
            "opened: their guest orders are anonymised at 3 years all the same"
        )
    return lines
