"""The model registry inside the Airflow UI: the FastAPI app the plugin mounts, and its pages.

:mod:`models_core.plugin` mounts :class:`RegistryApp` under :data:`URL_PREFIX` and
registers the page modules in ``static/`` as React apps. Every answer comes from
:class:`models_core.registry.model_registry.ModelRegistry` and the snapshot queries; this package
adds routes, access checks and the pages, never a rule of its own. The routes' OpenAPI document
is at ``{URL_PREFIX}/openapi.json`` (:mod:`models_core.api.app`).
"""

from __future__ import annotations

from typing import Any

#: Where Airflow's API server mounts the registry app (the UI fetches it relative to its base URL).
URL_PREFIX = "/model-registry"


class RegistryApp:
    """The registry's FastAPI app as the plugin hands it to Airflow: built on its first request.

    Airflow imports plugins in every process, each task's included (for macros). Building
    the app imports Airflow's API security and the snapshot code, about 0.7 s that only the
    API server should pay, so this module imports nothing until a request arrives.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:  # no await before this assignment: one event loop builds it once
            from models_core.api.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)
