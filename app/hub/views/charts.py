"""Small server-side SVG charts for the console: no library, no CDN, no script.

Each chart is one ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says
in words what it shows, so a screen reader gets the numbers too. Colours come from the
Okabe-Ito palette (distinguishable with the common colour-vision deficiencies) and the
lines also differ by dash pattern, so no series is told apart by colour alone. Only
presentation attributes (``fill=``, ``stroke=``): the console's CSP forbids inline
``style``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4")
_ids = itertools.count(1)


@dataclass
class Series:
    """One line or one bar colour: a label and its points ``(x, y)`` (y None: a gap)."""

    label: str
    points: Sequence[tuple[float, float | None]]


def style_of(index: int) -> tuple[str, str]:
    """``(colour, dash pattern)`` of the ``index``-th series (legends use the same)."""
    return PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]


def nice_max(value: float, candidates: Sequence[float] | None = None) -> float:
    """A round top for an axis >= ``value``: the first of ``candidates`` that fits, else
    2, 4 or 8 times a power of ten (a quarter of each is a round grid step too)."""
    for top in candidates or ():
        if value <= top:
            return float(top)
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (2, 4, 8, 20):
        if value <= m * exp + 1e-9:
            return m * exp
    return 20 * exp


# Axis tops for durations in seconds: a quarter of each reads well (15 s, 5 min, 1 h…).
DURATION_TOPS = (4, 8, 20, 40, 60, 120, 240, 600, 1200, 2400, 3600, 7200, 14400, 28800, 86400)


def _drawable(value: float | None) -> bool:
    """A finite number: a value a store sent that is not one is a gap, never a crash."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _frame(uid: str, title: str, desc: str, width: int, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" font-family="DejaVu Sans, sans-serif" '
        f'font-size="12">'
        f'<title id="{uid}-t">{escape(title)}</title><desc id="{uid}-d">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _axes(
    left: int,
    top: int,
    plot_w: int,
    plot_h: int,
    y_max: float,
    y_format: Callable[[float], str],
    x_ticks: Sequence[tuple[float, str]],
    x_to_px: Callable[[float], float],
) -> list[str]:
    out = []
    for i in range(5):
        value = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="#dde3e9" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4a5866">'
            f"{escape(y_format(value))}</text>"
        )
    for x, label in x_ticks:
        px = x_to_px(x)
        out.append(
            f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{top + plot_h + 4}" '
            f'stroke="#4a5866"/><text x="{px:.1f}" y="{top + plot_h + 17}" '
            f'text-anchor="middle" fill="#4a5866">{escape(label)}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#4a5866" stroke-width="1"/>'
    )
    return out


def line_chart(
    title: str,
    desc: str,
    series: Sequence[Series],
    *,
    x_min: float,
    x_max: float,
    x_ticks: Sequence[tuple[float, str]],
    y_format: Callable[[float], str] = _fmt,
    max_gap: float | None = None,
    min_top: float = 4,
    tops: Sequence[float] | None = None,
    width: int = 640,
    height: int = 240,
) -> Markup:
    """Lines over a shared x range; a point farther than ``max_gap`` from the previous
    one starts a new line (a store that said nothing has no line there). The y axis
    starts at 0 and ends at a round value of at least ``min_top``."""
    uid = f"chart{next(_ids)}"
    left, right, top, bottom = 56, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [y for s in series for _, y in s.points if _drawable(y)]
    # At least min_top, so whole numbers (seconds, pickups) get four distinct grid lines.
    y_max = nice_max(max([*values, min_top]), tops)
    span = (x_max - x_min) or 1.0

    def x_px(x: float) -> float:
        return left + plot_w * (x - x_min) / span

    def y_px(y: float) -> float:
        return top + plot_h - plot_h * min(y, y_max) / y_max

    body = _axes(left, top, plot_w, plot_h, y_max, y_format, x_ticks, x_px)
    for index, s in enumerate(series):
        colour, dash = style_of(index)
        segments: list[list[tuple[float, float]]] = []
        previous: float | None = None
        for x, y in s.points:
            if not (_drawable(y) and _drawable(x)):
                previous = None
                continue
            if previous is None or (max_gap is not None and x - previous > max_gap):
                segments.append([])
            segments[-1].append((x_px(x), y_px(y)))
            previous = x
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f"<g><title>{escape(s.label)}</title>")
        for seg in segments:
            if len(seg) == 1:
                (px, py) = seg[0]
                body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
            else:
                pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in seg)
                body.append(
                    f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                    f'stroke-width="2" stroke-linejoin="round"{dash_attr}/>'
                )
        body.append("</g>")
    return _frame(uid, title, desc, width, height, body)


def bar_chart(
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_format: Callable[[float], str] = _fmt,
    width: int = 640,
    height: int = 240,
    label_every: int = 1,
    min_top: float = 4,
) -> Markup:
    """Grouped bars: one group per category, one bar per series (y of point i)."""
    uid = f"chart{next(_ids)}"
    left, right, top, bottom = 44, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [y for s in series for _, y in s.points if _drawable(y)]
    # At least min_top, so whole numbers (seconds, pickups) get four distinct grid lines.
    y_max = nice_max(max([*values, min_top]))
    n = max(len(categories), 1)
    group_w = plot_w / n
    bar_w = max(1.0, (group_w * 0.8) / max(len(series), 1))
    ticks = [(i + 0.5, c) for i, c in enumerate(categories) if i % label_every == 0]
    body = _axes(left, top, plot_w, plot_h, y_max, y_format, ticks, lambda x: left + group_w * x)
    for index, s in enumerate(series):
        colour, _dash = style_of(index)
        body.append(f"<g><title>{escape(s.label)}</title>")
        for i, (_x, y) in enumerate(s.points):
            if not y or not _drawable(y) or i >= len(categories):
                continue
            h = plot_h * min(y, y_max) / y_max
            x = left + group_w * i + group_w * 0.1 + bar_w * index
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(s.label)}, '
                f"{escape(categories[i])} : {escape(y_format(y))}</title></rect>"
            )
        body.append("</g>")
    return _frame(uid, title, desc, width, height, body)


def swatch(index: int, kind: str = "line") -> Markup:
    """A small legend sample drawn like series ``index``."""
    colour, dash = style_of(index)
    if kind == "bar":
        return Markup(
            f'<svg viewBox="0 0 24 12" width="24" height="12" aria-hidden="true">'
            f'<rect x="4" y="1" width="16" height="10" fill="{colour}"/></svg>'
        )
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return Markup(
        f'<svg viewBox="0 0 24 12" width="24" height="12" aria-hidden="true">'
        f'<line x1="0" y1="6" x2="24" y2="6" stroke="{colour}" stroke-width="3"{dash_attr}/>'
        f"</svg>"
    )
