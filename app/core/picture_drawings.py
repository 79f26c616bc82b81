"""The drawings of product pictures: one function per kind of product, on a pen that
draws in unit coordinates and a palette derived from the product's colour (Pillow).

Drawing code, long by nature (tests/test_architecture.py lists it): each drawing reads
best whole, next to the others. :data:`DRAWINGS` maps every kind of
:mod:`app.core.picture_kinds` to its drawing. What a picture is made of around the
drawing (background, variants, label, PNG file, cache) is :mod:`app.core.pictures`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from PIL import ImageDraw

RGB = tuple[int, int, int]
Point = tuple[float, float]

INK: RGB = (36, 41, 47)  # outlines of light colours, text
WHITE: RGB = (255, 255, 255)
_FALLBACK: RGB = (140, 149, 159)
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def parse_hex(colour_hex: str) -> RGB:
    """``"#1f6feb"`` (or ``"#16e"``) as an RGB tuple; a neutral grey if unreadable."""
    match = _HEX.fullmatch(colour_hex.strip()) if isinstance(colour_hex, str) else None
    if match is None:
        return _FALLBACK
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    """``a`` moved towards ``b`` by ``t`` (0 = a, 1 = b)."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _luminance(c: RGB) -> float:
    return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255


class Palette:
    """The colours of one picture, all derived from the product colour."""

    def __init__(self, base: RGB, variant: int) -> None:
        light = _luminance(base) > 0.8
        self.base = base
        self.dark = _mix(base, INK, 0.6) if light else _mix(base, (0, 0, 0), 0.45)
        self.shade = _mix(base, (0, 0, 0), 0.18)
        self.tint = _mix(base, WHITE, 0.55) if not light else (228, 231, 235)
        self.trim = WHITE if _luminance(base) < 0.6 else INK
        # What shows the product colour on a white part (a ball's patches).
        self.accent = self.dark if light else base
        self.metal = (87, 96, 106)
        self.rubber = (46, 51, 58)
        backgrounds = [
            _mix(base, WHITE, 0.9) if not light else (238, 241, 245),
            (243, 244, 246),
            (250, 246, 239),
        ]
        self.background = backgrounds[variant % len(backgrounds)]
        self.halo = _mix(self.background, WHITE, 0.65)
        self.shadow = _mix(self.background, (0, 0, 0), 0.09)


class Pen:
    """Draws in unit coordinates (0..1) on a square canvas, optionally zoomed in.

    With ``zoom`` > 1 the point ``focus`` of the drawing lands in the middle of the
    canvas and everything (line widths too) is ``zoom`` times bigger.
    """

    def __init__(
        self, draw: ImageDraw.ImageDraw, side: int, zoom: float = 1.0, focus: Point = (0.5, 0.5)
    ) -> None:
        self.d = draw
        self.s = side * zoom
        self.dx = side * 0.5 - focus[0] * self.s
        self.dy = side * 0.5 - focus[1] * self.s

    def pt(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.s + self.dx, y * self.s + self.dy)

    def w(self, width: float) -> int:
        return max(1, round(width * self.s))

    def poly(
        self, points: Sequence[Point], fill: RGB | None, outline: RGB | None = None, width=0.0
    ) -> None:
        xy = [self.pt(x, y) for x, y in points]
        self.d.polygon(xy, fill=fill)
        if outline is not None and width:
            self.d.line([*xy, xy[0]], fill=outline, width=self.w(width), joint="curve")

    def line(self, points: Sequence[Point], fill: RGB, width: float) -> None:
        self.d.line(
            [self.pt(x, y) for x, y in points], fill=fill, width=self.w(width), joint="curve"
        )

    def rect(
        self,
        box: tuple[float, float, float, float],
        fill: RGB | None,
        radius: float = 0.0,
        outline: RGB | None = None,
        width: float = 0.0,
    ) -> None:
        x0, y0, x1, y1 = box
        self.d.rounded_rectangle(
            (*self.pt(x0, y0), *self.pt(x1, y1)),
            radius=round(radius * self.s),
            fill=fill,
            outline=outline,
            width=self.w(width) if outline is not None else 0,
        )

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float | None = None,
        fill: RGB | None = None,
        outline: RGB | None = None,
        width: float = 0.0,
    ) -> None:
        ry = rx if ry is None else ry
        self.d.ellipse(
            (*self.pt(cx - rx, cy - ry), *self.pt(cx + rx, cy + ry)),
            fill=fill,
            outline=outline,
            width=self.w(width) if outline is not None else 0,
        )


def _curve(points: Sequence[Point], steps: int = 8) -> list[Point]:
    """A smooth path through ``points`` (Catmull-Rom), for organic outlines."""
    out: list[Point] = []
    n = len(points)
    for i in range(n - 1):
        p0 = points[max(i - 1, 0)]
        p1, p2 = points[i], points[i + 1]
        p3 = points[min(i + 2, n - 1)]
        for step in range(steps):
            t = step / steps
            t2, t3 = t * t, t * t * t
            out.append(
                tuple(  # type: ignore[arg-type]
                    0.5
                    * (
                        2 * p1[k]
                        + (-p0[k] + p2[k]) * t
                        + (2 * p0[k] - 5 * p1[k] + 4 * p2[k] - p3[k]) * t2
                        + (-p0[k] + 3 * p1[k] - 3 * p2[k] + p3[k]) * t3
                    )
                    for k in (0, 1)
                )
            )
    out.append(points[-1])
    return out


# ----------------------------------------------------------------------------- shapes


# Shoe outlines (heel to toe, top of the sole at SOLE), one per style.
_SOLE = "sole"
_UPPERS: dict[str, list[Point]] = {
    "boot": [
        (0.17, 0.63),
        (0.16, 0.42),
        (0.2, 0.28),
        (0.36, 0.27),
        (0.4, 0.4),
        (0.55, 0.45),
        (0.74, 0.5),
        (0.85, 0.56),
        (0.87, 0.63),
    ],
    "hiker": [
        (0.17, 0.63),
        (0.16, 0.46),
        (0.2, 0.36),
        (0.35, 0.35),
        (0.41, 0.43),
        (0.56, 0.47),
        (0.75, 0.52),
        (0.86, 0.57),
        (0.87, 0.63),
    ],
    "sneaker": [
        (0.15, 0.62),
        (0.15, 0.47),
        (0.22, 0.42),
        (0.35, 0.44),
        (0.45, 0.4),
        (0.6, 0.47),
        (0.78, 0.52),
        (0.86, 0.57),
        (0.87, 0.62),
    ],
    "hightop": [
        (0.15, 0.62),
        (0.15, 0.3),
        (0.2, 0.24),
        (0.36, 0.25),
        (0.42, 0.4),
        (0.6, 0.47),
        (0.78, 0.52),
        (0.86, 0.57),
        (0.87, 0.62),
    ],
    "cleats": [
        (0.15, 0.63),
        (0.15, 0.48),
        (0.22, 0.43),
        (0.35, 0.45),
        (0.45, 0.42),
        (0.6, 0.49),
        (0.78, 0.54),
        (0.88, 0.59),
        (0.88, 0.63),
    ],
    "runner": [
        (0.16, 0.625),
        (0.15, 0.49),
        (0.2, 0.41),
        (0.33, 0.43),
        (0.46, 0.36),
        (0.6, 0.45),
        (0.77, 0.52),
        (0.89, 0.58),
        (0.88, 0.625),
    ],
}
_UPPERS["spikes"] = _UPPERS["runner"]


