"""Backtests: a day of 5-minute cycles (288) of one model, against as many live cycle tasks.

A real Airflow (api-server, scheduler, dag-processor; LocalExecutor; :mod:`bench.airflow_stack`)
runs ``detection_model_backtest`` of a candidate over a past day whose PRIMARY results are
stored (written by the product's own ``run_version`` and ``persist_result``, as the cycle's
tasks write them); the figure is the DAG run's start -> end. The baseline is what the same
288 cycles cost as live tasks: the candidate runs as a SHADOW in real runs of
``detection_models`` on the same stack, and the median start -> end of its task instance,
times 288, is what a day of it costs live. The issue's goal is the 10 minutes; the ratio to
the live tasks shows what grouping the cycles into mapped tasks saves.
"""

from __future__ import annotations

import argparse
import os
import shutil
from datetime import UTC, datetime, timedelta

from bench.airflow_stack import airflow_components, median_task_seconds, run_seconds, wait_parsed
from bench.environment import ROOT, BenchEnv
from bench.measure import Comparison, Figure, at_most
from bench.workload import Registry, load_registry, write_models_package
from models_core.backtest.dag_factory import build_backtest_dag
from models_core.backtest.request import BACKTEST_DAG_ID
from models_core.cycle.dag_factory import DAG_ID, build_cycle_dag
from models_core.cycle.model_task import run_version
from models_core.cycle.persistence import persist_result
from models_core.cycle.shadow_pool import ensure_shadow_pool
from models_core.discovery import discover_models, import_model_class
from models_core.model import Role
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection

PACKAGE = "bench_backtest_models"
#: The upstream model and the model whose candidate is backtested (it is fed the upstream's results).
SOURCE, MODEL = "m0000", "m0001"
CANDIDATE = "1.1.0"
#: A day of 5-minute cycles, and the issue's bound on backtesting it.
CYCLES = 288
BUDGET_S = 600.0
#: Outputs each model returns per cycle: a vessel-detection model's few hundred rows.
ROWS = 200


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    env.migrate_airflow()
    os.environ["AIRFLOW__MODEL_REGISTRY__SCHEDULE"] = "*/5 * * * *"
    write_models_package(env.models_root, PACKAGE, [SOURCE, MODEL])
    params = {"rows": ROWS}
    ids = load_registry(
        Registry(
            [
                (SOURCE, "1.0.0", "PRIMARY", params),
                (MODEL, "1.0.0", "PRIMARY", params),
                (MODEL, CANDIDATE, "SHADOW", params),
            ],
            [(MODEL, SOURCE)],
        )
    )
    settings = load_settings()
    ensure_shadow_pool(settings)
    day = _past_day()
    _store_primary_results(settings, day, {model_id: ids[model_id, "1.0.0"] for model_id in (SOURCE, MODEL)}, params)
    backtest_file = env.dags_folder / f"{BACKTEST_DAG_ID}.py"
    shutil.copy(ROOT / "dags" / f"{BACKTEST_DAG_ID}.py", backtest_file)
    cycle_dag, backtest_dag = build_cycle_dag(), build_backtest_dag()
    conf = {"model_id": MODEL, "version": CANDIDATE, "start": day[0].isoformat(), "end": day[-1].isoformat()}
    try:
        with airflow_components(env):
            wait_parsed({DAG_ID: len(cycle_dag.task_dict), BACKTEST_DAG_ID: len(backtest_dag.task_dict)})
            live_runs: list[str] = []
            for _ in range(args.warmup + args.cycle_runs):
                run_seconds(DAG_ID, live_runs)
            shadow_task = median_task_seconds(DAG_ID, live_runs[args.warmup :], task_id=f"{MODEL}.shadow_1_1_0")
            backtest_s = run_seconds(BACKTEST_DAG_ID, [], conf=conf)
    finally:
        backtest_file.unlink()
    live = Figure(f"{CYCLES} live SHADOW tasks ({shadow_task:.2f} s each, median)", shadow_task * CYCLES, "s")
    backtested = Figure(f"backtest of {CYCLES} cycles", backtest_s, "s")
    how = (
        f"LocalExecutor, real scheduler; {ROWS} outputs per model and cycle; the backtest's DAG run start_date -> "
        f"end_date; the live task's median over {args.cycle_runs} runs of detection_models"
    )
    return [
        Comparison(
            f"backtest of a day ({CYCLES} cycles) of one model",
            backtested,
            Figure("the issue's bound", BUDGET_S, "s"),
            at_most(1.0),
            how,
        ),
        Comparison(f"backtest against {CYCLES} live cycle tasks", backtested, live, at_most(1.0), how),
    ]


def _past_day() -> list[datetime]:
    """The 288 cycle times of yesterday (UTC)."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return [start + timedelta(minutes=5 * i) for i in range(CYCLES)]


def _store_primary_results(
    settings: Settings, day: list[datetime], primaries: dict[str, int], params: dict[str, int]
) -> None:
    """The PRIMARY results (version ids ``primaries``, 1.0.0) of both models for every cycle of the
    day, run and stored as a cycle's PRIMARY tasks run and store them (the source's feeds the model's)."""
    classes = discover_models(settings.models_package).classes
    with registry_connection(settings, application_name="bench:backtest") as conn:
        for cycle in day:
            refs: dict[str, dict] = {}
            for model_id in (SOURCE, MODEL):
                model = import_model_class(classes[model_id].class_path)(
                    version_id=primaries[model_id], version_str="1.0.0", role=Role.PRIMARY, params=params
                )
                upstream = {SOURCE: refs[SOURCE]} if model_id == MODEL else {}
                result, duration_ms, _ = run_version(conn, settings, model, cycle, upstream, None)
                refs[model_id] = persist_result(conn, settings.schema, result, cycle, duration_ms, "1.0.0").to_xcom()
