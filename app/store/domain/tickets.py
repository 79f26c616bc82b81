"""Printable tickets (hand-over receipt, bag label, return receipt, reservation ticket) as
images, PDF, ESC/POS.

Tickets are drawn with Pillow at the printable width of an 80 mm thermal roll: 576 dots
at 203 dpi (72 mm of the 80 mm paper), from the blocks of
app/store/domain/ticket_drawing.py. Printing a picture rather than text means
accents, any script and the QR code come out the same on every printer, with no code
page to configure.

Expected dict keys (extra keys are ignored):

- ``store``: ``name``, ``address`` (lines separated by newlines).
- ``order``: ``number``, ``customer_name`` (only its initials are printed),
  ``receipt_token`` (optional, printed as a QR), ``item_count`` (bag label),
  ``refund_total`` (optional, already formatted, e.g. ``"59,90 €"``).
- ``lines``: ``name``, ``size``, ``colour``, ``qty`` (handed over or returned) and
  ``qty_ordered`` (optional; a hand-over with less than ordered is partial).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import Image

from app.core.clock import parse_iso
from app.core.qr import render_qr
from app.core.text import clean as _clean
from app.core.text import initials
from app.store.domain.ticket_drawing import (
    PRINTER_DPI,
    blank,
    boxed,
    centered,
    largest,
    pair,
    paragraph,
    rule,
    stack,
)

LABELS = {
    "fr": {
        "handover": "REMISE DE COMMANDE",
        "return": "TICKET DE RETOUR",
        "order": "Commande",
        "order_value": "n° {n}",
        "order_no": "Commande n°",
        "customer": "Client",
        "date": "Date",
        "item": "Article",
        "qty": "Qté",
        "partial_one": "Remise partielle\u00a0: 1 article reste à retirer.",
        "partial_many": "Remise partielle\u00a0: {n} articles restent à retirer.",
        "served_by": "Servi par",
        "receipt_qr": "Votre reçu numérique",
        "thanks": "Merci de votre visite\u00a0!",
        "slot": "Emplacement",
        "items": "Articles",
        "reason": "Motif\u00a0: {r}",
        "refund": "Remboursement",
        "amount": "Montant",
        "return_qr": "Conservez ce ticket",
    },
    "en": {
        "handover": "ORDER HAND-OVER",
        "return": "RETURN RECEIPT",
        "order": "Order",
        "order_value": "#{n}",
        "order_no": "Order no.",
        "customer": "Customer",
        "date": "Date",
        "item": "Item",
        "qty": "Qty",
        "partial_one": "Partial hand-over: 1 item still to collect.",
        "partial_many": "Partial hand-over: {n} items still to collect.",
        "served_by": "Served by",
        "receipt_qr": "Your digital receipt",
        "thanks": "Thank you for your visit!",
        "slot": "Shelf slot",
        "items": "Items",
        "reason": "Reason: {r}",
        "refund": "Refund",
        "amount": "Amount",
        "return_qr": "Keep this ticket",
    },
}
REFUND_METHODS = {
    "fr": {
        "card": "Carte bancaire",
        "cash": "Espèces",
        "voucher": "Avoir",
        "original": "Moyen de paiement d'origine",
    },
    "en": {
        "card": "Bank card",
        "cash": "Cash",
        "voucher": "Store credit",
        "original": "Original payment method",
    },
}
_MONTHS_EN = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

# ESC/POS commands (Epson TM series and the many compatible printers).
ESC_INIT = b"\x1b@"  # ESC @: reset the printer to its power-on state
GS_RASTER = b"\x1dv0"  # GS v 0 m xL xH yL yH d...: print a raster bit image, m=0 normal
CUT = b"\x1dVB\x00"  # GS V 66 0: feed to the cutter, then partial cut (one point uncut)
RASTER_BAND_ROWS = 256  # small bands: some printers choke on one tall raster command
_INVERT_BITS = bytes(255 - i for i in range(256))


def _labels(lang: str) -> dict[str, str]:
    """The label set for ``lang``; French when unknown."""
    return LABELS.get(lang, LABELS["fr"])


def _first_name(name: str) -> str:
    """The first word of a staff member's name."""
    words = _clean(name).split()
    return words[0] if words else ""


def format_when(when: datetime, lang: str = "fr") -> str:
    """Date and time as printed: ``22/11/2026 14:02`` (fr), ``22 Nov 2026, 14:02`` (en)."""
    # Explicit formats, not strftime's %b, which follows the process's C locale.
    if lang == "en":
        return f"{when.day} {_MONTHS_EN[when.month - 1]} {when.year}, {when:%H:%M}"
    return f"{when:%d/%m/%Y %H:%M}"


