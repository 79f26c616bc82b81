"""The shopper's cart at the kiosk (``/panier``): scan an online cart, reserve what is
here, order what is not, send the cart to a phone."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from app.core import cart_codec, clock
from app.core import db as dbmod
from app.core.cart_codec import CartError
from app.core.qrphoto import decode_upload
from app.store.domain import (
    account_actions,
    carts,
    order_requests,
    promotions,
    reservations,
    stock,
    tickets,
)
from app.store.storage import get_db
from app.store.sync.feed import CATALOG_VERSION
from app.store.views.kiosk_card import SESSION_KEY as CARD_KEY
from app.store.views.scanned_cart import (
    apply_choice,
    merge_page,
    open_scanned,
    problem,
    staff_tablet,
)
from app.store.views.staff_common import device_name
from app.store.views.store_info import store_name
from app.web.i18n import current_lang, format_clock

bp = Blueprint("cart", __name__, url_prefix="/panier")
HOLD = reservations.HOLD_MINUTES_DEFAULT


@bp.context_processor
def _form_ids() -> dict[str, Any]:
    # Each rendering of a reserve/order form carries its own id (see _request_id).
    return {"new_request_id": lambda: str(uuid.uuid4())}


def _lines() -> list[list]:
    """The session cart's lines ``[[sku, qty, price then]]``."""
    return [list(line) for line in session.get("cart", {}).get("lines", [])]


def _save(lines: list[list], **extra: Any) -> None:
    cart = dict(session.get("cart", {}))
    cart.update(extra)
    cart["lines"] = lines
    session["cart"] = cart


def _view() -> dict[str, Any]:
    lines = [tuple(line) for line in _lines()]
    return carts.cart_view(get_db(), lines, current_lang())


def _version() -> str:
    """ETag of the cart panel: the cart, the stock and the catalog it is computed from."""
    db = get_db()
    raw = repr(
        (
            _lines(),
            stock.stock_version(db),
            dbmod.get_meta(db, CATALOG_VERSION, "0"),
            promotions.version(db, clock.utcnow()),
            current_lang(),
        )
    )
    return hashlib.sha1(raw.encode()).hexdigest()[:16]  # noqa: S324 (a cache key)


@bp.get("")
def show() -> Any:
    """The cart: each line here, elsewhere or online only; today's prices; what changed."""
    return render_template(
        "kiosk/cart.html",
        view=_view(),
        cart=session.get("cart", {}),
        etag=_version(),
        already=request.args.get("deja") == "1",
        updated=request.args.get("maj") == "1",
        left_out=request.args.get("reste", 0, type=int),
        max_lines=carts.MAX_KIOSK_LINES,
    )


@bp.get("/lignes")
def lines_panel() -> Any:
    """The cart panel alone, polled so availability stays live (304 when unchanged)."""
    etag = _version()
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    resp = Response(render_template("kiosk/_cart_lines.html", view=_view(), etag=etag))
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.post("/ajouter")
def add() -> Any:
    """Add the chosen size and colour to the kiosk cart."""
    sku = request.form.get("sku", "")[:40]
    price = carts.base_price(get_db(), sku)
    if price is None:
        abort(400)
    try:
        _save(carts.add_line(_lines(), sku, 1, price))
    except CartError:
        return problem("full")
    ref = request.form.get("ref", "")[:40]
    target = url_for("kiosk.product", ref=ref, sku=sku, added=1) if ref else url_for("cart.show")
    return redirect(target)


@bp.post("/quantite")
def set_qty() -> Any:
    """Change a line's quantity (0 removes it)."""
    try:
        qty = int(request.form.get("qty", ""))
    except ValueError:
        abort(400)
    _save(carts.set_qty(_lines(), request.form.get("sku", "")[:40], qty))
    return redirect(url_for("cart.show"))


@bp.post("/vider")
def clear() -> Any:
    """Empty the cart."""
    session.pop("cart", None)
    return redirect(url_for("cart.show"))


@bp.get("/scanner")
def scanner() -> str:
    """How to bring a cart in: the scanner or the camera; a photo of the code too on a
    staff tablet (a shopper's kiosk offers no file picker)."""
    return render_template("kiosk/cart_scan.html", staff_tablet=staff_tablet())


