"""count_outcomes: how final task states become the cycle summary's counts."""

from __future__ import annotations

import pytest

from models_core.cycle.cycle_summary import count_outcomes, skip_causes

ZERO = {
    "executed": 0,
    "failed": 0,
    "skipped_missing_upstream": 0,
    "skipped_inactive": 0,
    "skipped_backend_down": 0,
    "shadows_ran": 0,
    "shadows_failed": 0,
    "shadows_skipped_backend_down": 0,
    "failed_primaries": [],
}


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
        failed=1, failed_primaries=["a.primary"]
    )


@pytest.mark.parametrize("state", ["upstream_failed", "upstream_skipped"])
def test_primary_not_run_because_of_upstream_counts_as_missing_upstream(state):
    assert count_outcomes({"a.primary": primary()}, {"a.primary": state}) == expected(skipped_missing_upstream=1)


@pytest.mark.parametrize("state", ["skipped", "upstream_failed", None])
def test_blocked_primary_counts_as_missing_upstream(state):
    assert count_outcomes({"a.primary": primary(blocked=True)}, {"a.primary": state}) == expected(
        skipped_missing_upstream=1
    )


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
        "skipped_backend_down": 0,
        "shadows_ran": 1,
        "shadows_failed": 1,
        "shadows_skipped_backend_down": 0,
        "failed_primaries": ["b.primary", "z.primary"],
    }


def test_states_for_tasks_outside_the_plan_are_ignored():
    result = count_outcomes({"a.primary": primary()}, {"a.primary": "success", "summary": "failed"})
    assert result == expected(executed=1)


# --- skipped because a backend is DOWN: counted apart, inherited downstream ---------------

DOWN = ("backend_down", "backend gpu-a is DOWN since 2026-11-20T10:03:00+00:00: HTTP 503")


def chain_tasks() -> dict:
    """a -> b -> c, with a SHADOW of a and a SHADOW of b."""
    return {
        "a.primary": {"model_id": "a", "role": "PRIMARY", "blocked": False, "upstream": []},
        "a.shadow_1_1_0": {"model_id": "a", "role": "SHADOW", "blocked": False, "upstream": []},
        "b.primary": {"model_id": "b", "role": "PRIMARY", "blocked": False, "upstream": ["a.primary"]},
        "b.shadow_2_0_0": {"model_id": "b", "role": "SHADOW", "blocked": False, "upstream": ["a.primary"]},
        "c.primary": {"model_id": "c", "role": "PRIMARY", "blocked": False, "upstream": ["b.primary"]},
    }


def test_a_backend_down_skip_is_inherited_by_everything_airflow_skipped_downstream():
    states = dict.fromkeys(chain_tasks(), "skipped")

    causes = skip_causes(chain_tasks(), states, {"a.primary": DOWN})

    assert causes == dict.fromkeys(chain_tasks(), DOWN)
    assert count_outcomes(chain_tasks(), states, causes) == expected(
        skipped_backend_down=3, shadows_skipped_backend_down=2
    )


def test_a_backend_down_in_the_middle_leaves_the_models_before_it_alone():
    states = {
        "a.primary": "success",
        "a.shadow_1_1_0": "success",
        "b.primary": "skipped",
        "b.shadow_2_0_0": "skipped",
        "c.primary": "skipped",
    }

    causes = skip_causes(chain_tasks(), states, {"b.primary": DOWN})

    assert sorted(causes) == ["b.primary", "b.shadow_2_0_0", "c.primary"]
    assert count_outcomes(chain_tasks(), states, causes) == expected(
        executed=1, shadows_ran=1, skipped_backend_down=2, shadows_skipped_backend_down=1
    )


def test_a_failure_message_is_not_a_skip_cause_and_other_skips_keep_their_category():
    states = {
        "a.primary": "failed",
        "a.shadow_1_1_0": "upstream_failed",
        "b.primary": "upstream_failed",
        "b.shadow_2_0_0": "upstream_failed",
        "c.primary": "upstream_failed",
    }

    causes = skip_causes(chain_tasks(), states, {"a.primary": (None, "RuntimeError: boom")})

    assert causes == {}
    assert count_outcomes(chain_tasks(), states, causes) == expected(
        failed=1, failed_primaries=["a.primary"], skipped_missing_upstream=2
    )


def test_a_shadow_whose_own_backend_is_down_does_not_touch_its_primary():
    states = {"a.primary": "success", "a.shadow_1_1_0": "skipped"}
    tasks = {k: v for k, v in chain_tasks().items() if k.startswith("a.")}

    causes = skip_causes(tasks, states, {"a.shadow_1_1_0": DOWN})

    assert causes == {"a.shadow_1_1_0": DOWN}
    assert count_outcomes(tasks, states, causes) == expected(executed=1, shadows_skipped_backend_down=1)
