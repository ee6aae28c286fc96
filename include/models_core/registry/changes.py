"""Every change a person or a service makes to the registry: its body, its route and what it does.

This is the one write path. The registry API's routes (:mod:`models_core.api.changes`)
hand their parsed body to :func:`perform`; ``modelreg`` logged in posts the same body to the
same route, and ``modelreg`` in direct database mode (a service account) calls
:func:`perform` in-process. So a change passes the same validation (a string PostgreSQL
cannot store, an over-long id, an unknown field: a 4xx naming the field), the same registry
call and answers the same JSON, whoever makes it and however.

Each body may ask for a ``preview``: the change runs uncommitted and the answer says what it
would do (its result, the gates it measured, the tasks and edges it adds or removes). A
preview shows no id: ids are given only when a change is carried out (a preview cannot
reserve one, and its own are rolled back unused).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from models_core.backends.assignment import active_callers
from models_core.backends.catalog import Backend, add_backend, remove_backend
from models_core.discovery import code_dependencies
from models_core.events.webhooks import SECRET_ENV_PATTERN, add_webhook, remove_webhook
from models_core.model import MODEL_ID_MAX_LEN
from models_core.registry.actors import Actor, Permission
from models_core.registry.approvals import ApprovalRequest
from models_core.registry.errors import RegistryRefusal, command_connection
from models_core.registry.lifecycle import VERSION_MAX_LEN
from models_core.registry.metadata import MetadataError, check_text, parse_tag_assignments
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.preview import next_parse, preview_change
from models_core.settings import load_settings


def storable(text: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogate (a 422 names the field otherwise)."""
    try:
        check_text(text, "the text")
    except MetadataError as exc:  # pydantic reports a ValueError with the field's location
        raise ValueError(str(exc)) from None
    return text


Text = Annotated[str, AfterValidator(storable)]
ModelId = Annotated[str, Field(min_length=1, max_length=MODEL_ID_MAX_LEN), AfterValidator(storable)]
VersionText = Annotated[str, Field(min_length=1, max_length=VERSION_MAX_LEN), AfterValidator(storable)]
Reason = Annotated[str, Field(max_length=4000), AfterValidator(storable)] | None


class Change(BaseModel):
    """What every change body has; an unknown field is refused, naming it."""

    model_config = ConfigDict(extra="forbid")
    preview: bool = False


class Register(Change):
    """A DRAFT version; ``params`` is any JSON here: the registry refuses what is not an object, naming it."""

    version: VersionText
    params: Any = Field(default_factory=dict)
    description: Annotated[Text, Field(max_length=4000)] | None = None


class Activate(Change):
    role: Literal["SHADOW", "CHALLENGER"]
    reason: Reason = None


class Retire(Change):
    """Deactivate or archive; ``force`` (with a reason, by an actor permitted to force) allows it for the PRIMARY."""

    reason: Reason = None
    force: bool = False


class Promote(Change):
    window_hours: float = Field(default=168, gt=0, le=8760)
    force: bool = False
    reason: Reason = None
    keep_previous_as_shadow: bool = False


class Rollback(Change):
    reason: Reason = None
    to: VersionText | None = None  # a former PRIMARY to restore by name; else the latest one never rolled back from


class Reactivate(Change):
    role: Literal["PRIMARY", "SHADOW", "CHALLENGER"] | None = None  # None: the role it had
    window_hours: float = Field(default=168, gt=0, le=8760)
    force: bool = False
    reason: Reason = None


class Decision(Change):
    """Approve or reject the model's pending request; ``version`` or ``request_id`` pin which one
    (a decision on something else than what was looked at is refused)."""

    version: VersionText | None = None
    request_id: int | None = None
    reason: Reason = None


