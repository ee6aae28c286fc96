"""The backend health DAG against real HTTP backends started by the tests.

Each probe round is a real run of ``detection_model_backend_health`` (``dag.test()``); the
backends are tiny HTTP servers on free ports whose health, status and latency the test sets.
Expected baselines and load classes are computed here, from the rules of the health loop the
project started from, over the latencies the product measured.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from fake_backend import FakeBackend
from models_core.backends.catalog import Backend, add_backend
from models_core.backends.health_check import check_backends
from models_core.backends.health_dag import build_health_dag
from models_core.registry.actors import service
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def backend():
    server = FakeBackend()
    yield server
    server.close()


def _register(registry, name: str, server: FakeBackend, **options) -> None:
    add_backend(registry.conn, Backend(name, server.url, **options), actor=service("test"))


def _probe_rounds(count: int, start: int = 0) -> None:
    """``count`` real runs of the health DAG, one minute apart."""
    dag = build_health_dag()
    for i in range(start, start + count):
        run = dag.test(logical_date=START + timedelta(minutes=i))
        assert str(run.state) == "success", run.state


def _samples(registry, name: str) -> list[tuple]:
    return registry.query(
        "SELECT healthy, latency_ms, http_status, active_jobs, baseline_ms, load_class, error"
        " FROM detection_model_backend_samples WHERE backend = %s ORDER BY taken_at, id",
        (name,),
    )


def seed_baselines(latencies: list[float]) -> list[float]:
    """The health loop's baseline after each healthy latency: the max for the first four, then an EMA of 0.1."""
    baselines, baseline = [], None
    for count, latency in enumerate(latencies, start=1):
        current = latency if baseline is None else baseline
        baseline = max(max(current, latency) if count < 5 else current * 0.9 + latency * 0.1, 10)
        baselines.append(baseline)
    return baselines


def seed_load(latency: float, baseline: float, active_jobs: int | None) -> str:
    if active_jobs is not None:
        return {0: "idle", 1: "normal", 2: "busy", 3: "busy"}.get(active_jobs, "very_busy")
    return "busy" if latency > baseline * 5 else "normal" if latency > baseline * 2 else "idle"


def test_up_and_down_transitions_are_recorded_and_logged_once_each(registry, backend, caplog):
    _register(registry, "gpu-a", backend)

    with caplog.at_level(logging.INFO):
        _probe_rounds(2)  # UP, UP
        backend.health_code = 503
        _probe_rounds(3, start=2)  # DOWN x3
        backend.health_code = 200
        _probe_rounds(1, start=5)  # UP

    events = registry.query(
        "SELECT from_status, to_status, actor, reason FROM detection_model_backend_events"
        " WHERE backend = 'gpu-a' AND action = 'health_probe' ORDER BY id"
    )
    assert [(e[0], e[1]) for e in events] == [(None, "UP"), ("UP", "DOWN"), ("DOWN", "UP")]
    assert {e[2] for e in events} == {"system"}
    assert events[1][3].startswith(f"HTTP 503 from {backend.url}/health")
    transitions = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("backend gpu-a: ") and "->" in r.getMessage()
    ]
    assert [line.split(" (")[0] for line in transitions] == [
        "backend gpu-a: never probed -> UP",
        "backend gpu-a: UP -> DOWN",
        "backend gpu-a: DOWN -> UP",
    ]
    state = registry.query("SELECT status, healthy_samples FROM detection_model_backend_state")
    assert state == [("UP", 3)]
    assert [s[0] for s in _samples(registry, "gpu-a")] == [True, True, False, False, False, True]


def test_baseline_and_load_class_follow_the_health_loop_rules_for_a_scripted_latency_series(registry, backend):
    # Delays far apart compared with the noise of a busy machine: warm-up to a ~300 ms
    # baseline, then a spike of about 3x (normal) and one of about 12x (busy).
    delays_ms = [200, 100, 300, 150, 150, 150, 1000, 4000, 150]
    _register(registry, "gpu-a", backend, timeout_s=8)

    for i, delay in enumerate(delays_ms):
        backend.delay_s = delay / 1000
        _probe_rounds(1, start=i)

    samples = _samples(registry, "gpu-a")
    measured = [s[1] for s in samples]
    assert all(delay <= latency < delay + 1000 for delay, latency in zip(delays_ms, measured)), measured
    expected_baselines = seed_baselines(measured)
    assert [s[4] for s in samples] == pytest.approx(expected_baselines)
    expected_loads = [seed_load(lat, base, None) for lat, base in zip(measured, expected_baselines)]
    assert [s[5] for s in samples] == expected_loads
    # The series was scripted to go through every latency-based class.
    assert expected_loads[6:8] == ["normal", "busy"] and expected_loads[0] == "idle"


