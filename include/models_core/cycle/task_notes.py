"""How a model task ended and why it did not run or failed, kept on its outcome row.

The task writes its own final state when it ends (so a task cleared and run again without
its cycle summary does not stay ``running``), the cause of a skip it decides itself (its
backend is DOWN) and the message of its failure; the cycle summary writes Airflow's final
states over them, gives the tasks Airflow skipped downstream of a skipped task that task's
cause and reason, and the self-healing review puts the failures' messages in the audit
trail of a version it moves to ERROR.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection as PgConnection
from psycopg2.extras import execute_values

from models_core.settings import Settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries
from models_core.store.transient import one_line

log = logging.getLogger(__name__)

#: Failure messages are kept this short: they go into audit reasons and notifications.
MESSAGE_CHARS = 500


def record_skip(
    conn: PgConnection,
    *,
    dag_run_id: str,
    task_id: str,
    cycle: datetime,
    model_id: str,
    version_id: int,
    role: str,
    cause: str,
    reason: str,
) -> None:
    """The outcome row of a task that skips before running its model, with the cause."""
    with conn, conn.cursor() as cur:
        cur.execute(
            queries("cycle/outcomes.sql")["record_task_skip"],
            {
                "dag_run_id": dag_run_id,
                "task_id": task_id,
                "cycle": cycle,
                "model_id": model_id,
                "version_id": version_id,
                "role": role,
                "skip_cause": cause,
                "reason": reason,
            },
        )


def record_end(conn: PgConnection, *, dag_run_id: str, task_id: str, state: str, reason: str | None = None) -> None:
    """The task's own final state on the row it wrote when it started, with the reason of a skip."""
    with conn, conn.cursor() as cur:
        cur.execute(
            queries("cycle/outcomes.sql")["record_task_end"],
            {
                "dag_run_id": dag_run_id,
                "task_id": task_id,
                "state": state,
                "reason": None if reason is None else storable_text(reason, MESSAGE_CHARS),
            },
        )


def record_failure(
    settings: Settings, *, dag_run_id: str, task_id: str, error: BaseException, state: str = "failed"
) -> None:
    """The failure's state and message on the task's outcome row, on a connection of its own.

    Called while the model's exception propagates, so it never raises: whatever goes wrong
    here (the database, the message itself) is logged with the failure's message, and the
    task still fails with the model's own exception.
    """
    message = failure_message(error)
    try:
        with registry_connection(settings, application_name="models_core:task_failure") as conn:
            with conn, conn.cursor() as cur:
                cur.execute(
                    queries("cycle/outcomes.sql")["record_task_end"],
                    {"dag_run_id": dag_run_id, "task_id": task_id, "state": state, "reason": message},
                )
    except Exception as exc:  # the model's error must stay the task's error
        log.warning(
            "%s: could not record the failure on its outcome row (%s); the failure was: %s",
            task_id,
            one_line(exc),
            message,
        )


def failure_message(error: BaseException) -> str:
    """``Type: message`` on one line, storable as text, at most :data:`MESSAGE_CHARS` long.

    A model raises what it likes: a message whose ``__str__`` itself raises is replaced by
    a note saying so.
    """
    try:
        text = str(error)
    except Exception as exc:  # a model's own exception class, broken
        text = f"(its message could not be read: {type(exc).__name__})"
    return storable_text(f"{type(error).__name__}: {text}", MESSAGE_CHARS)


def storable_text(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters, as PostgreSQL text can hold it.

    Text cannot hold a NUL and UTF-8 cannot encode a lone surrogate: both are written as
    their escapes (``\\x00``, ``\\udc80``) instead of making the write fail.
    """
    cleaned = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


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
        execute_values(
            cur,
            queries("cycle/outcomes.sql")["note_inherited_causes"],
            [(dag_run_id, task_id, cause, reason) for task_id, (cause, reason) in sorted(inherited.items())],
        )
