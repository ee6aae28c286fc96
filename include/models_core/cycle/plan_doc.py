"""The Markdown shown as the DAG's docs: the plan it was built from, and its warnings."""

from __future__ import annotations

from models_core.plan import Plan
from models_core.settings import Settings


def render_plan_doc(plan: Plan, settings: Settings, stale_reason: str | None = None) -> str:
    """Deterministic for a given plan, so an unchanged registry gives an unchanged DAG."""
    lines = []
    if stale_reason:
        lines += [
            f"> **Warning: this DAG runs its last-known-good plan** because {stale_reason}. "
            "It returns to the registry's plan as soon as that one can run.",
            "",
        ]
    lines += [
        "# detection_models",
        "",
        f"One run is one cycle of every ACTIVE model version in schema `{settings.schema}` "
        f"(connection `{settings.conn_id}`), implemented in package `{settings.models_package}`.",
        f"Plan fingerprint `{plan.fingerprint}`.",
        "",
        "| # | model | PRIMARY | SHADOW / CHALLENGER | upstream | runs |",
        "|---|---|---|---|---|---|",
    ]
    for number, model in enumerate(plan.models, start=1):
        primary = f"{model.primary.version} (id {model.primary.version_id})" if model.primary else "none"
        shadows = ", ".join(f"{s.version} {s.role} (id {s.version_id})" for s in model.shadows) or "none"
        upstream = ", ".join(model.upstream) or "none"
        runs = f"no: {model.blocked_reason}" if model.blocked_reason else "yes"
        lines.append(f"| {number} | `{model.model_id}` | {primary} | {shadows} | {upstream} | {runs} |")
    if not plan.models:
        lines.append("| | no ACTIVE versions with a model class | | | | |")
    if plan.warnings:
        lines += ["", "## Registry warnings", ""] + [f"- {warning}" for warning in plan.warnings]
    return "\n".join(lines) + "\n"
