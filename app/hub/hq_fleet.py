"""The fleet dashboard (``/hq/flotte``): every store's health at a glance."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from .hq import bp, login_required


@bp.get("/flotte")
@login_required("operations")
def fleet() -> ResponseReturnValue:
    """Every store: online or not, outbox, parked transactions, health, charts."""
    return "fleet"
