"""Small pure helpers the benchmarks share: percentiles and the figures table.

Every benchmark prints the same four columns, ``measure  figure  target  ratio``, where the
ratio is above 1 when the target is met (figure/target for "at least" targets, target/figure
for "at most" targets).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

__all__ = ["at_least", "at_most", "p50_p99", "peak_rate", "percentile", "row"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; NaN without values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def p50_p99(values: Sequence[float], unit: str = "ms") -> str:
    """``p50 12 / p99 340 ms``: the summary of a latency sample in one phrase."""
    return f"p50 {percentile(values, 0.5):.0f} / p99 {percentile(values, 0.99):.0f} {unit}"


def peak_rate(times: Sequence[float], span: float) -> float:
    """The most events in any ``span`` seconds (a sliding window over ``times``), per second."""
    ordered = sorted(times)
    if not ordered or span <= 0:
        return math.nan
    return max(bisect.bisect_left(ordered, t + span) - i for i, t in enumerate(ordered)) / span


def at_least(figure: float, target: float) -> float:
    """Ratio for a target the figure should reach (throughput): figure / target."""
    return figure / target


def at_most(figure: float, target: float) -> float:
    """Ratio for a target the figure should stay under (latency, cost): target / figure."""
    return target / figure if figure > 0 else math.inf


def row(name: str, figure: str, target: object, ratio: float | str | None) -> str:
    """One line of the table; ``ratio`` None (or "") leaves the column empty."""
    shown = f"{ratio:.2f}" if isinstance(ratio, float) else (ratio or "")
    return f"{name:34} {figure:>10} {target!s:>8} {shown:>7}"
