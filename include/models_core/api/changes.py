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
from models_core.registry.lifecycle import ModelRegistry
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
    """Refused by a failing gate unless forced with a reason; the answer carries every gate's figures."""
    return _carry_out("promote", actor, body.preview, lambda r: r.promote(
        model_id, version, window=timedelta(hours=body.window_hours), force=body.force, reason=body.reason,
        keep_previous_as_shadow=body.keep_previous_as_shadow))


@router.post("/models/{model_id}/rollback")
def rollback(model_id: str, body: Rollback, actor: Actor) -> dict[str, Any]:
    return _carry_out("rollback", actor, body.preview, lambda r: r.rollback(model_id, body.reason, to=body.to))


@router.post("/models/{model_id}/gates")
def set_gates(model_id: str, body: Gates, actor: Actor) -> dict[str, Any]:
    values = body.model_dump(exclude={"preview"}, exclude_none=True)
    if not values:
        raise RegistryRefusal(status.HTTP_422_UNPROCESSABLE_ENTITY, "body: name at least one gate to change")
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
