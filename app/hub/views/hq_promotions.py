"""The console's promotions (``/hq/promotions``): list, form, kiosk preview, publish.

Marketing (and admins) make promotions here; app/hub/domain/promotions.py holds the rules.
Every action is written to the audit log. The preview renders the kiosk's own banner
partial with the kiosk's stylesheet, so it looks as it will on the attract screen.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from app.core import clock
from app.core.offers import badge
from app.hub.domain import promo_images, registry
from app.hub.domain import promotions as promo
from app.hub.domain.promotion_validation import PromotionError
from app.hub.storage import get_db
from app.hub.views.hq import audit, bp, current_user, login_required

ROLES = ("marketing",)
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
    "nth_percent": "Remise sur le n-ième article (« 2e à -50 % »)",
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


def actor_label() -> str:
    """Who acts, as written in the promotion's history."""
    user = current_user()
    return user["email"] if user else ""


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
        "timezone": form.get("timezone", promo.DEFAULT_TIMEZONE),
        "stores": stores,
    }


def _form_values(row: dict[str, Any] | None, form: Any | None) -> dict[str, Any]:
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
        now = clock.utcnow().astimezone(ZoneInfo(promo.DEFAULT_TIMEZONE))
        return {
            "kind": "percent",
            "scope": "all",
            "nth": 2,
            "min_qty": 1,
            "priority": 0,
            "timezone": promo.DEFAULT_TIMEZONE,
            "starts_local": now.strftime("%Y-%m-%dT%H:00"),
            "ends_local": "",
            "stores_mode": "all",
            "stores": [],
            "categories": [],
            "skus": "",
        }
    values = {k: row[k] for k in promo.EDITABLE}
    if row["kind"] in ("amount", "fixed"):
        values["value"] = f"{row['value'] / 100:.2f}".replace(".", ",")
    values["categories"] = row["targets"] if row["scope"] == "category" else []
    values["skus"] = "\n".join(row["targets"]) if row["scope"] == "sku" else ""
    values["stores_mode"] = "all" if row["stores"] is None else "some"
    values["stores"] = row["stores"] or []
    return values


