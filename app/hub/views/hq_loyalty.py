"""Head office's loyalty rule (issue 14): points per euro collected, and how many
points make how much store credit (app/hub/domain/loyalty.py). Marketing and admin
only; every change is journaled in hq_audit with the rule before and after. The
console is in French only, as the rest of it."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.hub.domain import loyalty
from app.hub.storage import get_db
from app.hub.views.hq import audit, blueprint, login_required

bp = blueprint("hq_loyalty", __name__)

ERRORS = {
    "points_per_euro": f"Points par euro : un nombre entier de 0 à {loyalty.MAX_POINTS_PER_EURO}.",
    "block_points": f"Points d'un avoir : un nombre entier de 1 à {loyalty.MAX_BLOCK_POINTS}.",
    "block_euros": "Valeur de l'avoir : un montant en euros, 0,01 à "
    f"{loyalty.MAX_BLOCK_CENTS // 100} €.",
}


def _euros(cents: int) -> str:
    whole, frac = divmod(int(cents), 100)
    return f"{whole},{frac:02d}"


@bp.get("/fidelite")
@login_required("marketing")
def loyalty_rules() -> ResponseReturnValue:
    """The rule in force, in a small form."""
    rule = loyalty.rules(get_db())
    form = {
        "points_per_euro": str(rule["points_per_euro"]),
        "block_points": str(rule["block_points"]),
        "block_euros": _euros(rule["block_cents"]),
    }
    return render_template("hq/loyalty.html", form=form, error=None, rule=rule)


@bp.post("/fidelite")
@login_required("marketing")
def save_loyalty_rules() -> ResponseReturnValue:
    """Change the rule; journaled with before and after."""
    db = get_db()
    form = {k: str(request.form.get(k, ""))[:20] for k in ERRORS}
    try:
        new = loyalty.parse_rules(form)
    except loyalty.LoyaltyError as exc:
        html = render_template(
            "hq/loyalty.html", form=form, error=ERRORS[exc.field], rule=loyalty.rules(db)
        )
        return html, 422
    before = loyalty.set_rules(db, new)
    if before != new:
        audit("loyalty.rules_changed", {"before": before, "after": new})
    flash("Règle de fidélité enregistrée.")
    return redirect(url_for("hq_loyalty.loyalty_rules"))
