"""XCom footprint: bytes a PRIMARY task leaves in Airflow's metadata database, by output size.

Each size is a real ``dag.test()`` cycle of ``detection_models`` with one model whose
version asks for that many outputs; the bytes are read back from the ``xcom`` table.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from sqlalchemy import Text, cast, func, select

from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most
from bench.workload import Registry, load_registry, write_models_package
from models_core.cycle.dag_factory import DAG_ID, build_cycle_dag
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

PACKAGE = "bench_xcom_models"
MODEL = "vessel_anomaly"
TASK_ID = f"{MODEL}.primary"
LIMIT = Figure("limit", 2048, "B")
FIRST_CYCLE = datetime(2026, 7, 1, tzinfo=UTC)


def _stored_rows(version_id: int, cycle: datetime) -> int:
    with registry_connection(load_settings()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM detection_model_run_outputs WHERE version_id = %s AND cycle_started_at = %s",
            (version_id, cycle),
        )
        return cur.fetchone()[0]


def _xcom_bytes(run_id: str) -> int:
    """Bytes of every XCom value the PRIMARY task stored in this run, as the database holds them."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        count, size = session.execute(
            select(func.count(), func.coalesce(func.sum(func.octet_length(cast(XComModel.value, Text))), 0)).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == run_id, XComModel.task_id == TASK_ID
            )
        ).one()
    if count == 0:
        raise RuntimeError(f"{TASK_ID} stored no XCom in run {run_id}")
    return int(size)


def measure_cycle(rows: int, cycle: datetime) -> int:
    """Run one cycle whose PRIMARY outputs ``rows`` rows; return its XCom bytes."""
    version_id = load_registry(Registry([(MODEL, "1.0.0", "PRIMARY", {"rows": rows})], []))[(MODEL, "1.0.0")]
    dag_run = build_cycle_dag().test(logical_date=cycle)
    stored = _stored_rows(version_id, cycle)
    if str(dag_run.state) != "success" or stored != rows:
        raise RuntimeError(f"cycle with {rows} rows ended {dag_run.state} and stored {stored} rows")
    return _xcom_bytes(dag_run.run_id)


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    env.migrate_airflow()
    write_models_package(env.models_root, PACKAGE, [MODEL])
    sizes = sorted(args.xcom_rows)
    stored = {rows: measure_cycle(rows, FIRST_CYCLE + timedelta(hours=i)) for i, rows in enumerate(sizes)}
    smallest, largest = sizes[0], sizes[-1]
    return [
        *(
            Comparison(f"XCom per PRIMARY task, {rows:,} output rows", Figure("stored", size, "B"), LIMIT, at_most(1.0))
            for rows, size in stored.items()
        ),
        Comparison(
            f"XCom flat from {smallest:,} to {largest:,} rows",
            Figure(f"at {largest:,}", stored[largest], "B"),
            Figure(f"at {smallest:,}", stored[smallest], "B"),
            at_most(1.1),
            "measured by real dag.test() cycles; bytes = octet_length(value::text) in xcom",
        ),
    ]
