"""Why a model task did not run or failed, kept next to its outcome row.

The task writes the cause of a skip it decides itself (its backend is DOWN) and the
message of its failure; the cycle summary reads them, gives the tasks Airflow skipped
downstream of a skipped task that task's cause and reason, and the self-healing review puts
the failures' messages in the audit trail of a version it moves to ERROR.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2.extensions import connection as PgConnection
from psycopg2.extras import execute_values

from models_core.settings import Settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

#: Failure messages are kept this short: they go into audit reasons and notifications.
MESSAGE_CHARS = 500


def record_skip(conn: PgConnection, *, dag_run_id: str, task_id: str, cycle: datetime, model_id: str,
                version_id: int, role: str, cause: str, reason: str) -> None:
    """The outcome row of a task that skips before running its model, with the cause."""
    with conn, conn.cursor() as cur:
        cur.execute(queries("cycle/outcomes.sql")["record_task_skip"], {
            "dag_run_id": dag_run_id, "task_id": task_id, "cycle": cycle, "model_id": model_id,
            "version_id": version_id, "role": role, "skip_cause": cause, "reason": reason})


def record_failure(settings: Settings, *, dag_run_id: str, task_id: str, error: BaseException) -> None:
    """The failure's message on the task's outcome row, on a connection of its own.

    Best effort: when the database is what failed, the message stays in the task log only.
    """
    message = " ".join(f"{type(error).__name__}: {error}".split())[:MESSAGE_CHARS]
    try:
        with registry_connection(settings, application_name="models_core:task_failure") as conn:
            with conn, conn.cursor() as cur:
                cur.execute(queries("cycle/outcomes.sql")["record_task_failure"],
                            {"dag_run_id": dag_run_id, "task_id": task_id, "reason": message})
    except psycopg2.Error as exc:
        log.warning("%s: could not record the failure's message (%s)", task_id, " ".join(str(exc).split()))


def read_notes(conn: PgConnection, dag_run_id: str) -> dict[str, tuple[str | None, str | None]]:
    """task_id -> (skip cause, reason) as the run's tasks recorded them."""
    with conn.cursor() as cur:
        cur.execute(queries("cycle/outcomes.sql")["task_notes"], {"dag_run_id": dag_run_id})
        rows = cur.fetchall()
    conn.rollback()
    return {task_id: (cause, reason) for task_id, cause, reason in rows}


def note_inherited_causes(cur: Any, dag_run_id: str, inherited: dict[str, tuple[str, str]]) -> None:
    """Give tasks skipped downstream of a skipped task that task's cause and reason (in the caller's transaction)."""
    if inherited:
        execute_values(cur, queries("cycle/outcomes.sql")["note_inherited_causes"],
                       [(dag_run_id, task_id, cause, reason) for task_id, (cause, reason) in sorted(inherited.items())])
