"""Small inline-SVG charts for ``adaptune report``: scatter/line plots, a timeline, bars, parallel coordinates.

Every function returns one ``<svg>`` element as a string, to be pasted into an HTML page as is: no scripts,
no external fonts or images, tooltips through SVG ``<title>`` elements. Inputs may contain None / NaN / inf;
those points are left out. Colours come from :data:`PALETTE` (Tableau 10).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from .values import finite

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
STATUS_COLORS = {
    "completed": "#59a14f",
    "stopped": "#edc948",
    "error": "#e15759",
    "diverged": "#b07aa1",
    "running": "#4e79a7",
}
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'
MARGIN = {"left": 58, "right": 14, "top": 28, "bottom": 44}


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def fmt_tick(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{value:.4g}"


class Scale:
    """Maps data values in [lo, hi] (linear or log10) to pixels in [p0, p1]."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False):
        if log:
            lo, hi = max(lo, 1e-300), max(hi, 1e-300)
        if hi < lo:
            lo, hi = hi, lo
        if hi == lo:  # one value: widen so it sits in the middle
            if log:
                lo, hi = lo / 2, hi * 2
            else:
                pad = abs(lo) * 0.1 or 1.0
                lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.p0, self.p1, self.log = lo, hi, p0, p1, log

    def _t(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def __call__(self, value: float) -> float:
        if self.log:
            value = max(value, 1e-300)
        a, b = self._t(self.lo), self._t(self.hi)
        return self.p0 + (self._t(value) - a) / (b - a) * (self.p1 - self.p0)

    def ticks(self, count: int = 5) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            step = max(1, math.ceil((last - first) / 6))
            values = [10.0**e for e in range(first, last + 1, step)]
            return [v for v in values if self.lo * 0.999 <= v <= self.hi * 1.001] or [self.lo, self.hi]
        return nice_ticks(self.lo, self.hi, count)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _padded(values: Sequence[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    values = [v for v in values if finite(v) and (not log or v > 0)]
    if not values:
        return (0.1, 1.0) if log else (0.0, 1.0)
    lo, hi = min(values), max(values)
    if log:
        if lo == hi:
            return lo / 2, hi * 2
        factor = (hi / lo) ** pad
        return lo / factor, hi * factor
    span = (hi - lo) or (abs(hi) * 0.1 or 1.0)
    return lo - pad * span, hi + pad * span


def _svg_open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg class="chart" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title)}" {FONT} '
        f'font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="12.5" font-weight="600" '
        f'fill="#222">{escape(title)}</text>',
    ]


def _empty(width: float, height: float, title: str, message: str) -> str:
    parts = _svg_open(width, height, title)
    parts.append(
        f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" fill="#777">'
        f"{escape(message)}</text></svg>"
    )
    return "".join(parts)


@dataclass
class Series:
    """Points of one group. ``style``: points, line or step (a step line draws the running best)."""

    name: str
    points: list[tuple[float, float, str]]  # x, y, tooltip
    color: str = PALETTE[0]
    style: str = "points"
    marker: str = "circle"  # circle | ring | diamond | cross
    size: float = 3.6
    legend: bool = True


def _marker(kind: str, x: float, y: float, size: float, fill: str, tooltip: str) -> str:
    tip = f"<title>{escape(tooltip)}</title>" if tooltip else ""
    if kind == "ring":
        return (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size + 2.5:.1f}" fill="none" stroke="{fill}" '
            f'stroke-width="1.8">{tip}</circle>'
        )
    if kind == "diamond":
        s = size + 1.5
        return (
            f'<path d="M{x:.1f} {y - s:.1f}L{x + s:.1f} {y:.1f}L{x:.1f} {y + s:.1f}L{x - s:.1f} {y:.1f}Z" '
            f'fill="{fill}" stroke="#222" stroke-width="0.8">{tip}</path>'
        )
    if kind == "cross":
        s = size
        return (
            f'<path d="M{x - s:.1f} {y - s:.1f}L{x + s:.1f} {y + s:.1f}M{x - s:.1f} {y + s:.1f}L{x + s:.1f} '
            f'{y - s:.1f}" stroke="{fill}" stroke-width="2">{tip}</path>'
        )
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="{fill}" fill-opacity="0.82" stroke="#fff" '
        f'stroke-width="0.6">{tip}</circle>'
    )


