"""The console's promotion form (``/hq/promotions``): the words it shows (kinds, scopes,
phases, field names), reading a posted form into the domain's input, and drawing the
form with a promotion's values and history. The views are in hq_promotions.py.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template
from flask.typing import ResponseReturnValue

from app.core import clock
from app.hub import database as hdb
from app.hub.domain import promo_images, registry
from app.hub.domain import promotions as promo
from app.hub.domain.promotion_schedule import DEFAULT_TIMEZONE
from app.hub.domain.promotion_validation import EDITABLE
from app.hub.storage import get_db
from app.web.i18n import format_local_datetime

PHASES = {
    "draft": "Brouillon",
    "scheduled": "Programmée",
    "live": "En cours",
    "ended": "Terminée",
    "unpublished": "Dépubliée",
}
KINDS = {
    "percent": "Pourcentage de remise",
    "amount": "Montant de remise par article",
    "fixed": "Prix fixe par article",
    "nth_percent": "Remise sur le n-ième article (« 2e à -50 % »)",
}
SCOPES = {"all": "Tout le catalogue", "category": "Des catégories", "sku": "Des produits"}
TIMEZONES = (
    "Europe/Paris",
    "Europe/Brussels",
    "Europe/Luxembourg",
    "Europe/Zurich",
    "Indian/Reunion",
    "America/Martinique",
    "America/Guadeloupe",
)
FIELD_LABELS = {
    "title_fr": "Titre (français)",
    "title_en": "Titre (anglais)",
    "text_fr": "Texte (français)",
    "text_en": "Texte (anglais)",
    "kind": "Type de remise",
    "value": "Valeur",
    "nth": "Article concerné",
    "scope": "Produits concernés",
    "targets": "Catégories ou produits",
    "min_qty": "Quantité minimale",
    "priority": "Priorité",
    "starts_local": "Début",
    "ends_local": "Fin",
    "timezone": "Fuseau horaire",
    "stores": "Magasins",
    "image": "Image",
    "status": "État",
}
ACTIONS = {
    "created": "Création",
    "updated": "Modification",
    "image": "Image",
    "published": "Publication",
    "unpublished": "Dépublication",
}


def _euros_to_cents(text: str) -> int | str:
    """``"5"``, ``"5,5"``, ``"12,99 €"`` -> cents; the text itself when it is not a price
    (validation then says what is wrong with it)."""
    cleaned = text.replace("€", "").replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if not re.fullmatch(r"-?\d{1,7}(\.\d{1,2})?", cleaned):
        return text
    try:
        return int(Decimal(cleaned) * 100)
    except InvalidOperation:
        return text


def form_data(form: Any) -> dict[str, Any]:
    """The form's fields as the domain's input (euros to cents, lists from checkboxes)."""
    kind = form.get("kind", "")
    value: Any = form.get("value", "").strip()
    if kind in ("amount", "fixed") and value:
        value = _euros_to_cents(value)
    scope = form.get("scope", "all")
    if scope == "category":
        targets: Any = form.getlist("categories")
    elif scope == "sku":
        targets = form.get("skus", "")
    else:
        targets = []
    stores: Any = None if form.get("stores_mode", "all") == "all" else form.getlist("stores")
    return {
        "title_fr": form.get("title_fr", ""),
        "title_en": form.get("title_en", ""),
        "text_fr": form.get("text_fr", ""),
        "text_en": form.get("text_en", ""),
        "kind": kind,
        "value": value,
        "nth": form.get("nth", "2"),
        "scope": scope,
        "targets": targets,
        "min_qty": form.get("min_qty", "1"),
        "priority": form.get("priority", "0"),
        "starts_local": form.get("starts_local", ""),
        "ends_local": form.get("ends_local", ""),
        "timezone": form.get("timezone", DEFAULT_TIMEZONE),
        "stores": stores,
    }


def form_values(row: dict[str, Any] | None, form: Any | None) -> dict[str, Any]:
    """What the form shows: what was sent (after a refusal), else the promotion."""
    if form is not None:
        values = dict(form_data(form))
        values["value"] = form.get("value", "")
        values["skus"] = form.get("skus", "")
        values["categories"] = form.getlist("categories")
        values["stores_mode"] = form.get("stores_mode", "all")
        values["stores"] = form.getlist("stores")
        return values
    if row is None:
        now = clock.utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE))
        return {
            "kind": "percent",
            "scope": "all",
            "nth": 2,
            "min_qty": 1,
            "priority": 0,
            "timezone": DEFAULT_TIMEZONE,
            "starts_local": now.strftime("%Y-%m-%dT%H:00"),
            "ends_local": "",
            "stores_mode": "all",
            "stores": [],
            "categories": [],
            "skus": "",
        }
    values = {k: row[k] for k in EDITABLE}
    if row["kind"] in ("amount", "fixed"):
        values["value"] = f"{row['value'] / 100:.2f}".replace(".", ",")
    values["categories"] = row["targets"] if row["scope"] == "category" else []
    values["skus"] = "\n".join(row["targets"]) if row["scope"] == "sku" else ""
    values["stores_mode"] = "all" if row["stores"] is None else "some"
    values["stores"] = row["stores"] or []
    return values


def render_form(
    row: dict[str, Any] | None,
    *,
    form: Any | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    db = get_db()
    now = clock.utcnow()
    categories = hdb.rows(db, "SELECT slug, name_fr FROM categories ORDER BY position, slug")
    html = render_template(
        "hq/promotion_form.html",
        promotion=row,
        phase=promo.phase(row, now) if row else None,
        values=form_values(row, form),
        errors=errors or {},
        kinds=KINDS,
        scopes=SCOPES,
        timezones=TIMEZONES,
        categories=categories,
        stores=registry.list_stores(db),
        history=_history(row["id"]) if row else [],
        phases=PHASES,
        max_mb=promo_images.MAX_MEGABYTES,
        field_labels=FIELD_LABELS,
    )
    return html, status


def _history(promotion_id: str) -> list[dict[str, Any]]:
    entries = promo.history(get_db(), promotion_id)
    for e in entries:
        e["action_label"] = ACTIONS.get(e["action"], e["action"])
        e["at_local"] = format_local_datetime(e["at"], "fr")
        e["fields"] = [
            {"label": FIELD_LABELS.get(k, k), "old": _show(k, v[0]), "new": _show(k, v[1])}
            for k, v in sorted(e["changes"].items())
        ]
    return entries


STATUS_LABELS = {"draft": "Brouillon", "published": "Publiée", "unpublished": "Dépubliée"}


def _show(field: str, value: Any) -> str:
    """A value of the history as people read it."""
    labels = {"status": STATUS_LABELS, "kind": KINDS, "scope": SCOPES}.get(field)
    if labels and value in labels:
        return labels[value]
    if field == "stores" and value is None:
        return "Tous les magasins"
    if value is None:
        return "—"
    if field in ("starts_local", "ends_local") and isinstance(value, str):
        return format_local_datetime(value, "fr") or value  # a wall time, as people read it
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)
