"""The registry's FastAPI app, as Airflow's API server mounts it under ``URL_PREFIX``.

Its OpenAPI document is at ``{URL_PREFIX}/openapi.json``, without a login: it describes the
routes and the shapes of their answers, never data, as Airflow's own ``/openapi.json`` does.
Its ``servers`` entry is the mount's path as the request reached it (the ``root_path``
Starlette's mount sets, with any ``[api] base_url`` path), so a client generated from it calls
``/model-registry/api/...``, not ``/api/...``. Each operation's id is its route function's name.
"""

from __future__ import annotations

from importlib.metadata import version

from fastapi import FastAPI
from fastapi.routing import APIRoute

from models_core.api import changes, pages, reads
from models_core.api.errors import install_error_handlers

DESCRIPTION = """\
The detection-model registry: models, their versions and figures, and every change to them,
as the registry page in the Airflow UI and `modelreg` (logged in) use it.

**Logging in** is Airflow's: get a token from `POST /auth/token` on the Airflow API server and
send it as `Authorization: Bearer <token>` (the UI's `_token` cookie works too). Reads need read
access to the `detection_models` DAG, changes edit access; a change must be sent as
`application/json` (else 415).

**Refusals** are `{"detail": "..."}`, the line `modelreg` prints for the same refusal."""

TAGS = [
    {"name": "models", "description": "Models: their versions' figures, history and dependencies."},
    {"name": "versions", "description": "One version: register, activate, promote, retire, annotate."},
    {"name": "guards", "description": "What guards a model: quality gates, stage checks, approvals, self-healing."},
    {"name": "approvals", "description": "Changes waiting for a second person, and their decisions."},
    {"name": "backends", "description": "The inference backends the models call, and their health."},
    {"name": "webhooks", "description": "Signed webhooks of the registry's events, and their delivery log."},
    {"name": "cycle", "description": "The cycle DAG's plan, and what a version stored for a cycle."},
    {"name": "session", "description": "Who the registry takes the caller for."},
]


def _operation_id(route: APIRoute) -> str:
    """The route function's name (``list_models``, ``promote``): a generated client's method name."""
    return route.name


def create_app() -> FastAPI:
    """Routes under ``/api``, the page modules under ``/static``, the OpenAPI document at ``/openapi.json``."""
    app = FastAPI(
        title="Model registry",
        description=DESCRIPTION,
        version=version("detection-model-pipeline"),
        openapi_tags=TAGS,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
    )
    app.include_router(reads.router, prefix="/api")
    app.include_router(changes.router, prefix="/api")
    app.include_router(pages.router)
    install_error_handlers(app)
    return app
