"""Change routes: the registry API's side of the one write path (:mod:`models_core.registry.changes`).

Each route takes the change's JSON body, builds the actor from the logged-in Airflow user
(``security.request_actor``) and hands both to :func:`~models_core.registry.changes.perform`,
which ``modelreg`` in direct database mode calls too. Each needs edit access to
``detection_models`` and a JSON body (see ``security``), and answers with a
:class:`~models_core.api.schemas.ChangeAnswer`: the result, and ``next_parse`` or, for a
``preview``, ``plan``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel

from models_core.api import schemas
from models_core.api.errors import refusals
from models_core.api.params import BackendName, ModelId, Version, WebhookName
from models_core.api.security import EDIT_ACCESS, ActorDep
from models_core.registry import changes as c

router = APIRouter(dependencies=EDIT_ACCESS, responses=refusals(400, 401, 403, 409, 415, 422, 503))
Route = TypeVar("Route", bound=Callable[..., Any])


def change(name: str, answer: type[BaseModel], tag: str) -> Callable[[Route], Route]:
    """The route of the change ``name`` (its path from ``CHANGES``), answering ``answer``.

    A key the registry leaves out of an answer stays out (``next_parse`` of a preview, say).
    """
    return router.post(c.CHANGES[name].path, response_model=answer, response_model_exclude_unset=True, tags=[tag])


def _on_version(model_id: str, version: str) -> dict[str, str]:
    return {"model_id": model_id, "version": version}


@change("register", schemas.RegisterAnswer, "versions")
def register(model_id: ModelId, body: c.Register, actor: ActorDep) -> dict[str, Any]:
    """Register a DRAFT version (``modelreg register``); it runs once activated."""
    return c.perform("register", actor, {"model_id": model_id}, body)


@change("activate", schemas.ActivateAnswer, "versions")
def activate(model_id: ModelId, version: Version, body: c.Activate, actor: ActorDep) -> dict[str, Any]:
    """Run a version as SHADOW or CHALLENGER, behind the model's stage checks (refused, 409, with every figure)."""
    return c.perform("activate", actor, _on_version(model_id, version), body)


@change("deactivate", schemas.ChangeDone, "versions")
def deactivate(model_id: ModelId, version: Version, body: c.Retire, actor: ActorDep) -> dict[str, Any]:
    """Stop running a version (INACTIVE); the PRIMARY only with ``force`` and a reason."""
    return c.perform("deactivate", actor, _on_version(model_id, version), body)


@change("archive", schemas.ChangeDone, "versions")
def archive(model_id: ModelId, version: Version, body: c.Retire, actor: ActorDep) -> dict[str, Any]:
    """Archive a version (ARCHIVED); the PRIMARY only with ``force`` and a reason."""
    return c.perform("archive", actor, _on_version(model_id, version), body)


@change("promote", schemas.PromoteAnswer, "versions")
def promote(model_id: ModelId, version: Version, body: c.Promote, actor: ActorDep) -> dict[str, Any]:
    """Refused by a failing gate unless forced with a reason; the answer carries every gate's figures.

    When the model's promotions need approval nothing is promoted: the result is then
    ``{"promoted": null, "request": ...}``, the PENDING request, as ``modelreg promote --json`` has it.
    """
    return c.perform("promote", actor, _on_version(model_id, version), body)


@change("rollback", schemas.RollbackAnswer, "models")
def rollback(model_id: ModelId, body: c.Rollback, actor: ActorDep) -> dict[str, Any]:
    """Restore an earlier PRIMARY (``to``, or the latest one not known bad); the current one becomes INACTIVE."""
    return c.perform("rollback", actor, {"model_id": model_id}, body)


@change("reactivate", schemas.ReactivateAnswer, "versions")
def reactivate(model_id: ModelId, version: Version, body: c.Reactivate, actor: ActorDep) -> dict[str, Any]:
    """Bring a version out of ERROR, ACTIVE in the role it had (or ``role``), behind the stage checks;
    into PRIMARY only as the transition policy allows (a restore, or a gated promotion)."""
    return c.perform("reactivate", actor, _on_version(model_id, version), body)


@change("approve", schemas.ApproveAnswer, "approvals")
def approve(model_id: ModelId, body: c.Decision, actor: ActorDep) -> dict[str, Any]:
    """Approve the model's pending request (a promotion, or a guard change); the last approval the
    model needs applies it, a promotion's figures checked again now."""
    return c.perform("approve", actor, {"model_id": model_id}, body)


@change("reject", schemas.RejectAnswer, "approvals")
def reject(model_id: ModelId, body: c.Decision, actor: ActorDep) -> dict[str, Any]:
    """Turn the model's pending request down, with a reason; its maker may withdraw it so."""
    return c.perform("reject", actor, {"model_id": model_id}, body)


