"""Cycle capacity: how many versions a 5-minute cycle holds, on LocalExecutor and on Celery.

For each size N (versions: N/2 models, each a PRIMARY and a SHADOW or CHALLENGER, ~2
edges per model, trivial bodies) real Airflow processes (:mod:`bench.airflow_stack`) run
``detection_models`` and a hand-written no-op DAG of the same shape in turn. Each run
reports its wall time (DAG run start -> end), its share of a 5-minute interval and the CPU
seconds the Airflow processes and their task processes used per version. The Celery runs
use two workers, as the distributed test does, when a Redis broker is reachable.

Not part of the default ``make bench``: ``make capacity`` (on 2 cores, 1.5 to 2.5 hours with
the default sizes up to 800 versions, a cycle taking 0.2-0.4 s per version by machine and executor).
Each size runs at least ``--capacity-runs`` timed rounds, small sizes more (:func:`runs_for`).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from dataclasses import dataclass

from bench.airflow_stack import (
    LOCAL,
    Executor,
    Stack,
    airflow_components,
    celery,
    celery_unavailable,
    run_seconds,
    wait_parsed,
)
from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most, interleaved
from bench.noop import noop
from bench.static_dag import render_static_dag
from bench.workload import load_registry, model_ids, synthetic_registry, write_models_package
from models_core.cycle.dag_factory import DAG_ID, build_cycle_dag
from models_core.cycle.shadow_pool import ensure_shadow_pool
from models_core.settings import load_settings

PACKAGE = "bench_capacity_models"
HANDWRITTEN_ID = "bench_handwritten_capacity"
INTERVAL_S = 300
GOAL = at_most(1.10)
#: Each size is timed over about as many cycle seconds as this one's ``--capacity-runs`` rounds.
EVEN_SECONDS_AT = 200
#: ... but a small size gets at most this many times ``--capacity-runs`` rounds.
MAX_RUNS_FACTOR = 3
#: Picked up within seconds, so a new size is parsed quickly (the defaults are 30 s and 300 s).
FAST_PARSING = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
}


@dataclass(frozen=True)
class Measured:
    """One size on one executor: wall and CPU seconds of each DAG's runs (medians over the runs)."""

    versions: int
    executor: Executor
    product: Figure
    noop: Figure
    product_cpu_s: float
    noop_cpu_s: float


def _write_handwritten(env: BenchEnv, dag: object) -> None:
    """The no-op DAG of the same shape, replaced atomically so the dag-processor never reads half a file."""
    path = env.dags_folder / f"{HANDWRITTEN_ID}.py"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_static_dag(dag, dag_id=HANDWRITTEN_ID, body=noop))
    tmp.replace(path)


def _measure_size(env: BenchEnv, executor: Executor, stack: Stack, versions: int, runs: int, warmup: int) -> Measured:
    load_registry(synthetic_registry(versions // 2, shadows=True))
    dag = build_cycle_dag()
    _write_handwritten(env, dag)
    wait_parsed({DAG_ID: len(dag.task_dict), HANDWRITTEN_ID: len(dag.task_dict)})
    cpu: dict[str, list[float]] = {DAG_ID: [], HANDWRITTEN_ID: []}

    def timed_run(dag_id: str) -> float:
        before = stack.cpu_seconds()
        seconds = run_seconds(dag_id, [])
        cpu[dag_id].append(stack.cpu_seconds() - before)
        return seconds

    seconds = interleaved(
        {dag_id: (lambda d=dag_id: timed_run(d)) for dag_id in (DAG_ID, HANDWRITTEN_ID)}, runs=runs, warmup=warmup
    )
    return Measured(
        versions,
        executor,
        Figure.median_of("detection_models", seconds[DAG_ID], "s"),
        Figure.median_of("no-op DAG", seconds[HANDWRITTEN_ID], "s"),
        statistics.median(cpu[DAG_ID][warmup:]),
        statistics.median(cpu[HANDWRITTEN_ID][warmup:]),
    )


def runs_for(versions: int, runs: int) -> int:
    """Timed rounds for a size: more for small cycles, so their medians are as steady as the large ones'.

    The scheduler loop adds a second or two of jitter to any cycle, whatever its size: a tenth
    of a 50-version cycle of 15 s, a hundredth of a 400-version one. Small cycles are cheap,
    so they get more rounds (9 at 50 versions, 6 at 100, with the default 3).
    """
    return max(runs, min(MAX_RUNS_FACTOR * runs, math.ceil(runs * EVEN_SECONDS_AT / versions)))


def _comparison(m: Measured) -> Comparison:
    return Comparison(
        f"cycle of {m.versions} versions [{m.executor.label}]",
        m.product,
        m.noop,
        GOAL,
        f"{m.product.value / INTERVAL_S:.0%} of a 5-minute interval; {m.product_cpu_s / m.versions:.2f} CPU s per "
        f"version (no-op DAG {m.noop_cpu_s / m.versions:.2f})",
    )


def _largest_under_half(measured: list[Measured], executor: Executor) -> str:
    fitting = [m.versions for m in measured if m.executor == executor and m.product.value <= INTERVAL_S / 2]
    return (
        f"largest N measured with the cycle under 50% of a 5-minute interval [{executor.label}]: "
        f"{max(fitting) if fitting else 'none'}"
    )


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    env.migrate_airflow()
    os.environ["AIRFLOW__MODEL_REGISTRY__SCHEDULE"] = "none"
    sizes = sorted(args.capacity_versions)
    write_models_package(env.models_root, PACKAGE, model_ids(max(sizes) // 2))
    ok, message = ensure_shadow_pool(load_settings())
    if not ok:
        raise RuntimeError(message)
    executors = [LOCAL]
    skipped = celery_unavailable()
    if skipped is None:
        executors.append(celery(workers=2, concurrency=args.celery_concurrency))
    load_registry(synthetic_registry(sizes[0] // 2, shadows=True))
    _write_handwritten(env, build_cycle_dag())  # there before the dag-processor starts
    measured: list[Measured] = []
    for executor in executors:
        with airflow_components(env, executor, extra_env=FAST_PARSING) as stack:
            for number, versions in enumerate(sizes):
                # The first size of each executor warms its processes up (imports, byte code) once.
                measured.append(
                    _measure_size(
                        env,
                        executor,
                        stack,
                        versions,
                        runs_for(versions, args.capacity_runs),
                        warmup=args.warmup if number == 0 else 0,
                    )
                )
                print(f"[bench] capacity: {_comparison(measured[-1]).name}: {measured[-1].product}", flush=True)
    comparisons = [_comparison(m) for m in measured]
    notes = [_largest_under_half(measured, executor) for executor in executors]
    if skipped:
        notes.append(f"CeleryExecutor not measured: {skipped}")
    last = comparisons[-1]
    comparisons[-1] = Comparison(last.name, last.product, last.baseline, last.goal, "; ".join([last.note, *notes]))
    return comparisons
