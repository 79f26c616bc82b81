"""Customer accounts at the hub: one person across every channel (issue 14).

Sign-in without a password: the shopper gives an e-mail, the hub sends a one-time code
through the notifications the mailer sends (a ``login_code`` notification, no order),
and the code proves the address. Only then is the customer found or created: typing
an address creates nobody (no prospect record for an address never proven).

What is kept, and how:

- ``customers``: the e-mail sealed (``email_enc``, :mod:`.pii`) and its blind index
  (``email_idx``) to find it; names sealed too. No plain e-mail.
- ``customer_login_codes``: an HMAC-SHA256 of the code under a key derived from the
  hub's index key, with a per-code salt (a database dump alone does not give the
  codes back: 10^6 codes would otherwise be a trivial search); 10 minutes to use it,
  5 attempts, one use; a new code voids the previous ones for that address. The
  e-mail it was sent to is kept sealed, so the customer is created when it is proven.
- ``customer_sessions``: web-shop sessions, in :mod:`.customer_sessions`.
- Rate limits (:mod:`.ratelimit`): codes asked per address and per client address.

Nothing here logs an e-mail or a code: callers log a customer id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import iso, parse_iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people, ratelimit
from app.hub.domain.customer_sessions import open_session
from app.hub.domain.pii import KeyRing

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
#: Codes asked (allowed per window): per e-mail address, per client address.
EMAIL_LIMIT, EMAIL_WINDOW_S = 5, 3600.0
CLIENT_LIMIT, CLIENT_WINDOW_S = 20, 3600.0
MAX_EMAIL = 254
MAX_NAME = 80

EMAIL_COLUMN = "customers.email"
CODE_EMAIL_COLUMN = "customer_login_codes.email"
INDEX_COLUMN = "customers.email"  # the blind index of an address, wherever it is kept


class CustomerError(Exception):
    """A refusal the shopper is told about: ``code`` says which.

    ``bad_email``, ``rate_limited`` (``retry_after`` seconds), ``no_code``, ``expired``,
    ``used``, ``too_many_attempts``, ``wrong_code`` (``left`` attempts)."""

    def __init__(self, code: str, *, retry_after: int = 0, left: int = 0) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after
        self.left = left


@dataclass(frozen=True)
class SignIn:
    customer_id: str
    session_token: str
    created: bool
    attached: int


# --- e-mail addresses ------------------------------------------------------------


def clean_email(raw: Any) -> str:
    """The address typed, trimmed; CustomerError("bad_email") if it is not one."""
    email = str(raw or "").strip()
    local, _, domain = email.rpartition("@")
    if (
        not email
        or len(email) > MAX_EMAIL
        or email.count("@") != 1
        or not local
        or "." not in domain.strip(".")
        or any(c.isspace() or ord(c) < 32 for c in email)
    ):
        raise CustomerError("bad_email")
    return email


def email_index(ring: KeyRing, email: str) -> str:
    return ring.blind_index(email, INDEX_COLUMN)


# --- customers -------------------------------------------------------------------


def find_by_email(db: Db, ring: KeyRing, email: str) -> dict[str, Any] | None:
    return hdb.one(db, "SELECT * FROM customers WHERE email_idx = ?", [email_index(ring, email)])


def get_customer(db: Db, customer_id: str) -> dict[str, Any] | None:
    return hdb.one(db, "SELECT * FROM customers WHERE id = ?", [customer_id])


def find_or_create(
    db: Db,
    ring: KeyRing,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """The customer with this e-mail, created if there is none; ``(row, created)``."""
    email = clean_email(email)
    idx = email_index(ring, email)
    stamp = iso(now or utcnow())
    with hdb.write(db):
        row = hdb.one(db, "SELECT * FROM customers WHERE email_idx = ?", [idx])
        if row is not None:
            return row, False
        row = {
            "id": "cus_" + secrets.token_hex(10),
            "email_enc": ring.encrypt(email, EMAIL_COLUMN),
            "email_idx": idx,
            "first_name_enc": ring.encrypt(_name(first_name), "customers.first_name"),
            "last_name_enc": ring.encrypt(_name(last_name), "customers.last_name"),
            "created_at": stamp,
            "last_contact_at": stamp,
        }
        hdb.insert(db, "customers", row)
    return get_customer(db, row["id"]) or row, True


def _name(value: str | None) -> str | None:
    value = " ".join(str(value or "").split())[:MAX_NAME]
    return value or None


def customer_email(ring: KeyRing, customer: dict[str, Any]) -> str:
    return ring.decrypt(customer["email_enc"], EMAIL_COLUMN) or ""


def touch_contact(db: Db, customer_id: str, when: datetime | str | None = None) -> None:
    """A contact (a sign-in, an order): the retention clock starts again from ``when``
    (never moved back: an old order attached late does not make the data younger)."""
    stamp = when if isinstance(when, str) else iso(when or utcnow())
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE customers SET last_contact_at = ? WHERE id = ? AND last_contact_at < ?",
            [stamp, customer_id, stamp],
        )


def attach_guest_orders(db: Db, ring: KeyRing, customer_id: str, email: str) -> int:
    """Orders placed as a guest with this (now proven) address become the customer's,
    found by the address's blind index (orders keep it sealed); their newest placing
    counts as a contact. Returns how many were attached."""
    with hdb.write(db):
        ids = order_people.ids_by_email(db, ring, "orders", email, "customer_id IS NULL")
        found = [
            hdb.one(db, "SELECT id, placed_at FROM orders WHERE id = ?", [order_id])
            for order_id in ids
        ]
        for order in found:
            hdb.execute(
                db,
                "UPDATE orders SET customer_id = ? WHERE id = ? AND customer_id IS NULL",
                [customer_id, order["id"]],
            )
        if found:
            touch_contact(db, customer_id, max(o["placed_at"] for o in found))
    return len(found)


def claim_order(db: Db, customer_id: str, order_id: str, now: datetime | None = None) -> None:
    """An order the signed-in customer just placed is theirs, and a contact."""
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE orders SET customer_id = ? WHERE id = ? AND customer_id IS NULL",
            [customer_id, order_id],
        )
        touch_contact(db, customer_id, now)


def orders_of(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """The customer's orders from every channel, newest first, with the store's name."""
    return hdb.rows(
        db,
        "SELECT o.id, o.number, o.status, o.placed_at, o.store_id, s.name AS store_name "
        "FROM orders o LEFT JOIN stores s ON s.id = o.store_id "
        "WHERE o.customer_id = ? ORDER BY o.placed_at DESC, o.number DESC",
        [customer_id],
    )


# --- one-time codes --------------------------------------------------------------


def _code_key(ring: KeyRing) -> bytes:
    return hmac.new(ring.index_key, b"customer_login_codes.code", hashlib.sha256).digest()


def _code_mac(ring: KeyRing, salt: str, code_id: str, code: str) -> str:
    message = f"{salt}\0{code_id}\0{code}".encode()
    return hmac.new(_code_key(ring), message, hashlib.sha256).hexdigest()


def compose_code_mail(code: str) -> dict[str, str]:
    """The sign-in code's e-mail: French, then English."""
    minutes = int(CODE_TTL.total_seconds() // 60)
    return {
        "subject": f"Votre code de connexion\u00a0: {code}",
        "body": (
            "Bonjour,\n\n"
            f"Voici votre code pour vous connecter à votre compte\u00a0: {code}\n"
            f"Il est valable {minutes}\u00a0minutes et ne sert qu'une fois.\n"
            "Si vous n'avez rien demandé, ignorez ce message\u00a0: personne ne peut se "
            "connecter sans ce code.\n\n"
            f"---\nYour sign-in code: {code}. It is valid for {minutes} minutes, once. "
            "If you did not ask for it, ignore this message."
        ),
    }


def request_code(
    db: Db,
    ring: KeyRing,
    raw_email: Any,
    client: str,
    now: datetime | None = None,
) -> str:
    """Issue a sign-in code for this address and record its e-mail (the mailer sends
    it); return the code row's id (what the browser keeps until it gives the code).

    CustomerError ``bad_email`` or ``rate_limited`` (nothing recorded then)."""
    email = clean_email(raw_email)
    idx = email_index(ring, email)
    client_key = hashlib.sha256(str(client or "?").encode()).hexdigest()[:32]
    for bucket, limit, window in (
        (f"login:email:{idx[:32]}", EMAIL_LIMIT, EMAIL_WINDOW_S),
        (f"login:client:{client_key}", CLIENT_LIMIT, CLIENT_WINDOW_S),
    ):
        allowed, retry_after = ratelimit.hit(db, bucket, limit, window)
        if not allowed:
            raise CustomerError("rate_limited", retry_after=retry_after)
    now = now or utcnow()
    code = f"{secrets.randbelow(10**6):06d}"
    code_id = secrets.token_urlsafe(18)
    salt = secrets.token_hex(16)
    mail = compose_code_mail(code)
    with hdb.write(db):
        # A new code voids the previous ones for this address.
        hdb.execute(
            db,
            "UPDATE customer_login_codes SET used_at = ? WHERE email_idx = ? AND used_at IS NULL",
            [iso(now), idx],
        )
        hdb.insert(
            db,
            "customer_login_codes",
            {
                "id": code_id,
                "email_idx": idx,
                "email_enc": ring.encrypt(email, CODE_EMAIL_COLUMN),
                "code_hash": f"{salt}${_code_mac(ring, salt, code_id, code)}",
                "created_at": iso(now),
                "expires_at": iso(now + CODE_TTL),
            },
        )
        hdb.insert(
            db,
            "notifications",
            {
                "order_id": None,
                "kind": "login_code",
                "subject": mail["subject"],
                **order_people.sealed_mail(ring, email, mail["body"]),  # sealed at rest
                "qr_token": None,
                "created_at": iso(now),
            },
        )
    return code_id


def verify_code(
    db: Db,
    ring: KeyRing,
    code_id: Any,
    raw_code: Any,
    now: datetime | None = None,
) -> SignIn:
    """Check a code given for the code row ``code_id``; on success the customer is
    found or created, their guest orders attached, a session opened.

    CustomerError: ``no_code``, ``used``, ``expired``, ``too_many_attempts``,
    ``wrong_code`` (``left`` attempts remain). Every try counts, right or wrong."""
    now = now or utcnow()
    code = "".join(str(raw_code or "").split())[:32]
    with hdb.write(db):
        row = hdb.one(
            db, "SELECT * FROM customer_login_codes WHERE id = ?", [str(code_id or "")[:64]]
        )
        if row is None:
            raise CustomerError("no_code")
        if row["used_at"] is not None:
            raise CustomerError("used")
        if parse_iso(row["expires_at"]) <= now:
            raise CustomerError("expired")
        if row["attempts"] >= MAX_ATTEMPTS:
            raise CustomerError("too_many_attempts")
        hdb.execute(
            db,
            "UPDATE customer_login_codes SET attempts = attempts + 1 WHERE id = ?",
            [row["id"]],
        )
        salt, _, mac = row["code_hash"].partition("$")
        given = _code_mac(ring, salt, row["id"], code)
        ok = hmac.compare_digest(given.encode(), mac.encode())
        if ok:
            hdb.execute(
                db,
                "UPDATE customer_login_codes SET used_at = ? WHERE id = ?",
                [iso(now), row["id"]],
            )
    if not ok:
        left = MAX_ATTEMPTS - row["attempts"] - 1
        raise CustomerError("wrong_code" if left > 0 else "too_many_attempts", left=left)
    email = ring.decrypt(row["email_enc"], CODE_EMAIL_COLUMN) or ""
    with hdb.write(db):  # one transaction: the account, its orders, its session
        customer, created = find_or_create(db, ring, email, now=now)
        touch_contact(db, customer["id"], now)
        attached = attach_guest_orders(db, ring, customer["id"], email)
        token = open_session(db, customer["id"], now)
    return SignIn(customer["id"], token, created, attached)
