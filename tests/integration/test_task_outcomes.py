"""A model task records its own final state: a task cleared and run again on its own never stays ``running``.

Issue 23, item 6: only the cycle summary wrote final states, so clearing only a model task
(the UI's Clear, which leaves the downstream summary alone) left its outcome ``running``
for good. The first run is a real ``dag.test()``; the clear is Airflow's own (what the REST
API and the UI call); then what a scheduler does with the cleared run: the task instance is
scheduled again (its try number counted up) and run, in process, as ``dag.test()`` runs tasks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from registry_helpers import run_cycle

from models_core.cycle.dag_factory import DAG_ID, SUMMARY_TASK_ID, build_cycle_dag

CYCLE = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _runs_get_this_tests_dag_version(monkeypatch):
    """The run's DAG version in the metadata database (what a clear reads tasks and retries from)
    is the DAG of this test, not one stored less than 30 s before by an earlier test."""
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")


def _task_instance(run_id: str, task_id: str) -> tuple[str | None, int]:
    """Airflow's (state, try_number) of one task instance."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state, tries = session.execute(
            select(TaskInstance.state, TaskInstance.try_number).where(
                TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        ).one()
    return (str(state) if state else None), tries


def _clear_only_and_rerun(dag, run_id: str, task_id: str) -> None:
    """Clear one task instance as the UI's Clear does by default (not its downstream; the run queued
    again), then do what the scheduler does once: start the run, schedule what is ready, run it."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    scheduler_dag.clear(task_ids=[task_id], run_id=run_id)
    assert _task_instance(run_id, task_id)[0] is None
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
        assert run.state == DagRunState.QUEUED
        run.dag = scheduler_dag
        run.state = DagRunState.RUNNING
        ready, _ = run.update_state(session=session)
        for ti in ready:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        assert [ti.task_id for ti in ready] == [task_id]
        for ti in ready:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id])


def _outcome(registry, run_id: str, task_id: str) -> tuple[str, str | None]:
    (row,) = registry.query(
        "SELECT state, reason FROM detection_model_task_outcomes WHERE dag_run_id = %s AND task_id = %s",
        (run_id, task_id),
    )
    return row


@pytest.mark.parametrize(
    ("params", "state"),
    [
        ({}, "success"),
        ({"fail": True}, "failed"),
        ({"archive_self": True}, "skipped"),  # the version leaves its role while the task runs
    ],
)
def test_a_model_task_cleared_and_run_again_on_its_own_records_its_final_state(registry, chain, params, state):
    dag = build_cycle_dag()
    first = run_cycle(CYCLE, dag=dag)
    assert first.state == "success" and _outcome(registry, first.run_id, "middle.primary")[0] == "success"
    summary_tries = _task_instance(first.run_id, SUMMARY_TASK_ID)[1]
    registry.execute(
        "UPDATE detection_model_versions SET params = %s WHERE id = %s", (json.dumps(params), chain["middle"])
    )

    _clear_only_and_rerun(dag, first.run_id, "middle.primary")

    assert _task_instance(first.run_id, "middle.primary")[0] == state
    assert _task_instance(first.run_id, SUMMARY_TASK_ID) == ("success", summary_tries)  # the summary did not run
    recorded, reason = _outcome(registry, first.run_id, "middle.primary")
    assert recorded == state
    if state == "failed":
        assert reason == "RuntimeError: middle@1.0.0[PRIMARY] was told to fail"
    if state == "skipped":
        assert "result not stored: the version is now ARCHIVED PRIMARY" in reason


def test_a_failed_attempt_that_airflow_will_retry_is_recorded_up_for_retry_not_failed(registry, monkeypatch):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__RETRIES", "1")
    loner = registry.add_version("loner", "1.0.0")
    dag = build_cycle_dag()
    first = run_cycle(CYCLE, dag=dag)
    registry.execute("UPDATE detection_model_versions SET params = '{\"fail\": true}' WHERE id = %s", (loner,))

    _clear_only_and_rerun(dag, first.run_id, "loner.primary")

    assert _task_instance(first.run_id, "loner.primary")[0] == "up_for_retry"
    assert _outcome(registry, first.run_id, "loner.primary") == (
        "up_for_retry",
        "RuntimeError: loner@1.0.0[PRIMARY] was told to fail",
    )
