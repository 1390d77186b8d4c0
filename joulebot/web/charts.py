"""SVG charts drawn on the server: no script, no font or library fetched by the browser.

Each function returns markup ready to embed; every text in it is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

from joulebot.history.intervals import Mean
from joulebot.number_format import sig

FONT = 'font-family="sans-serif" font-size="11"'


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{escape(label)}" class="chart"><title>{escape(label)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(text)}</text>'


def heat_colour(value: float, low: float, high: float) -> str:
    """Green (lowest) through yellow to red (highest); a log scale when the values span a decade or more."""
    if high <= low:
        share = 0.0
    elif low > 0 and high / low >= 10:
        share = math.log(value / low) / math.log(high / low)
    else:
        share = (value - low) / (high - low)
    share = min(1.0, max(0.0, share))
    hue = 120 * (1 - share)
    return f"hsl({hue:.0f}, 70%, 72%)"


def heatmap(
    rows: list[str],
    columns: list[str],
    values: dict[tuple[str, str], float],
    label: str,
    fmt: Callable[[float], str] = sig,
) -> Markup:
    """A model × category grid coloured by value, the value written in each cell by `fmt` (the table's
    own, unit and all, beside it; like the bench's PNG)."""
    cell_w, cell_h, left, top = 96, 28, 150, 24
    width, height = left + cell_w * len(columns) + 10, top + cell_h * len(rows) + 10
    present = list(values.values())
    low, high = (min(present), max(present)) if present else (0.0, 0.0)
    body = [_text(left + cell_w * (i + 0.5), top - 8, c, "middle") for i, c in enumerate(columns)]
    for j, row in enumerate(rows):
        y = top + cell_h * j
        body.append(_text(left - 6, y + cell_h / 2 + 4, row, "end"))
        for i, column in enumerate(columns):
            x = left + cell_w * i
            value = values.get((row, column))
            fill = "#eee" if value is None else heat_colour(value, low, high)
            body.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>')
            body.append(_text(x + cell_w / 2, y + cell_h / 2 + 4, "–" if value is None else fmt(value), "middle"))
    return _svg(width, height, body, label)


def _ticks(high: float, count: int = 4) -> list[float]:
    if high <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(high / count))
    for factor in (1, 2, 5, 10):
        if high / (step * factor) <= count:
            step *= factor
            break
    return [step * i for i in range(int(high / step) + 1)]


def _between(points: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    """The trace from t0 to t1, its value interpolated at both ends (held beyond the first and last point)."""

    def at(t: float) -> float:
        before = [p for p in points if p[0] <= t][-1:] or points[:1]
        after = [p for p in points if p[0] >= t][:1] or points[-1:]
        (ta, wa), (tb, wb) = before[0], after[0]
        return wa if tb == ta else wa + (wb - wa) * (t - ta) / (tb - ta)

    return [(t0, at(t0)), *((t, w) for t, w in points if t0 < t < t1), (t1, at(t1))]


def power_trace(
    samples: Sequence[tuple[float, float]],
    seconds: float,
    idle_w: float | None,
    avg_w: float | None,
    label: str,
    split_s: float | None = None,
) -> Markup:
    """Machine power over the answer window: the samples, the idle baseline shaded, the window's edges.

    Without samples (counters give one figure per window) the average power is drawn flat over the
    window, and the chart says so. With `split_s` (where the first token came) the area under the
    curve is drawn in two colours: reading the prompt (prefill), then generating (decode).
    """
    width, height, left, right, top, bottom = 640, 260, 56, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    points = list(samples) or ([(0.0, avg_w), (seconds, avg_w)] if avg_w is not None else [])
    t_high = max([seconds, *(t for t, _ in points)]) or 1.0
    w_high = max([idle_w or 0.0, *(w for _, w in points), 1e-9]) * 1.1

    def x(t: float) -> float:
        return left + plot_w * t / t_high

    def y(w: float) -> float:
        return top + plot_h * (1 - w / w_high)

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>']
    # the area under the power curve is the total energy; above the idle band, the above-idle share
    areas = [("energy", "#fdae6b", points)] if points else []
    if points and split_s is not None:
        first, last = points[0][0], points[-1][0]
        areas = [
            ("energy prefill", "#9e9ac8", _between(points, first, min(max(split_s, first), last))),
            ("energy decode", "#fdae6b", _between(points, min(max(split_s, first), last), last)),
        ]
    for name, colour, area in areas:
        outline = " ".join(f"{x(t):.1f},{y(w):.1f}" for t, w in area)
        base = f"{x(area[-1][0]):.1f},{y(0):.1f} {x(area[0][0]):.1f},{y(0):.1f}"
        body.append(f'<polygon class="{name}" points="{outline} {base}" fill="{colour}" fill-opacity="0.35"/>')
    for w in _ticks(w_high):
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(w):.1f}" y2="{y(w):.1f}" stroke="#e4e4e4"/>')
        body.append(_text(left - 4, y(w) + 4, f"{sig(w)} W" if w else "0", "end"))
    for t in _ticks(t_high, 6):
        body.append(_text(x(t), top + plot_h + 14, f"{sig(t)} s" if t else "0", "middle"))
    if idle_w is not None:
        band = top + plot_h - y(idle_w)
        body.append(
            f'<rect class="idle" x="{left}" y="{y(idle_w):.1f}" width="{plot_w}" height="{band:.1f}"'
            ' fill="#6baed6" fill-opacity="0.6"/>'
        )
        body.append(_text(left + 4, y(idle_w) - 4, f"idle baseline {sig(idle_w)} W", extra='fill="#2171b5"'))
    for t, name in ((0.0, "window start"), (seconds, "window end")):
        body.append(
            f'<line class="edge" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + plot_h}"'
            ' stroke="#444" stroke-dasharray="4 3"/>'
        )
        body.append(_text(x(t) + (4 if t == 0 else -4), top + 12, name, "start" if t == 0 else "end"))
    if split_s is not None:
        body.append(
            f'<line class="first-token" x1="{x(split_s):.1f}" x2="{x(split_s):.1f}" y1="{top}" y2="{top + plot_h}"'
            ' stroke="#54278f" stroke-dasharray="2 2"/>'
        )
        body.append(_text(x(split_s) - 4, top + 26, "reading the prompt", "end", 'fill="#54278f"'))
        body.append(_text(x(split_s) + 4, top + 26, "generating", "start", 'fill="#a63603"'))
    if points:
        path = " ".join(f"{x(t):.1f},{y(w):.1f}" for t, w in points)
        body.append(f'<polyline class="trace" points="{path}" fill="none" stroke="#d94801" stroke-width="1.6"/>')
        if not samples:
            body.append(_text(left + plot_w / 2, y(avg_w or 0) - 6, "average over the window (no samples)", "middle"))
    body.append(_text(left + plot_w / 2, height - 4, "seconds since the window's start", "middle"))
    return _svg(width, height, body, label)


