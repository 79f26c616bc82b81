"""Head office answers a customer's request about their data (issue 14, RGPD arts. 15,
17 and 20) received by post or e-mail: the customer found by e-mail address (through
the blind index: the console never lists customers), then their data exported as JSON
(app/hub/domain/customer_export.py) or erased (app/hub/domain/erasure.py, as the web
shop's « Supprimer mon compte »: orders kept anonymised, every store told to forget).

Admins only (the role that manages the console's people; marketing and operations have
no business with one person's file). Every step is journaled in ``hq_audit`` with ids
only: the address searched is never written down, in the journal or in an address bar
(the search is a POST). The console is in French only, as the rest of it.
"""

from __future__ import annotations

import json

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.hub.domain import customer_export, customers, erasure
from app.hub.domain.pii import KeyRing
from app.hub.storage import get_db
from app.hub.views import account
from app.hub.views.hq import audit, blueprint, login_required

bp = blueprint("hq_customers", __name__)

ROLE = "admin"


def _ring() -> KeyRing:
    return account.pii_ring()  # the web shop's: one way to open the key ring


def _page(status: int = 200, **context: object) -> ResponseReturnValue:
    html = render_template(
        "hq/customers.html",
        **{"email": "", "error": None, "found": None, "summary": None, **context},
    )
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _summary(customer_id: str) -> dict[str, object] | None:
    held = customer_export.export(get_db(), _ring(), customer_id)
    if held is None:
        return None
    return {
        "id": customer_id,
        "created_at": held["account"]["created_at"],
        "last_contact_at": held["account"]["last_contact_at"],
        "orders": len(held["orders"]),
        "deliveries": len(held["home_deliveries"]),
        "cards": len(held["cards"]),
        "messages": len(held["messages"]),
    }


@bp.get("/clients")
@login_required(ROLE)
def customers_page() -> ResponseReturnValue:
    """The search form: one customer by their e-mail address."""
    return _page()


@bp.post("/clients")
@login_required(ROLE)
def find_customer() -> ResponseReturnValue:
    """Find the customer with this address (blind index); journaled by id only."""
    raw = request.form.get("email", "")[:300]
    try:
        email = customers.clean_email(raw)
    except customers.CustomerError:
        return _page(400, email=raw[:254], error="Donnez une adresse e-mail valide.")
    row = customers.find_by_email(get_db(), _ring(), email)
    audit("customer.looked_up", {"customer_id": row["id"] if row else None})
    if row is None:
        return _page(404, email=email, error="Aucun compte client avec cette adresse.")
    return _page(email=email, found=row["id"], summary=_summary(row["id"]))


def _customer_or_404(customer_id: str) -> bool:
    return len(customer_id) <= 64 and customers.get_customer(get_db(), customer_id) is not None


@bp.post("/clients/<customer_id>/export")
@login_required(ROLE)
def export_customer(customer_id: str) -> ResponseReturnValue:
    """The customer's data as a JSON file, to send them; journaled."""
    if not _customer_or_404(customer_id):
        return _page(404, error="Ce compte client n'existe plus.")
    held = customer_export.export(get_db(), _ring(), customer_id)
    audit("customer.exported", {"customer_id": customer_id})
    body = json.dumps(held, ensure_ascii=False, indent=2, sort_keys=True)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="client-{customer_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/clients/<customer_id>/effacer")
@login_required(ROLE)
def erase_customer(customer_id: str) -> ResponseReturnValue:
    """Erase the customer (a confirmation box ticked); journaled with counts only."""
    if not _customer_or_404(customer_id):
        return _page(404, error="Ce compte client n'existe plus.")
    if request.form.get("confirm") != "yes":
        return _page(
            400,
            found=customer_id,
            summary=_summary(customer_id),
            error="Cochez la case pour confirmer l'effacement\u00a0: il est définitif.",
        )
    done = erasure.erase_customer(get_db(), _ring(), customer_id) or {}
    audit("customer.erased", {"customer_id": customer_id, **done})
    flash("Compte client effacé\u00a0; ses commandes restent, anonymisées.")
    if done.get("email_unreadable"):
        flash(
            "Attention\u00a0: son adresse e-mail n'a pas pu être déchiffrée (aucune clé du "
            "fichier des données personnelles ne l'ouvre). Ses commandes sans compte et "
            "livraisons chiffrées ont été retrouvées et anonymisées, mais celles "
            "enregistrées en clair n'ont pas pu être recherchées\u00a0: l'effacement "
            "peut être incomplet. Restaurez la clé, puis vérifiez."
        )
    return redirect(url_for("hq_customers.customers_page"), 303)
