"""app.store.domain.tickets: receipts and bag labels for an 80 mm thermal printer
(PNG, PDF, ESC/POS)."""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from app.store.domain import ticket_drawing, tickets

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

STORE = {"name": "Atelier Vélo Lyon Part-Dieu", "address": "17 rue de la République\n69002 Lyon"}
RECEIPT_TOKEN = "KQ1.RECEIPTTOKENFORTESTS.SIGNATURE"
ORDER = {
    "number": "1042",
    "customer_name": "Élodie Martin",
    "receipt_token": RECEIPT_TOKEN,
    "item_count": 3,
    "refund_total": "59,90 €",
}
LINES = [
    {"name": "Veste imperméable Trail", "size": "M", "colour": "Bleu marine", "qty": 1},
    {"name": "Chaussures rando", "size": "39", "colour": "Gris", "qty": 1, "qty_ordered": 2},
]
WHEN = datetime(2026, 11, 22, 14, 2)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # git-ignored
QR_DATA = "KQ1.PICKUPTOKEN.FORTHEBAGLABEL"
ODD = [
    "🧦 Chaussettes 🎉👨‍👩‍👧 famille",
    "مرحبا بالعالم שלום עולם",
    "\u202eevil override\u202c",
    "<script>alert('x')</script> &amp; <b>gras</b>",
    "nul\x00byte\ttab\nnewline\r",
    "lone \ud800 surrogate",
    "W" * 500,
    "Zalgo z̷̢̛̖͓a̴̧͖l̵̰͉g̸̣̈o̸͍̓",
    "",
]

QR = zxingcpp.BarcodeFormat.QRCode


def _tickets(order=ORDER, lines=LINES) -> dict[str, Image.Image]:
    return {
        "handover": tickets.handover_receipt(STORE, order, lines, "Camille Durand", WHEN),
        "bag": tickets.bag_label(order, "B-07", QR_DATA),
        "return": tickets.return_receipt(
            STORE, order, lines[:1], "Trop petit", "card", WHEN, QR_DATA, lang="en"
        ),
    }


def _drawn_text(monkeypatch) -> list[str]:
    """Record every string drawn on any ticket from now on."""
    seen: list[str] = []
    original = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        seen.append(text)
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    return seen


@pytest.mark.parametrize("name", ["handover", "bag", "return"])
def test_tickets_are_576_px_wide_and_save_samples(name):
    img = _tickets()[name]
    assert img.width == ticket_drawing.WIDTH_PX == 576
    assert 300 < img.height < 2000
    # Kept for a human to look at, like the browser tests' screenshots.
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"ticket-{name}.png").write_bytes(tickets.to_png(img))


def test_png_decodes_with_printer_dpi():
    img = _tickets()["handover"]
    decoded = Image.open(io.BytesIO(tickets.to_png(img)))
    assert decoded.format == "PNG" and decoded.size == img.size
    assert round(decoded.info["dpi"][0]) == 203


def test_pdf_page_is_80_mm_wide_and_proportional():
    img = _tickets()["handover"]
    pdf = tickets.to_pdf(img)
    assert pdf.startswith(b"%PDF")
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    width_pt, height_pt = float(box.group(1)), float(box.group(2))
    assert width_pt == pytest.approx(80 / 25.4 * 72, abs=1)  # 226.77 pt
    assert height_pt == pytest.approx(img.height * width_pt / img.width, abs=1)
    narrow = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)", tickets.to_pdf(img, width_mm=58))
    assert float(narrow.group(1)) == pytest.approx(58 / 25.4 * 72, abs=1)


def _parse_escpos(data: bytes) -> tuple[Image.Image, bytes]:
    """Rebuild the printed 1-bit image from ESC/POS bytes; return it and what follows."""
    assert data.startswith(b"\x1b@")
    pos, bands = 2, []
    while data[pos : pos + 3] == b"\x1dv0":
        m, xl, xh, yl, yh = data[pos + 3 : pos + 8]
        assert m == 0
        width, height = (xl + 256 * xh) * 8, yl + 256 * yh
        size = width // 8 * height
        raw = data[pos + 8 : pos + 8 + size]
        assert len(raw) == size
        # Back to Pillow's convention (1 = white) to compare images.
        bands.append(Image.frombytes("1", (width, height), bytes(255 - b for b in raw)))
        pos += 8 + size
    assert bands
    full = Image.new("1", (bands[0].width, sum(b.height for b in bands)))
    y = 0
    for band in bands:
        full.paste(band, (0, y))
        y += band.height
    return full, data[pos:]


