"""Signed, expiring QR tokens: minted by the hub (Ed25519), verified offline by stores.

Wire format (ASCII, URL-safe, fits a QR code)::

    KQ1.<payload>.<signature>

``payload`` is RFC 4648 base32 (upper case, no padding) of compact JSON; ``signature`` is
base32 of the 64-byte Ed25519 signature over the ASCII bytes ``KQ1.<payload>``, so the
version prefix is signed too. The payload holds ``k`` (kind), ``jti`` (16 random bytes,
base64url), ``iat`` and ``exp`` (Unix seconds), ``kid`` (which hub key signed it) and the
caller's claims.

Why base32 and not base64url: every character of the token (A-Z, 2-7 and ".") is in the
QR *alphanumeric* set, encoded at 5.5 bits per character instead of 8. A pickup token
(order id + store id) is ~308 characters and needs a version 10 QR code (57x57 modules,
level M); the same token in base64url is ~258 characters but needs version 12 (65x65).

Claims must carry opaque ids only (order id, store id, cart id): never a name, e-mail,
phone number or anything else personal. A QR code is readable by anyone who sees it and
is not encrypted, only signed.

Keys: the private key is a PKCS#8 PEM file (readable by ``openssl``); public keys are
handed out as their raw 32 bytes, or base64url of them in configuration.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
from collections.abc import Container, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from app.core import clock

PREFIX = "KQ1"
KINDS = frozenset({"pickup", "cart", "reservation", "receipt", "card"})
RESERVED = frozenset({"k", "jti", "iat", "exp", "kid"})
MAX_SKEW_S = 300
# Above any real token (a pickup token is ~310 chars, a self-contained cart at most
# app.core.cart_codec.INLINE_MAX_CHARS) and far below what a QR code can hold; anything longer is
# refused before any decoding work is done.
MAX_TOKEN_CHARS = 1400
_B32 = re.compile(r"[A-Z2-7]+")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TokenError(Exception):
    """Why a token was refused; ``code`` is one of the documented error codes."""

    code: str  # malformed, bad_signature, wrong_kind, expired, not_yet_valid, revoked,
    # unknown_key
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _b64e(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    """Strict, canonical base64url without padding; raises ValueError otherwise."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64e(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def _b32e(data: bytes) -> str:
    """RFC 4648 base32, upper case, without padding."""
    return base64.b32encode(data).rstrip(b"=").decode("ascii")


