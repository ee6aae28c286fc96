"""Cycle overhead: ``detection_models`` with trivial models against a hand-written no-op DAG.

A real Airflow (api-server, scheduler, dag-processor; LocalExecutor; the bench metadata
database) runs both DAGs in turn; each run's start -> end comes from its DAG run record.
The hand-written DAG is rendered from the factory's, so it has the same groups, edges,
priorities and XCom arguments, with a body that does nothing. All Airflow processes share
one process group, stopped at the end, on failure and on SIGTERM alike.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import datetime, timezone

from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most, interleaved
from bench.noop import noop
from bench.static_dag import render_static_dag
from bench.workload import load_registry, model_ids, synthetic_registry, write_models_package
from harness.airflow_processes import running_airflow
from models_core.cycle.dag_factory import DAG_ID, build_cycle_dag

PACKAGE = "bench_cycle_models"
HANDWRITTEN_ID = "bench_handwritten_cycle"
START_TIMEOUT_S = 300
RUN_TIMEOUT_S = 900


def _wait_parsed(task_counts: dict[str, int]) -> None:
    """Until the dag-processor has stored both DAGs as built here; then unpause them."""
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with create_session() as session:
            stored = {dag_id: SerializedDagModel.get_dag(dag_id, session=session) for dag_id in task_counts}
            if all(dag is not None and len(dag.task_dict) == task_counts[dag_id] for dag_id, dag in stored.items()):
                session.execute(update(DagModel).where(DagModel.dag_id.in_(list(task_counts))).values(is_paused=False))
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dag-processor did not store {sorted(task_counts)} within {START_TIMEOUT_S} s")
        time.sleep(1)


def _run_seconds(dag_id: str, run_ids: list[str]) -> float:
    """Trigger one run, wait for it to end, return its start -> end from the DAG run record."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    now = datetime.now(timezone.utc)
    run_id = f"bench__{now:%Y%m%dT%H%M%S%f}"
    trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.CLI, run_id=run_id, logical_date=now,
                replace_microseconds=False)
    run_ids.append(run_id)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with create_session() as session:
            state, start, end = session.execute(select(DagRun.state, DagRun.start_date, DagRun.end_date).where(
                DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
        if state == "success" and start and end:
            return (end - start).total_seconds()
        if state == "failed":
            raise RuntimeError(f"{dag_id} run {run_id} failed; see the task logs")
    raise RuntimeError(f"{dag_id} run {run_id} did not finish within {RUN_TIMEOUT_S} s")


def _median_task_seconds(dag_id: str, run_ids: list[str]) -> float:
    """Median start -> end of the task instances of these runs: where a cycle's extra time goes."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        spans = session.execute(select(TaskInstance.start_date, TaskInstance.end_date).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids))).all()
    return statistics.median((end - start).total_seconds() for start, end in spans)


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    env.migrate_airflow()
    os.environ["AIRFLOW__MODEL_REGISTRY__SCHEDULE"] = "none"
    write_models_package(env.models_root, PACKAGE, model_ids(args.cycle_models))
    registry = synthetic_registry(args.cycle_models, shadows=False)
    load_registry(registry)
    dag = build_cycle_dag()
    (env.dags_folder / f"{HANDWRITTEN_ID}.py").write_text(render_static_dag(dag, dag_id=HANDWRITTEN_ID, body=noop))
    with running_airflow({**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}, env.tmp / "airflow_logs"):
        _wait_parsed({DAG_ID: len(dag.task_dict), HANDWRITTEN_ID: len(dag.task_dict)})
        run_ids: dict[str, list[str]] = {DAG_ID: [], HANDWRITTEN_ID: []}
        seconds = interleaved({"product": lambda: _run_seconds(DAG_ID, run_ids[DAG_ID]),
                               "handwritten": lambda: _run_seconds(HANDWRITTEN_ID, run_ids[HANDWRITTEN_ID])},
                              runs=args.cycle_runs, warmup=args.warmup)
        task_seconds = {dag_id: _median_task_seconds(dag_id, ids[args.warmup:]) for dag_id, ids in run_ids.items()}
    return [Comparison(f"cycle of {args.cycle_models} trivial models ({len(registry.edges)} edges)",
                       Figure.median_of("detection_models", seconds["product"], "s"),
                       Figure.median_of("hand-written no-op DAG", seconds["handwritten"], "s"), at_most(1.15),
                       "LocalExecutor, real scheduler; DAG run start_date -> end_date; median task instance "
                       f"{task_seconds[DAG_ID]:.2f} s vs {task_seconds[HANDWRITTEN_ID]:.2f} s")]