@bp.get("/fusion")
def merge() -> Any:
    """A phone cart scanned while this cart holds items: merge (the default) or replace?"""
    return merge_page()


@bp.post("/fusion")
def merge_choice() -> Any:
    """The shopper's choice: ``merge``, ``replace`` (an explicit tap) or ``keep``."""
    return apply_choice(request.form.get("choice", ""), request.form.get("key", ""))


@bp.post("/photo")
def photo() -> Any:
    """A photo of the cart's QR code, decoded on the server: on a staff tablet only (a
    shopper's kiosk offers no file picker, and takes no upload either)."""
    if not staff_tablet():
        abort(403)
    text = decode_upload(request.files.get("photo"))
    if not text:
        return problem("no_qr")
    return open_scanned(text)


# --- Reserve --------------------------------------------------------------------------


@bp.post("/reserver")
def reserve() -> Any:
    """Hold the lines available here for the shopper, for the store's hold time."""
    view = _view()
    if not view["reservable"]:
        return problem("nothing_available", 409)
    try:
        made = reservations.create(
            get_db(),
            view["reservable"],
            hold_minutes=int(current_app.config.get("RESERVATION_HOLD_MINUTES", HOLD)),
            cart_id=session.get("cart", {}).get("id"),
            device=device_name(),
            request_id=_request_id(),
            card_id=session.get(CARD_KEY),
        )
    except reservations.ReservationError as exc:
        if exc.code == "nothing_available":
            return problem("nothing_available", 409)
        raise
    if made.get("repeated"):  # a double tap: the first tap already did it all
        return redirect(url_for("cart.reservation", reservation_id=made["id"]))
    held = {line["sku"]: line["qty"] for line in made["lines"]}
    remaining = [[s, q - held.get(s, 0), p] for s, q, p in _lines() if q - held.get(s, 0) > 0]
    _save(remaining)
    session["reservations"] = [*session.get("reservations", [])[-4:], made["id"]]
    return redirect(url_for("cart.reservation", reservation_id=made["id"]))


def _request_id() -> str | None:
    """The UUID the form was rendered with: a second submission of the same form (a
    double tap before the first answer) is then recognised and done once."""
    raw = request.form.get("request_id", "")
    try:
        return str(uuid.UUID(raw)) if raw else None
    except ValueError:
        abort(400)


def _my_reservation(reservation_id: str) -> dict[str, Any]:
    """A reservation made in this shopper's session (nobody else's), or 404."""
    if reservation_id not in session.get("reservations", []):
        abort(404)
    found = reservations.get(get_db(), reservation_id)
    if found is None:
        abort(404)
    return found


@bp.get("/reservation/<reservation_id>")
def reservation(reservation_id: str) -> str:
    """The reservation ticket: its code and QR, what is held, until when."""
    found = _my_reservation(reservation_id)
    priced = carts.price_lines(get_db(), [(line["sku"], line["qty"]) for line in found["lines"]])
    return render_template(
        "kiosk/cart_reserved.html",
        reservation=found,
        until=format_clock(clock.parse_iso(found["expires_at"])),
        view=_view(),
        priced={line.sku: line for line in priced.lines},
        total=priced.total_cents,
    )


@bp.get("/reservation/<reservation_id>/qr.png")
def reservation_qr(reservation_id: str) -> Response:
    """The ticket's QR code alone, for the screen."""
    found = _my_reservation(reservation_id)
    return _png(tickets.render_qr(found["token"], box_size=8))


@bp.get("/reservation/<reservation_id>/ticket.<fmt>")
def reservation_ticket(reservation_id: str, fmt: str) -> Response:
    """The printable reservation ticket (80 mm), as PNG or PDF."""
    if fmt not in ("png", "pdf"):
        abort(404)
    found = _my_reservation(reservation_id)
    image = tickets.reservation_ticket(
        found,
        found["token"],
        store_name(),
        current_lang(),
        timezone=current_app.config["STORE_TIMEZONE"],
    )
    if fmt == "png":
        return _png(image)
    return Response(tickets.to_pdf(image), mimetype="application/pdf")


def _png(image: Any) -> Response:
    resp = Response(tickets.to_png(image), mimetype="image/png")
    resp.headers["Cache-Control"] = "no-store"  # a shopper's ticket: not for the next one
    return resp