class Gates(Change):
    """The gates to change; the others keep their value (``modelreg gates``)."""

    min_cycles: int | None = Field(default=None, ge=0, le=2**31 - 1)
    max_failure_rate: float | None = Field(default=None, ge=0, le=1)
    min_agreement: float | None = Field(default=None, ge=0, le=1)
    max_duration_ratio: float | None = Field(default=None, gt=0)
    max_score_difference: float | None = Field(default=None, ge=0)
    min_backtest_cycles: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Backtested cycles required, on which the evaluation gates must pass too.",
    )
    metric_thresholds: dict[Text, dict[Literal["min", "max"], float]] | None = None
    gate_kind: Literal["interval", "point"] | None = Field(
        default=None,
        description="`interval` (the default): an evaluation gate passes when the bound of its 95% "
        "interval clears the threshold; `point`: when the estimate does.",
    )
    reason: Reason = None


class StageChecks(Change):
    """The checks to change (``modelreg checks``); ``required_tags`` entries are ``KEY`` or ``KEY=VALUE``."""

    required_tags: list[Text] | None = None
    require_description: bool | None = None
    reason: Reason = None


class ApprovalSettings(Change):
    """Approvals on or off, who approves (Airflow user ids; empty: any editor) and how many must."""

    required: bool | None = None
    approvers: list[Annotated[Text, Field(min_length=1, max_length=256)]] | None = None
    min_approvals: int | None = Field(default=None, ge=1, le=100)
    reason: Reason = None


class HealingPolicy(Change):
    """The policy fields to change (``modelreg policy``); the registry checks their values."""

    on_primary_error: Text | None = None
    error_after_failures: int | None = None
    max_failure_rate: float | None = None
    metric_thresholds: dict[Text, Any] | None = None
    min_cycles: int | None = None
    window_hours: float | None = None
    cooldown_minutes: float | None = None
    reason: Reason = None


class Dependency(Change):
    upstream: ModelId


class Tags(Change):
    """Tags to set, as ``modelreg tag`` takes them: ``KEY=VALUE`` each."""

    tags: list[Text] = Field(min_length=1)
    reason: Reason = None


class Untag(Change):
    keys: list[Text] = Field(min_length=1)
    reason: Reason = None


class Describe(Change):
    description: Annotated[Text, Field(max_length=4000)]  # empty removes it
    reason: Reason = None


class Metadata(Change):
    """The whole document; the registry checks its shape (any JSON here, so its refusal is the CLI's)."""

    metadata: Any
    reason: Reason = None


class AddBackend(Change):
    name: Annotated[Text, Field(min_length=1, max_length=64)]
    url: Annotated[Text, Field(min_length=1, max_length=2000)]
    health_path: Annotated[Text, Field(max_length=2000)] = "/health"
    status_path: Annotated[Text, Field(max_length=2000)] | None = None
    timeout_s: float = 5.0
    reason: Reason = None


class RemoveBackend(Change):
    force: bool = False
    reason: Reason = None


class AddWebhook(Change):
    """A receiver of the registry's events; ``secret_env`` names the sender's variable holding its secret."""

    name: Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    url: Annotated[Text, Field(min_length=1, max_length=2000)]
    events: list[Annotated[Text, Field(min_length=1, max_length=32)]] = Field(default_factory=list)
    secret_env: Annotated[str, Field(min_length=1, max_length=128, pattern=SECRET_ENV_PATTERN)]


class RemoveWebhook(Change):
    reason: Reason = None


Apply = Callable[[ModelRegistry, dict[str, str], Any], Any]
_PATH_LIMITS = {"model_id": MODEL_ID_MAX_LEN, "version": VERSION_MAX_LEN, "name": 64}


@dataclass(frozen=True)
class ChangeSpec:
    """One change: the ``modelreg`` command it is, its route under the API prefix, its body and what it does.

    ``creates``: its result may name an id it gives (a version, a request), which a preview leaves out.
    """

    command: str
    path: str
    body: type[Change]
    apply: Apply
    creates: bool = False


