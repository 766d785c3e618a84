"""Load-test artefacts that need no plotting library: a latency line chart as plain SVG text and
metrics tables as CSV (what the Locust harness attaches next to its markdown summary)."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from reports.model import LatencyChart, MetricsTable
from reports.render import render_template

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass
class _Tick:
    pos: float
    label: str


@dataclass
class _Line:
    label: str
    color: str
    points: str


def nice_ceiling(value: float) -> float:
    """The next 1/2/5 × 10^k at or above value, so axis ticks read as round numbers."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10 ** exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))


def render_chart_svg(chart: LatencyChart, *, width: int = 720, height: int = 320) -> str:
    left, right, top, bottom = 56, width - 110, 28, height - 34
    xs = [x for pts in chart.series.values() for x, _ in pts] or [0.0]
    ys = [y for pts in chart.series.values() for _, y in pts] or [0.0]
    x_max, y_max = nice_ceiling(max(xs)), nice_ceiling(max(ys))

    def px(x: float) -> float:
        return round(left + (right - left) * x / x_max, 1)

    def py(y: float) -> float:
        return round(bottom - (bottom - top) * y / y_max, 1)

    ticks = 5
    y_ticks = [_Tick(py(y_max * i / ticks), f"{y_max * i / ticks:g}") for i in range(ticks + 1)]
    x_ticks = [_Tick(px(x_max * i / ticks), f"{x_max * i / ticks:g}") for i in range(ticks + 1)]
    lines = [_Line(label, PALETTE[i % len(PALETTE)],
                   " ".join(f"{px(x)},{py(y)}" for x, y in sorted(points)))
             for i, (label, points) in enumerate(chart.series.items())]
    view = {"title": chart.title, "y_label": chart.y_label, "width": width, "height": height,
            "left": left, "right": right, "top": top, "bottom": bottom,
            "x_ticks": x_ticks, "y_ticks": y_ticks, "lines": lines}
    return render_template("chart.svg.j2", c=view)


def write_csv(table: MetricsTable, path: Path) -> Path:
    """Numbers stay machine-readable here (no thousands separators, unlike the markdown)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        writer.writerows(["" if v is None else v for v in row] for row in table.rows)
    return path

