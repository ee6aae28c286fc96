"""Renders a :class:`~models_core.plan.Plan` into the ``detection_models`` Airflow DAG.

One TaskGroup per model holds its PRIMARY task and one task per SHADOW/CHALLENGER.
PRIMARY references flow downstream through XCom (and out to other DAGs as the model's
Asset, see :mod:`assets`); shadow tasks hang off their PRIMARY and nothing depends on them
except the bookkeeping leaf ``cycle_summary``. Every task has an
execution timeout within the schedule interval and two cycles may be open at once, so a
SHADOW that hangs holds only its own cycle, never the next cycle's PRIMARY tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, TaskGroup, TriggerRule, WeightRule, XComArg, get_parsing_context, task

from models_core.cycle.assets import primary_asset
from models_core.cycle.cycle_summary import summarize_cycle
from models_core.cycle.deadline import cycle_deadline
from models_core.cycle.model_task import run_model_version
from models_core.cycle.plan_doc import render_plan_doc
from models_core.cycle.plan_source import load_plan
from models_core.plan import CYCLE_DAG_ID, LeftOutVersion, Plan, PlannedModel, PlannedVersion
from models_core.settings import Settings, load_settings

DAG_ID = CYCLE_DAG_ID
SUMMARY_TASK_ID = "cycle_summary"
START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
PRIMARY_PRIORITY = 10
SHADOW_PRIORITY = 1
TAGS = ["model-registry", "detection"]


def default_args(settings: Settings, **task_defaults: Any) -> dict[str, Any]:
    """Every DAG of the product has one owner, ``[model_registry] dag_owner``, and its own task defaults."""
    return {"owner": settings.dag_owner, **task_defaults}


def _spec(version: PlannedVersion, model: PlannedModel, stale_reason: str | None) -> dict[str, Any]:
    return {
        "model_id": version.model_id,
        "version": version.version,
        "version_id": version.version_id,
        "role": version.role,
        "class_path": version.class_path,
        "blocked_reason": model.blocked_reason,
        "plan_stale_reason": stale_reason,
    }


def _left_out_spec(version: LeftOutVersion) -> dict[str, Any]:
    return {
        "model_id": version.model_id,
        "version": version.version,
        "version_id": version.version_id,
        "role": version.role,
        "class_path": None,
        "blocked_reason": None,
        "plan_stale_reason": None,
        "left_out_reason": version.reason,
    }


def _planned_doc(version: PlannedVersion, model: PlannedModel) -> str:
    doc = f"`{version.label()}` (version id {version.version_id}), class `{version.class_path}`."
    if model.blocked_reason:
        doc += f"\n\nDoes not run: {model.blocked_reason}."
    return doc


def _version_task(version: PlannedVersion | LeftOutVersion, settings: Settings, doc: str) -> Callable[..., XComArg]:
    is_primary = version.role == "PRIMARY"
    return task(
        task_id=version.task_name,
        multiple_outputs=False,
        pool=None if is_primary else settings.shadow_pool,
        outlets=[primary_asset(version.model_id)] if is_primary else [],
        priority_weight=PRIMARY_PRIORITY if is_primary else SHADOW_PRIORITY,
        weight_rule=WeightRule.ABSOLUTE,
        execution_timeout=settings.task_timeout,
        doc_md=doc,
    )(run_model_version)


def _worker_task_id() -> str | None:
    """On a worker, the id of the task it parses this file for; None on the DAG processor."""
    context = get_parsing_context()
    return context.task_id if context.dag_id == DAG_ID and context.task_id else None


def worker_scope(plan: Plan, task_id: str | None) -> set[str] | None:
    """The tasks a worker needs to run ``task_id``: the task and the tasks whose XCom it reads.

    A worker re-parses the DAG file before every task, and building every task of a large
    cycle there costs more than the whole rest of the task; so a worker builds only these.
    None (build everything) on the DAG processor, in ``dag.test()`` and ``airflow dags test``.
    """
    if task_id is None:
        return None
    if task_id == SUMMARY_TASK_ID:
        return {task_id}
    model_id = task_id.split(".", 1)[0]
    model = next((m for m in plan.models if m.model_id == model_id), None)
    if model is None:
        return {task_id}
    primaries = {m.model_id: m.primary.task_id for m in plan.models if m.primary}
    scope = {task_id} | {primaries[dep] for dep in model.upstream if dep in primaries}
    if model.primary is not None and task_id != model.primary.task_id:
        scope.add(model.primary.task_id)  # a SHADOW/CHALLENGER reads its PRIMARY's result
    return scope


def _not_in_plan(task_id: str, stale_reason: str | None) -> None:
    """A task this worker's plan has no version for: skip when the registry says so, else fail saying why."""
    from airflow.sdk.exceptions import AirflowException, AirflowSkipException

    if stale_reason:
        raise AirflowException(
            f"{task_id} did not run: it is not in the last-known-good plan this worker's "
            f"parse fell back to because {stale_reason}"
        )
    raise AirflowSkipException(
        f"{task_id} skipped: the registry has no ACTIVE version for this task any more "
        "(demoted, archived or deleted since the run was scheduled)"
    )


