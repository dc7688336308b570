"""Minimal inline SVG line charts (no plotting library, so the report opens offline anywhere)."""

from __future__ import annotations

from html import escape

import numpy as np

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")


def line_chart(title: str, x_h: np.ndarray, series: dict[str, np.ndarray], y_label: str,
               width: int = 900, height: int = 260, stacked: bool = False) -> str:
    left, right, top, bottom = 70, 160, 28, 36
    pw, ph = width - left - right, height - top - bottom
    data = {k: np.asarray(v, float) for k, v in series.items() if len(v)}
    if stacked:
        acc = np.zeros(len(x_h))
        for k in data:
            acc = acc + data[k]
            data[k] = acc.copy()
    ymax = max((float(np.nanmax(v)) for v in data.values() if v.size), default=1.0) or 1.0
    ymax *= 1.05
    xmax = float(x_h[-1]) if len(x_h) and x_h[-1] > 0 else 1.0
    parts = [f'<svg width="{width}" height="{height}" role="img">',
             f'<text x="{left}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for i in range(5):
        y = top + ph - ph * i / 4
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(ymax * i / 4)}</text>')
    step_h = 24 if xmax > 48 else (6 if xmax > 12 else 1)
    for h in np.arange(0, xmax + 1e-9, step_h):
        x = left + pw * h / xmax
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{h:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" font-size="11" text-anchor="middle">hours</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" font-size="11" transform="rotate(-90 14 {top + ph / 2})" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, v) in enumerate(data.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{left + pw * x / xmax:.1f},{top + ph - ph * (y / ymax):.1f}" for x, y in zip(x_h, v))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{pts}"/>')
        ly = top + 12 + 14 * i
        parts.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{left + pw + 24}" y="{ly + 1}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}" if v >= 10 else f"{v:.2f}"
