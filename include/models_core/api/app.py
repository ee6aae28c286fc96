"""The registry's FastAPI app, as Airflow's API server mounts it under ``URL_PREFIX``."""

from __future__ import annotations

from fastapi import FastAPI

from models_core.api import changes, pages, reads
from models_core.api.errors import install_error_handlers


def create_app() -> FastAPI:
    """Routes under ``/api`` and the page modules under ``/static``; no unauthenticated docs."""
    app = FastAPI(title="Model registry", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(reads.router, prefix="/api")
    app.include_router(changes.router, prefix="/api")
    app.include_router(pages.router)
    install_error_handlers(app)
    return app
