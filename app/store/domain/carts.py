"""A shopper's cart at the kiosk: read from a scanned QR code, or built in the shop.

A scanned cart QR is checked offline with the hub's public key
(:mod:`app.core.cart_codec`). A self-contained token carries its lines; a reference
token needs one look-up at the hub (given by the caller: the kiosk's comes from
app/store/sync/cart_lookup.py), the only step that needs the link. What the kiosk then
shows per line (here, in another store, online only; today's price; what changed) is
computed from this store's own database, so it works offline too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from app.core import cart_codec, clock, pricing, tokens
from app.core.cart_codec import CartError, CartLine
from app.store.domain import promotions, stock
from app.store.domain.hub_keys import hub_keys

MAX_KIOSK_LINES = 30  # a kiosk cart lives in the session cookie: keep it small


class CartScanError(Exception):
    """Why a scanned code did not open a cart; ``code`` picks the message shown.

    ``too_long``, ``not_a_token``, ``url``, ``pickup``, ``reservation``, ``receipt``,
    ``forged``, ``expired``, ``revoked``, ``offline`` (a reference cart while the hub is
    unreachable), ``unknown_cart``, ``busy`` (look-ups rate-limited), ``bad_cart``.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class CartLookupError(Exception):
    """A look-up of a cart at the hub failed; ``code`` is the hub's error code
    (``unknown_cart``, ``cart_revoked``, ``rate_limited``), None when it did not answer."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ScannedCart:
    """A cart read from a QR code: its id, lines, and whether the hub was needed."""

    cart_id: str
    lines: tuple[CartLine, ...]
    self_contained: bool
    issued_at: int


@dataclass
class LineView:
    """One cart line as the kiosk shows it."""

    sku: str
    qty: int
    price_then: int
    known: bool
    ref: str = ""
    name: str = ""
    size: str = ""
    colour: str = ""
    here: int = 0
    elsewhere: list[dict[str, Any]] = field(default_factory=list)
    status: str = "unknown"  # here, short, elsewhere, online, unknown
    unit_now: int = 0
    total_now: int = 0
    discount: int = 0
    promotion: str = ""

    @property
    def price_change(self) -> int:
        """Today's unit price minus the price when it went in the cart (cents)."""
        return self.unit_now - self.price_then if self.known else 0

    @property
    def reservable(self) -> int:
        """Units that can be held here now."""
        return min(self.qty, self.here) if self.known else 0

    @property
    def to_order(self) -> int:
        """Units that must be ordered (not enough here)."""
        return max(self.qty - self.here, 0) if self.known else 0


class _RevokedCarts:
    """``cart_id in revoked`` as one primary-key look-up (the table grows with every
    web checkout; a scan reads only the id it needs)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __contains__(self, cart_id: object) -> bool:
        row = self.db.execute("SELECT 1 FROM revoked_carts WHERE cart_id = ?", [cart_id])
        return row.fetchone() is not None


def revoked_carts(db: Database) -> _RevokedCarts:
    """Cart ids revoked by the hub (checked out, emptied) or used here (ordered,
    reserved): a container answering ``in`` from the database."""
    return _RevokedCarts(db)


def revoke_locally(db: Database, cart_id: str) -> None:
    """This store used the cart (reserved, ordered): scanning it again opens nothing.
    Call inside the caller's write transaction."""
    db.execute(
        "INSERT INTO revoked_carts (cart_id, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [cart_id, clock.now_iso()],
    )


def apply_revocations(db: Database, changes: list[dict], own: str | None) -> int:
    """Feed applier for ``revocation`` changes (``{"kind": "cart", "id", "at"}``).

    Rows older than any cart token's life are dropped: such a token is refused as
    expired anyway, so the table stays as small as the tokens in circulation.
    """
    rows = [
        (c["data"]["id"], c["data"].get("at") or clock.now_iso())
        for c in changes
        if c["data"].get("kind") == "cart" and cart_codec.is_cart_id(c["data"].get("id"))
    ]
    db.conn.executemany(
        "INSERT INTO revoked_carts (cart_id, at) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
    )
    horizon = clock.utcnow() - timedelta(seconds=cart_codec.CART_TOKEN_TTL_S + tokens.MAX_SKEW_S)
    db.execute("DELETE FROM revoked_carts WHERE at < ?", [clock.iso(horizon)])
    return len(rows)


