"""Change routes: the registry API's side of the one write path (:mod:`models_core.registry.changes`).

Each route takes the change's JSON body, builds the actor from the logged-in Airflow user
(``security.request_actor``) and hands both to :func:`~models_core.registry.changes.perform`,
which ``modelreg`` in direct database mode calls too. Each needs edit access to
``detection_models`` and a JSON body (see ``security``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from models_core.api.params import BackendName, ModelId, Version
from models_core.api.security import EDIT_ACCESS, ActorDep
from models_core.registry import changes as c

router = APIRouter(dependencies=EDIT_ACCESS)


def _on_version(model_id: str, version: str) -> dict[str, str]:
    return {"model_id": model_id, "version": version}


@router.post(c.CHANGES["register"].path)
def register(model_id: ModelId, body: c.Register, actor: ActorDep) -> dict[str, Any]:
    return c.perform("register", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["activate"].path)
def activate(model_id: ModelId, version: Version, body: c.Activate, actor: ActorDep) -> dict[str, Any]:
    return c.perform("activate", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["deactivate"].path)
def deactivate(model_id: ModelId, version: Version, body: c.Retire, actor: ActorDep) -> dict[str, Any]:
    return c.perform("deactivate", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["archive"].path)
def archive(model_id: ModelId, version: Version, body: c.Retire, actor: ActorDep) -> dict[str, Any]:
    return c.perform("archive", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["promote"].path)
def promote(model_id: ModelId, version: Version, body: c.Promote, actor: ActorDep) -> dict[str, Any]:
    """Refused by a failing gate unless forced with a reason; the answer carries every gate's figures.

    When the model's promotions need approval nothing is promoted: the result is then
    ``{"promoted": null, "request": ...}``, the PENDING request, as ``modelreg promote --json`` has it.
    """
    return c.perform("promote", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["rollback"].path)
def rollback(model_id: ModelId, body: c.Rollback, actor: ActorDep) -> dict[str, Any]:
    return c.perform("rollback", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["reactivate"].path)
def reactivate(model_id: ModelId, version: Version, body: c.Reactivate, actor: ActorDep) -> dict[str, Any]:
    """Bring a version out of ERROR, ACTIVE in the role it had (or ``role``), behind the stage checks;
    into PRIMARY only as the transition policy allows (a restore, or a gated promotion)."""
    return c.perform("reactivate", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["approve"].path)
def approve(model_id: ModelId, body: c.Decision, actor: ActorDep) -> dict[str, Any]:
    """Approve the model's pending request (a promotion, or a guard change); the last approval the
    model needs applies it, a promotion's figures checked again now."""
    return c.perform("approve", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["reject"].path)
def reject(model_id: ModelId, body: c.Decision, actor: ActorDep) -> dict[str, Any]:
    return c.perform("reject", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["gates"].path)
def set_gates(model_id: ModelId, body: c.Gates, actor: ActorDep) -> dict[str, Any]:
    return c.perform("gates", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["checks"].path)
def set_stage_checks(model_id: ModelId, body: c.StageChecks, actor: ActorDep) -> dict[str, Any]:
    return c.perform("checks", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["approvals"].path)
def set_approvals(model_id: ModelId, body: c.ApprovalSettings, actor: ActorDep) -> dict[str, Any]:
    """Turn approvals of the model's promotions on or off, name its approvers, set how many must approve."""
    return c.perform("approvals", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["policy"].path)
def set_healing_policy(model_id: ModelId, body: c.HealingPolicy, actor: ActorDep) -> dict[str, Any]:
    return c.perform("policy", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["deps_add"].path)
def add_dependency(model_id: ModelId, body: c.Dependency, actor: ActorDep) -> dict[str, Any]:
    """Refuses unknown models and cycles, through code-declared edges too (as ``modelreg deps add``)."""
    return c.perform("deps_add", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["deps_remove"].path)
def remove_dependency(model_id: ModelId, body: c.Dependency, actor: ActorDep) -> dict[str, Any]:
    return c.perform("deps_remove", actor, {"model_id": model_id}, body)


@router.post(c.CHANGES["tag"].path)
def set_tags(model_id: ModelId, version: Version, body: c.Tags, actor: ActorDep) -> dict[str, Any]:
    """Add or overwrite tags; the result is every tag the version has now (``modelreg tag``)."""
    return c.perform("tag", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["untag"].path)
def remove_tags(model_id: ModelId, version: Version, body: c.Untag, actor: ActorDep) -> dict[str, Any]:
    return c.perform("untag", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["describe"].path)
def describe(model_id: ModelId, version: Version, body: c.Describe, actor: ActorDep) -> dict[str, Any]:
    return c.perform("describe", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["meta"].path)
def set_metadata(model_id: ModelId, version: Version, body: c.Metadata, actor: ActorDep) -> dict[str, Any]:
    """Replace the whole metadata document (``modelreg meta --file``)."""
    return c.perform("meta", actor, _on_version(model_id, version), body)


@router.post(c.CHANGES["backends_add"].path)
def register_backend(body: c.AddBackend, actor: ActorDep) -> dict[str, Any]:
    """Register a backend the health DAG probes (``modelreg backends add``)."""
    return c.perform("backends_add", actor, {}, body)


@router.post(c.CHANGES["backends_remove"].path)
def unregister_backend(name: BackendName, body: c.RemoveBackend, actor: ActorDep) -> dict[str, Any]:
    """Remove a backend and its health history; refused while ACTIVE versions call it, unless forced."""
    return c.perform("backends_remove", actor, {"name": name}, body)
