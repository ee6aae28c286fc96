"""Helpers for integration tests: registry rows written as an operator would, and DAG runs."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from models_core.cycle.dag_factory import build_cycle_dag

ROOT = Path(__file__).resolve().parents[2]


class Registry:
    """The registry database of one test, with helpers to write rows as an operator would."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def add_version(self, model_id: str, version: str, role: str = "PRIMARY", status: str = "ACTIVE",
                    params: dict | None = None) -> int:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (model_id, version, status, role, json.dumps(params or {})))
            return cur.fetchone()[0]

    def add_dependency(self, model_id: str, depends_on: str) -> None:
        self.execute("INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES (%s, %s)",
                     (model_id, depends_on))

    def execute(self, statement, params=None) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(statement, params)

    def query(self, statement, params=None) -> list[tuple]:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()

    def outputs(self, version_id: int, cycle: datetime) -> list[tuple]:
        return self.query("SELECT input_ref, outputs FROM detection_model_run_outputs"
                          " WHERE version_id = %s AND cycle_started_at = %s ORDER BY output_seq", (version_id, cycle))

    def metrics(self, version_id: int, cycle: datetime) -> dict[str, float]:
        return dict(self.query("SELECT metric_key, metric_value FROM detection_model_metrics"
                               " WHERE version_id = %s AND cycle_started_at = %s", (version_id, cycle)))


@dataclass
class CycleRun:
    """A finished DAG run: its state and every task's state."""

    state: str
    run_id: str
    task_states: dict[str, str | None]


def run_cycle(logical_date: datetime, dag=None) -> CycleRun:
    """Build ``detection_models`` from the registry as it is now and run it with dag.test()."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = dag or build_cycle_dag()
    dag_run = dag.test(logical_date=logical_date)
    with create_session() as session:
        rows = session.execute(select(TaskInstance.task_id, TaskInstance.state).where(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dag_run.run_id)).all()
    return CycleRun(state=str(dag_run.state), run_id=dag_run.run_id,
                    task_states={task_id: str(state) if state else None for task_id, state in rows})