Swatch = Callable[[float, float], str]  # draws a legend key for the label whose baseline starts at (x, y)


def _px(value: float) -> str:
    """A coordinate: whole-pixel layouts (ints) stay ints, computed positions get one decimal."""
    return str(value) if isinstance(value, int) else f"{value:.1f}"


def _legend(
    entries: Sequence[tuple[str, Swatch]],
    *,
    left: float,
    baseline: float,
    column_width: float,
    columns: int | None = None,
    label_dx: float = 16,
) -> list[str]:
    """A legend below a plot: a swatch then a name per entry, ``columns`` entries a row (default: one row), rows
    16 px apart, each entry's label ``label_dx`` right of its swatch."""
    per_row = columns or max(1, len(entries))
    parts = []
    for i, (name, swatch) in enumerate(entries):
        x = left + (i % per_row) * column_width
        y = baseline + (i // per_row) * 16
        parts.append(f'{swatch(x, y)}<text x="{_px(x + label_dx)}" y="{_px(y)}" fill="#222">{escape(name)}</text>')
    return parts


def _line_swatch(stroke: str, width: float) -> Swatch:
    return lambda x, y: (
        f'<line x1="{_px(x)}" x2="{_px(x + 14)}" y1="{_px(y - 4)}" y2="{_px(y - 4)}" stroke="{stroke}" '
        f'stroke-width="{width:g}"/>'
    )


def _box_swatch(fill: str) -> Swatch:
    return lambda x, y: f'<rect x="{_px(x)}" y="{_px(y - 9)}" width="12" height="10" fill="{fill}"/>'


def _series_swatch(series: Series) -> Swatch:
    """A line for a series drawn as a bare line, else the series' marker."""
    if series.style in ("line", "step") and series.marker == "none":
        return _line_swatch(series.color, 2)
    return lambda x, y: _marker(series.marker, x + 7, y - 4, 3.6, series.color, "")


def xy_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool = False,
    y_log: bool = False,
    width: float = 460,
    height: float = 300,
    x_categories: Sequence[str] = (),
    integer_x: bool = False,
    note: str = "",
) -> str:
    """A scatter / line chart with axes, grid, tooltips and a legend below the plot.

    With ``x_categories`` the x values are positions 0..n-1 labelled by those names (a categorical slice);
    ``integer_x`` keeps only whole-number ticks (trial numbers, freeze depths).
    """
    xs = [p[0] for s in series for p in s.points if finite(p[0]) and finite(p[1])]
    ys = [p[1] for s in series for p in s.points if finite(p[0]) and finite(p[1])]
    if not xs:
        return _empty(width, height, title, note or "no data")
    legend_items = [s for s in series if s.legend and s.name]
    legend_rows = math.ceil(len(legend_items) / 3) if legend_items else 0
    total_height = height + legend_rows * 16 + (6 if legend_rows else 0)
    left, right, top, bottom = MARGIN["left"], width - MARGIN["right"], MARGIN["top"], height - MARGIN["bottom"]
    if x_categories:
        sx = Scale(-0.5, len(x_categories) - 0.5, left, right)
    else:
        sx = Scale(*_padded(xs, x_log), left, right, log=x_log)
    sy = Scale(*_padded(ys, y_log), bottom, top, log=y_log)
    parts = _svg_open(width, total_height, title)
    parts.append(
        f'<rect x="{left}" y="{top}" width="{right - left:.1f}" height="{bottom - top:.1f}" fill="#fafafa" '
        f'stroke="#ccc"/>'
    )
    for tick in sy.ticks():
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{left - 5}" y="{y + 3.5:.1f}" text-anchor="end" fill="#444">{fmt_tick(tick)}</text>'
        )
    x_ticks: list[tuple[float, str]]
    if x_categories:
        x_ticks = [(float(i), name) for i, name in enumerate(x_categories)]
    else:
        ticks = sx.ticks()
        if integer_x:
            ticks = [t for t in ticks if float(t).is_integer()] or sorted({float(round(x)) for x in xs})
        x_ticks = [(t, fmt_tick(t)) for t in ticks]
    for tick, label in x_ticks:
        x = sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" fill="#444">'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 32:.1f}" text-anchor="middle" fill="#222">'
        f"{escape(x_label)}{' (log)' if x_log else ''}</text>"
    )
    cy = (top + bottom) / 2
    parts.append(
        f'<text x="14" y="{cy:.1f}" text-anchor="middle" fill="#222" transform="rotate(-90 14 {cy:.1f})">'
        f"{escape(y_label)}{' (log)' if y_log else ''}</text>"
    )
    for s in series:
        pts = [
            (sx(x), sy(y), tip)
            for x, y, tip in s.points
            if finite(x) and finite(y) and (not x_log or x > 0) and (not y_log or y > 0)
        ]
        if not pts:
            continue
        if s.style in ("line", "step"):
            path = f"M{pts[0][0]:.1f} {pts[0][1]:.1f}"
            for (_, y0, _), (x1, y1, _) in zip(pts, pts[1:]):
                path += f"L{x1:.1f} {y0:.1f}L{x1:.1f} {y1:.1f}" if s.style == "step" else f"L{x1:.1f} {y1:.1f}"
            parts.append(f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="1.8"/>')
            if s.marker == "none":
                continue
        for x, y, tip in pts:
            parts.append(_marker(s.marker, x, y, s.size, s.color, tip))
    parts += _legend(
        [(s.name, _series_swatch(s)) for s in legend_items],
        left=left,
        baseline=height + 10.0,  # a float: this chart writes its legend's coordinates with one decimal
        column_width=(right - left) / 3,
        columns=3,
        label_dx=18,
    )
    if note:
        parts.append(
            f'<text x="{right:.1f}" y="{top - 4}" text-anchor="end" fill="#555" font-size="10.5">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class Bar:
    start: float
    end: float
    color: str
    tooltip: str
    label: str = ""


def timeline(
    lanes: Sequence[tuple[str, Sequence[Bar]]],
    *,
    title: str,
    x_label: str = "seconds since start",
    width: float = 900,
    legend: Sequence[tuple[str, str]] = (),
) -> str:
    """Horizontal bars per lane (one lane per node); overlapping bars in a lane are stacked into rows."""
    rows: list[tuple[str, list[Bar]]] = []
    for name, bars in lanes:
        stacked: list[list[Bar]] = []
        for bar in sorted((b for b in bars if finite(b.start) and finite(b.end)), key=lambda b: b.start):
            for row in stacked:
                if row[-1].end <= bar.start:
                    row.append(bar)
                    break
            else:
                stacked.append([bar])
        for i, row in enumerate(stacked):
            rows.append((name if i == 0 else "", row))
    bars_all = [b for _, row in rows for b in row]
    if not bars_all:
        return _empty(width, 120, title, "no trial has start and end times")
    row_h, left, right, top = 18, 150, width - MARGIN["right"], MARGIN["top"]
    bottom = top + row_h * len(rows)
    height = bottom + 40 + (16 if legend else 0)
    sx = Scale(min(0.0, min(b.start for b in bars_all)), max(b.end for b in bars_all), left, right)
    parts = _svg_open(width, height, title)
    parts.append(
        f'<rect x="{left}" y="{top}" width="{right - left:.1f}" height="{bottom - top}" fill="#fafafa" stroke="#ccc"/>'
    )
    for tick in sx.ticks(8):
        x = sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#e3e3e3"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#444">{fmt_tick(tick)}</text>'
        )
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 30}" text-anchor="middle" fill="#222">'
        f"{escape(x_label)}</text>"
    )
    for i, (name, row) in enumerate(rows):
        y = top + i * row_h
        if name:
            if i:
                parts.append(f'<line x1="4" x2="{right:.1f}" y1="{y}" y2="{y}" stroke="#bbb"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" fill="#222">{escape(name)}</text>')
        for bar in row:
            x0, x1 = sx(bar.start), sx(bar.end)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(1.5, x1 - x0):.1f}" height="{row_h - 4}" '
                f'rx="2" fill="{bar.color}" stroke="#fff" stroke-width="0.5">'
                f"<title>{escape(bar.tooltip)}</title></rect>"
            )
            if bar.label and x1 - x0 > 7 * len(bar.label):
                parts.append(
                    f'<text x="{x0 + 3:.1f}" y="{y + 13}" fill="#111" font-size="10">{escape(bar.label)}</text>'
                )
    parts += _legend(
        [(name, _box_swatch(fill)) for name, fill in legend], left=left, baseline=bottom + 48, column_width=110
    )
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: float = 420,
    max_value: float | None = None,
    fill: str = PALETTE[0],
) -> str:
    """Horizontal bars with their value printed, largest first as given."""
    items = [(name, value) for name, value in items if finite(value)]
    if not items:
        return _empty(width, 90, title, "nothing to show")
    row_h, left, right, top = 20, 130, width - 60, MARGIN["top"]
    height = top + row_h * len(items) + 10
    top_value = max_value if max_value is not None else max(max(v for _, v in items), 1e-12)
    parts = _svg_open(width, height, title)
    for i, (name, value) in enumerate(items):
        y = top + i * row_h
        w = max(0.0, value) / top_value * (right - left) if top_value > 0 else 0.0
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="#222">{escape(name)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{fill}">'
            f"<title>{escape(name)}: {value:.3f}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 14}" fill="#444">{value:.3f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class Axis:
    """One vertical axis of a parallel-coordinates chart; ``values`` has one entry per line (None = unused)."""

    name: str
    values: list[float | None]
    log: bool = False
    labels: dict[float, str] = field(default_factory=dict)  # tick labels for categorical axes


def parallel_coordinates(
    axes: Sequence[Axis],
    colors: Sequence[str],
    tooltips: Sequence[str],
    *,
    title: str,
    width: float = 900,
    height: float = 320,
    legend: Sequence[tuple[str, str]] = (),
) -> str:
    """One polyline per item across the axes; a value that does not apply sits on the axis's ``n/a`` slot."""
    axes = [a for a in axes if any(finite(v) for v in a.values)]
    if len(axes) < 2 or not colors:
        return _empty(width, 120, title, "fewer than two hyperparameters vary")
    left, right, top = 70, width - 70, MARGIN["top"] + 10
    bottom = height - 56
    na_y = bottom + 18
    xs = [left + i * (right - left) / (len(axes) - 1) for i in range(len(axes))]
    scales = [Scale(*_padded([v for v in a.values if finite(v)], a.log, 0.02), bottom, top, log=a.log) for a in axes]
    total_height = height + (16 if legend else 0)
    parts = _svg_open(width, total_height, title)
    for i in range(len(colors)):
        points = []
        for axis, scale, x in zip(axes, scales, xs):
            value = axis.values[i]
            y = scale(float(value)) if finite(value) and (not axis.log or float(value) > 0) else na_y
            points.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{colors[i]}" stroke-width="1.6" '
            f'stroke-opacity="0.75"><title>{escape(tooltips[i])}</title></polyline>'
        )
    for axis, scale, x in zip(axes, scales, xs):
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" font-weight="600" fill="#222">'
            f"{escape(axis.name)}{' (log)' if axis.log else ''}</text>"
        )
        present = sorted({float(v) for v in axis.values if finite(v)})
        if axis.labels:
            ticks = list(axis.labels.items())
        elif len(present) == 1:
            ticks = [(present[0], fmt_tick(present[0]))]
        else:
            plain = scale.ticks(4)
            if all(v.is_integer() for v in present):
                plain = [t for t in plain if float(t).is_integer()] or present
            ticks = [(t, fmt_tick(t)) for t in plain]
        for tick, label in ticks:
            y = scale(tick)
            parts.append(
                f'<line x1="{x - 3:.1f}" x2="{x:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#333"/>'
                f'<text x="{x - 5:.1f}" y="{y + 3.5:.1f}" text-anchor="end" fill="#444">'
                f"{escape(label)}</text>"
            )
        if any(not finite(v) for v in axis.values):
            parts.append(f'<text x="{x - 5:.1f}" y="{na_y + 3.5:.1f}" text-anchor="end" fill="#888">n/a</text>')
    parts += _legend(
        [(name, _line_swatch(fill, 2.5)) for name, fill in legend],
        left=left,
        baseline=height + 6,
        column_width=130,
        label_dx=18,
    )
    parts.append("</svg>")
    return "".join(parts)
