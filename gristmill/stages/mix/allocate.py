"""How many training tokens each source gets, and how they are drawn.

The rule: each source's target is `budget × weight / Σ weights`. A source whose cap
(`max_epochs × available`, unbounded without a cap) is below its target gets its cap, and the
tokens it cannot give are shared by the others in proportion to their weights; repeated until
every remaining source can meet its share (water-filling). What that may cost the shares is the
`shortfall` setting: `within_tolerance` (every share within `share_tolerance` of its weight,
relative to the weight, else an error), `redistribute` (anything; mix.json warns past the
tolerance) or `fail` (no shortfall at all). A budget above the sum of every cap is always an error.

A source's allocation becomes whole epochs (every document repeated) plus a fractional last
epoch: the documents in the lowest sample-key buckets, as many buckets as stay within the
remainder, then, in key order, the next documents that still fit in what is left. Documents are
whole, so a source can miss by less than its smallest document; that is carried to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gristmill.core.config import ConfigError
from gristmill.stages.mix.config import MixConfig


FILL_DOCS = 4096  # documents looked at, past the bucket prefix, to fill a fractional epoch's gap


@dataclass
class Allocation:
    target: float  # budget × normalised weight
    tokens: float  # after redistribution
    short_by: float  # target − tokens when the cap bound it, else 0
    full_epochs: int
    cut_bucket: int  # the fractional epoch takes every sample-key bucket below this…
    window: tuple[int, int]  # …and, from the buckets in this range, the fill (keys, in key order)
    fill_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    planned_tokens: int = 0  # what full epochs + cut + fill give, exactly

    def describe(self) -> dict:
        return {"target": round(self.target), "allocated": round(self.tokens), "short_by": round(self.short_by),
                "full_epochs": self.full_epochs, "cut_bucket": self.cut_bucket,
                "fill_docs": len(self.fill_keys), "planned_tokens": self.planned_tokens}


def source_caps(mix: MixConfig, available: list[int]) -> list[float]:
    """Per source, the most tokens it may give: `max_epochs × available` (unbounded without a cap)."""
    return [math.inf if s.max_epochs is None else s.max_epochs * a for s, a in zip(mix.sources, available)]


def share_departures(weights: list[float], shares: list[float]) -> list[float]:
    """Per source, how far its share is from its (normalised) weight, relative to the weight."""
    total = sum(weights)
    return [abs(share - w / total) / (w / total) for w, share in zip(weights, shares)]


def _water_fill(budget: float, weights: list[float], caps: list[float]) -> list[float]:
    """Tokens per source: shares by weight, a source bound by its cap held there and the rest shared
    by the others' weights, until every remaining source fits."""
    alloc = [0.0] * len(weights)
    remaining, active = float(budget), list(range(len(weights)))
    while True:
        w = sum(weights[i] for i in active)
        shares = {i: remaining * weights[i] / w for i in active}
        bound = [i for i in active if caps[i] < shares[i]]
        if not bound:
            for i in active:
                alloc[i] = shares[i]
            return alloc
        for i in bound:
            alloc[i] = caps[i]
            remaining -= caps[i]
            active.remove(i)


def _within(budget: int, weights: list[float], caps: list[float], tolerance: float) -> bool:
    alloc = _water_fill(budget, weights, caps)
    return max(share_departures(weights, [a / budget for a in alloc])) <= tolerance


def largest_budget_within(weights: list[float], caps: list[float], tolerance: float, budget: int) -> int:
    """The largest budget up to `budget` at which every share stays within `tolerance` (shortfalls
    only grow with the budget, so a bisection finds it)."""
    lo, hi = 0, budget
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _within(mid, weights, caps, tolerance) else (lo, mid)
    return lo