def _item_lines(lines: Iterable[Mapping], lang: str) -> list[Image.Image]:
    """One block per order line: name and quantity, then size and colour."""
    labels = _labels(lang)
    blocks = [pair(labels["item"], labels["qty"], 20, right_bold=False), rule(thickness=1)]
    for line in lines:
        qty = str(line.get("qty", ""))
        ordered = line.get("qty_ordered")
        if ordered is not None and str(ordered) != qty:
            qty = f"{qty} / {ordered}"
        blocks.append(pair(line.get("name", ""), qty, 24))
        variant = " · ".join(v for k in ("size", "colour") if (v := _clean(line.get(k))))
        if variant:
            blocks.append(paragraph(variant, 20))
        blocks.append(blank(6))
    return blocks


def _header(store: Mapping, title: str) -> list[Image.Image]:
    """Store name and address, then the ticket's title."""
    blocks = [paragraph(store.get("name", ""), 34, bold=True, align="center")]
    for part in str(store.get("address", "") or "").splitlines():
        if part.strip():
            blocks.append(paragraph(part, 20, align="center"))
    return [*blocks, rule(dashed=False), paragraph(title, 28, bold=True, align="center"), blank(8)]


def _order_block(order: Mapping, when: datetime, lang: str) -> list[Image.Image]:
    """Order number, customer initials (never the name) and date, one per row."""
    labels = _labels(lang)
    return [
        pair(labels["order"], labels["order_value"].format(n=_clean(order.get("number")))),
        pair(labels["customer"], initials(order.get("customer_name", ""))),
        pair(labels["date"], format_when(when, lang)),
    ]


def handover_receipt(
    store: Mapping,
    order: Mapping,
    lines: list[Mapping],
    staff_name: str,
    when: datetime,
    lang: str = "fr",
) -> Image.Image:
    """The receipt given to a customer collecting a click-and-collect order."""
    labels = _labels(lang)
    blocks = _header(store, labels["handover"])
    blocks += [*_order_block(order, when, lang), rule(), *_item_lines(lines, lang)]
    missing = sum(
        max(0, int(line.get("qty_ordered") or 0) - int(line.get("qty") or 0)) for line in lines
    )
    if missing:
        note = labels["partial_one" if missing == 1 else "partial_many"].format(n=missing)
        blocks += [rule(), paragraph(note, 22, bold=True)]
    blocks.append(rule())
    if first_name := _first_name(staff_name):
        blocks.append(pair(labels["served_by"], first_name, 22))
    if order.get("receipt_token"):
        blocks += [blank(12), centered(render_qr(order["receipt_token"], 4))]
        blocks.append(paragraph(labels["receipt_qr"], 20, align="center"))
    blocks += [blank(12), paragraph(labels["thanks"], 24, bold=True, align="center")]
    return stack(blocks)


def bag_label(order: Mapping, shelf_slot: str, qr_data: str, lang: str = "fr") -> Image.Image:
    """The label stuck on a prepared order's bag: number, initials and slot readable at a glance."""
    labels = _labels(lang)
    number = _clean(order.get("number"))
    blocks = [
        paragraph(labels["order_no"], 24, align="center"),
        paragraph(number, largest(number, (88, 72, 56, 44)), bold=True, align="center"),
        paragraph(initials(order.get("customer_name", "")), 48, bold=True, align="center"),
        rule(dashed=False),
        paragraph(labels["slot"], 24, align="center"),
        boxed(shelf_slot, (64, 48, 36)),
        blank(10),
        pair(labels["items"], str(order.get("item_count", "")), 30),
        rule(),
        centered(render_qr(qr_data)),
    ]
    return stack(blocks)


def return_receipt(
    store: Mapping,
    order: Mapping,
    lines: list[Mapping],
    reason: str,
    refund_method: str,
    when: datetime,
    qr_data: str,
    lang: str = "fr",
) -> Image.Image:
    """The receipt for goods brought back: what, why, and how the money comes back."""
    labels = _labels(lang)
    method = REFUND_METHODS.get(lang, REFUND_METHODS["fr"]).get(refund_method, refund_method)
    blocks = _header(store, labels["return"])
    blocks += [
        *_order_block(order, when, lang),
        rule(),
        *_item_lines(lines, lang),
        rule(),
        paragraph(labels["reason"].format(r=_clean(reason)), 22),
        pair(labels["refund"], method, 22),
    ]
    if order.get("refund_total"):
        blocks.append(pair(labels["amount"], str(order["refund_total"]), 28))
    blocks += [
        rule(),
        blank(8),
        centered(render_qr(qr_data, 4)),
        paragraph(labels["return_qr"], 20, align="center"),
    ]
    return stack(blocks)


