"""Head office's targeted offers (issue 14): an offer shown at the kiosk to recognised
shoppers who consented and are in its segment (bought in a category within the last N
months; app/hub/domain/offers.py). Marketing and admin, as the promotions; CSRF as every
console form; each creation and withdrawal journaled in hq_audit. The list says how many
customers who consented each offer reaches today. The console is in French only, as the
rest of it. Offers reach the stores with each customer's card, at the next daily
``kiosk hub personal refresh`` (or sooner when the customer's payload is sent again)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.hub.domain import offers
from app.hub.storage import get_db
from app.hub.views.hq import audit, blueprint, login_required

bp = blueprint("hq_offers", __name__)

ROLES = ("marketing",)
ERRORS = {
    "title": f"Titre : de 1 à {offers.MAX_TITLE} caractères, sans caractère de contrôle.",
    "text": f"Texte : de 1 à {offers.MAX_TEXT} caractères, sans caractère de contrôle.",
    "category": "Catégorie : choisissez une catégorie de la liste.",
    "months": f"Période d'achat : un nombre entier de mois, de 1 à {offers.MAX_MONTHS}.",
    "starts": "Début : une date (AAAA-MM-JJ), au plus tard dans deux ans.",
    "ends": "Fin : une date (AAAA-MM-JJ), au plus tôt aujourd'hui et après le début, "
    "ou vide pour une offre sans fin.",
}
STATES = {
    "planned": "Programmée",
    "running": "En cours",
    "ended": "Terminée",
    "withdrawn": "Retirée",
}


def _page(form: dict[str, str], error: str | None = None, field: str | None = None) -> str:
    db = get_db()
    return render_template(
        "hq/offers.html",
        offers=offers.listing(db),
        categories=offers.categories(db),
        form=form,
        error=error,
        field=field,
        states=STATES,
    )


@bp.get("/offres")
@login_required(*ROLES)
def offers_page() -> ResponseReturnValue:
    """The offers, newest first, with their reach; the form to create one."""
    return _page({"months": "6"})


@bp.post("/offres")
@login_required(*ROLES)
def create_offer() -> ResponseReturnValue:
    """Create an offer; a refused field answers 422 with the form as typed."""
    form: dict[str, Any] = {k: str(request.form.get(k, ""))[:400] for k in offers.FIELDS}
    db = get_db()
    try:
        offer = offers.parse(db, form)
    except offers.OfferError as exc:
        return _page(form, ERRORS[exc.field], exc.field), 422
    offer_id = offers.create(db, offer)
    audit(
        "offer.created",
        {
            "offer_id": offer_id,
            "category": offer["category"],
            "months": offer["months"],
            "starts_at": offer["starts_at"],
            "ends_at": offer["ends_at"],
        },
    )
    flash("Offre créée : elle atteint les bornes avec la prochaine mise à jour quotidienne.")
    return redirect(url_for("hq_offers.offers_page"), 303)


@bp.post("/offres/<offer_id>/retirer")
@login_required(*ROLES)
def end_offer(offer_id: str) -> ResponseReturnValue:
    """Withdraw an offer now (journaled); an unknown or already withdrawn one is a 404."""
    if not offers.end(get_db(), offer_id):
        return _page({"months": "6"}, "Cette offre n'existe pas ou est déjà retirée."), 404
    audit("offer.ended", {"offer_id": offer_id[:40]})
    flash("Offre retirée.")
    return redirect(url_for("hq_offers.offers_page"), 303)