def test_escpos_is_init_raster_bands_then_cut():
    img = _tickets()["handover"]
    data = tickets.to_escpos(img)
    assert data.startswith(b"\x1b@") and b"\x1dv0" in data
    assert data.endswith(b"\x1dVB\x00")
    printed, rest = _parse_escpos(data)
    assert rest == b"\x1dVB\x00"
    assert printed.size == img.size
    assert printed.tobytes() == img.convert("L").convert("1").tobytes()
    # Long tickets are sent in several bands, none taller than the limit.
    assert data.count(b"\x1dv0") == -(-img.height // tickets.RASTER_BAND_ROWS)


def test_escpos_pads_odd_widths_with_unprinted_dots():
    black = Image.new("L", (100, 3), 0)
    printed, _ = _parse_escpos(tickets.to_escpos(black))
    assert printed.size == (104, 3)
    row = tickets.to_escpos(black)[10 : 10 + 13]  # first raster row: 13 bytes
    assert row == b"\xff" * 12 + b"\xf0"  # 100 dots burnt, 4 padding dots left blank


def test_bag_label_qr_decodes_back():
    label = tickets.bag_label(ORDER, "B-07", QR_DATA)
    assert [r.text for r in zxingcpp.read_barcodes(label, formats=QR)] == [QR_DATA]
    # What the thermal printer actually prints (dithered, 1-bit) still scans.
    printed, _ = _parse_escpos(tickets.to_escpos(label))
    assert [r.text for r in zxingcpp.read_barcodes(printed.convert("L"), formats=QR)] == [QR_DATA]


def test_receipt_qr_carries_the_receipt_token():
    receipt = tickets.handover_receipt(STORE, ORDER, LINES, "Camille", WHEN)
    assert [r.text for r in zxingcpp.read_barcodes(receipt, formats=QR)] == [RECEIPT_TOKEN]
    without = tickets.handover_receipt(STORE, {**ORDER, "receipt_token": None}, LINES, "C", WHEN)
    assert zxingcpp.read_barcodes(without, formats=QR) == []
    assert without.height < receipt.height


def test_render_qr_shrinks_modules_to_fit_the_roll():
    big = tickets.render_qr("X" * 1500, box_size=6)
    assert big.width <= ticket_drawing.CONTENT_PX
    assert tickets.render_qr("hello", box_size=6).width == (21 + 8) * 6


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Élodie Martin", "É. M."),
        ("E\u0301lodie martin", "É. M."),  # decomposed accent
        ("jean-pierre dupont", "J.-P. D."),
        ("Marie Claire de la Tour", "M. T."),  # first and last names only
        ("Madonna", "M."),
        ("  ", ""),
        ("", ""),
        ("🎉 Zoé 🎉", "Z."),
        ("李小龍", "李."),
        ("O'Brien Seán", "O. S."),
    ],
)
def test_initials(name, expected):
    assert tickets.initials(name) == expected


def test_customer_and_staff_full_names_are_never_printed(monkeypatch):
    drawn = _drawn_text(monkeypatch)
    _tickets()
    text = "\n".join(drawn)
    assert "É. M." in drawn and "Camille" in drawn
    for secret in ("Élodie", "lodie", "Martin", "Durand"):
        assert secret not in text


def test_labels_in_french_and_english(monkeypatch):
    drawn = _drawn_text(monkeypatch)
    tickets.handover_receipt(STORE, ORDER, LINES, "Camille", WHEN, lang="fr")
    assert "22/11/2026 14:02" in drawn and "REMISE DE COMMANDE" in drawn
    # French typography reaches paper: the no-break space before the colon is kept.
    assert "Remise partielle\u00a0: 1 article reste à retirer." in drawn
    assert "1 / 2" in drawn
    drawn.clear()
    tickets.handover_receipt(STORE, ORDER, LINES, "Camille", WHEN, lang="en")
    assert "22 Nov 2026, 14:02" in drawn and "ORDER HAND-OVER" in drawn
    assert "Partial hand-over: 1 item still to collect." in drawn
    drawn.clear()
    tickets.return_receipt(STORE, ORDER, LINES, "Trop petit", "card", WHEN, QR_DATA, lang="fr")
    assert "Carte bancaire" in drawn and "Motif\u00a0: Trop petit" in drawn and "59,90 €" in drawn