RESERVATION_LABELS = {
    "fr": {
        "title": "RÉSERVATION",
        "code": "Code de réservation",
        "until": "À retirer avant",
        "units_one": "1 article mis de côté",
        "units_many": "{n} articles mis de côté",
        "show": "Présentez ce ticket en caisse.",
        "after": "Passé ce délai, les articles sont remis en vente.",
    },
    "en": {
        "title": "RESERVATION",
        "code": "Reservation code",
        "until": "Collect before",
        "units_one": "1 item put aside",
        "units_many": "{n} items put aside",
        "show": "Show this ticket at the till.",
        "after": "After this time, the items go back on sale.",
    },
}


def reservation_ticket(
    reservation: Mapping,
    qr_data: str,
    store_name: str,
    lang: str = "fr",
    *,
    timezone: str = "Europe/Paris",
) -> Image.Image:
    """The shopper's reservation ticket: code, collect-before time, items and QR.

    ``reservation`` is ``app.store.domain.reservations.get()``: ``code``, ``expires_at`` (ISO UTC,
    printed in the store's ``timezone``) and ``lines`` (``name_fr``/``name_en``,
    ``size``, ``colour_fr``/``colour_en``, ``qty``). Nothing about the shopper.
    """
    labels = RESERVATION_LABELS.get(lang, RESERVATION_LABELS["fr"])
    en = lang == "en"
    lines = [
        {
            "name": (ln.get("name_en") if en else None) or ln.get("name_fr") or ln.get("sku"),
            "size": ln.get("size", ""),
            "colour": (ln.get("colour_en") if en else None) or ln.get("colour_fr", ""),
            "qty": ln.get("qty", ""),
        }
        for ln in reservation.get("lines", [])
    ]
    units = sum(int(ln["qty"] or 0) for ln in lines)
    code = _clean(reservation.get("code"))
    blocks = _header({"name": store_name}, labels["title"])
    blocks += [paragraph(labels["code"], 24, align="center"), boxed(code, (96, 80, 64, 48))]
    blocks.append(blank(10))
    if reservation.get("expires_at"):
        until = parse_iso(str(reservation["expires_at"])).astimezone(ZoneInfo(timezone))
        blocks += [
            paragraph(labels["until"], 24, align="center"),
            paragraph(format_when(until, lang), 40, bold=True, align="center"),
        ]
    blocks += [rule(), *_item_lines(lines, lang)]
    note = labels["units_one" if units == 1 else "units_many"].format(n=units)
    blocks += [paragraph(note, 22, bold=True), rule(), blank(8), centered(render_qr(qr_data, 6))]
    blocks += [
        blank(8),
        paragraph(labels["show"], 24, bold=True, align="center"),
        paragraph(labels["after"], 20, align="center"),
    ]
    return stack(blocks)


def to_png(img: Image.Image) -> bytes:
    """The ticket as PNG bytes, tagged with the printer's 203 dpi."""
    buf = io.BytesIO()
    img.save(buf, "PNG", dpi=(PRINTER_DPI, PRINTER_DPI), optimize=True)
    return buf.getvalue()


def to_pdf(img: Image.Image, width_mm: float = 80) -> bytes:
    """A one-page PDF exactly ``width_mm`` wide, its height in proportion."""
    # Pillow sizes the page as pixels * 72 / resolution points, so choosing the
    # resolution fixes the physical width: 576 px over 80 mm is 182.88 dpi.
    resolution = img.width / (width_mm / 25.4)
    buf = io.BytesIO()
    img.convert("L").save(buf, "PDF", resolution=resolution)
    return buf.getvalue()


def to_escpos(img: Image.Image) -> bytes:
    """ESC/POS bytes: initialise, print the dithered 1-bit image as raster bands, cut.

    ``ESC @`` resets the printer. Each band is ``GS v 0 0 xL xH yL yH`` followed by
    ``(xL + 256 xH) * (yL + 256 yH)`` bytes, rows top to bottom, 8 dots per byte with
    the most significant bit leftmost and 1 meaning a printed (black) dot. ``GS V 66 0``
    feeds the paper up to the cutter and makes a partial cut.
    """
    gray = img.convert("L")
    if gray.width % 8:  # rows are whole bytes: pad with white on the right
        padded = Image.new("L", (gray.width + 8 - gray.width % 8, gray.height), 255)
        padded.paste(gray, (0, 0))
        gray = padded
    mono = gray.convert("1")  # Floyd-Steinberg dithering, Pillow's default
    row_bytes = mono.width // 8
    out = bytearray(ESC_INIT)
    for top in range(0, mono.height, RASTER_BAND_ROWS):
        band = mono.crop((0, top, mono.width, min(top + RASTER_BAND_ROWS, mono.height)))
        header = bytes((0, row_bytes & 0xFF, row_bytes >> 8, band.height & 0xFF, band.height >> 8))
        # Pillow's "1" mode packs white as 1; the printer burns dots set to 1.
        out += GS_RASTER + header + band.tobytes().translate(_INVERT_BITS)
    out += CUT
    return bytes(out)
