"""Charts as inline SVG, drawn in Python: data in, an SVG string out (no JavaScript, no CDN).

Every chart is an ``<svg role="img">`` labelled by its own ``<title>`` and ``<desc>``; the page
shows the same numbers in a table, so nothing is conveyed by the picture (or by colour) alone.
Every piece of text that reaches the SVG goes through :func:`esc` — labels come from data.
These functions are pure: they touch no database and no request.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "Summary",
    "bar_chart",
    "box_chart",
    "esc",
    "fmt",
    "line_chart",
    "summarise",
]

#: Okabe–Ito colours, distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")

_WIDTH = 640
_LEFT = 190  # room for category labels
_RIGHT = 70  # room for value labels
_TOP = 16
_LABEL_MAX = 28


def esc(text: object) -> str:
    """Text for SVG character data or attribute values (``& < > " '`` escaped)."""
    return escape(str(text), quote=True)


def fmt(value: float) -> str:
    """``12.0`` -> ``12``, ``2.345`` -> ``2.35``, for labels and tables."""
    if not math.isfinite(value):
        return "–"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…"


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above ``value`` (1 for nothing)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)  # pragma: no cover - the loop always returns


def _open(chart_id: str, title: str, desc: str, height: int) -> list[str]:
    cid = esc(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id="{cid}" '
        f'viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" '
        f'aria-labelledby="{cid}-title {cid}-desc" font-family="sans-serif" font-size="12">',
        f'<title id="{cid}-title">{esc(title)}</title>',
        f'<desc id="{cid}-desc">{esc(desc)}</desc>',
    ]


def _empty(chart_id: str, title: str, desc: str) -> str:
    parts = _open(chart_id, title, desc, 60)
    parts.append('<text x="10" y="35" fill="#444">No data to show.</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axis(x0: float, width: float, top: float, bottom: float, top_value: float, unit: str) -> str:
    """Vertical grid lines with tick labels under them, for a horizontal scale 0…top_value."""
    parts = []
    for i in range(5):
        value = top_value * i / 4
        x = x0 + width * i / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            'stroke="#ccc" stroke-width="1" class="chart__grid"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" fill="#444">'
            f"{esc(fmt(value))}{esc(unit)}</text>"
        )
    return "".join(parts)


