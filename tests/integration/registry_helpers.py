"""Helpers for integration tests: registry rows written as an operator would, and DAG runs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg2 import sql

from models_core.cycle.dag_factory import build_cycle_dag
from models_core.registry.actors import Actor, ActorKind, person_permissions
from models_core.registry.cli import main

ROOT = Path(__file__).resolve().parents[2]


def person(name: str, *, govern: bool = True) -> Actor:
    """A person for tests of the Python API (the registry API builds them from Airflow's login)."""
    return Actor(name, ActorKind.PERSON, person_permissions(may_edit=True, may_govern=govern))


class Registry:
    """The registry database of one test, with helpers to write rows as an operator would."""

    def __init__(self, conn) -> None:
        self.conn = conn

    @property
    def db_user(self) -> str:
        """The database user the tests connect as: the actor of ``modelreg`` in direct database mode."""
        return self.query("SELECT session_user::text")[0][0]

    def add_version(
        self, model_id: str, version: str, role: str = "PRIMARY", status: str = "ACTIVE", params: dict | None = None
    ) -> int:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (model_id, version, status, role, json.dumps(params or {})),
            )
            return cur.fetchone()[0]

    def add_dependency(self, model_id: str, depends_on: str) -> None:
        self.execute(
            "INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES (%s, %s)", (model_id, depends_on)
        )

    def execute(self, statement, params=None) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(statement, params)

    def query(self, statement, params=None) -> list[tuple]:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()

    def outputs(self, version_id: int, cycle: datetime) -> list[tuple]:
        return self.query(
            "SELECT input_ref, outputs FROM detection_model_run_outputs"
            " WHERE version_id = %s AND cycle_started_at = %s ORDER BY output_seq",
            (version_id, cycle),
        )

    def seed_cycles(
        self,
        model_id: str,
        version_id: int,
        states: list[str],
        metrics: dict[str, float] | None = None,
        role: str = "SHADOW",
        hours_ago: float = 2,
        framework_metrics: dict[str, float] | None = None,
    ) -> None:
        """Task outcomes and metrics of past cycles, as the cycle's summary task and persistence
        write them: cycle i at ``hours_ago`` hours back plus i times 5 minutes; each cycle that
        succeeded records ``metrics`` (the model's) and ``framework_metrics`` (is_default)."""
        start = datetime.now(UTC) - timedelta(hours=hours_ago)
        for i, state in enumerate(states):
            cycle = start + timedelta(minutes=5 * i)
            self.execute(
                "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at,"
                " model_id, version_id, role, state) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (f"seed-{cycle.isoformat()}", f"{model_id}.v{version_id}", cycle, model_id, version_id, role, state),
            )
            if state != "success":
                continue
            for metric_set, is_default in ((metrics, False), (framework_metrics, True)):
                for key, value in (metric_set or {}).items():
                    self.execute(
                        "INSERT INTO detection_model_metrics (cycle_started_at, model_id, version_id, role,"
                        " metric_key, metric_value, is_default) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (cycle, model_id, version_id, role, key, value, is_default),
                    )

    def snapshot(self) -> dict[str, list[str]]:
        """Every row of every registry table and every sequence position, as text: two equal
        snapshots mean nothing was written, not even a row rolled back later."""
        tables = [
            t
            for (t,) in self.query(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
                " AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
            )
        ]
        snapshot = {
            table: [
                row
                for (row,) in self.query(sql.SQL("SELECT t::text FROM {} t ORDER BY 1").format(sql.Identifier(table)))
            ]
            for table in tables
        }
        snapshot["sequences"] = [
            f"{name}={value}"
            for name, value in self.query(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()"
                " ORDER BY sequencename"
            )
        ]
        return snapshot

    def metrics(self, version_id: int, cycle: datetime) -> dict[str, float]:
        return dict(
            self.query(
                "SELECT metric_key, metric_value FROM detection_model_metrics"
                " WHERE version_id = %s AND cycle_started_at = %s",
                (version_id, cycle),
            )
        )


def modelreg(capsys, *argv: str, api=None, user: str | None = None):
    """Run the CLI in-process with --json; returns (exit code, parsed JSON or text, stderr).

    Without ``user`` it runs in direct database mode (a service account, the database user);
    with ``user`` it is logged in to ``api`` (the in-process Airflow API app) as that person.
    """
    capsys.readouterr()  # drop what earlier steps (e.g. DAG runs) printed
    code = _main(["--json", *argv], api, user)
    out, err = capsys.readouterr()
    return code, (json.loads(_without_access_log(out)) if code == 0 else out), err


#: A line the in-process API app logs to stdout (a request it served, a DAG run it made).
_APP_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+\s*\] ")


def _without_access_log(out: str) -> str:
    """The in-process API app logs to stdout; the command's output is the rest."""
    return "\n".join(line for line in out.splitlines() if not _APP_LOG_LINE.match(line))


def modelreg_text(capsys, *argv: str, api=None, user: str | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process as a person would, without --json: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = _main(list(argv), api, user)
    out, err = capsys.readouterr()
    return code, _without_access_log(out), err


def _main(argv: list[str], api, user: str | None) -> int:
    if user is None:
        return main(argv)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__MODEL_REGISTRY__API_TOKEN", api.token(user))
        return main(argv, http=api.client)


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
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
    return CycleRun(
        state=str(dag_run.state),
        run_id=dag_run.run_id,
        task_states={task_id: str(state) if state else None for task_id, state in rows},
    )


def backtest_runs() -> list[tuple[str, dict, str | None, str]]:
    """Every run of the backtest DAG in the metadata database: run id, conf, who triggered it, state."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from models_core.backtest.request import BACKTEST_DAG_ID

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == BACKTEST_DAG_ID)).all()
        return [(r.run_id, r.conf, r.triggering_user_name, str(r.state)) for r in runs]
