"""Change routes: the ``modelreg`` commands that change the registry, one ``ModelRegistry`` call each.

Each takes a JSON body with ``preview``: true runs the change uncommitted and answers what it
would do (its result, the gates it measured, the tasks and edges it adds or removes); false
carries it out, as the logged-in Airflow user, and answers what the next DAG parse will show.
Each needs edit access to ``detection_models`` and a JSON body (see ``security``).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from models_core.api.errors import RegistryRefusal
from models_core.api.preview import next_parse, preview_change
from models_core.api.security import EDIT_ACCESS, Actor
from models_core.api.session import registry_session
from models_core.discovery import code_dependencies
from models_core.registry.approvals import ApprovalRequest
from models_core.registry.lifecycle import ModelRegistry, Promotion
from models_core.registry.metadata import parse_tag_assignments
from models_core.settings import load_settings

router = APIRouter(dependencies=EDIT_ACCESS)


class Change(BaseModel):
    """What every change body has; an unknown field is refused, naming it."""

    model_config = ConfigDict(extra="forbid")
    preview: bool = False


class Register(Change):
    version: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None


class Activate(Change):
    role: Literal["SHADOW", "CHALLENGER"]
    reason: str | None = None


class Retire(Change):
    """Deactivate or archive; ``force`` allows it for the ACTIVE PRIMARY."""

    reason: str | None = None
    force: bool = False


class Promote(Change):
    window_hours: float = Field(default=168, gt=0, le=8760)
    force: bool = False
    reason: str | None = None
    keep_previous_as_shadow: bool = False


class Rollback(Change):
    reason: str | None = None
    to: str | None = None  # a version to restore by name; else the latest earlier PRIMARY never rolled back from


class Gates(Change):
    """The gates to change; the others keep their value (``modelreg gates``)."""

    min_cycles: int | None = Field(default=None, ge=0)
    max_failure_rate: float | None = Field(default=None, ge=0, le=1)
    min_agreement: float | None = Field(default=None, ge=0, le=1)
    max_duration_ratio: float | None = Field(default=None, gt=0)
    metric_thresholds: dict[str, dict[Literal["min", "max"], float]] | None = None


class Dependency(Change):
    upstream: str


class Tags(Change):
    """Tags to set, as ``modelreg tag`` takes them: ``KEY=VALUE`` each."""

    tags: list[str] = Field(min_length=1)
    reason: str | None = None


class Untag(Change):
    keys: list[str] = Field(min_length=1)
    reason: str | None = None


class Describe(Change):
    description: str  # empty removes it
    reason: str | None = None


class Metadata(Change):
    """The whole document; the registry checks its shape (any JSON here, so its refusal is the CLI's)."""

    metadata: Any
    reason: str | None = None


class StageChecks(Change):
    """The checks to change (``modelreg checks``); ``required_tags`` entries are ``KEY`` or ``KEY=VALUE``."""

    required_tags: list[str] | None = None
    require_description: bool | None = None
    reason: str | None = None


class ApprovalSetting(Change):
    required: bool
    reason: str | None = None


class Decision(Change):
    """Approve or reject; the registry refuses a rejection without a reason, as the CLI does."""

    reason: str | None = None


class Reactivate(Change):
    role: Literal["PRIMARY", "SHADOW", "CHALLENGER"] | None = None  # None: the role it had
    reason: str | None = None


class HealingPolicy(Change):
    """The policy fields to change (``modelreg policy``); the registry checks their values."""

    on_primary_error: str | None = None
    error_after_failures: int | None = None
    max_failure_rate: float | None = None
    metric_thresholds: dict[str, Any] | None = None
    min_cycles: int | None = None
    window_hours: float | None = None
    cooldown_minutes: float | None = None
    reason: str | None = None


def _changes(body: Change, what: str) -> dict[str, Any]:
    """The fields a partial update names (a 422 when it names none); ``reason`` is not one."""
    values = body.model_dump(exclude={"preview", "reason"}, exclude_none=True)
    if not values:
        raise RegistryRefusal(status.HTTP_422_UNPROCESSABLE_ENTITY, f"body: name at least one {what} to change")
    return values


def _carry_out(command: str, actor: str, preview: bool, change: Callable[[ModelRegistry], Any]) -> dict[str, Any]:
    with registry_session(command) as (conn, settings):
        if preview:
            result, plan = preview_change(conn, settings, actor, change)
            return {"command": command, "preview": True, "result": result, "plan": plan}
        result = change(ModelRegistry(conn, actor=actor))
    return {"command": command, "preview": False, "result": result, "next_parse": next_parse(settings)}


@router.post("/models/{model_id}/versions")
def register(model_id: str, body: Register, actor: Actor) -> dict[str, Any]:
    return _carry_out("register", actor, body.preview,
                      lambda r: r.register(model_id, body.version, body.params, body.description))


@router.post("/models/{model_id}/versions/{version}/activate")
def activate(model_id: str, version: str, body: Activate, actor: Actor) -> dict[str, Any]:
    return _carry_out("activate", actor, body.preview, lambda r: r.activate(model_id, version, body.role, body.reason))


@router.post("/models/{model_id}/versions/{version}/deactivate")
def deactivate(model_id: str, version: str, body: Retire, actor: Actor) -> dict[str, Any]:
    return _carry_out("deactivate", actor, body.preview,
                      lambda r: r.deactivate(model_id, version, body.reason, body.force))


@router.post("/models/{model_id}/versions/{version}/archive")
def archive(model_id: str, version: str, body: Retire, actor: Actor) -> dict[str, Any]:
    return _carry_out("archive", actor, body.preview, lambda r: r.archive(model_id, version, body.reason, body.force))


@router.post("/models/{model_id}/versions/{version}/promote")
def promote(model_id: str, version: str, body: Promote, actor: Actor) -> dict[str, Any]:
    """Refused by a failing gate unless forced with a reason; the answer carries every gate's figures.

    When the model's promotions need approval nothing is promoted: the result is then
    ``{"promoted": null, "request": ...}``, the PENDING request, as ``modelreg promote --json`` has it.
    """
    def change(registry: ModelRegistry) -> Promotion | dict[str, Any]:
        result = registry.promote(model_id, version, window=timedelta(hours=body.window_hours), force=body.force,
                                  reason=body.reason, keep_previous_as_shadow=body.keep_previous_as_shadow)
        if isinstance(result, ApprovalRequest):
            return {"model_id": model_id, "version": version, "promoted": None, "request": result.as_json()}
        return result
    return _carry_out("promote", actor, body.preview, change)


@router.post("/models/{model_id}/rollback")
def rollback(model_id: str, body: Rollback, actor: Actor) -> dict[str, Any]:
    return _carry_out("rollback", actor, body.preview, lambda r: r.rollback(model_id, body.reason, to=body.to))


@router.post("/models/{model_id}/gates")
def set_gates(model_id: str, body: Gates, actor: Actor) -> dict[str, Any]:
    values = _changes(body, "gate")
    return _carry_out("gates", actor, body.preview, lambda r: r.set_gates(model_id, **values))


@router.post("/models/{model_id}/dependencies/add")
def add_dependency(model_id: str, body: Dependency, actor: Actor) -> dict[str, Any]:
    """Refuses unknown models and cycles, through code-declared edges too (as ``modelreg deps add``)."""
    def change(registry: ModelRegistry) -> None:
        registry.add_dependency(model_id, body.upstream, code_dependencies(load_settings().models_package))
    return _carry_out("deps", actor, body.preview, change)


@router.post("/models/{model_id}/dependencies/remove")
def remove_dependency(model_id: str, body: Dependency, actor: Actor) -> dict[str, Any]:
    return _carry_out("deps", actor, body.preview, lambda r: r.remove_dependency(model_id, body.upstream))


@router.post("/models/{model_id}/versions/{version}/tags/set")
def set_tags(model_id: str, version: str, body: Tags, actor: Actor) -> dict[str, Any]:
    """Add or overwrite tags; the result is every tag the version has now (``modelreg tag``)."""
    return _carry_out("tag", actor, body.preview, lambda r: r.set_tags(
        model_id, version, parse_tag_assignments(body.tags, f"{model_id}@{version}"), body.reason))


@router.post("/models/{model_id}/versions/{version}/tags/remove")
def remove_tags(model_id: str, version: str, body: Untag, actor: Actor) -> dict[str, Any]:
    return _carry_out("untag", actor, body.preview, lambda r: r.remove_tags(model_id, version, body.keys, body.reason))


@router.post("/models/{model_id}/versions/{version}/describe")
def describe(model_id: str, version: str, body: Describe, actor: Actor) -> dict[str, Any]:
    return _carry_out("describe", actor, body.preview,
                      lambda r: r.describe(model_id, version, body.description, body.reason))


@router.post("/models/{model_id}/versions/{version}/metadata")
def set_metadata(model_id: str, version: str, body: Metadata, actor: Actor) -> dict[str, Any]:
    """Replace the whole metadata document (``modelreg meta --file``)."""
    return _carry_out("meta", actor, body.preview,
                      lambda r: r.set_metadata(model_id, version, body.metadata, body.reason))


@router.post("/models/{model_id}/stage-checks")
def set_stage_checks(model_id: str, body: StageChecks, actor: Actor) -> dict[str, Any]:
    values = _changes(body, "check")
    return _carry_out("checks", actor, body.preview,
                      lambda r: r.set_stage_checks(model_id, **values, reason=body.reason))


@router.post("/models/{model_id}/approvals/required")
def set_approval_required(model_id: str, body: ApprovalSetting, actor: Actor) -> dict[str, Any]:
    """Turn approvals of the model's promotions on or off (``modelreg approvals set``)."""
    def change(registry: ModelRegistry) -> dict[str, Any]:
        registry.set_approval_required(model_id, body.required, body.reason)
        return {"model_id": model_id, "approval_required": body.required}
    return _carry_out("approvals", actor, body.preview, change)


@router.post("/models/{model_id}/versions/{version}/approve")
def approve(model_id: str, version: str, body: Decision, actor: Actor) -> dict[str, Any]:
    """Apply the pending request another user made: the promotion, its figures checked again now."""
    return _carry_out("approve", actor, body.preview, lambda r: r.approve(model_id, version, body.reason))


@router.post("/models/{model_id}/versions/{version}/reject")
def reject(model_id: str, version: str, body: Decision, actor: Actor) -> dict[str, Any]:
    return _carry_out("reject", actor, body.preview, lambda r: r.reject(model_id, version, body.reason))


@router.post("/models/{model_id}/versions/{version}/reactivate")
def reactivate(model_id: str, version: str, body: Reactivate, actor: Actor) -> dict[str, Any]:
    """Bring a version out of ERROR, ACTIVE in the role it had (or ``role``), behind the stage checks."""
    return _carry_out("reactivate", actor, body.preview,
                      lambda r: r.reactivate(model_id, version, body.reason, body.role))


@router.post("/models/{model_id}/healing-policy")
def set_healing_policy(model_id: str, body: HealingPolicy, actor: Actor) -> dict[str, Any]:
    values = _changes(body, "policy field")
    return _carry_out("policy", actor, body.preview,
                      lambda r: r.set_healing_policy(model_id, body.reason, **values))
