"""The benchmark plots, as small hand-written SVG files beside docs/benchmarks.md.

No plotting library: a line chart and a bar chart are a few dozen lines of SVG, render the same
everywhere (GitHub shows them inline) and keep matplotlib out of the dev dependencies.
Each plot is drawn from bench/results/*.json only; a plot whose data is missing is skipped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

Results = dict[str, dict[str, Any]]
Series = dict[str, list[tuple[float, float]]]
W, H = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 36, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low..high``."""
    if high <= low:
        high = low + 1
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 2.5, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def _fmt(value: float) -> str:
    if value >= 1000 and value == int(value):
        return f"{value / 1000:g}k" if value < 1e6 else f"{value / 1e6:g}M"
    return f"{value:g}"


def _frame(title: str, x_label: str, y_label: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">'
    )
    return "\n".join(
        [
            head,
            f'<rect width="{W}" height="{H}" fill="white"/>',
            f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="13" '
            f'font-weight="bold">{escape(title)}</text>',
            f'<text x="{LEFT + (W - LEFT - RIGHT) / 2}" y="{H - 10}" '
            f'text-anchor="middle">{escape(x_label)}</text>',
            f'<text x="14" y="{TOP + (H - TOP - BOTTOM) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 14 {TOP + (H - TOP - BOTTOM) / 2})">{escape(y_label)}</text>',
            *body,
            "</svg>",
            "",
        ]
    )


