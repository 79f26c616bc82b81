"""The one pricing function: what a cart costs, the same at the hub's web shop and in store.

The hub (web prices) and every store (kiosk prices) call :func:`price_cart` with the
same inputs and get the same cents back (DESIGN.md, invariant 4). Amounts are integer
cents throughout: no float ever touches a price. Everything here is pure: the caller
loads the items and the rules (the hub from its database, a store from its own copy
received through the change feed) and passes the instant to price at.

The rules, in full (docs/protocol.md, "Promotions", says the same for adapters):

* **Kinds.** ``percent`` takes ``value`` % off every unit of the line (1-100);
  ``amount`` takes ``value`` cents off every unit, never below 0 (an amount above the
  price makes the unit free); ``fixed`` sells every unit at ``value`` cents (it does
  not apply when that is not cheaper than the base price); ``nth_percent`` takes
  ``value`` % off every ``nth`` unit of the line: with ``nth=2, value=50``, 2 units
  are one full and one half price, 5 units are three full and two half price
  ("2e à -50 %").
* **Scope.** ``all`` products, ``category`` (``targets`` are category slugs) or ``sku``
  (``targets`` are variant SKUs). ``stores`` None is every store; otherwise only the
  stores named, and a cart priced without a store (``store_id=None``) gets none of
  those store-only rules.
* **Schedule.** A rule is active for ``starts_at <= now < ends_at`` (aware UTC
  instants; None is unbounded): it stops at ``ends_at`` exactly.
* **Minimum quantity.** ``min_qty`` counts the units of the line (one SKU): a line
  of fewer units does not get the rule.
* **Which wins.** At most one rule per line, no stacking. Of the rules that apply to a
  line and give it a discount, the highest ``priority`` wins; at equal priority the
  largest discount on that line (best for the customer); at equal discount the
  smallest ``id``, so the choice never depends on the order rules were loaded in.
* **Rounding.** Percentages are computed on the line (unit price × units taken), in
  integer cents, rounded half up once per line; a line never costs less than 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

RULE_KINDS = ("percent", "amount", "fixed", "nth_percent")
SCOPES = ("all", "category", "sku")


@dataclass(frozen=True)
class Item:
    """A cart line to price: the variant, its category, its base unit price, how many."""

    sku: str
    category_slug: str
    unit_cents: int
    qty: int


@dataclass(frozen=True)
class PricedLine:
    """A priced line: base unit price, what the line costs, and the discount in it."""

    sku: str
    qty: int
    unit_cents: int
    total_cents: int
    discount_cents: int = 0
    promotion_id: str | None = None
    label_fr: str = ""
    label_en: str = ""


@dataclass(frozen=True)
class PricedCart:
    """Every line priced, and the totals."""

    lines: tuple[PricedLine, ...]
    total_cents: int
    discount_cents: int


@dataclass(frozen=True)
class Rule:
    """One promotion's price rule (see the module docstring for what each field means)."""

    id: str
    kind: str
    value: int
    scope: str = "all"
    targets: frozenset[str] = frozenset()
    min_qty: int = 1
    priority: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    stores: frozenset[str] | None = None
    label_fr: str = ""
    label_en: str = ""
    nth: int = 2

    def active_at(self, now: datetime) -> bool:
        """Whether the schedule covers ``now`` (start included, end excluded)."""
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at

    def for_store(self, store_id: str | None) -> bool:
        """Whether the rule targets ``store_id`` (None: a cart priced for no store)."""
        return self.stores is None or (store_id is not None and store_id in self.stores)

    def covers(self, item: Item) -> bool:
        """Whether ``item`` is in the rule's scope (quantity aside)."""
        if self.scope == "all":
            return True
        if self.scope == "category":
            return item.category_slug in self.targets
        if self.scope == "sku":
            return item.sku in self.targets
        return False


def _instant(text: Any) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"instant without a time zone: {text!r}")
    return moment.astimezone(UTC)