def _shoe(pen: Pen, c: Palette, style: str) -> None:
    ground = 0.7
    pen.ellipse(0.51, ground + 0.035, 0.36, 0.03, fill=c.shadow)
    rugged = style in ("boot", "hiker")
    sole_top = _UPPERS[style][0][1]
    sole_colour = c.rubber if rugged or style in ("cleats", "spikes") else (250, 250, 250)
    if style == "cleats":
        ground = 0.67
    pen.poly(_curve(_UPPERS[style]), fill=c.base, outline=c.dark, width=0.008)
    # Sole, with lugs for boots, studs for football boots, pins for spikes.
    pen.rect((0.13, sole_top - 0.005, 0.9, ground), fill=sole_colour, radius=0.03)
    pen.rect((0.13, sole_top - 0.005, 0.9, ground), None, 0.03, outline=c.dark, width=0.006)
    if rugged:
        for i in range(7):
            x = 0.17 + i * 0.1
            pen.rect((x, ground - 0.012, x + 0.05, ground + 0.012), fill=c.rubber, radius=0.008)
    elif style == "cleats":
        for x in (0.18, 0.28, 0.55, 0.67, 0.79):
            pen.rect((x, ground - 0.01, x + 0.05, ground + 0.05), fill=c.metal, radius=0.012)
    elif style == "spikes":  # a stiff spike plate under the forefoot, long pins
        pen.rect((0.5, ground - 0.02, 0.9, ground + 0.02), fill=c.dark, radius=0.02)
        for x in (0.52, 0.59, 0.66, 0.73, 0.8):
            pen.poly(
                [(x, ground + 0.01), (x + 0.045, ground + 0.01), (x + 0.022, ground + 0.08)],
                fill=c.metal,
            )
    if style == "boot":
        pen.poly([(0.2, 0.31), (0.35, 0.3), (0.37, 0.36), (0.2, 0.37)], fill=c.shade)
    elif style == "hiker":
        pen.rect((0.17, 0.54, 0.86, 0.6), fill=c.rubber, radius=0.02)  # mudguard
    elif style == "hightop":
        pen.ellipse(0.26, 0.36, 0.05, fill=c.trim, outline=c.dark, width=0.005)  # ankle patch
    # Side stripe and laces.
    if style in ("runner", "spikes"):
        pen.poly(
            _curve(
                [(0.34, 0.6), (0.5, 0.52), (0.66, 0.5), (0.7, 0.53), (0.52, 0.58), (0.36, 0.61)]
            ),
            fill=c.tint,
        )
    elif style in ("sneaker", "hightop", "cleats"):
        for i in range(3):
            x = 0.42 + i * 0.06
            pen.line([(x, 0.6), (x + 0.08, 0.47)], fill=c.trim, width=0.018)
    lace_top = {"boot": 0.3, "hiker": 0.37, "hightop": 0.28}.get(style, 0.4)
    lace_x = 0.39 if style in ("boot", "hightop") else 0.41 if style == "hiker" else 0.45
    for i in range(5 if style in ("boot", "hightop") else 4):
        y = lace_top + 0.035 + i * 0.035
        x = lace_x + i * 0.035
        pen.line([(x - 0.03, y + 0.01), (x + 0.03, y - 0.01)], fill=c.trim, width=0.012)
    pen.ellipse(0.22, 0.57, 0.018, fill=c.tint)  # heel tab


def _skiboot(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.53, 0.82, 0.32, 0.025, fill=c.shadow)
    shell = [
        (0.28, 0.78),
        (0.27, 0.2),
        (0.56, 0.18),
        (0.58, 0.45),
        (0.74, 0.55),
        (0.81, 0.66),
        (0.81, 0.78),
    ]
    pen.poly(shell, fill=c.base, outline=c.dark, width=0.008)
    pen.poly([(0.27, 0.2), (0.56, 0.18), (0.57, 0.34), (0.28, 0.36)], fill=c.shade)  # cuff
    pen.rect((0.26, 0.14, 0.57, 0.21), fill=c.rubber, radius=0.02)  # liner
    pen.rect((0.25, 0.76, 0.84, 0.82), fill=c.rubber, radius=0.012)
    for x, y in ((0.46, 0.23), (0.47, 0.3), (0.55, 0.5), (0.64, 0.56)):
        pen.rect((x, y, x + 0.11, y + 0.035), fill=c.metal, radius=0.008)  # buckles
    pen.line([(0.3, 0.62), (0.58, 0.62)], fill=c.tint, width=0.01)


def _sandal(pen: Pen, c: Palette) -> None:
    ground = 0.7
    pen.ellipse(0.51, ground + 0.03, 0.38, 0.03, fill=c.shadow)
    pen.rect((0.12, ground - 0.06, 0.9, ground), fill=c.rubber, radius=0.03)
    pen.rect((0.13, ground - 0.085, 0.89, ground - 0.05), fill=c.tint, radius=0.02)
    base = ground - 0.075
    for x0, x1, top, width in (
        (0.16, 0.34, 0.42, 0.04),
        (0.4, 0.62, 0.46, 0.05),
        (0.64, 0.84, 0.52, 0.05),
    ):
        mid = (x0 + x1) / 2
        pen.line(
            _curve(
                [
                    (x0, base),
                    (x0 + 0.02, top + 0.04),
                    (mid, top),
                    (x1 - 0.02, top + 0.04),
                    (x1, base),
                ]
            ),
            c.base,
            width,
        )
    pen.rect((0.17, 0.45, 0.23, 0.5), fill=c.metal, radius=0.01)  # buckle
    pen.line([(0.16, base), (0.9, base)], fill=c.dark, width=0.006)