def line_chart(
    title: str, x_label: str, y_label: str, series: Series, *, log_x: bool = False
) -> str:
    """Lines with markers, one per series, a legend on the right."""
    points = [p for values in series.values() for p in values]
    xs = [math.log10(x) if log_x else x for x, _ in points]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_ticks = _ticks(0, max(y for _, y in points) * 1.05)
    y_hi = y_ticks[-1]
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        v = math.log10(x) if log_x else x
        return LEFT + (v - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - y / y_hi * plot_h

    body = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>',
    ]
    for t in y_ticks:
        body.append(
            f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + plot_w}" y2="{py(t):.1f}" '
            'stroke="#ddd"/>'
        )
        body.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for x in sorted({x for x, _ in points}):
        body.append(
            f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_fmt(x)}</text>'
        )
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(values))
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(name)}: {_fmt(x)} → {y:g}</title></circle>"
            for x, y in values
        ]
        ly = TOP + 10 + 18 * i
        body.append(
            f'<line x1="{W - RIGHT + 12}" y1="{ly}" x2="{W - RIGHT + 30}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        body.append(f'<text x="{W - RIGHT + 34}" y="{ly + 4}">{escape(name)}</text>')
    return _frame(title, x_label, y_label, body)


def bar_chart(title: str, y_label: str, groups: Sequence[str], series: dict[str, list]) -> str:
    """Grouped bars on a log scale (requests/s span 30 to 10,000): one group per label, one
    bar per series (``None`` leaves a gap)."""
    values = [v for vs in series.values() for v in vs if v]
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    high = max(high, low + 1)
    y_ticks = [10.0**e for e in range(low, high + 1)]
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)

    def py(y: float) -> float:
        return TOP + plot_h - (math.log10(y) - low) / (high - low) * plot_h

    body = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="black"/>'
    ]
    for t in y_ticks:
        body.append(
            f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + plot_w}" y2="{py(t):.1f}" '
            'stroke="#ddd"/>'
        )
        body.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for g, label in enumerate(groups):
        cx = LEFT + group_w * (g + 0.5)
        body.append(
            f'<text x="{cx:.1f}" y="{TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
        for i, (name, vs) in enumerate(series.items()):
            v = vs[g]
            if not v:
                continue
            x = LEFT + group_w * g + group_w * 0.1 + bar_w * i
            body.append(
                f'<rect x="{x:.1f}" y="{py(v):.1f}" width="{bar_w:.1f}" '
                f'height="{TOP + plot_h - py(v):.1f}" fill="{COLOURS[i % len(COLOURS)]}">'
                f"<title>{escape(name)}, {escape(label)}: {v:g}</title></rect>"
            )
    for i, name in enumerate(series):
        ly = TOP + 10 + 18 * i
        body.append(
            f'<rect x="{W - RIGHT + 12}" y="{ly - 6}" width="14" height="10" '
            f'fill="{COLOURS[i % len(COLOURS)]}"/>'
        )
        body.append(f'<text x="{W - RIGHT + 32}" y="{ly + 3}">{escape(name)}</text>')
    return _frame(title, "", y_label, body)


def _search_sets(results: Results) -> list[tuple[str, dict[str, Any]]]:
    """The search results there are (hashing vectors; semantic when that run exists)."""
    found = []
    for key in ("search", "search_semantic", "search_1m"):
        data = results.get(key)
        if data and data.get("sizes"):
            found.append((str(data.get("embedder", key)), data))
    return found


def search_latency(results: Results) -> str | None:
    series: Series = {}
    for embedder, data in _search_sets(results):
        for method in ("hnsw", "exact"):
            series[f"{method}, {embedder}"] = [
                (s["chunks"], s[method]["p95_ms"]) for s in data["sizes"]
            ]
    if not series:
        return None
    return line_chart("Hybrid search p95", "chunks", "p95 ms", series, log_x=True)


def search_recall(results: Results) -> str | None:
    series: Series = {
        embedder: [(s["chunks"], s["recall_at_10"]) for s in data["sizes"]]
        for embedder, data in _search_sets(results)
    }
    if not series:
        return None
    return line_chart("HNSW recall@10 against exact", "chunks", "recall@10", series, log_x=True)


def recall_by_ef(results: Results) -> str | None:
    series: Series = {}
    for embedder, data in _search_sets(results):
        for s in data["sizes"]:
            by_ef = s.get("recall_at_10_by_ef_search")
            if by_ef:
                series[f"{_fmt(s['chunks'])} chunks, {embedder}"] = [
                    (float(ef), r) for ef, r in by_ef.items()
                ]
    if not series:
        return None
    return line_chart("Recall@10 against ef_search", "ef_search", "recall@10", series, log_x=True)


def ingestion_rate(results: Results) -> str | None:
    rows = results.get("ingestion", {}).get("rows", [])
    embedders = results.get("embedding", {}).get("rows", [])
    if not rows and not embedders:
        return None
    series: Series = {}
    if rows:
        name = f"pipeline ({results['ingestion'].get('embedder', 'default embedder')})"
        series[name] = [(r["workers"], r["chunks_per_second"]) for r in rows]
    for e in embedders:  # one process: the embedding alone, workers scale it out
        rate = e["chunks_per_s"]["median"]
        if rate < 200:  # hashing's thousands would flatten every other line
            series[f"embedding only, {e['embedder']}"] = [(1, rate)]
    return line_chart("Ingestion chunks/s against workers", "worker processes", "chunks/s", series)


def api_rate(results: Results) -> str | None:
    rows = results.get("api", {}).get("rows", [])
    if not rows:
        return None
    cases = [(r["server"], r["endpoint"]) for r in rows if r["workers"] == 1]
    series: dict[str, list] = {}
    for workers in sorted({r["workers"] for r in rows}):
        rps = {(r["server"], r["endpoint"]): r["rps"] for r in rows if r["workers"] == workers}
        series[f"{workers} worker{'s' if workers > 1 else ''}"] = [rps.get(c) for c in cases]
    labels = [_short(server, endpoint) for server, endpoint in cases]
    return bar_chart("API requests/s, log scale (bare = FastAPI alone)", "req/s", labels, series)


def _short(server: str, endpoint: str) -> str:
    """A label that fits under a bar: ``notebooks c4``, ``ask c1``, ``bare live``."""
    label = endpoint.replace("/health/live", "live").replace("GET /api/v1/", "")
    label = re.sub(r"POST ask \(.*?\)", "ask", label)
    label = re.sub(r", (\d+) connections?", r" c\1", label)
    return f"bare {label}" if server.startswith("bare") else label


PLOTS = {
    "bench-search-p95.svg": search_latency,
    "bench-search-recall.svg": search_recall,
    "bench-recall-ef-search.svg": recall_by_ef,
    "bench-ingestion.svg": ingestion_rate,
    "bench-api.svg": api_rate,
}


def write(results: Results, directory: Path) -> list[str]:
    """Write every plot whose data exists into ``directory``; returns their file names."""
    written = []
    for name, draw in PLOTS.items():
        svg = draw(results)
        if svg is not None:
            (directory / name).write_text(svg)
            written.append(name)
    return written
