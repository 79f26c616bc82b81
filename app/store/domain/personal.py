"""« Pour vous »: what the kiosk shows a recognised shopper who consented (issue 14).

The hub computes it (app/hub/domain/personal.py) and ships it in the card's
``customer_card`` change under ``personal`` (app/store/sync/feed.py): the size the
customer takes per category, the products they looked at online (newest first), the
suggestions it ranked, and the head-office offers their segment is targeted by. ``null``
means no consent (never given, or withdrawn): the store forgets what it had. The store
keeps only what the kiosk shows, on the card's row (``customer_cards.personal``,
migration m015), so forgetting the card (renewed, erased, expired) forgets it too.

Every entry point the kiosk calls (:func:`for_you`, :func:`usual_size`) asks
:func:`app.store.domain.consent.personal_allowed` first and returns nothing, having
computed nothing, without consent; the kiosk's view asks
``kiosk_card.personal_allowed()`` (the same, plus a withdrawal tapped during this
visit) before it calls them.

What the kiosk shows is evaluated here, with this store's stock: a product seen online
or suggested is shown only when it is in stock HERE, and, when the customer has a
remembered size for its category, in that size. Offers ended by the store's clock are
not shown. A handful of queries whatever the payload's size (the 100 ms touch budget:
benchmarks/kiosk_recognised.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.store.domain import consent, stock

log = logging.getLogger(__name__)

MAX_RECENT = 12  # product refs seen online, newest first (the hub sends at most 12)
MAX_SUGGESTED = 24  # ranked by the hub
MAX_OFFERS = 10
MAX_SIZES = 64  # one per category
MAX_REF = 64
MAX_SLUG = 64
MAX_SIZE = 20
MAX_OFFER_ID = 64
MAX_TITLE = 120
MAX_TEXT = 400
SHOW_RECENT = 3  # one row of the browse page at both orientations
SHOW_SUGGESTED = 3
SHOW_OFFERS = 3


class MalformedPersonal(ValueError):
    """The hub's ``personal`` payload is not what the protocol says (dropped)."""


def _text(value: Any, limit: int, what: str, *, optional: bool = False) -> str | None:
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise MalformedPersonal(what)
    return value.strip()


