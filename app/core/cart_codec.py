"""Online carts in QR codes: the line codec and the ``cart`` token, shared by hub and store.

A cart QR carries a hub-signed ``cart`` token (:mod:`app.core.tokens`), valid for
:data:`CART_TOKEN_TTL_S`. Its claims are ``c``, the cart's random id, and, when the cart
is small enough for the token to stay under :data:`INLINE_MAX_CHARS`, ``l``: the lines
themselves, so a store reads the cart with no link to the hub. A bigger cart's token
holds only ``c``, and the store looks the cart up at the hub
(``GET /api/v1/carts/{id}``, docs/protocol.md).

``l`` is ``SKU*QTY*PRICE`` per line, joined by ``,``: PRICE is the unit price in cents
when the line was put in the cart, so the kiosk can say what changed since. A 20-line
cart of typical SKUs (``M197793-COR-36``) makes a token of about 1,000 characters, a
version 21 QR code at level M (101 modules): still read at arm's length by a kiosk
camera and by a photo. Nothing personal goes in: ids, SKUs, quantities, prices.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Container, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core import tokens
from app.core.tokens import TokenError

CART_TOKEN_TTL_S = 3 * 24 * 3600
INLINE_MAX_CHARS = 1200
MAX_LINES = 50
MAX_QTY = 20
MAX_PRICE_CENTS = 10_000_000
CART_ID_LENGTH = 20
_ID_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no I/L/O/U/0/1: read aloud safely
_CART_ID = re.compile(rf"c-[A-Z2-9]{{{CART_ID_LENGTH}}}")
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
_NUMBER = re.compile(r"[0-9]{1,9}")


class CartError(ValueError):
    """Cart lines that cannot be read; ``code`` is stable (``bad_lines``, ``bad_id``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CartLine:
    """One line: a variant, how many, and its unit price when it went in the cart."""

    sku: str
    qty: int
    price_cents: int


@dataclass(frozen=True)
class CartRef:
    """What a valid cart token says: the cart id, its lines if inline, when it was made."""

    cart_id: str
    lines: tuple[CartLine, ...] | None
    issued_at: int
    expires_at: int


def new_cart_id() -> str:
    """``c-`` + 20 random characters (~98 bits): never sequential, never guessed."""
    return "c-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(CART_ID_LENGTH))


def is_cart_id(value: object) -> bool:
    """Whether ``value`` is shaped like a cart id."""
    return isinstance(value, str) and _CART_ID.fullmatch(value) is not None


def encode_lines(lines: list[CartLine]) -> str:
    """``SKU*QTY*PRICE,...``; raises CartError on a line the codec cannot carry."""
    check_lines(lines)
    return ",".join(f"{line.sku}*{line.qty}*{line.price_cents}" for line in lines)


def check_lines(lines: list[CartLine]) -> list[CartLine]:
    """The lines, if each is well formed and there are at most MAX_LINES; else CartError."""
    if len(lines) > MAX_LINES:
        raise CartError("bad_lines", f"a cart has at most {MAX_LINES} lines")
    seen: set[str] = set()
    for line in lines:
        if not isinstance(line.sku, str) or not _SKU.fullmatch(line.sku):
            raise CartError("bad_lines", "a line has no valid SKU")
        if line.sku in seen:
            raise CartError("bad_lines", f"{line.sku} appears twice")
        seen.add(line.sku)
        if type(line.qty) is not int or not 1 <= line.qty <= MAX_QTY:
            raise CartError("bad_lines", f"quantities are 1 to {MAX_QTY}")
        if type(line.price_cents) is not int or not 0 <= line.price_cents <= MAX_PRICE_CENTS:
            raise CartError("bad_lines", "a price is out of range")
    return lines


def decode_lines(text: str) -> list[CartLine]:
    """Parse :func:`encode_lines` output strictly; raises CartError on anything else."""
    if not isinstance(text, str) or len(text) > MAX_LINES * 64:
        raise CartError("bad_lines", "cart lines do not decode")
    if text == "":
        return []
    lines = []
    for part in text.split(","):
        fields = part.split("*")
        if len(fields) != 3 or not _NUMBER.fullmatch(fields[1]) or not _NUMBER.fullmatch(fields[2]):
            raise CartError("bad_lines", "cart lines do not decode")
        lines.append(CartLine(fields[0], int(fields[1]), int(fields[2])))
    return check_lines(lines)


def mint_cart_token(
    private_key: Ed25519PrivateKey,
    cart_id: str,
    lines: list[CartLine],
    *,
    kid: str,
    now: float | None = None,
    ttl_s: int = CART_TOKEN_TTL_S,
) -> str:
    """A signed ``cart`` token: self-contained when it fits, a reference otherwise."""
    if not is_cart_id(cart_id):
        raise CartError("bad_id", "not a cart id")
    encoded = encode_lines(lines)
    if lines:
        try:
            inline = tokens.mint(
                private_key, "cart", {"c": cart_id, "l": encoded}, ttl_s, now=now, kid=kid
            )
        except ValueError:  # longer than any token may be: the reference form it is
            inline = ""
        if inline and len(inline) <= INLINE_MAX_CHARS:
            return inline
    return tokens.mint(private_key, "cart", {"c": cart_id}, ttl_s, now=now, kid=kid)


def read_cart_token(
    public_keys: Mapping[str, bytes] | bytes,
    token: str,
    *,
    revoked_carts: Container[str] = (),
    now: float | None = None,
) -> CartRef:
    """Verify a cart token offline; raise TokenError (``revoked`` for a revoked cart)."""
    payload = tokens.verify(public_keys, token, "cart", now=now)
    cart_id = payload.get("c")
    if not is_cart_id(cart_id):
        raise TokenError("malformed", "cart token without a cart id")
    if cart_id in revoked_carts:
        raise TokenError("revoked", "this cart was revoked")
    lines = None
    if "l" in payload:
        try:
            lines = tuple(decode_lines(payload["l"]))
        except CartError as exc:
            raise TokenError("malformed", "cart lines do not decode") from exc
    return CartRef(cart_id, lines, payload["iat"], payload["exp"])
