"""Snapshot: the hourly snapshot over a seeded history, against the same queries run
without partition pruning and indexes (each run a full scan).

The history is generated inside PostgreSQL: ``--snapshot-models`` PRIMARY versions plus
one SHADOW per five models, a 5-minute cycle for ``--snapshot-days`` days, ten outputs
and three metrics per version and cycle, and a task outcome each.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most, interleaved, timed
from bench.workload import reset_registry
from models_core.maintenance.partition_maintenance import maintain_partitions
from models_core.maintenance.snapshots import Window, take_snapshot
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

END = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
GOAL_S = 2.0
_SEED = """
INSERT INTO detection_model_versions (id, model_id, version, status, role)
SELECT g, 'model_' || g, '1.0.0', 'ACTIVE', 'PRIMARY' FROM generate_series(1, %(models)s) g;
INSERT INTO detection_model_versions (id, model_id, version, status, role)
SELECT 100000 + g, 'model_' || g, '1.1.0', 'ACTIVE', 'SHADOW' FROM generate_series(1, %(models)s, 5) g;
CREATE TEMP TABLE bench_cycles AS
SELECT c FROM generate_series(%(end)s::timestamptz - %(days)s * interval '1 day',
                              %(end)s::timestamptz - interval '5 minutes', interval '5 minutes') c;
INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at, model_id, version_id, role, state)
SELECT 'run_' || c, v.model_id || '.' || lower(v.role) || v.id, c, v.model_id, v.id, v.role,
       CASE WHEN random() < 0.01 THEN 'failed' ELSE 'success' END
FROM bench_cycles, detection_model_versions v;
INSERT INTO detection_model_metrics (cycle_started_at, model_id, version_id, role, metric_key, metric_value, is_default)
SELECT c, v.model_id, v.id, v.role, k, CASE k WHEN 'output_count' THEN 10 ELSE random() * 100 END, k <> 'score_mean'
FROM bench_cycles, detection_model_versions v, unnest(ARRAY['cycle_duration_ms', 'output_count', 'score_mean']) k;
INSERT INTO detection_model_run_outputs (cycle_started_at, model_id, version_id, role, output_seq, input_ref, outputs)
SELECT c, v.model_id, v.id, v.role, i, jsonb_build_object('mmsi', i), jsonb_build_object('score', i %% 3)
FROM bench_cycles, detection_model_versions v, generate_series(0, 9) i;
"""
_NO_PRUNING = "SET enable_partition_pruning = off; SET enable_indexscan = off; SET enable_bitmapscan = off"
_RESET = "RESET enable_partition_pruning; RESET enable_indexscan; RESET enable_bitmapscan"


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    """On every server of the run (embedded first), side by side."""
    return env.on_every_server(lambda server: _measure(args, server.label))


def _measure(args: argparse.Namespace, server: str) -> list[Comparison]:
    settings = load_settings()
    with registry_connection(settings) as conn:
        reset_registry(conn, settings.schema)  # the seed below numbers its versions from 1
        maintain_partitions(
            conn,
            settings.schema,
            now=END,
            months_ahead=1,
            retention_months=args.snapshot_days // 28 + 2,
            retention_mode="drop",
        )
        with conn, conn.cursor() as cur:
            cur.execute(_SEED, {"models": args.snapshot_models, "days": args.snapshot_days, "end": END})
            cur.execute("SELECT count(*) FROM detection_model_run_outputs")
            rows = cur.fetchone()[0]
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        conn.autocommit = False
        window = Window(END - timedelta(hours=1), END)

        def snapshot(session_settings: str) -> float:
            with conn.cursor() as cur:
                cur.execute(session_settings)
            conn.commit()
            return timed(
                lambda: take_snapshot(
                    conn,
                    schema=settings.schema,
                    models_package=settings.models_package,
                    kind="hourly",
                    window=window,
                    models=None,
                    now=END,
                    drift_band=settings.drift_band,
                    months_ahead=1,
                    settle_after=2 * settings.task_timeout,
                    shadow_pool=settings.shadow_pool,
                )
            )

        samples = interleaved(
            {"pruned": lambda: snapshot(_RESET), "full scan": lambda: snapshot(_NO_PRUNING)},
            runs=args.runs,
            warmup=args.warmup,
        )
        snapshot(_RESET)
    history = f"{args.snapshot_days} days x {args.snapshot_models} models, {rows:,} output rows"
    product = Figure.median_of("hourly snapshot", samples["pruned"], "s")
    return [
        Comparison(f"hourly snapshot ({history}) [{server}]", product, Figure("goal", GOAL_S, "s"), at_most(1)),
        Comparison(
            f"hourly snapshot vs no pruning/indexes [{server}]",
            product,
            Figure.median_of("full scans", samples["full scan"], "s"),
            at_most(1),
            note="same queries with enable_partition_pruning, enable_indexscan, enable_bitmapscan off",
        ),
    ]
