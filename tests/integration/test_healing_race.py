"""Issue 24, defects 5 and 6: the self-healing review acts on what it judged, and only on that.

The review reads a cycle run's outcomes (as the cycle summary stored them), judges, then
acts. These tests put a person's change, or another change's lock, or a second review,
exactly between the judgment and the action: through the review's own notifier (a real
``BaseNotifier`` that acts the moment it is told), or by judging twice before acting.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from recording_notifier import HELD
from registry_helpers import person

from models_core.healing.review import _Review, review_cycle
from models_core.registry.actors import SYSTEM
from models_core.registry.guards import DEFAULT_POLICY
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
STEP = timedelta(minutes=5)


def _cycle(i: int) -> datetime:
    return NOW - timedelta(minutes=30) + i * STEP


def _state(registry) -> dict[str, tuple[str, str]]:
    return {
        v: (s, r)
        for v, s, r in registry.query(
            "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'loner' ORDER BY id"
        )
    }


def _api(registry) -> ModelRegistry:
    return ModelRegistry(registry.conn, person("alice"))


def _outcome(registry, version_id: int, i: int, state: str, *, metric: float | None = None) -> str:
    """The outcome (and a metric) of the PRIMARY task of cycle ``i``, as the cycle summary stores it."""
    run_id = f"scheduled__{_cycle(i).isoformat()}"
    registry.execute(
        "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at, model_id,"
        " version_id, role, state, reason) VALUES (%s, 'loner.primary', %s, 'loner', %s, 'PRIMARY', %s,"
        " %s)",
        (run_id, _cycle(i), version_id, state, "RuntimeError: told to fail" if state == "failed" else None),
    )
    if metric is not None:
        registry.execute(
            "INSERT INTO detection_model_metrics (cycle_started_at, model_id, version_id, role,"
            " metric_key, metric_value) VALUES (%s, 'loner', %s, 'PRIMARY', 'flagged', %s)",
            (_cycle(i), version_id, metric),
        )
    return run_id


@pytest.fixture
def history(registry) -> dict[str, int]:
    """loner: 1.0.0 then 2.0.0 were PRIMARY (2.0.0 now), 3.0.0 a SHADOW a person may promote."""
    api = _api(registry)
    ids = {"1.0.0": registry.add_version("loner", "1.0.0")}
    for version in ("2.0.0", "3.0.0"):
        ids[version] = api.lifecycle.register("loner", version, {})
        api.lifecycle.activate("loner", version, "SHADOW")
    api.lifecycle.promote("loner", "2.0.0", window=timedelta(hours=1), force=True, reason="2.0.0")
    return ids


@pytest.fixture
def meddling(tmp_path, monkeypatch):
    """``meddling(on="error", promote="loner:3.0.0")``: the notifier acts as a person would."""

    def configure(**kwargs: str) -> None:
        monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__NOTIFIER", "recording_notifier.MeddlingNotifier")
        monkeypatch.setenv(
            "AIRFLOW__MODEL_REGISTRY__NOTIFIER_KWARGS",
            json.dumps(
                {"path": str(tmp_path / "events.jsonl"), "text": "{{ model_registry_event.message }}", **kwargs}
            ),
        )

    yield configure
    while HELD:
        context, conn = HELD.pop()
        conn.rollback()
        context.__exit__(None, None, None)


def _failing_primary(registry, history: dict[str, int], cycles: range) -> str:
    _api(registry).guards.set_healing_policy("loner", on_primary_error="rollback", error_after_failures=3)
    return [_outcome(registry, history["2.0.0"], i, "failed") for i in cycles][-1]


def test_a_persons_promotion_right_after_the_error_is_never_undone(registry, history, meddling):
    meddling(on="error", promote="loner:3.0.0")
    run_id = _failing_primary(registry, history, range(3))

    actions = review_cycle(load_settings(), run_id, _cycle(2), {})

    assert [a["kind"] for a in actions] == ["error", "rollback"]
    assert _state(registry) == {
        "1.0.0": ("ARCHIVED", "PRIMARY"),
        "2.0.0": ("ERROR", "PRIMARY"),
        "3.0.0": ("ACTIVE", "PRIMARY"),
    }  # the person's promotion stands
    assert "rolled back to 1.0.0" in actions[1]["message"]
    error, *rollback = registry.query(
        "SELECT xmin::text FROM detection_model_transitions WHERE actor = 'system' ORDER BY id"
    )
    assert len(rollback) == 1 and rollback[0] == error  # the ERROR and the rollback: one transaction


def test_a_lock_taken_right_after_the_error_cannot_leave_the_model_without_a_primary(registry, history, meddling):
    meddling(on="error", lock="loner")
    run_id = _failing_primary(registry, history, range(3))

    review_cycle(load_settings(), run_id, _cycle(2), {})

    assert _state(registry)["1.0.0"] == ("ACTIVE", "PRIMARY") and _state(registry)["2.0.0"] == ("ERROR", "PRIMARY")


def test_a_review_that_finds_the_model_locked_says_so_changes_nothing_and_the_next_one_acts(registry, history):
    run_id = _failing_primary(registry, history, range(3))
    with registry_connection(load_settings()) as holder:
        with holder.cursor() as cur:
            cur.execute(queries("registry/session.sql")["try_lock_model"], {"model_id": "loner"})
        actions = review_cycle(load_settings(), run_id, _cycle(2), {})
        holder.rollback()

    assert [(a["kind"], a["version"]) for a in actions] == [("not_acted", "2.0.0")]
    assert "another registry change to loner is in progress" in actions[0]["message"]
    assert _state(registry)["2.0.0"] == ("ACTIVE", "PRIMARY")  # still running: the next cycle judges again
    next_run = _outcome(registry, history["2.0.0"], 3, "failed")
    assert [a["kind"] for a in review_cycle(load_settings(), next_run, _cycle(3), {})] == ["error", "rollback"]
    assert _state(registry)["1.0.0"] == ("ACTIVE", "PRIMARY")


def _roll_back_on_degradation(registry, cooldown_minutes: int) -> None:
    """Roll ``loner`` back when over half of 2+ cycles in the last hour failed (errors alone never)."""
    _api(registry).guards.set_healing_policy(
        "loner",
        on_primary_error="rollback",
        error_after_failures=10,
        max_failure_rate=0.5,
        min_cycles=2,
        window_hours=1,
        cooldown_minutes=cooldown_minutes,
    )


def _degrading(registry, history: dict[str, int]) -> tuple[str, str]:
    """2.0.0 fails its first two cycles, then two more runs judge it degraded; 0.9.0 came before 1.0.0."""
    registry.add_version("loner", "0.9.0", status="INACTIVE")
    registry.execute(
        "INSERT INTO detection_model_transitions (at, model_id, version_id, version, action, from_status,"
        " to_status, from_role, to_role, actor) SELECT now() - interval '1 day', 'loner', id, version,"
        " 'promote', 'ACTIVE', 'ACTIVE', 'SHADOW', 'PRIMARY', 'history' FROM detection_model_versions"
        " WHERE version = '0.9.0'"
    )
    _roll_back_on_degradation(registry, cooldown_minutes=0)
    for i in (0, 1):
        _outcome(registry, history["2.0.0"], i, "failed")
    return (_outcome(registry, history["2.0.0"], 2, "failed"), _outcome(registry, history["2.0.0"], 3, "failed"))


def test_two_reviews_that_judged_the_same_primary_roll_back_once(registry, history):
    first_run, second_run = _degrading(registry, history)
    settings = load_settings()
    policy = {**DEFAULT_POLICY, **_api(registry).guards.healing_policy("loner")}
    with registry_connection(settings) as a, registry_connection(settings) as b:
        first, second = _Review(a, settings, first_run, _cycle(2), {}), _Review(b, settings, second_run, _cycle(3), {})
        judged = first.ran(), second.ran()  # both judge before either acts (max_active_runs = 2)

        acted = first.model("loner", judged[0], policy) + second.model("loner", judged[1], policy)

    assert [(a["kind"], a["version"]) for a in acted] == [("rollback", "2.0.0"), ("not_acted", "2.0.0")]
    assert _state(registry)["1.0.0"] == ("ACTIVE", "PRIMARY") and _state(registry)["0.9.0"] == ("INACTIVE", "PRIMARY")
    assert registry.query("SELECT count(*) FROM detection_model_transitions WHERE action = 'rollback'") == [(2,)]


def test_editing_the_primarys_tags_does_not_restart_the_rollback_cool_down(registry, history):
    registry.execute(
        "SET LOCAL session_replication_role = replica;"  # the audit is append-only: backdated as
        " UPDATE detection_model_transitions SET at = at - interval '2 hours'"
    )  # a superuser may
    _roll_back_on_degradation(registry, cooldown_minutes=60)
    for i in (0, 1):
        run_id = _outcome(registry, history["2.0.0"], i, "failed")
    _api(registry).annotations.set_tags("loner", "2.0.0", {"reviewed": "yes"})  # routine CI tagging

    actions = review_cycle(load_settings(), run_id, _cycle(1), {})

    assert [(a["kind"], a["version"]) for a in actions] == [("rollback", "2.0.0")]
    assert _state(registry)["1.0.0"] == ("ACTIVE", "PRIMARY")


def test_the_review_is_an_actor_with_its_own_identity_and_permission(registry, history):
    review = ModelRegistry(registry.conn, SYSTEM)

    with pytest.raises(Exception, match="system system may not promote loner@3.0.0"):
        review.lifecycle.promote("loner", "3.0.0", window=timedelta(hours=1))
    review.lifecycle.rollback("loner", reason="drill")
    assert registry.query(
        "SELECT DISTINCT actor, actor_kind, basis FROM detection_model_transitions"
        " WHERE action = 'rollback' AND to_status = 'ACTIVE'"
    ) == [("system", "system", "restore")]