def _bike(pen: Pen, c: Palette) -> None:
    rear, front, bb = (0.27, 0.63), (0.75, 0.63), (0.48, 0.64)
    seat, head, head_low = (0.42, 0.4), (0.66, 0.4), (0.68, 0.47)
    r = 0.17
    pen.ellipse(0.51, 0.82, 0.38, 0.025, fill=c.shadow)
    for hub in (rear, front):
        pen.ellipse(*hub, r, outline=c.rubber, width=0.026)
        pen.ellipse(*hub, r - 0.026, outline=(208, 215, 222), width=0.006)
        for k in range(8):
            angle = k * math.pi / 4
            pen.line(
                [
                    hub,
                    (hub[0] + (r - 0.03) * math.cos(angle), hub[1] + (r - 0.03) * math.sin(angle)),
                ],
                fill=(175, 184, 193),
                width=0.003,
            )
        pen.ellipse(*hub, 0.018, fill=c.metal)
    pen.line([head, front], fill=c.metal, width=0.016)  # fork
    pen.line([seat, (0.41, 0.34)], fill=c.metal, width=0.014)  # seat post
    pen.poly([(0.35, 0.33), (0.47, 0.32), (0.45, 0.35), (0.37, 0.35)], fill=c.rubber)
    pen.line([head, (0.67, 0.34)], fill=c.metal, width=0.014)  # stem
    pen.line(_curve([(0.62, 0.33), (0.68, 0.33), (0.72, 0.36), (0.71, 0.39)]), c.rubber, 0.014)
    for a, b in ((rear, bb), (rear, seat), (bb, seat), (seat, head), (bb, head_low)):
        pen.line([a, b], fill=c.base, width=0.024)
    pen.line([head, head_low], fill=c.base, width=0.03)
    pen.ellipse(*bb, 0.045, fill=c.dark)
    pen.ellipse(*bb, 0.02, fill=c.metal)
    pen.line([bb, rear], fill=c.dark, width=0.006)  # chain


def _tshirt(pen: Pen, c: Palette, long_sleeves: bool, style: str = "") -> None:
    pen.ellipse(0.5, 0.83, 0.26, 0.022, fill=c.shadow)
    if long_sleeves:
        outline = [
            (0.4, 0.22),
            (0.29, 0.26),
            (0.21, 0.38),
            (0.16, 0.74),
            (0.25, 0.75),
            (0.3, 0.46),
            (0.31, 0.8),
            (0.69, 0.8),
            (0.7, 0.46),
            (0.75, 0.75),
            (0.84, 0.74),
            (0.79, 0.38),
            (0.71, 0.26),
            (0.6, 0.22),
        ]
    else:
        outline = [
            (0.4, 0.24),
            (0.28, 0.28),
            (0.16, 0.41),
            (0.25, 0.49),
            (0.32, 0.43),
            (0.32, 0.8),
            (0.68, 0.8),
            (0.68, 0.43),
            (0.75, 0.49),
            (0.84, 0.41),
            (0.72, 0.28),
            (0.6, 0.24),
        ]
    pen.poly(outline, fill=c.base, outline=c.dark, width=0.007)
    if long_sleeves and style == "fleece":  # no hood: a contrasting yoke, ribs
        pen.poly(
            [(0.29, 0.27), (0.4, 0.22), (0.6, 0.22), (0.71, 0.27), (0.74, 0.36), (0.26, 0.36)],
            fill=c.tint,
            outline=c.dark,
            width=0.006,
        )
        for x in (0.38, 0.44, 0.56, 0.62):
            pen.line([(x, 0.42), (x, 0.78)], fill=c.shade, width=0.006)  # fleece ribs
    elif long_sleeves:  # jacket: a hood
        pen.poly(
            _curve([(0.4, 0.23), (0.43, 0.15), (0.5, 0.13), (0.57, 0.15), (0.6, 0.23)]), c.shade
        )
    if long_sleeves:  # zip (a fleece's half zip comes below), pockets, cuffs
        if style != "fleece":
            pen.line([(0.5, 0.24), (0.5, 0.8)], fill=c.dark, width=0.008)
            pen.rect((0.5, 0.24, 0.52, 0.28), fill=c.metal, radius=0.004)
        for x in (0.35, 0.56):
            pen.line([(x, 0.6), (x + 0.09, 0.56)], fill=c.dark, width=0.007)
        pen.line([(0.16, 0.72), (0.25, 0.73)], fill=c.tint, width=0.02)
        pen.line([(0.75, 0.73), (0.84, 0.72)], fill=c.tint, width=0.02)
    else:
        pen.line(
            _curve([(0.4, 0.245), (0.45, 0.29), (0.5, 0.3), (0.55, 0.29), (0.6, 0.245)]),
            c.dark,
            0.012,
        )
        if style != "jersey":
            pen.poly([(0.32, 0.55), (0.68, 0.49), (0.68, 0.53), (0.32, 0.59)], fill=c.tint)
    if style == "jersey":  # football shirt: stripes, V collar
        for x in (0.37, 0.47, 0.57):
            pen.rect((x, 0.3, x + 0.055, 0.795), fill=c.tint)
        pen.poly(
            [(0.42, 0.245), (0.5, 0.33), (0.58, 0.245)], fill=c.trim, outline=c.dark, width=0.006
        )
    elif style == "puffer":  # quilted down jacket: puffed baffles, body and sleeves
        for k, y in enumerate((0.3, 0.4, 0.5, 0.6, 0.7)):
            if k % 2:
                pen.rect((0.31, y, 0.69, y + 0.1), fill=c.shade)
                pen.poly(
                    [(0.2, y + 0.02), (0.29, y + 0.02), (0.28, y + 0.1), (0.18, y + 0.1)],
                    fill=c.shade,
                )
                pen.poly(
                    [(0.71, y + 0.02), (0.8, y + 0.02), (0.82, y + 0.1), (0.72, y + 0.1)],
                    fill=c.shade,
                )
            pen.line([(0.31, y), (0.69, y)], fill=c.dark, width=0.01)
            pen.line([(0.36, y + 0.035), (0.64, y + 0.035)], fill=c.tint, width=0.014)  # sheen
        pen.line([(0.5, 0.24), (0.5, 0.8)], fill=c.dark, width=0.01)
    elif style == "fleece":  # high collar, half zip
        pen.rect((0.4, 0.16, 0.6, 0.25), fill=c.base, radius=0.03, outline=c.dark, width=0.007)
        pen.line([(0.5, 0.16), (0.5, 0.46)], fill=c.metal, width=0.012)


