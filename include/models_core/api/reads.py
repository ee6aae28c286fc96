"""Read routes: what the registry pages show. Each needs read access to ``detection_models``.

Each answers with its model in :mod:`models_core.api.schemas`, which FastAPI checks the answer
against and the OpenAPI document names.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from models_core.api import schemas, summaries
from models_core.api.errors import refusals
from models_core.api.params import ModelId, ModelIdItem, Version
from models_core.api.security import READ_ACCESS, ActorDep
from models_core.backtest.request import check_request
from models_core.events import webhooks
from models_core.registry.actors import Permission
from models_core.registry.errors import RegistryRefusal, read_connection
from models_core.registry.metadata import parse_tag_filters
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.preview import next_parse
from models_core.settings import load_settings

router = APIRouter(dependencies=READ_ACCESS, responses=refusals(401, 403))

#: Hours of history a page looks at (the CLI's ``--window``); at most a year.
WindowHours = Annotated[float, Query(gt=0, le=8760, description="Hours of history, ending now; at most a year.")]
NOT_FOUND = status.HTTP_404_NOT_FOUND
#: What a read refused as NOT_FOUND may answer besides 200.
LOOKUP_FAILURES = refusals(404, 422, 503)


@router.get(
    "/models",
    response_model=schemas.ModelsOverview,
    response_model_exclude_unset=True,
    tags=["models"],
    responses=refusals(409, 422, 503),
)
def list_models(
    actor: ActorDep,
    window_hours: WindowHours = 24,
    tag: Annotated[list[str] | None, Query(description="`KEY` or `KEY=VALUE`; repeated: every one.")] = None,
    status: Annotated[
        Literal["DRAFT", "ACTIVE", "INACTIVE", "ARCHIVED", "ERROR"] | None,
        Query(description="Only models with a version in this status."),
    ] = None,
    role: Annotated[
        Literal["PRIMARY", "SHADOW", "CHALLENGER"] | None,
        Query(description="Only models with an ACTIVE version in this role."),
    ] = None,
    attention: Annotated[
        bool, Query(description="Only models that need someone: a version in ERROR, a request to approve, no PRIMARY.")
    ] = False,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in the model id or a version's description.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Models per page.")] = summaries.PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, description="Models before the page, in model id order.")] = 0,
) -> dict[str, Any]:
    """One page of models, in model id order, each with its PRIMARY, its ACTIVE
    shadows/challengers and their figures, its versions in ERROR and its pending approvals.
    The filters hold for one version at once: ``tag`` (``KEY`` or ``KEY=VALUE``, repeated, as
    ``modelreg list --tag``), ``status``, an ACTIVE ``role``, text ``q``; ``attention`` keeps
    the models that need someone."""
    with read_connection("list") as (conn, settings):
        found = summaries.ModelFilter(  # inside: a bad tag is refused with the CLI's line
            parse_tag_filters(tag or []), status, role, (q or "").strip() or None, attention
        )
        return summaries.models_overview(
            ModelRegistry(conn, actor),
            settings,
            summaries.window_ending_now(window_hours),
            found,
            limit=limit,
            offset=offset,
        )


@router.get("/drift", response_model=schemas.DriftReport, tags=["models"], responses=refusals(422, 503))
def get_drift(
    model: Annotated[
        list[ModelIdItem],
        Query(min_length=1, max_length=500, description="A model id; repeated: each one (at most 500, a page's)."),
    ],
    window_hours: WindowHours = 24,
) -> dict[str, Any]:
    """The drift of the models asked for (the registry page asks for its page's models once
    they are shown): each metric's mean per cycle in the window against the same window one
    day and one to seven days before, the findings that left the band only."""
    with read_connection("list") as (conn, settings):
        return summaries.flagged_drift(conn, settings, summaries.window_ending_now(window_hours), model)


@router.get(
    "/models/{model_id}",
    response_model=schemas.ModelDetail,
    response_model_exclude_unset=True,
    tags=["models"],
    responses=LOOKUP_FAILURES,
)
def show_model(model_id: ModelId, actor: ActorDep, window_hours: WindowHours = 168) -> Response:
    """A model's versions (newest first), dependencies, gates, figures and audit history."""
    with read_connection("show", refused=NOT_FOUND) as (conn, _settings):
        page, history = summaries.model_detail(
            ModelRegistry(conn, actor), model_id, summaries.window_ending_now(window_hours)
        )
    return _with_json_rows(schemas.ModelPage.model_validate(page), history=history)


@router.get(
    "/models/{model_id}/metrics", response_model=schemas.MetricTrends, tags=["models"], responses=LOOKUP_FAILURES
)
def get_metric_trends(model_id: ModelId, window_hours: WindowHours = 168) -> dict[str, Any]:
    """Each metric of the model per version over time, for the trend chart."""
    with read_connection("show", refused=NOT_FOUND) as (conn, _settings):
        return summaries.metric_trends(conn, model_id, summaries.window_ending_now(window_hours))


