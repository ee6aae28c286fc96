"""Cycles that know their backends: a DOWN backend's models skip with the reason, not fail.

Real HTTP backends started by the test, real health DAG runs and real cycle runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from registry_helpers import run_cycle

from fake_backend import FakeBackend
from models_core.backends.catalog import Backend, add_backend
from models_core.backends.health_dag import build_health_dag
from models_core.maintenance.snapshots import Window, take_snapshot
from models_core.registry.actors import service
from models_core.settings import load_settings

CYCLE = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
CHAIN_TASKS = ("source.primary", "middle.primary", "sink.primary", "source.shadow_1_1_0", "source.challenger_2_0_0")


@pytest.fixture
def backend(registry):
    server = FakeBackend()
    add_backend(registry.conn, Backend("gpu-a", server.url), actor=service("test"))
    yield server
    server.close()


def _probe() -> None:
    assert str(build_health_dag().test(logical_date=datetime.now(UTC)).state) == "success"


def _source_calls(registry, chain, backend_name: str = "gpu-a") -> None:
    """Every version of ``source`` calls the backend (through its params)."""
    for key in ("source", "source_shadow", "source_challenger"):
        registry.execute(
            "UPDATE detection_model_versions SET params = params || jsonb_build_object('backend', %s::text)"
            " WHERE id = %s",
            (backend_name, chain[key]),
        )


def _outcomes(registry, run_id: str) -> dict[str, tuple]:
    return {
        task_id: (state, cause, reason)
        for task_id, state, cause, reason in registry.query(
            "SELECT task_id, state, skip_cause, reason FROM detection_model_task_outcomes WHERE dag_run_id = %s",
            (run_id,),
        )
    }


def test_a_down_backends_models_skip_with_the_reason_and_run_again_once_it_is_up(registry, chain, backend):
    _source_calls(registry, chain)
    backend.health_code = 503
    _probe()

    down = run_cycle(CYCLE)

    assert down.state == "success"
    assert {down.task_states[t] for t in CHAIN_TASKS} == {"skipped"}
    outcomes = _outcomes(registry, down.run_id)
    (reason,) = {outcomes[t][2] for t in CHAIN_TASKS}
    assert reason.startswith("backend gpu-a is DOWN since ") and f"HTTP 503 from {backend.url}/health" in reason
    assert {outcomes[t][:2] for t in CHAIN_TASKS} == {("skipped", "backend_down")}
    summary = registry.query(
        "SELECT executed, failed, skipped_missing_upstream, skipped_inactive,"
        " skipped_backend_down, shadows_skipped_backend_down"
        " FROM detection_model_cycle_summaries WHERE dag_run_id = %s",
        (down.run_id,),
    )
    assert summary == [(0, 0, 0, 0, 3, 2)]
    assert registry.outputs(chain["source"], CYCLE) == []

    backend.health_code = 200
    _probe()
    later = CYCLE + timedelta(minutes=5)
    up = run_cycle(later)

    assert up.state == "success"
    assert {up.task_states[t] for t in CHAIN_TASKS} == {"success"}
    assert len(registry.outputs(chain["sink"], later)) == 2
    assert {cause for _, cause, _ in _outcomes(registry, up.run_id).values()} == {None}


def test_a_shadow_whose_own_backend_is_down_skips_alone(registry, chain, backend):
    registry.execute(
        'UPDATE detection_model_versions SET params = params || \'{"backend": "gpu-a"}\' WHERE id = %s',
        (chain["source_shadow"],),
    )
    backend.health_code = 500
    _probe()

    run = run_cycle(CYCLE)

    assert run.state == "success"
    assert run.task_states["source.shadow_1_1_0"] == "skipped"
    assert {run.task_states[t] for t in CHAIN_TASKS if t != "source.shadow_1_1_0"} == {"success"}
    assert registry.query(
        "SELECT skipped_backend_down, shadows_skipped_backend_down, executed FROM detection_model_cycle_summaries"
    ) == [(0, 1, 3)]


def test_a_backend_whose_last_sample_is_too_old_is_not_trusted(registry, chain, backend, monkeypatch):
    _source_calls(registry, chain)
    _probe()
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__BACKEND_STALE_AFTER", "120")
    registry.execute("UPDATE detection_model_backend_state SET last_sample_at = now() - interval '10 minutes'")

    run = run_cycle(CYCLE)

    assert run.task_states["source.primary"] == "skipped" and run.task_states["sink.primary"] == "skipped"
    reason = _outcomes(registry, run.run_id)["sink.primary"][2]
    assert reason.startswith("backend gpu-a's last health sample is 6") and "(trusted for 120 s)" in reason


def test_a_backend_never_probed_is_not_trusted_either(registry, chain, backend):
    _source_calls(registry, chain)

    run = run_cycle(CYCLE)

    assert run.task_states["source.primary"] == "skipped"
    assert _outcomes(registry, run.run_id)["source.primary"][1:] == (
        "backend_down",
        "backend gpu-a has not been probed yet (DAG detection_model_backend_health probes it)",
    )


def test_a_version_calling_an_unregistered_backend_fails_naming_it(registry, chain, capsys):
    _source_calls(registry, chain, backend_name="gpu-nowhere")

    run = run_cycle(CYCLE)

    assert run.state == "failed" and run.task_states["source.primary"] == "failed"
    assert "BackendError: source@1.0.0[PRIMARY] calls backend 'gpu-nowhere', which is not registered" in "".join(
        capsys.readouterr()
    )
    reason = registry.query("SELECT reason FROM detection_model_task_outcomes WHERE task_id = 'source.primary'")[0][0]
    assert reason.startswith("BackendError: source@1.0.0[PRIMARY] calls backend 'gpu-nowhere'")


def test_snapshots_count_skips_for_a_backend_down_apart_from_failures(registry, chain, backend):
    _source_calls(registry, chain)
    backend.health_code = 503
    _probe()
    run_cycle(CYCLE)
    settings = load_settings()

    report = take_snapshot(
        registry.conn,
        schema=settings.schema,
        models_package=settings.models_package,
        kind="diagnostic",
        window=Window(CYCLE - timedelta(hours=1), CYCLE + timedelta(hours=1)),
        models=None,
        now=CYCLE + timedelta(hours=1),
        drift_band=0.5,
        months_ahead=3,
        settle_after=timedelta(minutes=10),
        shadow_pool="model_shadows",
    )

    by_label = {f"{v['model_id']}@{v['version']} {v['role']}": v for v in report["versions"]}
    source = by_label["source@1.0.0 PRIMARY"]
    assert (source["failed"], source["skipped"], source["skipped_backend_down"]) == (0, 1, 1)
    assert report["registry"]["primary_skipped_backend_down"] == {"middle": 1, "sink": 1, "source": 1}
    assert report["registry"]["primary_failed"] == {}
