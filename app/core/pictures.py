"""Product pictures drawn with Pillow: flat, deterministic, rendered on demand.

A picture depends only on its arguments (no randomness, no clock), so it can be cached
on disk forever under a key made of them (:func:`cached_picture`). Shapes are drawn at
twice the size and scaled down, which gives smooth, anti-aliased edges cheaply.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from hashlib import sha256
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps
from sqlite_utils import Database

RGB = tuple[int, int, int]
Point = tuple[float, float]

#: Which drawing each demo category gets; anything else gets a parcel box.
CATEGORY_SHAPES: dict[str, str] = {
    "chaussures-running": "runner",
    "chaussures-randonnee": "boot",
    "baskets": "sneaker",
    "velos": "bike",
    "textile-running": "tshirt",
    "vestes": "jacket",
    "maillots-de-bain": "swimsuit",
    "tennis": "racket",
    "football": "ball",
    "fitness": "dumbbell",
    "ski": "skis",
    "camping": "tent",
    "accessoires": "backpack",
}
SHAPES = frozenset({*CATEGORY_SHAPES.values(), "box"})
VARIANTS = 3  # views per product: 0 plain, 1 mirrored, 2 close-up

_INK: RGB = (36, 41, 47)  # outlines of light colours, text
_WHITE: RGB = (255, 255, 255)
_FALLBACK: RGB = (140, 149, 159)
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SUPERSAMPLE = 2
_PNG_LEVEL = 6


def shape_for(category_slug: str) -> str:
    """The drawing used for a category (``"box"`` when the category is unknown)."""
    return CATEGORY_SHAPES.get(category_slug, "box")


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


class _Palette:
    """The colours of one picture, all derived from the product colour."""

    def __init__(self, base: RGB, variant: int) -> None:
        light = _luminance(base) > 0.8
        self.base = base
        self.dark = _mix(base, _INK, 0.6) if light else _mix(base, (0, 0, 0), 0.45)
        self.shade = _mix(base, (0, 0, 0), 0.18)
        self.tint = _mix(base, _WHITE, 0.55) if not light else (228, 231, 235)
        self.trim = _WHITE if _luminance(base) < 0.6 else _INK
        # What shows the product colour on a white part (a ball's patches).
        self.accent = self.dark if light else base
        self.metal = (87, 96, 106)
        self.rubber = (46, 51, 58)
        backgrounds = [
            _mix(base, _WHITE, 0.9) if not light else (238, 241, 245),
            (243, 244, 246),
            (250, 246, 239),
        ]
        self.background = backgrounds[variant % len(backgrounds)]
        self.halo = _mix(self.background, _WHITE, 0.65)
        self.shadow = _mix(self.background, (0, 0, 0), 0.09)


class _Pen:
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


def _shoe(pen: _Pen, c: _Palette, style: str) -> None:
    ground = 0.7
    pen.ellipse(0.51, ground + 0.035, 0.36, 0.03, fill=c.shadow)
    if style == "boot":
        sole_colour, sole_top = c.rubber, ground - 0.07
        upper = [
            (0.17, sole_top),
            (0.16, 0.42),
            (0.2, 0.28),
            (0.36, 0.27),
            (0.4, 0.4),
            (0.55, 0.45),
            (0.74, 0.5),
            (0.85, 0.56),
            (0.87, sole_top),
        ]
    elif style == "sneaker":
        sole_colour, sole_top = (250, 250, 250), ground - 0.08
        upper = [
            (0.15, sole_top),
            (0.15, 0.47),
            (0.22, 0.42),
            (0.35, 0.44),
            (0.45, 0.4),
            (0.6, 0.47),
            (0.78, 0.52),
            (0.86, 0.57),
            (0.87, sole_top),
        ]
    else:  # runner
        sole_colour, sole_top = (250, 250, 250), ground - 0.075
        upper = [
            (0.16, sole_top),
            (0.15, 0.49),
            (0.2, 0.41),
            (0.33, 0.43),
            (0.46, 0.36),
            (0.6, 0.45),
            (0.77, 0.52),
            (0.89, 0.58),
            (0.88, sole_top),
        ]
    pen.poly(_curve(upper), fill=c.base, outline=c.dark, width=0.008)
    # Sole, with lugs for the boot.
    pen.rect((0.13, sole_top - 0.005, 0.9, ground), fill=sole_colour, radius=0.03)
    pen.rect((0.13, sole_top - 0.005, 0.9, ground), None, 0.03, outline=c.dark, width=0.006)
    if style == "boot":
        for i in range(7):
            x = 0.17 + i * 0.1
            pen.rect((x, ground - 0.012, x + 0.05, ground + 0.012), fill=c.rubber, radius=0.008)
        pen.poly([(0.2, 0.31), (0.35, 0.3), (0.37, 0.36), (0.2, 0.37)], fill=c.shade)
    # Side stripe and laces.
    if style == "runner":
        pen.poly(
            _curve(
                [(0.34, 0.6), (0.5, 0.52), (0.66, 0.5), (0.7, 0.53), (0.52, 0.58), (0.36, 0.61)]
            ),
            fill=c.tint,
        )
    elif style == "sneaker":
        for i in range(3):
            x = 0.42 + i * 0.06
            pen.line([(x, 0.6), (x + 0.08, 0.47)], fill=c.trim, width=0.018)
    lace_top = 0.3 if style == "boot" else 0.4
    for i in range(4):
        y = lace_top + 0.035 + i * 0.035
        x = (0.39 if style == "boot" else 0.45) + i * 0.035
        pen.line([(x - 0.03, y + 0.01), (x + 0.03, y - 0.01)], fill=c.trim, width=0.012)
    pen.ellipse(0.22, 0.57, 0.018, fill=c.tint)  # heel tab


def _bike(pen: _Pen, c: _Palette) -> None:
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


def _tshirt(pen: _Pen, c: _Palette, long_sleeves: bool) -> None:
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
    if long_sleeves:  # jacket: hood, zip, pockets, cuffs
        pen.poly(
            _curve([(0.4, 0.23), (0.43, 0.15), (0.5, 0.13), (0.57, 0.15), (0.6, 0.23)]), c.shade
        )
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
        pen.poly([(0.32, 0.55), (0.68, 0.49), (0.68, 0.53), (0.32, 0.59)], fill=c.tint)


def _swimsuit(pen: _Pen, c: _Palette) -> None:
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


def _racket(pen: _Pen, c: _Palette) -> None:
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


def _ball(pen: _Pen, c: _Palette) -> None:
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


def _dumbbell(pen: _Pen, c: _Palette) -> None:
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


def _skis(pen: _Pen, c: _Palette) -> None:
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


def _tent(pen: _Pen, c: _Palette) -> None:
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


def _backpack(pen: _Pen, c: _Palette) -> None:
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


def _box(pen: _Pen, c: _Palette) -> None:
    pen.ellipse(0.5, 0.8, 0.32, 0.03, fill=c.shadow)
    front = [(0.22, 0.42), (0.56, 0.5), (0.56, 0.8), (0.22, 0.71)]
    side = [(0.56, 0.5), (0.8, 0.4), (0.8, 0.69), (0.56, 0.8)]
    top = [(0.22, 0.42), (0.47, 0.32), (0.8, 0.4), (0.56, 0.5)]
    pen.poly(front, fill=c.base, outline=c.dark, width=0.006)
    pen.poly(side, fill=c.shade, outline=c.dark, width=0.006)
    pen.poly(top, fill=c.tint, outline=c.dark, width=0.006)
    pen.poly([(0.34, 0.37), (0.42, 0.34), (0.74, 0.42), (0.66, 0.45)], fill=(222, 196, 150))


_DRAW: dict[str, Callable[[_Pen, _Palette], None]] = {
    "runner": lambda p, c: _shoe(p, c, "runner"),
    "boot": lambda p, c: _shoe(p, c, "boot"),
    "sneaker": lambda p, c: _shoe(p, c, "sneaker"),
    "bike": _bike,
    "tshirt": lambda p, c: _tshirt(p, c, long_sleeves=False),
    "jacket": lambda p, c: _tshirt(p, c, long_sleeves=True),
    "swimsuit": _swimsuit,
    "racket": _racket,
    "ball": _ball,
    "dumbbell": _dumbbell,
    "skis": _skis,
    "tent": _tent,
    "backpack": _backpack,
    "box": _box,
}


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _draw_label(image: Image.Image, label: str, palette: _Palette) -> None:
    text = " ".join(label.split())
    if not text:
        return
    if len(text) > 32:
        text = text[:31] + "…"
    size = image.width
    font = _font(max(10, round(size * 0.042)))
    draw = ImageDraw.Draw(image)
    pad = round(size * 0.022)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    box_w, box_h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    left, top = pad * 2, size - box_h - pad * 2
    draw.rounded_rectangle(
        (left, top, left + box_w, top + box_h), radius=box_h // 2, fill=_WHITE, outline=palette.tint
    )
    draw.text((left + pad - x0, top + pad - y0), text, font=font, fill=_INK)


def render_product_picture(
    category_slug: str,
    colour_hex: str,
    label: str,
    size: int = 480,
    variant: int = 0,
    *,
    shape: str | None = None,
) -> bytes:
    """A PNG picture of a product: a flat drawing in its colour on a light background.

    The drawing depends on the category (see :data:`CATEGORY_SHAPES`; ``shape``
    forces one of :data:`SHAPES`). ``variant`` 0, 1 and 2 give three views: plain,
    mirrored on another background, and a close-up. ``label`` (a brand, a ref...) is
    printed in a pill at the bottom; pass ``""`` for none. Same arguments, same bytes.
    """
    if not 16 <= size <= 2048:
        raise ValueError("size must be between 16 and 2048 pixels")
    variant = variant % VARIANTS
    palette = _Palette(parse_hex(colour_hex), variant)
    kind = shape if shape in SHAPES else shape_for(category_slug)

    # Drawn at twice the size then halved (2x2 box filter): smooth edges, cheaply.
    side = size * _SUPERSAMPLE
    image = Image.new("RGB", (side, side), palette.background)
    zoom = 1.22 if variant == 2 else 1.0
    pen = _Pen(ImageDraw.Draw(image), side, zoom=zoom, focus=(0.5, 0.5))
    pen.ellipse(0.5, 0.47 if variant != 1 else 0.5, 0.4, fill=palette.halo)
    _DRAW[kind](pen, palette)
    if variant == 1:
        image = ImageOps.mirror(image)
    image = image.reduce(_SUPERSAMPLE)
    _draw_label(image, label, palette)

    out = BytesIO()
    image.save(out, format="PNG", compress_level=_PNG_LEVEL)
    return out.getvalue()


def _file_stem(key: str) -> str:
    if _SAFE_KEY.fullmatch(key) and ".." not in key:
        return key
    return sha256(key.encode("utf-8")).hexdigest()


def cached_picture(cache_dir: Path, key: str, render: Callable[[], bytes]) -> Path:
    """The PNG file for ``key`` in ``cache_dir``, rendering and storing it if missing.

    Keys made of letters, digits, ``.``, ``_`` and ``-`` are used as the file name (plus
    ``.png``); any other key is hashed, so a key can never point outside the folder.
    The file is written to a temporary name then renamed (``os.replace``): a reader
    sees the whole picture or none, even with several processes rendering at once.
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{_file_stem(key)}.png"
    if path.is_file():
        return path
    data = render()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def product_picture(
    db: Database, cache_dir: Path, ref: str, n: int, chosen: Callable[[dict], bool]
) -> Path | None:
    """The cached picture ``n`` of product ``ref`` in the colour of the first variant
    ``chosen`` accepts (else its first variant's), or None for an unknown product.
    Shared by the kiosk and the hub's web shop: the same product looks the same."""
    from app.core import catalog

    product = catalog.product_by_ref(db, ref[:40], "fr")
    if product is None:
        return None
    variants = catalog.variants(db, product["pk"], "fr")
    colour = next((v["colour_hex"] for v in variants if chosen(v)), None)
    colour = colour or (variants[0]["colour_hex"] if variants else "#888888")
    slug = product["category_slug"]
    return cached_picture(
        cache_dir,
        f"{slug}-{colour.lstrip('#')}-{n}",
        lambda: render_product_picture(slug, colour, product["brand"], variant=n),
    )
