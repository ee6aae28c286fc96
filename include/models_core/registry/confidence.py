"""How sure a gate's figure is: 95% intervals over a version's cycles, and how many more it needs.

Agreement is a proportion of inputs, so its interval is Wilson's (scipy's ``binomtest``).
Score difference and duration ratio are means over cycles whose inputs are correlated (one
cycle's inputs share a model run), so their interval comes from a bootstrap that resamples
whole cycles. The bootstrap's generator has a fixed seed: the same evidence always gives the
same interval, so a ``--check`` and the promotion it predicts agree, and the audit can be
re-derived. Pure: no SQL, no Airflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Two-sided; a ``min_`` gate reads the lower bound and a ``max_`` gate the upper one.
CONFIDENCE = 0.95
#: Resamples of the cycle bootstrap: the bound's third digit is stable from about 2,000 on.
RESAMPLES = 2000
#: The most cycles "how many more" looks for; beyond it the evidence would never be enough.
CYCLES_HORIZON = 1_000_000


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval (``None`` bounds: too little evidence for one)."""

    estimate: float | None
    low: float | None
    high: float | None
    inputs: int
    cycles: int


def agreement_interval(per_cycle: Sequence[tuple[int, int]]) -> Interval:
    """The share of inputs the version agreed on, from each cycle's ``(agreed, compared)``.

    Every input counts once, wherever its cycle; the Wilson interval stays inside [0, 1] and
    is honest at a handful of inputs, where the normal approximation claims certainty.
    """
    agreed = sum(a for a, _ in per_cycle)
    inputs = sum(n for _, n in per_cycle)
    cycles = sum(1 for _, n in per_cycle if n > 0)
    if inputs == 0:
        return Interval(None, None, None, 0, cycles)
    bounds = stats.binomtest(agreed, inputs).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Interval(agreed / inputs, float(bounds.low), float(bounds.high), inputs, cycles)


def mean_interval(per_cycle: Sequence[tuple[float, float]]) -> Interval:
    """The weighted mean of each cycle's ``(value, weight)``, with a bootstrap over cycles.

    The weight is how many inputs the cycle's value stands for (1 for a per-cycle figure such
    as the duration ratio). A cycle is resampled whole, so correlated inputs of one cycle
    never count as independent evidence. Fewer than two cycles give no interval.
    """
    kept = [(v, w) for v, w in per_cycle if w > 0 and math.isfinite(v)]
    values = np.array([v for v, _ in kept], dtype=float)
    weights = np.array([w for _, w in kept], dtype=float)
    inputs = int(weights.sum())
    if not kept:
        return Interval(None, None, None, 0, 0)
    estimate = float(np.average(values, weights=weights))
    if len(kept) < 2:
        return Interval(estimate, None, None, inputs, len(kept))
    if np.all(values == values[0]):  # every resample is the same mean (scipy warns and gives NaN)
        return Interval(estimate, estimate, estimate, inputs, len(kept))
    result = stats.bootstrap(
        (values, weights),
        _weighted_mean,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    low, high = result.confidence_interval
    return Interval(estimate, float(low), float(high), inputs, len(kept))


def _weighted_mean(values: np.ndarray, weights: np.ndarray, axis: int = -1) -> np.ndarray:
    return (values * weights).sum(axis=axis) / weights.sum(axis=axis)


def more_cycles_for_agreement(interval: Interval, threshold: float) -> int | None:
    """Cycles more, at the current rate and inputs per cycle, until the lower bound clears
    ``threshold``: 0 when it does, ``None`` when it never would (the estimate is not above it)
    or not within :data:`CYCLES_HORIZON` cycles."""
    if interval.estimate is None or interval.low is None or interval.cycles == 0:
        return None
    if interval.low >= threshold:
        return 0
    if interval.estimate <= threshold:
        return None
    per_cycle = interval.inputs / interval.cycles
    rate = interval.estimate

    def clears(cycles: int) -> bool:
        inputs = max(1, round(per_cycle * cycles))
        agreed = round(rate * inputs)
        low = stats.binomtest(agreed, inputs).proportion_ci(confidence_level=CONFIDENCE, method="wilson").low
        return bool(low >= threshold)

    return _fewest_cycles(interval.cycles, clears)


def more_cycles_for_mean(interval: Interval, threshold: float) -> int | None:
    """Cycles more until a mean's upper bound is under ``threshold``, if the interval narrows
    as one over the square root of the cycles (it does for a bootstrap of a mean): 0 when it
    already is, ``None`` when it never would or there is no interval yet."""
    if interval.estimate is None or interval.high is None:
        return None
    if interval.high <= threshold:
        return 0
    if interval.estimate >= threshold:
        return None
    needed = interval.cycles * ((interval.high - interval.estimate) / (threshold - interval.estimate)) ** 2
    more = math.ceil(needed) - interval.cycles
    return max(1, more) if needed <= CYCLES_HORIZON else None


def _fewest_cycles(current: int, clears: Callable[[int], bool]) -> int | None:
    """The fewest cycles beyond ``current`` for which ``clears(cycles)`` holds (doubling, then
    halving the gap), or ``None`` within :data:`CYCLES_HORIZON`."""
    high = max(2 * current, current + 1)
    while not clears(high):
        if high >= CYCLES_HORIZON:
            return None
        high = min(2 * high, CYCLES_HORIZON)
    low = current  # does not clear
    while high - low > 1:
        middle = (low + high) // 2
        if clears(middle):
            high = middle
        else:
            low = middle
    return high - current
