"""Drawing on an 80 mm thermal roll: fonts, word wrap and the blocks a ticket is piled
up from (app/store/domain/tickets.py says what each ticket holds).

Tickets are drawn with Pillow at the printable width of an 80 mm thermal roll: 576 dots
at 203 dpi (72 mm of the 80 mm paper). Each block helper returns a white "L" image
CONTENT_PX wide; :func:`stack` piles them up on a ticket with its margins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app.core.text import clean as _clean

WIDTH_PX = 576  # printable dots on an 80 mm roll at 203 dpi
PRINTER_DPI = 203
MARGIN_PX = 16
CONTENT_PX = WIDTH_PX - 2 * MARGIN_PX
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"


@lru_cache(maxsize=32)
def load_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (bold) at ``size`` px if installed, else Pillow's built-in font."""
    path = FONT_BOLD if bold else FONT_REGULAR
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1 has only the small bitmap font
            return ImageFont.load_default()


def line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """Distance between baselines for ``font``."""
    if hasattr(font, "getmetrics"):
        ascent, descent = font.getmetrics()
        return int((ascent + descent) * 1.1)
    return font.getbbox("Ay")[3] + 4


def text_width(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """Pixels ``text`` needs: its advance, or its ink if a glyph overhangs (bold, italic)."""
    return math.ceil(max(font.getlength(text), font.getbbox(text)[2] if text else 0))


def fits(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> bool:
    """Whether ``text`` is at most ``width`` px wide in ``font``."""
    return text_width(text, font) <= width


def wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap to ``width`` px; words too long for a line are broken."""
    lines: list[str] = []
    current = ""
    for word in _clean(text).split(" "):
        candidate = f"{current} {word}" if current else word
        if fits(candidate, font, width):
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        while word and not fits(word, font, width):
            cut = next((i for i in range(len(word), 1, -1) if fits(word[:i], font, width)), 1)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


def blank(height: int) -> Image.Image:
    """A white strip of ``height`` px."""
    return Image.new("L", (CONTENT_PX, max(1, height)), 255)


def paragraph(
    text: str, size: int = 24, bold: bool = False, align: str = "left", width: int = CONTENT_PX
) -> Image.Image:
    """Wrapped text, aligned left, center or right within ``width``."""
    font = load_font(size, bold)
    lines = wrap(text, font, width)
    step = line_height(font)
    img = Image.new("L", (width, step * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        free = width - text_width(line, font)
        x = {"center": free // 2, "right": free}.get(align, 0)
        draw.text((x, i * step), line, font=font, fill=0)
    return img


def pair(left: str, right: str, size: int = 24, right_bold: bool = True) -> Image.Image:
    """A label on the left and a value on the right, each wrapping in its own column."""
    right_w = min(text_width(_clean(right), load_font(size, right_bold)) + 2, CONTENT_PX * 2 // 3)
    left_img = paragraph(left, size, width=CONTENT_PX - right_w - 12)
    right_img = paragraph(right, size, right_bold, align="right", width=right_w)
    img = blank(max(left_img.height, right_img.height))
    img.paste(left_img, (0, 0))
    img.paste(right_img, (CONTENT_PX - right_w, 0))
    return img


def rule(dashed: bool = True, thickness: int = 2) -> Image.Image:
    """A horizontal separator with some air around it."""
    img = blank(14 + thickness)
    draw = ImageDraw.Draw(img)
    step = 10 if dashed else CONTENT_PX
    for x in range(0, CONTENT_PX, step):
        draw.rectangle((x, 7, min(x + (6 if dashed else step), CONTENT_PX) - 1, 6 + thickness), 0)
    return img


def largest(text: str, sizes: tuple[int, ...], width: int = CONTENT_PX) -> int:
    """The first of ``sizes`` at which ``text`` fits on one bold line (else the last)."""
    text = _clean(text)
    return next((s for s in sizes if fits(text, load_font(s, True), width)), sizes[-1])


def boxed(text: str, sizes: tuple[int, ...]) -> Image.Image:
    """White bold text on a black band: the one thing to read from a metre away."""
    size = largest(text, sizes, CONTENT_PX - 24)
    inner = paragraph(text, size, bold=True, align="center", width=CONTENT_PX - 24)
    img = Image.new("L", (CONTENT_PX, inner.height + 20), 0)
    img.paste(Image.eval(inner, lambda v: 255 - v), (12, 10))
    return img


def centered(img: Image.Image) -> Image.Image:
    """``img`` centred in a content-wide strip (scaled down if too wide)."""
    if img.width > CONTENT_PX:
        img = img.resize((CONTENT_PX, img.height * CONTENT_PX // img.width), Image.NEAREST)
    strip = blank(img.height)
    strip.paste(img.convert("L"), ((CONTENT_PX - img.width) // 2, 0))
    return strip


def stack(blocks: Iterable[Image.Image]) -> Image.Image:
    """The blocks one under the other on a 576 px wide white ticket."""
    blocks = list(blocks)
    height = sum(b.height for b in blocks) + 2 * MARGIN_PX
    ticket = Image.new("L", (WIDTH_PX, height), 255)
    y = MARGIN_PX
    for block in blocks:
        ticket.paste(block, (MARGIN_PX, y))
        y += block.height
    return ticket
