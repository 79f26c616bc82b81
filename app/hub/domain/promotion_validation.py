"""Checking a promotion head office submits (the console's form or the API's JSON).

:func:`validate` checks every field at once and returns the clean row values, or raises
:class:`PromotionError` naming each field at fault with a message for people (in
French, like the console that shows them). The schedule's local times are read by
:mod:`app.hub.domain.promotion_schedule`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

from app.core import clock
from app.core.pricing import RULE_KINDS, SCOPES
from app.core.text import clean_text, text_problem
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.promotion_schedule import DEFAULT_TIMEZONE, load_zone, parse_local

TITLE_MAX = 80
TEXT_MAX = 280
MAX_TARGETS = 500
MAX_CENTS = 1_000_000  # 10 000 €: past any price in a sports shop
PRIORITY_RANGE = (0, 1000)
MIN_QTY_RANGE = (1, 99)
NTH_RANGE = (2, 10)
# The fields head office sets (the form, the API): what validate returns.
EDITABLE = (
    "title_fr",
    "title_en",
    "text_fr",
    "text_en",
    "kind",
    "value",
    "nth",
    "scope",
    "targets",
    "min_qty",
    "priority",
    "starts_local",
    "ends_local",
    "timezone",
    "stores",
)

# A tag, a comment or a declaration: "<b>", "</x", "<!--", "<?xml". A lone "<" or ">"
# ("moins de 10 €", "-20 % > tout") is fine and autoescaped like any text.
_MARKUP = re.compile(r"<[a-zA-Z/!?]|&#?[a-zA-Z0-9]+;")


class PromotionError(ValueError):
    """Input refused: ``fields`` maps each field at fault to a message for people."""

    def __init__(self, fields: dict[str, str], code: str = "invalid") -> None:
        self.fields = fields
        self.code = code
        self.message = " ".join(fields.values())
        super().__init__(self.message)


def clean_field(
    value: Any,
    field: str,
    limit: int,
    errors: dict[str, str],
    *,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """One submitted text field, checked: trimmed, NFC, no control characters, no markup,
    at most ``limit``; a refusal is written to ``errors[field]``."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = "Texte attendu."
        return ""
    text = unicodedata.normalize("NFC", value).strip()
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    allowed = "\n" if multiline else ""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c not in allowed for c in text):
        errors[field] = "Caractères de contrôle ou invisibles refusés : tapez du texte simple."
    elif _MARKUP.search(text):
        errors[field] = (
            "Du texte simple seulement : pas de balises HTML ni de script (<b>, <script>, "
            "entités &…;)."
        )
    elif required and not text:
        errors[field] = "Obligatoire."
    elif len(text) > limit:
        errors[field] = f"{limit} caractères au plus (ici {len(text)})."
    return text


def _int(value: Any, field: str, errors: dict[str, str], low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or value is None or value == "":
        errors[field] = f"{what} : un nombre entier est attendu."
        return low
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,9}", value):
            errors[field] = f"{what} : un nombre entier est attendu."
            return low
        value = int(value)
    if isinstance(value, float):
        if not value.is_integer():
            errors[field] = f"{what} : un nombre entier est attendu."
            return low
        value = int(value)
    if not isinstance(value, int):
        errors[field] = f"{what} : un nombre entier est attendu."
        return low
    if not low <= value <= high:
        errors[field] = f"{what} : entre {low} et {high}."
    return value


def _shown(value: Any, limit: int = 40) -> str:
    """A value quoted back in a message: text only, short, no control characters."""
    text = clean_text(value if isinstance(value, str) else repr(value), limit + 1)
    return text if len(text) <= limit else text[:limit] + "…"


def _zone(name: Any, errors: dict[str, str]) -> ZoneInfo | None:
    zone = load_zone(name)
    if zone is None:
        shown = f" : {_shown(name)}" if isinstance(name, str) and name else ""
        errors["timezone"] = (
            f"Fuseau horaire inconnu{shown}. Un fuseau de la base IANA est attendu, "
            "par exemple Europe/Paris."
        )
    return zone


def _as_list(value: Any) -> list[str] | None:
    """A list of strings from a JSON list or from text (commas, spaces, new lines)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,;]+", value) if v]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v.strip() if isinstance(v, str) else v for v in value]
    return None


def _number(value: Any) -> float | None:
    """Any number in ``value`` ("-5", "120 %", 12.5), to say precisely what is wrong."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ".").replace("%", "").strip())
        except ValueError:
            return None
    return None


