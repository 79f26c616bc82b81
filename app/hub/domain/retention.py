"""How long the hub keeps personal data, enforced (RGPD by design, issue 14).

One pass, run daily (``kiosk hub retention``; docs/data-protection.md), with the CNIL's
figures, by the injected clock (app/core/clock.py):

- ``customers_warned``: a customer whose last contact (an order or a visit, never an
  e-mail opened: ``customers.last_contact_at``) is older than 3 years minus 30 days, and
  not warned since that contact, is warned (``retention_warned_at``; the e-mail recorded
  for the mailer by :func:`.retention_mail.mail_warning`).
- ``customers_contact_found``: past 3 years by the account, but a guest order or home
  delivery placed with the same address since: that was a contact; the account's
  ``last_contact_at`` moves to it and the account stays.
- ``customers_deleted``: past 3 years, the account is deleted with every row naming it
  (:func:`.erasure.erase_customers`: sessions, cards, sign-in codes, any table with a
  ``customer_id`` but ``orders``); its orders stay as accounting records, detached
  and anonymised (below).
- ``orders_anonymised``: the orders of a deleted customer, and guest orders placed more
  than 3 years ago: ``customer_id`` NULL, name, e-mail and pickup code blanked, the
  collector's name of their hand-overs too, their messages deleted; amounts, lines and
  dates stay. The order's feed history is replaced by one anonymised change, so the
  stores' copies forget the person as well. Home deliveries are treated alike.
- ``orders_deleted``, ``deliveries_deleted``: orders placed (home deliveries asked for)
  more than 10 years ago (accounting records), with their lines, hand-overs, returns,
  messages and feed changes.
- ``kiosk_history_deleted``: a kiosk reservation or a cart sent to the phone from a
  kiosk (app/hub/domain/account_history.py), 3 years after it was made, like a guest's
  order (no accounting record: a sale is the till's); sooner with its customer's account.
- ``login_codes_deleted``, ``sessions_deleted``, ``account_messages_deleted``: a sign-in
  code a day after it expired (and the e-mail that carried it, a day after it was
  recorded), a web-shop session a day after it was revoked or expired (idle for
  ``SESSION_IDLE_DAYS``, as app/hub/domain/customers.py's ``SESSION_IDLE``), a warning
  e-mail a day after the mailer sent it.
- ``views_deleted``: the web-shop products a customer who consented looked at
  (app/hub/domain/personal.py), once older than 90 days: "seen recently" says no more.
- ``store_credits_deleted``: a store-credit code used up (nothing left) more than 10
  years ago, like the orders it paid (app/hub/domain/store_credit.py); a deleted
  customer's codes are detached, what is left on them stays spendable.
- ``audit_deleted``: head-office audit entries older than ``AUDIT_DAYS`` (1 year: long
  enough to investigate an incident or answer a request about last year, short enough
  not to become a second customer file).

:func:`run` with ``dry_run=True`` computes the same report and changes nothing. The
report names rows by id only (no name, no e-mail): it may be printed, mailed or logged.
An applied pass is journaled in ``hq_audit`` (``retention.applied``, counts only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import erasure, order_people, personal
from app.hub.domain.hq_audit import record_audit
from app.hub.domain.pii import KeyRing, PiiKeyError

CUSTOMER_YEARS = 3
WARN_DAYS_BEFORE = 30
ORDER_YEARS = 10
AUDIT_DAYS = 365
GRACE_DAYS = 1
SESSION_IDLE_DAYS = 30
#: Account messages past their use: a sign-in code's a day after it was sent (the code
#: has expired), a warning a day after the mailer sent it.
_ACCOUNT_MESSAGES = (
    "order_id IS NULL AND ((kind = 'login_code' AND created_at < ?) "
    "OR (kind = 'retention_warning' AND sent_at < ?))"
)
#: The rules whose report lists ids (the others give counts).
_LISTED = (
    "customers_warned",
    "customers_contact_found",
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
        # A customer is deleted only once warned at least this long ago (a first run,
        # or runs missed, warn first and delete a month later, never by surprise).
        "warned_before": iso(now - timedelta(days=limits.warn_days_before)),
        "order_delete": iso(years_before(now, limits.order_years)),
        "audit_delete": iso(now - timedelta(days=limits.audit_days)),
        "views_delete": iso(now - timedelta(days=personal.RECENT_DAYS)),
        "grace": iso(grace),
        "session_idle": iso(grace - timedelta(days=limits.session_idle_days)),
    }


def _ids(db: Db, sql: str, params: Sequence[Any]) -> list[str]:
    return [r["id"] for r in hdb.rows(db, sql, params)]


def _emails(
    db: Db, ring: KeyRing | None, customer_ids: Sequence[str]
) -> tuple[dict[str, str], int]:
    """customer id -> e-mail address (lower case) of the customers past 3 years, to find
    their guest orders and the messages sent to them; and how many could not be opened
    (no ring, or no key for the value)."""
    found: dict[str, str] = {}
    unreadable = 0
    for part in erasure.chunks(customer_ids):
        marks = ", ".join("?" * len(part))
        for row in hdb.rows(
            db,
            f"SELECT id, email_enc FROM customers WHERE id IN ({marks})",  # noqa: S608 (marks)
            list(part),
        ):
            try:
                email = ring.decrypt(row["email_enc"], "customers.email") if ring else None
            except PiiKeyError:
                email = None
            if email:
                found[row["id"]] = email.strip().lower()
            else:
                unreadable += 1
    return found, unreadable


def _guest_contacts(
    db: Db, ring: KeyRing | None, emails: dict[str, str], since: str
) -> dict[str, str]:
    """customer id -> their newest guest order or home delivery placed with the same
    address since ``since``: a contact the account did not record (not signed in). The
    address is found by its blind index (order_people: orders keep it sealed)."""
    found: dict[str, str] = {}
    if ring is None:
        return found
    for cid, email in emails.items():
        match, params = order_people.email_in(ring, [email])
        newest = max(
            hdb.scalar(
                db,
                f"SELECT max(placed_at) FROM orders WHERE {match} AND placed_at >= ?",  # noqa: S608
                [*params, since],
            )
            or "",
            hdb.scalar(
                db,
                f"SELECT max(created_at) FROM delivery_orders WHERE {match} "  # noqa: S608
                "AND created_at >= ?",
                [*params, since],
            )
            or "",
        )
        if newest:
            found[cid] = newest
    return found


#: An order or a home delivery still naming someone (sealed, or clear before m016).
_HOLDS_PERSON = "(customer_email <> '' OR customer_email_enc IS NOT NULL)"


def _plan(db: Db, c: dict[str, str], ring: KeyRing | None) -> dict[str, Any]:
    warned = _ids(
        db,
        "SELECT id FROM customers WHERE last_contact_at < ? "
        "AND (retention_warned_at IS NULL OR retention_warned_at < last_contact_at) "
        "ORDER BY id",
        [c["customer_warn"]],
    )
    past = _ids(
        db,
        "SELECT id FROM customers WHERE last_contact_at < ? "
        "AND retention_warned_at >= last_contact_at AND retention_warned_at <= ? ORDER BY id",
        [c["customer_delete"], c["warned_before"]],
    )
    by_customer, unreadable = _emails(db, ring, past)
    contacts = _guest_contacts(db, ring, by_customer, c["customer_delete"])
    deleted = [cid for cid in past if cid not in contacts]
    emails = [e for cid, e in by_customer.items() if cid not in contacts]
    old_orders = _ids(
        db, "SELECT id FROM orders WHERE placed_at < ? ORDER BY id", [c["order_delete"]]
    )
    old_deliveries = _ids(
        db, "SELECT id FROM delivery_orders WHERE created_at < ? ORDER BY id", [c["order_delete"]]
    )
    gone = set(old_orders)
    anonymise: set[str] = set()
    for part in erasure.chunks(deleted):
        marks = ", ".join("?" * len(part))
        anonymise.update(
            _ids(db, f"SELECT id FROM orders WHERE customer_id IN ({marks})", part)  # noqa: S608
        )
    for part in erasure.chunks(emails) if ring is not None else ():
        match, params = order_people.email_in(ring, part)
        anonymise.update(_ids(db, f"SELECT id FROM orders WHERE {match}", params))  # noqa: S608
    anonymise.update(
        _ids(
            db,
            "SELECT id FROM orders WHERE customer_id IS NULL AND placed_at < ? "  # noqa: S608
            f"AND {_HOLDS_PERSON}",
            [c["customer_delete"]],
        )
    )
    deliveries: set[str] = set(
        _ids(
            db,
            f"SELECT id FROM delivery_orders WHERE created_at < ? AND {_HOLDS_PERSON}",  # noqa: S608
            [c["customer_delete"]],
        )
    )
    for part in erasure.chunks(emails) if ring is not None else ():
        match, params = order_people.email_in(ring, part)
        deliveries.update(_ids(db, f"SELECT id FROM delivery_orders WHERE {match}", params))  # noqa: S608
    counts = {
        "kiosk_history_deleted": hdb.scalar(
            db,
            "SELECT (SELECT count(*) FROM kiosk_reservations WHERE created_at < ?) "
            "+ (SELECT count(*) FROM sent_carts WHERE sent_at < ?)",
            [c["customer_delete"]] * 2,
            0,
        ),
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
        "views_deleted": hdb.scalar(
            db,
            "SELECT count(*) FROM customer_product_views WHERE viewed_at < ?",
            [c["views_delete"]],
            0,
        ),
        "store_credits_deleted": hdb.scalar(
            db,
            "SELECT count(*) FROM store_credits WHERE left_cents = 0 AND spent_at < ?",
            [c["order_delete"]],
            0,
        ),
    }
    return {
        "customers_warned": warned,
        "customers_deleted": deleted,
        "orders_anonymised": sorted(anonymise - gone),
        "deliveries_anonymised": sorted(deliveries - set(old_deliveries)),
        "deliveries_deleted": old_deliveries,
        "orders_deleted": old_orders,
        "customers_contact_found": sorted(contacts),
        "contacts": contacts,
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
    erasure.each(
        db,
        "UPDATE customers SET retention_warned_at = ? WHERE id IN ({ids})",
        plan["customers_warned"],
        [now],
    )

    for cid, newest in plan["contacts"].items():
        hdb.execute(
            db,
            "UPDATE customers SET last_contact_at = ? WHERE id = ? AND last_contact_at < ?",
            [newest, cid, newest],
        )
    erasure.anonymise_orders(db, plan["orders_anonymised"])
    erasure.anonymise_deliveries(db, plan["deliveries_anonymised"], now)
    erasure.erase_customers(db, plan["customers_deleted"], plan["emails"])
    erasure.delete_orders(db, plan["orders_deleted"])
    erasure.each(db, "DELETE FROM delivery_orders WHERE id IN ({ids})", plan["deliveries_deleted"])
    hdb.execute(db, "DELETE FROM kiosk_reservations WHERE created_at < ?", [c["customer_delete"]])
    hdb.execute(db, "DELETE FROM sent_carts WHERE sent_at < ?", [c["customer_delete"]])

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
    hdb.execute(db, "DELETE FROM customer_product_views WHERE viewed_at < ?", [c["views_delete"]])
    hdb.execute(
        db,
        "DELETE FROM store_credits WHERE left_cents = 0 AND spent_at < ?",
        [c["order_delete"]],
    )


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