def _task_not_in_plan(dag: DAG, plan: Plan, task_id: str, stale_reason: str | None, settings: Settings) -> None:
    """What a worker runs for a task its plan does not have, so that it says the true reason.

    An ACTIVE version the plan left out (its model module failed to import here, say) gets
    the model task, which re-checks the version, records its start and fails with the
    reason; otherwise the task skips when the registry no longer has the version, or fails
    when the plan is the last-known-good one and the registry's could not be had.
    """
    model_id, _, task_name = task_id.partition(".")
    group = dag.task_group.children.get(model_id)
    with group if isinstance(group, TaskGroup) else TaskGroup(group_id=model_id):
        left_out = plan.left_out_version(task_id)
        if left_out is not None:
            doc = f"`{left_out.label()}` (version id {left_out.version_id}) cannot run here: {left_out.reason}."
            _version_task(left_out, settings, doc)(_left_out_spec(left_out), {})
        else:
            task(task_id=task_name)(_not_in_plan)(task_id, stale_reason)


def build_cycle_dag(settings: Settings | None = None) -> DAG:
    """Build ``detection_models`` from the registry (or its last-known-good plan).

    On a worker, only the task it runs and its XCom sources are built (see :func:`worker_scope`);
    a task its plan does not have becomes one that says why instead of failing with "task
    not found" (see :func:`_task_not_in_plan`).
    """
    settings = settings or load_settings()
    worker_task = _worker_task_id()
    loaded = load_plan(settings, reuse_cached=worker_task is not None)
    plan = loaded.plan
    scope = worker_scope(plan, worker_task)
    summary_tasks: dict[str, dict[str, Any]] = {}
    with DAG(
        dag_id=DAG_ID,
        schedule=settings.schedule,
        start_date=START_DATE,
        catchup=settings.catchup,
        max_active_runs=settings.max_active_runs,
        doc_md=render_plan_doc(plan, settings, loaded.stale_reason),
        tags=TAGS,
        default_args=default_args(settings, retries=settings.retries, retry_delay=timedelta(seconds=30)),
        deadline=cycle_deadline(settings.cycle_deadline, DAG_ID),
    ) as dag:
        primary_refs: dict[str, Any] = {}
        primary_task_ids = {m.model_id: m.primary.task_id for m in plan.models if m.primary}
        model_tasks = []
        for model in plan.models:
            upstream_tasks = sorted(primary_task_ids[dep] for dep in model.upstream if dep in primary_task_ids)
            for version in model.versions:
                summary_tasks[version.task_id] = {
                    "model_id": version.model_id,
                    "version_id": version.version_id,
                    "role": version.role,
                    "blocked": bool(model.blocked_reason),
                    "upstream": upstream_tasks,
                }
            wanted = [v for v in model.versions if scope is None or v.task_id in scope]
            if not wanted:
                continue
            with TaskGroup(group_id=model.model_id, tooltip=model.blocked_reason or ""):
                upstream = {dep: primary_refs[dep] for dep in model.upstream if dep in primary_refs}
                primary_ref = None
                if model.primary is not None and model.primary in wanted:
                    primary_ref = _version_task(model.primary, settings, _planned_doc(model.primary, model))(
                        _spec(model.primary, model, loaded.stale_reason), upstream
                    )
                    primary_refs[model.model_id] = primary_ref
                    model_tasks.append(primary_ref)
                for shadow in model.shadows:
                    if shadow in wanted:
                        model_tasks.append(
                            _version_task(shadow, settings, _planned_doc(shadow, model))(
                                _spec(shadow, model, loaded.stale_reason), upstream, primary_ref
                            )
                        )
        if worker_task and "." in worker_task and worker_task not in summary_tasks:
            _task_not_in_plan(dag, plan, worker_task, loaded.stale_reason, settings)
        if scope is None or SUMMARY_TASK_ID in scope:
            summary = task(
                task_id=SUMMARY_TASK_ID,
                trigger_rule=TriggerRule.ALL_DONE,
                retries=0,
                multiple_outputs=False,
                execution_timeout=settings.task_timeout,
            )(summarize_cycle)(summary_tasks, {"fingerprint": plan.fingerprint, "stale_reason": loaded.stale_reason})
            model_tasks >> summary
    return dag
