"""What the click-and-collect screens share (the counter, returns, the staff scan): the
sentences for a refusal, an order or 404, a line's name in the shown language, a
customer check kept in the session, and what a scanned product code names."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import abort, render_template, session
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

from app.core import catalog, clock, ean
from app.store.domain.orders import queries
from app.store.domain.orders.status import OrderError
from app.store.storage import get_db
from app.web.i18n import (
    current_lang,
    format_clock,
    local_when,
    store_timezone,
    store_timezone_name,
)

VERIFIED_S = 600  # a QR or code check is good for one hand-over within 10 minutes


def messages() -> dict[str, str]:
    """Every refusal of the counter screens, by its code, in plain words."""
    return {
        "unknown_order": _("No order found. Check the number, or scan the QR code again."),
        "unknown_item": _("This barcode is not a product we know. Scan it again."),
        "wrong_item": _("Wrong product: this item is not in the order. Put it back."),
        "too_many": _("One too many: every unit of this product is already in the bag."),
        "invalid_state": _("This order cannot do that in its current state."),
        "incomplete": _("Scan every item or mark the missing ones short first."),
        "nothing_picked": _("Nothing is picked: the order cannot be ready empty."),
        "shelf_slot": _("Give the shelf slot where the bag goes (up to 20 characters)."),
        "line_complete": _("This line is complete."),
        "unknown_line": _("This line is not in the order."),
        "no_hub_key": _("This store has not received the hub's key yet: use the pickup code."),
        "malformed": _("This is not a pickup QR code. Ask for the order number and code."),
        "bad_signature": _("Forged or damaged QR code: refused. Ask for the pickup code."),
        "unknown_key": _("QR code signed with an unknown key: ask for the pickup code."),
        "wrong_kind": _("This QR code is not a pickup code."),
        "expired": _("This QR code has expired. Ask for the order number and code."),
        "not_yet_valid": _("This QR code is not valid yet: check the tablet's clock."),
        "revoked": _("This QR code was cancelled."),
        "wrong_store": _("This QR code is for another store: the order is not collected here."),
        "code_format": _("A pickup code is exactly 6 digits."),
        "code_locked": _("Too many wrong codes: this order is locked. A manager must unlock it."),
        "manager_required": _("Only a manager can do this."),
        "already_collected": _("Already handed over: nothing is left to give."),
        "qty_out_of_range": _("Quantity out of range: more than is left."),
        "invalid_qty": _("Quantities are whole numbers from 0."),
        "nothing_chosen": _("Choose at least one item."),
        "proxy_name": _("Write the name of the person collecting (up to 80 characters)."),
        "override_reason": _("Say why the hand-over is made without a check."),
        "details_mismatch": _("The first name does not match this order."),
        "reason": _("Give a reason (up to 500 characters)."),
        "refund": _("Choose how the customer is refunded."),
        "condition": _("Choose the condition of each item."),
        "not_verified": _("Check the customer first: scan the QR code or type the pickup code."),
        "no_qr": _("No QR code found in the photo. Try again closer, or type the code."),
        "empty_code": _("Nothing was scanned."),
        "misread": _("This barcode was misread (its check digit is wrong). Scan it again."),
        "unknown_code": _("Nothing found for this code: not an order, a product or a ticket."),
    }


# Pickup QR refusals that mean the code itself is no good (forged, damaged, expired…):
# shown under "Invalid QR code". An unknown order or a missing hub key is not the
# customer's QR's fault and keeps its own sentence.
QR_INVALID = {
    "malformed",
    "bad_signature",
    "unknown_key",
    "wrong_kind",
    "expired",
    "not_yet_valid",
    "revoked",
    "wrong_store",
}


def message(exc: OrderError) -> str:
    """What a refused order action says to the staff member."""
    text = messages().get(exc.code, _("Refused: %(code)s", code=exc.code))
    if exc.code == "wrong_code":
        return ngettext(
            "Wrong pickup code. %(num)d attempt left before the order locks.",
            "Wrong pickup code. %(num)d attempts left before the order locks.",
            exc.extra.get("attempts_left", 0),
        )
    return text


def qr_title(exc: OrderError) -> str | None:
    """ "Invalid QR code" over a refusal that is the QR code's own fault, else None."""
    return _("Invalid QR code") if exc.code in QR_INVALID else None


def qr_refused(exc: OrderError, template: str = "orders/desk.html", **extra: Any) -> Any:
    """A refused pickup QR: a 400 page, in plain words, with the staff navigation."""
    return render_template(template, error=message(exc), error_title=qr_title(exc), **extra), 400


def order_or_404(order_id: str) -> dict[str, Any]:
    order = queries.get_order(get_db(), order_id)
    if order is None:
        abort(404)
    return order


def line_name(line: dict[str, Any]) -> str:
    """An order line's product name in the shown language (French when no English)."""
    return line["name_en"] if current_lang() == "en" and line["name_en"] else line["name_fr"]


def line_colour(line: dict[str, Any]) -> str:
    """An order line's colour in the shown language (French when no English)."""
    return line["colour_en"] if current_lang() == "en" and line["colour_en"] else line["colour_fr"]


