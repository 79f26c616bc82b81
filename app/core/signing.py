"""Request signing for the hub protocol (HMAC-SHA256), used by both sides.

See docs/protocol.md, "Authentication". The store signs every request with its secret;
the hub recomputes the signature and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Request timestamps and the nonce window read the real clock (time.time), not
# app.core.clock: they must agree between two machines (store and hub), and a business clock
# frozen by KIOSK_FAKE_NOW would make every request look replayed or skewed.
MAX_SKEW_S = 300
NONCE_TTL_S = 600
H_STORE = "X-Kiosk-Store"
H_TIMESTAMP = "X-Kiosk-Timestamp"
H_NONCE = "X-Kiosk-Nonce"
H_SIGNATURE = "X-Kiosk-Signature"
_HEX = frozenset("0123456789abcdefABCDEF")


def new_secret() -> str:
    """A fresh store secret: 32 random bytes as hex."""
    return secrets.token_hex(32)


def string_to_sign(method: str, path_qs: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes that are signed (six lines, no trailing newline)."""
    return "\n".join(
        ["v1", method.upper(), path_qs, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    ).encode()


def signature(secret_hex: str, message: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``message`` keyed with the hex-decoded secret."""
    return "v1=" + hmac.new(bytes.fromhex(secret_hex), message, hashlib.sha256).hexdigest()


def sign_request(
    store_id: str,
    secret_hex: str,
    method: str,
    path_qs: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four authentication headers for one request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    sig = signature(secret_hex, string_to_sign(method, path_qs, ts, nonce, body))
    return {H_STORE: store_id, H_TIMESTAMP: ts, H_NONCE: nonce, H_SIGNATURE: sig}


@dataclass(frozen=True)
class AuthError(Exception):
    """Why a request was refused; ``code`` is the protocol's ``error`` value."""

    code: str
    message: str


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    body: bytes,
    secret_for: Callable[[str], str | None],
    *,
    now: float | None = None,
) -> tuple[str, str, int]:
    """Check a signed request; return ``(store_id, nonce, timestamp)`` or raise AuthError.

    ``secret_for(store_id)`` returns the store's secret or None. Replay protection
    (remembering the nonce) is the caller's job, since it needs storage.
    """
    store_id = headers.get(H_STORE, "")
    ts_text = headers.get(H_TIMESTAMP, "")
    nonce = headers.get(H_NONCE, "")
    sig = headers.get(H_SIGNATURE, "")
    # ASCII digits only and a bounded length: str.isdigit() also accepts "²", and int()
    # refuses strings over 4,300 digits; either would have been a 500, not a 401.
    well_formed = (
        store_id
        and len(store_id) <= 64
        and ts_text.isascii()
        and ts_text.isdigit()
        and len(ts_text) <= 12
        and 16 <= len(nonce) <= 64
        and all(c in _HEX for c in nonce)
        and sig.startswith("v1=")
    )
    if not well_formed:
        raise AuthError("missing_auth", "missing or malformed authentication headers")
    now = time.time() if now is None else now
    if abs(now - int(ts_text)) > MAX_SKEW_S:
        raise AuthError("clock_skew", "request timestamp is too far from the hub's clock")
    secret = secret_for(store_id)
    # Compute a signature even for an unknown store, so timing does not tell them apart.
    expected = signature(secret or "00" * 32, string_to_sign(method, path_qs, ts_text, nonce, body))
    if not hmac.compare_digest(expected.encode(), sig.encode()) or secret is None:
        raise AuthError("bad_signature", "the request signature does not match")
    return store_id, nonce, int(ts_text)