def test_the_status_endpoint_sets_the_load_class_and_a_bad_one_falls_back_to_latency(registry, backend):
    _register(registry, "gpu-a", backend, status_path="/status")
    settings = load_settings()

    loads = []
    with registry_connection(settings) as conn:
        for jobs in (0, 1, 2, 3, 4, 7):
            backend.active_jobs = jobs
            loads.append(check_backends(conn, settings)["gpu-a"]["load_class"])
        backend.status_body = "<html>not json</html>"
        fallback = check_backends(conn, settings)["gpu-a"]

    assert loads == [seed_load(0, 0, jobs) for jobs in (0, 1, 2, 3, 4, 7)]
    assert fallback["status"] == "UP" and fallback["active_jobs"] is None
    assert fallback["load_class"] == "idle"  # a fast answer against its baseline
    assert "status endpoint" in fallback["error"] and "load judged from latency" in fallback["error"]


def test_every_backend_is_probed_at_once_and_a_dead_one_does_not_hold_up_the_others(registry):
    servers = [FakeBackend() for _ in range(3)]
    try:
        for i, server in enumerate(servers):
            server.delay_s = 1.5
            _register(registry, f"gpu-{i}", server)
        add_backend(registry.conn, Backend("gone", "http://127.0.0.1:9", timeout_s=1), actor=service("test"))
        FakeBackend.max_in_flight = 0

        _probe_rounds(1)
    finally:
        for server in servers:
            server.close()

    assert FakeBackend.max_in_flight == 3
    state = dict(registry.query("SELECT backend, status FROM detection_model_backend_state"))
    assert state == {"gpu-0": "UP", "gpu-1": "UP", "gpu-2": "UP", "gone": "DOWN"}
    error = registry.query("SELECT error FROM detection_model_backend_state WHERE backend = 'gone'")[0][0]
    assert "ConnectError on http://127.0.0.1:9/health" in error


def test_modelreg_backends_add_list_remove(registry, backend):
    modelreg = [sys.executable, "-m", "models_core"]
    added = subprocess.run(
        modelreg + ["backends", "add", "gpu-a", backend.url, "--status-path", "/status", "--timeout", "2"],
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    backend.active_jobs = 2
    _probe_rounds(1)

    listed = subprocess.run(modelreg + ["backends", "list", "--json"], capture_output=True, text=True)
    (row,) = json.loads(listed.stdout)
    state = registry.query("SELECT latency_ms, baseline_ms FROM detection_model_backend_state")[0]
    assert row | {"since": None, "last_sample_at": None} == {
        "name": "gpu-a",
        "base_url": backend.url,
        "health_path": "/health",
        "status_path": "/status",
        "timeout_s": 2.0,
        "status": "UP",
        "since": None,
        "last_sample_at": None,
        "latency_ms": state[0],
        "baseline_ms": state[1],
        "healthy_samples": 1,
        "load_class": "busy",
        "active_jobs": 2,
        "error": None,
    }

    again = subprocess.run(modelreg + ["backends", "add", "gpu-a", backend.url], capture_output=True, text=True)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "modelreg backends: backend gpu-a is already registered; `modelreg backends remove gpu-a` first to change it"
    )
    removed = subprocess.run(modelreg + ["backends", "remove", "gpu-a"], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    assert registry.query("SELECT count(*) FROM detection_model_backend_samples") == [(0,)]
    audit = registry.query(
        "SELECT action, actor FROM detection_model_backend_events WHERE backend = 'gpu-a' ORDER BY id"
    )
    assert audit == [
        ("backend_add", registry.db_user),
        ("health_probe", "system"),
        ("backend_remove", registry.db_user),
    ]


def test_without_the_airflow_api_connection_the_pool_step_skips_and_says_how_to_turn_it_on(registry, backend, capsys):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    _register(registry, "gpu-a", backend)
    run = build_health_dag().test(logical_date=START)

    with create_session() as session:
        states = dict(
            session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(
                    TaskInstance.dag_id == "detection_model_backend_health", TaskInstance.run_id == run.run_id
                )
            ).all()
        )
    assert states == {"probe_backends": "success", "size_shadow_pool": "skipped"}
    assert "the Airflow connection 'airflow_api' is not defined, so the shadow pool keeps its size" in "".join(
        capsys.readouterr()
    )