def water_fill(mix: MixConfig, available: list[int]) -> tuple[list[float], list[float]]:
    """(targets, allocations) in tokens; raises ConfigError when the caps make the spec impossible,
    or push a share past `share_tolerance` (unless `shortfall: redistribute`)."""
    weights = [s.weight for s in mix.sources]
    total_w = sum(weights)
    targets = [mix.budget * w / total_w for w in weights]
    caps = source_caps(mix, available)
    for i, (s, a) in enumerate(zip(mix.sources, available)):
        if a == 0:
            raise ConfigError(f"mixture.sources.{i} ({s.name}): no training document matches its `where`")
    if sum(caps) < mix.budget:
        short = [f"{s.name} can give {c:,.0f} of its {t:,.0f} (short by {t - c:,.0f}: {a:,} tokens × "
                 f"max_epochs {s.max_epochs})" for s, c, t, a in zip(mix.sources, caps, targets, available) if c < t]
        raise ConfigError(f"mixture.budget: {mix.budget:,} tokens is more than the sources' caps allow "
                          f"({sum(caps):,.0f}); " + "; ".join(short)
                          + "; lower mixture.budget or raise max_epochs")
    alloc = _water_fill(mix.budget, weights, caps)
    if mix.shortfall == "fail":
        short = [f"{s.name} (target {t:,.0f}, cap {c:,.0f}, short by {t - c:,.0f})"
                 for s, t, c, a in zip(mix.sources, targets, caps, alloc) if a < t - 1e-6]
        if short:
            raise ConfigError("mixture.shortfall: fail, and max_epochs keeps these sources short: " + "; ".join(short))
    if mix.shortfall == "within_tolerance":
        _check_tolerance(mix, weights, targets, caps, alloc, available)
    return targets, alloc


def _check_tolerance(mix: MixConfig, weights: list[float], targets: list[float], caps: list[float],
                     alloc: list[float], available: list[int]) -> None:
    """One line naming every share past the tolerance, the caps that cause it, and the ways out."""
    departures = share_departures(weights, [a / mix.budget for a in alloc])
    if max(departures) <= mix.share_tolerance:
        return
    total_w = sum(weights)
    off = [f"{s.name} weight {w / total_w:.3f} → share {a / mix.budget:.3f}"
           + (f" (capped at {s.max_epochs:g} epochs)" if a < t - 1e-6 else "")
           for s, w, t, a, d in zip(mix.sources, weights, targets, alloc, departures)
           if d > mix.share_tolerance]
    needs = [f"{s.name} needs {t / n:.1f} for its whole share"
             for s, t, a, n in zip(mix.sources, targets, alloc, available) if a < t - 1e-6]
    best = largest_budget_within(weights, caps, mix.share_tolerance, mix.budget)
    raise ConfigError(
        f"mixture: at a budget of {mix.budget:,} tokens, the max_epochs caps move shares more than "
        f"share_tolerance {mix.share_tolerance:g} (relative) from their weights: {'; '.join(off)}. "
        f"Lower mixture.budget to {best:,} or less, raise max_epochs ({', '.join(needs)}), raise "
        "mixture.share_tolerance, or set mixture.shortfall: redistribute to accept these shares")


def plan(mix: MixConfig, available: list[int], tokens: np.ndarray, docs: np.ndarray) -> list[Allocation]:
    """Whole epochs, and for the fractional one the longest key-bucket prefix that does not pass
    the remainder, plus a window of the next buckets (about FILL_DOCS documents) to fill from."""
    targets, alloc = water_fill(mix, available)
    out = []
    for t, a, avail, tok_hist, doc_hist in zip(targets, alloc, available, tokens, docs):
        full = int(a // avail)
        rem = a - full * avail
        cum = np.cumsum(tok_hist)
        cut = int(np.searchsorted(cum, rem, side="right"))  # buckets whose prefix stays ≤ rem
        below = int(cum[cut - 1]) if cut else 0
        stop = cut
        if rem - below > 0 and cut < len(cum):
            stop = int(np.searchsorted(np.cumsum(doc_hist[cut:]), FILL_DOCS)) + cut + 1
        out.append(Allocation(t, a, max(t - a, 0.0), full, cut, (cut, min(stop, len(cum))),
                              planned_tokens=full * avail + below))
    return out


def fill(mix: MixConfig, allocs: list[Allocation], available: list[int],
         candidates: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Fill each source's gap from its window, in key order, with the documents that still fit.
    What a source still misses (documents are whole) is carried to the next source not held to
    its cap, so the total stays on the budget."""
    caps = source_caps(mix, available)
    carry = 0.0
    for a, cap, (keys, lengths) in zip(allocs, caps, candidates):
        at_cap = a.tokens >= cap * (1 - 1e-12)  # a source held to its cap takes all it may, no carry
        want = a.tokens if at_cap else a.tokens + carry
        gap = want - a.planned_tokens
        order = np.argsort(keys, kind="stable")
        taken = []
        for k, n in zip(keys[order], lengths[order]):
            if gap <= 0:
                break
            if n <= gap:
                taken.append(k)
                gap -= n
        a.fill_keys = np.array(sorted(taken), dtype=np.uint64)
        a.planned_tokens = int(round(want - gap))
        carry = carry if at_cap else gap