def _render_form(
    row: dict[str, Any] | None,
    *,
    form: Any | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    db = get_db()
    now = clock.utcnow()
    categories = db.execute_returning_dicts(
        "SELECT slug, name_fr FROM categories ORDER BY position, slug"
    )
    html = render_template(
        "hq/promotion_form.html",
        promotion=row,
        phase=promo.phase(row, now) if row else None,
        values=_form_values(row, form),
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
        e["at_local"] = (
            clock.parse_iso(e["at"])
            .astimezone(ZoneInfo(promo.DEFAULT_TIMEZONE))
            .strftime("%d/%m/%Y %H:%M:%S")
        )
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
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _image_upload() -> bytes | None:
    """The uploaded image's bytes, None when no file was chosen."""
    upload = request.files.get("image")
    if upload is None or not upload.filename:
        return None
    # One more byte than allowed tells "too large" without reading a huge file whole.
    return upload.stream.read(promo_images.MAX_BYTES + 1)


def _load(promotion_id: str) -> dict[str, Any]:
    try:
        return promo.get_promotion(get_db(), promotion_id)
    except promo.NotFound:
        abort(404)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body past the upload limit (a 50 MB photo): say so in words, not a bare 413."""
    return render_template("hq/too_large.html", max_mb=promo_images.MAX_MEGABYTES), 413


@bp.get("/promotions")
@login_required(*ROLES)
def promotions() -> ResponseReturnValue:
    """Every promotion with its state (draft, scheduled, live, ended, unpublished)."""
    wanted = request.args.get("etat") or None
    if wanted not in PHASES:
        wanted = None
    rows = promo.list_promotions(get_db(), clock.utcnow(), wanted)
    for r in rows:
        r["badge"] = badge(
            {"kind": r["kind"], "value": r["value"], "nth": r["nth"], "min_qty": r["min_qty"]}, "fr"
        )
    return render_template("hq/promotions.html", promotions=rows, phases=PHASES, wanted=wanted)


@bp.get("/promotions/nouvelle")
@login_required(*ROLES)
def new_promotion() -> ResponseReturnValue:
    """The empty form."""
    return _render_form(None)


@bp.post("/promotions/nouvelle")
@login_required(*ROLES)
def create_promotion() -> ResponseReturnValue:
    """Create a draft (with its image, if one was chosen)."""
    db = get_db()
    upload = _image_upload()
    if upload is not None:
        try:
            # Checked first: a refused image must not leave a draft behind.
            promo_images.process(upload)
        except promo_images.ImageRejected as exc:
            return _render_form(None, form=request.form, errors={"image": exc.message}, status=422)
    try:
        row = promo.create(db, form_data(request.form), actor_label())
    except PromotionError as exc:
        return _render_form(None, form=request.form, errors=exc.fields, status=422)
    if upload is not None:
        row = promo.set_image(db, current_app.config["DATA_DIR"], row["id"], upload, actor_label())
    audit("promotion.created", {"promotion_id": row["id"], "title": row["title_fr"]})
    flash("Promotion enregistrée comme brouillon. Vérifiez l'aperçu, puis publiez-la.")
    return redirect(url_for("hq.promotion", promotion_id=row["id"]))


@bp.get("/promotions/<promotion_id>")
@login_required(*ROLES)
def promotion(promotion_id: str) -> ResponseReturnValue:
    """One promotion: its form, state, publish buttons and history."""
    return _render_form(_load(promotion_id))


@bp.post("/promotions/<promotion_id>")
@login_required(*ROLES)
def update_promotion(promotion_id: str) -> ResponseReturnValue:
    """Save changes (a published promotion reaches the stores again at once)."""
    db = get_db()
    row = _load(promotion_id)
    upload = _image_upload()
    try:
        if upload is not None:
            promo_images.process(upload)
    except promo_images.ImageRejected as exc:
        return _render_form(row, form=request.form, errors={"image": exc.message}, status=422)
    try:
        updated = promo.update(db, promotion_id, form_data(request.form), actor_label())
    except PromotionError as exc:
        return _render_form(row, form=request.form, errors=exc.fields, status=422)
    if upload is not None:
        updated = promo.set_image(
            db, current_app.config["DATA_DIR"], promotion_id, upload, actor_label()
        )
    elif request.form.get("remove_image"):
        updated = promo.remove_image(db, promotion_id, actor_label())
    if updated["revision"] != row["revision"]:
        audit("promotion.updated", {"promotion_id": promotion_id, "revision": updated["revision"]})
        flash(
            "Modifications enregistrées et envoyées aux magasins."
            if updated["status"] == "published"
            else "Modifications enregistrées."
        )
    else:
        flash("Aucune modification.")
    return redirect(url_for("hq.promotion", promotion_id=promotion_id))


@bp.post("/promotions/<promotion_id>/publier")
@login_required(*ROLES)
def publish_promotion(promotion_id: str) -> ResponseReturnValue:
    """Publish: every targeted store shows it within seconds (or when it starts)."""
    _load(promotion_id)
    try:
        row = promo.publish(get_db(), promotion_id, actor_label())
    except PromotionError as exc:
        flash(exc.message)
        return redirect(url_for("hq.promotion", promotion_id=promotion_id))
    audit("promotion.published", {"promotion_id": promotion_id, "revision": row["revision"]})
    flash("Promotion publiée : les bornes des magasins concernés l'affichent dans un instant.")
    return redirect(url_for("hq.promotion", promotion_id=promotion_id))


@bp.post("/promotions/<promotion_id>/depublier")
@login_required(*ROLES)
def unpublish_promotion(promotion_id: str) -> ResponseReturnValue:
    """Unpublish: it leaves every kiosk and every price at once."""
    _load(promotion_id)
    row = promo.unpublish(get_db(), promotion_id, actor_label())
    audit("promotion.unpublished", {"promotion_id": promotion_id, "revision": row["revision"]})
    flash("Promotion dépubliée : elle disparaît des bornes et des prix.")
    return redirect(url_for("hq.promotion", promotion_id=promotion_id))


def preview_banner(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """The banner as a kiosk shows it (same fields as app.kiosk_promotions)."""
    image_url = None
    if row["image_hash"]:
        image_url = url_for(
            "hq.promotion_image", promotion_id=row["id"], name="banner", h=row["image_hash"]
        )
    return {
        "id": row["id"],
        "title": row[f"title_{lang}"] or row["title_fr"],
        "text": row[f"text_{lang}"] or row["text_fr"],
        "badge": badge(
            {
                "kind": row["kind"],
                "value": row["value"],
                "nth": row["nth"],
                "min_qty": row["min_qty"],
            },
            lang,
        ),
        "image_url": image_url,
    }


@bp.get("/promotions/<promotion_id>/apercu")
@login_required(*ROLES)
def promotion_preview(promotion_id: str) -> ResponseReturnValue:
    """The kiosk's attract screen with this promotion, in French or English."""
    row = _load(promotion_id)
    lang = "en" if request.args.get("lang") == "en" else "fr"
    return render_template(
        "hq/promotion_preview.html", promotion=row, promo=preview_banner(row, lang), lang=lang
    )


@bp.get("/promotions/<promotion_id>/image/<name>")
@login_required(*ROLES)
def promotion_image(promotion_id: str, name: str) -> ResponseReturnValue:
    """The promotion's cleaned image in one kiosk format, for the console."""
    row = _load(promotion_id)
    path = promo.image_file(current_app.config["DATA_DIR"], row, name)
    if path is None:
        abort(404)
    response: Response = send_file(path, mimetype=promo_images.MIME)
    return response