def receipt_lines(order: dict[str, Any], record: dict[str, Any]) -> list[dict[str, Any]]:
    """A recorded hand-over's lines as its receipt prints them, in the shown language."""
    by_line = {ln["line"]: ln for ln in order["lines"]}
    return [
        {
            "name": line_name(by_line[x["line"]]),
            "size": by_line[x["line"]]["size"],
            "colour": line_colour(by_line[x["line"]]),
            "qty": x["qty"],
            "qty_ordered": by_line[x["line"]]["qty"],
        }
        for x in record["lines"]
    ]


def parse_qty(value: str | None) -> int | None:
    """A quantity typed in a form (empty is 0), or None when it is not a whole number."""
    try:
        return int(value or "0")
    except ValueError:
        return None


# --- Times: a clock time, when an order was promised, how late it is ------------------


def clock_text(text: str | None) -> str:
    """``14:02`` for an ISO instant (``fmt_clock`` in templates); cached, since Babel
    takes ~1 ms a call and a list page shows fifty of them."""
    if not text:
        return ""
    return _clock_cached(text, str(get_locale() or "fr"), store_timezone_name())


@lru_cache(maxsize=65536)
def _clock_cached(text: str, locale: str, tz: str) -> str:
    return format_clock(clock.parse_iso(text), locale)


def lateness(minutes: int, lang: str | None = None) -> str:
    """How late an order is, as a person says it: ``en retard de 25 min``, ``de 3 h``,
    ``de 2 j`` (``25 min late``, ``3 hours late``, ``2 days late``), to the nearest hour
    or day (1 day 19 hours late is "2 days"); empty when it is not late. ``lang``: the
    request's language, when the caller has it already (a list asks once, not per row)."""
    if minutes <= 0:
        return ""
    if minutes < 60:
        unit, n = "min", minutes
    elif (hours := (minutes + 30) // 60) < 24:
        unit, n = "hour", hours
    else:
        unit, n = "day", (minutes + 12 * 60) // (24 * 60)
    return _lateness_text(unit, n, lang or _lang())


def _lang() -> str:
    return str(get_locale() or "fr")


# Cached by language: Flask-Babel's gettext walks the request context a dozen times a
# call, and a list page asked it twice a row (about a fifth of the "to prepare" list).
@lru_cache(maxsize=4096)
def _lateness_text(unit: str, n: int, lang: str) -> str:
    if unit == "min":
        return ngettext("%(num)d min late", "%(num)d min late", n)
    if unit == "hour":
        return ngettext("%(num)d hour late", "%(num)d hours late", n)
    return ngettext("%(num)d day late", "%(num)d days late", n)


_PROMISED: dict[tuple[str, str, str, str], str] = {}
_PROMISED_MAX = 65536


def promised_when(text: str | None, now: datetime, lang: str | None = None) -> str:
    """When an order was promised, in the store's time zone and the shown language:
    ``promise pour 14:02`` today, ``promise le jeu. 3 déc. à 14:02`` another day.
    Remembered per (moment, local day of ``now``, language, zone): what it says changes
    only with these."""
    if not text:
        return ""
    lang = lang or _lang()
    zone = store_timezone_name()
    key = (text, now.astimezone(store_timezone()).date().isoformat(), lang, zone)
    said = _PROMISED.get(key)
    if said is None:
        when = local_when(text, now, lang)
        if when is None:
            said = ""
        elif when.today:
            said = _("promised for %(time)s", time=when.clock)
        else:
            said = _("promised %(day)s at %(time)s", day=when.day, time=when.clock)
        if len(_PROMISED) >= _PROMISED_MAX:
            _PROMISED.clear()
        _PROMISED[key] = said
    return said


def row_times(rows: list[dict[str, Any]], now: datetime) -> None:
    """A list's rows get ``promised_text`` and ``late_text``, the language asked once."""
    lang = _lang()
    for o in rows:
        o["promised_text"] = promised_when(o["promised_at"], now, lang)
        o["late_text"] = lateness(o["late_minutes"], lang)


# --- A customer check kept in the session -------------------------------------------


def remember_verified(order_id: str, method: str) -> None:
    """The customer of this order was checked (``qr`` or ``code``) on this tablet."""
    session["verified"] = {"id": order_id, "method": method, "at": clock.now_s()}


def verified(order_id: str) -> str | None:
    """How the customer of this order was checked, if within ``VERIFIED_S``; else None."""
    v = session.get("verified") or {}
    if v.get("id") == order_id and clock.now_s() - v.get("at", 0) <= VERIFIED_S:
        return v.get("method")
    return None


# --- A scanned product code -----------------------------------------------------------


def misread(code: str) -> bool:
    """A barcode whose check digit is wrong: the scanner misread it."""
    return ean.looks_like_barcode(code) and not ean.has_valid_check_digit(code)


def scanned_variant(code: str) -> dict[str, Any] | None:
    """The variant a product barcode or SKU names (a barcode needs a right check digit)."""
    if len(code) > 64 or misread(code):
        return None
    return catalog.find_variant(get_db(), code)
