"""Cycle overhead: ``detection_models`` with trivial models against a hand-written no-op DAG.

A real Airflow (api-server, scheduler, dag-processor; LocalExecutor; the bench metadata
database; :mod:`bench.airflow_stack`) runs both DAGs in turn; each run's start -> end comes
from its DAG run record. The hand-written DAG is rendered from the factory's, so it has the
same groups, edges, priorities and XCom arguments, with a body that does nothing.
"""

from __future__ import annotations

import argparse
import os

from bench.airflow_stack import airflow_components, median_task_seconds, run_seconds, wait_parsed
from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most, interleaved
from bench.noop import noop
from bench.static_dag import render_static_dag
from bench.workload import load_registry, model_ids, synthetic_registry, write_models_package
from models_core.cycle.dag_factory import DAG_ID, build_cycle_dag

PACKAGE = "bench_cycle_models"
HANDWRITTEN_ID = "bench_handwritten_cycle"


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    env.migrate_airflow()
    os.environ["AIRFLOW__MODEL_REGISTRY__SCHEDULE"] = "none"
    write_models_package(env.models_root, PACKAGE, model_ids(args.cycle_models))
    registry = synthetic_registry(args.cycle_models, shadows=False)
    load_registry(registry)
    dag = build_cycle_dag()
    (env.dags_folder / f"{HANDWRITTEN_ID}.py").write_text(render_static_dag(dag, dag_id=HANDWRITTEN_ID, body=noop))
    with airflow_components(env):
        wait_parsed({DAG_ID: len(dag.task_dict), HANDWRITTEN_ID: len(dag.task_dict)})
        run_ids: dict[str, list[str]] = {DAG_ID: [], HANDWRITTEN_ID: []}
        seconds = interleaved(
            {
                "product": lambda: run_seconds(DAG_ID, run_ids[DAG_ID]),
                "handwritten": lambda: run_seconds(HANDWRITTEN_ID, run_ids[HANDWRITTEN_ID]),
            },
            runs=args.cycle_runs,
            warmup=args.warmup,
        )
        task_seconds = {dag_id: median_task_seconds(dag_id, ids[args.warmup :]) for dag_id, ids in run_ids.items()}
    return [
        Comparison(
            f"cycle of {args.cycle_models} trivial models ({len(registry.edges)} edges)",
            Figure.median_of("detection_models", seconds["product"], "s"),
            Figure.median_of("hand-written no-op DAG", seconds["handwritten"], "s"),
            at_most(1.15),
            "LocalExecutor, real scheduler; DAG run start_date -> end_date; median task instance "
            f"{task_seconds[DAG_ID]:.2f} s vs {task_seconds[HANDWRITTEN_ID]:.2f} s",
        )
    ]
