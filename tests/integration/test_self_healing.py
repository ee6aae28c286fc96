"""Self-healing on real cycle runs: ERROR after K failed cycles, automatic rollback, no flapping.

Every cycle is a real run of ``detection_models`` (``dag.test()``); the models of
tests/models_for_tests fail when their params say so (``fail``, or ``fail_at`` for given
cycles). Notifications go through a real BaseNotifier subclass writing to a file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from registry_helpers import person, run_cycle

from models_core.healing.review import review_cycle
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings

CYCLE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
FAILURE = "RuntimeError: loner@{version}[PRIMARY] was told to fail"


def cycle(i: int) -> datetime:
    return CYCLE + i * STEP


@pytest.fixture
def notifications(tmp_path, monkeypatch):
    """Notifications through recording_notifier.FileNotifier; returns a reader of what it wrote."""
    path = tmp_path / "notifications.jsonl"
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__NOTIFIER", "recording_notifier.FileNotifier")
    monkeypatch.setenv(
        "AIRFLOW__MODEL_REGISTRY__NOTIFIER_KWARGS",
        json.dumps(
            {
                "path": str(path),
                "text": "{{ model_registry_event.kind }} {{ model_registry_event.model_id }}@"
                "{{ model_registry_event.version }} in {{ dag.dag_id }}",
            }
        ),
    )
    return lambda: [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _api(registry) -> ModelRegistry:
    return ModelRegistry(registry.conn, person("test"))


def _set_params(registry, version_id: int, params: dict) -> None:
    registry.execute("UPDATE detection_model_versions SET params = %s WHERE id = %s", (json.dumps(params), version_id))


def _status(registry, version_id: int) -> tuple[str, str]:
    return tuple(registry.query("SELECT status, role FROM detection_model_versions WHERE id = %s", (version_id,))[0])


def _history(registry, model_id: str, action: str) -> list[dict]:
    return [e for e in _api(registry).lifecycle.history(model_id) if e["action"] == action]


def _events(registry) -> list[tuple]:
    return registry.query("SELECT kind, version, cycle_started_at FROM detection_model_healing_events ORDER BY id")


def test_a_version_failing_k_cycles_goes_to_error_with_its_audit_row_and_stops_running(registry, notifications):
    loner = registry.add_version("loner", "1.0.0", params={"fail": True})

    runs = [run_cycle(cycle(i)) for i in range(3)]

    assert [r.state for r in runs] == ["failed"] * 3  # a failed PRIMARY fails its run, ERROR or not
    assert _status(registry, loner) == ("ERROR", "PRIMARY")
    (error,) = _history(registry, "loner", "error")
    assert (error["from_status"], error["to_status"], error["actor"], error["source"]) == (
        "ACTIVE",
        "ERROR",
        "system",
        "api",
    )
    expected = "failed 3 cycles in a row: " + "; ".join(
        f"{cycle(i).isoformat()}: {FAILURE.format(version='1.0.0')}" for i in range(3)
    )
    assert error["reason"] == expected
    assert error["gates"] == {
        "rule": "error_after_failures",
        "k": 3,
        "failures": [{"cycle": cycle(i).isoformat(), "error": FAILURE.format(version="1.0.0")} for i in range(3)],
    }
    assert [(n["kind"], n["text"]) for n in notifications()] == [("error", "error loner@1.0.0 in detection_models")]

    after = run_cycle(cycle(3))
    assert "loner.primary" not in after.task_states and after.state == "success"
    assert review_cycle(load_settings(), runs[-1].run_id, cycle(2), {}) == []  # the summary run again
    assert len(_history(registry, "loner", "error")) == 1 and len(notifications()) == 1


def test_reactivate_brings_an_error_version_back_with_its_failure_count_from_zero(registry, notifications):
    loner = registry.add_version("loner", "1.0.0", params={"fail": True})
    for i in range(3):
        run_cycle(cycle(i))
    assert _status(registry, loner) == ("ERROR", "PRIMARY")
    modelreg = [sys.executable, "-m", "models_core"]

    back = subprocess.run(
        modelreg + ["reactivate", "loner", "1.0.0", "--reason", "fixed the input", "--json"],
        capture_output=True,
        text=True,
    )

    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout) == {"model_id": "loner", "version": "1.0.0", "status": "ACTIVE", "role": "PRIMARY"}
    (event,) = _history(registry, "loner", "reactivate")
    assert (event["from_status"], event["to_status"], event["reason"]) == ("ERROR", "ACTIVE", "fixed the input")
    for i in range(3, 5):  # two more failures: not three in a row since it came back
        assert run_cycle(cycle(i)).task_states["loner.primary"] == "failed"
    assert _status(registry, loner) == ("ACTIVE", "PRIMARY")
    again = subprocess.run(modelreg + ["reactivate", "loner", "1.0.0"], capture_output=True, text=True)
    assert again.returncode == 1
    assert again.stderr.startswith("modelreg reactivate: loner@1.0.0 is ACTIVE, not ERROR")


def test_a_shadow_in_error_costs_nothing_more_and_k_is_set_per_model(registry, chain, notifications):
    modelreg = [sys.executable, "-m", "models_core"]
    policy = subprocess.run(
        modelreg + ["policy", "source", "--error-after", "2", "--json"], capture_output=True, text=True
    )
    assert policy.returncode == 0, policy.stderr
    assert json.loads(policy.stdout)["values"]["error_after_failures"] == 2
    _set_params(registry, chain["source_shadow"], {"fail": True})

    runs = [run_cycle(cycle(i)) for i in range(2)]

    assert [r.state for r in runs] == ["success", "success"]
    assert [r.task_states["source.shadow_1_1_0"] for r in runs] == ["failed", "failed"]
    assert _status(registry, chain["source_shadow"]) == ("ERROR", "SHADOW")
    after = run_cycle(cycle(2))
    assert "source.shadow_1_1_0" not in after.task_states
    assert after.task_states["source.primary"] == after.task_states["source.challenger_2_0_0"] == "success"
    assert [n["kind"] for n in notifications()] == ["error"]


def test_a_degraded_primary_is_rolled_back_automatically_with_the_figures_in_the_audit(registry, notifications):
    registry.add_version("loner", "1.0.0", params={"metrics": {"flagged": 10}})
    run_cycle(cycle(0))
    api = _api(registry)
    new = api.lifecycle.register("loner", "2.0.0", {"metrics": {"flagged": 80}})
    api.lifecycle.promote("loner", "2.0.0", window=timedelta(hours=1), force=True, reason="try 2.0.0")
    api.guards.set_healing_policy(
        "loner",
        on_primary_error="rollback",
        metric_thresholds={"flagged": {"max": 50}},
        min_cycles=2,
        window_hours=1,
        cooldown_minutes=0,
    )

    first = run_cycle(cycle(1))  # one cycle of 2.0.0: too few to judge
    assert _status(registry, new) == ("ACTIVE", "PRIMARY")
    second = run_cycle(cycle(2))  # two cycles, mean flagged 80 > 50: rolled back
    third = run_cycle(cycle(3))

    assert [r.state for r in (first, second, third)] == ["success"] * 3
    assert _status(registry, new) == ("INACTIVE", "PRIMARY")
    rollbacks = _history(registry, "loner", "rollback")
    assert [(e["version"], e["to_status"], e["actor"]) for e in rollbacks] == [
        ("2.0.0", "INACTIVE", "system"),
        ("1.0.0", "ACTIVE", "system"),
    ]
    figures = rollbacks[0]["gates"]
    checks = {c["name"]: c for c in figures["checks"]}
    assert (figures["rule"], figures["window_hours"]) == ("degradation", 1)
    assert checks["min_cycles"]["actual"] == 2 and checks["min_cycles"]["passed"]
    assert checks["metric:flagged"] == {
        "name": "metric:flagged",
        "threshold": "<= 50",
        "actual": (80 + 80) / 2,
        "passed": False,
        "kind": "point",  # the degradation rules judge point figures
    }
    assert rollbacks[0]["reason"].startswith(
        "automatic rollback: loner@2.0.0 (PRIMARY) breaks its degradation rules over the 1 h up to cycle"
    )
    assert third.task_states["loner.primary"] == "success"
    assert registry.query(
        "SELECT DISTINCT version_id FROM detection_model_run_outputs WHERE cycle_started_at = %s", (cycle(3),)
    ) == [(_api(registry).lifecycle.versions("loner")[-1].id,)]
    assert [n["kind"] for n in notifications()] == ["rollback"]
    # The summary of that run run again (a cleared task): nothing more happens.
    assert review_cycle(load_settings(), second.run_id, cycle(2), {}) == []
    assert len(_history(registry, "loner", "rollback")) == 2 and len(notifications()) == 1


def test_no_rollback_within_the_cool_down_after_a_primary_change_only_one_alert(registry, notifications):
    registry.add_version("loner", "1.0.0")
    run_cycle(cycle(0))
    api = _api(registry)
    new = api.lifecycle.register("loner", "2.0.0", {"fail": True})
    api.lifecycle.promote("loner", "2.0.0", window=timedelta(hours=1), force=True, reason="try 2.0.0")
    api.guards.set_healing_policy(
        "loner",
        on_primary_error="rollback",
        max_failure_rate=0.5,
        min_cycles=1,
        error_after_failures=10,
        cooldown_minutes=60,
    )

    for i in range(1, 4):
        run_cycle(cycle(i))

    assert _status(registry, new) == ("ACTIVE", "PRIMARY")
    assert _history(registry, "loner", "rollback") == []
    (alert,) = [n for n in notifications()]
    assert alert["kind"] == "alert"
    (message,) = [row[0] for row in registry.query("SELECT message FROM detection_model_healing_events")]
    assert "max_failure_rate needs <= 0.5, measured 1" in message
    assert "No automatic rollback before" in message and "(cool-down after the last PRIMARY change)" in message


def expected_healing(
    patterns: dict[str, set[int]], first: str, earlier: list[str], cycles: range, max_rate: float, min_cycles: int
) -> list[tuple[str, str, int]]:
    """The actions the rules call for, simulated here: (kind, version, cycle index).

    Cool-down 0 and every cycle inside the window, so: after each cycle, if the PRIMARY has
    at least ``min_cycles`` outcomes and more than ``max_rate`` failed, roll back to the
    latest earlier PRIMARY not rolled back from, else alert.
    """
    outcomes: dict[str, list[bool]] = {v: [] for v in patterns}
    outcomes.update({v: [False] * 2 for v in earlier})  # the earlier PRIMARY's two good cycles
    primary, history, rolled_back_from, actions = first, [*earlier, first], set(), []
    for i in cycles:
        outcomes[primary].append(i in patterns[primary])
        runs = outcomes[primary]
        if len(runs) >= min_cycles and sum(runs) / len(runs) > max_rate:
            target = next((v for v in reversed(history) if v != primary and v not in rolled_back_from), None)
            if target is None:
                actions.append(("alert", primary, i))
            else:
                actions.append(("rollback", primary, i))
                rolled_back_from.add(primary)
                primary = target
                history.append(target)
    return actions


def test_no_flapping_under_an_alternating_failure_pattern(registry, notifications):
    cycles = range(2, 10)
    patterns = {"1.0.0": {4, 6, 8}, "2.0.0": {2, 4, 6, 8}}  # each fails every other cycle
    fail_at = {v: [cycle(i).isoformat() for i in sorted(p)] for v, p in patterns.items()}
    one = registry.add_version("loner", "1.0.0", params={"fail_at": fail_at["1.0.0"]})
    for i in range(2):
        run_cycle(cycle(i))
    api = _api(registry)
    two = api.lifecycle.register("loner", "2.0.0", {"fail_at": fail_at["2.0.0"]})
    api.lifecycle.promote("loner", "2.0.0", window=timedelta(hours=1), force=True, reason="try 2.0.0")
    api.guards.set_healing_policy(
        "loner", on_primary_error="rollback", max_failure_rate=0.3, min_cycles=2, window_hours=1, cooldown_minutes=0
    )

    for i in cycles:
        run_cycle(cycle(i))

    expected = expected_healing(patterns, "2.0.0", ["1.0.0"], cycles, max_rate=0.3, min_cycles=2)
    assert [kind for kind, *_ in expected].count("rollback") == 1  # the pattern exercises both branches
    assert [(kind, version, at) for kind, version, at in _events(registry)] == [
        (kind, version, cycle(i)) for kind, version, i in expected
    ]
    assert _status(registry, one) == ("ACTIVE", "PRIMARY") and _status(registry, two) == ("INACTIVE", "PRIMARY")
    assert len(_history(registry, "loner", "rollback")) == 2  # one rollback: two version rows changed
    assert _history(registry, "loner", "error") == []  # never 3 failures in a row
    alerts = registry.query("SELECT message FROM detection_model_healing_events WHERE kind = 'alert'")
    assert all("every earlier PRIMARY is known bad: 2.0.0 (rolled back from at" in m for (m,) in alerts)


def test_a_primary_in_error_is_replaced_by_the_previous_primary_never_by_one_in_error(registry, notifications):
    oldest = registry.add_version("loner", "1.0.0")
    run_cycle(cycle(0))
    api = _api(registry)
    middle = api.lifecycle.register("loner", "1.1.0", {})
    api.lifecycle.promote("loner", "1.1.0", window=timedelta(hours=1), force=True, reason="1.1.0")
    run_cycle(cycle(1))
    newest = api.lifecycle.register("loner", "2.0.0", {})
    api.lifecycle.promote(
        "loner", "2.0.0", window=timedelta(hours=1), force=True, reason="2.0.0", keep_previous_as_shadow=True
    )
    api.guards.set_healing_policy("loner", on_primary_error="rollback", error_after_failures=2)
    _set_params(registry, middle, {"fail": True})
    for i in (2, 3):  # the SHADOW (1.1.0, an earlier PRIMARY) fails twice: ERROR
        run_cycle(cycle(i))
    assert _status(registry, middle) == ("ERROR", "SHADOW")
    _set_params(registry, newest, {"fail": True})

    for i in (4, 5):  # the PRIMARY fails twice: ERROR, and the model needs a PRIMARY
        run_cycle(cycle(i))
    last = run_cycle(cycle(6))

    assert _status(registry, newest) == ("ERROR", "PRIMARY") and _status(registry, middle) == ("ERROR", "SHADOW")
    assert _status(registry, oldest) == ("ACTIVE", "PRIMARY")
    (restored,) = [e for e in _history(registry, "loner", "rollback")]
    assert (restored["version"], restored["actor"], restored["gates"]["rule"]) == (
        "1.0.0",
        "system",
        "error_after_failures",
    )
    assert [(kind, version, at) for kind, version, at in _events(registry)] == [
        ("error", "1.1.0", cycle(3)),
        ("error", "2.0.0", cycle(5)),
        ("rollback", "2.0.0", cycle(5)),
    ]
    assert [n["kind"] for n in notifications()] == ["error", "error", "rollback"]
    assert last.state == "success" and last.task_states["loner.primary"] == "success"


def test_policy_and_backend_changes_are_audited_whoever_makes_them(registry):
    registry.add_version("loner", "1.0.0")
    _api(registry).guards.set_healing_policy("loner", reason="page me", on_primary_error="rollback")
    registry.execute("UPDATE detection_model_healing_policies SET cooldown_minutes = 5 WHERE model_id = 'loner'")
    registry.execute("INSERT INTO detection_model_backends (name, base_url) VALUES ('gpu-b', 'http://gpu-b:8000')")
    registry.execute("DELETE FROM detection_model_backends WHERE name = 'gpu-b'")

    policy = [
        (e["action"], e["actor"], e["source"], e["reason"], e["details"]["after"]["cooldown_minutes"])
        for e in _api(registry).lifecycle.history("loner")
        if e["action"] != "sql_insert"
    ]
    assert policy[0] == ("policy", "test", "api", "page me", 60)
    assert policy[1][:3] == ("sql_policy", registry.query("SELECT session_user")[0][0], "sql")
    assert policy[1][4] == 5
    backend = registry.query(
        "SELECT action, source, details->'after'->>'base_url' FROM detection_model_backend_events"
        " WHERE backend = 'gpu-b' ORDER BY id"
    )
    assert backend == [("sql_insert", "sql", "http://gpu-b:8000"), ("sql_delete", "sql", None)]
