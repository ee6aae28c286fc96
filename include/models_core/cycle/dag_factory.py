"""Renders a :class:`~models_core.plan.Plan` into the ``detection_models`` Airflow DAG.

One TaskGroup per model holds its PRIMARY task and one task per SHADOW/CHALLENGER.
PRIMARY references flow downstream through XCom; shadow tasks hang off their PRIMARY and
nothing depends on them except the bookkeeping leaf ``cycle_summary``. Every task has an
execution timeout within the schedule interval and two cycles may be open at once, so a
SHADOW that hangs holds only its own cycle, never the next cycle's PRIMARY tasks.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, TaskGroup, TriggerRule, WeightRule, get_parsing_context, task

from models_core.cycle.cycle_summary import summarize_cycle
from models_core.cycle.model_task import run_model_version
from models_core.cycle.plan_doc import render_plan_doc
from models_core.cycle.plan_source import load_plan
from models_core.plan import PlannedModel, PlannedVersion
from models_core.settings import Settings, load_settings

DAG_ID = "detection_models"
SUMMARY_TASK_ID = "cycle_summary"
START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
PRIMARY_PRIORITY = 10
SHADOW_PRIORITY = 1
TAGS = ["model-registry", "detection"]


def _spec(version: PlannedVersion, model: PlannedModel, stale_reason: str | None) -> dict[str, Any]:
    return {"model_id": version.model_id, "version": version.version, "version_id": version.version_id,
            "role": version.role, "class_path": version.class_path, "blocked_reason": model.blocked_reason,
            "plan_stale_reason": stale_reason}


def _version_task(version: PlannedVersion, model: PlannedModel, settings: Settings):
    is_primary = version.role == "PRIMARY"
    doc = f"`{version.label()}` (version id {version.version_id}), class `{version.class_path}`."
    if model.blocked_reason:
        doc += f"\n\nDoes not run: {model.blocked_reason}."
    return task(
        run_model_version,
        task_id=version.task_name,
        multiple_outputs=False,
        pool=None if is_primary else settings.shadow_pool,
        priority_weight=PRIMARY_PRIORITY if is_primary else SHADOW_PRIORITY,
        weight_rule=WeightRule.ABSOLUTE,
        execution_timeout=settings.task_timeout,
        doc_md=doc,
    )


def _vanished_task_id() -> tuple[str, str] | None:
    """On a worker, the (model_id, task name) it was sent to run, if the registry dropped it.

    A worker re-parses this file before running a task. If the version left the registry
    after the run was scheduled, the task would no longer exist and fail with "task not
    found"; a placeholder that skips cleanly is added instead.
    """
    context = get_parsing_context()
    if context.dag_id != DAG_ID or not context.task_id or "." not in context.task_id:
        return None
    model_id, task_name = context.task_id.split(".", 1)
    return model_id, task_name


def _skip_vanished(task_id: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(f"{task_id} is no longer ACTIVE in the registry; nothing to run")


def build_cycle_dag(settings: Settings | None = None) -> DAG:
    """Build ``detection_models`` from the registry (or its last-known-good plan)."""
    settings = settings or load_settings()
    loaded = load_plan(settings)
    plan = loaded.plan
    vanished = _vanished_task_id()
    summary_tasks: dict[str, dict[str, Any]] = {}
    with DAG(
        dag_id=DAG_ID,
        schedule=settings.schedule,
        start_date=START_DATE,
        catchup=settings.catchup,
        max_active_runs=settings.max_active_runs,
        doc_md=render_plan_doc(plan, settings, loaded.stale_reason),
        tags=TAGS,
        default_args={"owner": "model-registry", "retries": settings.retries,
                      "retry_delay": timedelta(seconds=30)},
    ) as dag:
        primary_refs: dict[str, Any] = {}
        primary_task_ids = {m.model_id: m.primary.task_id for m in plan.models if m.primary}
        model_tasks = []
        for model in plan.models:
            with TaskGroup(group_id=model.model_id, tooltip=model.blocked_reason or ""):
                upstream = {dep: primary_refs[dep] for dep in model.upstream if dep in primary_refs}
                primary_ref = None
                if model.primary is not None:
                    primary_ref = _version_task(model.primary, model, settings)(
                        _spec(model.primary, model, loaded.stale_reason), upstream)
                    primary_refs[model.model_id] = primary_ref
                    model_tasks.append(primary_ref)
                for shadow in model.shadows:
                    model_tasks.append(_version_task(shadow, model, settings)(
                        _spec(shadow, model, loaded.stale_reason), upstream, primary_ref))
            upstream_tasks = sorted(primary_task_ids[dep] for dep in model.upstream if dep in primary_task_ids)
            for version in model.versions:
                summary_tasks[version.task_id] = {"model_id": version.model_id, "version_id": version.version_id,
                                                  "role": version.role, "blocked": bool(model.blocked_reason),
                                                  "upstream": upstream_tasks}
        if vanished and ".".join(vanished) not in summary_tasks:
            group = dag.task_group.children.get(vanished[0])
            with group if isinstance(group, TaskGroup) else TaskGroup(group_id=vanished[0]):
                task(_skip_vanished, task_id=vanished[1])(".".join(vanished))
        summary = task(summarize_cycle, task_id=SUMMARY_TASK_ID, trigger_rule=TriggerRule.ALL_DONE,
                       retries=0, multiple_outputs=False, execution_timeout=settings.task_timeout)(
            summary_tasks, {"fingerprint": plan.fingerprint, "stale_reason": loaded.stale_reason})
        model_tasks >> summary
    return dag
