"""The model registry in the Airflow UI: its API and its pages (built in models_core.api).

Airflow finds this plugin through the package's ``airflow.plugins`` entry point, so installing
the package is all an Airflow needs: nothing is copied into its plugins folder.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from models_core.api import URL_PREFIX, RegistryApp

# Relative to the UI's base URL, so an [api] base_url with a path works too.
STATIC = f"{URL_PREFIX.lstrip('/')}/static"


class ModelRegistryPlugin(AirflowPlugin):
    name = "model_registry"
    fastapi_apps = [{"app": RegistryApp(), "url_prefix": URL_PREFIX, "name": "Model registry API"}]
    react_apps = [
        {
            "name": "Model registry",
            "url_route": "model-registry",
            "bundle_url": f"{STATIC}/registry-page.js",
            "icon": f"{STATIC}/registry-icon.svg",
            "destination": "nav",
            "nav_top_level": True,
        },
        {
            "name": "Model outputs",
            "url_route": "model-outputs",
            "bundle_url": f"{STATIC}/task-outputs.js",
            "destination": "task_instance",
        },
    ]
