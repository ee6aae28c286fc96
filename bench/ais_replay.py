"""Scale with real rows: the demo's AIS chain replaying New York Harbor at 1x, 10x, 100x vessels.

A real Airflow (api-server, scheduler, dag-processor; LocalExecutor) runs ``detection_models``
over the demo registry with the ingest on the New York recording and ``copies`` shifted
copies of every vessel (example_models.replay). Every run replays the same window (minute
30 of the hour-long loop, in consecutive passes), so sizes differ only in vessel count.
Reported: the cycle's start -> end against the 300 s schedule interval, and per model the
positions of the cycle per second of that model's run (its ``cycle_duration_ms``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
from datetime import UTC, datetime, timedelta

from bench.airflow_stack import airflow_components, run_seconds, wait_parsed
from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most
from bench.workload import Registry, load_registry
from models_core.cycle.dag_factory import DAG_ID, build_cycle_dag
from models_core.cycle.shadow_pool import ensure_shadow_pool
from models_core.registry.demo_registry import DEMO_DEPENDENCIES, DEMO_VERSIONS
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

INTERVAL = Figure("schedule interval", 300.0, "s")
#: Minute 30 of a pass of New York's one-hour loop; passes start on the hour.
FIRST_CYCLE = datetime(2026, 6, 1, 0, 30, tzinfo=UTC)
_SET_COPIES = (
    "UPDATE detection_model_versions SET params = params || jsonb_build_object('copies', %s)"
    " WHERE model_id = 'ais_ingest'"
)
_MODEL_FIGURES = """
SELECT model_id, role, metric_key, avg(metric_value)
FROM detection_model_metrics
WHERE cycle_started_at = ANY(%s) AND metric_key IN ('cycle_duration_ms', 'fixes_with_history', 'vessels')
GROUP BY 1, 2, 3
"""


def _registry() -> Registry:
    versions = [
        (m, v, role, {**params, "recording": "nyharbor"} if m == "ais_ingest" else params)
        for m, v, role, params in DEMO_VERSIONS
    ]
    return Registry(versions, DEMO_DEPENDENCIES)


def _figures(cycles: list[datetime]) -> tuple[float, float, dict[str, float]]:
    """Vessels and positions per cycle, and positions per second of each version's run."""
    with registry_connection(load_settings()) as conn, conn.cursor() as cur:
        cur.execute(_MODEL_FIGURES, (cycles,))
        rows = cur.fetchall()
    figures = {(model, role, key): value for model, role, key, value in rows}
    positions = figures[("ais_ingest", "PRIMARY", "fixes_with_history")]
    vessels = figures[("ais_ingest", "PRIMARY", "vessels")]
    rates = {
        f"{model}{'' if role == 'PRIMARY' else ' ' + role}": positions / (value / 1000)
        for (model, role, key), value in sorted(figures.items())
        if key == "cycle_duration_ms" and value and model != "alert_router"
    }  # the router reads no positions
    return vessels, positions, rates


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    env.migrate_airflow()
    os.environ["AIRFLOW__MODEL_REGISTRY__SCHEDULE"] = "none"
    os.environ["AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE"] = "example_models"
    load_registry(_registry())
    ok, message = ensure_shadow_pool(load_settings())  # the demo has a SHADOW and a CHALLENGER
    if not ok:
        raise RuntimeError(message)
    dag = build_cycle_dag()
    comparisons = []
    with airflow_components(env):
        wait_parsed({DAG_ID: len(dag.task_dict)})
        passes = itertools.count()
        for copies in args.ais_copies:
            with registry_connection(load_settings()) as conn, conn, conn.cursor() as cur:
                cur.execute(_SET_COPIES, (copies,))
            seconds, cycles, run_ids = [], [], []
            for attempt in range(args.warmup + args.ais_runs):
                cycle = FIRST_CYCLE + timedelta(hours=next(passes))
                spent = run_seconds(DAG_ID, run_ids, logical_date=cycle)
                if attempt >= args.warmup:
                    seconds.append(spent)
                    cycles.append(cycle)
            vessels, positions, rates = _figures(cycles)
            comparisons.append(
                Comparison(
                    f"AIS replay cycle, New York x{copies}: {vessels:,.0f} vessels in the window, "
                    f"{positions:,.0f} positions",
                    Figure.median_of("cycle", seconds, "s"),
                    INTERVAL,
                    at_most(0.5),
                    f"x{copies} positions/s per model: "
                    + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
                    + f"; median {statistics.median(seconds):.1f} s of {len(seconds)} runs",
                )
            )
    return comparisons
