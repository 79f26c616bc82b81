"""Promotions at the hub: validation, drafts, publishing to stores, history.

A promotion is a banner (titles and texts in French and English, an optional image)
and one price rule (app/core/pricing.py says what each kind does), a schedule entered in a
time zone and kept in UTC, target stores (None: all) and a priority. Drafts stay at
the hub; publishing, unpublishing and every edit of a published promotion append one
``promotion`` change to the feed for every store (``store_id`` NULL): each store keeps
the promotions that name it, or all of them when ``stores`` is null, and evaluates the
schedule with its own clock, so a promotion ends on time even in an offline store.

Every change is recorded in ``promotion_history`` (who, when, which fields, old and
new values). Messages for people are in French, like the console that shows them.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.pricing import RULE_KINDS, SCOPES, Rule, rule_from_data
from app.core.text import clean_text as plain_text
from app.core.text import text_problem
from app.hub.domain import promo_images
from app.hub.domain.changes import append_change
from app.hub.domain.registry import ID_ALPHABET

DEFAULT_TIMEZONE = "Europe/Paris"  # the demo retailer's stores
TITLE_MAX = 80
TEXT_MAX = 280
MAX_TARGETS = 500
MAX_CENTS = 1_000_000  # 10 000 €: past any price in a sports shop
PRIORITY_RANGE = (0, 1000)
MIN_QTY_RANGE = (1, 99)
NTH_RANGE = (2, 10)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
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
STATUSES = ("draft", "published", "unpublished")

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


class NotFound(LookupError):
    """No promotion with that id."""


def new_promotion_id() -> str:
    """A random id such as ``pr-4x8vd0k2mq7h`` (60 random bits, never sequential)."""
    return "pr-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(12))


# --- Validation --------------------------------------------------------------------


def clean_text(
    value: Any,
    field: str,
    limit: int,
    errors: dict[str, str],
    *,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """Plain text only: trimmed, NFC, no control characters, no markup, at most ``limit``."""
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


def parse_local(
    text: Any, zone: ZoneInfo | None, field: str, errors: dict[str, str]
) -> tuple[str, datetime] | None:
    """``2026-11-22T09:00`` in ``zone`` -> (normalised local text, aware UTC instant).

    A time that does not exist in the zone (the hour skipped when clocks go forward) is
    refused; a time that happens twice (clocks go back) means the first of the two.
    """
    if not isinstance(text, str) or not text.strip():
        errors[field] = "Indiquez une date et une heure."
        return None
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        errors[field] = "Date et heure attendues, par exemple 2026-11-22T09:00."
        return None
    if naive.tzinfo is not None:
        errors[field] = "Heure locale sans fuseau attendue (le fuseau est un champ à part)."
        return None
    naive = naive.replace(second=0, microsecond=0)
    if not 2000 <= naive.year <= 2100:
        errors[field] = "Année entre 2000 et 2100."
        return None
    if zone is None:
        return None
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        errors[field] = (
            f"{naive:%d/%m/%Y %H:%M} n'existe pas dans le fuseau {zone.key} (changement "
            "d'heure) : choisissez une heure après le changement."
        )
        return None
    return naive.strftime(LOCAL_FORMAT), instant


def load_zone(name: Any) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when it is not one.

    ``ZoneInfo`` raises more than ``ZoneInfoNotFoundError``: ``"Europe"`` (a folder of
    the zone database) is an ``IsADirectoryError``, ``"a\x00"`` a ``ValueError``.
    """
    if not isinstance(name, str) or not name or len(name) > 64 or text_problem(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        return None


def _shown(value: Any, limit: int = 40) -> str:
    """A value quoted back in a message: text only, short, no control characters."""
    text = plain_text(value if isinstance(value, str) else repr(value), limit + 1)
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


def _targets(db: Database, scope: str, value: Any, errors: dict[str, str]) -> list[str]:
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
            for r in db.execute(
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
            if db.execute("SELECT 1 FROM variants WHERE sku = ?", [item]).fetchone():
                result.append(item)
                continue
            skus = [
                r[0]
                for r in db.execute(
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


def _stores(db: Database, value: Any, errors: dict[str, str]) -> list[str] | None:
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
    known = {r[0] for r in db.execute("SELECT id FROM stores")}
    unknown = [i for i in items if i not in known]
    if unknown:
        errors["stores"] = "Magasin inconnu : " + ", ".join(_shown(u) for u in unknown[:5]) + "."
    return items


def validate(db: Database, data: dict[str, Any]) -> dict[str, Any]:
    """Check a whole promotion (the form's or the API's fields); its clean row values.

    Raises :class:`PromotionError` naming every field at fault.
    """
    errors: dict[str, str] = {}
    row: dict[str, Any] = {}
    row["title_fr"] = clean_text(data.get("title_fr"), "title_fr", TITLE_MAX, errors, required=True)
    row["title_en"] = clean_text(data.get("title_en"), "title_en", TITLE_MAX, errors)
    row["text_fr"] = clean_text(data.get("text_fr"), "text_fr", TEXT_MAX, errors, multiline=True)
    row["text_en"] = clean_text(data.get("text_en"), "text_en", TEXT_MAX, errors, multiline=True)
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


def from_instants(data: dict[str, Any]) -> dict[str, Any]:
    """API input may give ``starts_at``/``ends_at`` as instants with an offset instead of
    local times: turn them into local times in the promotion's zone."""
    out = dict(data)
    zone = load_zone(out.get("timezone") or DEFAULT_TIMEZONE)
    for local, instant in (("starts_local", "starts_at"), ("ends_local", "ends_at")):
        text = out.get(instant)
        if zone is None or local in out or not isinstance(text, str):
            continue
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError(text)
            # Year 1 or 9999 with an offset overflows: parse_local says the years allowed.
            out[local] = moment.astimezone(zone).strftime(LOCAL_FORMAT)
        except (ValueError, OverflowError):
            out[local] = text[:100]  # parse_local says what is wrong with it
    return out


# --- Rows, wire form, rules --------------------------------------------------------


def _row(db: Database, promotion_id: str) -> dict[str, Any]:
    rows = db.execute_returning_dicts("SELECT * FROM promotions WHERE id = ?", [promotion_id])
    if not rows:
        raise NotFound(promotion_id)
    return _decode(rows[0])


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["targets"] = json.loads(row["targets"] or "[]")
    row["stores"] = json.loads(row["stores"]) if row["stores"] is not None else None
    row["image_formats"] = json.loads(row["image_formats"]) if row["image_formats"] else None
    return row


def get_promotion(db: Database, promotion_id: str) -> dict[str, Any]:
    """One promotion as a dict (targets and stores decoded); raises NotFound."""
    return _row(db, promotion_id)


def phase(row: dict[str, Any], now: datetime) -> str:
    """What people see: draft, scheduled, live, ended or unpublished."""
    if row["status"] != "published":
        return row["status"]
    if now < clock.parse_iso(row["starts_at"]):
        return "scheduled"
    if now >= clock.parse_iso(row["ends_at"]):
        return "ended"
    return "live"


def list_promotions(
    db: Database, now: datetime | None = None, phase_filter: str | None = None
) -> list[dict[str, Any]]:
    """Every promotion, newest change first, each with its ``phase``."""
    now = now or clock.utcnow()
    rows = [
        _decode(r)
        for r in db.execute_returning_dicts("SELECT * FROM promotions ORDER BY updated_at DESC, id")
    ]
    for r in rows:
        r["phase"] = phase(r, now)
    if phase_filter:
        rows = [r for r in rows if r["phase"] == phase_filter]
    return rows


def image_url(promotion_id: str, image_hash: str, name: str) -> str:
    """Where a store fetches one image (signed GET; the hash makes it immutable)."""
    return f"/api/v1/promotions/{promotion_id}/image/{name}?h={image_hash}"


def wire(row: dict[str, Any]) -> dict[str, Any]:
    """A promotion as the change feed and the API carry it (docs/protocol.md)."""
    image = None
    if row.get("image_hash"):
        image = {
            "hash": row["image_hash"],
            "formats": {
                name: {**fmt, "url": image_url(row["id"], row["image_hash"], name)}
                for name, fmt in (row.get("image_formats") or {}).items()
            },
        }
    return {
        "id": row["id"],
        "revision": row["revision"],
        "status": row["status"],
        "title": {"fr": row["title_fr"], "en": row["title_en"]},
        "text": {"fr": row["text_fr"], "en": row["text_en"]},
        "rule": {
            "kind": row["kind"],
            "value": row["value"],
            "nth": row["nth"],
            "scope": row["scope"],
            "targets": list(row["targets"]),
            "min_qty": row["min_qty"],
        },
        "priority": row["priority"],
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "starts_local": row["starts_local"],
        "ends_local": row["ends_local"],
        "timezone": row["timezone"],
        "stores": row["stores"],
        "image": image,
    }


def api_view(row: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The head-office API's view: the wire form plus who and when."""
    out = wire(row)
    out["phase"] = phase(row, now or clock.utcnow())
    for key in ("created_by", "updated_by", "created_at", "updated_at", "published_at"):
        out[key] = row.get(key)
    return out


def active_rules(db: Database, store_id: str | None, now: datetime | None = None) -> list[Rule]:
    """The price rules of the published promotions in force for ``store_id`` at ``now``
    (the web shop's; a store builds the same rules from the same wire data)."""
    now = now or clock.utcnow()
    stamp = clock.iso(now)
    rows = db.execute_returning_dicts(
        "SELECT * FROM promotions WHERE status = 'published' AND starts_at <= ? AND ends_at > ?",
        [stamp, stamp],
    )
    rules = [rule_from_data(wire(_decode(r))) for r in rows]
    return [r for r in rules if r.for_store(store_id) and r.active_at(now)]


# --- Changes -----------------------------------------------------------------------


def _history(
    db: Database, row: dict[str, Any], actor: str, action: str, changes: dict[str, Any]
) -> None:
    db.execute(
        "INSERT INTO promotion_history (promotion_id, revision, at, actor, action, changes) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            row["id"],
            row["revision"],
            clock.now_iso(),
            actor,
            action,
            json.dumps(changes, ensure_ascii=False, sort_keys=True),
        ],
    )


def _save(db: Database, row: dict[str, Any]) -> None:
    values = dict(row)
    values["targets"] = json.dumps(row["targets"])
    values["stores"] = None if row["stores"] is None else json.dumps(row["stores"])
    values["image_formats"] = (
        json.dumps(row["image_formats"], sort_keys=True) if row.get("image_formats") else None
    )
    values = {k: v for k, v in values.items() if k != "phase"}
    cols = list(values)
    db.execute(
        f"INSERT INTO promotions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "  # noqa: S608
        "ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
        [values[c] for c in cols],
    )


def _announce(db: Database, row: dict[str, Any]) -> None:
    """Tell every store (they filter by ``stores`` themselves)."""
    append_change(db, "promotion", row["id"], wire(row))


def create(db: Database, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Create a draft from ``data``; raises PromotionError. Returns the promotion."""
    clean = validate(db, from_instants(data))
    now = clock.now_iso()
    with dbmod.write(db):
        while True:
            pid = new_promotion_id()
            if not db.execute("SELECT 1 FROM promotions WHERE id = ?", [pid]).fetchone():
                break
        row = {
            "id": pid,
            "status": "draft",
            **clean,
            "image_hash": None,
            "image_formats": None,
            "revision": 1,
            "created_by": actor,
            "updated_by": actor,
            "created_at": now,
            "updated_at": now,
            "published_at": None,
        }
        _save(db, row)
        _history(db, row, actor, "created", {k: [None, clean[k]] for k in EDITABLE})
    return _row(db, pid)


def update(db: Database, promotion_id: str, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Change some fields (the others are kept); a published promotion is re-announced."""
    with dbmod.write(db):
        row = _row(db, promotion_id)
        merged = {k: row[k] for k in EDITABLE}
        # Instants given (API) become local times in the zone the promotion will have.
        incoming = from_instants({"timezone": data.get("timezone", row["timezone"]), **data})
        merged.update({k: v for k, v in incoming.items() if k in EDITABLE})
        clean = validate(db, merged)
        changed = {k: [row[k], clean[k]] for k in EDITABLE if row[k] != clean[k]}
        if not changed:
            return row
        row.update(clean)
        row["revision"] += 1
        row["updated_by"] = actor
        row["updated_at"] = clock.now_iso()
        _save(db, row)
        _history(db, row, actor, "updated", changed)
        if row["status"] == "published":
            _announce(db, row)
    return _row(db, promotion_id)


def set_image(
    db: Database, data_dir: str | Path, promotion_id: str, upload: bytes, actor: str
) -> dict[str, Any]:
    """Check, clean and store an uploaded image; raises ImageRejected or NotFound."""
    _row(db, promotion_id)  # 404 before any decoding work
    images = promo_images.process(upload)
    described = promo_images.store(data_dir, promotion_id, images)
    with dbmod.write(db):
        row = _row(db, promotion_id)
        if row["image_hash"] == described["hash"]:
            return row
        old = row["image_hash"]
        row["image_hash"] = described["hash"]
        row["image_formats"] = described["formats"]
        row["revision"] += 1
        row["updated_by"] = actor
        row["updated_at"] = clock.now_iso()
        _save(db, row)
        _history(db, row, actor, "image", {"image": [old, described["hash"]]})
        if row["status"] == "published":
            _announce(db, row)
    return _row(db, promotion_id)


def remove_image(db: Database, promotion_id: str, actor: str) -> dict[str, Any]:
    """Drop the image (the banner shows its text only)."""
    with dbmod.write(db):
        row = _row(db, promotion_id)
        if not row["image_hash"]:
            return row
        old = row["image_hash"]
        row.update(
            image_hash=None,
            image_formats=None,
            revision=row["revision"] + 1,
            updated_by=actor,
            updated_at=clock.now_iso(),
        )
        _save(db, row)
        _history(db, row, actor, "image", {"image": [old, None]})
        if row["status"] == "published":
            _announce(db, row)
    return _row(db, promotion_id)


def publish(
    db: Database, promotion_id: str, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """Publish to the targeted stores (again, after an unpublish). Raises PromotionError
    when it has already ended: nobody would ever see it."""
    now = now or clock.utcnow()
    with dbmod.write(db):
        row = _row(db, promotion_id)
        if row["status"] == "published":
            return row
        if clock.parse_iso(row["ends_at"]) <= now:
            raise PromotionError(
                {
                    "ends_local": "Cette promotion est déjà terminée : repoussez sa fin avant de "
                    "la publier."
                },
                code="ended",
            )
        before = row["status"]
        row.update(
            status="published",
            revision=row["revision"] + 1,
            updated_by=actor,
            updated_at=clock.now_iso(),
            published_at=clock.iso(now),
        )
        _save(db, row)
        _history(db, row, actor, "published", {"status": [before, "published"]})
        _announce(db, row)
    return _row(db, promotion_id)


def unpublish(db: Database, promotion_id: str, actor: str) -> dict[str, Any]:
    """Withdraw from every store at once (kept at the hub, with its history)."""
    with dbmod.write(db):
        row = _row(db, promotion_id)
        if row["status"] != "published":
            return row
        row.update(
            status="unpublished",
            revision=row["revision"] + 1,
            updated_by=actor,
            updated_at=clock.now_iso(),
        )
        _save(db, row)
        _history(db, row, actor, "unpublished", {"status": ["published", "unpublished"]})
        _announce(db, row)
    return _row(db, promotion_id)


def history(db: Database, promotion_id: str) -> list[dict[str, Any]]:
    """Every change of a promotion, newest first."""
    rows = db.execute_returning_dicts(
        "SELECT revision, at, actor, action, changes FROM promotion_history "
        "WHERE promotion_id = ? ORDER BY id DESC",
        [promotion_id],
    )
    for r in rows:
        r["changes"] = json.loads(r["changes"])
    return rows


def image_file(data_dir: str | Path, row: dict[str, Any], name: str) -> Path | None:
    """The stored file of one format of the promotion's current image, if any."""
    if not row.get("image_hash") or name not in promo_images.FORMATS:
        return None
    path = promo_images.image_path(data_dir, row["id"], row["image_hash"], name)
    return path if path.is_file() else None