def _b32d(text: str) -> bytes:
    """Strict, canonical base32 without padding; raises ValueError otherwise."""
    if not _B32.fullmatch(text):
        raise ValueError("not base32")
    data = base64.b32decode(text + "=" * (-len(text) % 8))  # binascii.Error on bad length
    # The last character can carry unused low bits; several spellings then decode to the
    # same bytes. Only the canonical one is accepted, so a token has exactly one spelling
    # and any edit to it is refused (see the property test).
    if _b32e(data) != text:
        raise ValueError("non-canonical base32")
    return data


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh hub key pair: (private key as PKCS#8 PEM, public key as raw 32 bytes)."""
    private = Ed25519PrivateKey.generate()
    return _private_pem(private), _public_raw(private)


def _private_pem(private: Ed25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_raw(private: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of a private key."""
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """Parse a PKCS#8 PEM Ed25519 private key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """Load the hub's signing key from ``path``, creating it (mode 0600) if missing."""
    path = Path(path)
    if path.exists():
        return load_private_key(path.read_bytes())
    pem, _ = generate_keypair()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # Created 0600 from the start (never briefly world-readable), written and synced
    # under a temporary name, then linked into place: a reader never sees half a key.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            # link(), unlike rename(), fails if the name exists: if two processes race to
            # create the key, the first one wins and the other adopts its key instead of
            # silently replacing a key that may already have signed tokens.
            os.link(tmp, path)
        except FileExistsError:
            return load_private_key(path.read_bytes())
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return load_private_key(pem)


def public_key_b64(private: Ed25519PrivateKey) -> str:
    """The public half of ``private`` as base64url of its raw 32 bytes (for store config)."""
    return _b64e(_public_raw(private))


def public_key_from_b64(text: str) -> bytes:
    """Raw 32-byte public key from :func:`public_key_b64` output."""
    raw = _b64d(text.strip())
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def mint(
    private_key: Ed25519PrivateKey,
    kind: str,
    claims: Mapping[str, str | int],
    ttl_s: int,
    now: float | None = None,
    kid: str = "k1",
) -> str:
    """Sign a token of ``kind`` carrying ``claims`` (ids only), valid for ``ttl_s`` seconds."""
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if not kid or not isinstance(kid, str):
        raise ValueError("kid must be a non-empty string")
    if clash := RESERVED & set(claims):
        raise ValueError(f"reserved claim names: {sorted(clash)}")
    for name, value in claims.items():
        # Ids are strings or integers; refusing richer values keeps payloads small and
        # makes it harder to slip a customer record into a QR code by accident.
        if not isinstance(name, str) or type(value) not in (str, int):
            raise ValueError(f"claim {name!r} must be a str or int id")
    # Business time (app.core.clock): a QR's validity follows the clock tests and stores set.
    iat = int(clock.now_s() if now is None else now)
    payload = {
        "k": kind,
        "jti": _b64e(secrets.token_bytes(16)),
        "iat": iat,
        "exp": iat + int(ttl_s),
        "kid": kid,
        **claims,
    }
    body = _b32e(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    signed = f"{PREFIX}.{body}"
    token = f"{signed}.{_b32e(private_key.sign(signed.encode('ascii')))}"
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError("token too long: claims must be short ids")
    return token


def _public_key(public_keys: Mapping[str, bytes] | bytes, kid: str) -> Ed25519PublicKey:
    """The verification key for ``kid``; a bare key verifies every kid."""
    raw = public_keys if isinstance(public_keys, bytes | bytearray) else public_keys.get(kid)
    if raw is None:
        raise TokenError("unknown_key", f"no public key for key id {kid!r}")
    return Ed25519PublicKey.from_public_bytes(bytes(raw))


def _parse(token: str) -> tuple[bytes, dict, bytes]:
    """Split and decode a token: (signed bytes, payload, signature); no trust yet."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed", "not a token")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("malformed", "not a KQ1 token")
    try:
        payload = json.loads(_b32d(parts[1]))
        signature = _b32d(parts[2])
    except (ValueError, binascii.Error, RecursionError) as exc:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise TokenError("malformed", "token does not decode") from exc
    if not isinstance(payload, dict) or len(signature) != 64:
        raise TokenError("malformed", "token does not decode")
    kid = payload.get("kid")
    if not isinstance(kid, str):
        raise TokenError("malformed", "token has no key id")
    return f"{parts[0]}.{parts[1]}".encode("ascii"), payload, signature


def peek_kind(token: str) -> str | None:
    """The kind a token *claims* to be, unverified: only to choose what to tell a user
    who scanned the wrong QR code ("this is a pickup code"), never to trust it."""
    try:
        _, payload, _ = _parse(token)
    except TokenError:
        return None
    kind = payload.get("k")
    return kind if kind in KINDS else None


def _is_int(value: object) -> bool:
    """A JSON integer (``bool`` is an int subclass in Python, so excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def verify(
    public_keys: Mapping[str, bytes] | bytes,
    token: str,
    kind: str,
    now: float | None = None,
    revoked: Container[str] = (),
) -> dict:
    """Return the payload of a valid ``kind`` token, or raise TokenError saying why not.

    ``public_keys`` maps key id to raw public key (rotation: keep the old key listed
    until its last token expires), or is one raw key used whatever the token's kid.
    ``revoked`` holds revoked ``jti`` values (from the hub's change feed).
    """
    signed, payload, signature = _parse(token)
    key = _public_key(public_keys, payload["kid"])
    try:
        key.verify(signature, signed)
    except InvalidSignature as exc:
        raise TokenError("bad_signature", "token signature does not match") from exc
    # Only signed data is interpreted from here on.
    if not (
        isinstance(payload.get("k"), str)
        and isinstance(payload.get("jti"), str)
        and _is_int(payload.get("iat"))
        and _is_int(payload.get("exp"))
    ):
        raise TokenError("malformed", "token lacks its standard fields")
    if payload["k"] != kind:
        raise TokenError("wrong_kind", f"expected a {kind} token, got {payload['k']}")
    now = clock.now_s() if now is None else now
    if now >= payload["exp"]:
        raise TokenError("expired", "token has expired")
    if payload["iat"] > now + MAX_SKEW_S:
        raise TokenError("not_yet_valid", "token was issued in the future")
    if payload["jti"] in revoked:
        raise TokenError("revoked", "token has been revoked")
    return payload
