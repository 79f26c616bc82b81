"""Personal data encrypted at rest at the hub (RGPD by design, issue 14).

Names, e-mail addresses, phone numbers and postal addresses are stored as
``pii1.<kid>.<base64url(nonce || AES-256-GCM ciphertext)>``; the column they belong to
is the authenticated data, so a value copied into another column or table does not
decrypt. The keys live in a JSON file outside the database (``KIOSK_HUB_PII_KEYS``, by
default ``DATA/secrets/pii-keys.json``, 0600): a database dump or backup alone reveals
nothing personal. Back the key file up separately (docs/data-protection.md).

Rotation: :func:`rotate` adds a new key and makes it current; new writes use it, old
values still decrypt with their own key id, and :func:`reencrypt_column` rewrites a
column's values under the current key (``kiosk hub pii rotate`` runs both). A key is
removed by hand only once no value names it any more.

Looking a person up by e-mail without decrypting every row: :func:`blind_index`, an
HMAC-SHA256 of the normalised value under a separate index key that is never rotated
(rotating it would mean recomputing every index).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.hub import database as hdb
from app.hub.database import Db

PREFIX = "pii1"
KEYS_ENV = "KIOSK_HUB_PII_KEYS"
KEYS_FILENAME = "secrets/pii-keys.json"
_NONCE = 12


class PiiKeyError(RuntimeError):
    """The key file is missing, unreadable, too open or does not hold the key a value names."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keys_path(data_dir: str | Path, env: dict[str, str] | None = None) -> Path:
    """Where the key file is: ``$KIOSK_HUB_PII_KEYS``, else ``DATA/secrets/pii-keys.json``."""
    configured = (env if env is not None else os.environ).get(KEYS_ENV)
    return Path(configured) if configured else Path(data_dir) / KEYS_FILENAME


@dataclass
class KeyRing:
    """The encryption keys by id, the one new values use, and the blind-index key."""

    keys: dict[str, bytes]
    current: str
    index_key: bytes
    path: Path | None = field(default=None, compare=False)

    # --- the file -------------------------------------------------------------------

    @classmethod
    def new(cls) -> KeyRing:
        kid = "k" + secrets.token_hex(4)
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid, secrets.token_bytes(32))

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read the key file; refuses one that others can read (the keys are the data)."""
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text()
        except OSError as exc:
            raise PiiKeyError(f"cannot read the personal-data key file {path}: {exc}") from exc
        if mode & 0o077:
            raise PiiKeyError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
        try:
            data = json.loads(text)
            keys = {kid: _unb64(b64) for kid, b64 in data["keys"].items()}
            ring = cls(keys, data["current"], _unb64(data["index_key"]), path)
        except (ValueError, KeyError, TypeError) as exc:
            raise PiiKeyError(f"{path} is not a personal-data key file: {exc}") from exc
        if ring.current not in keys or any(len(k) != 32 for k in keys.values()):
            raise PiiKeyError(f"{path}: the current key is missing or a key is not 256 bits")
        return ring

    @classmethod
    def open(cls, data_dir: str | Path, env: dict[str, str] | None = None) -> KeyRing:
        """The hub's key ring, created (0600, its folder 0700) on first use. Two hub
        processes starting at once on an empty directory end with the same key: the
        file is made whole under a private name, then linked to its final name, which
        fails if another process linked its own first; that one is read instead."""
        path = keys_path(data_dir, env)
        if not path.exists():
            ring = cls.new()
            ring.path = path
            if ring._create():
                return ring
        return cls.load(path)

    def _body(self) -> dict[str, object]:
        return {
            "current": self.current,
            "keys": {kid: _b64(k) for kid, k in self.keys.items()},
            "index_key": _b64(self.index_key),
        }

    def _write_private(self) -> Path:
        """The file's content written and synced under a name of this process alone."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._body(), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        return tmp

    def _create(self) -> bool:
        """Make the key file if there is none (never replacing one): whether this ring
        is the one written (False: another process made it first)."""
        assert self.path is not None
        tmp = self._write_private()
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def save(self) -> None:
        """Write the file atomically, 0600 from the start (never briefly world-readable)."""
        assert self.path is not None
        os.replace(self._write_private(), self.path)

    # --- values ---------------------------------------------------------------------

    def encrypt(self, value: str | None, column: str) -> str | None:
        """``value`` sealed for ``column`` (e.g. ``"customers.email"``); None stays None."""
        if value is None:
            return None
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, value.encode(), column.encode())
        return f"{PREFIX}.{self.current}.{_b64(nonce + sealed)}"

    def decrypt(self, token: str | None, column: str) -> str | None:
        """The value a :meth:`encrypt` token holds; PiiKeyError if it cannot be opened."""
        if token is None:
            return None
        try:
            prefix, kid, body = token.split(".", 2)
        except ValueError:
            raise PiiKeyError("not an encrypted value") from None
        if prefix != PREFIX or kid not in self.keys:
            raise PiiKeyError(f"no key {kid!r} for this value (rotated away?)")
        raw = _unb64(body)
        try:
            return (
                AESGCM(self.keys[kid]).decrypt(raw[:_NONCE], raw[_NONCE:], column.encode()).decode()
            )
        except InvalidTag:
            raise PiiKeyError(f"the value does not open as {column} (moved or altered)") from None

    def kid_of(self, token: str) -> str | None:
        parts = token.split(".", 2)
        return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None

    def blind_index(self, value: str, column: str) -> str:
        """A stable, keyed digest of a normalised value, to find rows by it (an e-mail)."""
        normal = " ".join(value.split()).casefold()
        return hmac.new(self.index_key, f"{column}\0{normal}".encode(), hashlib.sha256).hexdigest()

    def rotate(self) -> str:
        """A new current key (the old ones stay to decrypt); saved. Returns its id."""
        kid = "k" + secrets.token_hex(4)
        while kid in self.keys:
            kid = "k" + secrets.token_hex(4)
        self.keys[kid] = AESGCM.generate_key(bit_length=256)
        self.current = kid
        self.save()
        return kid