def _legend(names: Sequence[str], y: float, x0: float = _LEFT) -> str:
    parts = []
    x = float(x0)
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16:.1f}" y="{y:.1f}" fill="#222">{esc(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return "".join(parts)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    unit: str = "",
) -> str:
    """Horizontal bars: one row per label, one bar per series in each row (grouped)."""
    if not labels or not series:
        return _empty(chart_id, title, desc)
    bar_h, gap = 16, 10
    row_h = bar_h * len(series) + gap
    plot_w = _WIDTH - _LEFT - _RIGHT
    legend_h = 24 if len(series) > 1 else 0
    plot_bottom = _TOP + legend_h + row_h * len(labels)
    height = int(plot_bottom + 24)
    top_value = _nice_max(max((v for _, values in series for v in values), default=0))
    parts = _open(chart_id, title, desc, height)
    if legend_h:
        parts.append(_legend([name for name, _ in series], _TOP + 10))
    plot_top = _TOP + legend_h
    parts.append(_axis(_LEFT, plot_w, plot_top, plot_bottom, top_value, unit))
    for row, label in enumerate(labels):
        y0 = plot_top + row * row_h + gap / 2
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y0 + bar_h * len(series) / 2 + 4:.1f}" '
            f'text-anchor="end" fill="#222">{esc(_short(label))}</text>'
        )
        for i, (name, values) in enumerate(series):
            value = values[row] if row < len(values) else 0.0
            w = plot_w * value / top_value
            y = y0 + i * bar_h
            colour = PALETTE[i % len(PALETTE)]
            parts.append(
                f'<rect x="{_LEFT}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{colour}" class="chart__bar"><title>{esc(label)}, {esc(name)}: '
                f"{esc(fmt(value))}{esc(unit)}</title></rect>"
                f'<text x="{_LEFT + w + 4:.1f}" y="{y + bar_h - 5:.1f}" fill="#222">'
                f"{esc(fmt(value))}{esc(unit)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Summary:
    """Five numbers of a distribution, and how many values it has."""

    n: int
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float


def summarise(values: Sequence[float]) -> Summary | None:
    """Minimum, quartiles (inclusive method) and maximum; None for no values."""
    data = sorted(float(v) for v in values if math.isfinite(v))
    if not data:
        return None
    if len(data) == 1:
        v = data[0]
        return Summary(1, v, v, v, v, v)
    q1, median, q3 = statistics.quantiles(data, n=4, method="inclusive")
    return Summary(len(data), data[0], q1, median, q3, data[-1])


def box_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    groups: Sequence[tuple[str, Sequence[float]]],
    unit: str = " h",
) -> str:
    """One horizontal box per group: whiskers from minimum to maximum, the box from the first to
    the third quartile, a thick line at the median."""
    summaries = [(label, summarise(values)) for label, values in groups]
    if not any(s for _, s in summaries):
        return _empty(chart_id, title, desc)
    row_h = 40
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_bottom = _TOP + row_h * len(summaries)
    height = int(plot_bottom + 24)
    top_value = _nice_max(max(s.maximum for _, s in summaries if s))
    parts = _open(chart_id, title, desc, height)
    parts.append(_axis(_LEFT, plot_w, _TOP, plot_bottom, top_value, unit))

    def x(v: float) -> float:
        return _LEFT + plot_w * v / top_value

    for row, (label, s) in enumerate(summaries):
        mid = _TOP + row * row_h + row_h / 2
        count = f"n={s.n}" if s else "n=0"
        parts.append(
            f'<text x="{_LEFT - 8}" y="{mid - 2:.1f}" text-anchor="end" fill="#222">'
            f"{esc(_short(label))}</text>"
            f'<text x="{_LEFT - 8}" y="{mid + 12:.1f}" text-anchor="end" fill="#444">'
            f"{esc(count)}</text>"
        )
        if s is None:
            continue
        colour = PALETTE[row % len(PALETTE)]
        summary_text = (
            f"{label}: minimum {fmt(s.minimum)}, first quartile {fmt(s.q1)}, median "
            f"{fmt(s.median)}, third quartile {fmt(s.q3)}, maximum {fmt(s.maximum)}{unit}"
        )
        parts.append(
            f'<g class="chart__box"><title>{esc(summary_text)}</title>'
            f'<line x1="{x(s.minimum):.1f}" y1="{mid:.1f}" x2="{x(s.maximum):.1f}" '
            f'y2="{mid:.1f}" stroke="#222" stroke-width="1"/>'
            f'<line x1="{x(s.minimum):.1f}" y1="{mid - 6:.1f}" x2="{x(s.minimum):.1f}" '
            f'y2="{mid + 6:.1f}" stroke="#222" stroke-width="1"/>'
            f'<line x1="{x(s.maximum):.1f}" y1="{mid - 6:.1f}" x2="{x(s.maximum):.1f}" '
            f'y2="{mid + 6:.1f}" stroke="#222" stroke-width="1"/>'
            f'<rect x="{x(s.q1):.1f}" y="{mid - 11:.1f}" '
            f'width="{max(x(s.q3) - x(s.q1), 1):.1f}" height="22" fill="{colour}" '
            'fill-opacity="0.6" stroke="#222" stroke-width="1"/>'
            f'<line x1="{x(s.median):.1f}" y1="{mid - 11:.1f}" x2="{x(s.median):.1f}" '
            f'y2="{mid + 11:.1f}" stroke="#000" stroke-width="3"/>'
            f'<text x="{x(s.maximum) + 6:.1f}" y="{mid + 4:.1f}" fill="#222">'
            f"median {esc(fmt(s.median))}{esc(unit)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str = " h",
) -> str:
    """Lines over categories (e.g. ISO weeks); a missing value (None) breaks the line."""
    values = [v for _, vs in series for v in vs if v is not None]
    if not x_labels or not values:
        return _empty(chart_id, title, desc)
    left, right, top = 60, 20, _TOP + 24
    plot_w = _WIDTH - left - right
    plot_h = 200
    bottom = top + plot_h
    height = bottom + 40
    top_value = _nice_max(max(values))
    parts = _open(chart_id, title, desc, height)
    parts.append(_legend([name for name, _ in series], _TOP + 10, left))
    for i in range(5):
        value = top_value * i / 4
        y = bottom - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ccc" '
            'stroke-width="1" class="chart__grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
            f"{esc(fmt(value))}{esc(unit)}</text>"
        )
    step = plot_w / max(len(x_labels) - 1, 1)

    def px(i: int) -> float:
        return left + (step * i if len(x_labels) > 1 else plot_w / 2)

    def py(v: float) -> float:
        return bottom - plot_h * v / top_value

    every = max(1, math.ceil(len(x_labels) / 8))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == len(x_labels) - 1:
            parts.append(
                f'<text x="{px(i):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#444">'
                f"{esc(_short(label))}</text>"
            )
    for s, (name, vs) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        run: list[str] = []
        segments: list[list[str]] = [run]
        for i, v in enumerate(vs):
            if v is None:
                run = []
                segments.append(run)
                continue
            run.append(f"{px(i):.1f},{py(v):.1f}")
            label = x_labels[i] if i < len(x_labels) else ""
            parts.append(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3.5" fill="{colour}">'
                f"<title>{esc(name)}, {esc(label)}: {esc(fmt(v))}{esc(unit)}</title></circle>"
            )
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    'stroke-width="2" class="chart__line"/>'
                )
    parts.append("</svg>")
    return "".join(parts)
