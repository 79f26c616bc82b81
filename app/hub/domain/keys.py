"""The hub's token-signing key: a PEM file in the data directory, published on the feed.

The private key never leaves ``DATA/hub_signing_key.pem`` (0600). Its public half is
registered in ``hub_keys`` under a key id derived from the key itself and announced
once as a global ``hub_key`` change, so every store can verify pickup QR codes offline.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core import tokens
from app.core.clock import now_iso
from app.core.protocol import CHANGE_HUB_KEY
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.changes import append_change

KEY_FILENAME = "hub_signing_key.pem"


def key_path(data_dir: str | Path) -> Path:
    """Where the hub's private signing key lives in a data directory."""
    return Path(data_dir) / KEY_FILENAME


def current_private_key(data_dir: str | Path) -> Ed25519PrivateKey:
    """The hub's signing key, created (0600) on first use."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return tokens.load_or_create_private_key(key_path(data_dir))


def kid_for(private_key: Ed25519PrivateKey) -> str:
    """A stable key id for a key: ``hk-`` + 10 base32 characters of its public key's hash."""
    raw = tokens.public_key_from_b64(tokens.public_key_b64(private_key))
    digest = base64.b32encode(hashlib.sha256(raw).digest()).decode("ascii").lower()
    return "hk-" + digest[:10]


def hub_key_change_data(kid: str, public_key: str) -> dict[str, Any]:
    """What the feed says about a hub key (docs/protocol.md, ``hub_key``)."""
    return {"kid": kid, "alg": "Ed25519", "public_key": public_key}


def register_key(db: Db, private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Record the public half of ``private_key`` and announce it once; return its data."""
    kid, public = kid_for(private_key), tokens.public_key_b64(private_key)
    with hdb.write(db):
        inserted = hdb.upsert(
            db,
            "hub_keys",
            {"kid": kid, "public_key": public, "created_at": now_iso()},
            conflict=["kid"],
            update=[],
        )
        if inserted:
            append_change(db, CHANGE_HUB_KEY, kid, hub_key_change_data(kid, public))
    return hub_key_change_data(kid, public)


def ensure_hub_key(db: Db, data_dir: str | Path) -> tuple[Ed25519PrivateKey, str]:
    """The signing key and its kid, registered and published if they were not yet."""
    private_key = current_private_key(data_dir)
    kid = kid_for(private_key)
    if hdb.one(db, "SELECT 1 AS found FROM hub_keys WHERE kid = ?", [kid]) is None:
        register_key(db, private_key)
    return private_key, kid


def public_keys(db: Db) -> dict[str, bytes]:
    """Every registered public key, kid -> raw 32 bytes (what ``tokens.verify`` takes)."""
    rows = hdb.execute(db, "SELECT kid, public_key FROM hub_keys").fetchall()
    return {kid: tokens.public_key_from_b64(pub) for kid, pub in rows}
