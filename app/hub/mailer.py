"""E-mailing the customer notifications the hub recorded, when SMTP is configured.

Notifications are written inside the database transaction of what caused them; this
module sends them afterwards, from a background thread of ``kiosk hub serve``, never
inside a transaction (a slow mail server must not hold the write lock). A failure is
recorded on the row and retried on the next round, up to ``MAX_ATTEMPTS``.

Settings (environment): ``KIOSK_HUB_SMTP_HOST`` (mailing is off without it),
``KIOSK_HUB_SMTP_PORT`` (25), ``KIOSK_HUB_SMTP_FROM``, ``KIOSK_HUB_SMTP_USER`` and
``KIOSK_HUB_SMTP_PASSWORD`` (login, after STARTTLS when the server offers it). Or
``KIOSK_HUB_MAIL_DIR``: each mail written there as an ``.eml`` file (mode 0600) instead
of sent: a pick-up folder for a mail system that reads one, and `make demo`'s mailbox
(sign-in codes can be read there without a mail server).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import smtplib
import threading
from collections.abc import Iterator, Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from app.core.clock import now_iso
from app.core.qr import render_qr
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people
from app.hub.domain.pii import KeyRing

MAX_ATTEMPTS = 5
BATCH = 50
MAILER_LOCK = "hub-mailer"
LOGIN_CODE_KIND = "login_code"  # app/hub/domain/customers.py's sign-in mails
log = logging.getLogger(__name__)


def smtp_settings(env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The SMTP settings from ``KIOSK_HUB_SMTP_*``, or None when mailing is off."""
    env = os.environ if env is None else env
    host = env.get("KIOSK_HUB_SMTP_HOST", "").strip()
    folder = env.get("KIOSK_HUB_MAIL_DIR", "").strip()
    if folder and not host:
        return {"dir": folder, "from": env.get("KIOSK_HUB_SMTP_FROM") or "commandes@example.com"}
    if not host:
        return None
    return {
        "host": host,
        "port": int(env.get("KIOSK_HUB_SMTP_PORT") or 25),
        "from": env.get("KIOSK_HUB_SMTP_FROM") or "commandes@example.com",
        "user": env.get("KIOSK_HUB_SMTP_USER") or None,
        "password": env.get("KIOSK_HUB_SMTP_PASSWORD") or "",
        "timeout": float(env.get("KIOSK_HUB_SMTP_TIMEOUT") or 10),
    }


def build_message(row: Mapping[str, Any], sender: str) -> EmailMessage:
    """The e-mail for one notification; the pickup QR code attached as a PNG."""
    msg = EmailMessage()
    msg["Subject"] = row["subject"]
    msg["From"] = sender
    msg["To"] = row["customer_email"]
    msg.set_content(row["body"])
    if row.get("qr_token"):
        buf = io.BytesIO()
        render_qr(row["qr_token"], box_size=8).save(buf, "PNG")
        msg.add_attachment(
            buf.getvalue(), maintype="image", subtype="png", filename="qr-retrait.png"
        )
    return msg


def pending(db: Db, limit: int = BATCH, ring: KeyRing | None = None) -> list[dict[str, Any]]:
    """Notifications not sent yet that still have attempts left, oldest first; their
    address and body opened (sealed at rest: app/hub/domain/order_people.py)."""
    rows = hdb.rows(
        db,
        "SELECT id, customer_email, customer_email_enc, subject, body, body_enc, qr_token "
        "FROM notifications WHERE sent_at IS NULL AND attempts < ? ORDER BY id LIMIT ?",
        [MAX_ATTEMPTS, limit],
    )
    if any(r["customer_email_enc"] or r["body_enc"] for r in rows):
        ring = ring or order_people.ring_of(db)
        rows = [order_people.mail_of(ring, r) for r in rows]
    return [
        {k: v for k, v in r.items() if k not in ("customer_email_enc", "body_enc")} for r in rows
    ]


@contextlib.contextmanager
def _sole_mailer(db: Db) -> Iterator[bool]:
    """Whether this connection may mail now: on PostgreSQL one mailer at a time across
    every hub process (a session advisory lock, tried, never waited for: several workers
    each run a mailer thread and must not send one notification twice). SQLite: yes."""
    if not hdb.is_pg(db):
        yield True
        return
    key = [hdb.LOCK_NAMESPACE, hdb.lock_key(MAILER_LOCK)]
    got = bool(hdb.scalar(db, "SELECT pg_try_advisory_lock(?, ?)", key))
    try:
        yield got
    finally:
        if got:
            hdb.execute(db, "SELECT pg_advisory_unlock(?, ?)", key)


