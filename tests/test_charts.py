"""Report charts (``reports.charts``): PNG and SVG, axes labelled with units, overlapping series apart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reports.charts import figure, write_chart
from reports.model import LatencyChart

PERCENTILES = (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100)


def test_latency_percentiles_put_percentile_on_the_x_axis(tmp_path):
    chart = LatencyChart("Latency by percentile (x: percentile, y: ms)",
                         {"latency": [(p, 10.0 + p / 10) for p in PERCENTILES]}, slug="latency-percentiles")
    assert chart.title == "Latency by percentile" and chart.x_label == "percentile" and chart.y_label == "ms"
    png, svg = write_chart(chart, tmp_path, chart.slug)
    assert png.read_bytes().startswith(b"\x89PNG")
    texts = list(ET.parse(svg).getroot().itertext())
    assert "percentile" in texts and "latency (ms)" in texts and "seconds" not in " ".join(texts)
    assert {"p50", "p90", "p99", "p99.9"} <= set(texts)  # a nines scale keeps the tail apart


def test_lock_timeline_series_differ_in_style_and_the_covering_one_is_under(tmp_path):
    samples = [(t / 10, float(min(t, 5))) for t in range(40)]
    chart = LatencyChart("Lock holders and waiters", {"holders": samples, "waiters": [(x, 0.0) for x, _ in samples],
                                                      "entries": samples}, slug="lock-timeline", y_label="count")
    fig = figure(chart)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    holders, entries = lines["holders"], lines["entries"]
    styles = {(line.get_color(), str(line.get_linestyle()), line.get_marker()) for line in lines.values()}
    assert len(styles) == 3
    assert entries.get_linewidth() > holders.get_linewidth() and entries.get_alpha() < 1
    assert ax.get_lines().index(entries) < ax.get_lines().index(holders)  # drawn first, so underneath
    assert ax.get_xlabel() == "time since start (s)" and ax.get_ylabel() == "count"
    paths = write_chart(chart, tmp_path, chart.slug)
    assert [p.name for p in paths] == ["lock-timeline.png", "lock-timeline.svg"]


def test_the_maximum_has_its_own_place_past_the_last_percentile_and_stays_inside_the_frame():
    for percentiles in ([50, 99, 100], [50, 90, 99, 99.9, 100], [50, 100]):
        chart = LatencyChart("Latency by percentile", {"latency": [(p, 400.0 + p) for p in percentiles]},
                             x_label="percentile")
        fig = figure(chart)
        ax = fig.axes[0]
        ticks = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks()))
        finite = [v for label, v in ticks.items() if label != "max"]
        assert ticks["max"] >= max(finite) + 0.5, ticks
        assert ax.get_ylim()[1] > 500.0  # the top point is below the frame, not on it