def rule_from_data(data: Mapping[str, Any]) -> Rule:
    """The rule of a promotion in its wire form (docs/protocol.md, ``promotion``).

    The hub and every store build their rules with this one function from the same
    JSON, so they cannot read a promotion differently. Raises KeyError, TypeError or
    ValueError on data that is not a promotion.
    """
    rule = data["rule"]
    title = data.get("title") or {}
    stores = data.get("stores")
    kind = rule["kind"]
    scope = rule.get("scope") or "all"
    if kind not in RULE_KINDS or scope not in SCOPES:
        raise ValueError(f"unknown rule {kind!r} / {scope!r}")
    return Rule(
        id=str(data["id"]),
        kind=kind,
        value=int(rule["value"]),
        scope=scope,
        targets=frozenset(str(t) for t in rule.get("targets") or ()),
        min_qty=int(rule.get("min_qty") or 1),
        priority=int(data.get("priority") or 0),
        starts_at=_instant(data.get("starts_at")),
        ends_at=_instant(data.get("ends_at")),
        stores=None if stores is None else frozenset(str(s) for s in stores),
        label_fr=str(title.get("fr") or ""),
        label_en=str(title.get("en") or title.get("fr") or ""),
        nth=int(rule.get("nth") or 2),
    )


def _half_up_percent(cents: int, percent: int) -> int:
    """``cents × percent / 100`` rounded half up, for non-negative integers."""
    return (cents * percent + 50) // 100


