"""The health loop's rules, pure: baseline, load class, UP/DOWN; and the shadow pool's size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models_core.backends.health_rules import HealthState, Probe, assess, classify_load, update_baseline
from models_core.backends.shadow_concurrency import shadow_slots

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_the_first_four_healthy_samples_keep_the_maximum_then_an_ema_of_a_tenth():
    baseline, count = None, 0
    seen = []
    for latency in (30, 80, 20, 50, 130, 30):
        baseline, count = update_baseline(baseline, count, latency)
        seen.append(baseline)
    assert seen == pytest.approx([30, 80, 80, 80, 0.9 * 80 + 13, 0.9 * (0.9 * 80 + 13) + 3])
    assert count == 6


def test_the_baseline_never_drops_below_ten_ms():
    assert update_baseline(None, 0, 2.5) == (10.0, 1)
    assert update_baseline(10.0, 9, 1.0)[0] == 10.0


@pytest.mark.parametrize(
    ("jobs", "load"), [(0, "idle"), (1, "normal"), (2, "busy"), (3, "busy"), (4, "very_busy"), (12, "very_busy")]
)
def test_the_status_endpoints_active_jobs_decide_the_load(jobs, load):
    assert classify_load(latency_ms=1000, baseline_ms=10, active_jobs=jobs) == load


@pytest.mark.parametrize(
    ("latency", "baseline", "load"),
    [(100, 50, "idle"), (101, 50, "normal"), (250, 50, "normal"), (251, 50, "busy"), (120, None, "normal")],
)
def test_without_a_status_the_latency_against_the_baseline_decides(latency, baseline, load):
    assert classify_load(latency, baseline, None) == load


def test_a_down_probe_keeps_the_baseline_and_has_no_load_class():
    up = HealthState("UP", T0, 42.0, 7)
    later = T0 + timedelta(minutes=1)

    result = assess(up, Probe(later, healthy=False, latency_ms=5000, error="timeout"))

    assert result.state == HealthState("DOWN", later, 42.0, 7)
    assert result.load_class is None and result.changed and result.previous_status == "UP"


def test_staying_up_keeps_the_time_it_came_up():
    up = HealthState("UP", T0, 42.0, 7)

    result = assess(up, Probe(T0 + timedelta(minutes=5), healthy=True, latency_ms=40))

    assert result.state.since == T0 and not result.changed


@pytest.mark.parametrize(
    ("loads", "slots"), [([], 4), (["idle", "normal"], 4), (["idle", "busy"], 2), (["busy", "very_busy"], 1)]
)
def test_the_shadow_pool_shrinks_with_the_busiest_backend_shadows_call(loads, slots):
    assert shadow_slots(4, loads) == slots


def test_a_busy_backend_leaves_at_least_one_shadow_slot():
    assert shadow_slots(1, ["busy"]) == 1