def reencrypt_column(
    ring: KeyRing,
    column: str,
    rows: Iterable[tuple[object, str | None]],
    write: Callable[[object, str], None],
) -> int:
    """Rewrite under the current key every value of ``column`` sealed with an older one:
    ``rows`` gives (row key, token), ``write(row key, new token)`` stores it. Returns how
    many were rewritten."""
    done = 0
    for key, token in rows:
        if token is None or ring.kid_of(token) == ring.current:
            continue
        write(key, ring.encrypt(ring.decrypt(token, column), column))
        done += 1
    return done


#: Every sealed column of the hub: (table, column, the column name its values are sealed
#: for). ``kiosk hub pii rotate`` re-encrypts each (rows found by the table's ``id``); a
#: new sealed column is added here, and docs/data-protection.md's data map says why.
SEALED_COLUMNS: list[tuple[str, str, str]] = [
    ("customers", "email_enc", "customers.email"),
    ("customers", "first_name_enc", "customers.first_name"),
    ("customers", "last_name_enc", "customers.last_name"),
    ("customer_login_codes", "email_enc", "customer_login_codes.email"),
    # the people of orders, home deliveries and mails (app/hub/domain/order_people.py)
    ("orders", "customer_name_enc", "orders.customer_name"),
    ("orders", "customer_email_enc", "orders.customer_email"),
    ("delivery_orders", "customer_name_enc", "delivery_orders.customer_name"),
    ("delivery_orders", "customer_email_enc", "delivery_orders.customer_email"),
    ("delivery_orders", "address_enc", "delivery_orders.address"),
    ("notifications", "customer_email_enc", "notifications.customer_email"),
    ("notifications", "body_enc", "notifications.body"),
    ("handovers", "collector_name", "handovers.collector_name"),  # sealed in place
]


def hub_ring(db: Db, data_dir: str | Path, env: dict[str, str] | None = None) -> KeyRing:
    """The hub's key ring, for every user of sealed values (web shop, console, cards,
    commands). A new key file is made only for a hub that holds no sealed value yet: when
    the file is missing but sealed values exist, the key was lost or misplaced (a restore
    without it, a wrong ``KIOSK_HUB_PII_KEYS``), and a new key would leave them unreadable
    and split every e-mail's blind index: refused, saying what to do."""
    path = keys_path(data_dir, env)
    if not path.exists():
        for table, column, _ in SEALED_COLUMNS:
            sql = f"SELECT 1 FROM {table} WHERE {column} LIKE ? LIMIT 1"  # noqa: S608
            if hdb.scalar(db, sql, [PREFIX + ".%"]) is not None:
                raise PiiKeyError(
                    f"the personal-data key file {path} is missing but {table} holds sealed "
                    f"values: restore the file from its backup (or set {KEYS_ENV} to where "
                    "it is); a new key would make them unreadable"
                )
    return KeyRing.open(data_dir, env)