def read_scanned(
    db: Database,
    text: str,
    *,
    lookup: Callable[[str], dict[str, Any]] | None = None,
    now: float | None = None,
) -> ScannedCart:
    """The cart behind a scanned code, or CartScanError saying what it is instead.

    ``lookup(cart_id)`` asks the hub for a cart whose token is a reference (the kiosk
    gives :func:`app.store.sync.cart_lookup.get_cart`); it raises
    :class:`CartLookupError` (or is None when no hub is configured).
    """
    text = (text or "").strip()
    if len(text) > tokens.MAX_TOKEN_CHARS:
        raise CartScanError("too_long")
    if re.match(r"(?i)https?://", text):
        raise CartScanError("url")
    if text.startswith("KR1."):
        raise CartScanError("reservation")
    if not text.startswith(tokens.PREFIX + "."):
        raise CartScanError("not_a_token")
    kind = tokens.peek_kind(text)
    if kind in ("pickup", "reservation", "receipt"):
        raise CartScanError(kind)
    try:
        ref = cart_codec.read_cart_token(
            hub_keys(db), text, revoked_carts=revoked_carts(db), now=now
        )
    except tokens.TokenError as exc:
        if exc.code in ("expired", "revoked"):
            raise CartScanError(exc.code, exc.message) from exc
        raise CartScanError("forged", exc.message) from exc
    if ref.lines is not None:
        return ScannedCart(ref.cart_id, ref.lines, True, ref.issued_at)
    return ScannedCart(ref.cart_id, _look_up(ref.cart_id, lookup), False, ref.issued_at)


def _look_up(cart_id: str, lookup: Callable[[str], dict[str, Any]] | None) -> tuple:
    if lookup is None:
        raise CartScanError("offline", "no hub configured")
    try:
        cart = lookup(cart_id)
    except CartLookupError as exc:
        code = {
            "unknown_cart": "unknown_cart",
            "cart_revoked": "revoked",
            "rate_limited": "busy",
        }.get(exc.code or "", "offline")
        raise CartScanError(code, str(exc)) from exc
    try:
        lines = [
            CartLine(str(line["sku"]), line["qty"], line["price_cents"]) for line in cart["lines"]
        ]
        return tuple(cart_codec.check_lines(lines))
    except (CartError, KeyError, TypeError) as exc:
        raise CartScanError("bad_cart", str(exc)) from exc


def add_line(lines: list[list], sku: str, qty: int, price_cents: int) -> list[list]:
    """The session cart's lines ``[[sku, qty, price]]`` with ``qty`` more of ``sku``."""
    out = [list(line) for line in lines]
    for line in out:
        if line[0] == sku:
            line[1] = min(line[1] + qty, cart_codec.MAX_QTY)
            return out
    if len(out) >= MAX_KIOSK_LINES:
        raise CartError("bad_lines", f"a kiosk cart holds at most {MAX_KIOSK_LINES} lines")
    out.append([sku, min(qty, cart_codec.MAX_QTY), price_cents])
    return out


def merge_lines(kiosk: list[list], phone: list[list]) -> tuple[list[list], list[list], list[list]]:
    """The kiosk cart with a phone cart's lines added, the phone lines left out, and the
    units capped.

    Line by line: the same variant (product, colour and size) has its quantities summed
    (at most ``MAX_QTY``), keeping the kiosk line's price then; a new variant is added at
    the end while the cart has room (``MAX_KIOSK_LINES``). Nothing is lost silently: the
    lines that do not fit are returned (``left_out``), and so are the units over
    ``MAX_QTY`` a line cannot take (``capped``, ``[sku, units not added, price]``), so
    the shopper is told.
    """
    merged = [list(line) for line in kiosk]
    left_out: list[list] = []
    capped: list[list] = []
    for sku, qty, price in phone:
        before = next((line[1] for line in merged if line[0] == sku), 0)
        try:
            merged = add_line(merged, sku, qty, price)
        except CartError:
            left_out.append([sku, qty, price])
            continue
        after = next(line[1] for line in merged if line[0] == sku)
        if before + qty > after:
            capped.append([sku, before + qty - after, price])
    return merged, left_out, capped