def _partial(body: Change, what: str) -> dict[str, Any]:
    """The fields a partial update names (a 422 when it names none); ``reason`` is not one."""
    values = body.model_dump(exclude={"preview", "reason"}, exclude_none=True)
    if not values:
        raise RegistryRefusal(422, f"body: name at least one {what} to change")
    return values


def _guard(guard: str, set_guard: Callable[[ModelRegistry, str, dict[str, Any], Any], Any], what: str) -> Apply:
    """A guard change: applied (its values now) or, on a model under approval, the request it became."""

    def apply(registry: ModelRegistry, path: dict[str, str], body: Any) -> dict[str, Any]:
        model_id = path["model_id"]
        outcome = set_guard(registry, model_id, _partial(body, what), body)
        if isinstance(outcome, ApprovalRequest):
            return {"model_id": model_id, "guard": guard, "applied": False, "request": outcome}
        return {"model_id": model_id, "guard": guard, "applied": True, "values": outcome}

    return apply


def _register(registry: ModelRegistry, path: dict[str, str], body: Register) -> dict[str, Any]:
    version_id = registry.lifecycle.register(path["model_id"], body.version, body.params, body.description)
    return {"model_id": path["model_id"], "version": body.version, "id": version_id, "status": "DRAFT"}


def _promote(registry: ModelRegistry, path: dict[str, str], body: Promote) -> Any:
    result = registry.lifecycle.promote(
        path["model_id"],
        path["version"],
        window=timedelta(hours=body.window_hours),
        force=body.force,
        reason=body.reason,
        keep_previous_as_shadow=body.keep_previous_as_shadow,
    )
    if isinstance(result, ApprovalRequest):
        return {"model_id": path["model_id"], "version": path["version"], "promoted": None, "request": result}
    return result


def _reactivate(registry: ModelRegistry, path: dict[str, str], body: Reactivate) -> dict[str, Any]:
    now = registry.lifecycle.reactivate(
        path["model_id"],
        path["version"],
        body.reason,
        body.role,
        window=timedelta(hours=body.window_hours),
        force=body.force,
    )
    return {"model_id": path["model_id"], "version": path["version"], "status": now.status, "role": now.role}


def _approve(registry: ModelRegistry, path: dict[str, str], body: Decision) -> dict[str, Any]:
    model_id = path["model_id"]
    outcome = registry.approvals.approve(model_id, body.version, body.reason, request_id=body.request_id)
    if isinstance(outcome, ApprovalRequest):  # more approvals needed
        return {"model_id": model_id, "applied": False, "request": outcome}
    if isinstance(outcome, dict):  # a guard change
        return {"model_id": model_id, "applied": True, "guard": outcome["guard"], "values": outcome["values"]}
    return {"model_id": model_id, "applied": True, "promotion": outcome}


def _add_backend(registry: ModelRegistry, path: dict[str, str], body: AddBackend) -> dict[str, Any]:
    backend = Backend(body.name, body.url, body.health_path, body.status_path, body.timeout_s)
    return add_backend(registry.conn, backend, actor=registry.actor, reason=body.reason).__dict__


def _add_webhook(registry: ModelRegistry, path: dict[str, str], body: AddWebhook) -> dict[str, Any]:
    # Those who may force a change (governors, services) only: a receiver gets every registry event
    # (actors, reasons) and the sender POSTs wherever its URL points, from inside the deployment's network.
    registry.actor.require(Permission.FORCE, f"add webhook {body.name}")
    add_webhook(registry.conn, body.name, body.url, body.events, body.secret_env, registry.actor.id)
    return {"name": body.name, "url": body.url, "events": sorted(set(body.events)), "secret_env": body.secret_env}


def _remove_webhook(registry: ModelRegistry, path: dict[str, str], body: RemoveWebhook) -> dict[str, Any]:
    registry.actor.require(Permission.FORCE, f"remove webhook {path['name']}")
    if not remove_webhook(registry.conn, path["name"]):
        raise RegistryRefusal(404, f"modelreg webhooks remove: no webhook named {path['name']!r}")
    return {"name": path["name"], "removed": True}


