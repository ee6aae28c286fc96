"""What a registry change does to the cycle DAG: the tasks and edges it adds or removes. Pure."""

from __future__ import annotations

from models_core.plan import Plan


def plan_difference(current: Plan, parsed: Plan | None) -> dict[str, list[str]]:
    """Tasks and edges the registry now describes that the last parsed DAG lacks, and back."""

    def shape(plan: Plan | None) -> tuple[set[str], set[str]]:
        if plan is None:
            return set(), set()
        tasks: set[str] = set()
        edges: set[str] = set()
        primaries = {m.model_id: m.primary.task_id for m in plan.models if m.primary}
        for model in plan.models:
            tasks.update(v.task_id for v in model.versions)
            for version in model.versions:
                edges.update(f"{primaries[dep]} >> {version.task_id}" for dep in model.upstream if dep in primaries)
            if model.primary:
                edges.update(f"{model.primary.task_id} >> {s.task_id}" for s in model.shadows)
        return tasks, edges

    now_tasks, now_edges = shape(current)
    old_tasks, old_edges = shape(parsed)
    return {
        "tasks_added": sorted(now_tasks - old_tasks),
        "tasks_removed": sorted(old_tasks - now_tasks),
        "edges_added": sorted(now_edges - old_edges),
        "edges_removed": sorted(old_edges - now_edges),
    }