def _swimsuit(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.84, 0.2, 0.02, fill=c.shadow)
    body = [
        (0.39, 0.18),
        (0.41, 0.3),
        (0.38, 0.44),
        (0.4, 0.58),
        (0.36, 0.72),
        (0.46, 0.78),
        (0.54, 0.78),
        (0.64, 0.72),
        (0.6, 0.58),
        (0.62, 0.44),
        (0.59, 0.3),
        (0.61, 0.18),
    ]
    pen.poly(_curve(body, 6), fill=c.base, outline=c.dark, width=0.007)
    pen.line(_curve([(0.41, 0.3), (0.5, 0.36), (0.59, 0.3)]), c.dark, 0.008)  # neckline
    pen.poly([(0.4, 0.5), (0.6, 0.42), (0.61, 0.47), (0.4, 0.55)], fill=c.tint)
    for x in (0.39, 0.61):
        pen.line([(x, 0.18), (x, 0.13)], fill=c.dark, width=0.012)


def _racket(pen: Pen, c: Palette) -> None:
    cx, cy, rx, ry = 0.5, 0.36, 0.17, 0.22
    pen.ellipse(0.5, 0.88, 0.14, 0.018, fill=c.shadow)
    pen.ellipse(cx, cy, rx, ry, fill=(250, 250, 250))
    for i in range(1, 12):  # strings, clipped to the head
        offset = -1 + i / 6
        half = math.sqrt(max(0.0, 1 - offset * offset))
        pen.line(
            [(cx + offset * rx, cy - half * ry), (cx + offset * rx, cy + half * ry)],
            (200, 206, 213),
            0.004,
        )
        pen.line(
            [(cx - half * rx, cy + offset * ry), (cx + half * rx, cy + offset * ry)],
            (200, 206, 213),
            0.004,
        )
    pen.ellipse(cx, cy, rx, ry, outline=c.base, width=0.028)
    pen.line([(0.42, 0.54), (0.5, 0.66), (0.58, 0.54)], fill=c.base, width=0.024)
    pen.rect((0.475, 0.64, 0.525, 0.87), fill=c.rubber, radius=0.012)
    for i in range(5):
        y = 0.67 + i * 0.04
        pen.line([(0.478, y), (0.522, y + 0.02)], fill=c.metal, width=0.005)
    pen.rect((0.47, 0.84, 0.53, 0.875), fill=c.dark, radius=0.01)


def _clamp_to_circle(x: float, y: float, cx: float, cy: float, r: float) -> Point:
    distance = math.dist((x, y), (cx, cy))
    if distance <= r:
        return (x, y)
    return (cx + (x - cx) * r / distance, cy + (y - cy) * r / distance)


def _ball(pen: Pen, c: Palette) -> None:
    cx, cy, r = 0.5, 0.5, 0.28
    pen.ellipse(0.5, 0.84, 0.22, 0.025, fill=c.shadow)
    pen.ellipse(cx, cy, r, fill=(252, 252, 252))

    def pentagon(px: float, py: float, size: float, turn: float) -> list[Point]:
        return [
            (
                px + size * math.cos(turn + k * 2 * math.pi / 5),
                py + size * math.sin(turn + k * 2 * math.pi / 5),
            )
            for k in range(5)
        ]

    centre = pentagon(cx, cy, 0.085, -math.pi / 2)
    pen.poly(centre, fill=c.accent)
    for k in range(5):
        angle = -math.pi / 2 + k * 2 * math.pi / 5
        vx, vy = centre[k]
        ox, oy = cx + 0.215 * math.cos(angle), cy + 0.215 * math.sin(angle)
        pen.line([(vx, vy), (ox, oy)], fill=(175, 184, 193), width=0.006)
        # Outer patches, squashed towards the rim to suggest the sphere.
        patch = [
            (ox + (x - ox) * 0.75, oy + (y - oy) * 0.75)
            for x, y in pentagon(ox, oy, 0.07, angle + math.pi)
        ]
        patch = [_clamp_to_circle(x, y, cx, cy, r - 0.012) for x, y in patch]
        pen.poly(patch, fill=c.accent)
    pen.ellipse(cx, cy, r, outline=c.dark, width=0.008)
    pen.ellipse(cx - 0.11, cy - 0.13, 0.05, 0.03, fill=(255, 255, 255))


def _dumbbell(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.74, 0.34, 0.025, fill=c.shadow)
    pen.rect((0.2, 0.5, 0.8, 0.55), fill=c.metal, radius=0.01)
    for x0, x1, y0, y1 in (
        (0.17, 0.25, 0.34, 0.71),
        (0.75, 0.83, 0.34, 0.71),
        (0.25, 0.3, 0.39, 0.66),
        (0.7, 0.75, 0.39, 0.66),
    ):
        pen.rect((x0, y0, x1, y1), fill=c.base, radius=0.02, outline=c.dark, width=0.006)
    for x in (0.13, 0.83):
        pen.rect((x, 0.485, x + 0.04, 0.565), fill=c.metal, radius=0.008)
    for i in range(6):
        x = 0.38 + i * 0.045
        pen.line([(x, 0.5), (x + 0.02, 0.55)], fill=(120, 129, 139), width=0.004)


def _skis(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.86, 0.3, 0.025, fill=c.shadow)

    def ski(x_bottom: float, x_top: float, colour: RGB) -> None:
        # A long board from bottom to top with a rounded, turned-up tip.
        length = math.dist((x_bottom, 0.84), (x_top, 0.14))
        ux, uy = (x_top - x_bottom) / length, (0.14 - 0.84) / length
        nx, ny = -uy * 0.038, ux * 0.038
        tail = (x_bottom, 0.84)
        tip = (x_top, 0.14)
        shape = [
            (tail[0] + nx, tail[1] + ny),
            (tip[0] + nx - ux * 0.05, tip[1] + ny - uy * 0.05),
            (tip[0] + ux * 0.01, tip[1] + uy * 0.01),
            (tip[0] - nx - ux * 0.05, tip[1] - ny - uy * 0.05),
            (tail[0] - nx, tail[1] - ny),
        ]
        pen.poly(shape, fill=colour, outline=c.dark, width=0.006)
        mid = (x_bottom + (x_top - x_bottom) * 0.45, 0.84 - 0.7 * 0.45)
        pen.line(
            [(mid[0] - ux * 0.07, mid[1] - uy * 0.07), (mid[0] + ux * 0.07, mid[1] + uy * 0.07)],
            fill=c.rubber,
            width=0.05,
        )
        pen.line([(tail[0], tail[1]), (tip[0], tip[1])], fill=c.tint, width=0.008)

    ski(0.36, 0.47, c.base)
    ski(0.52, 0.63, c.shade)


