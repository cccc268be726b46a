"""The report's plots as inline SVG, drawn with matplotlib (static, no script, readable offline;
text stays text, so the page is small and searchable). Every plot has a title, axis labels with
units, and readable tick labels: text at least FONT points (12 CSS px at the SVG's own size; a small
plot fits its 340 px grid cell unscaled), count axes in whole numbers, 0 to 1 and a note where there
is nothing to show (never matplotlib's ±0.04 around zero). A named series (a source or a task) has
one colour in every plot (`palette`); many series get small multiples, a panel each. Text from the
data shows bidi controls as escapes; long labels wrap, their full text in a <title> tooltip."""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from gristmill.report.text import escape, visible, wrap  # noqa: E402

FONT = 9  # points: the smallest text of a plot

plt.rcParams.update({
    "svg.fonttype": "none",  # text as <text>, in the page's font
    "svg.hashsalt": "gristmill",  # stable ids: the same report twice is the same file
    "font.family": "sans-serif",
    "font.size": FONT,
    "legend.fontsize": FONT,
    "axes.titlesize": FONT + 1,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
})
KEPT, DROPPED, TARGET, OTHER = "#2b7bba", "#d1495b", "#9aa5b1", "#edae49"
ALL = "#1d2530"  # a series over every source
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
           "#17becf", "#8c564b", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173"]


def palette(names: Iterable[str]) -> dict[str, str]:
    """One colour per name (a source or a task), the same in every plot of a report: each name, in
    sorted order, takes the PALETTE slot its hash picks, or the next slot used least so far. So names
    differ in colour up to 16 of them, and a name keeps its colour in other reports unless a name
    sorted before it took its slot."""
    used = [0] * len(PALETTE)
    out = {}
    for name in sorted(set(names)):
        start = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") % len(PALETTE)
        least = min(used)
        slot = next(i % len(PALETTE) for i in range(start, start + len(PALETTE)) if used[i % len(PALETTE)] == least)
        used[slot] += 1
        out[name] = PALETTE[slot]
    return out


def _readable(axis, integer: bool = False) -> None:
    """Tick labels as 2k, 1.5M rather than 2000, 1500000; `integer`: whole-number ticks only."""
    axis.set_major_formatter(EngFormatter(sep=""))
    if integer:
        axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def _nothing(ax, axis: str, note: str) -> None:
    """An axis with nothing on it: 0 to 1 (not matplotlib's ±0.04 around zero) and a note."""
    (ax.set_xlim if axis == "x" else ax.set_ylim)(0, 1)
    (ax.set_xticks if axis == "x" else ax.set_yticks)([0, 1])
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="#5a6570")


def _t(text: str) -> str:
    """Text from the data for a plot: bidi controls as escapes, "$" a dollar sign (not mathtext)."""
    return visible(text).replace("$", r"\$")


def _tip(artist, titles: dict[str, str], kind: str, text: str) -> None:
    """Give `artist` a tooltip (its <g> gets a <title>, see _svg)."""
    gid = f"{kind}-{len(titles)}"
    artist.set_gid(gid)
    titles[gid] = text


def signal_unit(column: str) -> str:
    """An axis label for a filter signal, from its name."""
    for part, unit in (("frac", "fraction of the text (0–1)"), ("ratio", "ratio (0–1)"), ("score", "score (0–1)"),
                       ("word_count", "words"), ("mean_word_length", "characters per word"),
                       ("stop_words", "stop words"), ("sentences", "sentences"), ("count", "count"),
                       ("hit", "1 = on the list")):
        if part in column:
            return unit
    return "value"


