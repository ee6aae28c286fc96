"""The gates' intervals: Wilson's bound on agreement, the bootstrap over cycles, and how many more cycles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models_core.registry.confidence import (
    CYCLES_HORIZON,
    agreement_interval,
    mean_interval,
    more_cycles_for_agreement,
    more_cycles_for_mean,
)


def test_the_wilson_bound_of_agreement_counts_inputs_not_cycles():
    few = agreement_interval([(1, 1), (1, 1)])
    many = agreement_interval([(50, 50), (50, 50)])

    assert (few.estimate, few.inputs, few.cycles) == (1.0, 2, 2)
    assert few.low == pytest.approx(0.3424, abs=1e-4)  # Wilson, 95%: 2 / (2 + 1.96**2)
    assert many.low == pytest.approx(100 / (100 + 1.959964**2), abs=1e-4) and many.high == 1.0
    assert agreement_interval([]).estimate is None and agreement_interval([(0, 0)]).low is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 20), min_size=1, max_size=6),
    st.floats(0.5, 0.99),
    st.floats(0.3, 0.95),
)
def test_the_cycles_more_it_names_are_the_fewest_that_clear_the_gate(per_cycle, rate, threshold):
    """At the current rate and inputs per cycle: the named count clears the bound, one fewer does not."""
    rows = [(round(rate * n), n) for n in per_cycle]
    found = agreement_interval(rows)
    more = more_cycles_for_agreement(found, threshold)
    inputs_per_cycle = found.inputs / found.cycles
    if found.estimate <= threshold:
        assert more is None or found.low >= threshold
        return

    def low_after(extra: int) -> float:
        inputs = max(1, round(inputs_per_cycle * (found.cycles + extra)))
        bound = agreement_interval([(round(found.estimate * inputs), inputs)]).low
        assert bound is not None
        return bound

    if more is None:  # an estimate a hair above the threshold: beyond the horizon
        assert low_after(CYCLES_HORIZON - found.cycles) < threshold
    elif more == 0:
        assert found.low >= threshold
    else:
        assert low_after(more) >= threshold and low_after(more - 1) < threshold


def test_a_mean_resamples_whole_cycles_and_gives_the_same_interval_every_time():
    cycles = [(0.9, 1.0), (1.4, 1.0), (1.1, 1.0), (1.0, 1.0), (1.3, 1.0)]

    first, second = mean_interval(cycles), mean_interval(cycles)

    assert first == second and first.estimate == pytest.approx(1.14) and first.cycles == 5
    assert first.low is not None and first.high is not None and first.low < 1.14 < first.high
    # a cycle standing for more inputs weighs more in the mean, but is still one cycle
    weighted = mean_interval([(0.0, 9.0), (1.0, 1.0)])
    assert weighted.estimate == pytest.approx(0.1) and weighted.cycles == 2 and weighted.inputs == 10


def test_one_cycle_gives_no_interval_and_identical_cycles_a_point():
    assert mean_interval([(2.0, 5.0)]).low is None
    same = mean_interval([(2.0, 1.0)] * 4)
    assert (same.low, same.high) == (2.0, 2.0) and more_cycles_for_mean(same, 3.0) == 0
    assert mean_interval([(float("nan"), 1.0)]).estimate is None


def test_more_cycles_for_a_mean_shrink_its_interval_as_one_over_the_root():
    found = mean_interval([(1.0, 1.0), (1.6, 1.0), (0.8, 1.0), (1.2, 1.0)])
    assert found.high is not None and found.estimate is not None

    more = more_cycles_for_mean(found, found.estimate + (found.high - found.estimate) / 2)

    assert more == 3 * found.cycles  # half the width needs four times the cycles
    assert more_cycles_for_mean(found, found.estimate - 0.01) is None