def _tent(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.53, 0.74, 0.42, 0.04, fill=c.shadow)
    pen.poly(
        [(0.5, 0.27), (0.86, 0.33), (0.95, 0.71), (0.8, 0.73)],
        fill=c.shade,
        outline=c.dark,
        width=0.006,
    )
    pen.poly([(0.16, 0.73), (0.5, 0.27), (0.8, 0.73)], fill=c.base, outline=c.dark, width=0.006)
    pen.poly([(0.39, 0.73), (0.48, 0.47), (0.57, 0.73)], fill=c.dark)
    pen.line([(0.48, 0.47), (0.48, 0.73)], fill=c.tint, width=0.006)
    pen.line([(0.5, 0.27), (0.5, 0.2)], fill=c.metal, width=0.008)
    for start, end in (((0.5, 0.21), (0.08, 0.74)), ((0.5, 0.21), (0.97, 0.62))):
        pen.line([start, end], fill=(175, 184, 193), width=0.004)
    pen.line([(0.04, 0.74), (0.98, 0.74)], fill=(208, 215, 222), width=0.006)


def _backpack(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.82, 0.24, 0.025, fill=c.shadow)
    pen.line(_curve([(0.43, 0.25), (0.45, 0.17), (0.55, 0.17), (0.57, 0.25)]), c.dark, 0.018)
    pen.rect((0.3, 0.24, 0.7, 0.81), fill=c.base, radius=0.09, outline=c.dark, width=0.007)
    pen.rect((0.31, 0.24, 0.69, 0.4), fill=c.shade, radius=0.08)
    pen.line(_curve([(0.33, 0.36), (0.5, 0.4), (0.67, 0.36)]), c.tint, 0.008)  # zip
    pen.rect((0.37, 0.52, 0.63, 0.76), fill=c.tint, radius=0.05, outline=c.dark, width=0.006)
    pen.line([(0.4, 0.57), (0.6, 0.57)], fill=c.dark, width=0.006)
    for x in (0.33, 0.64):
        pen.rect((x, 0.44, x + 0.03, 0.7), fill=c.dark, radius=0.01)
    pen.rect((0.48, 0.22, 0.52, 0.3), fill=c.metal, radius=0.01)


def _box(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.8, 0.32, 0.03, fill=c.shadow)
    front = [(0.22, 0.42), (0.56, 0.5), (0.56, 0.8), (0.22, 0.71)]
    side = [(0.56, 0.5), (0.8, 0.4), (0.8, 0.69), (0.56, 0.8)]
    top = [(0.22, 0.42), (0.47, 0.32), (0.8, 0.4), (0.56, 0.5)]
    pen.poly(front, fill=c.base, outline=c.dark, width=0.006)
    pen.poly(side, fill=c.shade, outline=c.dark, width=0.006)
    pen.poly(top, fill=c.tint, outline=c.dark, width=0.006)
    pen.poly([(0.34, 0.37), (0.42, 0.34), (0.74, 0.42), (0.66, 0.45)], fill=(222, 196, 150))


def _shorts(pen: Pen, c: Palette, swim: bool) -> None:
    pen.ellipse(0.5, 0.8, 0.3, 0.022, fill=c.shadow)
    legs = [
        (0.26, 0.3),
        (0.74, 0.3),
        (0.81, 0.72),
        (0.54, 0.75),
        (0.5, 0.5),
        (0.46, 0.75),
        (0.19, 0.72),
    ]
    pen.poly(legs, fill=c.base, outline=c.dark, width=0.007)
    pen.rect((0.26, 0.26, 0.74, 0.34), fill=c.shade, radius=0.012, outline=c.dark, width=0.006)
    if swim:  # drawstring and waves
        pen.line(_curve([(0.47, 0.33), (0.45, 0.42), (0.42, 0.46)]), c.trim, 0.009)
        pen.line(_curve([(0.53, 0.33), (0.55, 0.42), (0.58, 0.46)]), c.trim, 0.009)
        for y in (0.52, 0.6):
            for x0 in (0.24, 0.58):
                pen.line(
                    _curve(
                        [
                            (x0, y),
                            (x0 + 0.04, y - 0.02),
                            (x0 + 0.08, y),
                            (x0 + 0.12, y - 0.02),
                            (x0 + 0.16, y),
                        ]
                    ),
                    c.tint,
                    0.01,
                )
    else:  # side stripes, split hems
        pen.line([(0.27, 0.35), (0.21, 0.7)], fill=c.tint, width=0.016)
        pen.line([(0.73, 0.35), (0.79, 0.7)], fill=c.tint, width=0.016)
        pen.line([(0.2, 0.66), (0.25, 0.72)], fill=c.dark, width=0.006)
        pen.line([(0.8, 0.66), (0.75, 0.72)], fill=c.dark, width=0.006)


def _tights(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.83, 0.2, 0.02, fill=c.shadow)
    legs = [
        (0.34, 0.16),
        (0.66, 0.16),
        (0.69, 0.48),
        (0.64, 0.81),
        (0.55, 0.81),
        (0.5, 0.36),
        (0.45, 0.81),
        (0.36, 0.81),
        (0.31, 0.48),
    ]
    pen.poly(legs, fill=c.base, outline=c.dark, width=0.007)
    pen.rect((0.34, 0.13, 0.66, 0.2), fill=c.shade, radius=0.01, outline=c.dark, width=0.006)
    pen.line([(0.32, 0.24), (0.38, 0.8)], fill=c.tint, width=0.012)
    pen.line([(0.68, 0.24), (0.62, 0.8)], fill=c.tint, width=0.012)


def _bra(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.78, 0.28, 0.02, fill=c.shadow)
    top = [
        (0.22, 0.66),
        (0.23, 0.46),
        (0.33, 0.37),
        (0.37, 0.2),
        (0.44, 0.2),
        (0.46, 0.38),
        (0.5, 0.42),
        (0.54, 0.38),
        (0.56, 0.2),
        (0.63, 0.2),
        (0.67, 0.37),
        (0.77, 0.46),
        (0.78, 0.66),
    ]
    pen.poly(_curve(top, 5), fill=c.base, outline=c.dark, width=0.007)
    pen.rect((0.22, 0.6, 0.78, 0.69), fill=c.shade, radius=0.015, outline=c.dark, width=0.006)
    pen.line(
        _curve([(0.33, 0.4), (0.42, 0.48), (0.5, 0.44), (0.58, 0.48), (0.67, 0.4)]), c.tint, 0.01
    )


def _wetsuit(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.84, 0.24, 0.02, fill=c.shadow)
    body = [
        (0.44, 0.12),
        (0.56, 0.12),
        (0.68, 0.17),
        (0.8, 0.47),
        (0.74, 0.5),
        (0.66, 0.28),
        (0.66, 0.5),
        (0.64, 0.82),
        (0.54, 0.82),
        (0.5, 0.54),
        (0.46, 0.82),
        (0.36, 0.82),
        (0.34, 0.5),
        (0.34, 0.28),
        (0.26, 0.5),
        (0.2, 0.47),
        (0.32, 0.17),
    ]
    pen.poly(body, fill=c.base, outline=c.dark, width=0.007)
    pen.poly([(0.32, 0.17), (0.68, 0.17), (0.66, 0.36), (0.34, 0.36)], fill=c.rubber)  # chest
    pen.ellipse(0.5, 0.13, 0.06, 0.025, fill=c.dark)  # neck
    for x in (0.39, 0.59):
        pen.rect((x, 0.62, x + 0.05, 0.7), fill=c.rubber, radius=0.015)  # knee pads
    pen.line([(0.2, 0.47), (0.26, 0.5)], fill=c.rubber, width=0.02)
    pen.line([(0.74, 0.5), (0.8, 0.47)], fill=c.rubber, width=0.02)


