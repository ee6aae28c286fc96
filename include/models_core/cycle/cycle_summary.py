"""The cycle's last task: count what happened, record it, review it, and decide the run's colour.

The run fails if and only if a PRIMARY failed; a failed SHADOW/CHALLENGER stays visible on
its own task and leaves the run green. A task skipped because its backend is DOWN, and the
tasks skipped downstream of it, count apart as "skipped: backend down", with its reason.
Once the outcomes are stored, the self-healing review (:mod:`models_core.healing.review`)
acts on them: ERROR after repeated failures, automatic rollback or alert. Its own trouble is
logged naming the model and never changes the run's colour.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException
from psycopg2.extras import execute_values

from models_core.backends.availability import BACKEND_DOWN
from models_core.cycle.model_task import cycle_timestamp
from models_core.cycle.task_notes import note_inherited_causes, read_notes
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries
from models_core.store.transient import retry_transient

log = logging.getLogger(__name__)

_NOT_RUN_FOR_INPUT = {"upstream_failed", "upstream_skipped"}
_SKIPPED = {"skipped", "upstream_skipped"}
Note = tuple[str | None, str | None]  # (skip cause, reason) of a task


def skip_causes(
    tasks: dict[str, dict[str, Any]], states: dict[str, str | None], notes: dict[str, Note]
) -> dict[str, tuple[str, str]]:
    """The (cause, reason) of each skipped task that has one: its own, else its upstream's.

    ``notes`` are what the tasks recorded themselves (a task whose backend is DOWN). A task
    Airflow skipped because an upstream was skipped gets the cause of the first such upstream
    that has one: an upstream model's PRIMARY, or for a SHADOW/CHALLENGER its own PRIMARY.
    """
    primary_of = {info.get("model_id"): task_id for task_id, info in tasks.items() if info["role"] == "PRIMARY"}
    resolved: dict[str, tuple[str, str] | None] = {}

    def cause_of(task_id: str) -> tuple[str, str] | None:
        if task_id not in resolved:
            cause, reason = notes.get(task_id, (None, None))
            found = (cause, reason or "") if cause else None
            info = tasks.get(task_id)
            if found is None and info is not None and states.get(task_id) in _SKIPPED:
                upstream = list(info.get("upstream", ()))
                if info["role"] != "PRIMARY" and info.get("model_id") in primary_of:
                    upstream.append(primary_of[info.get("model_id")])
                found = next((c for c in map(cause_of, upstream) if c is not None), None)
            resolved[task_id] = found
        return resolved[task_id]

    return {task_id: cause for task_id in sorted(tasks) if (cause := cause_of(task_id)) is not None}


def count_outcomes(
    tasks: dict[str, dict[str, Any]], states: dict[str, str | None], causes: dict[str, tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The seed's summary counts from the plan's tasks and their final states.

    ``tasks`` maps task_id to ``{"model_id", "version_id", "role", "blocked", "upstream"}``,
    ``upstream`` being the task ids of the upstream models' PRIMARY tasks; ``causes`` are
    the skip causes from :func:`skip_causes`. A task skipped because a backend is DOWN
    (itself or upstream) counts as skipped for a backend down; otherwise, a PRIMARY that
    Airflow skipped because an upstream did not succeed counts as missing its upstream, and
    one skipped by its own re-check (its version left the registry) as inactive.
    """
    causes = causes or {}
    counts: Counter[str] = Counter()
    failed_primaries = []
    for task_id, info in sorted(tasks.items()):
        state = states.get(task_id)
        backend_down = causes.get(task_id, (None,))[0] == BACKEND_DOWN and state in _SKIPPED
        if info["role"] == "PRIMARY":
            if state == "success":
                counts["executed"] += 1
            elif state == "failed":
                counts["failed"] += 1
                failed_primaries.append(task_id)
            elif backend_down:
                counts["skipped_backend_down"] += 1
            elif (
                info["blocked"]
                or state in _NOT_RUN_FOR_INPUT
                or (state == "skipped" and any(states.get(up) != "success" for up in info.get("upstream", ())))
            ):
                counts["skipped_missing_upstream"] += 1
            elif state == "skipped":
                counts["skipped_inactive"] += 1
        elif state == "success":
            counts["shadows_ran"] += 1
        elif state == "failed":
            counts["shadows_failed"] += 1
        elif backend_down:
            counts["shadows_skipped_backend_down"] += 1
    keys = (
        "executed",
        "failed",
        "skipped_missing_upstream",
        "skipped_inactive",
        "skipped_backend_down",
        "shadows_ran",
        "shadows_failed",
        "shadows_skipped_backend_down",
    )
    return {**{key: counts[key] for key in keys}, "failed_primaries": failed_primaries}


def summarize_cycle(tasks: dict[str, dict[str, Any]], plan: dict[str, str | None]) -> dict[str, Any]:
    """Record the counts, the plan and each task's final state; fail if a PRIMARY failed.

    ``plan`` has the plan's ``fingerprint`` and, when the DAG ran its last-known-good plan,
    the ``stale_reason``.
    """
    if plan.get("stale_reason"):
        log.warning("this cycle runs the last-known-good plan %s because %s", plan["fingerprint"], plan["stale_reason"])
    context = get_current_context()
    ti = context["ti"]
    run_id = context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    cycle = cycle_timestamp(context)
    settings = load_settings()
    summary = retry_transient(lambda: _record(settings, run_id, cycle, tasks, states, plan), "cycle summary")
    log.info(
        "cycle %s: %s",
        cycle.isoformat(),
        " ".join(f"{key}={value}" for key, value in summary.items() if isinstance(value, int)),
    )
    # Imported here, not at the top: a worker imports this module with the DAG file before
    # every model task, and the review brings the whole registry lifecycle with it.
    from models_core.healing.review import review_cycle

    summary["review"] = review_cycle(settings, run_id, cycle, context)
    if summary["failed_primaries"]:
        raise AirflowFailException(f"PRIMARY tasks failed: {', '.join(summary['failed_primaries'])}")
    return summary


def _record(
    settings: Settings,
    run_id: str,
    cycle: datetime,
    tasks: dict[str, dict[str, Any]],
    states: dict[str, str | None],
    plan: dict[str, str | None],
) -> dict[str, Any]:
    """Count, then store the summary row, every task's outcome and the inherited skip causes in one transaction."""
    q = queries("cycle/results.sql")
    with registry_connection(settings, application_name="models_core:summary", reuse_kept=True) as conn:
        notes = read_notes(conn, run_id)
        causes = skip_causes(tasks, states, notes)
        summary = count_outcomes(tasks, states, causes)
        for task_id, (_cause, reason) in causes.items():
            log.info("%s skipped: %s", task_id, reason)
        outcomes = [
            (run_id, task_id, cycle, info["model_id"], info["version_id"], info["role"], states.get(task_id))
            for task_id, info in sorted(tasks.items())
        ]
        record = {
            **summary,
            "dag_run_id": run_id,
            "cycle": cycle,
            "plan_fingerprint": plan.get("fingerprint"),
            "plan_stale_reason": plan.get("stale_reason"),
        }
        with conn, conn.cursor() as cur:
            cur.execute(q["upsert_cycle_summary"], record)
            if outcomes:
                execute_values(cur, q["upsert_task_outcomes"], outcomes)
            note_inherited_causes(
                cur,
                run_id,
                {task_id: cause for task_id, cause in causes.items() if not (notes.get(task_id) or (None,))[0]},
            )
    return summary
