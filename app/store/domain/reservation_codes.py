"""The names a reservation goes by: its id (``r-`` and 16 base32 letters), its counter
code (``R-7KQ2``, read aloud or typed from a crumpled ticket) and its ticket QR.

The ticket's QR is ``KR1.<reservation id>.<MAC>``: an HMAC-SHA256 (truncated to 16
bytes, base32) under a secret of this store. The store cannot mint the hub's signed
tokens, and must not (a stolen kiosk would mint them), but a reservation only means
something in the store that made it, so a local key is enough. No personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlite_utils import Database

from app.core import db as dbmod

TOKEN_PREFIX = "KR1"
KEY_META = "reservations.ticket_key"
# Counter codes avoid 0/O, 1/I/L: read aloud or typed from a crumpled ticket.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_CHARS = 4
_CODE = re.compile(r"(?:R-?)?([" + CODE_ALPHABET + r"]{4,8})")
_PREFIXED_CODE = re.compile(r"R-?[" + CODE_ALPHABET + r"]{4,8}")
_ID = re.compile(r"r-[a-z2-7]{16}")
_MAC = re.compile(r"[A-Z2-7]{26}")


class BadTicket(ValueError):
    """A reservation QR that is not one of this store's: malformed, forged or damaged."""


# --- Ticket token -------------------------------------------------------------------


def ticket_key(db: Database) -> bytes:
    """This store's secret for reservation QR codes, created on first use."""
    value = dbmod.get_meta(db, KEY_META)
    if value is None:
        with dbmod.write(db):
            value = dbmod.get_meta(db, KEY_META)  # another process may have just made it
            if value is None:
                value = secrets.token_bytes(32).hex()
                dbmod.set_meta(db, KEY_META, value)
    return bytes.fromhex(value)


def _mac(key: bytes, reservation_id: str) -> str:
    digest = hmac.new(key, f"{TOKEN_PREFIX}.{reservation_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:16]).decode().rstrip("=")


def ticket_token(db: Database, reservation_id: str) -> str:
    """The QR payload of a reservation's ticket: ``KR1.<id>.<MAC>``."""
    return f"{TOKEN_PREFIX}.{reservation_id}.{_mac(ticket_key(db), reservation_id)}"


def looks_like_token(text: str) -> bool:
    """Whether a scan is meant as a reservation QR (valid or not)."""
    return (text or "").strip()[:4].upper() == f"{TOKEN_PREFIX}."


def looks_like_reservation(text: str) -> bool:
    """Whether a scan or typed text is meant for a reservation: its QR or ``R-7KQ2``."""
    return looks_like_token(text) or bool(_PREFIXED_CODE.fullmatch(_normalise(text)))


def verify_token(db: Database, token: str) -> str:
    """The reservation id a ticket QR names; :class:`BadTicket` if forged or damaged."""
    parts = (token or "").strip().split(".")
    if len(parts) != 3 or parts[0].upper() != TOKEN_PREFIX:
        raise BadTicket("not a reservation QR code")
    # Scanners may change the case of what they type: the id is lower case, the MAC upper.
    reservation_id, mac = parts[1].lower(), parts[2].upper()
    if not _ID.fullmatch(reservation_id) or not _MAC.fullmatch(mac):
        raise BadTicket("not a reservation QR code")
    if not hmac.compare_digest(mac, _mac(ticket_key(db), reservation_id)):
        raise BadTicket("forged or damaged reservation QR code")
    return reservation_id


# --- Ids and counter codes ----------------------------------------------------------


def new_id() -> str:
    """A fresh reservation id: ``r-`` and 16 base32 letters."""
    return "r-" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def id_for_request(request_id: str) -> str:
    """The reservation id a request id stands for (same shape as a random one)."""
    digest = hashlib.sha256(f"reservation:{request_id}".encode()).digest()[:10]
    return "r-" + base64.b32encode(digest).decode().lower()


def new_code(db: Database) -> str:
    """A counter code no reservation of this store has yet (``R-7KQ2``)."""
    for attempt in range(50):
        # Longer codes only once the short ones get crowded (about a million of them).
        n = CODE_CHARS if attempt < 20 else CODE_CHARS + 2
        code = "R-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(n))
        if db.execute("SELECT 1 FROM reservations WHERE code = ?", [code]).fetchone() is None:
            return code
    raise RuntimeError("no free reservation code")  # pragma: no cover - 31^6 codes


def _normalise(text: str) -> str:
    return "".join((text or "").split()).upper()[:40]


def scanned(db: Database, text: str) -> tuple[str, str] | None:
    """What a scan or typed text names: ``("id", reservation id)`` for a ticket QR (its
    MAC checked: :class:`BadTicket` if forged) or an id, ``("code", "R-7KQ2")`` for a
    typed code; None when it is neither."""
    text = (text or "").strip()[:200]
    if looks_like_token(text):
        return "id", verify_token(db, text)
    if _ID.fullmatch(text.lower()):
        return "id", text.lower()
    m = _CODE.fullmatch(_normalise(text))
    return ("code", f"R-{m.group(1)}") if m else None
