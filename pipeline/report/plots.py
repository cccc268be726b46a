"""The report's plots as inline SVG, drawn with matplotlib (static, no script, readable offline;
text stays text, so the page is small and searchable). Every plot has a title, axis labels with
units, and readable tick labels."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none",  # text as <text>, in the page's font
    "svg.hashsalt": "gristmill",  # stable ids: the same report twice is the same file
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
})
KEPT, DROPPED, TARGET, OTHER = "#2b7bba", "#d1495b", "#9aa5b1", "#edae49"


def _readable(axis) -> None:
    """Tick labels as 2k, 1.5M rather than 2000, 1500000."""
    axis.set_major_formatter(EngFormatter(sep=""))


def signal_unit(column: str) -> str:
    """An axis label for a filter signal, from its name."""
    for part, unit in (("frac", "fraction of the text (0–1)"), ("ratio", "ratio (0–1)"), ("score", "score (0–1)"),
                       ("word_count", "words"), ("mean_word_length", "characters per word"),
                       ("stop_words", "stop words"), ("sentences", "sentences"), ("count", "count"),
                       ("hit", "1 = on the list")):
        if part in column:
            return unit
    return "value"


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML prolog or doctype inside HTML
    return re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)


def hbar(labels: list[str], series: dict[str, list[float]], title: str, xlabel: str,
         log: bool = False, colors: list[str] | None = None) -> str:
    """Horizontal bars, one group per label (top to bottom in the given order)."""
    n, k = len(labels), len(series)
    fig, ax = plt.subplots(figsize=(7, 0.3 * n * max(k, 1) ** 0.5 + 0.9))
    y = np.arange(n)
    height = 0.8 / k
    for j, (name, values) in enumerate(series.items()):
        color = (colors or [KEPT, OTHER, DROPPED, TARGET])[j % 4]
        ax.barh(y + (j - (k - 1) / 2) * height, values, height, label=name, color=color)
    ax.set_yticks(y, [_cut(lab) for lab in labels])
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if log:
        ax.set_xscale("log")
    _readable(ax.xaxis)
    if k > 1:
        ax.legend(frameon=False, loc="lower right")
    return _svg(fig)


def histogram(edges: list[float], counts: dict[str, list[int]], title: str, xlabel: str,
              lines: list[tuple[float, str]] = (), logx: bool = False, normalise: bool = False,
              small: bool = False) -> str:
    """Stacked (or, normalised, overlaid) histogram; `lines`: vertical markers (value, label)."""
    fig, ax = plt.subplots(figsize=(3.6, 2.4) if small else (7, 2.8))
    e = np.asarray(edges, dtype=float)
    if logx:
        e = np.where(e <= 0, 0.5, e)
    bottom = np.zeros(len(e) - 1)
    palette = {"kept": KEPT, "dropped": DROPPED}
    for j, (name, c) in enumerate(counts.items()):
        c = np.asarray(c, dtype=float)
        color = palette.get(name, [KEPT, OTHER, DROPPED][j % 3])
        if normalise:
            c = c / c.sum() if c.sum() else c
            ax.stairs(c, e, label=name, color=color, linewidth=1.5)
        else:
            ax.stairs(c + bottom, e, baseline=bottom, fill=True, label=name, color=color, alpha=0.85)
            bottom = bottom + c
    for value, label in lines:
        ax.axvline(value, color="black", linestyle="--", linewidth=1)
        ax.annotate(label, (value, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", fontsize=7)
    if logx:
        ax.set_xscale("log")
    if not normalise:
        _readable(ax.yaxis)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of documents" if normalise else "documents")
    if len(counts) > 1:
        ax.legend(frameon=False, fontsize=7)
    return _svg(fig)


def bars(labels: list[str], values: list[float], title: str, ylabel: str, xlabel: str, logy: bool = False) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar([str(v) for v in labels], values, color=KEPT)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    else:
        _readable(ax.yaxis)
    return _svg(fig)


def lines(x: list[float], series: dict[str, list[float | None]], title: str, xlabel: str, ylabel: str) -> str:
    """One line per series over a shared x (None: no point there)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, ys in series.items():
        pts = [(a, b) for a, b in zip(x, ys) if b is not None]
        if pts:
            ax.plot(*zip(*pts), label=name, linewidth=1.5, marker="o" if len(x) < 30 else None, markersize=3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _readable(ax.xaxis)
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig)


def _cut(label: str, n: int = 48) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"