def _targets(db: Db, scope: str, value: Any, errors: dict[str, str]) -> list[str]:
    if scope == "all":
        return []
    items = _as_list(value)
    if items is None or not all(isinstance(v, str) and v for v in items):
        errors["targets"] = "Une liste de codes est attendue."
        return []
    if len(items) > MAX_TARGETS:
        errors["targets"] = f"{MAX_TARGETS} codes au plus."
        return []
    if any(len(v) > 100 or text_problem(v) for v in items):
        errors["targets"] = "Des codes de 100 caractères au plus, en texte simple."
        return []
    items = list(dict.fromkeys(items))
    if not items:
        errors["targets"] = (
            "Indiquez au moins une catégorie."
            if scope == "category"
            else "Indiquez au moins une référence ou un SKU."
        )
        return []
    if scope == "category":
        known = {
            r[0]
            for r in hdb.execute(
                db,
                f"SELECT slug FROM categories WHERE slug IN ({','.join('?' * len(items))})",  # noqa: S608
                items,
            )
        }
        unknown = [i for i in items if i not in known]
        if unknown:
            errors["targets"] = (
                "Catégorie inconnue : " + ", ".join(_shown(u) for u in unknown[:5]) + "."
            )
        result = items
    else:
        # A SKU stands for itself; a product reference for all its variants.
        result = []
        unknown = []
        for item in items:
            if hdb.scalar(db, "SELECT 1 FROM variants WHERE sku = ?", [item]) is not None:
                result.append(item)
                continue
            skus = [
                r[0]
                for r in hdb.execute(
                    db,
                    "SELECT v.sku FROM variants v JOIN products p ON p.pk = v.product_pk "
                    "WHERE p.ref = ? ORDER BY v.sku",
                    [item],
                )
            ]
            if skus:
                result.extend(skus)
            else:
                unknown.append(item)
        if unknown:
            errors["targets"] = (
                "Référence ou SKU inconnu : " + ", ".join(_shown(u) for u in unknown[:5]) + "."
            )
        result = list(dict.fromkeys(result))
    if len(result) > MAX_TARGETS:
        errors["targets"] = f"{MAX_TARGETS} codes au plus."
    return result


def _stores(db: Db, value: Any, errors: dict[str, str]) -> list[str] | None:
    if value is None or value == "all":
        return None
    items = _as_list(value)
    if items is None or not all(isinstance(v, str) and v for v in items):
        errors["stores"] = "Une liste de magasins est attendue (ou null pour tous)."
        return None
    items = sorted(set(items))
    if not items:
        errors["stores"] = "Choisissez au moins un magasin, ou tous les magasins."
        return None
    known = {r[0] for r in hdb.execute(db, "SELECT id FROM stores")}
    unknown = [i for i in items if i not in known]
    if unknown:
        errors["stores"] = "Magasin inconnu : " + ", ".join(_shown(u) for u in unknown[:5]) + "."
    return items


def validate(db: Db, data: dict[str, Any]) -> dict[str, Any]:
    """Check a whole promotion (the form's or the API's fields); its clean row values.

    Raises :class:`PromotionError` naming every field at fault.
    """
    errors: dict[str, str] = {}
    row: dict[str, Any] = {}
    row["title_fr"] = clean_field(
        data.get("title_fr"), "title_fr", TITLE_MAX, errors, required=True
    )
    row["title_en"] = clean_field(data.get("title_en"), "title_en", TITLE_MAX, errors)
    row["text_fr"] = clean_field(data.get("text_fr"), "text_fr", TEXT_MAX, errors, multiline=True)
    row["text_en"] = clean_field(data.get("text_en"), "text_en", TEXT_MAX, errors, multiline=True)
    kind = data.get("kind")
    if kind not in RULE_KINDS:
        errors["kind"] = "Type de remise inconnu."
        kind = "percent"
    row["kind"] = kind
    value = data.get("value")
    if kind in ("percent", "nth_percent"):
        row["value"] = _int(value, "value", errors, 1, 100, "Remise en %")
        number = _number(value)
        if number is not None and number < 0:
            errors["value"] = "Une remise ne peut pas être négative."
        elif number is not None and number > 100:
            errors["value"] = "Une remise ne peut pas dépasser 100 %."
    elif kind == "amount":
        row["value"] = _int(value, "value", errors, 1, MAX_CENTS, "Montant de la remise (centimes)")
        number = _number(value)
        if number is not None and number < 0:
            errors["value"] = "Une remise ne peut pas être négative."
    else:
        row["value"] = _int(value, "value", errors, 0, MAX_CENTS, "Prix fixe (centimes)")
        number = _number(value)
        if number is not None and number < 0:
            errors["value"] = "Un prix ne peut pas être négatif."
    nth = data.get("nth", 2)
    row["nth"] = _int(
        2 if nth in (None, "") else nth, "nth", errors, *NTH_RANGE, "Tous les n articles"
    )
    scope = data.get("scope") or "all"
    if scope not in SCOPES:
        errors["scope"] = "Portée inconnue : tout, catégories ou produits."
        scope = "all"
    row["scope"] = scope
    row["targets"] = _targets(db, scope, data.get("targets"), errors)
    min_qty = data.get("min_qty", 1)
    row["min_qty"] = _int(
        1 if min_qty in (None, "") else min_qty,
        "min_qty",
        errors,
        *MIN_QTY_RANGE,
        "Quantité minimale",
    )
    priority = data.get("priority", 0)
    row["priority"] = _int(
        0 if priority in (None, "") else priority, "priority", errors, *PRIORITY_RANGE, "Priorité"
    )
    # Absent (null): the retailer's zone. Sent, even empty, it must be a real zone.
    zone_name = data.get("timezone")
    zone = _zone(DEFAULT_TIMEZONE if zone_name is None else zone_name, errors)
    row["timezone"] = zone.key if zone else DEFAULT_TIMEZONE
    start = parse_local(data.get("starts_local"), zone, "starts_local", errors)
    end = parse_local(data.get("ends_local"), zone, "ends_local", errors)
    if start and end:
        if end[1] <= start[1]:
            errors["ends_local"] = "La fin doit être après le début."
        row["starts_local"], starts_at = start
        row["ends_local"], ends_at = end
        row["starts_at"], row["ends_at"] = clock.iso(starts_at), clock.iso(ends_at)
    row["stores"] = _stores(db, data.get("stores"), errors)
    if errors:
        raise PromotionError(errors)
    return row