def _refs(value: Any, limit: int, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise MalformedPersonal(what)
    out: list[str] = []
    for ref in value:
        ref = _text(ref, MAX_REF, what)
        if ref not in out:
            out.append(ref)
    return out


def _ends_at(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise MalformedPersonal("offers.ends_at")
    try:
        return clock.iso(clock.parse_iso(value))
    except (ValueError, TypeError, OverflowError) as exc:
        raise MalformedPersonal("offers.ends_at") from exc


def validate(payload: Any) -> dict[str, Any] | None:
    """The payload as the store keeps it, or None for ``null`` (no consent).

    Raises :class:`MalformedPersonal` for anything else than the protocol's shape
    (wrong types, too long, too many). Keys the kiosk does not show are not kept.
    """
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise MalformedPersonal("not an object")
    sizes = payload.get("sizes") or {}
    if not isinstance(sizes, dict) or len(sizes) > MAX_SIZES:
        raise MalformedPersonal("sizes")
    kept_sizes = {
        _text(slug, MAX_SLUG, "sizes"): _text(size, MAX_SIZE, "sizes")
        for slug, size in sizes.items()
    }
    offers = payload.get("offers") or []
    if not isinstance(offers, list) or len(offers) > MAX_OFFERS:
        raise MalformedPersonal("offers")
    kept_offers = []
    for offer in offers:
        if not isinstance(offer, dict):
            raise MalformedPersonal("offers")
        kept_offers.append(
            {
                "id": _text(offer.get("id"), MAX_OFFER_ID, "offers.id"),
                "title": _text(offer.get("title"), MAX_TITLE, "offers.title"),
                "text": _text(offer.get("text"), MAX_TEXT, "offers.text", optional=True) or "",
                "ends_at": _ends_at(offer.get("ends_at")),
            }
        )
    return {
        "sizes": kept_sizes,
        "recent": _refs(payload.get("recent"), MAX_RECENT, "recent"),
        "suggested": _refs(payload.get("suggested"), MAX_SUGGESTED, "suggested"),
        "offers": kept_offers,
    }


def save(db: Database, card_id: str, payload: Any) -> bool:
    """Keep what the hub sent for a card (replacing what was held); ``None`` forgets it.

    A malformed payload is dropped (what was held is forgotten too: the store shows
    nothing rather than stale suggestions), with a log line naming the customer id only
    (as every customer log line: never a card id, which is what recognises them).
    Returns whether a payload is now held. The card's row must exist (save the card
    first: customer_cards.save_card)."""
    try:
        kept = validate(payload)
    except MalformedPersonal as exc:
        row = db.execute(
            "SELECT customer_id FROM customer_cards WHERE card_id = ?", [card_id]
        ).fetchone()
        who = row[0] if row else "?"
        log.warning("customer %s: personal suggestions malformed (%s), dropped", who, exc)
        kept = None
    db.execute(
        "UPDATE customer_cards SET personal = ?, consent_personal = ? WHERE card_id = ?",
        [json.dumps(kept, ensure_ascii=False) if kept else None, int(kept is not None), card_id],
    )
    return kept is not None


def _held(db: Database, card_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT personal FROM customer_cards WHERE card_id = ? AND consent_personal = 1",
        [card_id],
    ).fetchone()
    if not row or not row[0]:
        return None
    try:
        held = json.loads(row[0])
    except ValueError:
        return None
    return held if isinstance(held, dict) else None


@dataclass
class ForYou:
    """What the browse page's « Pour vous » shows: product pks in the order to show."""

    recent: list[int] = field(default_factory=list)
    suggested: list[int] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.recent or self.suggested or self.offers)


def _in_stock_here(db: Database, refs: list[str], sizes: dict[str, str]) -> dict[str, int]:
    """Of these refs, those in stock here (in the remembered size of their category when
    there is one): ref -> product pk. Two queries whatever the number of refs."""
    if not refs:
        return {}
    marks = ",".join("?" * len(refs))
    rows = db.execute(
        f"""SELECT p.ref, p.pk, c.slug, v.sku, v.size
            FROM products p JOIN categories c ON c.id = p.category_id
            JOIN variants v ON v.product_pk = p.pk
            WHERE p.ref IN ({marks})""",  # noqa: S608 - placeholders only
        refs,
    ).fetchall()
    levels = stock.levels(db, [r[3] for r in rows])
    out: dict[str, int] = {}
    for ref, pk, slug, sku, size in rows:
        wanted = sizes.get(slug)
        if levels.get(sku, 0) > 0 and (wanted is None or size == wanted):
            out[ref] = pk
    return out


def _current_offers(offers: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    out = []
    for offer in offers:
        ends = offer.get("ends_at")
        try:
            if ends and clock.parse_iso(ends) <= now:
                continue
        except (ValueError, TypeError):
            continue
        out.append(offer)
    return out[:SHOW_OFFERS]


def for_you(db: Database, card_id: str | None) -> ForYou | None:
    """« Pour vous » for a recognised shopper, or None: no consent (nothing computed),
    or nothing held for the card."""
    if not consent.personal_allowed(db, card_id):
        return None
    held = _held(db, card_id)  # type: ignore[arg-type]  # allowed implies a str
    if held is None:
        return None
    sizes = held.get("sizes") or {}
    recent = held.get("recent") or []
    suggested = held.get("suggested") or []
    here = _in_stock_here(db, list(dict.fromkeys(recent + suggested)), sizes)
    shown_recent = [here[r] for r in recent if r in here][:SHOW_RECENT]
    shown_suggested = [here[r] for r in suggested if r in here and here[r] not in shown_recent][
        :SHOW_SUGGESTED
    ]
    return ForYou(
        recent=shown_recent,
        suggested=shown_suggested,
        offers=_current_offers(held.get("offers") or [], clock.utcnow()),
    )


def usual_size(db: Database, card_id: str | None, category_slug: str) -> str | None:
    """The size the customer takes in this category, or None (no consent, none held)."""
    if not consent.personal_allowed(db, card_id):
        return None
    held = _held(db, card_id)  # type: ignore[arg-type]
    size = ((held or {}).get("sizes") or {}).get(category_slug)
    return size if isinstance(size, str) else None