def test_no_partial_note_when_everything_is_handed_over(monkeypatch):
    drawn = _drawn_text(monkeypatch)
    full = [{**line, "qty_ordered": line["qty"]} for line in LINES]
    tickets.handover_receipt(STORE, ORDER, full, "Camille", WHEN)
    assert not any("partielle" in t for t in drawn)


@pytest.mark.parametrize("odd", ODD)
def test_odd_text_never_crashes(odd, monkeypatch):
    drawn = _drawn_text(monkeypatch)
    order = {**ORDER, "number": odd or "1", "customer_name": odd}
    lines = [{"name": odd, "size": odd, "colour": odd, "qty": 1}]
    store = {"name": odd, "address": odd}
    imgs = [
        tickets.handover_receipt(store, order, lines, odd, WHEN),
        tickets.bag_label(order, odd, QR_DATA),
        tickets.return_receipt(store, order, lines, odd, odd, WHEN, QR_DATA),
    ]
    assert all(img.width == 576 for img in imgs)
    assert all(tickets.to_escpos(img).endswith(tickets.CUT) for img in imgs)
    # Printed as text, never interpreted; controls and bidi overrides are dropped.
    assert not any(c in t for t in drawn for c in "\x00\t\n\r\u202e\ud800")
    if odd.startswith("<script>"):
        assert any("<script>alert('x')</script>" in t for t in drawn)


def test_long_names_wrap_instead_of_running_off_the_roll(monkeypatch):
    drawn = _drawn_text(monkeypatch)
    long_name = "Chaussures de randonnée mi-hautes imperméables pour femme " * 3
    short = tickets.handover_receipt(STORE, ORDER, LINES[:1], "Camille", WHEN)
    drawn.clear()
    long = tickets.handover_receipt(
        STORE, ORDER, [{**LINES[0], "name": long_name}], "Camille", WHEN
    )
    assert long.width == 576 and long.height > short.height + 60
    font = ticket_drawing.load_font(24)
    name_lines = [t for t in drawn if t and t in long_name]
    assert len(name_lines) >= 4
    assert all(ticket_drawing.text_width(t, font) <= ticket_drawing.CONTENT_PX for t in name_lines)
    # Nothing lost: the wrapped lines put back together are the name.
    assert " ".join(name_lines) == long_name.strip()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=40, max_value=ticket_drawing.CONTENT_PX))
def test_wrapped_lines_always_fit(text, width):
    for size, bold in ((20, False), (24, True), (64, True)):
        font = ticket_drawing.load_font(size, bold)
        for line in ticket_drawing.wrap(text, font, width):
            # A single glyph wider than the column is the only thing allowed to exceed it.
            assert ticket_drawing.text_width(line, font) <= width or len(line) == 1


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_any_names_render(customer, product):
    order = {**ORDER, "customer_name": customer}
    img = tickets.handover_receipt(STORE, order, [{"name": product, "qty": 1}], customer, WHEN)
    assert img.width == 576


def test_bag_label_fits_a_long_order_number_on_one_line(monkeypatch):
    drawn = _drawn_text(monkeypatch)
    tickets.bag_label({**ORDER, "number": "CC-2026-000123"}, "B-07", QR_DATA)
    assert "CC-2026-000123" in drawn


def test_falls_back_to_pillow_font_without_dejavu(monkeypatch, tmp_path):
    monkeypatch.setattr(ticket_drawing, "FONT_REGULAR", tmp_path / "missing.ttf")
    monkeypatch.setattr(ticket_drawing, "FONT_BOLD", tmp_path / "missing-bold.ttf")
    ticket_drawing.load_font.cache_clear()
    try:
        imgs = _tickets()
        assert all(img.width == 576 for img in imgs.values())
    finally:
        ticket_drawing.load_font.cache_clear()