def send_pending(
    db: Db, settings: Mapping[str, Any], limit: int = BATCH, ring: KeyRing | None = None
) -> int:
    """Send what is pending over one SMTP connection; return how many were sent (0 when
    another hub process is mailing right now: it sends them)."""
    with _sole_mailer(db) as mine:
        return _send_pending(db, settings, limit, ring) if mine else 0


def _send_pending(
    db: Db, settings: Mapping[str, Any], limit: int, ring: KeyRing | None = None
) -> int:
    rows = pending(db, limit, ring)
    if not rows:
        return 0
    if settings.get("dir"):
        return _write_to_folder(db, rows, Path(settings["dir"]), settings["from"])
    sent = 0
    try:
        with smtplib.SMTP(settings["host"], settings["port"], timeout=settings["timeout"]) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            if settings.get("user"):
                smtp.login(settings["user"], settings["password"])
            for row in rows:
                try:
                    smtp.send_message(build_message(row, settings["from"]))
                except smtplib.SMTPException as exc:
                    _mark(db, row["id"], error=str(exc)[:500])
                    continue
                _mark(db, row["id"], sent=True)
                sent += 1
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("SMTP unavailable: %s", exc)
        for row in rows[sent:]:
            _mark(db, row["id"], error=f"smtp unavailable: {exc}"[:500])
    return sent


def _write_to_folder(db: Db, rows: list[dict[str, Any]], folder: Path, sender: str) -> int:
    """Each mail as ``<notification id>.eml`` in ``folder`` (private: it holds codes and
    addresses), written whole then renamed, so a reader never sees half a mail."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    sent = 0
    for row in rows:
        final = folder / f"{row['id']:08d}.eml"
        part = final.with_suffix(".part")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(build_message(row, sender).as_bytes())
            os.replace(part, final)
        except OSError as exc:
            _mark(db, row["id"], error=f"mail folder: {exc}"[:500])
            continue
        _mark(db, row["id"], sent=True)
        sent += 1
    return sent


def _mark(db: Db, notification_id: int, sent: bool = False, error: str | None = None) -> None:
    with hdb.write(db, lock=None):  # one row, one statement: atomic by itself
        if sent:
            # A sign-in code, once mailed, is not kept readable in the database (only its
            # hash is, in customer_login_codes): its subject and body are blanked.
            hdb.execute(
                db,
                "UPDATE notifications SET sent_at = ?, error = NULL, attempts = attempts + 1, "
                "subject = CASE WHEN kind = ? THEN '' ELSE subject END, "
                "body = CASE WHEN kind = ? THEN '' ELSE body END, "
                "body_enc = CASE WHEN kind = ? THEN NULL ELSE body_enc END WHERE id = ?",
                [now_iso(), LOGIN_CODE_KIND, LOGIN_CODE_KIND, LOGIN_CODE_KIND, notification_id],
            )
        else:
            hdb.execute(
                db,
                "UPDATE notifications SET error = ?, attempts = attempts + 1 WHERE id = ?",
                [error, notification_id],
            )


def start_mailer(
    data_dir: str | Path,
    settings: Mapping[str, Any],
    interval_s: float = 2.0,
    database: str | None = None,
) -> threading.Event:
    """Send pending notifications every ``interval_s`` in a daemon thread; set the event to stop.

    ``database``: the hub's ``postgresql://`` URL (or SQLite path) when it is not
    ``data_dir``'s ``hub.db``; the thread keeps its own connection."""
    from app.hub.storage import open_database, open_db

    stop = threading.Event()

    def run() -> None:
        db = open_database(database) if database else open_db(data_dir)
        try:
            with order_people.keys_dir(data_dir):  # the addresses are sealed under its key
                _rounds(db, settings, interval_s, stop)
        finally:
            db.close()

    threading.Thread(target=run, name="hub-mailer", daemon=True).start()
    return stop


def _rounds(db: Db, settings: Mapping[str, Any], interval_s: float, stop: threading.Event) -> None:
    """Send pending notifications every ``interval_s`` until ``stop`` is set."""
    while not stop.is_set():
        try:
            send_pending(db, settings)
        except Exception:  # keep mailing after a bug on one round; log it
            log.exception("mailer round failed")
        stop.wait(interval_s)