def _svg(fig, titles: dict[str, str] | None = None) -> str:
    """The figure as an <svg> element; `titles`: tooltips by gid (the gid's prefix becomes a class)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML prolog or doctype inside HTML
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    if titles:
        svg = re.sub(r'<g id="((\w+)-\d+)">', lambda m: f'<g class="{m[2]}"><title>{escape(titles[m[1]])}</title>'
                     if m[1] in titles else m[0], svg)
    return svg


def hbar(labels: list[str], series: dict[str, list[float]], title: str, xlabel: str, log: bool = False,
         colors: list[str | list[str]] | None = None, count: bool = True, empty: str = "none found") -> str:
    """Horizontal bars, one group per label (top to bottom in the given order). `colors`: per series,
    one colour or one per label (each bar then has its label as a tooltip); `count`: whole-number
    ticks; `empty`: the note where every value is 0."""
    n, k = len(labels), max(len(series), 1)
    shown = [wrap(visible(lab)) for lab in labels]  # then "$" escaped, below
    rows = max((s.count("\n") + 1 for s in shown), default=1)
    fig, ax = plt.subplots(figsize=(7, n * max(0.3 * k ** 0.5, 0.15 * rows + 0.12) + 0.9))
    y = np.arange(n)
    height = 0.8 / k
    colors = colors or [KEPT, OTHER, DROPPED, TARGET]
    titles: dict[str, str] = {}
    handles = []
    for j, (name, values) in enumerate(series.items()):
        color = colors[j % len(colors)]
        bars = ax.barh(y + (j - (k - 1) / 2) * height, values, height, color=color)
        if not isinstance(color, str):
            for bar, lab in zip(bars, labels):
                _tip(bar, titles, "series", lab)
        handles.append(Patch(facecolor=color, label=_t(name)) if isinstance(color, str)
                       else Patch(facecolor="white", edgecolor=TARGET, label=_t(name)))
    ax.set_yticks(y, [lab.replace("$", r"\$") for lab in shown])
    for text, lab, full in zip(ax.get_yticklabels(), shown, labels):
        if lab != full:
            _tip(text, titles, "label", full)
    ax.invert_yaxis()
    ax.set_title(_t(title))
    ax.set_xlabel(xlabel)
    nothing = not any(v > 0 for values in series.values() for v in values)
    if log and not nothing:
        ax.set_xscale("log")
    _readable(ax.xaxis, integer=count and not log)
    if nothing:
        _nothing(ax, "x", empty)
    if len(series) > 1:
        ax.legend(handles=handles, frameon=False, loc="lower right")
    return _svg(fig, titles)


def histogram(edges: list[float], counts: dict[str, list[int]], title: str, xlabel: str,
              lines: list[tuple[float, str]] = (), logx: bool = False, normalise: bool = False,
              small: bool = False, empty: str = "no documents") -> str:
    """Stacked (or, normalised, overlaid) histogram; `lines`: vertical markers (value, label)."""
    fig, ax = plt.subplots(figsize=(3.2, 2.4) if small else (7, 2.8))  # small: fits a 340 px cell unscaled
    e = np.asarray(edges, dtype=float)
    if logx:
        e = np.where(e <= 0, 0.5, e)
    bottom = np.zeros(len(e) - 1)
    fixed = {"kept": KEPT, "dropped": DROPPED}
    for j, (name, c) in enumerate(counts.items()):
        c = np.asarray(c, dtype=float)
        color = fixed.get(name, [KEPT, OTHER, DROPPED][j % 3])
        if normalise:
            c = c / c.sum() if c.sum() else c
            ax.stairs(c, e, label=_t(name), color=color, linewidth=1.5)
        else:
            ax.stairs(c + bottom, e, baseline=bottom, fill=True, label=_t(name), color=color, alpha=0.85)
            bottom = bottom + c
    if logx:
        ax.set_xscale("log")
    for value, _ in lines:
        ax.axvline(value, color="black", linestyle="--", linewidth=1)
    ax.get_xlim()  # autoscale now, for the transform below
    for j, (value, label) in enumerate(lines):  # each label inside the axes, on the roomier side of its line
        right = ax.transAxes.inverted().transform(ax.transData.transform((value, 0)))[0] < 0.5
        ax.annotate(_t(label), (value, 1), xycoords=("data", "axes fraction"), textcoords="offset points",
                    xytext=(3 if right else -3, -10 - 11 * j), ha="left" if right else "right")
    if not normalise:
        _readable(ax.yaxis, integer=True)
    if not any(np.asarray(c, dtype=float).sum() > 0 for c in counts.values()):
        _nothing(ax, "y", empty)
    ax.set_title(_t(title))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of documents" if normalise else "documents")
    if len(counts) > 1:
        ax.legend(frameon=False)
    return _svg(fig)


def bars(labels: list[str], values: list[float], title: str, ylabel: str, xlabel: str, logy: bool = False,
         empty: str = "none found") -> str:
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar([_t(str(v)) for v in labels], values, color=KEPT)
    ax.set_title(_t(title))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    nothing = not any(v > 0 for v in values)
    if logy and not nothing:
        ax.set_yscale("log")
    else:
        _readable(ax.yaxis, integer=True)
    if nothing:
        _nothing(ax, "y", empty)
    if not labels:
        ax.set_xticks([])  # no categories: no ±0.04 scale either
    return _svg(fig)


def lines(x: list[float], series: dict[str, list[float | None]], title: str, xlabel: str, ylabel: str,
          colors: dict[str, str] | None = None) -> str:
    """One line per series over a shared x (None: no point there); `colors`: by series name."""
    fig, ax = plt.subplots(figsize=(7, 3))
    titles: dict[str, str] = {}
    drawn = 0
    for name, ys in series.items():
        pts = [(a, b) for a, b in zip(x, ys) if b is not None]
        if pts:
            line, = ax.plot(*zip(*pts), label=_t(name), linewidth=1.5, marker="o" if len(x) < 30 else None,
                            markersize=3, color=(colors or {}).get(name))
            _tip(line, titles, "series", name)
            drawn += 1
    ax.set_title(_t(title))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _readable(ax.xaxis, integer=all(float(v).is_integer() for v in x))
    if len(set(x)) == 1:  # one step: a unit either side, not ±0.1%
        ax.set_xlim(x[0] - 1, x[0] + 1)
    if drawn:
        ax.legend(frameon=False)
    else:
        _nothing(ax, "y", "no points")
    return _svg(fig, titles)


def small_multiples(x: list[int], panels: dict[str, list[float | None]], title: str, ylabel: str,
                    colors: dict[str, str], marks: dict[str, list[tuple[int, float]]] | None = None,
                    mark_label: str = "", panel_ylabels: dict[str, str] | None = None,
                    min_span: float = 0.0, cols: int = 4) -> str:
    """One small panel per name (a task) with its series over a shared x (steps), in the name's
    colour, every panel on the same x range; `marks`: extra points per name (a later evaluation),
    drawn as hollow diamonds; `min_span`: the least y range a panel shows, so that one question's
    difference does not fill a panel; `panel_ylabels`: a y label per panel (`ylabel` is the figure's)."""
    names = list(panels)
    marks = marks or {}
    cols = max(1, min(cols, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 1.75 * rows + 0.6), squeeze=False)
    titles: dict[str, str] = {}
    xs = list(x) + [s for pts in marks.values() for s, _ in pts]
    lo, hi = (min(xs), max(xs)) if xs else (0, 1)
    lo, hi = (lo - 1, hi + 1) if lo == hi else (lo, hi)
    pad = (hi - lo) * 0.05
    for ax in axes.flat[len(names):]:
        ax.set_axis_off()
    for ax, name in zip(axes.flat, names):
        pts = [(a, b) for a, b in zip(x, panels[name]) if b is not None]
        extra = [(a, b) for a, b in marks.get(name, []) if b is not None]
        color = colors.get(name, KEPT)
        if pts:
            line, = ax.plot(*zip(*pts), color=color, linewidth=1.5, marker="o" if len(pts) < 30 else None,
                            markersize=2.5)
            _tip(line, titles, "series", name)
        if extra:
            dots, = ax.plot(*zip(*extra), linestyle="none", marker="D", markersize=5, markerfacecolor="white",
                            markeredgecolor=color, markeredgewidth=1.5)
            _tip(dots, titles, "final", f"{name}: {mark_label} " + ", ".join(f"step {a}: {b:.4g}" for a, b in extra))
        shown = wrap(visible(name), width=22)
        text = ax.set_title(shown.replace("$", r"\$"), fontsize=FONT)
        if shown != name:
            _tip(text, titles, "label", name)
        ax.set_xlim(lo - pad, hi + pad)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3, integer=True, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        ys = [b for _, b in pts + extra]
        if not ys:
            _nothing(ax, "y", "no points")
            continue
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < min_span:
            mid = (y0 + y1) / 2
            y0, y1 = mid - min_span / 2, mid + min_span / 2
        margin = (y1 - y0) * 0.08 or 0.05
        ax.set_ylim(y0 - margin, y1 + margin)
        if panel_ylabels and name in panel_ylabels:
            ax.set_ylabel(_t(panel_ylabels[name]))
    fig.suptitle(_t(title), fontsize=FONT + 1)
    fig.supxlabel("training step", fontsize=FONT)
    fig.supylabel(_t(ylabel), fontsize=FONT)
    fig.tight_layout()
    return _svg(fig, titles)
