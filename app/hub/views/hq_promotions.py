"""The console's promotions (``/hq/promotions``): list, form, kiosk preview, publish.

Marketing (and admins) make promotions here; app/hub/domain/promotions.py holds the rules.
Every action is written to the audit log. The preview renders the kiosk's own banner
partial with the kiosk's stylesheet, so it looks as it will on the attract screen.
The form itself (its words, reading it, drawing it) is in hq_promotion_form.py.
"""

from __future__ import annotations

from typing import Any

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

from app.core import clock
from app.core.offers import badge
from app.hub.domain import console_lists, promo_images
from app.hub.domain import promotions as promo
from app.hub.domain.listing import page_number
from app.hub.domain.promotion_validation import PromotionError
from app.hub.storage import get_db
from app.hub.views.hq import audit, blueprint, current_user, login_required
from app.hub.views.hq_promotion_form import PHASES, form_data, render_form

ROLES = ("marketing",)

bp = blueprint("hq_promotions", __name__)


def actor_label() -> str:
    """Who acts, as written in the promotion's history."""
    user = current_user()
    return user["email"] if user else ""


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


@bp.get("/promotions")
@login_required(*ROLES)
def promotions() -> ResponseReturnValue:
    """The promotions with their state (draft, scheduled, live, ended, unpublished), last
    changed first, 50 a page (``?page=``), one state at a time (``?etat=``)."""
    wanted = request.args.get("etat") or None
    if wanted not in PHASES:
        wanted = None
    db = get_db()
    now = clock.utcnow()
    page = console_lists.promotions_page(db, page_number(request.args.get("page")), now, wanted)
    for r in page.items:
        r["badge"] = badge(
            {"kind": r["kind"], "value": r["value"], "nth": r["nth"], "min_qty": r["min_qty"]}, "fr"
        )
    counts = console_lists.promotion_counts(db, now)
    return render_template(
        "hq/promotions.html",
        promotions=page.items,
        page=page,
        phases=PHASES,
        wanted=wanted,
        counts=counts,
        total=sum(counts.values()),
        filters={"etat": wanted} if wanted else {},
    )


@bp.get("/promotions/nouvelle")
@login_required(*ROLES)
def new_promotion() -> ResponseReturnValue:
    """The empty form."""
    return render_form(None)


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
            return render_form(None, form=request.form, errors={"image": exc.message}, status=422)
    try:
        row = promo.create(db, form_data(request.form), actor_label())
    except PromotionError as exc:
        return render_form(None, form=request.form, errors=exc.fields, status=422)
    if upload is not None:
        row = promo.set_image(db, current_app.config["DATA_DIR"], row["id"], upload, actor_label())
    audit("promotion.created", {"promotion_id": row["id"], "title": row["title_fr"]})
    flash("Promotion enregistrée comme brouillon. Vérifiez l'aperçu, puis publiez-la.")
    return redirect(url_for("hq_promotions.promotion", promotion_id=row["id"]))


@bp.get("/promotions/<promotion_id>")
@login_required(*ROLES)
def promotion(promotion_id: str) -> ResponseReturnValue:
    """One promotion: its form, state, publish buttons and history."""
    return render_form(_load(promotion_id))


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
        return render_form(row, form=request.form, errors={"image": exc.message}, status=422)
    try:
        updated = promo.update(db, promotion_id, form_data(request.form), actor_label())
    except PromotionError as exc:
        return render_form(row, form=request.form, errors=exc.fields, status=422)
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
    return redirect(url_for("hq_promotions.promotion", promotion_id=promotion_id))


@bp.post("/promotions/<promotion_id>/publier")
@login_required(*ROLES)
def publish_promotion(promotion_id: str) -> ResponseReturnValue:
    """Publish: every targeted store shows it within seconds (or when it starts)."""
    _load(promotion_id)
    try:
        row = promo.publish(get_db(), promotion_id, actor_label())
    except PromotionError as exc:
        flash(exc.message)
        return redirect(url_for("hq_promotions.promotion", promotion_id=promotion_id))
    audit("promotion.published", {"promotion_id": promotion_id, "revision": row["revision"]})
    flash("Promotion publiée : les bornes des magasins concernés l'affichent dans un instant.")
    return redirect(url_for("hq_promotions.promotion", promotion_id=promotion_id))


@bp.post("/promotions/<promotion_id>/depublier")
@login_required(*ROLES)
def unpublish_promotion(promotion_id: str) -> ResponseReturnValue:
    """Unpublish: it leaves every kiosk and every price at once."""
    _load(promotion_id)
    row = promo.unpublish(get_db(), promotion_id, actor_label())
    audit("promotion.unpublished", {"promotion_id": promotion_id, "revision": row["revision"]})
    flash("Promotion dépubliée : elle disparaît des bornes et des prix.")
    return redirect(url_for("hq_promotions.promotion", promotion_id=promotion_id))


def preview_banner(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """The banner as a kiosk shows it.

    Same fields as a banner of the store's ``app.store.views.promotions.slots_context``
    (named here, never imported: the hub imports no store code).
    """
    image_url = None
    if row["image_hash"]:
        image_url = url_for(
            "hq_promotions.promotion_image",
            promotion_id=row["id"],
            name="banner",
            h=row["image_hash"],
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
