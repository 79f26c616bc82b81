"""How a promotion's offer reads in a few characters ("-20 %", "2e à -50 %"): the same
badge on the kiosk, in the head-office console's list and in its kiosk preview."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import format_currency

from app.core.pricing import Rule


def _euros(cents: int, lang: str) -> str:
    return format_currency(Decimal(cents) / 100, "EUR", locale=lang)


def _ordinal(n: int, lang: str) -> str:
    if lang == "fr":
        return f"{n}e"
    last = n % 10 if n % 100 not in (11, 12, 13) else 0
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(last, 'th') }"


def badge(rule: dict[str, Any] | Rule, lang: str) -> str:
    """A promotion's offer in a few characters: "-20 %", "2e à -50 %", "9,99 €"."""
    if isinstance(rule, Rule):
        kind, value, nth, min_qty = rule.kind, rule.value, rule.nth, rule.min_qty
    else:
        kind, value = rule["kind"], int(rule["value"])
        nth, min_qty = int(rule.get("nth") or 2), int(rule.get("min_qty") or 1)
    pct = f"-{value}\u202f%" if lang == "fr" else f"-{value}%"
    if kind == "percent":
        text = pct
    elif kind == "amount":
        text = "-" + _euros(value, lang)
    elif kind == "fixed":
        text = _euros(value, lang)
    elif kind == "nth_percent":
        ordinal = _ordinal(nth, lang)
        text = f"{ordinal} à {pct}" if lang == "fr" else f"{ordinal} item {pct}"
    else:
        return ""
    if min_qty > 1:
        text += f" dès {min_qty} articles" if lang == "fr" else f" from {min_qty} items"
    return text