def update_lines(kiosk: list[list], phone: list[list]) -> tuple[list[list], list[list]]:
    """The kiosk cart brought up to date with a phone cart already merged into it, and
    the phone lines that do not fit.

    Scanning the same phone cart again must not count it twice: each variant gets at
    least the phone's quantity (not the sum), new variants are added at the end while
    the cart has room; nothing is ever removed from the kiosk cart.
    """
    out = [list(line) for line in kiosk]
    left_out: list[list] = []
    for sku, qty, price in phone:
        line = next((line for line in out if line[0] == sku), None)
        if line is not None:
            line[1] = max(line[1], min(qty, cart_codec.MAX_QTY))
        elif len(out) < MAX_KIOSK_LINES:
            out.append([sku, min(qty, cart_codec.MAX_QTY), price])
        else:
            left_out.append([sku, qty, price])
    return out, left_out


def set_qty(lines: list[list], sku: str, qty: int) -> list[list]:
    """The lines with ``sku`` set to ``qty`` (0 removes it)."""
    qty = max(0, min(qty, cart_codec.MAX_QTY))
    return [[s, qty if s == sku else q, p] for s, q, p in lines if s != sku or qty > 0]


def _variant_rows(db: Database, skus: list[str]) -> dict[str, dict[str, Any]]:
    if not skus:
        return {}
    marks = ",".join("?" * len(skus))
    rows = db.execute_returning_dicts(
        f"""SELECT v.sku, p.ref, p.name_fr, p.name_en, v.size, v.colour_fr, v.colour_en,
                   c.slug AS category_slug,
                   COALESCE(v.price_cents, p.price_cents) AS price_cents
            FROM variants v JOIN products p ON p.pk = v.product_pk
            JOIN categories c ON c.id = p.category_id
            WHERE v.sku IN ({marks})""",  # noqa: S608 (placeholders only)
        skus,
    )
    return {row["sku"]: row for row in rows}


def base_price(db: Database, sku: str) -> int | None:
    """A variant's unit price today, before promotions, or None if unknown here."""
    row = _variant_rows(db, [sku]).get(sku)
    return row["price_cents"] if row else None


def cart_view(
    db: Database, lines: list[tuple[str, int, int]] | tuple, lang: str, now: datetime | None = None
) -> dict[str, Any]:
    """Every line with its availability, today's price and what changed; the totals."""
    skus = [sku for sku, _q, _p in lines]
    variants = _variant_rows(db, skus)
    here = stock.levels(db, [s for s in skus if s in variants])
    others = stock.other_stores(db, [s for s in skus if s in variants])
    views: list[LineView] = []
    for sku, qty, price_then in lines:
        row = variants.get(sku)
        if row is None:
            views.append(LineView(sku, qty, price_then, known=False))
            continue
        view = LineView(
            sku,
            qty,
            price_then,
            known=True,
            ref=row["ref"],
            name=row[f"name_{lang}"],
            size=row["size"],
            colour=row[f"colour_{lang}"],
            here=here.get(sku, 0),
        )
        view.elsewhere = [
            {"name": s["name"], "city": s["city"], "qty": s["levels"].get(sku, 0)}
            for s in others
            if s.get("levels", {}).get(sku, 0) > 0
        ]
        if view.here >= qty:
            view.status = "here"
        elif view.here > 0:
            view.status = "short"
        elif view.elsewhere:
            view.status = "elsewhere"
        else:
            view.status = "online"
        views.append(view)
    known = [v for v in views if v.known]
    items = pricing.cart_items(db, [(v.sku, v.qty) for v in known])
    # The store's promotions in force now, by its own clock (they work offline too).
    when = now or clock.utcnow()
    priced = pricing.price_cart(
        items, rules=promotions.active_rules(db, when), store_id=stock.self_store_id(db), now=when
    )
    for view, line in zip(known, priced.lines, strict=True):
        view.unit_now = line.unit_cents
        view.total_now = line.total_cents
        view.discount = line.discount_cents
        view.promotion = line.label_fr if lang == "fr" else line.label_en
    return {
        "lines": views,
        "total": priced.total_cents,
        "discount": priced.discount_cents,
        "unknown": [v for v in views if not v.known],
        "reservable": [(v.sku, v.reservable) for v in views if v.reservable > 0],
        "to_order": [(v.sku, v.to_order) for v in views if v.to_order > 0],
        "changed": [v for v in views if v.price_change or (v.known and v.status != "here")],
    }


def price_lines(
    db: Database, lines: list[tuple[str, int]], now: datetime | None = None
) -> pricing.PricedCart:
    """``(sku, qty)`` priced as this kiosk shows them now (the store's promotions)."""
    when = now or clock.utcnow()
    items = pricing.cart_items(db, lines)
    return pricing.price_cart(
        items, rules=promotions.active_rules(db, when), store_id=stock.self_store_id(db), now=when
    )
