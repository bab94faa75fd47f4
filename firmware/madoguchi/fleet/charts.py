"""The report's PNG charts. Plain ``Figure`` objects rendered by Agg: no pyplot, no global state, no display."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DPI = 100
WIDE = (9.0, 3.8)
GREY = "#9e9e9e"  # what is set apart (speech not understood)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def stacked_bars(path: Path, labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str, xlabel: str = "") -> Path:
    """Vertical bars at ``labels``, one stacked segment per series (legend outside on the right)."""
    fig = Figure(figsize=WIDE)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for (name, values), color in zip(series.items(), _colors(len(series))):
        heights = np.asarray(values, dtype=float)
        ax.bar(x, heights, bottom=bottom, label=name, color=color, width=0.8)
        bottom += heights
    rotate = len(labels) > 24 or max(map(len, labels), default=0) > 3
    ax.set_xticks(x, labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    if len(labels) > 31:
        for n, tick in enumerate(ax.get_xticklabels()):
            tick.set_visible(n % max(1, len(labels) // 20) == 0)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def stacked_hbars(path: Path, labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, xlabel: str, colors: Mapping[str, str] | None = None) -> Path:
    """Horizontal bars, one row per label (boxes), top to bottom in the given order; ``colors`` fixes some series' colours."""
    fig = Figure(figsize=(9.0, max(2.2, 0.32 * len(labels) + 1.3)))
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for (name, values), color in zip(series.items(), _colors(len(series))):
        color = (colors or {}).get(name, color)
        widths = np.asarray(values, dtype=float)
        ax.barh(y, widths, left=left, label=name, color=color, height=0.7)
        left += widths
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if len(series) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def latency_histogram(path: Path, latencies_ms: Sequence[float], p50: float, p95: float) -> Path:
    fig = Figure(figsize=WIDE)
    ax = fig.add_subplot()
    values = np.asarray(latencies_ms, dtype=float)
    ax.hist(values, bins=min(50, max(5, int(np.sqrt(len(values))))), color="#4c72b0", alpha=0.85)
    for value, name, style in ((p50, "p50", "--"), (p95, "p95", ":")):
        ax.axvline(value, color="black", linestyle=style, linewidth=1.2, label=f"{name} {value:.0f} ms")
    ax.set_title("Latency per utterance (all boxes)")
    ax.set_xlabel("ms")
    ax.set_ylabel("utterances")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def latency_by_box(path: Path, labels: Sequence[str], p50: Sequence[float], p95: Sequence[float]) -> Path:
    fig = Figure(figsize=(9.0, max(2.2, 0.4 * len(labels) + 1.3)))
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    ax.barh(y - 0.2, p50, height=0.4, label="p50", color="#4c72b0")
    ax.barh(y + 0.2, p95, height=0.4, label="p95", color="#dd8452")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_title("Latency per box")
    ax.set_xlabel("ms")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
