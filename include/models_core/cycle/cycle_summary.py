"""The cycle's last task: count what happened, record it, and decide the run's colour.

The run fails if and only if a PRIMARY failed; a failed SHADOW/CHALLENGER stays visible on
its own task and leaves the run green.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException
from psycopg2.extras import execute_values

from models_core.cycle.model_task import cycle_timestamp
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries
from models_core.store.transient import retry_transient

log = logging.getLogger(__name__)

_NOT_RUN_FOR_INPUT = {"upstream_failed", "upstream_skipped"}


def count_outcomes(tasks: dict[str, dict[str, Any]], states: dict[str, str | None]) -> dict[str, Any]:
    """The seed's summary counts from the plan's tasks and their final states.

    ``tasks`` maps task_id to ``{"model_id", "version_id", "role", "blocked", "upstream"}``,
    ``upstream`` being the task ids of the upstream models' PRIMARY tasks. A PRIMARY that
    Airflow skipped because an upstream did not succeed counts as missing its upstream; one
    skipped by its own re-check (its version left the registry) counts as inactive.
    """
    counts: Counter[str] = Counter()
    failed_primaries = []
    for task_id, info in sorted(tasks.items()):
        state = states.get(task_id)
        if info["role"] == "PRIMARY":
            if state == "success":
                counts["executed"] += 1
            elif state == "failed":
                counts["failed"] += 1
                failed_primaries.append(task_id)
            elif (info["blocked"] or state in _NOT_RUN_FOR_INPUT
                  or (state == "skipped" and any(states.get(up) != "success" for up in info.get("upstream", ())))):
                counts["skipped_missing_upstream"] += 1
            elif state == "skipped":
                counts["skipped_inactive"] += 1
        elif state == "success":
            counts["shadows_ran"] += 1
        elif state == "failed":
            counts["shadows_failed"] += 1
    keys = ("executed", "failed", "skipped_missing_upstream", "skipped_inactive", "shadows_ran", "shadows_failed")
    return {**{key: counts[key] for key in keys}, "failed_primaries": failed_primaries}


def summarize_cycle(tasks: dict[str, dict[str, Any]], plan: dict[str, str | None]) -> dict[str, Any]:
    """Record the counts, the plan and each task's final state; fail if a PRIMARY failed.

    ``plan`` has the plan's ``fingerprint`` and, when the DAG ran its last-known-good plan,
    the ``stale_reason``.
    """
    if plan.get("stale_reason"):
        log.warning("this cycle runs the last-known-good plan %s because %s", plan["fingerprint"],
                    plan["stale_reason"])
    context = get_current_context()
    ti = context["ti"]
    run_id = context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    summary = count_outcomes(tasks, states)
    cycle = cycle_timestamp(context)
    outcomes = [(run_id, task_id, cycle, info["model_id"], info["version_id"], info["role"], states.get(task_id))
                 for task_id, info in sorted(tasks.items())]
    record = {**summary, "dag_run_id": run_id, "cycle": cycle, "plan_fingerprint": plan.get("fingerprint"),
              "plan_stale_reason": plan.get("stale_reason")}
    retry_transient(lambda: _store(record, outcomes), "cycle summary")
    log.info("cycle %s: executed=%d failed=%d skipped_missing_upstream=%d skipped_inactive=%d "
             "shadows_ran=%d shadows_failed=%d", cycle.isoformat(), summary["executed"], summary["failed"],
             summary["skipped_missing_upstream"], summary["skipped_inactive"], summary["shadows_ran"],
             summary["shadows_failed"])
    if summary["failed_primaries"]:
        raise AirflowFailException(f"PRIMARY tasks failed: {', '.join(summary['failed_primaries'])}")
    return summary


def _store(record: dict[str, Any], outcomes: list[tuple]) -> None:
    """The summary row and every task's outcome, in one transaction."""
    q = queries("cycle/results.sql")
    with registry_connection(load_settings(), application_name="models_core:summary") as conn:
        with conn, conn.cursor() as cur:
            cur.execute(q["upsert_cycle_summary"], record)
            if outcomes:
                execute_values(cur, q["upsert_task_outcomes"], outcomes)
