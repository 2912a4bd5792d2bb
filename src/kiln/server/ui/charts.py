"""Metrics drawn as SVG line charts on the server: no charting script in the browser. A metric
logged several times as numbers gets a chart; anything else is shown as a value."""

from __future__ import annotations

from typing import Any, NamedTuple

WIDTH, HEIGHT, MARGIN = 480, 200, 40


class Chart(NamedTuple):
    name: str
    points: str  # the polyline's "x,y x,y ..." in the SVG's coordinates
    low: float
    high: float
    length: int
    width: int = WIDTH
    height: int = HEIGHT
    margin: int = MARGIN


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, list) or len(value) < 2:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return [float(v) for v in value]


def line_chart(name: str, values: list[float]) -> Chart:
    """Steps along x, values along y (the highest at the top), inside the margins."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = inner_w / (len(values) - 1)
    points = " ".join(
        f"{MARGIN + i * step:.1f},{MARGIN + inner_h - (v - low) / span * inner_h:.1f}"
        for i, v in enumerate(values)
    )
    return Chart(name, points, low, high, len(values))


def split_metrics(metrics: dict[str, Any]) -> tuple[list[Chart], dict[str, Any]]:
    """(charts of the series, the other metrics as they are)."""
    charts, values = [], {}
    for name, value in sorted(metrics.items()):
        series = _numbers(value)
        if series is None:
            values[name] = value
        else:
            charts.append(line_chart(name, series))
    return charts, values