@router.get(
    "/models/{model_id}/primary-at", response_model=schemas.PrimaryAt, tags=["models"], responses=LOOKUP_FAILURES
)
def get_primary_at(
    model_id: ModelId, at: Annotated[datetime, Query(description="ISO 8601; without an offset, UTC.")], actor: ActorDep
) -> dict[str, Any]:
    """Which version was the ACTIVE PRIMARY at ``at`` (``modelreg history --at``); naive means UTC."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    with read_connection("history", refused=NOT_FOUND) as (conn, _settings):
        return {
            "model_id": model_id,
            "at": at,
            "primary": ModelRegistry(conn, actor).lifecycle.primary_at(model_id, at),
        }


@router.get("/models/{model_id}/history", response_model=schemas.History, tags=["models"], responses=LOOKUP_FAILURES)
def get_history(model_id: ModelId, actor: ActorDep) -> Response:
    """Every recorded transition of the model, oldest first (``modelreg history``)."""
    with read_connection("history", refused=NOT_FOUND) as (conn, _settings):
        history = ModelRegistry(conn, actor).lifecycle.history_json(model_id)
    return _with_json_rows(schemas.History.model_construct(model_id=model_id), history=history)


def _with_json_rows(checked: BaseModel, **rows: list[str]) -> Response:
    """``checked`` (its fields as set) as JSON, with each of ``rows`` added as an array of the
    JSON objects PostgreSQL wrote, passed on as they are (see :mod:`~models_core.api.schemas`)."""
    head = checked.model_dump_json(exclude_unset=True).encode()[1:-1]  # its fields, without the braces
    fields = [head] if head else []
    fields += [json.dumps(key).encode() + b":[" + ",".join(texts).encode() + b"]" for key, texts in rows.items()]
    return Response(b"{" + b",".join(fields) + b"}", media_type="application/json")


@router.get("/plan", response_model=schemas.NextParse, tags=["cycle"])
def get_plan() -> dict[str, Any]:
    """``modelreg plan``: the plan the registry describes now against the DAG Airflow last parsed."""
    return next_parse(load_settings())


@router.get("/outputs", response_model=schemas.CycleOutputs, tags=["cycle"], responses=LOOKUP_FAILURES)
def get_cycle_outputs(
    version_id: Annotated[int, Query(description="The version's id (`id` of its registry row).")],
    cycle: Annotated[datetime, Query(description="The cycle's timestamp, `cycle_started_at`.")],
    limit: Annotated[int, Query(ge=1, le=500, description="How many of its rows to answer.")] = 20,
) -> dict[str, Any]:
    """What one version stored for one cycle (a model task instance's page shows it)."""
    with read_connection("rows", refused=NOT_FOUND) as (conn, _settings):
        found = summaries.cycle_outputs(conn, version_id, cycle, limit)
    if found is None:
        raise RegistryRefusal(NOT_FOUND, f"modelreg rows: no version has id {version_id}")
    return found


@router.get(
    "/models/{model_id}/versions/{version}/metadata",
    response_model=schemas.VersionMetadata,
    tags=["versions"],
    responses=LOOKUP_FAILURES,
)
def get_version_metadata(model_id: ModelId, version: Version, actor: ActorDep) -> dict[str, Any]:
    """A version's metadata document (``modelreg meta``)."""
    with read_connection("meta", refused=NOT_FOUND) as (conn, _settings):
        metadata = ModelRegistry(conn, actor).annotations.metadata(model_id, version)
    return {"model_id": model_id, "version": version, "metadata": metadata}


@router.get(
    "/models/{model_id}/versions/{version}/check",
    response_model=schemas.Readiness,
    tags=["versions"],
    responses=LOOKUP_FAILURES,
)
def check_readiness(
    model_id: ModelId,
    version: Version,
    actor: ActorDep,
    action: Annotated[Literal["activate", "promote"], Query(description="The change to check.")],
    role: Annotated[Literal["SHADOW", "CHALLENGER"], Query(description="The role to activate into.")] = "SHADOW",
    window_hours: WindowHours = 168,
) -> dict[str, Any]:
    """Whether ``action`` would go ahead now, with every stage check (and gate) figure: ``--check``."""
    with read_connection(action, refused=NOT_FOUND) as (conn, _settings):
        registry = ModelRegistry(conn, actor)
        found = (
            registry.lifecycle.check_activation(model_id, version, role)
            if action == "activate"
            else registry.lifecycle.check_promotion(model_id, version, window=timedelta(hours=window_hours))
        )
    return found.as_json()


@router.get(
    "/models/{model_id}/versions/{version}/backtest-plan",
    response_model=schemas.BacktestPlan,
    tags=["versions"],
    responses=refusals(400, 409, 422, 503),
)
def plan_backtest(
    model_id: ModelId,
    version: Version,
    start: Annotated[str, Query(max_length=64, description="The first cycle time, ISO-8601 (naive: UTC).")],
    end: Annotated[str, Query(max_length=64, description="The last cycle time, ISO-8601 (naive: UTC), past.")],
) -> dict[str, Any]:
    """The run a backtest of the version over the range would make, checked as the run checks it
    (``modelreg backtest --check``): a 409 for a version that cannot be backtested, a 400 for a
    range that holds no past cycle, each saying why."""
    with read_connection("backtest") as (conn, settings):
        return check_request(conn, settings, model_id, version, start, end).as_json()


@router.get(
    "/models/{model_id}/stage-checks",
    response_model=schemas.ModelStageChecks,
    tags=["guards"],
    responses=LOOKUP_FAILURES,
)
def get_stage_checks(model_id: ModelId, actor: ActorDep) -> dict[str, Any]:
    """What a version needs before it runs as SHADOW/CHALLENGER (``modelreg checks``)."""
    with read_connection("checks", refused=NOT_FOUND) as (conn, _settings):
        return {"model_id": model_id, **asdict(ModelRegistry(conn, actor).guards.stage_checks(model_id))}


@router.get(
    "/models/{model_id}/approvals", response_model=schemas.ModelApprovals, tags=["approvals"], responses=LOOKUP_FAILURES
)
def list_approvals(
    model_id: ModelId,
    actor: ActorDep,
    include_decided: Annotated[bool, Query(description="Decided requests too, not only those waiting.")] = False,
) -> dict[str, Any]:
    """Whether promotions need approval, and the requests waiting (all, newest first, with ``include_decided``)."""
    with read_connection("approvals", refused=NOT_FOUND) as (conn, _settings):
        registry = ModelRegistry(conn, actor)
        return {
            "model_id": model_id,
            **registry.guards.approval(model_id).as_json(),
            "requests": [r.as_json() for r in registry.approvals.requests(model_id, include_decided=include_decided)],
        }


@router.get(
    "/models/{model_id}/healing-policy",
    response_model=schemas.ModelHealingPolicy,
    tags=["guards"],
    responses=LOOKUP_FAILURES,
)
def get_healing_policy(model_id: ModelId, actor: ActorDep) -> dict[str, Any]:
    """The model's self-healing policy (``modelreg policy``), defaults where it has none."""
    with read_connection("policy", refused=NOT_FOUND) as (conn, _settings):
        return {"model_id": model_id, **ModelRegistry(conn, actor).guards.healing_policy(model_id)}


@router.get("/whoami", response_model=schemas.Identity, tags=["session"])
def whoami(actor: ActorDep) -> dict[str, Any]:
    """Who the registry takes the caller for: the auth manager's user id, name and registry permissions."""
    return {
        "id": actor.id,
        "name": actor.name,
        "kind": str(actor.kind),
        "permissions": sorted(str(p) for p in actor.permissions),
    }


@router.get("/backends", response_model=schemas.BackendsOverview, tags=["backends"], responses=refusals(409, 503))
def list_backends() -> dict[str, Any]:
    """Every backend's health, whether tasks may call it now, and the ACTIVE versions that call it."""
    with read_connection("backends") as (conn, settings):
        return summaries.backends_overview(conn, settings)


@router.get("/webhooks", response_model=schemas.WebhooksOverview, tags=["webhooks"], responses=refusals(503))
def list_webhooks(actor: ActorDep) -> dict[str, Any]:
    """Every webhook of the registry's events, with its deliveries by status; a user who may not
    manage webhooks sees each URL's scheme and host only (its path is often the receiver's token)."""
    with read_connection("webhooks") as (conn, _settings):
        hooks = webhooks.list_webhooks(conn)
    full = actor.may(Permission.FORCE)
    return {"webhooks": [{**hook, "url": webhooks.shown_url(hook["url"], full=full)} for hook in hooks]}


@router.get("/webhooks/deliveries", response_model=schemas.DeliveryLog, tags=["webhooks"], responses=refusals(422, 503))
def list_webhook_deliveries(
    actor: ActorDep,
    webhook: Annotated[str | None, Query(max_length=64, description="One webhook's deliveries.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows at most, newest first.")] = 50,
) -> dict[str, Any]:
    """The delivery log: status, attempts, next attempt, last error, HTTP status and latency of
    each; a user who may not manage webhooks reads each error's kind only (``HTTP 404``), since
    a receiver's answer may quote its URL's token."""
    with read_connection("webhooks") as (conn, _settings):
        rows = webhooks.deliveries(conn, webhook, limit)
    full = actor.may(Permission.FORCE)
    return {"deliveries": [{**row, "last_error": webhooks.shown_error(row["last_error"], full=full)} for row in rows]}
