"""Quality floors with a margin for their sample size.

A floor set exactly at the figure measured on the shared data fails on other pages of the same
kind by one or two examples: that is sampling noise, not a regression. `floor(measured, n)` is
the lower end of the Wilson score interval at z = 2.58 (two-sided 99%) around a proportion
`measured` seen on `n` examples: a fresh sample of the same kind falls below it about once in
200 draws, while a real regression of a few points on a large sample still trips it.
"""

from __future__ import annotations

import math

Z = 2.58


def floor(measured: float, n: int, z: float = Z) -> float:
    """Wilson lower bound for a proportion `measured` observed on `n` examples (3 decimals, down)."""
    if n <= 0:
        return 0.0
    p = min(max(measured, 0.0), 1.0)
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return math.floor((centre - spread) / (1 + z * z / n) * 1000) / 1000