def _socks(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.52, 0.82, 0.3, 0.022, fill=c.shadow)

    def sock(dx: float, dy: float, colour: RGB) -> None:
        shape = [
            (0.26 + dx, 0.14 + dy),
            (0.44 + dx, 0.14 + dy),
            (0.44 + dx, 0.5 + dy),
            (0.6 + dx, 0.6 + dy),
            (0.67 + dx, 0.66 + dy),
            (0.65 + dx, 0.75 + dy),
            (0.56 + dx, 0.77 + dy),
            (0.38 + dx, 0.72 + dy),
            (0.27 + dx, 0.6 + dy),
        ]
        pen.poly(_curve(shape, 6), fill=colour, outline=c.dark, width=0.007)
        pen.rect(
            (0.26 + dx, 0.12 + dy, 0.44 + dx, 0.22 + dy),
            fill=c.tint,
            radius=0.01,
            outline=c.dark,
            width=0.005,
        )  # ribbed cuff
        for x in (0.3, 0.35, 0.4):
            pen.line([(x + dx, 0.13 + dy), (x + dx, 0.21 + dy)], fill=c.shade, width=0.004)
        pen.line([(0.27 + dx, 0.28 + dy), (0.44 + dx, 0.28 + dy)], fill=c.trim, width=0.014)
        pen.ellipse(0.32 + dx, 0.64 + dy, 0.05, 0.045, fill=c.shade)  # heel
        pen.ellipse(0.6 + dx, 0.71 + dy, 0.05, 0.04, fill=c.shade)  # toe

    sock(0.14, -0.03, c.shade)
    sock(0.0, 0.04, c.base)


def _gloves(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.84, 0.22, 0.02, fill=c.shadow)
    for x, top in ((0.34, 0.24), (0.42, 0.18), (0.5, 0.2), (0.58, 0.26)):
        pen.rect((x, top, x + 0.075, 0.5), fill=c.base, radius=0.035, outline=c.dark, width=0.006)
    pen.poly(
        _curve([(0.64, 0.56), (0.74, 0.42), (0.8, 0.42), (0.78, 0.5), (0.68, 0.66)]),
        fill=c.base,
        outline=c.dark,
        width=0.006,
    )  # thumb
    pen.rect((0.335, 0.4, 0.67, 0.7), fill=c.base, radius=0.06, outline=c.dark, width=0.006)
    pen.rect((0.36, 0.44, 0.64, 0.56), fill=c.shade, radius=0.04)
    pen.rect((0.31, 0.68, 0.69, 0.82), fill=c.rubber, radius=0.03)  # cuff
    pen.line([(0.35, 0.72), (0.65, 0.72)], fill=c.tint, width=0.008)


def _cap(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.54, 0.72, 0.34, 0.025, fill=c.shadow)
    pen.poly(
        _curve([(0.64, 0.57), (0.82, 0.58), (0.92, 0.63), (0.84, 0.67), (0.62, 0.64)]),
        fill=c.shade,
        outline=c.dark,
        width=0.006,
    )  # visor
    crown = [
        (0.18, 0.62),
        (0.2, 0.45),
        (0.3, 0.32),
        (0.46, 0.27),
        (0.62, 0.31),
        (0.7, 0.42),
        (0.72, 0.62),
    ]
    pen.poly(_curve(crown, 6), fill=c.base, outline=c.dark, width=0.007)
    pen.line(_curve([(0.46, 0.27), (0.42, 0.42), (0.44, 0.62)]), c.dark, 0.005)  # seams
    pen.line(_curve([(0.46, 0.27), (0.58, 0.42), (0.62, 0.6)]), c.dark, 0.005)
    pen.ellipse(0.46, 0.27, 0.022, fill=c.dark)  # button
    pen.line([(0.18, 0.6), (0.72, 0.6)], fill=c.tint, width=0.014)  # band
    for x, y in ((0.3, 0.42), (0.6, 0.44)):
        pen.ellipse(x, y, 0.01, fill=c.dark)  # eyelets


def _shinguard(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.82, 0.28, 0.022, fill=c.shadow)
    for x0, colour in ((0.27, c.shade), (0.52, c.base)):
        pen.rect((x0, 0.18, x0 + 0.21, 0.78), fill=colour, radius=0.1, outline=c.dark, width=0.007)
        for y in (0.3, 0.38, 0.46):
            pen.ellipse(x0 + 0.105, y, 0.03, 0.015, fill=c.tint)  # vents
        pen.rect((x0 - 0.01, 0.58, x0 + 0.22, 0.63), fill=c.rubber, radius=0.01)  # strap


def _racket_frame(pen: Pen, c: Palette, cx: float, cy: float, rx: float, ry: float) -> None:
    pen.ellipse(cx, cy, rx, ry, fill=(250, 250, 250))
    for i in range(1, 12):  # strings, clipped to the head
        offset = -1 + i / 6
        half = math.sqrt(max(0.0, 1 - offset * offset))
        pen.line(
            [(cx + offset * rx, cy - half * ry), (cx + offset * rx, cy + half * ry)],
            (200, 206, 213),
            0.003,
        )
        pen.line(
            [(cx - half * rx, cy + offset * ry), (cx + half * rx, cy + offset * ry)],
            (200, 206, 213),
            0.003,
        )


def _padel(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.88, 0.14, 0.018, fill=c.shadow)
    pen.poly([(0.4, 0.5), (0.5, 0.66), (0.6, 0.5)], fill=c.base)  # throat
    pen.ellipse(0.5, 0.35, 0.2, 0.23, fill=c.base, outline=c.dark, width=0.008)
    for row in range(-3, 4):
        for col in range(-3, 4):
            x, y = 0.5 + col * 0.042, 0.35 + row * 0.048
            if ((x - 0.5) / 0.16) ** 2 + ((y - 0.35) / 0.19) ** 2 <= 1:
                pen.ellipse(x, y, 0.011, fill=c.tint)  # holes
    pen.rect((0.47, 0.62, 0.53, 0.86), fill=c.rubber, radius=0.012)
    pen.line(
        _curve([(0.49, 0.86), (0.44, 0.9), (0.5, 0.92), (0.56, 0.9), (0.51, 0.86)]), c.dark, 0.006
    )  # wrist strap


