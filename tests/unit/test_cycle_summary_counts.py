"""count_outcomes: how final task states become the cycle summary's counts."""
from __future__ import annotations

import pytest

from models_core.cycle.cycle_summary import count_outcomes

ZERO = {"executed": 0, "failed": 0, "skipped_missing_upstream": 0, "skipped_inactive": 0,
        "shadows_ran": 0, "shadows_failed": 0, "failed_primaries": []}


def primary(blocked: bool = False) -> dict:
    return {"role": "PRIMARY", "blocked": blocked}


def shadow(role: str = "SHADOW", blocked: bool = False) -> dict:
    return {"role": role, "blocked": blocked}


def expected(**counts) -> dict:
    return {**ZERO, **counts}


def test_no_tasks_gives_all_zero_counts():
    assert count_outcomes({}, {}) == ZERO


def test_successful_primary_counts_as_executed():
    assert count_outcomes({"a.primary": primary()}, {"a.primary": "success"}) == expected(executed=1)


def test_failed_primary_counts_as_failed_and_is_listed():
    assert count_outcomes({"a.primary": primary()}, {"a.primary": "failed"}) == expected(
        failed=1, failed_primaries=["a.primary"])


@pytest.mark.parametrize("state", ["upstream_failed", "upstream_skipped"])
def test_primary_not_run_because_of_upstream_counts_as_missing_upstream(state):
    assert count_outcomes({"a.primary": primary()}, {"a.primary": state}) == expected(skipped_missing_upstream=1)


@pytest.mark.parametrize("state", ["skipped", "upstream_failed", None])
def test_blocked_primary_counts_as_missing_upstream(state):
    assert count_outcomes({"a.primary": primary(blocked=True)}, {"a.primary": state}) == expected(
        skipped_missing_upstream=1)


def test_skipped_unblocked_primary_counts_as_inactive():
    assert count_outcomes({"a.primary": primary()}, {"a.primary": "skipped"}) == expected(skipped_inactive=1)


def test_primary_without_a_final_state_is_not_counted():
    assert count_outcomes({"a.primary": primary()}, {}) == ZERO
    assert count_outcomes({"a.primary": primary()}, {"a.primary": None}) == ZERO


@pytest.mark.parametrize("role", ["SHADOW", "CHALLENGER"])
def test_successful_and_failed_shadows_are_counted_separately(role):
    tasks = {"a.s_ok": shadow(role), "a.s_bad": shadow(role)}
    states = {"a.s_ok": "success", "a.s_bad": "failed"}
    assert count_outcomes(tasks, states) == expected(shadows_ran=1, shadows_failed=1)


@pytest.mark.parametrize("state", ["skipped", "upstream_failed", "upstream_skipped", None])
def test_shadow_not_run_is_not_counted(state):
    assert count_outcomes({"a.shadow_1_0_0": shadow()}, {"a.shadow_1_0_0": state}) == ZERO


def test_failed_shadow_is_not_a_failed_primary():
    result = count_outcomes({"a.shadow_1_0_0": shadow()}, {"a.shadow_1_0_0": "failed"})
    assert result["failed"] == 0
    assert result["failed_primaries"] == []


def test_mixed_cycle_counts_every_category_and_lists_failed_primaries_sorted():
    tasks = {
        "z.primary": primary(),
        "b.primary": primary(),
        "a.primary": primary(),
        "c.primary": primary(),
        "d.primary": primary(blocked=True),
        "e.primary": primary(),
        "f.primary": primary(),
        "a.shadow_1_2_0": shadow(),
        "a.challenger_2_1_0": shadow("CHALLENGER"),
        "b.shadow_1_0_0": shadow(),
        "d.shadow_1_0_0": shadow(blocked=True),
    }
    states = {
        "z.primary": "failed",
        "b.primary": "failed",
        "a.primary": "success",
        "c.primary": "upstream_failed",
        "d.primary": "skipped",
        "e.primary": "skipped",
        "f.primary": "success",
        "a.shadow_1_2_0": "success",
        "a.challenger_2_1_0": "failed",
        "b.shadow_1_0_0": "upstream_failed",
        "d.shadow_1_0_0": "skipped",
    }
    assert count_outcomes(tasks, states) == {
        "executed": 2,
        "failed": 2,
        "skipped_missing_upstream": 2,
        "skipped_inactive": 1,
        "shadows_ran": 1,
        "shadows_failed": 1,
        "failed_primaries": ["b.primary", "z.primary"],
    }


def test_states_for_tasks_outside_the_plan_are_ignored():
    result = count_outcomes({"a.primary": primary()}, {"a.primary": "success", "summary": "failed"})
    assert result == expected(executed=1)
