"""Hand-drawn inline SVG charts for the drift report (pure: numbers in, markup out, every label escaped)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape

REFERENCE = "#94a3b8"
CURRENT = "#2563eb"
DRIFTED = "#dc2626"
BAND = "#bbf7d0"
ESTIMATE = "#d97706"


def num(value: float | None, digits: int = 3) -> str:
    """Short human form of a number (3 significant digits), an en dash for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.{digits}g}"


def bin_labels(kind: str, edges: Sequence[float], bins: int) -> list[str]:
    """One label per bin: category values for categorical bins, intervals between interior edges otherwise."""
    if kind == "categorical":
        return [num(edge) for edge in edges][:bins] + ["other"] * max(0, bins - len(edges))
    if bins <= 1 or not edges:
        return ["all"] * bins
    inner = [f"{num(lo)} – {num(hi)}" for lo, hi in zip(edges, edges[1:])]
    return [f"< {num(edges[0])}", *inner, f"≥ {num(edges[-1])}"][:bins]


def histogram(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float], *, drifted: bool, title: str
) -> str:
    """Grouped bars, reference beside current share per bin; each bar's tooltip names its bin and share."""
    width, height, left, bottom, top = 340, 170, 34, 34, 8
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max([*reference, *current, 1e-9])
    slot = plot_w / max(1, len(labels))
    colour = DRIFTED if drifted else CURRENT
    parts = [
        _svg_open(width, height, title),
        *_y_axis(left, top, plot_h, [peak * k / 4 for k in range(5)], width - 6, percent=True),
    ]
    for i, label in enumerate(labels):
        x = left + i * slot
        for j, (share, fill, who) in enumerate(((reference, REFERENCE, "reference"), (current, colour, "current"))):
            value = share[i] if i < len(share) else 0.0
            h = plot_h * value / peak
            tip = f"{label}: {who} {100 * value:.1f}%"
            parts.append(
                f'<rect x="{x + slot * (0.1 + 0.4 * j):.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{slot * 0.4:.1f}" height="{h:.1f}" fill="{fill}"><title>{escape(tip)}</title></rect>'
            )
    parts.extend(_x_labels(labels, left, slot, top + plot_h))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    """One line of a time chart: y values aligned with the chart's x values (None: no point there)."""

    name: str
    values: Sequence[float | None]
    colour: str
    dashed: bool = False


def time_chart(
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    x_labels: tuple[str, str] = ("", ""),
    title: str,
) -> str:
    """Lines over time on the part of the 0..1 scale the values use, with an optional shaded band behind them."""
    width, height, left, bottom, top = 720, 220, 40, 26, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    lo, hi = min(xs, default=0.0), max(xs, default=1.0)
    y_lo, y_hi = y_span([v for s in series for v in s.values] + [v for side in band or () for v in side])

    def at(x: float, y: float) -> tuple[float, float]:
        fx = 0.5 if hi == lo else (x - lo) / (hi - lo)
        fy = (min(y_hi, max(y_lo, y)) - y_lo) / (y_hi - y_lo)
        return left + fx * plot_w, top + plot_h * (1 - fy)

    ticks = [y_lo + k / 10 for k in range(round((y_hi - y_lo) * 10) + 1)]
    parts = [_svg_open(width, height, title), *_y_axis(left, top, plot_h, ticks, width - 10, percent=False)]
    if band is not None:
        pixels = [at(x, 0.0)[0] for x in xs]
        parts.extend(_band([left, *pixels, left + plot_w], band, lambda y: at(lo, y)[1]))
    for s in series:
        parts.extend(_line(xs, s, at))
    baseline = top + plot_h + 16
    parts.append(f'<text x="{left}" y="{baseline}" class="tick">{escape(x_labels[0])}</text>')
    parts.append(f'<text x="{width - 10}" y="{baseline}" class="tick" text-anchor="end">{escape(x_labels[1])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _y_axis(left: int, top: int, plot_h: int, ticks: Sequence[float], right: int, *, percent: bool) -> list[str]:
    """Grid lines and labels at `ticks`, the first at the bottom of the plot and the last at its top."""
    out, bottom, peak = [], ticks[0], ticks[-1]
    for value in ticks:
        y = top + plot_h * (1 - (value - bottom) / (peak - bottom))
        text = (f"{100 * value:.0f}%" if peak >= 0.2 else f"{100 * value:.1f}%") if percent else f"{value:.1f}"
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" class="tick" text-anchor="end">{text}</text>')
    return out


def y_span(values: Iterable[float | None]) -> tuple[float, float]:
    """The 0..1 scale narrowed to the tenths around the values, so a drop of a few points is visible."""
    known = [v for v in values if v is not None]
    if not known:
        return 0.0, 1.0
    low, high = math.floor(min(known) * 10 - 0.5) / 10, math.ceil(max(known) * 10 + 0.5) / 10
    return max(0.0, low), min(1.0, high)


def _x_labels(labels: Sequence[str], left: int, slot: float, y: float) -> list[str]:
    step = max(1, math.ceil(len(labels) / 5))
    out = []
    for i in range(0, len(labels), step):
        x = left + (i + 0.5) * slot
        out.append(f'<text x="{x:.1f}" y="{y + 12:.1f}" class="tick" text-anchor="middle">{escape(labels[i])}</text>')
    return out


def _band(
    pixels: Sequence[float], band: tuple[Sequence[float | None], Sequence[float | None]], y_at: Callable[[float], float]
) -> list[str]:
    """One shaded step per window reaching half-way to its neighbours (pixels: plot left, windows, plot right)."""
    bounds = [pixels[0], *[(a + b) / 2 for a, b in zip(pixels[1:-2], pixels[2:-1])], pixels[-1]]
    out = []
    for i, (lo, hi) in enumerate(zip(*band)):
        if lo is None or hi is None:
            continue
        y_hi, y_lo = y_at(hi), y_at(lo)
        tip = escape(f"reference band {num(lo)} – {num(hi)}")
        out.append(
            f'<rect x="{bounds[i]:.1f}" y="{y_hi:.1f}" width="{bounds[i + 1] - bounds[i]:.1f}" '
            f'height="{max(0.5, y_lo - y_hi):.1f}" fill="{BAND}" stroke="{BAND}"><title>{tip}</title></rect>'
        )
    return out


def _line(xs: Sequence[float], s: Series, at: Callable[[float, float], tuple[float, float]]) -> list[str]:
    """A polyline per run of known values: a window without a value breaks the line instead of bridging it."""
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    out, run = [], []
    for x, y in [*zip(xs, s.values), (0.0, None)]:
        if y is not None:
            run.append(at(x, y))
            px, py = run[-1]
            tip = escape(f"{s.name}: {num(y)}")
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{s.colour}"><title>{tip}</title></circle>')
        elif run:
            if len(run) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                out.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>')
            run = []
    return out
