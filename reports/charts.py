"""Report charts drawn with matplotlib (Agg, no display) and written as PNG and SVG, plus metrics tables
as CSV (what the Locust harness and the lock monitor attach next to their markdown summaries).

Every chart labels both axes with their units. Series that can lie on top of each other (the lock
timeline's holders under its entries) stay distinguishable: each series has its own colour, line
style and marker, wide series are drawn first and translucent, narrow ones on top. A latency
distribution (x axis "percentile") is drawn on a "nines" scale, so p99, p99.9 and p99.99 are apart
instead of crammed against p100.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a display
matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: searchable, selectable, small
matplotlib.rcParams["svg.hashsalt"] = "spidertwin"  # stable ids: the same chart gives the same file

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedFormatter, FixedLocator  # noqa: E402

from reports.model import LatencyChart, MetricsTable  # noqa: E402

FORMATS = ("png", "svg")
# (colour, line style, marker, width, alpha) per series, in order: no two look alike in grey either
STYLES = (("#1f77b4", "-", "o", 1.8, 1.0), ("#d62728", "--", "s", 1.8, 1.0), ("#2ca02c", ":", "^", 2.2, 1.0),
          ("#ff7f0e", "-.", "D", 1.8, 1.0), ("#9467bd", (0, (5, 1, 1, 1)), "v", 1.8, 1.0),
          ("#8c564b", (0, (1, 1)), "P", 1.8, 1.0))
UNITS = {"ms": "latency (ms)", "s": "time (s)", "count": "count"}
_PERCENTILE_TICKS = (50, 90, 99, 99.9, 99.99, 99.999)


def _is_count(chart: LatencyChart) -> bool:
    """Counts change in steps: drawn as steps, not slopes between samples."""
    return chart.y_label == "count" or chart.y_label.endswith("(count)")


def y_axis_label(chart: LatencyChart) -> str:
    return UNITS.get(chart.y_label, chart.y_label)


def _nines(p: float) -> float:
    """Position of percentile p on a nines scale: 50 -> 0.3, 90 -> 1, 99 -> 2, 99.9 -> 3."""
    return -math.log10(max(1e-6, 1 - min(p, 99.9999) / 100))


def _percentile_axis(chart: LatencyChart) -> tuple[dict[float, float], list[float], list[str]]:
    """x position of every percentile, tick positions and labels. p100 (the maximum) has no place on a
    nines scale: it goes one step past the largest other percentile, labelled "max"."""
    values = sorted({x for pts in chart.series.values() for x, _ in pts})
    finite = [p for p in values if p < 100]
    top = max([_nines(p) for p in finite] + [1.0])
    beyond = math.floor(top + 1e-9) + 1  # one step past: _nines(99) is 1.9999..., not 2
    where = {p: (_nines(p) if p < 100 else beyond) for p in values}
    ticks = [p for p in _PERCENTILE_TICKS if finite and p <= max(finite) * 1.0000001]
    positions, labels = [_nines(p) for p in ticks], [f"p{p:g}" for p in ticks]
    if any(p >= 100 for p in values):
        positions.append(beyond)
        labels.append("max")
    return where, positions, labels


def _draw_order(chart: LatencyChart) -> list[tuple[int, str]]:
    """Series by falling peak, then area, then declaration from last: the one that covers the others
    (the lock timeline's entries = holders + waiters) is drawn first, under them."""
    def cover(item: tuple[int, str]) -> tuple[float, float, int]:
        points = chart.series[item[1]]
        return (-max((y for _, y in points), default=0.0), -sum(y for _, y in points), -item[0])

    return sorted(enumerate(chart.series), key=cover)


def figure(chart: LatencyChart):
    """The chart as a matplotlib Figure (callers save or close it)."""
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110, layout="constrained")
    percentile_x = chart.x_label.lower().startswith("percentile")
    where, tick_at, tick_text = _percentile_axis(chart) if percentile_x else ({}, [], [])
    many = len(chart.series) > 1
    order = _draw_order(chart)
    handles = {}
    for index, label in order:
        color, style, marker, width, alpha = STYLES[index % len(STYLES)]
        points = sorted(chart.series[label])
        xs = [where[x] if percentile_x else x for x, _ in points]
        ys = [y for _, y in points]
        if many and label == order[0][1]:
            width, alpha = 5.0, 0.35  # the covering series, wide and underneath: the ones on it stay visible
        handles[label], = ax.plot(xs, ys, label=label, color=color, linestyle=style, linewidth=width, alpha=alpha,
                marker=marker, markersize=4 if len(points) <= 60 else 0, markevery=max(1, len(points) // 30),
                drawstyle="steps-post" if _is_count(chart) else "default")
    if percentile_x:
        ax.xaxis.set_major_locator(FixedLocator(tick_at))
        ax.xaxis.set_major_formatter(FixedFormatter(tick_text))
    ax.set_title(chart.title)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(y_axis_label(chart))
    top = max((y for pts in chart.series.values() for _, y in pts), default=1.0) or 1.0
    # a series at zero stays visible above the axis, and one at the maximum below the frame
    ax.set_ylim(bottom=-0.03 * top, top=1.06 * top)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    if chart.series:  # legend in the caller's order, whatever the drawing order
        ax.legend(handles=[handles[label] for label in chart.series], loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)
    return fig


def write_chart(chart: LatencyChart, out: Path, stem: str) -> list[Path]:
    """``<stem>.png`` and ``<stem>.svg`` in ``out``."""
    fig = figure(chart)
    try:
        paths = [out / f"{stem}.{fmt}" for fmt in FORMATS]
        for path in paths:
            fig.savefig(path, format=path.suffix[1:], metadata={"Date": None} if path.suffix == ".svg" else None)
    finally:
        plt.close(fig)
    return paths


def write_csv(table: MetricsTable, path: Path) -> Path:
    """Numbers stay machine-readable here (no thousands separators, unlike the markdown)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        writer.writerows(["" if v is None else v for v in row] for row in table.rows)
    return path