def histogram(values: Sequence[float], unit: str, label: str) -> Markup:
    """Counts per bin, with a box plot (quartiles, median, 5th–95th percentile whiskers) above the bars.

    Bins: twice the square root of n, from 5 to 30 (enough to show a shape, few enough to fill them).
    """
    bins = max(5, min(30, int(2 * math.sqrt(len(values)))))
    width, height, left, right, top, bottom = 640, 220, 48, 16, 40, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    ordered = sorted(values)
    low, high = ordered[0], ordered[-1]
    span = (high - low) or (abs(high) or 1.0)
    counts = [0] * bins
    for v in ordered:
        counts[min(bins - 1, int((v - low) / span * bins))] += 1
    tallest = max(counts)

    def x(v: float) -> float:
        return left + plot_w * (v - low) / span

    body = []
    bar_w = plot_w / bins
    for i, count in enumerate(counts):
        h = plot_h * count / tallest
        body.append(
            f'<rect class="bar" x="{left + i * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}"'
            f' height="{h:.1f}" fill="#6baed6"><title>{count}</title></rect>'
        )
    body.append(_text(left - 4, top + 8, str(tallest), "end"))
    body.append(_text(left - 4, top + plot_h, "0", "end"))

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]

    p5, q1, median, q3, p95 = (q(p) for p in (0.05, 0.25, 0.5, 0.75, 0.95))
    mid = top - 18
    body += [
        f'<line x1="{x(p5):.1f}" x2="{x(p95):.1f}" y1="{mid}" y2="{mid}" stroke="#333"/>',
        f'<rect class="box" x="{x(q1):.1f}" y="{mid - 8}" width="{max(1.0, x(q3) - x(q1)):.1f}" height="16"'
        ' fill="#fdd0a2" stroke="#333"/>',
        f'<line x1="{x(median):.1f}" x2="{x(median):.1f}" y1="{mid - 8}" y2="{mid + 8}"'
        ' stroke="#333" stroke-width="2"/>',
    ]
    body.append(_text(left, height - 18, f"{sig(low)} {unit}", "start"))
    body.append(_text(left + plot_w, height - 18, f"{sig(high)} {unit}", "end"))
    body.append(_text(left + plot_w / 2, height - 4, f"n = {len(ordered)} · median {sig(median)} {unit}", "middle"))
    return _svg(width, height, body, label)


def timeline(days: Sequence[tuple[str, Mean]], unit: str, label: str) -> Markup:
    """Mean per day with its 95 % interval as a bar (days with one answer have none)."""
    width, height, left, right, top, bottom = 640, 200, 56, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    high = max(m.mean + (m.ci95 or 0.0) for _, m in days) * 1.1 or 1.0
    step = plot_w / max(1, len(days))

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, v) / high)

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>']
    for v in _ticks(high):
        body.append(_text(left - 4, y(v) + 4, f"{sig(v)}" if v else "0", "end"))
    points = []
    for i, (day, mean) in enumerate(days):
        x = left + step * (i + 0.5)
        points.append(f"{x:.1f},{y(mean.mean):.1f}")
        if mean.ci95 is not None:
            low, up = y(mean.mean - mean.ci95), y(mean.mean + mean.ci95)
            body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{low:.1f}" y2="{up:.1f}" stroke="#999"/>')
        body.append(
            f'<circle class="day" cx="{x:.1f}" cy="{y(mean.mean):.1f}" r="3" fill="#2171b5">'
            f"<title>{escape(day)}: {sig(mean.mean)} {escape(unit)}, n = {mean.n}</title></circle>"
        )
    body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#2171b5"/>')
    body.append(_text(left, height - 18, days[0][0], "start"))
    body.append(_text(left + plot_w, height - 18, days[-1][0], "end"))
    body.append(_text(left + plot_w / 2, height - 4, f"mean per day ({unit}), bars: 95 % interval", "middle"))
    return _svg(width, height, body, label)