def rule_discount(rule: Rule, item: Item) -> int:
    """The discount in cents ``rule`` gives the whole line ``item`` (0 when it does not)."""
    qty = max(item.qty, 0)
    unit = max(item.unit_cents, 0)
    if qty < max(rule.min_qty, 1) or not rule.covers(item):
        return 0
    if rule.kind == "percent":
        discount = _half_up_percent(unit * qty, min(max(rule.value, 0), 100))
    elif rule.kind == "amount":
        discount = min(max(rule.value, 0), unit) * qty
    elif rule.kind == "fixed":
        discount = max(unit - max(rule.value, 0), 0) * qty
    elif rule.kind == "nth_percent":
        nth = max(rule.nth, 1)
        discount = _half_up_percent(unit * (qty // nth), min(max(rule.value, 0), 100))
    else:
        return 0  # a kind from a newer hub: ignored rather than guessed at
    return min(discount, unit * qty)


def _now(now: datetime | None) -> datetime:
    if now is None:
        from app.core.clock import utcnow

        return utcnow()
    if now.tzinfo is None:
        # A naive instant compared with UTC schedules would be silently off by hours.
        raise ValueError("now must be timezone-aware")
    return now


def applicable(
    rules: Iterable[Rule], *, store_id: str | None = None, now: datetime | None = None
) -> list[Rule]:
    """The rules in force for ``store_id`` at ``now`` (scope and quantity aside)."""
    at = _now(now)
    return [r for r in rules if r.active_at(at) and r.for_store(store_id)]


def _price_line(item: Item, rules: Sequence[Rule]) -> PricedLine:
    base = max(item.unit_cents, 0) * max(item.qty, 0)
    best: tuple[tuple[int, int, str], Rule, int] | None = None
    for rule in rules:
        discount = rule_discount(rule, item)
        if discount <= 0:
            continue
        key = (-rule.priority, -discount, rule.id)
        if best is None or key < best[0]:
            best = (key, rule, discount)
    if best is None:
        return PricedLine(item.sku, item.qty, item.unit_cents, base)
    _, rule, discount = best
    return PricedLine(
        item.sku,
        item.qty,
        item.unit_cents,
        base - discount,
        discount,
        rule.id,
        rule.label_fr,
        rule.label_en,
    )


def price_cart(
    items: Sequence[Item],
    *,
    rules: Sequence[Rule] = (),
    store_id: str | None = None,
    now: datetime | None = None,
) -> PricedCart:
    """Price ``items`` with the best rule of ``rules`` in force for ``store_id`` at ``now``.

    ``now`` must be timezone-aware; None means the current instant (app.core.clock).
    """
    in_force = applicable(rules, store_id=store_id, now=now) if rules else []
    lines = tuple(_price_line(item, in_force) for item in items)
    return PricedCart(
        lines,
        sum(line.total_cents for line in lines),
        sum(line.discount_cents for line in lines),
    )


def unit_price(
    item: Item,
    rules: Sequence[Rule] = (),
    *,
    store_id: str | None = None,
    now: datetime | None = None,
) -> PricedLine:
    """What one unit of ``item`` costs (a product page's price), whatever ``item.qty``."""
    one = Item(item.sku, item.category_slug, item.unit_cents, 1)
    return price_cart([one], rules=rules, store_id=store_id, now=now).lines[0]


# --- The items to price, from the catalog ---------------------------------------------

# Bound parameters per catalog query: well under SQLite's limit (999 on older builds).
CATALOG_CHUNK = 500

_ITEM_ROWS = (
    "SELECT v.sku, c.slug, COALESCE(v.price_cents, p.price_cents) "
    "FROM variants v JOIN products p ON p.pk = v.product_pk "
    "JOIN categories c ON c.id = p.category_id WHERE v.sku IN "
)


def cart_items(db: Any, lines: Iterable[tuple[str, int]]) -> list[Item]:
    """``(sku, qty)`` pairs as the items to price, in the order given: the one builder.

    Reads the catalog tables (variants, products, categories: the same columns at the
    hub and in every store), so the kiosk, the cart panel, the web shop and
    ``order.request`` give :func:`price_cart` the same items for the same cart. A
    variant's own price wins over its product's. A SKU the catalog does not hold (or
    that is not text) is left out: each caller decides what that means (refused,
    dropped, or shown as unknown). ``db`` is anything with ``execute`` (sqlite_utils or
    sqlite3).
    """
    pairs = list(lines)
    skus = list(dict.fromkeys(sku for sku, _qty in pairs if isinstance(sku, str)))
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(skus), CATALOG_CHUNK):
        chunk = skus[start : start + CATALOG_CHUNK]
        marks = ",".join("?" * len(chunk))
        for sku, slug, unit in db.execute(f"{_ITEM_ROWS}({marks})", chunk):  # noqa: S608
            found[sku] = (slug, unit)
    return [
        Item(sku, *found[sku], qty) for sku, qty in pairs if isinstance(sku, str) and sku in found
    ]


def item_for(
    product: Mapping[str, Any], variant: Mapping[str, Any] | None = None, qty: int = 1
) -> Item:
    """The item of a product row already read (a card, a product page): the variant's
    own price when it has one, else the product's; without a variant, the product's
    ``ref`` stands for the SKU (a promotion on its category or on everything still
    shows). ``product`` needs ``ref``, ``category_slug`` and ``price_cents``;
    ``variant``, ``sku`` and ``price_cents`` (None: the product's price)."""
    if not variant:
        return Item(product["ref"], product["category_slug"], product["price_cents"], qty)
    own = variant.get("price_cents")
    unit = own if own is not None else product["price_cents"]
    return Item(variant["sku"], product["category_slug"], unit, qty)


def offers(
    item: Item,
    rules: Sequence[Rule] = (),
    *,
    store_id: str | None = None,
    now: datetime | None = None,
) -> list[Rule]:
    """The rules in force that cover ``item`` at some quantity, best first (for labels:
    a product page at one unit still says "2e à -50 %")."""
    found = [r for r in applicable(rules, store_id=store_id, now=now) if r.covers(item)]
    qty = max([2, *(r.min_qty for r in found), *(r.nth for r in found)])
    probe = Item(item.sku, item.category_slug, item.unit_cents, qty)
    return sorted(found, key=lambda r: (-r.priority, -rule_discount(r, probe), r.id))


__all__ = [
    "RULE_KINDS",
    "SCOPES",
    "Item",
    "PricedCart",
    "PricedLine",
    "Rule",
    "applicable",
    "cart_items",
    "item_for",
    "offers",
    "price_cart",
    "rule_discount",
    "rule_from_data",
    "unit_price",
]
