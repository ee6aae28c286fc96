"""Results as Assets and the shadow pool, on a real Airflow: scheduler, DAG processor, API server.

1. A cycle of the demo registry stores ``alert_router``'s result; the scheduler, seeing the
   asset event of ``detection_model.alert_router``, runs the example consumer DAG
   ``example_alert_feed``, which reads that cycle's alerts through the event's reference.
2. A promotion of ``alert_router`` becomes one asset event of ``detection_model_registry.alert_router``,
   published by ``detection_model_registry_events`` on its schedule, and the scheduler runs the
   example ``example_registry_feed`` on it.
3. The health DAG finds the backend that a SHADOW calls very busy and shrinks the shadow pool
   through Airflow's REST API (token from /auth/token), then restores it once the backend
   is idle again.

The backend is a real HTTP server started by the test on a free port.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import pytest
from distributed_stack import stopped_even_on_sigterm
from local_stack import LocalStack, admin_dsn_of_the_test_server

from fake_backend import FakeBackend

pytestmark = pytest.mark.integration

CONSUMER = "example_alert_feed"
CYCLE = "2026-11-20T10:05:00+00:00"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = LocalStack(
        tmp_path_factory.mktemp("local_stack"),
        admin_dsn=admin_dsn_of_the_test_server(),
        models_package="example_models",
    )
    with stopped_even_on_sigterm(stack):
        stack.prepare(lambda s: s.run(sys.executable, "-m", "models_core", "migrate", "--seed-demo"))
        stack.start_services()
        stack.wait_ready(timeout=240)
        stack.wait_until(
            f"{CONSUMER} to be parsed",
            lambda: stack.meta("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (CONSUMER,)),
            timeout=120,
        )
        yield stack


def _consumer_runs(stack: LocalStack) -> list[tuple]:
    return stack.meta("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = %s", (CONSUMER,))


def test_the_consumer_dag_runs_on_the_asset_event_of_a_models_fresh_result(stack: LocalStack):
    stack.airflow("dags", "unpause", CONSUMER)
    assert _consumer_runs(stack) == []

    stack.airflow("dags", "test", "detection_models", CYCLE, timeout=300)

    alerts = stack.registry(
        "SELECT count(*) FROM detection_model_run_outputs WHERE model_id = 'alert_router'"
        " AND role = 'PRIMARY' AND cycle_started_at = %s",
        (CYCLE,),
    )[0][0]
    (extra,) = [
        row[0]
        for row in stack.meta(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s",
            ("detection_model.alert_router",),
        )
    ]
    assert (extra["cycle_started_at"], extra["output_count"], extra["role"]) == (CYCLE, alerts, "PRIMARY")

    finished = stack.wait_until(
        f"{CONSUMER} to be run by the scheduler and finish",
        lambda: [run for run in _consumer_runs(stack) if run[2] in ("success", "failed")],
        timeout=180,
    )
    ((run_id, run_type, state),) = finished
    assert (run_type, state) == ("asset_triggered", "success"), stack.task_errors(run_id, "deliver_alerts")
    (value,) = [
        row[0]
        for row in stack.meta(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'deliver_alerts'"
            " AND key = 'return_value'",
            (CONSUMER, run_id),
        )
    ]
    value = json.loads(value) if isinstance(value, str) else value
    assert value == {"delivered": [{"cycle": CYCLE, "version": "1.0.0", "alerts": alerts}]}


def test_a_promotion_reaches_the_registry_feed_dag_through_its_registry_asset(stack: LocalStack):
    feed = "example_registry_feed"
    for dag_id in ("detection_model_registry_events", feed):
        stack.airflow("dags", "unpause", dag_id)
    models_core = (sys.executable, "-m", "models_core")
    stack.run(*models_core, "register", "alert_router", "9.0.0")
    stack.run(*models_core, "deactivate", "alert_router", "1.0.0", "--force", "--reason", "make way")
    # Airflow 3.3 gives a consumer run the events up to its queue entry's creation: a model's later
    # events of the same publish land in its next run (docs: registry events, known limits).
    stack.wait_until(
        "the registration and the deactivation to be published",
        lambda: stack.registry(
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM detection_model_events WHERE published_at IS NULL)"
        ),
        timeout=180,
    )
    stack.run(*models_core, "promote", "alert_router", "9.0.0", "--force", "--reason", "deployment test")
    ((audit_id,),) = stack.registry(
        "SELECT max(id) FROM detection_model_transitions WHERE model_id = 'alert_router' AND version = '9.0.0'"
    )

    def announced() -> list[dict]:
        """The events each finished feed run announced (its return value)."""
        found = []
        for run_id, state in stack.meta("SELECT run_id, state FROM dag_run WHERE dag_id = %s", (feed,)):
            assert state != "failed", stack.task_errors(run_id, "announce_changes")
            for (value,) in stack.meta(
                "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND key = 'return_value'", (feed, run_id)
            ):
                found += (json.loads(value) if isinstance(value, str) else value)["events"]
        return found

    ((event_id,),) = stack.registry("SELECT id FROM detection_model_events WHERE audit_id = %s", (audit_id,))
    stack.wait_until(
        f"{feed} to run on the promotion's asset event",
        lambda: [e for e in announced() if e["event_id"] == event_id],
        timeout=240,
    )
    extras = [
        row[0]
        for row in stack.meta(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s ORDER BY e.id",
            ("detection_model_registry.alert_router",),
        )
    ]
    (promoted,) = [e for e in extras if e["audit_id"] == audit_id]
    assert (promoted["action"], promoted["version"], promoted["to_role"]) == ("promote", "9.0.0", "PRIMARY")
    assert promoted["event_id"] == event_id and [e["event_id"] for e in announced()].count(event_id) == 1
    assert [e["seq"] for e in extras] == list(range(1, len(extras) + 1))  # once each, in the model's order


def test_a_very_busy_backend_that_a_shadow_calls_shrinks_the_shadow_pool_through_the_rest_api(stack: LocalStack):
    backend = FakeBackend()
    try:
        stack.run(
            sys.executable,
            "-m",
            "models_core",
            "backends",
            "add",
            "gpu-shared",
            backend.url,
            "--status-path",
            "/status",
        )
        (shadow,) = stack.registry(  # whichever SHADOW/CHALLENGER the demo registry has
            'UPDATE detection_model_versions SET params = params || \'{"backend": "gpu-shared"}\''
            " WHERE id = (SELECT min(id) FROM detection_model_versions WHERE status = 'ACTIVE'"
            " AND role IN ('SHADOW', 'CHALLENGER')) RETURNING id"
        )
        assert shadow
        slots = lambda: stack.meta("SELECT slots FROM slot_pool WHERE pool = 'model_shadows'")[0][0]  # noqa: E731
        assert slots() == 4

        backend.active_jobs = 5
        stack.airflow("dags", "test", "detection_model_backend_health", _now(), timeout=180)
        busy = slots()
        backend.active_jobs = 0
        stack.airflow("dags", "test", "detection_model_backend_health", _now(), timeout=180)
        idle = slots()
    finally:
        backend.close()

    assert (busy, idle) == (1, 4)
    assert backend.requests.count("/status") == 2
    states = stack.meta("SELECT task_id, state FROM task_instance WHERE dag_id = 'detection_model_backend_health'")
    assert set(states) == {("probe_backends", "success"), ("size_shadow_pool", "success")}


def _now() -> str:
    time.sleep(1)  # two manual runs need two logical dates
    return datetime.now(UTC).replace(microsecond=0).isoformat()