@change("gates", schemas.GuardChangeAnswer, "guards")
def set_gates(model_id: ModelId, body: c.Gates, actor: ActorDep) -> dict[str, Any]:
    """Change some of the model's quality gates; on a model under approval, by a user who may not govern,
    the change becomes a request."""
    return c.perform("gates", actor, {"model_id": model_id}, body)


@change("checks", schemas.GuardChangeAnswer, "guards")
def set_stage_checks(model_id: ModelId, body: c.StageChecks, actor: ActorDep) -> dict[str, Any]:
    """Change what the model's versions need before they run as SHADOW or CHALLENGER."""
    return c.perform("checks", actor, {"model_id": model_id}, body)


@change("approvals", schemas.GuardChangeAnswer, "guards")
def set_approvals(model_id: ModelId, body: c.ApprovalSettings, actor: ActorDep) -> dict[str, Any]:
    """Turn approvals of the model's promotions on or off, name its approvers, set how many must approve."""
    return c.perform("approvals", actor, {"model_id": model_id}, body)


@change("policy", schemas.GuardChangeAnswer, "guards")
def set_healing_policy(model_id: ModelId, body: c.HealingPolicy, actor: ActorDep) -> dict[str, Any]:
    """Change some of the model's self-healing policy (``modelreg policy``)."""
    return c.perform("policy", actor, {"model_id": model_id}, body)


@change("deps_add", schemas.ChangeDone, "models")
def add_dependency(model_id: ModelId, body: c.Dependency, actor: ActorDep) -> dict[str, Any]:
    """Refuses unknown models and cycles, through code-declared edges too (as ``modelreg deps add``)."""
    return c.perform("deps_add", actor, {"model_id": model_id}, body)


@change("deps_remove", schemas.ChangeDone, "models")
def remove_dependency(model_id: ModelId, body: c.Dependency, actor: ActorDep) -> dict[str, Any]:
    """Remove a registry dependency (a class's ``depends_on`` is changed in code)."""
    return c.perform("deps_remove", actor, {"model_id": model_id}, body)


@change("tag", schemas.TagsAnswer, "versions")
def set_tags(model_id: ModelId, version: Version, body: c.Tags, actor: ActorDep) -> dict[str, Any]:
    """Add or overwrite tags; the result is every tag the version has now (``modelreg tag``)."""
    return c.perform("tag", actor, _on_version(model_id, version), body)


@change("untag", schemas.TagsAnswer, "versions")
def remove_tags(model_id: ModelId, version: Version, body: c.Untag, actor: ActorDep) -> dict[str, Any]:
    """Remove tags by key; the result is every tag the version has now."""
    return c.perform("untag", actor, _on_version(model_id, version), body)


@change("describe", schemas.ChangeDone, "versions")
def describe(model_id: ModelId, version: Version, body: c.Describe, actor: ActorDep) -> dict[str, Any]:
    """Replace the version's description; an empty one removes it."""
    return c.perform("describe", actor, _on_version(model_id, version), body)


@change("meta", schemas.ChangeDone, "versions")
def set_metadata(model_id: ModelId, version: Version, body: c.Metadata, actor: ActorDep) -> dict[str, Any]:
    """Replace the whole metadata document (``modelreg meta --file``)."""
    return c.perform("meta", actor, _on_version(model_id, version), body)


@change("backends_add", schemas.AddBackendAnswer, "backends")
def register_backend(body: c.AddBackend, actor: ActorDep) -> dict[str, Any]:
    """Register a backend the health DAG probes (``modelreg backends add``)."""
    return c.perform("backends_add", actor, {}, body)


@change("backends_remove", schemas.RemoveBackendAnswer, "backends")
def unregister_backend(name: BackendName, body: c.RemoveBackend, actor: ActorDep) -> dict[str, Any]:
    """Remove a backend and its health history; refused while ACTIVE versions call it, unless forced."""
    return c.perform("backends_remove", actor, {"name": name}, body)


@change("webhooks_add", schemas.AddWebhookAnswer, "webhooks")
def add_webhook(body: c.AddWebhook, actor: ActorDep) -> dict[str, Any]:
    """Add (or replace) a signed webhook of the registry's events (``modelreg webhooks add``)."""
    return c.perform("webhooks_add", actor, {}, body)


@change("webhooks_remove", schemas.RemoveWebhookAnswer, "webhooks")
def remove_webhook(name: WebhookName, body: c.RemoveWebhook, actor: ActorDep) -> dict[str, Any]:
    """Remove a webhook and its delivery log."""
    return c.perform("webhooks_remove", actor, {"name": name}, body)