# --- Send to my phone -------------------------------------------------------------------


def phone_url() -> str | None:
    """The web-shop address that opens this cart on a phone, or None without a shop."""
    base = current_app.config.get("SHOP_URL") or current_app.config.get("HUB_URL")
    today = account_actions.today_lines(get_db(), _lines()) if base else []
    if not today:
        return None
    encoded = cart_codec.encode_lines(today)
    return f"{base.rstrip('/')}/shop/panier/importer?l={quote(encoded, safe='*,')}"


def _save_to_account() -> bool:
    """A recognised shopper's cart sent to the phone is kept in their account too (the
    card id alone is queued: app/store/domain/account_actions.py); once per cart content
    per visit, so reloading the page queues nothing more. Whether it is in the account."""
    if account_actions.card_or_none(session.get(CARD_KEY)) is None:
        return False
    today = account_actions.today_lines(get_db(), _lines())
    digest = hashlib.sha256(cart_codec.encode_lines(today).encode()).hexdigest()[:16]
    if digest in session.get("sent_carts", []):
        return True
    if account_actions.cart_sent(get_db(), session.get(CARD_KEY), today) is None:
        return False
    session["sent_carts"] = [*session.get("sent_carts", [])[-4:], digest]
    return True


@bp.get("/telephone")
def phone() -> Any:
    """The cart as a QR code that opens the same cart in the web shop on a phone; a
    recognised shopper finds it in « Mon compte » as well."""
    url = phone_url()
    if url is None:
        return redirect(url_for("cart.show"))
    return render_template("kiosk/cart_phone.html", url=url, in_account=_save_to_account())


@bp.get("/telephone.png")
def phone_qr() -> Response:
    """The send-to-phone QR code."""
    url = phone_url()
    if url is None:
        abort(404)
    return _png(tickets.render_qr(url, box_size=8))


# --- Order what is not here -------------------------------------------------------------


@bp.route("/commander", methods=["GET", "POST"])
def order() -> Any:
    """Order the lines not available here: pickup in this store or home delivery."""
    view = _view()
    if not view["to_order"]:
        return redirect(url_for("cart.show"))
    priced = carts.price_lines(get_db(), view["to_order"])
    form = request.form
    error = None
    if request.method == "POST":
        address = {k: form.get(k, "")[:200] for k in ("line1", "postcode", "city")}
        try:
            customer = order_requests.check_customer(
                form.get("fulfilment", ""),
                form.get("name", "")[:200],
                form.get("email", "")[:300],
                address,
            )
        except ValueError as exc:
            error = str(exc)
        else:
            request_id = order_requests.queue_order_request(
                get_db(),
                view["to_order"],
                customer,
                device=device_name(),
                request_id=_request_id(),
                cart_id=session.get("cart", {}).get("id"),
                shown=priced,
                card_id=session.get(CARD_KEY),
            )
            if request_id in session.get("order_requests", []):
                return redirect(url_for("cart.ordered", request_id=request_id))
            ordered = dict(view["to_order"])
            remaining = [
                [s, q - ordered.get(s, 0), p] for s, q, p in _lines() if q - ordered.get(s, 0) > 0
            ]
            _save(remaining)
            session["order_requests"] = [*session.get("order_requests", [])[-4:], request_id]
            return redirect(url_for("cart.ordered", request_id=request_id))
    page = render_template(
        "kiosk/cart_order.html",
        view=view,
        error=error,
        form=form,
        limits=order_requests.FORM_LIMITS,
        priced={line.sku: line for line in priced.lines},
        total=priced.total_cents,
    )
    return page, (400 if error else 200)


@bp.get("/commande/<request_id>")
def ordered(request_id: str) -> str:
    """What became of an order request: queued (offline), or the hub's order number."""
    if request_id not in session.get("order_requests", []):
        abort(404)
    state = order_requests.order_request_state(get_db(), request_id)
    if state is None:
        abort(404)
    recognised = account_actions.card_or_none(session.get(CARD_KEY)) is not None
    return render_template(
        "kiosk/cart_ordered.html", state=state, request_id=request_id, in_account=recognised
    )