def _badminton(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.48, 0.87, 0.24, 0.018, fill=c.shadow)
    _racket_frame(pen, c, 0.42, 0.25, 0.11, 0.14)
    pen.ellipse(0.42, 0.25, 0.11, 0.14, outline=c.base, width=0.02)
    pen.line([(0.42, 0.39), (0.42, 0.64)], fill=c.base, width=0.012)  # shaft
    pen.rect((0.395, 0.62, 0.445, 0.86), fill=c.base, radius=0.015, outline=c.dark, width=0.005)
    # The shuttlecock beside it: feathered skirt and cork.
    pen.poly(
        [(0.62, 0.6), (0.78, 0.6), (0.74, 0.74), (0.66, 0.74)],
        fill=(250, 250, 250),
        outline=(175, 184, 193),
        width=0.005,
    )
    for x in (0.66, 0.7, 0.74):
        pen.line([(x, 0.6), (0.7 + (x - 0.7) * 0.4, 0.74)], fill=(175, 184, 193), width=0.004)
    pen.rect((0.64, 0.66, 0.76, 0.69), fill=c.base)
    pen.ellipse(0.7, 0.78, 0.045, 0.04, fill=(222, 196, 150), outline=c.dark, width=0.005)


def _balltube(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.85, 0.2, 0.02, fill=c.shadow)
    pen.rect(
        (0.35, 0.16, 0.65, 0.83),
        fill=(232, 238, 243),
        radius=0.04,
        outline=(175, 184, 193),
        width=0.006,
    )
    for y in (0.3, 0.5, 0.7):
        pen.ellipse(0.5, y, 0.125, fill=(214, 226, 70), outline=(160, 170, 40), width=0.005)
        pen.line(_curve([(0.4, y - 0.07), (0.47, y), (0.4, y + 0.07)]), (250, 250, 250), 0.008)
        pen.line(_curve([(0.6, y - 0.07), (0.53, y), (0.6, y + 0.07)]), (250, 250, 250), 0.008)
    pen.rect((0.33, 0.1, 0.67, 0.18), fill=c.base, radius=0.02, outline=c.dark, width=0.006)
    pen.rect((0.35, 0.77, 0.65, 0.84), fill=c.base, radius=0.02, outline=c.dark, width=0.006)


def _yogamat(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.52, 0.76, 0.4, 0.03, fill=c.shadow)
    pen.poly(
        [(0.24, 0.62), (0.88, 0.62), (0.93, 0.74), (0.3, 0.74)],
        fill=c.shade,
        outline=c.dark,
        width=0.006,
    )  # the unrolled end
    pen.rect((0.12, 0.38, 0.68, 0.62), fill=c.base, radius=0.02, outline=c.dark, width=0.006)
    pen.ellipse(0.68, 0.5, 0.06, 0.12, fill=c.tint, outline=c.dark, width=0.006)
    pen.ellipse(0.68, 0.5, 0.035, 0.07, outline=c.shade, width=0.006)
    pen.ellipse(0.68, 0.5, 0.012, 0.025, fill=c.shade)
    for x in (0.24, 0.52):
        pen.rect((x, 0.36, x + 0.04, 0.64), fill=c.rubber, radius=0.01)  # straps


def _treadmill(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.48, 0.77, 0.4, 0.03, fill=c.shadow)
    pen.line([(0.66, 0.66), (0.76, 0.28)], fill=c.metal, width=0.022)  # upright
    pen.line([(0.74, 0.36), (0.56, 0.42)], fill=c.metal, width=0.014)  # handrail
    pen.rect((0.68, 0.2, 0.9, 0.31), fill=c.base, radius=0.02, outline=c.dark, width=0.006)
    pen.rect((0.72, 0.23, 0.83, 0.28), fill=(160, 220, 255), radius=0.008)  # screen
    pen.poly([(0.1, 0.74), (0.74, 0.74), (0.78, 0.64), (0.14, 0.66)], fill=c.rubber)  # belt
    pen.poly([(0.1, 0.74), (0.74, 0.74), (0.74, 0.77), (0.1, 0.77)], fill=c.base)
    pen.rect((0.62, 0.58, 0.82, 0.76), fill=c.base, radius=0.03, outline=c.dark, width=0.006)


def _bench(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.77, 0.38, 0.03, fill=c.shadow)
    for a, b in (
        ((0.24, 0.54), (0.2, 0.75)),
        ((0.5, 0.54), (0.5, 0.75)),
        ((0.7, 0.44), (0.76, 0.75)),
    ):
        pen.line([a, b], fill=c.metal, width=0.02)
    for x0, x1 in ((0.13, 0.3), (0.42, 0.58), (0.68, 0.84)):
        pen.rect((x0, 0.74, x1, 0.77), fill=c.rubber, radius=0.01)
    pen.rect((0.16, 0.45, 0.64, 0.54), fill=c.base, radius=0.025, outline=c.dark, width=0.007)
    pen.poly(
        [(0.6, 0.46), (0.8, 0.2), (0.87, 0.25), (0.68, 0.52)],
        fill=c.base,
        outline=c.dark,
        width=0.007,
    )  # backrest


def _snowboard(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.86, 0.3, 0.025, fill=c.shadow)
    a, b = (0.3, 0.78), (0.7, 0.18)
    pen.line([a, b], fill=c.dark, width=0.19)
    for p in (a, b):
        pen.ellipse(*p, 0.095, fill=c.dark)
    pen.line([a, b], fill=c.base, width=0.175)
    for p in (a, b):
        pen.ellipse(*p, 0.087, fill=c.base)
    pen.line([(0.33, 0.77), (0.69, 0.23)], fill=c.tint, width=0.02)
    for t in (0.3, 0.7):  # bindings, across the board
        x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        pen.line([(x - 0.07, y - 0.045), (x + 0.07, y + 0.045)], fill=c.rubber, width=0.045)


def _goggles(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.76, 0.34, 0.025, fill=c.shadow)
    pen.line(_curve([(0.08, 0.54), (0.2, 0.5), (0.8, 0.5), (0.92, 0.54)]), c.rubber, 0.07)
    pen.rect((0.2, 0.34, 0.8, 0.66), fill=c.base, radius=0.13, outline=c.dark, width=0.007)
    lens = _mix(c.base, (30, 60, 120), 0.55)
    pen.rect((0.24, 0.38, 0.76, 0.62), fill=lens, radius=0.1)
    pen.poly([(0.3, 0.4), (0.44, 0.4), (0.32, 0.58), (0.27, 0.56)], fill=_mix(lens, WHITE, 0.4))
    pen.poly([(0.44, 0.66), (0.5, 0.58), (0.56, 0.66)], fill=c.dark)  # nose


