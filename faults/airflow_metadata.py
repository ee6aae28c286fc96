"""What Airflow recorded about runs and task instances, read with plain SQL from its metadata database.

The faults judge outcomes from these records (and the registry's rows), never from what
the product's own code reports about itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from faults.airflow_api import DAG_ID
from faults.environment import Workspace
from harness.airflow_processes import RunningAirflow

FINISHED = ("success", "failed")


@dataclass(frozen=True)
class DagRunRecord:
    run_id: str
    run_type: str
    state: str
    run_after: datetime
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    state: str | None
    start_date: datetime | None
    end_date: datetime | None
    try_number: int


def dag_runs(ws: Workspace) -> list[DagRunRecord]:
    rows = ws.meta_rows(
        "SELECT run_id, run_type, state, run_after, start_date, end_date FROM dag_run"
        " WHERE dag_id = %s ORDER BY run_after, id",
        (DAG_ID,),
    )
    return [DagRunRecord(*row) for row in rows]


def dag_run(ws: Workspace, run_id: str) -> DagRunRecord:
    (run,) = [r for r in dag_runs(ws) if r.run_id == run_id]
    return run


def task_instances(ws: Workspace, run_id: str) -> dict[str, TaskRecord]:
    rows = ws.meta_rows(
        "SELECT task_id, state, start_date, end_date, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
        (DAG_ID, run_id),
    )
    return {row[0]: TaskRecord(*row) for row in rows}


def wait_run_finished(ws: Workspace, airflow: RunningAirflow, run_id: str, timeout: float) -> DagRunRecord | None:
    """The run once it is success or failed; None if it is still going after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        airflow.check_alive()
        run = dag_run(ws, run_id)
        if run.state in FINISHED:
            return run
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)
