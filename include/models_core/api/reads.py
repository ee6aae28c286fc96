"""Read routes: what the registry pages show. Each needs read access to ``detection_models``."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from models_core.api import summaries
from models_core.api.errors import RegistryRefusal
from models_core.api.preview import next_parse
from models_core.api.security import READ_ACCESS, Actor
from models_core.api.session import registry_session
from models_core.registry.lifecycle import ModelRegistry
from models_core.settings import load_settings

router = APIRouter(dependencies=READ_ACCESS)

#: Hours of history a page looks at (the CLI's ``--window``); at most a year.
WindowHours = Annotated[float, Query(gt=0, le=8760)]
NOT_FOUND = status.HTTP_404_NOT_FOUND


@router.get("/models")
def list_models(actor: Actor, window_hours: WindowHours = 24) -> dict[str, Any]:
    """Every model with its PRIMARY, its ACTIVE shadows/challengers and their figures."""
    with registry_session("list") as (conn, settings):
        return summaries.models_overview(ModelRegistry(conn, actor=actor), settings,
                                         summaries.window_ending_now(window_hours))


@router.get("/models/{model_id}")
def show_model(model_id: str, actor: Actor, window_hours: WindowHours = 168) -> dict[str, Any]:
    """A model's versions (newest first), dependencies, gates, figures and audit history."""
    with registry_session("show", refused=NOT_FOUND) as (conn, settings):
        return summaries.model_detail(ModelRegistry(conn, actor=actor), settings, model_id,
                                      summaries.window_ending_now(window_hours))


@router.get("/models/{model_id}/metrics")
def metric_trends(model_id: str, window_hours: WindowHours = 168) -> dict[str, Any]:
    """Each metric of the model per version over time, for the trend chart."""
    with registry_session("show", refused=NOT_FOUND) as (conn, _settings):
        return summaries.metric_trends(conn, model_id, summaries.window_ending_now(window_hours))


@router.get("/models/{model_id}/primary-at")
def primary_at(model_id: str, at: datetime, actor: Actor) -> dict[str, Any]:
    """Which version was the ACTIVE PRIMARY at ``at`` (``modelreg history --at``); naive means UTC."""
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    with registry_session("history", refused=NOT_FOUND) as (conn, _settings):
        return {"model_id": model_id, "at": at, "primary": ModelRegistry(conn, actor=actor).primary_at(model_id, at)}


@router.get("/plan")
def plan() -> dict[str, Any]:
    """``modelreg plan``: the plan the registry describes now against the DAG Airflow last parsed."""
    return next_parse(load_settings())


@router.get("/outputs")
def cycle_outputs(version_id: int, cycle: datetime, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> dict[str, Any]:
    """What one version stored for one cycle (a model task instance's page shows it)."""
    with registry_session("rows", refused=NOT_FOUND) as (conn, _settings):
        found = summaries.cycle_outputs(conn, version_id, cycle, limit)
    if found is None:
        raise RegistryRefusal(NOT_FOUND, f"modelreg rows: no version has id {version_id}")
    return found