def _remove_backend(registry: ModelRegistry, path: dict[str, str], body: RemoveBackend) -> dict[str, Any]:
    name = path["name"]
    callers = [c.label() for c in active_callers(registry.conn, load_settings().models_package) if c.backend == name]
    remove_backend(registry.conn, name, actor=registry.actor, callers=callers, reason=body.reason, force=body.force)
    return {"name": name, "removed": True}


_VERSION = "/models/{model_id}/versions/{version}"
CHANGES: dict[str, ChangeSpec] = {
    name: spec
    for name, spec in (
        ("register", ChangeSpec("register", "/models/{model_id}/versions", Register, _register, creates=True)),
        (
            "activate",
            ChangeSpec(
                "activate",
                f"{_VERSION}/activate",
                Activate,
                lambda r, p, b: r.lifecycle.activate(p["model_id"], p["version"], b.role, b.reason),
            ),
        ),
        (
            "deactivate",
            ChangeSpec(
                "deactivate",
                f"{_VERSION}/deactivate",
                Retire,
                lambda r, p, b: r.lifecycle.deactivate(p["model_id"], p["version"], b.reason, b.force),
            ),
        ),
        (
            "archive",
            ChangeSpec(
                "archive",
                f"{_VERSION}/archive",
                Retire,
                lambda r, p, b: r.lifecycle.archive(p["model_id"], p["version"], b.reason, b.force),
            ),
        ),
        ("promote", ChangeSpec("promote", f"{_VERSION}/promote", Promote, _promote, creates=True)),
        (
            "rollback",
            ChangeSpec(
                "rollback",
                "/models/{model_id}/rollback",
                Rollback,
                lambda r, p, b: r.lifecycle.rollback(p["model_id"], b.reason, to=b.to),
            ),
        ),
        ("reactivate", ChangeSpec("reactivate", f"{_VERSION}/reactivate", Reactivate, _reactivate)),
        ("approve", ChangeSpec("approve", "/models/{model_id}/requests/approve", Decision, _approve)),
        (
            "reject",
            ChangeSpec(
                "reject",
                "/models/{model_id}/requests/reject",
                Decision,
                lambda r, p, b: r.approvals.reject(p["model_id"], b.version, b.reason or "", request_id=b.request_id),
            ),
        ),
        (
            "gates",
            ChangeSpec(
                "gates",
                "/models/{model_id}/gates",
                Gates,
                _guard("gates", lambda r, m, v, b: r.guards.set_gates(m, b.reason, **v), "gate"),
                creates=True,
            ),
        ),
        (
            "checks",
            ChangeSpec(
                "checks",
                "/models/{model_id}/stage-checks",
                StageChecks,
                _guard("checks", lambda r, m, v, b: r.guards.set_stage_checks(m, **v, reason=b.reason), "check"),
                creates=True,
            ),
        ),
        (
            "approvals",
            ChangeSpec(
                "approvals",
                "/models/{model_id}/approvals/settings",
                ApprovalSettings,
                _guard(
                    "approvals", lambda r, m, v, b: r.guards.set_approval(m, **v, reason=b.reason), "approval setting"
                ),
                creates=True,
            ),
        ),
        (
            "policy",
            ChangeSpec(
                "policy",
                "/models/{model_id}/healing-policy",
                HealingPolicy,
                _guard("policy", lambda r, m, v, b: r.guards.set_healing_policy(m, b.reason, **v), "policy field"),
                creates=True,
            ),
        ),
        (
            "deps_add",
            ChangeSpec(
                "deps",
                "/models/{model_id}/dependencies/add",
                Dependency,
                lambda r, p, b: r.dependencies.add(
                    p["model_id"], b.upstream, code_dependencies(load_settings().models_package)
                ),
            ),
        ),
        (
            "deps_remove",
            ChangeSpec(
                "deps",
                "/models/{model_id}/dependencies/remove",
                Dependency,
                lambda r, p, b: r.dependencies.remove(p["model_id"], b.upstream),
            ),
        ),
        (
            "tag",
            ChangeSpec(
                "tag",
                f"{_VERSION}/tags/set",
                Tags,
                lambda r, p, b: r.annotations.set_tags(
                    p["model_id"],
                    p["version"],
                    parse_tag_assignments(b.tags, f"{p['model_id']}@{p['version']}"),
                    b.reason,
                ),
            ),
        ),
        (
            "untag",
            ChangeSpec(
                "untag",
                f"{_VERSION}/tags/remove",
                Untag,
                lambda r, p, b: r.annotations.remove_tags(p["model_id"], p["version"], b.keys, b.reason),
            ),
        ),
        (
            "describe",
            ChangeSpec(
                "describe",
                f"{_VERSION}/describe",
                Describe,
                lambda r, p, b: r.annotations.describe(p["model_id"], p["version"], b.description, b.reason),
            ),
        ),
        (
            "meta",
            ChangeSpec(
                "meta",
                f"{_VERSION}/metadata",
                Metadata,
                lambda r, p, b: r.annotations.set_metadata(p["model_id"], p["version"], b.metadata, b.reason),
            ),
        ),
        ("backends_add", ChangeSpec("backends", "/backends", AddBackend, _add_backend)),
        ("backends_remove", ChangeSpec("backends", "/backends/{name}/remove", RemoveBackend, _remove_backend)),
        ("webhooks_add", ChangeSpec("webhooks", "/webhooks", AddWebhook, _add_webhook)),
        ("webhooks_remove", ChangeSpec("webhooks", "/webhooks/{name}/remove", RemoveWebhook, _remove_webhook)),
    )
}