def _sleepingbag(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.83, 0.26, 0.022, fill=c.shadow)
    pen.poly(
        _curve(
            [
                (0.36, 0.82),
                (0.3, 0.5),
                (0.31, 0.22),
                (0.5, 0.12),
                (0.69, 0.22),
                (0.7, 0.5),
                (0.64, 0.82),
            ],
            6,
        ),
        fill=c.base,
        outline=c.dark,
        width=0.007,
    )
    pen.ellipse(0.5, 0.24, 0.12, 0.07, fill=c.dark)  # hood opening
    pen.ellipse(0.5, 0.245, 0.08, 0.04, fill=c.tint)
    for y in (0.38, 0.48, 0.58, 0.68):
        pen.line(_curve([(0.31, y), (0.5, y + 0.025), (0.69, y)]), c.shade, 0.008)
    pen.line([(0.63, 0.3), (0.6, 0.8)], fill=c.tint, width=0.008)  # zip


def _stove(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.83, 0.24, 0.022, fill=c.shadow)
    flame = (66, 133, 244)
    for dx in (-0.06, 0.0, 0.06):
        pen.poly(
            _curve(
                [
                    (0.47 + dx, 0.43),
                    (0.49 + dx, 0.36),
                    (0.5 + dx, 0.29),
                    (0.52 + dx, 0.37),
                    (0.53 + dx, 0.43),
                ],
                4,
            ),
            fill=flame,
        )
    pen.line([(0.42, 0.45), (0.28, 0.37)], fill=c.metal, width=0.014)  # pot supports
    pen.line([(0.58, 0.45), (0.72, 0.37)], fill=c.metal, width=0.014)
    pen.rect((0.39, 0.42, 0.61, 0.5), fill=c.metal, radius=0.015)  # burner
    pen.rect((0.6, 0.46, 0.72, 0.49), fill=c.rubber, radius=0.01)  # valve
    pen.rect((0.34, 0.5, 0.66, 0.82), fill=c.base, radius=0.05, outline=c.dark, width=0.007)
    pen.rect((0.34, 0.6, 0.66, 0.7), fill=c.tint)  # label band


def _bottle(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.84, 0.18, 0.02, fill=c.shadow)
    pen.ellipse(0.5, 0.1, 0.04, outline=c.rubber, width=0.012)  # loop
    pen.rect((0.41, 0.12, 0.59, 0.2), fill=c.rubber, radius=0.02)  # cap
    pen.rect((0.42, 0.18, 0.58, 0.27), fill=c.metal, radius=0.01)  # neck
    pen.rect((0.37, 0.25, 0.63, 0.83), fill=c.base, radius=0.07, outline=c.dark, width=0.007)
    pen.rect((0.37, 0.5, 0.63, 0.6), fill=c.tint)
    pen.line([(0.42, 0.3), (0.42, 0.46)], fill=_mix(c.base, WHITE, 0.45), width=0.014)


def _headlamp(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.82, 0.3, 0.022, fill=c.shadow)
    pen.ellipse(0.5, 0.5, 0.33, 0.17, outline=c.base, width=0.05)  # strap
    pen.line(_curve([(0.2, 0.44), (0.5, 0.18), (0.8, 0.44)]), c.base, 0.035)  # top strap
    pen.poly([(0.5, 0.62), (0.2, 0.8), (0.8, 0.8)], fill=(255, 247, 214))  # beam
    pen.rect((0.37, 0.52, 0.63, 0.72), fill=c.rubber, radius=0.04)
    pen.ellipse(0.5, 0.62, 0.07, fill=(255, 236, 160), outline=c.metal, width=0.008)


def _duffel(pen: Pen, c: Palette) -> None:
    pen.ellipse(0.5, 0.8, 0.38, 0.028, fill=c.shadow)
    pen.line(_curve([(0.36, 0.44), (0.4, 0.27), (0.6, 0.27), (0.64, 0.44)]), c.rubber, 0.022)
    pen.rect((0.14, 0.4, 0.86, 0.78), fill=c.base, radius=0.17, outline=c.dark, width=0.007)
    for x in (0.2, 0.8):
        pen.ellipse(x, 0.59, 0.045, 0.16, fill=c.shade, outline=c.dark, width=0.006)  # ends
    pen.line(_curve([(0.22, 0.45), (0.5, 0.41), (0.78, 0.45)]), c.tint, 0.01)  # zip
    pen.rect((0.36, 0.56, 0.64, 0.7), fill=c.shade, radius=0.03, outline=c.dark, width=0.005)


DRAWINGS: dict[str, Callable[[Pen, Palette], None]] = {
    "runner": lambda p, c: _shoe(p, c, "runner"),
    "spikes": lambda p, c: _shoe(p, c, "spikes"),
    "boot": lambda p, c: _shoe(p, c, "boot"),
    "hiker": lambda p, c: _shoe(p, c, "hiker"),
    "sneaker": lambda p, c: _shoe(p, c, "sneaker"),
    "hightop": lambda p, c: _shoe(p, c, "hightop"),
    "cleats": lambda p, c: _shoe(p, c, "cleats"),
    "skiboot": _skiboot,
    "sandal": _sandal,
    "bike": _bike,
    "tshirt": lambda p, c: _tshirt(p, c, long_sleeves=False),
    "jersey": lambda p, c: _tshirt(p, c, long_sleeves=False, style="jersey"),
    "jacket": lambda p, c: _tshirt(p, c, long_sleeves=True),
    "puffer": lambda p, c: _tshirt(p, c, long_sleeves=True, style="puffer"),
    "fleece": lambda p, c: _tshirt(p, c, long_sleeves=True, style="fleece"),
    "shorts": lambda p, c: _shorts(p, c, swim=False),
    "swimshorts": lambda p, c: _shorts(p, c, swim=True),
    "tights": _tights,
    "bra": _bra,
    "swimsuit": _swimsuit,
    "wetsuit": _wetsuit,
    "socks": _socks,
    "gloves": _gloves,
    "cap": _cap,
    "shinguard": _shinguard,
    "racket": _racket,
    "padel": _padel,
    "badminton": _badminton,
    "balltube": _balltube,
    "ball": _ball,
    "dumbbell": _dumbbell,
    "yogamat": _yogamat,
    "treadmill": _treadmill,
    "bench": _bench,
    "skis": _skis,
    "snowboard": _snowboard,
    "goggles": _goggles,
    "tent": _tent,
    "sleepingbag": _sleepingbag,
    "stove": _stove,
    "backpack": _backpack,
    "duffel": _duffel,
    "bottle": _bottle,
    "headlamp": _headlamp,
    "box": _box,
}