def parse_body(name: str, body: dict[str, Any]) -> Change:
    """``body`` as the change's model, or a 422 naming each offending field (as the API answers it)."""
    spec = CHANGES[name]
    try:
        return spec.body(**body)
    except ValidationError as exc:
        raise RegistryRefusal(
            422,
            f"modelreg {spec.command}: " + validation_line([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]),
        ) from None


def check_path(command: str, path: dict[str, str]) -> dict[str, str]:
    """A route's path parameters, refused (422, naming the field) when the registry could not hold them."""
    for key, value in path.items():
        limit = _PATH_LIMITS.get(key, 256)
        if len(value) > limit:
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise RegistryRefusal(
                422,
                f"modelreg {command}: {key} {shown!r} is {len(value)} characters, the registry allows at most {limit}",
            )
        try:
            check_text(value, key)
        except ValueError as exc:
            raise RegistryRefusal(422, f"modelreg {command}: {exc}") from None
    return path


def perform(name: str, actor: Actor, path: dict[str, str], body: Change) -> dict[str, Any]:
    """Carry out (or, with ``body.preview``, preview) the change ``name`` as ``actor``."""
    spec = CHANGES[name]
    check_path(spec.command, path)
    with command_connection(spec.command) as (conn, settings):
        if body.preview:
            result, plan = preview_change(conn, settings, actor, lambda registry: spec.apply(registry, path, body))
            return {
                "command": spec.command,
                "preview": True,
                "result": _unassigned(result) if spec.creates else result,
                "plan": plan,
            }
        result = spec.apply(ModelRegistry(conn, actor), path, body)
    return {"command": spec.command, "preview": False, "result": result, "next_parse": next_parse(settings)}


def validation_line(errors: Any) -> str:
    """Pydantic's errors as ``location: message; ...`` (never the value: it may be what cannot be shown)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
        for error in errors
    )


def _unassigned(result: Any) -> Any:
    """A preview's result without the id a real change would be given: a preview cannot reserve one."""
    if isinstance(result, ApprovalRequest):
        return dataclasses.replace(result, id=None)  # type: ignore[arg-type]
    if isinstance(result, dict):
        return {
            key: _unassigned(value) if key == "request" else (None if key == "id" else value)
            for key, value in result.items()
        }
    return result
